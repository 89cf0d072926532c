/**
 * The history invariant checker (packages/redis/src/checker.ts) on the real Redis: histories run
 * by a real worker report nothing; every finding code comes out of an instance corrupted on
 * purpose (raw Redis commands, or scripts driven by hand); `repair` re-queues a stuck instance so
 * that a worker then completes it, and fixes index entries; the worker's sweep alone un-sticks
 * stuck instances.
 */
import { type HistoryEvent, type OrchestrationContext, Registry, executeOrchestration } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import { type FindingCode, type InstanceReport, ORCHESTRATOR_QUEUE, RedisBackend, StuckSweeper, checkHub, checkInstance, encodeEvent, wakeJobId, duplicateClient, type RedisClient } from '@durabull/redis';
import { DurabullWorker } from '@durabull/worker';
import { UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { captureLog } from './helpers/log.js';
import { deleteKeysByPattern, redisUrl, uniqueHub, connectRedis } from './helpers/redis.js';

const WAIT = { timeoutMs: 20_000 };
const codes = (r: InstanceReport): FindingCode[] => r.findings.map((f) => f.code);

// ---- clean histories, run by a real worker ----

describe('clean histories', () => {
  let th: TestHub | undefined;
  afterEach(async () => {
    await th?.cleanup();
    th = undefined;
  });

  it('report nothing: chaining, fan-out, continue-as-new, sub-orchestration, timer, failed, terminated, waiting, suspended', async () => {
    th = await createTestHub({
      orchestrators: {
        Chaining: function* (ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
          const x = yield ctx.callActivity('Append', [input, 'F1']);
          const y = yield ctx.callActivity('Append', [x, 'F2']);
          return yield ctx.callActivity('Append', [y, 'F3']);
        },
        FanOut: function* (ctx: OrchestrationContext, n: number): Generator<unknown, number, any> {
          const items: number[] = yield ctx.callActivity('List', n);
          const squares: number[] = yield ctx.all(items.map((i) => ctx.callActivity('Square', i)));
          return squares.reduce((a, b) => a + b, 0);
        },
        Looper: function* (ctx: OrchestrationContext, n: number): Generator<unknown, unknown, any> {
          const next: number = yield ctx.callActivity('Double', n);
          if (next < 40) {
            ctx.continueAsNew(next);
            return undefined;
          }
          return next;
        },
        Parent: function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
          yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 20));
          const child: number = yield ctx.callSubOrchestrator('FanOut', 3, 'clean-child');
          return { child };
        },
        Failing: function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
          yield ctx.callActivity('Double', 1);
          return yield ctx.callActivity('Boom');
        },
        WaitGo: function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
          return yield ctx.waitForExternalEvent('go');
        },
      },
      activities: {
        Append: async ([s, t]: [string, string]) => `${s}>${t}`,
        List: async (n: number) => Array.from({ length: n }, (_, i) => i + 1),
        Square: async (i: number) => i * i,
        Double: async (n: number) => n * 2,
        Boom: async () => {
          throw new Error('boom');
        },
      },
    });
    const c = th.client;
    await c.startNew('Chaining', { instanceId: 'clean-chain', input: 'in' });
    await c.startNew('FanOut', { instanceId: 'clean-fan', input: 20 });
    await c.startNew('Looper', { instanceId: 'clean-loop', input: 3 });
    await c.startNew('Parent', { instanceId: 'clean-parent' });
    await c.startNew('Failing', { instanceId: 'clean-fail' });
    await c.startNew('WaitGo', { instanceId: 'clean-term' });
    await c.startNew('WaitGo', { instanceId: 'clean-wait' });
    await c.startNew('WaitGo', { instanceId: 'clean-susp' });
    await c.startNew('WaitGo', { instanceId: 'clean-raised' });

    expect((await c.waitForCompletion('clean-chain', WAIT)).output).toBe('in>F1>F2>F3');
    expect((await c.waitForCompletion('clean-fan', WAIT)).output).toBe(2870);
    expect((await c.waitForCompletion('clean-loop', WAIT)).output).toBe(48);
    expect((await c.waitForCompletion('clean-parent', WAIT)).output).toEqual({ child: 14 });
    expect((await c.waitForCompletion('clean-fail', WAIT)).runtimeStatus).toBe('Failed');
    for (const id of ['clean-term', 'clean-wait', 'clean-susp', 'clean-raised']) await waitFor(async () => (await c.getStatus(id))?.runtimeStatus === 'Running');
    await c.terminate('clean-term', 'enough');
    await c.suspend('clean-susp');
    await c.raiseEvent('clean-susp', 'go', 'later'); // waits in the inbox until resumed: not stuck
    await c.raiseEvent('clean-raised', 'go', 'now');
    expect((await c.waitForCompletion('clean-raised', WAIT)).output).toBe('now');

    const report = await checkHub(c.backend, { now: Date.now() + 60_000 });
    expect(report.findings).toEqual([]);
    expect(report.unsettled).toEqual([]);
    expect(report.checked).toBe(10); // with clean-child
    const statuses = Object.fromEntries(
      await Promise.all(['clean-term', 'clean-wait', 'clean-susp', 'clean-loop'].map(async (id) => [id, (await c.getStatus(id))!.runtimeStatus])),
    );
    expect(statuses).toEqual({ 'clean-term': 'Terminated', 'clean-wait': 'Running', 'clean-susp': 'Suspended', 'clean-loop': 'Completed' });
  });

  it('pages through the creation index with limit and cursor', async () => {
    th = await createTestHub({}, { startWorker: false });
    for (let i = 0; i < 5; i++) await th.client.startNew('Anything', { instanceId: `page-${i}` });
    const first = await checkHub(th.client.backend, { limit: 2 });
    expect(first.checked).toBe(2);
    expect(first.nextCursor).toBeTruthy();
    const second = await checkHub(th.client.backend, { limit: 2, cursor: first.nextCursor! });
    const third = await checkHub(th.client.backend, { limit: 2, cursor: second.nextCursor! });
    expect([second.checked, third.checked, third.nextCursor]).toEqual([2, 1, undefined]);
    // Pending instances with their first job waiting in BullMQ: nothing to report, even long after.
    expect((await checkHub(th.client.backend, { now: Date.now() + 60_000 })).findings).toEqual([]);
  });

  it('gives no cursor when the limit ends the last partition that holds instances', async () => {
    th = await createTestHub({}, { startWorker: false });
    const parts = th.client.backend.partitions;
    // Two instances in the first partition, none in the others.
    const ids: string[] = [];
    for (let i = 0; ids.length < 2; i++) if (th.client.backend.forInstance(`first-${i}`) === parts[0]) ids.push(`first-${i}`);
    for (const id of ids) await th.client.startNew('Anything', { instanceId: id });
    const report = await checkHub(th.client.backend, { limit: 2 });
    expect([report.checked, report.nextCursor]).toEqual([2, undefined]);
    // With more partitions, an instance in a later one: the cursor leads there.
    if (parts.length > 1) {
      let j = 0;
      while (th.client.backend.forInstance(`later-${j}`) === parts[0]) j++;
      await th.client.startNew('Anything', { instanceId: `later-${j}` });
      const first = await checkHub(th.client.backend, { limit: 2 });
      expect(first.nextCursor).toBeTruthy();
      const rest = await checkHub(th.client.backend, { limit: 2, cursor: first.nextCursor! });
      expect([rest.checked, rest.nextCursor]).toEqual([1, undefined]);
    }
  });
});

