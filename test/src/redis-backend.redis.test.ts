/**
 * The Redis state transitions driven by hand (no workers): optimistic concurrency of commits,
 * the fan-in counter, wakes for events that arrive during an episode, duplicate and late
 * deliveries, and the outbox sweep.
 */
import {
  type HistoryEvent,
  InstanceNotFoundError,
  Registry,
  StaleEpisodeError,
  executeOrchestration,
} from '@durabull/core';
import { InstanceFinishedError, RedisBackend, encodeEvent, type RedisClient } from '@durabull/redis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deleteKeysByPattern, redisUrl, uniqueHub, connectRedis, scanAll } from './helpers/redis.js';
import { historyShape } from './helpers/orchestration.js';

const registry = new Registry()
  .addOrchestrator('Fan3', function* (ctx) {
    const r: number[] = yield ctx.all([1, 2, 3].map((i) => ctx.callActivity('Sq', i)));
    return r.reduce((a, b) => a + b, 0);
  })
  .addOrchestrator('Chain2', function* (ctx) {
    const a: number = yield ctx.callActivity('Sq', 2);
    return yield ctx.callActivity('Sq', a);
  })
  .addOrchestrator('AnyOf2', function* (ctx) {
    const winner = yield ctx.any([ctx.callActivity('Sq', 1), ctx.callActivity('Sq', 2)]);
    return winner.result;
  });

let backend: RedisBackend;
let redis: RedisClient;
beforeEach(() => {
  backend = new RedisBackend({ connection: redisUrl(), hub: uniqueHub('b') });
  redis = connectRedis();
});
afterEach(async () => {
  await deleteKeysByPattern(redis, backend.keys.pattern);
  await backend.close();
  await redis.quit();
});

/** Runs one episode by hand (as `on`, default `backend`); returns the commit (not dispatched unless asked). */
async function episode(id: string, opts: { between?: () => Promise<void>; on?: RedisBackend; viaOutbox?: boolean } = {}) {
  const on = opts.on ?? backend;
  const loaded = (await on.loadEpisode(id))!;
  const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
  const result = await executeOrchestration(registry, loaded.history, [...prefix, ...loaded.inbox.map((m) => m.event)]);
  await opts.between?.();
  const commit = await on.commitEpisode(loaded, prefix, result, Date.now(), opts.viaOutbox ? { activityJobsViaOutbox: true } : {});
  return { loaded, prefix, result, commit };
}

/** Waits until the acks of what `backend` dispatched have reached Redis (sent at the next turn of the event loop, in order). */
async function acksSent(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await backend.redis.ping();
}

/** Runs `fn` with a backend of its own on the same hub: another worker, with its own cache. */
async function asOtherWorker(fn: (other: RedisBackend) => Promise<void>): Promise<void> {
  const other = new RedisBackend({ connection: redisUrl(), hub: backend.keys.hub });
  try {
    await fn(other);
  } finally {
    await other.close();
  }
}

const completed = (seq: number, result: unknown): HistoryEvent => ({ type: 'TaskCompleted', taskScheduledId: seq, result, timestamp: Date.now() });

describe('commitEpisode', () => {
  it('commits once: a second commit of the same episode is stale and writes nothing', async () => {
    const { executionId } = await backend.startInstance('Fan3', 'occ', undefined);
    const { loaded, prefix, result } = await episode('occ');
    const history = await backend.getHistory('occ');
    await expect(backend.commitEpisode(loaded, prefix, result)).rejects.toBeInstanceOf(StaleEpisodeError);
    expect(await backend.getHistory('occ')).toEqual(history);
    const st = await backend.getState('occ');
    expect(st).toMatchObject({ version: 1, episodes: 1, runtimeStatus: 'Running', executionId, scheduled: false });
    expect(history.filter((e) => e.type === 'TaskScheduled')).toHaveLength(3);
  });
});

