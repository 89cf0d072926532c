/**
 * Runs every sample on the test Redis, each in a task hub of its own, and checks its outputs and
 * the facts that make its pattern what it is. Each test deletes its hub's keys (SCAN + UNLINK).
 */
import { randomBytes } from 'node:crypto';
import { HubKeys, type RedisClient, createRedisClient } from '@durabull/redis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { run as runChaining } from './chaining.js';
import { run as runDurableFunctions } from './durable-functions.js';
import { run as runEntities } from './entities.js';
import { run as runFanOutFanIn } from './fan-out-fan-in.js';
import { deleteKeysByPattern } from '../../../test/src/helpers/redis.js';
import { compactHistory, countEvents } from './harness.js';
import { run as runHumanInteraction } from './human-interaction.js';
import { run as runMonitor } from './monitor.js';
import { run as runSchedule } from './schedule.js';
import { samples } from './samples.js';
import { run as runSubOrchestrations } from './sub-orchestrations.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the Redis that test/global-setup.ts picked for the whole run. */
    redisUrl: string;
  }
}

function testRedisUrl(): string {
  let provided: string | undefined;
  try {
    provided = inject('redisUrl');
  } catch {
    // not inside a vitest worker
  }
  const url = provided || process.env.REDIS_URL;
  if (!url) throw new Error('No Redis: run through the root vitest.config.ts (its globalSetup picks one) or set REDIS_URL.');
  return url;
}

let redisUrl: string;
let redis: RedisClient;
const hubs: string[] = [];

/** A hub no other test uses. */
function newHub(name: string): string {
  const hub = `samples-${name}-${randomBytes(4).toString('hex')}`;
  hubs.push(hub);
  return hub;
}

async function deleteHubKeys(hub: string): Promise<void> {
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
}

beforeAll(() => {
  redisUrl = testRedisUrl();
  redis = createRedisClient(redisUrl);
});
afterEach(async () => {
  for (const hub of hubs.splice(0)) await deleteHubKeys(hub);
});
afterAll(async () => {
  await redis.quit();
});

const lines: string[] = [];
const log = (line: string) => void lines.push(line);

