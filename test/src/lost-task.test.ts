/**
 * The checker's `lost-task` finding: a pending activity or timer whose job is gone from both the
 * outbox and BullMQ (deleted by hand, or lost with Redis data), or a sub-orchestration whose child
 * was never started and has no outbox entry, would never run. The checker reports it and, with
 * `repair`, queues the job (or the start) again from what history scheduled.
 */
import { Registry } from '@durabull/core';
import { activityJobId, checkHub, checkInstance, timerJobId } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { captureLog } from './helpers/log.js';
import { waitUntil } from './helpers/orchestration.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const registry = new Registry()
  .addOrchestrator('Two', function* (ctx, x: { n: number }) {
    const a: number = yield ctx.callActivity('Add', x);
    return yield ctx.callActivity('Add', { n: a });
  })
  .addActivity('Add', async (x: { n: number }) => x.n + 1);

/** A hub with a 'Two' instance whose first activity job waits in BullMQ (run by an orchestrator-only worker, closed since). */
async function firstActivityQueued() {
  th = await createTestHub({}, { startWorker: false });
  const id = await th.client.startNew('Two', { input: { n: 1 } });
  const orchestrator = await th.startWorker({ registry, activities: false });
  const x = (await th.client.getStatus(id))!.executionId;
  const jobId = activityJobId(id, x, 0);
  const queue = th.client.backend.forInstance(id).activityQueue;
  await waitUntil('the activity job is queued', async () => (await queue.getJobState(jobId)) === 'waiting');
  await orchestrator.close();
  return { hub: th, id, x, jobId, queue };
}

describe('lost activity tasks', () => {
  it('are reported once their job is gone everywhere, and queued again by repair', async () => {
    const later = () => ({ now: Date.now() + 60_000 });
    const { hub: th, id, x, jobId, queue } = await firstActivityQueued();

    // While the job waits, nothing is lost.
    expect((await checkInstance(th.client.backend, id, later())).findings).toEqual([]);
    await queue.remove(jobId);
    const report = await checkInstance(th.client.backend, id, later());
    expect(report.findings).toEqual([
      expect.objectContaining({ code: 'lost-task', message: 'activity task 0 pending with no outbox entry and no job in BullMQ' }),
    ]);
    // Not within the grace period: it may be on its way.
    expect((await checkInstance(th.client.backend, id)).findings).toEqual([]);

    const repaired = await checkInstance(th.client.backend, id, { ...later(), repair: true });
    expect(repaired.findings[0]).toMatchObject({ code: 'lost-task', repaired: '1 activity job queued again' });
    expect(await queue.getJobState(jobId)).toBe('waiting');
    expect((await queue.getJob(jobId))!.data).toEqual({ i: id, x, s: 0, n: 'Add', p: expect.any(String) });

    await th.startWorker({ registry });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(3);
    expect((await checkHub(th.client.backend, later())).findings).toEqual([]);
  });
});

describe("the workers' sweep", () => {
  it('queues lost tasks again on its own, and logs it', async () => {
    const { hub: th, id, jobId, queue } = await firstActivityQueued();
    await queue.remove(jobId); // lost with Redis data: no job, no outbox entry
    expect(await th.redis.hlen(th.keys.outbox)).toBe(0);

    const { logger, lines } = captureLog('warn');
    await th.startWorker({ registry, sweepIntervalMs: 100, logger });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(3);
    expect(lines.filter((l) => l.msg === 'Re-queued lost tasks')).toEqual([
      expect.objectContaining({ instanceId: id, tasks: [{ seq: 0, kind: 'activity' }] }),
    ]);
    expect((await checkHub(th.client.backend, { now: Date.now() + 60_000 })).findings).toEqual([]);
  });
});

