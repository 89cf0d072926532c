/**
 * A worker that runs no episodes (activities only) delivers an activity's result and completes its
 * BullMQ job in one script (packages/redis/src/job-composites.ts, packages/worker/src/queue-worker.ts):
 * our deliverEvent, then BullMQ's own moveToFinished with the keys and arguments BullMQ built. What
 * it writes must be what the two steps wrote: the same history, the job gone from the queue with its
 * `completed` event, the next job fetched; and a completion BullMQ refuses (the job's lock is gone)
 * leaves the result delivered, so the job's next delivery does not run the activity again.
 */
import { type OrchestrationContext } from '@durabull/core';
import { ACTIVITY_QUEUE, checkHub } from '@durabull/redis';
import { type DurabullWorker } from '@durabull/worker';
import { QueueWorker } from '../../packages/worker/src/queue-worker.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type TestHub, createTestHub, queueTally } from './helpers/hub.js';
import { Gate, doubleThrice, historyShape, waitUntil } from './helpers/orchestration.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  Gate.releaseAll();
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});

function* fanOut(ctx: OrchestrationContext, n: number): Generator<unknown, number, number[]> {
  const parts = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Double', i)));
  return parts.reduce((a, b) => a + b, 0);
}

/** An orchestrator-only and an activity-only worker on a new hub. */
async function splitHub(double: (x: number) => Promise<number>, activityOpts = {}): Promise<{ th: TestHub; acts: DurabullWorker }> {
  const th = await createTestHub({ orchestrators: { Chain: doubleThrice, FanOut: fanOut }, activities: { Double: double } }, { startWorker: false });
  hubs.push(th);
  await th.startWorker({ activities: false });
  const acts = await th.startWorker({ orchestrators: false, ...activityOpts });
  return { th, acts };
}

/** The activity queue's jobs in every partition, and its `completed` events. */
async function activityQueue(th: TestHub): Promise<{ jobs: number; completed: number }> {
  const { jobs, events } = await queueTally(th, ACTIVITY_QUEUE, ['active', 'wait', 'delayed', 'completed', 'failed'], 'completed');
  return { jobs, completed: events };
}

describe('an activity-only worker', () => {
  it('delivers each result with its job\'s completion: the history of the two steps, the jobs gone with their completed events', async () => {
    const { th, acts } = await splitHub(async (x) => x * 2);
    const chain = await th.client.startNew('Chain', { input: 1 });
    const fan = await th.client.startNew('FanOut', { input: 30 });
    const st = await th.client.waitForCompletion(chain, { timeoutMs: 15_000, showHistory: true });
    expect(st.output).toBe(8);
    expect((await th.client.waitForCompletion(fan, { timeoutMs: 15_000 })).output).toBe(870);
    // Every result went with its job's completion.
    expect(acts.stats.activities).toBe(33);
    expect(acts.stats.deliveredOnFinish).toBe(33);
    expect(await activityQueue(th)).toEqual({ jobs: 0, completed: 33 });

    // Without the composite (BullMQ's own completion after a deliverEvent): the same history.
    vi.spyOn(QueueWorker.prototype, 'enableFinish').mockResolvedValue(false);
    const plain = await splitHub(async (x) => x * 2);
    const id2 = await plain.th.client.startNew('Chain', { input: 1 });
    const st2 = await plain.th.client.waitForCompletion(id2, { timeoutMs: 15_000, showHistory: true });
    expect(st2.output).toBe(8);
    expect(plain.acts.stats.deliveredOnFinish).toBe(0);
    expect(historyShape(st.history)).toEqual(historyShape(st2.history));
    expect(await activityQueue(plain.th)).toEqual({ jobs: 0, completed: 3 });
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });

  it('a completion BullMQ refuses (the job lost its lock) leaves the result delivered: the job comes back and does not run again', async () => {
    const gate = new Gate();
    const runs = new Map<number, number>();
    const { th, acts } = await splitHub(
      async (x) => {
        runs.set(x, (runs.get(x) ?? 0) + 1);
        if (x === 2) await gate.pass();
        return x * 2;
      },
      // The stalled-job check hands the job back soon after.
      { stalledIntervalMs: 300 },
    );
    const id = await th.client.startNew('Chain', { input: 1 });
    await gate.entered;
    // The second step's job is active; its lock goes, as when it expired while the process was frozen.
    const p = th.client.backend.forInstance(id);
    const exec = (await th.client.getStatus(id))!.executionId;
    const lock = `${p.keys.jobPrefix(ACTIVITY_QUEUE)}a-${id}-${exec}-1:lock`;
    expect(await p.redis.del(lock)).toBe(1);
    gate.open();
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000, showHistory: true });
    expect(st.output).toBe(8);
    // The job came back (the stalled check found it active without a lock) and found its task done.
    await waitUntil('the activity queue is empty', async () => (await activityQueue(th)).jobs === 0);
    const events = (await p.redis.xrange(p.keys.jobPrefix(ACTIVITY_QUEUE) + 'events', '-', '+')) as [string, string[]][];
    expect(events.filter(([, f]) => f[1] === 'stalled').map(([, f]) => f[3])).toEqual([`a-${id}-${exec}-1`]);
    expect([...runs.entries()]).toEqual([
      [1, 1],
      [2, 1],
      [4, 1],
    ]);
    expect(st.history!.filter((e) => e.type === 'TaskCompleted')).toHaveLength(3);
    expect(acts.stats.deliveredOnFinish).toBe(3);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });
});