describe('commitEpisode with a direct result', () => {
  /** Runs the episode a result of task `seq` runs from the backend's cache, and commits it direct. */
  async function direct(id: string, seq: number, value: number, opts: { ackJobId?: string } = {}) {
    const x = (await backend.getState(id))!.executionId;
    const loaded = backend.cachedEpisodeFor(id, x, seq);
    expect(loaded, 'the last commit left the code waiting on this task').toBeDefined();
    const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
    const event = completed(seq, value);
    const result = await executeOrchestration(registry, loaded!.history, [...prefix, event]);
    return backend.commitEpisode(loaded!, prefix, result, Date.now(), { direct: { seq, encoded: encodeEvent(event) }, ...opts });
  }

  it('appends the result and the episode in one script, the same history as through the inbox', async () => {
    await backend.startInstance('Chain2', 'd1', undefined);
    await episode('d1');
    const x = (await backend.getState('d1'))!.executionId;
    // A result for a task the code does not wait on has no cached episode.
    expect(backend.cachedEpisodeFor('d1', x, 1)).toBeUndefined();
    // The eager activity's outbox entry goes with the commit.
    await redis.hset(backend.keys.outbox, `a-d1-${x}-0`, 'A{}');
    const first = await direct('d1', 0, 4, { ackJobId: `a-d1-${x}-0` });
    expect(first.refused).toBeUndefined();
    expect(await redis.hexists(backend.keys.outbox, `a-d1-${x}-0`)).toBe(0);
    // The next activity's job is in BullMQ (added by the commit), not in the outbox.
    expect(first.outbox).toEqual([]);
    expect(await backend.activityQueue.getJobState(`a-d1-${x}-1`)).toBe('waiting');
    const last = await direct('d1', 1, 16);
    expect(last.refused).toBeUndefined();
    const st = (await backend.getState('d1'))!;
    expect(st).toMatchObject({ runtimeStatus: 'Completed', output: 16, episodes: 3 });
    // The same instance through the inbox, for comparison.
    const { executionId: y } = await backend.startInstance('Chain2', 'q1', undefined);
    await episode('q1');
    await backend.deliverEvent('q1', y, 'c', 0, completed(0, 4));
    await episode('q1');
    await backend.deliverEvent('q1', y, 'c', 1, completed(1, 16));
    await episode('q1');

    expect(historyShape(await backend.getHistory('d1'))).toEqual(historyShape(await backend.getHistory('q1')));
  });

  it('writes nothing when an event reached the instance since the cached episode', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'd2', undefined);
    await episode('d2');
    const raised: HistoryEvent = { type: 'EventRaised', name: 'other', input: 1, timestamp: Date.now() };
    // The event is buffered and wakes the instance: the cached episode no longer holds.
    const delivered = await backend.deliverEvent('d2', x, 'e', undefined, raised, { dispatch: false });
    expect(delivered.wakeJobId).toBeDefined();
    await redis.hset(backend.keys.outbox, `a-d2-${x}-0`, 'A{}');
    const history = await backend.getHistory('d2');
    const before = await redis.hgetall(backend.keys.state('d2'));
    const res = await direct('d2', 0, 4, { ackJobId: `a-d2-${x}-0` });
    expect(res.refused).toBe(true);
    expect(await backend.getHistory('d2')).toEqual(history);
    expect(await redis.hgetall(backend.keys.state('d2'))).toEqual(before);
    expect(await redis.smembers(backend.keys.pending('d2'))).toEqual(['0']);
    expect(await redis.hexists(backend.keys.outbox, `a-d2-${x}-0`)).toBe(1);
    // Delivered the usual way, the result completes the step.
    expect((await backend.deliverEvent('d2', x, 'c', 0, completed(0, 4))).status).toBe('delivered');
  });

  it('is stale, writing nothing, after another worker committed the step', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'd3', undefined);
    await episode('d3');
    // Another worker takes the result through the inbox and commits the next episode.
    await asOtherWorker(async (other) => {
      await other.deliverEvent('d3', x, 'c', 0, completed(0, 4));
      await episode('d3', { on: other });
    });
    const history = await backend.getHistory('d3');
    await expect(direct('d3', 0, 4)).rejects.toBeInstanceOf(StaleEpisodeError);
    expect(await backend.getHistory('d3')).toEqual(history);
  });
});