describe('lost timers and sub-orchestration starts', () => {
  it('a timer whose delayed job is gone is reported and queued again for the same time', async () => {
    const timers = new Registry().addOrchestrator('Nap', function* (ctx) {
      yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 60_000));
      return 'woke';
    });
    th = await createTestHub({}, { startWorker: false });
    const worker = await th.startWorker({ registry: timers });
    const id = await th.client.startNew('Nap');
    const x = (await th.client.getStatus(id))!.executionId;
    const jobId = timerJobId(id, x, 0);
    const queue = th.client.backend.forInstance(id).orchestratorQueue;
    await waitUntil('the timer job is delayed', async () => (await queue.getJobState(jobId)) === 'delayed');
    const fireAt = (await queue.getJob(jobId))!.data.f as number;
    await worker.close();
    await queue.remove(jobId);
    const later = { now: Date.now() + 60_000 };
    expect((await checkInstance(th.client.backend, id, later)).findings).toEqual([
      expect.objectContaining({ code: 'lost-task', message: 'timer 0 pending with no outbox entry and no job in BullMQ' }),
    ]);
    const repaired = await checkInstance(th.client.backend, id, { ...later, repair: true });
    expect(repaired.findings[0]).toMatchObject({ code: 'lost-task', repaired: '1 timer job queued again' });
    const requeued = (await queue.getJob(jobId))!;
    expect(requeued.data).toEqual({ i: id, x, s: 0, f: fireAt });
    expect(await requeued.getState()).toBe('delayed');
    // Not a minute's wait: the queued-again timer fires now.
    await requeued.promote();
    await th.startWorker({ registry: timers });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe('woke');
    expect((await checkHub(th.client.backend, later)).findings).toEqual([]);
  });

  it('a sub-orchestration that was never started is reported and started by repair', async () => {
    const family = new Registry()
      .addOrchestrator('Parent', function* (ctx, n: number) {
        return yield ctx.callSubOrchestrator('Child', n, 'the-child');
      })
      .addOrchestrator('Child', function* (_ctx, n: number) {
        return n * 2;
      });
    th = await createTestHub({}, { startWorker: false });
    // A worker that loses every sub-orchestration start: it drops it, and its outbox entry is lost
    // too (as with Redis data lost). An ack alone would not remove it: the child does not exist.
    const lossy = await th.startWorker({ registry: family });
    let dropped = 0;
    const keptByAck: (string | null)[] = [];
    for (const part of lossy.backend.partitions) {
      const dispatch = part.dispatch.bind(part);
      part.dispatch = async (entries, opts) => {
        const starts = entries.filter(([, payload]) => payload[0] === 'S');
        if (starts.length > 0) {
          const ids = starts.map(([jobId]) => jobId);
          await part.ackOutbox(ids, true);
          keptByAck.push(...(await th!.redis.hmget(part.keys.outbox, ...ids)));
          await th!.redis.multi().hdel(part.keys.outbox, ...ids).zrem(part.keys.outboxIndex, ...ids).exec();
        }
        dropped += starts.length;
        return dispatch(entries.filter(([, payload]) => payload[0] !== 'S'), opts);
      };
    }
    const id = await th.client.startNew('Parent', { input: 21 });
    await waitUntil('the child start was dropped', () => dropped === 1);
    await lossy.close();
    expect(keptByAck).toEqual([expect.stringMatching(/^S/)]);
    expect(await th.client.getStatus('the-child')).toBeUndefined();
    const later = { now: Date.now() + 60_000 };
    expect((await checkInstance(th.client.backend, id, later)).findings).toEqual([
      expect.objectContaining({ code: 'lost-task', message: "sub-orchestration 0 (child 'the-child') pending, never started, with no outbox entry to start it" }),
    ]);
    const repaired = await checkInstance(th.client.backend, id, { ...later, repair: true });
    expect(repaired.findings[0]).toMatchObject({ code: 'lost-task', repaired: '1 sub-orchestration start queued again' });
    await th.startWorker({ registry: family });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(42);
    expect((await checkHub(th.client.backend, later)).findings).toEqual([]);
  });
});