describe('samples', () => {
  it('lists one sample per pattern', () => {
    expect(Object.keys(samples)).toEqual(['chaining', 'fan-out-fan-in', 'monitor', 'human-interaction', 'sub-orchestrations', 'schedule', 'entities', 'durable-functions']);
  });

  it('chaining: F1 -> F2 -> F3 -> F4, and compensation in reverse order when F3 fails', async () => {
    const r = await runChaining({ redisUrl, hub: newHub('chaining'), log });
    expect(r.confirmed.runtimeStatus).toBe('Completed');
    expect(r.confirmed.output).toEqual({ status: 'Confirmed', confirmation: 'Lisbon: FL-T1-LIS, HT-T1-3N, PAY-T1-360EUR' });
    expect(r.confirmed.history).toEqual([
      'ExecutionStarted:BookTrip',
      'TaskScheduled:ReserveFlight',
      'TaskCompleted',
      'TaskScheduled:ReserveHotel',
      'TaskCompleted',
      'TaskScheduled:ChargeCard',
      'TaskCompleted',
      'TaskScheduled:SendConfirmation',
      'TaskCompleted',
      'ExecutionCompleted:Completed',
    ]);
    expect(r.confirmed.episodes).toBe(5);

    expect(r.cancelled.runtimeStatus).toBe('Completed');
    expect(r.cancelled.output).toEqual({
      status: 'Cancelled',
      reason: 'ChargeCard failed: card ending declined was declined',
      compensated: ['cancelled HT-T2-2N', 'cancelled FL-T2-OSL'],
    });
    expect(r.cancelled.history).toEqual([
      'ExecutionStarted:BookTrip',
      'TaskScheduled:ReserveFlight',
      'TaskCompleted',
      'TaskScheduled:ReserveHotel',
      'TaskCompleted',
      'TaskScheduled:ChargeCard',
      'TaskFailed',
      'TaskScheduled:CancelHotel',
      'TaskCompleted',
      'TaskScheduled:CancelFlight',
      'TaskCompleted',
      'ExecutionCompleted:Completed',
    ]);
    expect(r.cancelled.episodes).toBe(6);
  });

  it('fan-out/fan-in: N items in parallel, one fan-in replay, the exact sum', async () => {
    const r = await runFanOutFanIn({ redisUrl, hub: newHub('fan-out'), log });
    expect(r.items).toBe(20);
    expect(r.instance.runtimeStatus).toBe('Completed');
    // 1^2 + ... + 20^2
    expect(r.instance.output).toEqual({ total: 2870, report: '20 items, total size 2870' });
    expect(r.parallelTasks).toBe(20);
    // All 20 scheduled in one episode, all 20 results consumed by one: schedule F1, fan out, fan in, finish.
    expect(compactHistory(r.instance.history)).toBe(
      'ExecutionStarted:FanOutFanIn, TaskScheduled:ListWorkItems, TaskCompleted, TaskScheduled:MeasureItem x20, ' +
        'TaskCompleted x20, TaskScheduled:ReportTotal, TaskCompleted, ExecutionCompleted:Completed',
    );
    expect(r.instance.episodes).toBe(4);
  });

  it('monitor: continues as new every round, with a one-round history, until the job is done or the monitor expires', async () => {
    const r = await runMonitor({ redisUrl, hub: newHub('monitor'), log });

    const done = r.completed;
    expect(done.instance.runtimeStatus).toBe('Completed');
    expect(done.instance.output).toEqual({ jobId: 'export-42', outcome: 'Completed', polls: 4, lastProgress: 100 });
    expect(done.instance.customStatus).toEqual({ round: 4, state: 'Completed', progress: 100 });
    expect(done.continuedAsNew).toBe(3);
    expect(done.lastExecutionId).not.toBe(done.firstExecutionId);
    // The last execution's history holds its own round only: one status check, the alert.
    expect(done.instance.history).toEqual([
      'ExecutionStarted:JobMonitor',
      'TaskScheduled:GetJobStatus',
      'TaskCompleted',
      'TaskScheduled:SendAlert',
      'TaskCompleted',
      'ExecutionCompleted:Completed',
    ]);
    expect(done.checksInLastHistory).toBe(1);
    expect(done.instance.historyEvents).toBeLessThanOrEqual(12);
    // 3 episodes per round (check, timer, continue as new), 3 in the last (check, alert, finish).
    expect(done.instance.episodes).toBe(12);

    const expired = r.expired;
    expect(expired.instance.runtimeStatus).toBe('Completed');
    const out = expired.instance.output!;
    expect(out.outcome).toBe('Expired');
    expect(out.jobId).toBe('stuck-7');
    expect(out.lastProgress).toBe(40);
    // A 900 ms lifetime polled every 150 ms: at most 6 checks, and several however slow the machine.
    expect(out.polls).toBeGreaterThanOrEqual(2);
    expect(out.polls).toBeLessThanOrEqual(6);
    expect(expired.continuedAsNew).toBe(out.polls);
    expect(expired.lastExecutionId).not.toBe(expired.firstExecutionId);
    expect(expired.instance.history).toEqual(['ExecutionStarted:JobMonitor', 'ExecutionCompleted:Completed']);
    expect(expired.instance.episodes).toBe(3 * out.polls + 1);
  });

  it('human interaction: one request approved by a raised event, one escalated at its deadline', async () => {
    const r = await runHumanInteraction({ redisUrl, hub: newHub('human'), log });

    expect(r.approved.runtimeStatus).toBe('Completed');
    expect(r.approved.output).toEqual({ outcome: 'Approved', requestId: 'PO-1001', by: 'alice', comment: 'ok, within budget' });
    expect(r.approved.customStatus).toEqual({ state: 'Approved', by: 'alice' });
    expect(r.approved.history).toEqual([
      'ExecutionStarted:ApprovalWorkflow',
      'TaskScheduled:RequestApproval',
      'TaskCompleted',
      'TimerCreated',
      'EventRaised:Approval',
      'ExecutionCompleted:Completed',
    ]);

    expect(r.escalated.runtimeStatus).toBe('Completed');
    expect(r.escalated.output).toEqual({ outcome: 'Escalated', requestId: 'PO-1002', escalatedTo: 'manager-of-bob' });
    expect(r.escalated.customStatus).toEqual({ state: 'Escalated', to: 'manager-of-bob' });
    expect(r.escalated.history).toEqual([
      'ExecutionStarted:ApprovalWorkflow',
      'TaskScheduled:RequestApproval',
      'TaskCompleted',
      'TimerCreated',
      'TimerFired',
      'TaskScheduled:Escalate',
      'TaskCompleted',
      'ExecutionCompleted:Completed',
    ]);
  });

  it('sub-orchestrations: children run in parallel, a transient failure is retried, a hopeless one is caught', async () => {
    const r = await runSubOrchestrations({ redisUrl, hub: newHub('sub'), log });

    expect(r.parent.runtimeStatus).toBe('Completed');
    expect(r.parent.output).toEqual({
      provisioned: [
        { region: 'eu-west', network: 'net-eu-west', cluster: 'k8s-eu-west@net-eu-west' },
        { region: 'us-east', network: 'net-us-east', cluster: 'k8s-us-east@net-us-east' },
        { region: 'ap-south', network: 'net-ap-south', cluster: 'k8s-ap-south@net-ap-south' },
      ],
      failed: [{ region: 'mars-1', error: "unknown region 'mars-1'", attempts: 1 }],
      summary: '3 regions up (eu-west, us-east, ap-south), 1 failed (mars-1)',
    });
    // Four children, plus a second us-east after one durable retry delay; mars-1 is not retried.
    expect(r.childStarts).toBe(5);
    expect(r.retryTimers).toBe(1);
    expect(countEvents(r.parent.history, 'SubOrchestrationInstanceCompleted')).toBe(3);
    expect(countEvents(r.parent.history, 'SubOrchestrationInstanceFailed')).toBe(2);
    expect(r.children.map((c) => [c.region, c.runtimeStatus, c.failure])).toEqual([
      ['eu-west', 'Completed', undefined],
      ['us-east', 'Failed', "TaskFailedError: Activity 'CreateCluster' (task 1) failed: Error: no capacity in us-east right now, try again"],
      ['ap-south', 'Completed', undefined],
      ['mars-1', 'Failed', "NonRetriableError: unknown region 'mars-1'"],
      ['us-east', 'Completed', undefined],
    ]);
    expect(new Set(r.children.map((c) => c.instanceId)).size).toBe(5);
  });

  it('schedule: one report per tick, each export timing out once and resuming from its last heartbeat; trigger, pause and a delayed start', { timeout: 60_000 }, async () => {
    const r = await runSchedule({ redisUrl, hub: newHub('schedule'), log, intervalMs: 1000, ticks: 3 });
    expect(r.ticked.length).toBeGreaterThanOrEqual(3);
    // Ticks on the interval's grid, one report each.
    const ticks = r.ticked.map((t) => Date.parse(t.tick));
    for (const t of ticks) expect(t % 1000).toBe(0);
    expect(new Set(ticks).size).toBe(ticks.length);
    for (const report of [...r.ticked, r.triggered]) {
      expect(report.instanceId.startsWith(`${r.scheduleId}@`)).toBe(true);
      expect(report.output).toBe('report 2024-06-01: 10 batches (resumed at 4)');
      // The first attempt timed out on its heartbeat; the retry finished from batch 4.
      expect(report.history).toEqual([
        'ExecutionStarted:NightlyReport',
        'TaskScheduled:ExportRows',
        'TaskFailed',
        'TimerCreated',
        'TimerFired',
        'TaskScheduled:ExportRows',
        'TaskCompleted',
        'TaskScheduled:Publish',
        'TaskCompleted',
        'ExecutionCompleted:Completed',
      ]);
    }
    expect(r.paused).toBe(true);
    expect(r.started).toBeGreaterThanOrEqual(r.ticked.length + 1);
    expect(r.delayed.report.output).toBe('report 2024-06-02: 10 batches (resumed at 4)');
    expect(r.delayed.firstEpisodeAt).toBeGreaterThanOrEqual(r.delayed.startAt);
  });

  it('entities: a counter aggregated from a fan-out of signals, and transfers under lockEntities that keep the total', async () => {
    const r = await runEntities({ redisUrl, hub: newHub('entities'), log, items: 200 });
    expect(r.counter.state).toBe(r.counter.expected);
    expect(r.counter.operations).toBe(200);
    expect(r.counter.batches).toBeLessThan(200);
    expect(r.transfers.map((t) => t.output)).toEqual([{ ok: true }, { ok: true }, { ok: false, reason: 'insufficient funds: balance 120, asked 500' }]);
    expect(Object.values(r.balances)).toEqual([120, 80]);
    expect(r.transfers[0]!.history).toContain('EntityLockRequested');
    expect(r.transfers[0]!.history).toContain('EntityLockGranted');
    expect(r.transfers[0]!.history.filter((l) => l === 'EntityUnlockSent')).toHaveLength(2);
  });
  it("durable-functions: Durable Functions' own samples run through the durable-functions alias, HTTP starters included", async () => {
    const r = await runDurableFunctions({ redisUrl, hub: newHub('df'), log });
    // helloSequence, started by httpStart (app.http): 202, Location = statusQueryGetUri on durabull's API, which answers 200 once done.
    expect(r.hello).toMatchObject({ startStatus: 202, finalStatus: 200, output: ['Hello Tokyo', 'Hello Seattle', 'Hello Cairo'] });
    expect(r.hello.location).toBe(r.hello.statusQueryGetUri);
    expect(r.hello.statusQueryGetUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/instances\/[0-9a-f-]{36}$/);
    // backupSiteContent, started by httpSyncStart: the total of the file sizes, each file copied through its blob output binding.
    expect(r.backup).toMatchObject({ status: 200, totalBytes: 13 + 15 + 6 + 5000, files: 4, copiedIdentical: true });
    expect(r.backup.blobs.map((b) => b.bytes)).toEqual([13, 15, 6, 5000]);
    // weatherMonitor: one check of a clear sky, one text; a request without a city fails with the sample's own error.
    expect(r.monitor.runtimeStatus).toBe('Completed');
    expect(r.monitor.texts).toEqual([{ body: "The weather's clear outside! Go talk a walk!", to: '+15550100' }]);
    expect(r.monitor.weatherRequests).toEqual(['Redmond,WA,USA']);
    expect(r.monitor.invalid).toEqual({ runtimeStatus: 'Failed', output: "Orchestrator function 'weatherMonitor' failed: A city is required on the location input." });
    // smsPhoneVerification: the texted code authorizes; four wrong answers do not.
    expect(r.phone.authorized).toBe(true);
    expect(r.phone.wrongCodes).toBe(false);
    expect(r.phone.sentCode).toBeGreaterThanOrEqual(0);
    // counterOrchestration x3 on the counterEntity.
    expect(r.counter).toEqual({ runs: ['Completed', 'Completed', 'Completed'], before: 0, after: 3 });
  });
});
