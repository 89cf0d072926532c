/**
 * An episode's commit adds the activity jobs it schedules to BullMQ itself, and a start the job of
 * the instance's first episode (addQueueJob in commitEpisode and startInstance), instead of an
 * outbox entry that the worker or client then adds with Queue.add. What they write must be what
 * Queue.add writes: BullMQ's workers, Bull Board and the checker read these keys. The reference here
 * is the same job added by the dispatcher (Queue.add, the same options).
 */
import type { OrchestrationContext, OrchestratorFunction } from '@durabull/core';
import { ACTIVITY_QUEUE, ORCHESTRATOR_QUEUE, type RedisBackend, type TaskHub } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { waitUntil } from './helpers/orchestration.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const Step: OrchestratorFunction = function* (ctx: OrchestrationContext, n: number) {
  return yield ctx.callActivity(NAME, n);
};
const NAME = 'Add.one-x_1';
const functions = { orchestrators: { Step }, activities: { [NAME]: async (n: number) => n + 1 } };

/** Every key of the job and what the queue holds of it: the hash, the events, the wait list and the marker. */
async function jobLayout(backend: RedisBackend, jobId: string, queue = ACTIVITY_QUEUE) {
  const base = backend.keys.jobPrefix(queue);
  const hash = await backend.redis.hgetall(base + jobId);
  const events = (await backend.redis.xrange(base + 'events', '-', '+')) as [string, string[]][];
  const mine = events.map(([, f]) => f).filter((f) => f[3] === jobId).map((f) => f.filter((_, k) => k !== 3));
  return {
    fields: Object.keys(hash).sort(),
    name: hash.name,
    data: hash.data === undefined ? undefined : (JSON.parse(hash.data) as Record<string, unknown>),
    opts: hash.opts === undefined ? undefined : { ...(JSON.parse(hash.opts) as Record<string, unknown>), jobId: undefined },
    jobIdInOpts: hash.opts === undefined ? undefined : (JSON.parse(hash.opts) as { jobId?: string }).jobId,
    delay: hash.delay,
    priority: hash.priority,
    timestamp: Number(hash.timestamp) > 0,
    events: mine,
    waiting: (await backend.redis.lrange(base + 'wait', 0, -1)).includes(jobId),
    marker: await backend.redis.zcard(base + 'marker'),
  };
}

describe('the activity job a commit adds', () => {
  for (const paused of [false, true]) {
    it(`is the job Queue.add writes${paused ? ' (queue paused: no marker)' : ''}`, async () => {
      // Orchestrators only: the activity jobs stay in the queue.
      th = await createTestHub(functions, { activities: false });
      const backend = th.client.backend.forInstance('layout-1');
      if (paused) await backend.activityQueue.pause();
      // The worker adds no activity job itself.
      const queue = (th.workers[0] as unknown as { backend: TaskHub }).backend.forInstance('layout-1').activityQueue;
      let adds = 0;
      const add = queue.add.bind(queue);
      queue.add = ((...a: Parameters<typeof add>) => (adds++, add(...a))) as typeof add;
      await th.client.startNew('Step', { instanceId: 'layout-1', input: 41 });
      const exec = (await th.client.getStatus('layout-1'))!.executionId;
      const jobId = `a-layout-1-${exec}-0`;
      await waitUntil('the activity job is queued', async () => (await backend.activityQueue.getJobState(jobId)) === 'waiting');
      // Neither an outbox entry nor a Queue.add of the worker.
      expect(await backend.redis.hexists(backend.keys.outbox, jobId)).toBe(0);
      expect(adds).toBe(0);
      const ours = await jobLayout(backend, jobId);
      // The same job through the dispatcher (Queue.add), under another id.
      const hash = await backend.redis.hgetall(backend.keys.jobPrefix(ACTIVITY_QUEUE) + jobId);
      await backend.redis.del(backend.keys.jobPrefix(ACTIVITY_QUEUE) + 'marker');
      await backend.dispatch([['ref-1', `A${hash.data}`]], { awaitCleanup: true });
      const ref = await jobLayout(backend, 'ref-1');
      expect(ref.jobIdInOpts).toBe('ref-1');
      expect(ours.jobIdInOpts).toBe(jobId);
      expect({ ...ours, jobIdInOpts: undefined }).toEqual({ ...ref, jobIdInOpts: undefined });
      expect(ours.name).toBe(NAME);
      expect(ours.marker).toBe(paused ? 0 : 1);
      expect(ours.events).toEqual([
        ['event', 'added', 'jobId', 'name', NAME],
        ['event', 'waiting', 'jobId'],
      ]);
      // BullMQ runs it: an activity worker takes the job and the instance completes.
      if (paused) await backend.activityQueue.resume();
      await backend.activityQueue.remove('ref-1');
      await th.startWorker({ orchestrators: false, activities: true });
      expect((await th.client.waitForCompletion('layout-1', { timeoutMs: 15_000 })).output).toBe(42);
    });
  }
});

describe('the first episode\'s job a start adds', () => {
  for (const paused of [false, true]) {
    it(`is the job Queue.add writes, with the ExecutionStarted event it carries${paused ? ' (queue paused: no marker)' : ''}`, async () => {
      th = await createTestHub(functions, { startWorker: false });
      const backend = th.client.backend.forInstance('first-1');
      if (paused) await backend.orchestratorQueue.pause();
      // The client adds no job itself.
      let adds = 0;
      const add = backend.orchestratorQueue.add.bind(backend.orchestratorQueue);
      backend.orchestratorQueue.add = ((...a: Parameters<typeof add>) => (adds++, add(...a))) as typeof add;
      await th.client.startNew('Step', { instanceId: 'first-1', input: 41 });
      const exec = (await th.client.getStatus('first-1'))!.executionId;
      const jobId = `w-first-1-${exec}-0`;
      expect(await backend.orchestratorQueue.getJobState(jobId)).toBe('waiting');
      expect(adds).toBe(0);
      expect(await backend.redis.hexists(backend.keys.outbox, jobId)).toBe(0);
      const ours = await jobLayout(backend, jobId, ORCHESTRATOR_QUEUE);
      // The same wake through the dispatcher (Queue.add, the wake jobs' options), under another id.
      await backend.redis.del(backend.keys.jobPrefix(ORCHESTRATOR_QUEUE) + 'marker');
      await backend.dispatch([['ref-w', `Wfirst-1|${exec}|0`]], { awaitCleanup: true });
      const ref = await jobLayout(backend, 'ref-w', ORCHESTRATOR_QUEUE);
      expect(ref.jobIdInOpts).toBe('ref-w');
      expect(ours.jobIdInOpts).toBe(jobId);
      // The data: the dispatcher's, and the ExecutionStarted event the first episode runs from.
      const { s: started, ...data } = ours.data as { s?: string };
      expect(data).toEqual(ref.data);
      expect(typeof started).toBe('string');
      expect({ ...ours, data: undefined, jobIdInOpts: undefined }).toEqual({ ...ref, data: undefined, jobIdInOpts: undefined });
      expect(ours.name).toBe('episode');
      expect(ours.marker).toBe(paused ? 0 : 1);
      // A worker runs it, from the event it carries (no load), and the instance completes.
      if (paused) await backend.orchestratorQueue.resume();
      await backend.orchestratorQueue.remove('ref-w');
      const w = await th.startWorker();
      expect((await th.client.waitForCompletion('first-1', { timeoutMs: 15_000 })).output).toBe(42);
      expect(w.stats.loads).toBe(0);
    });
  }
});