describe('after Redis lost its last writes (a restart that cut the append-only file)', () => {
  /** Every key of the hub, dumped, to put back later as a restart from an older file would. */
  async function snapshot(): Promise<[string, Buffer][]> {
    const keys = await scanAll(redis, backend.keys.pattern);
    const dumps = await Promise.all(keys.map(async (k) => [k, await redis.dumpBuffer(k)] as const));
    return dumps.filter((d): d is [string, Buffer] => d[1] !== null);
  }
  async function restore(snap: [string, Buffer][]): Promise<void> {
    await deleteKeysByPattern(redis, backend.keys.pattern);
    for (const [k, v] of snap) await redis.restore(k, 0, v);
  }

  it('a worker whose cached history holds a lost episode reads the history again, and its direct commit is refused', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'lost', undefined);
    const before = await snapshot();
    await episode('lost'); // cached by `backend`, then lost:
    await restore(before);
    // Another worker runs the first episode again: same version, a new history entry.
    await asOtherWorker(async (other) => void (await episode('lost', { on: other })));
    const truth = await backend.getHistory('lost');
    // The stale cache would commit the next step from a history Redis no longer has.
    const cachedEp = backend.cachedEpisodeFor('lost', x, 0)!;
    expect(cachedEp).toBeDefined();
    const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
    const event = completed(0, 4);
    const result = await executeOrchestration(registry, cachedEp.history, [...prefix, event]);
    const res = await backend.commitEpisode(cachedEp, prefix, result, Date.now(), { direct: { seq: 0, encoded: encodeEvent(event) } });
    expect(res.refused).toBe(true);
    expect(await backend.getHistory('lost')).toEqual(truth);
    // Delivered the usual way, the next episode replays exactly what Redis holds.
    await backend.deliverEvent('lost', x, 'c', 0, event);
    const { loaded } = await episode('lost');
    expect(loaded.history.filter((e) => e.type === 'ExecutionStarted')).toHaveLength(1);
    expect(loaded.history.map((e) => e.type)).toEqual(truth.map((e) => e.type));
    expect(await backend.getHistory('lost')).toHaveLength(truth.length + 4);
  });
});

describe('a start that meets keys of an instance without state', () => {
  it('never appends to them: the new history holds its own ExecutionStarted and nothing else', async () => {
    const { executionId: old } = await backend.startInstance('Fan3', 'left', undefined);
    await episode('left');
    await backend.deliverEvent('left', old, 'c', 0, completed(0, 1));
    // The state hash is gone, its history, inbox and pending set are not (a Redis that lost or re-applied writes).
    await redis.del(backend.keys.state('left'));
    expect(await redis.exists(backend.keys.history('left'), backend.keys.inbox('left'), backend.keys.pending('left'))).toBe(3);
    const { executionId: x } = await backend.startInstance('Chain2', 'left', undefined);
    expect(x).not.toBe(old);
    expect(await redis.exists(backend.keys.history('left'), backend.keys.pending('left'))).toBe(0);
    const { loaded } = await episode('left');
    expect(loaded.history).toEqual([]);
    expect(loaded.inbox.map((m) => m.event)).toEqual([expect.objectContaining({ type: 'ExecutionStarted', executionId: x, name: 'Chain2' })]);
    const history = await backend.getHistory('left');
    expect(history.filter((e) => e.type === 'ExecutionStarted')).toHaveLength(1);
    expect(history.filter((e) => e.type === 'TaskScheduled')).toEqual([expect.objectContaining({ taskId: 0, name: 'Sq', input: 2 })]);
    expect(await redis.smembers(backend.keys.pending('left'))).toEqual(['0']);
  });
});

describe('an inbox that changed under the episode', () => {
  it('is not committed: the episode runs again on the inbox as it is', async () => {
    const { executionId: x } = await backend.startInstance('Fan3', 'inb', undefined);
    await episode('inb');
    for (const [seq, v] of [[0, 1], [1, 4], [2, 9]] as const) await backend.deliverEvent('inb', x, 'c', seq, completed(seq, v));
    const loaded = (await backend.loadEpisode('inb'))!;
    expect(loaded.inbox).toHaveLength(3);
    // As after a Redis restart that lost the last delivery and got it again, from another run of the activity.
    const raw = await redis.lrangeBuffer(backend.keys.inbox('inb'), 0, -1);
    await redis.lset(backend.keys.inbox('inb'), 2, Buffer.concat([Buffer.from('c2|'), encodeEvent(completed(2, 16))]));
    const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
    const result = await executeOrchestration(registry, loaded.history, [...prefix, ...loaded.inbox.map((m) => m.event)]);
    expect(result.output).toBe(14);
    const history = await backend.getHistory('inb');
    await expect(backend.commitEpisode(loaded, prefix, result)).rejects.toThrow(/inbox is not what this episode read/);
    expect(await backend.getHistory('inb')).toEqual(history);
    expect(await redis.llen(backend.keys.inbox('inb'))).toBe(raw.length);
    // Run again, it sees the result that is stored.
    const again = await episode('inb');
    expect(again.result.output).toBe(21);
    expect((await backend.getState('inb'))!.output).toBe(21);
  });
});