// ---- corrupted instances, driven by hand ----

const registry = new Registry()
  .addOrchestrator('Fan3', function* (ctx) {
    const r: number[] = yield ctx.all([1, 2, 3].map((i) => ctx.callActivity('Sq', i)));
    return r.reduce((a, b) => a + b, 0);
  })
  .addOrchestrator('Chain2', function* (ctx, n: number) {
    const a: number = yield ctx.callActivity('Sq', n);
    return yield ctx.callActivity('Sq', a);
  })
  .addOrchestrator('WaitGo', function* (ctx) {
    return yield ctx.waitForExternalEvent('go');
  })
  .addActivity('Sq', async (n: number) => n * n);

let backend: RedisBackend;
let redis: RedisClient;
let workers: DurabullWorker[] = [];

/** Runs one episode by hand (load, replay, commit); its outbox is left undispatched. */
async function episode(id: string) {
  const loaded = (await backend.loadEpisode(id))!;
  const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
  const result = await executeOrchestration(registry, loaded.history, [...prefix, ...loaded.inbox.map((m) => m.event)]);
  return backend.commitEpisode(loaded, prefix, result);
}

const ts = () => Date.now();
const completed = (seq: number, result: unknown): HistoryEvent => ({ type: 'TaskCompleted', taskScheduledId: seq, result, timestamp: ts() });

