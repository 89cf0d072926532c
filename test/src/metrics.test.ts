/**
 * The worker's Prometheus metrics and the charts' per-minute counters on a real Redis: each family
 * moves when the thing it counts happens (scraped over the worker's metrics port), the hub gauges
 * tell what Redis holds, and the counters the dashboard draws reach Redis.
 */
import { ACTIVITY_QUEUE, ORCHESTRATOR_QUEUE, duplicateClient, readHubStats } from '@durabull/redis';
import { type OrchestrationContext, ValidationError } from '@durabull/core';
import { DurabullMetrics, DurabullWorker } from '@durabull/worker';
import { Queue } from 'bullmq';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';

let th: TestHub | undefined;
const queues: Queue[] = [];
afterEach(async () => {
  await Promise.all(queues.splice(0).map((q) => q.close()));
  await th?.cleanup();
  th = undefined;
});

async function until<T>(check: () => Promise<T | undefined>, what = 'the condition', timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The value of one sample in Prometheus' text format: `name{labels} value`, every given label matching (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0;
  let found = false;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^([^{ ]+)(?:\{(.*)\})? (.+)$/.exec(line);
    if (!m) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) {
      total += Number(m[3]);
      found = true;
    }
  }
  return found ? total : 0;
}

const gates = new Map<string, () => void>();
const gate = (key: string) => new Promise<void>((resolve) => gates.set(key, resolve));

const orchestrators = {
  Chain: function* (ctx: OrchestrationContext, n: number): Generator<unknown, unknown, any> {
    const a: number = yield ctx.callActivity('Add', n);
    return yield ctx.callActivity('Add', a);
  },
  Fan: function* (ctx: OrchestrationContext, keys: string[]): Generator<unknown, unknown, any> {
    return yield ctx.all(keys.map((k) => ctx.callActivity('Block', k)));
  },
  Fails: function* (ctx: OrchestrationContext): Generator<unknown, string, any> {
    try {
      yield ctx.callActivity('Boom');
    } catch {
      return 'caught';
    }
    return 'not reached';
  },
  Waits: function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
    return yield ctx.waitForExternalEvent('Go');
  },
  Sleeps: function* (ctx: OrchestrationContext, ms: number): Generator<unknown, string, any> {
    yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + ms));
    return 'woke';
  },
};
const activities = {
  Add: async (n: number) => n + 1,
  Block: async (key: string) => {
    await gate(key);
    return key;
  },
  Boom: async () => {
    throw new TypeError('boom');
  },
};

