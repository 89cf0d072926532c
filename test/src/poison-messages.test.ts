/**
 * Poison messages on a real Redis: malformed jobs are dead-lettered at once (BullMQ failed set,
 * never retried) without harming the worker; an episode that throws on every attempt fails its
 * instance; an activity whose worker keeps dying fails its task.
 */
import { type OrchestrationContext, TaskFailedError } from '@durabull/core';
import { ACTIVITY_QUEUE, type InstanceReport, ORCHESTRATOR_QUEUE, type RedisClient, checkInstance } from '@durabull/redis';
import { type Job, Queue, Worker } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { connectRedis } from './helpers/redis.js';

let th: TestHub | undefined;
const closers: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
  await th?.cleanup();
  th = undefined;
});

async function until<T>(f: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A queue of the hub; with `instanceId`, of that instance's partition. */
function queue(t: TestHub, name: string, instanceId?: string): Queue {
  const prefix = instanceId === undefined ? t.keys.queuePrefix : t.client.backend.forInstance(instanceId).keys.queuePrefix;
  const q = new Queue(name, { connection: connectRedis(t.url), prefix });
  closers.push(async () => {
    await q.close();
    await (q.opts.connection as RedisClient).quit();
  });
  return q;
}

async function failedJob(q: Queue, jobId: string): Promise<Job> {
  return until(async () => {
    const job = await q.getJob(jobId);
    return job && (await job.isFailed()) ? job : undefined;
  });
}

const codes = (r: InstanceReport) => r.findings.map((f) => f.code);

function* echo(ctx: OrchestrationContext, x: string): Generator<unknown, string, any> {
  return yield ctx.callActivity('Echo', x);
}

describe('malformed jobs', () => {
  it('garbage on both queues is dead-lettered once, with the reason, and the worker goes on', async () => {
    th = await createTestHub({ orchestrators: { Echo: echo }, activities: { Echo: async (x: string) => x } });
    const acts = queue(th, ACTIVITY_QUEUE);
    const orch = queue(th, ORCHESTRATOR_QUEUE);
    const opts = { attempts: 20, backoff: { type: 'fixed', delay: 10 } };
    await acts.add('Echo', 'not an object', { ...opts, jobId: 'bad-a1' });
    await acts.add('Echo', { i: 'x', x: 'y', s: -1, n: 'Echo', p: '' }, { ...opts, jobId: 'bad-a2' });
    await orch.add('episode', { foo: 1 }, { ...opts, jobId: 'bad-w1' });
    await orch.add('episode', { i: 'no such/id', x: 'e', v: 0 }, { ...opts, jobId: 'bad-w2' });
    await orch.add('timer', [1, 2, 3], { ...opts, jobId: 'bad-t1' });

    const expectations: [Queue, string, string][] = [
      [acts, 'bad-a1', 'data is string, not an object'],
      [acts, 'bad-a2', "'s' (task id) is -1"],
      [orch, 'bad-w1', "'i' (instance id) is missing"],
      [orch, 'bad-w2', '"no such/id", not a valid instance id'],
      [orch, 'bad-t1', 'data is an array, not an object {i, x, s, f}'],
    ];
    for (const [q, id, why] of expectations) {
      const job = await failedJob(q, id);
      expect(job.failedReason).toContain(`Malformed ${q.name} job '${id}'`);
      expect(job.failedReason).toContain(why);
      // UnrecoverableError: one attempt, no retry.
      expect(job.attemptsMade).toBe(1);
    }
    // The worker is fine.
    const id = await th.client.startNew('Echo', { input: 'still alive' });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 10_000 });
    expect(st.output).toBe('still alive');
  });

  it('a malformed activity job that names a real task fails that task (the code sees TaskFailedError)', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    closers.push(async () => release());
    let caught: unknown;
    function* flow(ctx: OrchestrationContext): Generator<unknown, string, any> {
      try {
        return yield ctx.callActivity('Slow');
      } catch (err) {
        caught = err;
        return `caught: ${(err as TaskFailedError).failure.errorName}: ${(err as TaskFailedError).failure.message}`;
      }
    }
    th = await createTestHub({ orchestrators: { Flow: flow }, activities: { Slow: async () => (await gate, 'slow') } });
    const id = await th.client.startNew('Flow', { instanceId: 'poison-task' });
    const exec = await until(async () => {
      const st = await th!.client.getStatus(id);
      return st?.runtimeStatus === 'Running' && (await th!.redis.scard(th!.keys.pending(id))) === 1 ? st.executionId : undefined;
    });
    const acts = queue(th, ACTIVITY_QUEUE);
    await acts.add('Slow', { i: id, x: exec, s: 0, n: 42, p: null }, { jobId: 'bad-task', attempts: 20 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 10_000 });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toMatch(/^caught: MalformedJobError: Malformed activity job 'bad-task': 'n' \(activity name\) is 42/);
    expect(caught).toBeInstanceOf(TaskFailedError);
    const job = await failedJob(acts, 'bad-task');
    expect(job.attemptsMade).toBe(1);
    // The real result, when it comes, is dropped as a duplicate.
    release();
    expect(codes(await checkInstance(th.workers[0]!.backend, id))).toEqual([]);
  });
});