/** A history stream entry holding one batch: records of <u32 big-endian length><msgpack event>. */
function batch(events: HistoryEvent[]): Buffer {
  return Buffer.concat(
    events.flatMap((e) => {
      const body = encodeEvent(e);
      const len = Buffer.alloc(4);
      len.writeUInt32BE(body.length);
      return [len, body];
    }),
  );
}

/** Appends one framed episode holding `events` to the history, as a buggy commit would. */
async function appendEpisode(id: string, events: HistoryEvent[]): Promise<void> {
  await redis.xadd(backend.keys.history(id), '*', 'b', batch([{ type: 'OrchestratorStarted', timestamp: ts() }, ...events, { type: 'OrchestratorCompleted', timestamp: ts() }]));
}

/** Chain2 run by hand to completion (3 episodes): 2 -> 4 -> 16. */
async function completedChain(id: string): Promise<string> {
  const { executionId: x } = await backend.startInstance('Chain2', id, 2);
  await episode(id);
  await backend.deliverEvent(id, x, 'c', 0, completed(0, 4), { dispatch: false });
  await episode(id);
  await backend.deliverEvent(id, x, 'c', 1, completed(1, 16), { dispatch: false });
  await episode(id);
  expect((await backend.getState(id))!.runtimeStatus).toBe('Completed');
  return x;
}

/** WaitGo after its first episode: Running, idle, waiting for 'go'. */
async function waitingInstance(id: string): Promise<string> {
  const { executionId: x } = await backend.startInstance('WaitGo', id, undefined);
  await episode(id);
  return x;
}

async function startWorker(opts: { sweepIntervalMs?: number; logger?: Logger } = {}): Promise<DurabullWorker> {
  const w = new DurabullWorker({ connection: redisUrl(), hub: backend.keys.hub, registry, logger: opts.logger ?? false, sweepIntervalMs: opts.sweepIntervalMs ?? 0 });
  workers.push(w);
  return w.start();
}

async function waitForOutput(id: string): Promise<unknown> {
  const client = new DurabullClient({ connection: redisUrl(), hub: backend.keys.hub });
  try {
    return (await client.waitForCompletion(id, WAIT)).output;
  } finally {
    await client.close();
  }
}