describe('sub-orchestration starts still queued when the parent is terminated', () => {
  const child = (parentId: string, parentExec: string) => backend.startInstance('Chain2', `${parentId}-child`, 1, { parent: { instanceId: parentId, executionId: parentExec, taskId: 0 } });

  it('do not start after a recursive terminate, and nothing of the child is written', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'tree', undefined);
    await backend.terminate('tree', 'stop', Date.now(), true);
    const before = (await scanAll(redis, backend.keys.pattern)).sort();
    expect(await child('tree', x)).toMatchObject({ created: false });
    expect(await backend.getState('tree-child')).toBeUndefined();
    expect((await scanAll(redis, backend.keys.pattern)).sort()).toEqual(before);
  });

  it('still start after a plain terminate, and for a new execution under a recursively terminated id', async () => {
    const { executionId: x } = await backend.startInstance('Chain2', 'plain', undefined);
    await backend.terminate('plain', 'stop');
    expect(await child('plain', x)).toMatchObject({ created: true });
    expect(await backend.getState('plain-child')).toMatchObject({ runtimeStatus: 'Pending', parent: { instanceId: 'plain', executionId: x } });
    await backend.startInstance('Chain2', 'again', undefined);
    await backend.terminate('again', 'stop', Date.now(), true);
    const { executionId: z } = await backend.startInstance('Chain2', 'again', undefined); // started again: not terminated
    expect(await child('again', z)).toMatchObject({ created: true });
  });
});

