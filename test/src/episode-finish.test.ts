/**
 * A worker that runs no activities commits an episode and completes the orchestrator job that ran
 * it in one script (packages/redis/src/job-composites.ts `finishEpisode`,
 * packages/worker/src/queue-worker.ts): the job gone with its `completed` event, the same history as
 * with the two apart; and the script completes the job only when the commit applied or found the
 * episode stale, never when it refused it (the worker runs that episode again under the same job).
 */
import { type OrchestrationContext } from '@durabull/core';
import { COMMIT_EPISODE_KEYS, ORCHESTRATOR_QUEUE, checkHub, compositeLua } from '@durabull/redis';
import { type DurabullWorker } from '@durabull/worker';
import { pack } from 'msgpackr';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { QueueWorker } from '../../packages/worker/src/queue-worker.js';
import { type TestHub, createTestHub, queueTally } from './helpers/hub.js';
import { doubleThrice, historyShape } from './helpers/orchestration.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});

function* fanOut(ctx: OrchestrationContext, n: number): Generator<unknown, number, number[]> {
  const parts = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Double', i)));
  return parts.reduce((a, b) => a + b, 0);
}

/** An orchestrator-only and an activity-only worker on a new hub. */
async function splitHub(): Promise<{ th: TestHub; orch: DurabullWorker }> {
  // Starts queue their first episode as a job (not handed to the worker: sticky-starts.test.ts).
  const th = await createTestHub({ orchestrators: { Chain: doubleThrice, FanOut: fanOut }, activities: { Double: async (x: number) => x * 2 } }, { startWorker: false, stickyStarts: false });
  hubs.push(th);
  const orch = await th.startWorker({ activities: false });
  await th.startWorker({ orchestrators: false });
  return { th, orch };
}

/** The orchestrator queue's jobs in every partition, and its `completed` events. */
async function orchestratorQueue(th: TestHub): Promise<{ jobs: number; completed: number }> {
  const { jobs, events } = await queueTally(th, ORCHESTRATOR_QUEUE, ['active', 'wait', 'delayed', 'failed'], 'completed');
  return { jobs, completed: events };
}

describe('an orchestrator-only worker', () => {
  it("completes an episode's job with its commit: the job gone with its completed event, the history of the two steps", async () => {
    const { th, orch } = await splitHub();
    const ids = await Promise.all([1, 2, 3, 4].map((x) => th.client.startNew('Chain', { input: x })));
    const fan = await th.client.startNew('FanOut', { input: 20 });
    const done = await Promise.all(ids.map((id) => th.client.waitForCompletion(id, { timeoutMs: 15_000, showHistory: true })));
    expect(done.map((s) => s.output)).toEqual([8, 16, 24, 32]);
    expect((await th.client.waitForCompletion(fan, { timeoutMs: 15_000 })).output).toBe(380);
    // Each start's job (and any wake job) was completed by its episode's commit.
    expect(orch.stats.committedOnFinish).toBeGreaterThanOrEqual(5);
    const q = await orchestratorQueue(th);
    expect(q.jobs).toBe(0);
    expect(q.completed).toBe(orch.stats.committedOnFinish);

    // Without the composite (BullMQ's own completion after the commit): the same history.
    vi.spyOn(QueueWorker.prototype, 'enableFinish').mockResolvedValue(false);
    const plain = await splitHub();
    const id2 = await plain.th.client.startNew('Chain', { input: 1 });
    const st2 = await plain.th.client.waitForCompletion(id2, { timeoutMs: 15_000, showHistory: true });
    expect(st2.output).toBe(8);
    expect(plain.orch.stats.committedOnFinish).toBe(0);
    expect(historyShape(done[0]!.history)).toEqual(historyShape(st2.history));
    expect((await orchestratorQueue(plain.th)).jobs).toBe(0);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });
});

describe('the finishEpisode script', () => {
  it('completes the job after a stale commit (-2), not after a refused one (-6)', async () => {
    const th = await createTestHub({ orchestrators: {}, activities: {} }, { startWorker: false });
    hubs.push(th);
    const redis = th.client.backend.forInstance('x').redis;
    const base = `${th.client.backend.forInstance('x').keys.keyBase}fe-test:`;
    const keys = Array.from({ length: COMMIT_EPISODE_KEYS }, (_, k) => `${base}k${k}`);
    const marker = `${base}finished`;
    // A stand-in for BullMQ's moveToFinished: one key, records that it ran.
    const lua = compositeLua('finishEpisode', "redis.call('SET', KEYS[1], ARGV[1]) return 7");
    const commit = (a: Record<number, string>) => {
      const A = Array.from({ length: 31 }, (_, k) => a[k + 1] ?? '');
      return [pack(A), '', '', '', ''];
    };
    const run = async (a: Record<number, string>) => {
      const argv = commit(a);
      return redis.eval(lua, keys.length + 1, ...keys, marker, argv.length, ...argv, 'ran');
    };
    // No such instance: the episode is stale, the job is done with.
    expect(await run({ 1: '1', 2: 'exec' })).toEqual([[-2], 7]);
    expect(await redis.getdel(marker)).toBe('ran');
    // The instance is where the episode started, but the history is not the one it ran from: refused.
    await redis.hset(keys[0]!, { version: '1', exec: 'exec', status: 'Running', hlast: '1-1' });
    expect(await run({ 1: '1', 2: 'exec', 23: '|2-2|1' })).toEqual([[-6], null]);
    expect(await redis.exists(marker)).toBe(0);
    await redis.del(...keys);
  });
});