async function waitFor(cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('findings of corrupted instances', () => {
  beforeEach(() => {
    backend = new RedisBackend({ connection: redisUrl(), hub: uniqueHub('chk') });
    redis = connectRedis();
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.close()));
    workers = [];
    await deleteKeysByPattern(redis, backend.keys.pattern);
    await backend.close();
    await redis.quit();
  });

  it('duplicate-schedule: a task id scheduled twice', async () => {
    await backend.startInstance('Fan3', 'dup-sched', undefined);
    await episode('dup-sched');
    expect(codes(await checkInstance(backend, 'dup-sched'))).toEqual([]);
    await appendEpisode('dup-sched', [{ type: 'TaskScheduled', taskId: 0, name: 'Sq', input: 1, timestamp: ts() }]);
    const r = await checkInstance(backend, 'dup-sched');
    expect(codes(r)).toEqual(['duplicate-schedule']);
    expect(r.findings[0]!.message).toContain('task 0 scheduled again');
  });

  it('duplicate-completion: a task completed twice, in history or again in the inbox', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'dup-done', 2);
    await episode('dup-done');
    await backend.deliverEvent('dup-done', x, 'c', 0, completed(0, 4), { dispatch: false });
    await episode('dup-done');
    expect(codes(await checkInstance(backend, 'dup-done'))).toEqual([]);
    // Again in the inbox (the duplicate filter let it through): it would land in history next.
    await redis.rpush(backend.keys.inbox('dup-done'), Buffer.concat([Buffer.from('c0|'), encodeEvent(completed(0, 4))]));
    expect(codes(await checkInstance(backend, 'dup-done'))).toEqual(['duplicate-completion']);
    await redis.del(backend.keys.inbox('dup-done'));
    // In history.
    await appendEpisode('dup-done', [{ type: 'TaskFailed', taskScheduledId: 0, failure: { errorName: 'Error', message: 'x' }, timestamp: ts() }]);
    expect(codes(await checkInstance(backend, 'dup-done'))).toEqual(['duplicate-completion']);
  });

  it('completion-without-schedule: a result for a task history never scheduled', async () => {
    await backend.startInstance('Chain2', 'orphan', 2);
    await episode('orphan');
    await appendEpisode('orphan', [completed(42, 'x')]);
    const r = await checkInstance(backend, 'orphan');
    expect(codes(r)).toEqual(['completion-without-schedule']);
    expect(r.findings[0]!.message).toContain('task 42');
  });

  it('episode-unframed: an episode without OrchestratorCompleted', async () => {
    await waitingInstance('unframed');
    await redis.xadd(backend.keys.history('unframed'), '*', 'e', encodeEvent({ type: 'OrchestratorStarted', timestamp: ts() }));
    expect(codes(await checkInstance(backend, 'unframed'))).toEqual(['episode-unframed']);
  });

  it('event-after-terminal: an episode after ExecutionCompleted', async () => {
    await completedChain('late');
    expect(codes(await checkInstance(backend, 'late'))).toEqual([]);
    await appendEpisode('late', [{ type: 'EventRaised', name: 'go', input: 1, timestamp: ts() }]);
    expect(codes(await checkInstance(backend, 'late'))).toEqual(['event-after-terminal']);
  });

  it('missing-execution-started: not at the head of a Pending inbox, or not in the history', async () => {
    await backend.startInstance('WaitGo', 'nostart', undefined);
    expect(codes(await checkInstance(backend, 'nostart'))).toEqual([]);
    await redis.lpop(backend.keys.inbox('nostart'));
    expect(codes(await checkInstance(backend, 'nostart'))).toEqual(['missing-execution-started']);

    await waitingInstance('nostart2');
    await redis.del(backend.keys.history('nostart2'));
    await appendEpisode('nostart2', []);
    expect(codes(await checkInstance(backend, 'nostart2'))).toEqual(['missing-execution-started']);
  });

  it('duplicate-execution-started and execution-mismatch', async () => {
    const x = await waitingInstance('twice');
    await appendEpisode('twice', [{ type: 'ExecutionStarted', name: 'WaitGo', instanceId: 'twice', executionId: x, timestamp: ts() }]);
    expect(codes(await checkInstance(backend, 'twice'))).toEqual(['duplicate-execution-started']);

    await waitingInstance('other-exec');
    await redis.hset(backend.keys.state('other-exec'), 'exec', 'not-this-one');
    expect(codes(await checkInstance(backend, 'other-exec'))).toEqual(['execution-mismatch']);
  });

  it('status-mismatch: the state says otherwise than the history', async () => {
    await completedChain('said-failed');
    await setStatusRaw('said-failed', 'Failed');
    const r = await checkInstance(backend, 'said-failed');
    expect(codes(r)).toEqual(['status-mismatch']);
    expect(r.findings[0]!.message).toBe('status Failed, history has ExecutionCompleted (Completed)');

    await waitingInstance('said-done');
    await setStatusRaw('said-done', 'Completed');
    expect(codes(await checkInstance(backend, 'said-done'))).toEqual(['status-mismatch']);

    await completedChain('said-running');
    await setStatusRaw('said-running', 'Running');
    expect(codes(await checkInstance(backend, 'said-running'))).toEqual(['status-mismatch']);
  });

  it('work-for-finished: pending tasks, or a wake for its current version', async () => {
    const x = await completedChain('leftover');
    await redis.sadd(backend.keys.pending('leftover'), '7');
    const r = await checkInstance(backend, 'leftover');
    expect(codes(r)).toEqual(['work-for-finished']);
    expect(r.findings[0]!.message).toContain('1 pending task(s) (7)');

    const y = await completedChain('woken');
    const { version } = (await backend.getState('woken'))!;
    await backend.dispatch([[wakeJobId('woken', y, version), `Wwoken|${y}|${version}`]], { awaitCleanup: true });
    const w = await checkInstance(backend, 'woken');
    expect(codes(w)).toEqual(['work-for-finished']);
    expect(w.findings[0]!.message).toContain('is waiting in BullMQ');
    expect(x).not.toBe(y);
  });

  it('pending-mismatch: a pending task history does not schedule', async () => {
    await waitingInstance('pend');
    await redis.sadd(backend.keys.pending('pend'), '9');
    expect(codes(await checkInstance(backend, 'pend'))).toEqual(['pending-mismatch']);
  });

  it('index-mismatch: repaired from the state; an entry of a gone instance is removed', async () => {
    await waitingInstance('idx');
    const { createdAt } = (await backend.getState('idx'))!;
    const t = String(createdAt.getTime()).padStart(13, '0');
    await redis.zrem(backend.keys.statusIndex, `Running|${t}|idx`);
    await redis.zadd(backend.keys.statusIndex, 0, `Pending|${t}|idx`);
    await redis.zadd(backend.keys.instances, 0, '0000000000001|ghost');
    const before = await checkHub(backend);
    expect(before.findings.map((f) => [f.instanceId, f.code])).toEqual([
      ['ghost', 'index-mismatch'],
      ['idx', 'index-mismatch'],
    ]);
    const fixed = await checkHub(backend, { repair: true });
    expect(fixed.repaired.map((f) => f.instanceId)).toEqual(['ghost', 'idx']);
    expect(fixed.repaired[1]!.repaired).toContain('2 changed'); // +Running, -Pending
    expect((await checkHub(backend)).findings).toEqual([]);
    expect(await redis.zrangebylex(backend.keys.statusIndex, '-', '+')).toEqual([`Running|${t}|idx`]);
    expect(await redis.zrangebylex(backend.keys.instances, '-', '+')).toEqual([`${t}|idx`]);
    expect((await backend.list({ status: 'Running' })).instances.map((s) => s.instanceId)).toEqual(['idx']);
  });

  it('stuck (idle): results that should have woken it, no wake; repair re-queues it and a worker completes it', async () => {
    const { executionId: x } = await backend.startInstance('Fan3', 'idle', undefined);
    await episode('idle');
    await backend.deliverEvent('idle', x, 'c', 0, completed(0, 1), { dispatch: false });
    await backend.deliverEvent('idle', x, 'c', 1, completed(1, 4), { dispatch: false });
    const last = await backend.deliverEvent('idle', x, 'c', 2, completed(2, 9), { dispatch: false });
    // The wake is lost: `scheduled` cleared and the outbox entry gone, as if never written.
    await redis.hset(backend.keys.state('idle'), 'scheduled', 0);
    await backend.ackOutbox([last.wakeJobId!], true);
    const r = await checkInstance(backend, 'idle');
    expect(codes(r)).toEqual(['stuck']);
    expect(r.findings[0]!.message).toMatch(/^idle \(scheduled = 0\) with 3 inbox entries/);

    const hub = await checkHub(backend, { repair: true });
    expect(hub.repaired).toHaveLength(1);
    expect(hub.repaired[0]).toMatchObject({ instanceId: 'idle', code: 'stuck', repaired: `re-queued with wake ${wakeJobId('idle', x, 2)}` });
    expect(await backend.getState('idle')).toMatchObject({ version: 2, scheduled: true, runtimeStatus: 'Running' });
    expect(await backend.orchestratorQueue.getJobState(wakeJobId('idle', x, 2))).toBe('waiting');
    expect(codes(await checkInstance(backend, 'idle'))).toEqual([]);

    await startWorker(); // sweep off: the repair alone gets it going
    expect(await waitForOutput('idle')).toBe(14);
    expect((await checkHub(backend)).findings).toEqual([]);
  });

  it('stuck (lost wake): scheduled, but its job is gone from BullMQ and the outbox, past the grace period', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'lost', 3);
    const job = wakeJobId('lost', x, 0);
    expect(await backend.orchestratorQueue.getJobState(job)).toBe('waiting');
    expect(codes(await checkInstance(backend, 'lost', { now: Date.now() + 60_000 }))).toEqual([]);
    await backend.orchestratorQueue.remove(job);
    // Within the grace period (measured from updatedAt) it is not reported yet.
    expect(codes(await checkInstance(backend, 'lost'))).toEqual([]);
    const later = Date.now() + 60_000;
    const r = await checkInstance(backend, 'lost', { now: later });
    expect(codes(r)).toEqual(['stuck']);
    expect(r.findings[0]!.message).toContain(`no wake ${job} in the outbox or BullMQ`);

    const fixed = await checkInstance(backend, 'lost', { now: later, repair: true });
    expect(fixed.findings[0]!.repaired).toBe(`re-queued with wake ${wakeJobId('lost', x, 1)}`);
    await startWorker();
    expect(await waitForOutput('lost')).toBe(81);
    expect((await checkHub(backend, { now: Date.now() + 60_000 })).findings).toEqual([]);
  });
  it('stuck (failed wake job): re-queued under a new version, since BullMQ keeps the failed job id', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'failed-job', 2);
    const job = wakeJobId('failed-job', x, 0);
    // Something fails the wake job for good (here: a rogue consumer of the orchestrator queue).
    const connection = duplicateClient(backend.queueConnection);
    const rogue = new Worker(ORCHESTRATOR_QUEUE, async () => {
      throw new UnrecoverableError('rogue');
    }, { connection, prefix: backend.keys.queuePrefix });
    await waitFor(async () => (await backend.orchestratorQueue.getJobState(job)) === 'failed');
    await rogue.close();
    await connection.quit();
    // Dispatching the same wake again adds nothing: BullMQ still holds that job id.
    await backend.dispatch([[job, `Wfailed-job|${x}|0`]], { awaitCleanup: true });
    expect(await backend.orchestratorQueue.getJobState(job)).toBe('failed');
    const later = Date.now() + 60_000;
    const r = await checkInstance(backend, 'failed-job', { now: later, repair: true });
    expect(codes(r)).toEqual(['stuck']);
    expect(r.findings[0]!.repaired).toBe(`re-queued with wake ${wakeJobId('failed-job', x, 1)}`);
    await startWorker();
    expect(await waitForOutput('failed-job')).toBe(16);
  });
});