describe('worker metrics', () => {
  it('count episodes, activities, their latencies, timers, instances, queues, the outbox and sweep repairs', async () => {
    // The sweep and the charts' timer are off: the test runs them itself.
    th = await createTestHub({ orchestrators, activities }, { metricsPort: 0, metricsHost: '127.0.0.1', sweepIntervalMs: 0, statsIntervalMs: 0 });
    const worker = th.workers[0]!;
    const { hub } = th;
    const url = `http://127.0.0.1:${worker.metricsAddress!.port}/metrics`;
    const scrape = async () => {
      const res = await fetch(url);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      return res.text();
    };
    const before = await scrape();
    expect(sample(before, 'durabull_episodes_total', { hub })).toBe(0);
    expect(before).toContain('# TYPE durabull_activity_duration_seconds histogram');

    // A chain of two activities: 3 episodes, 2 activities, one instance completed.
    await th.client.startNew('Chain', { instanceId: 'chain-1', input: 1 });
    expect((await th.client.waitForCompletion('chain-1')).output).toBe(3);
    // An activity that throws, caught by the code.
    await th.client.startNew('Fails', { instanceId: 'fails-1' });
    expect((await th.client.waitForCompletion('fails-1')).output).toBe('caught');
    let text = await scrape();
    expect(sample(text, 'durabull_episodes_total', { hub, orchestrator: 'Chain', outcome: 'completed' })).toBe(1);
    expect(sample(text, 'durabull_episodes_total', { hub, orchestrator: 'Chain', outcome: 'running' })).toBe(2);
    expect(sample(text, 'durabull_episodes_total', { hub, orchestrator: 'Chain', mode: 'started' })).toBe(1);
    expect(sample(text, 'durabull_episodes_total', { hub, orchestrator: 'Chain' })).toBe(3);
    expect(sample(text, 'durabull_episode_duration_seconds_count', { hub, orchestrator: 'Chain' })).toBe(3);
    expect(sample(text, 'durabull_activities_total', { hub, activity: 'Add', outcome: 'completed', attempt: '1' })).toBe(2);
    expect(sample(text, 'durabull_activities_total', { hub, activity: 'Boom', outcome: 'failed', attempt: '1' })).toBe(1);
    expect(sample(text, 'durabull_activity_duration_seconds_count', { hub, activity: 'Add', outcome: 'completed' })).toBe(2);
    expect(sample(text, 'durabull_activity_schedule_to_start_seconds_count', { hub, activity: 'Add' })).toBe(2);
    expect(sample(text, 'durabull_instance_duration_seconds_count', { hub, orchestrator: 'Chain', status: 'completed' })).toBe(1);
    expect(sample(text, 'durabull_instance_duration_seconds_sum', { hub, orchestrator: 'Chain', status: 'completed' })).toBeGreaterThan(0);
    expect(sample(text, 'durabull_redis_roundtrip_seconds_count', { hub })).toBeGreaterThan(0); // the scrape's read of the hub gauges

    // Instances by status, from the status index.
    for (const id of ['w-1', 'w-2', 'w-3']) await th.client.startNew('Waits', { instanceId: id });
    await until(async () => (sample(await scrape(), 'durabull_instances', { hub, status: 'Running' }) === 3 ? true : undefined), 'three Running');
    text = await scrape();
    expect(sample(text, 'durabull_instances', { hub, status: 'Completed' })).toBe(2);
    await th.client.raiseEvent('w-1', 'Go', 'now');
    await th.client.waitForCompletion('w-1');
    text = await scrape();
    expect(sample(text, 'durabull_instances', { hub, status: 'Running' })).toBe(2);
    expect(sample(text, 'durabull_instances', { hub, status: 'Completed' })).toBe(3);

    // A timer an hour away is a delayed orchestrator job; a short one fires.
    await th.client.startNew('Sleeps', { instanceId: 'sleeps-long', input: 3_600_000 });
    await until(async () => (sample(await scrape(), 'durabull_queue_jobs', { hub, queue: 'orchestrator', state: 'delayed' }) === 1 ? true : undefined), 'a delayed timer job');
    await th.client.startNew('Sleeps', { instanceId: 'sleeps-short', input: 50 });
    await th.client.waitForCompletion('sleeps-short');
    expect(sample(await scrape(), 'durabull_timers_fired_total', { hub })).toBe(1);

    // Activity jobs held back from BullMQ (as by a worker that died before dispatching): the outbox.
    let hold = true;
    for (const part of worker.backend.partitions) {
      // The commit leaves them in the outbox (it would add them to BullMQ itself), and the dispatch drops them.
      const commit = part.commitEpisode.bind(part);
      part.commitEpisode = (loaded, prefix, result, now, opts) => commit(loaded, prefix, result, now, hold ? { ...opts, activityJobsViaOutbox: true } : opts);
      const dispatch = part.dispatch.bind(part);
      part.dispatch = (entries, opts) => dispatch(hold ? entries.filter(([, p]) => p[0] !== 'A') : entries, opts);
    }
    await th.client.startNew('Fan', { instanceId: 'fan-1', input: ['a', 'b'] });
    text = await until(async () => {
      const t = await scrape();
      return sample(t, 'durabull_outbox_entries', { hub }) === 2 ? t : undefined;
    }, 'two outbox entries');
    expect(sample(text, 'durabull_outbox_oldest_age_seconds', { hub })).toBeGreaterThanOrEqual(0);
    await until(async () => (sample(await scrape(), 'durabull_outbox_oldest_age_seconds', { hub }) > 0 ? true : undefined), 'an outbox entry that has waited');
    hold = false;
    // The sweep queues them: two repairs; both activities run from the queue and block.
    expect(await worker.sweep()).toBe(2);
    text = await scrape();
    expect(sample(text, 'durabull_sweep_repairs_total', { hub, kind: 'outbox' })).toBe(2);
    expect(sample(text, 'durabull_outbox_entries', { hub })).toBe(0);
    await until(async () => (sample(await scrape(), 'durabull_queue_jobs', { hub, queue: 'activity', state: 'active' }) === 2 ? true : undefined), 'two active activity jobs');
    await until(async () => (gates.size === 2 ? true : undefined), 'both blockers running');
    for (const release of gates.values()) release();
    expect((await th.client.waitForCompletion('fan-1')).output).toEqual(['a', 'b']);
    expect(sample(await scrape(), 'durabull_activity_schedule_to_start_seconds_count', { hub, activity: 'Block' })).toBe(2);

    // A malformed job is dead-lettered: a failed activity job.
    const acts = new Queue(ACTIVITY_QUEUE, { connection: duplicateClient(th.redis), prefix: th.keys.queuePrefix });
    queues.push(acts);
    await acts.add('x', { i: 'nobody', x: 'e', s: 0, n: 42, p: null }, { jobId: 'bad-1' });
    await until(async () => (sample(await scrape(), 'durabull_queue_jobs', { hub, queue: 'activity', state: 'failed' }) === 1 ? true : undefined), 'a failed job');
    expect(sample(await scrape(), 'durabull_queue_jobs', { hub, queue: ORCHESTRATOR_QUEUE, state: 'failed' })).toBe(0);
  });

  it('write the charts’ per-minute counters and gauge samples to Redis', async () => {
    // Written by flushStats() below, not by the timer (an hour).
    th = await createTestHub({ orchestrators, activities }, { statsIntervalMs: 3_600_000 });
    const worker = th.workers[0]!;
    for (let i = 0; i < 3; i++) await th.client.startNew('Chain', { instanceId: `c-${i}`, input: i });
    for (let i = 0; i < 3; i++) await th.client.waitForCompletion(`c-${i}`);
    await th.client.startNew('Waits', { instanceId: 'waits' });
    await until(async () => ((await th!.client.getStatus('waits'))?.runtimeStatus === 'Running' ? true : undefined));
    let stats = await readHubStats(worker.backend, { minutes: 2 });
    const total = (xs: (number | null)[]) => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
    expect(total(stats.counters.episodes)).toBe(0); // nothing written yet
    await worker.flushStats();
    stats = await readHubStats(worker.backend, { minutes: 2 });
    expect(total(stats.counters.episodes)).toBe(10); // 3 per chain, 1 for the waiting one
    expect(total(stats.counters.activities)).toBe(6);
    expect(total(stats.counters.instancesCompleted)).toBe(3);
    expect(total(stats.latency.activity.count)).toBe(6);
    expect(total(stats.latency.instance.count)).toBe(3);
    expect(stats.latency.activity.p50.some((v) => v !== null && v >= 0)).toBe(true);
    // The gauge sample of this minute (the last one there is, should the minute have turned meanwhile).
    const lastSample = (xs: (number | null)[]) => xs.filter((v) => v !== null).at(-1);
    expect(lastSample(stats.statuses.Running)).toBe(1);
    expect(lastSample(stats.statuses.Completed)).toBe(3);
    expect(lastSample(stats.queues.activity.failed)).toBe(0);
    // Every minute's hash expires: the retention bound.
    const key = th.keys.stats(Math.floor(Date.now() / 60_000));
    const ttl = await th.redis.pttl(key);
    expect(ttl).toBeGreaterThan(60 * 60_000);
    expect(ttl).toBeLessThanOrEqual(122 * 60_000);
    // statsIntervalMs 0: nothing is counted.
    const quiet = await th.startWorker({ statsIntervalMs: 0 });
    await quiet.flushStats();
    expect(total((await readHubStats(worker.backend, { minutes: 2 })).counters.episodes)).toBe(10);
  });

  it('merge into the application’s registry, can be shared by workers, and can be turned off', async () => {
    th = await createTestHub({ orchestrators, activities }, { startWorker: false });
    const shared = new DurabullMetrics();
    const a = await th.startWorker({ metrics: shared, statsIntervalMs: 0 });
    const b = await th.startWorker({ metrics: shared, statsIntervalMs: 0 });
    expect(a.metrics).toBe(shared);
    expect(b.metrics).toBe(shared);
    const app = new Registry();
    const own = new Counter({ name: 'app_requests_total', help: 'requests', registers: [app] });
    own.inc();
    shared.registerIn(app);
    await th.client.startNew('Chain', { instanceId: 'merged', input: 0 });
    await th.client.waitForCompletion('merged');
    const text = await app.metrics();
    expect(sample(text, 'app_requests_total')).toBe(1);
    expect(sample(text, 'durabull_episodes_total', { hub: th.hub, orchestrator: 'Chain' })).toBe(3);
    expect(sample(text, 'durabull_instances', { hub: th.hub, status: 'Completed' })).toBe(1);

    const off = await th.startWorker({ metrics: false, statsIntervalMs: 0 });
    expect(off.metrics).toBeUndefined();
    expect(() => new DurabullWorker({ registry: a.registry, metrics: false, metricsPort: 9464 })).toThrow(
      'DurabullWorker: options.metricsPort must be left out when options.metrics is false (there is nothing to serve), got number 9464',
    );
    expect(() => new DurabullWorker({ registry: a.registry, metricsPort: 70_000 })).toThrow(ValidationError);
    expect(() => new DurabullWorker({ registry: a.registry, metrics: 'yes' as never })).toThrow('DurabullWorker: options.metrics must be a boolean or a DurabullMetrics, got string "yes"');
    expect(() => new DurabullWorker({ registry: a.registry, statsIntervalMs: -1 })).toThrow(/options\.statsIntervalMs/);
  });
});