describe('fan-in counter', () => {
  it('wakes the orchestrator only when the last awaited result arrives', async () => {
    const { executionId: x } = await backend.startInstance('Fan3', 'fan', undefined);
    await episode('fan');
    expect(await backend.deliverEvent('fan', x, 'c', 0, completed(0, 1))).toEqual({ status: 'delivered' });
    expect(await backend.deliverEvent('fan', x, 'c', 2, completed(2, 9))).toEqual({ status: 'delivered' });
    // At-least-once delivery: a second result for task 2 is dropped.
    expect(await backend.deliverEvent('fan', x, 'c', 2, completed(2, 9))).toEqual({ status: 'duplicate' });
    const last = await backend.deliverEvent('fan', x, 'c', 1, completed(1, 4));
    expect(last.status).toBe('delivered');
    expect(last.wakeJobId).toBe(`w-fan-${x}-1`);
    const { result } = await episode('fan');
    expect(result.status).toBe('Completed');
    expect(result.output).toBe(14);
    expect((await backend.getState('fan'))!.episodes).toBe(2);
  });

  it('wakes at once on a failure, and on the first result of ctx.any', async () => {
    const { executionId: x } = await backend.startInstance('Fan3', 'fail', undefined);
    await episode('fail');
    const failed: HistoryEvent = {
      type: 'TaskFailed',
      taskScheduledId: 1,
      failure: { errorName: 'Error', message: 'no' },
      timestamp: Date.now(),
    };
    expect((await backend.deliverEvent('fail', x, 'f', 1, failed)).wakeJobId).toBeTruthy();

    const { executionId: y } = await backend.startInstance('AnyOf2', 'any', undefined);
    await episode('any');
    expect((await backend.deliverEvent('any', y, 'c', 1, completed(1, 4))).wakeJobId).toBeTruthy();
    const { result } = await episode('any');
    expect(result.output).toBe(4);
    // The loser's late result is recorded but wakes nothing: the instance has finished.
    await expect(backend.deliverEvent('any', y, 'c', 0, completed(0, 1))).rejects.toBeInstanceOf(InstanceFinishedError);
  });

  it('drops results of tasks that are not pending and completes on the last awaited one', async () => {
    const { executionId: x } = await backend.startInstance('Fan3', 'race', undefined);
    await episode('race');
    await backend.deliverEvent('race', x, 'c', 0, completed(0, 1));
    await backend.deliverEvent('race', x, 'c', 1, completed(1, 4));
    const wake = await backend.deliverEvent('race', x, 'c', 2, completed(2, 9));
    expect(wake.wakeJobId).toBeTruthy();
    // Episode 2 sees all three results.
    const second = await episode('race');
    expect(second.result.status).toBe('Completed');

    // Results for tasks not yet committed as pending (none can exist in practice: work is queued only after the commit) are dropped.
    const { executionId: z } = await backend.startInstance('Fan3', 'race2', undefined);
    const first = await episode('race2', {
      between: async () => {
        for (const s of [0, 1, 2]) await backend.deliverEvent('race2', z, 'c', s, completed(s, s));
      },
    });
    // The three deliveries happened before the tasks were even committed as pending: dropped as unknown.
    expect(first.commit.outbox.some(([id]) => id.startsWith('w-'))).toBe(false);
  });

  it('keeps a wake for results that arrive between load and commit of a later episode', async () => {
    const { executionId: x } = await backend.startInstance('Fan3', 'mid', undefined);
    await episode('mid');
    await backend.deliverEvent('mid', x, 'c', 0, completed(0, 1));
    await backend.deliverEvent('mid', x, 'c', 1, completed(1, 4));
    // Force an episode now (as a stale duplicate job would) while task 2 is still missing,
    // and deliver task 2 during it: the commit must leave a wake behind.
    await redis.hset(backend.keys.state('mid'), 'scheduled', 1);
    const ep = await episode('mid', { between: async () => void (await backend.deliverEvent('mid', x, 'c', 2, completed(2, 9))) });
    expect(ep.result.status).toBe('Running');
    const wake = ep.commit.outbox.find(([id]) => id.startsWith('w-'));
    expect(wake?.[0]).toBe(`w-mid-${x}-2`);
    expect((await backend.getState('mid'))!.scheduled).toBe(true);
    const final = await episode('mid');
    expect(final.result.output).toBe(14);
  });
});

describe('deliverEvent', () => {
  it('refuses unknown instances and drops events of an older execution', async () => {
    await expect(backend.deliverEvent('ghost', '', 'e', undefined, completed(0, 1))).rejects.toBeInstanceOf(InstanceNotFoundError);
    await backend.startInstance('Fan3', 'old', undefined);
    await episode('old');
    expect(await backend.deliverEvent('old', 'not-this-exec', 'c', 0, completed(0, 1))).toEqual({ status: 'stale' });
  });
});

describe('outbox', () => {
  it('is drained by the sweep when the committing worker died before dispatching', async () => {
    await backend.startInstance('Fan3', 'crash', undefined);
    const { commit } = await episode('crash', { viaOutbox: true });
    // The worker "crashed" here: entries are in the outbox, not in BullMQ.
    expect(commit.outbox).toHaveLength(3);
    expect(await redis.zcard(backend.keys.outboxIndex)).toBe(3);
    expect(await backend.activityQueue.getJobCountByTypes('wait')).toBe(0);
    expect(await backend.sweepOutbox(0)).toBe(3);
    expect(await backend.activityQueue.getJobCountByTypes('wait')).toBe(3);
    expect(await redis.zcard(backend.keys.outboxIndex)).toBe(0);
    // Dispatching the same entries again adds no job: ids are derived from (instance, execution, seq).
    await backend.dispatch(commit.outbox);
    expect(await backend.activityQueue.getJobCountByTypes('wait')).toBe(3);
  });
});