describe("the worker's sweep", () => {
  beforeEach(() => {
    backend = new RedisBackend({ connection: redisUrl(), hub: uniqueHub('swp') });
    redis = connectRedis();
  });
  afterEach(async () => {
    await Promise.all(workers.map((w) => w.close()));
    workers = [];
    await deleteKeysByPattern(redis, backend.keys.pattern);
    await backend.close();
    await redis.quit();
  });

  it('un-sticks stuck instances on its own, and logs it', async () => {
    // A lost wake: Pending, scheduled, no job anywhere.
    const { executionId: x } = await backend.startInstance('Chain2', 'sw-lost', 2);
    await acksSent();
    await backend.orchestratorQueue.remove(wakeJobId('sw-lost', x, 0));
    // An event that never woke the instance: in the inbox, `scheduled` = 0.
    await waitingInstance('sw-idle');
    await redis.rpush(backend.keys.inbox('sw-idle'), Buffer.concat([Buffer.from('e|'), encodeEvent({ type: 'EventRaised', name: 'go', input: 'went', timestamp: ts() })]));
    expect(codes(await checkInstance(backend, 'sw-idle'))).toEqual(['stuck']);

    const { logger, lines } = captureLog('warn');
    await startWorker({ sweepIntervalMs: 100, logger });
    expect(await waitForOutput('sw-idle')).toBe('went');
    expect(await waitForOutput('sw-lost')).toBe(16);
    const requeued = lines.filter((l) => l.msg === 'Re-queued a stuck instance');
    expect(requeued.map((l) => [l.instanceId, l.reason]).sort()).toEqual([
      ['sw-idle', 'idle'],
      ['sw-lost', 'lost-wake'],
    ]);
    expect((await checkHub(backend, { now: Date.now() + 60_000 })).findings).toEqual([]);
  });

  it('looks at a bounded number of instances per pass, resuming where it stopped', async () => {
    for (let i = 0; i < 5; i++) {
      const { executionId } = await backend.startInstance('Chain2', `b-${i}`, i);
      await acksSent();
      await backend.orchestratorQueue.remove(wakeJobId(`b-${i}`, executionId, 0));
    }
    // A healthy one in between: its job is waiting.
    await backend.startInstance('Chain2', 'b-ok', 1);
    const now = Date.now() + 60_000;
    const passes: string[][] = [];
    const sweeper = new StuckSweeper(backend);
    for (let p = 0; p < 4; p++) passes.push((await sweeper.pass({ limit: 2, graceMs: 5000, now })).map((r) => r.instanceId));
    expect(passes).toEqual([['b-0', 'b-1'], ['b-2', 'b-3'], ['b-4'], []]);
    expect((await checkHub(backend, { now })).findings).toEqual([]);
  });
});

/**
 * Waits until the outbox acks of what was dispatched have reached Redis (they go at the next turn
 * of the event loop, on the backend's connection, in order): a job removed after that is lost for
 * good, as if Redis had lost it; removed before, the ack keeps the entry and the outbox sweep, not
 * the stuck sweep, queues it again.
 */
async function acksSent(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await backend.redis.ping();
}

/** Sets a status with raw commands, moving the status index entry too (so only the status is wrong). */
async function setStatusRaw(id: string, status: string): Promise<void> {
  const st = (await backend.getState(id))!;
  const t = String(st.createdAt.getTime()).padStart(13, '0');
  await redis.zrem(backend.keys.statusIndex, `${st.runtimeStatus}|${t}|${id}`);
  await redis.zadd(backend.keys.statusIndex, 0, `${status}|${t}|${id}`);
  await redis.hset(backend.keys.state(id), 'status', status);
}