describe('poison episodes', () => {
  it('an episode that cannot load its history fails the instance after maxEpisodeAttempts', async () => {
    function* waits(ctx: OrchestrationContext): Generator<unknown, string, any> {
      yield ctx.waitForExternalEvent('go');
      return 'done';
    }
    th = await createTestHub({ orchestrators: { Waits: waits } }, { maxEpisodeAttempts: 3 });
    const id = await th.client.startNew('Waits', { instanceId: 'poison-ep' });
    await until(async () => ((await th!.client.getStatus(id))?.episodes === 1 ? true : undefined));
    // A history entry nobody can decode: 0xc1 is never used in msgpack.
    await th.redis.xadd(th.keys.history(id), '*', 'b', Buffer.from([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]));
    await th.client.raiseEvent(id, 'go');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('PoisonJobError');
    expect(st.failure?.message).toMatch(/^episode failed 3 times: /);
    // The job stays visible in the failed set.
    const orch = queue(th, ORCHESTRATOR_QUEUE, id);
    const failed = await orch.getFailed();
    const job = failed.find((j) => j.data?.i === id);
    expect(job?.failedReason).toMatch(/^episode failed 3 times: /);
    expect(job?.attemptsMade).toBe(3);
  });
});

describe('RedisBackend.failExecution', () => {
  it('ends a waiting instance as Failed with a framed episode the checker accepts; a second call is a no-op', async () => {
    function* waits(ctx: OrchestrationContext): Generator<unknown, string, any> {
      yield ctx.waitForExternalEvent('go');
      return 'done';
    }
    th = await createTestHub({ orchestrators: { Waits: waits } });
    const id = await th.client.startNew('Waits', { instanceId: 'fail-exec' });
    const st0 = await until(async () => {
      const s = await th!.client.getStatus(id);
      return s?.episodes === 1 ? s : undefined;
    });
    // No worker from here on: the raised event stays in the inbox (the failure consumes it).
    await th.workers[0]!.close();
    const backend = th.client.backend;
    await th.client.raiseEvent(id, 'other');
    const failure = { errorName: 'PoisonJobError', message: 'episode failed 3 times: boom' };
    expect(await backend.failExecution(id, st0.executionId, failure)).toBe(true);
    expect(await backend.failExecution(id, st0.executionId, failure)).toBe(false);
    const st = await th.client.waitForCompletion(id, { timeoutMs: 5000, showHistory: true });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure).toMatchObject(failure);
    expect(st.history?.slice(-3).map((e) => e.type)).toEqual(['EventRaised', 'ExecutionCompleted', 'OrchestratorCompleted']);
    expect(codes(await checkInstance(backend, id))).toEqual([]);
  });
});

describe('activity worker that keeps dying', () => {
  it('a job stalled more than maxStalledCount times becomes TaskFailed "activity worker crashed N times"', async () => {
    function* flow(ctx: OrchestrationContext): Generator<unknown, string, any> {
      return yield ctx.callActivity('Work', 1);
    }
    let ran = 0;
    th = await createTestHub({ orchestrators: { Flow: flow }, activities: { Work: async () => ++ran } }, { activities: false });
    const id = await th.client.startNew('Flow', { instanceId: 'crashy' });
    // A "worker" that takes the activity job and dies: it never renews the lock nor finishes the job.
    const dying = new Worker(ACTIVITY_QUEUE, null, {
      connection: connectRedis(th.url),
      prefix: th.client.backend.forInstance(id).keys.queuePrefix,
      lockDuration: 300,
      autorun: false,
    });
    closers.push(async () => {
      await dying.close(true);
      await (dying.opts.connection as RedisClient).quit();
    });
    const taken = await until(async () => (await dying.getNextJob('dead-token')) ?? undefined);
    expect(taken.data.i).toBe(id);
    // A healthy activity worker with maxStalledCount 0: the first stall is one too many.
    await th.startWorker({ orchestrators: false, activities: true, maxStalledCount: 0, stalledIntervalMs: 200 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.message).toMatch(/Activity 'Work' \(task 0\) failed: PoisonJobError: activity worker crashed 1 times running 'Work'/);
    expect(ran).toBe(0);
    const acts = queue(th, ACTIVITY_QUEUE, id);
    const job = await failedJob(acts, taken.id!);
    expect(job.failedReason).toBe('job stalled more than allowable limit');
  });

  it('an episode job stalled more than maxStalledCount times fails its instance "episode worker crashed N times"', async () => {
    th = await createTestHub({ orchestrators: { Echo: echo }, activities: { Echo: async (x: string) => x } }, { startWorker: false });
    const id = await th.client.startNew('Echo', { instanceId: 'crashy-episode', input: 'x' });
    const dying = new Worker(ORCHESTRATOR_QUEUE, null, {
      connection: connectRedis(th.url),
      prefix: th.client.backend.forInstance(id).keys.queuePrefix,
      lockDuration: 300,
      autorun: false,
    });
    closers.push(async () => {
      await dying.close(true);
      await (dying.opts.connection as RedisClient).quit();
    });
    const taken = await until(async () => (await dying.getNextJob('dead-token')) ?? undefined);
    expect(taken.data.i).toBe(id);
    await th.startWorker({ maxStalledCount: 0, stalledIntervalMs: 200 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('PoisonJobError');
    expect(st.failure?.message).toMatch(/^episode worker crashed 1 times/);
    expect(codes(await checkInstance(th.workers[0]!.backend, id))).toEqual([]);
  });
});
