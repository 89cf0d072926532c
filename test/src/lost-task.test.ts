/**
 * The checker's `lost-task` finding: a pending activity whose job is gone from both the outbox and
 * BullMQ (deleted by hand, or lost with Redis data) would never run. The checker reports it and,
 * with `repair`, queues the job again from what history scheduled.
 */
import { Registry } from '@durabull/core';
import { activityJobId, checkHub, checkInstance } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
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

describe('lost activity tasks', () => {
  it('are reported once their job is gone everywhere, and queued again by repair', async () => {
    th = await createTestHub({}, { startWorker: false });
    const later = () => ({ now: Date.now() + 60_000 });
    const id = await th.client.startNew('Two', { input: { n: 1 } });
    // Orchestrators only: the first activity's job waits in BullMQ.
    const orchestrator = await th.startWorker({ registry, activities: false });
    const x = (await th.client.getStatus(id))!.executionId;
    const jobId = activityJobId(id, x, 0);
    const queue = th.client.backend.activityQueue;
    await waitUntil('the activity job is queued', async () => (await queue.getJobState(jobId)) === 'waiting');
    await orchestrator.close();

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