describe('outbox acks', () => {
  const outboxIds = async () => (await redis.hkeys(backend.keys.outbox)).sort();

  it('keep an entry whose job this Redis does not hold and whose task has no result: the sweep queues it', async () => {
    // As after a Redis crash that lost the job's add but kept the commit, the ack arriving after the restart.
    await backend.startInstance('Fan3', 'ack', undefined);
    await acksSent();
    const { commit } = await episode('ack', { viaOutbox: true });
    const ids = commit.outbox.map(([id]) => id);
    await backend.ackOutbox(ids, true);
    expect(await outboxIds()).toEqual([...ids].sort());
    expect(await backend.sweepOutbox(0)).toBe(3);
    expect(await backend.activityQueue.getJobCountByTypes('wait')).toBe(3);
    expect(await outboxIds()).toEqual([]);
  });

  it('remove an entry whose job is held, or whose task has its result, or whose wake has passed', async () => {
    const { executionId: x } = await backend.startInstance('Fan3', 'acked', undefined);
    await acksSent();
    const { commit } = await episode('acked', { viaOutbox: true });
    const [a0, a1, a2] = commit.outbox;
    await backend.activityQueue.add('Sq', {}, { jobId: a0![0] }); // held
    await backend.deliverEvent('acked', x, 'c', 1, completed(1, 4), { dispatch: false }); // settled
    // A wake for a version the instance has passed.
    await redis.hset(backend.keys.outbox, `w-acked-${x}-0`, `Wacked|${x}|0`);
    await backend.ackOutbox([a0![0], a1![0], a2![0], `w-acked-${x}-0`], true);
    expect(await outboxIds()).toEqual([a2![0]]);
  });

  it('keep a batch until each of its entries is safe, and the sweep queues only those that are not', async () => {
    const big = new Registry().addOrchestrator('Fan100', function* (ctx) {
      return yield ctx.all(Array.from({ length: 100 }, (_, i) => ctx.callActivity('Sq', i)));
    });
    const { executionId: x } = await backend.startInstance('Fan100', 'batch', undefined);
    await acksSent();
    const loaded = (await backend.loadEpisode('batch'))!;
    const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
    const commit = await backend.commitEpisode(loaded, prefix, await executeOrchestration(big, loaded.history, [...prefix, ...loaded.inbox.map((m) => m.event)]));
    expect(commit.outbox).toHaveLength(1);
    // 60 results are in (their jobs ran and were removed), the other 40 jobs were lost.
    for (let seq = 0; seq < 60; seq++) await backend.deliverEvent('batch', x, 'c', seq, completed(seq, seq * seq), { dispatch: false });
    await backend.ackOutbox([commit.outbox[0]![0]], true);
    expect(await outboxIds()).toEqual([commit.outbox[0]![0]]);
    expect(await backend.sweepOutbox(0)).toBe(1);
    const waiting = await backend.activityQueue.getJobs(['wait'], 0, -1);
    expect(waiting.map((j) => j.data.s as number).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => 60 + i));
    expect(await outboxIds()).toEqual([]);
  });
});

describe('large episodes', () => {
  it('commits a fan-out of 40,000 as one history entry and one outbox entry, and reads it back', async () => {
    const big = new Registry().addOrchestrator('Big', function* (ctx, n: number) {
      const r: number[] = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Sq', i)));
      return r.length;
    });
    await backend.startInstance('Big', 'big', 40_000);
    const loaded = (await backend.loadEpisode('big'))!;
    const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
    const result = await executeOrchestration(big, loaded.history, [...prefix, ...loaded.inbox.map((m) => m.event)]);
    const commit = await backend.commitEpisode(loaded, prefix, result);
    // One batch outbox entry instead of 40,000; the history stream gains a handful of entries.
    expect(commit.outbox).toHaveLength(1);
    expect(commit.outbox[0]![0]).toMatch(/^b-big-/);
    expect(await redis.xlen(backend.keys.history('big'))).toBeLessThan(6);
    expect(await redis.scard(backend.keys.pending('big'))).toBe(40_000);
    const history = await backend.getHistory('big');
    const scheduled = history.filter((e) => e.type === 'TaskScheduled');
    expect(scheduled).toHaveLength(40_000);
    expect(scheduled.at(-1)).toMatchObject({ taskId: 39_999, name: 'Sq', input: 39_999 });
    // The dispatcher expands the batch into BullMQ jobs.
    await backend.dispatch(commit.outbox, { awaitCleanup: true });
    expect(await backend.activityQueue.getJobCountByTypes('wait')).toBe(40_000);
    expect(await redis.hlen(backend.keys.outbox)).toBe(0);
  });
});
