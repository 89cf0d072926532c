/**
 * Activity timeouts, heartbeats and cancellation, in one process on a real Redis: a hanging attempt
 * fails with ActivityTimeoutError and the retry succeeds (its late result dropped); a heartbeating
 * activity outlives its heartbeat timeout and a silent one does not; the next attempt reads the last
 * heartbeat details; terminate aborts a running activity's signal and removes the instance's queued
 * activity and timer jobs; shutdown past its grace period hands an attempt back to the queue.
 * (A worker killed mid-attempt: timeout-kill.test.ts.)
 */
import { ActivityCancelledError, ActivityTimeoutError, type OrchestrationContext, Registry, type Task } from '@durabull/core';
import { DurabullWorker } from '@durabull/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { eventsOf, waitUntil } from './helpers/orchestration.js';
import { TEST_PARTITIONS } from './helpers/partitions.js';

let th: TestHub | undefined;
const release: (() => void)[] = [];
afterEach(async () => {
  for (const r of release.splice(0)) r();
  await th?.cleanup();
  th = undefined;
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** A promise that settles only when the test ends (an activity that hangs, whatever its signal says). */
const hang = () => new Promise<void>((r) => release.push(r));
const RETRY = { maxNumberOfAttempts: 3, firstRetryIntervalMs: 50 };

describe('start-to-close timeout', () => {
  it('fails a hanging attempt with ActivityTimeoutError, the retry succeeds, and the late result is dropped', async () => {
    let calls = 0;
    let firstSignal: AbortSignal | undefined;
    let lateResult!: () => void;
    th = await createTestHub({
      orchestrators: {
        Retried: function* (ctx: OrchestrationContext) {
          return yield ctx.callActivityWithRetry('Hangs', RETRY, 'x', { startToCloseTimeoutMs: 300 });
        },
      },
      activities: {
        Hangs: async (x: string, ctx) => {
          calls++;
          if (calls === 1) {
            firstSignal = ctx.signal;
            // Ignores its signal: returns only once the test lets it, long after its timeout.
            await new Promise<void>((r) => (lateResult = r));
            return 'late';
          }
          return `${x} on attempt ${calls}`;
        },
      },
    });
    const id = await th.client.startNew('Retried');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('x on attempt 2');
    const failed = eventsOf(st.history, 'TaskFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.failure.errorName).toBe('ActivityTimeoutError');
    expect(failed[0]!.failure.message).toMatch(/start-to-close timeout 300 ms/);
    // The call's timeout is in history with the task, and the retry names its first attempt.
    const scheduled = eventsOf(st.history, 'TaskScheduled');
    expect(scheduled.map((e) => [e.startToCloseTimeoutMs, e.retryOf])).toEqual([
      [300, undefined],
      [300, scheduled[0]!.taskId],
    ]);
    expect(firstSignal?.aborted).toBe(true);
    expect(firstSignal?.reason).toBeInstanceOf(ActivityTimeoutError);
    expect((firstSignal?.reason as ActivityTimeoutError).timeoutType).toBe('start-to-close');

    // The first attempt returns after all: its result is dropped, the history does not change.
    lateResult();
    await sleep(300);
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(after!.history).toEqual(st.history);
    expect(eventsOf(after!.history, 'TaskCompleted')).toHaveLength(1);
  });

  it('takes the timeout from the registration, a call overrides it, and the worker default covers the rest', async () => {
    const registry = new Registry()
      .addActivity('Registered', () => hang(), { startToCloseTimeoutMs: 200 })
      .addActivity('Plain', () => hang())
      .addOrchestrator('Three', function* (ctx: OrchestrationContext) {
        const out: string[] = [];
        for (const t of [ctx.callActivity('Registered'), ctx.callActivity('Plain'), ctx.callActivity('Registered', undefined, { startToCloseTimeoutMs: 400 })]) {
          try {
            yield t;
          } catch (err) {
            out.push((err as { failure: { message: string } }).failure.message);
          }
        }
        return out;
      });
    th = await createTestHub({}, { startWorker: false });
    const w = new DurabullWorker({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, registry, logger: false, defaultStartToCloseTimeoutMs: 300 });
    th.workers.push(w);
    await w.start();
    const id = await th.client.startNew('Three');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toEqual([
      expect.stringMatching(/'Registered' timed out: .*start-to-close timeout 200 ms/),
      expect.stringMatching(/'Plain' timed out: .*start-to-close timeout 300 ms/),
      expect.stringMatching(/'Registered' timed out: .*start-to-close timeout 400 ms/),
    ]);
  });
});

describe('heartbeat timeout', () => {
  it('lets a heartbeating activity outlive its heartbeat timeout and fails a silent one', async () => {
    let silentSignal: AbortSignal | undefined;
    th = await createTestHub({
      orchestrators: {
        Both: function* (ctx: OrchestrationContext) {
          const beats: Task<number> = ctx.callActivity('Beats', 8, { heartbeatTimeoutMs: 1000 });
          const silent: Task<string> = ctx.callActivity('Silent', 8, { heartbeatTimeoutMs: 1000 });
          const out: unknown[] = [yield beats];
          try {
            out.push(yield silent);
          } catch (err) {
            out.push((err as { failure: { errorName: string; message: string } }).failure);
          }
          return out;
        },
      },
      activities: {
        // 8 x 250 ms = 2 s, twice the heartbeat timeout, with a heartbeat at each step.
        Beats: async (n: number, ctx) => {
          for (let k = 0; k < n; k++) {
            await sleep(250);
            ctx.heartbeat({ step: k });
          }
          return n;
        },
        // The same work without heartbeats.
        Silent: async (n: number, ctx) => {
          silentSignal = ctx.signal;
          await sleep(250 * n);
          return 'done';
        },
      },
    });
    const id = await th.client.startNew('Both');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toEqual([8, expect.objectContaining({ errorName: 'ActivityTimeoutError', message: expect.stringMatching(/no heartbeat for 1000 ms/) })]);
    expect((silentSignal?.reason as ActivityTimeoutError).timeoutType).toBe('heartbeat');
  });

  it('gives the next attempt the last heartbeat details, so it resumes where the timed-out one stopped', async () => {
    const seen: unknown[] = [];
    th = await createTestHub({
      orchestrators: {
        Resumes: function* (ctx: OrchestrationContext) {
          return yield ctx.callActivityWithRetry('Resumable', RETRY, 10, { heartbeatTimeoutMs: 300 });
        },
      },
      activities: {
        Resumable: async (total: number, ctx) => {
          seen.push(ctx.lastHeartbeatDetails);
          const from = (ctx.lastHeartbeatDetails as { done: number } | undefined)?.done ?? 0;
          for (let k = from; k < total; k++) {
            // The first attempt stalls after 4 items: no heartbeat, so it times out.
            if (seen.length === 1 && k === 4) await hang();
            ctx.heartbeat({ done: k + 1 });
          }
          return { resumedFrom: from };
        },
      },
    });
    const id = await th.client.startNew('Resumes');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toEqual({ resumedFrom: 4 });
    expect(seen).toEqual([undefined, { done: 4 }]);
    // The details are removed once the task succeeded.
    expect(await th.redis.exists(th.keys.heartbeats(id))).toBe(0);
  });
});

describe('cancellation', () => {
  it('terminate aborts a running activity signal and removes the queued activity and timer jobs', async () => {
    let entered!: () => void;
    const running = new Promise<void>((r) => (entered = r));
    let signal: AbortSignal | undefined;
    let started = 0;
    th = await createTestHub(
      {
        orchestrators: {
          FanAndTimer: function* (ctx: OrchestrationContext) {
            const tasks: Task<unknown>[] = [1, 2, 3].map((k) => ctx.callActivity('Long', k));
            tasks.push(ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 3_600_000)));
            return yield ctx.all(tasks);
          },
        },
        activities: {
          Long: async (_k: number, ctx) => {
            started++;
            signal = ctx.signal;
            entered();
            // Cooperates: stops when its signal is aborted.
            await new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
            throw ctx.signal.reason;
          },
        },
      },
      // One activity at a time: the other two wait in the queue. No timeout: the attempt sends
      // nothing to Redis, so only the cancel channel can tell the worker.
      { activityConcurrency: 1, defaultStartToCloseTimeoutMs: 0 },
    );
    const id = await th.client.startNew('FanAndTimer');
    await running;
    const { activityQueue, orchestratorQueue } = th.client.backend.forInstance(id);
    // With several partitions the worker may hold one more job of the instance's partition, waiting
    // for a slot (active in BullMQ, not running): it checks the task before it runs.
    await waitUntil(
      'two activity jobs to wait and the timer to be delayed',
      async () => (await activityQueue.getWaitingCount()) + (await activityQueue.getActiveCount()) === 3 && (await orchestratorQueue.getDelayedCount()) === 1,
    );
    const st = await th.client.getStatus(id);

    await th.client.terminate(id, 'enough');
    await waitUntil('the running activity signal to be aborted', () => signal?.aborted === true);
    expect(signal!.reason).toBeInstanceOf(ActivityCancelledError);
    expect((signal!.reason as ActivityCancelledError).reason).toBe('terminated');
    expect(await activityQueue.getWaitingCount()).toBe(0);
    expect(await orchestratorQueue.getDelayedCount()).toBe(0);
    // A job held waiting for the slot finishes without running its activity.
    await waitUntil('no activity job left', async () => (await activityQueue.getActiveCount()) === 0);
    expect(started).toBe(1);
    expect(await orchestratorQueue.getJob(`t-${id}-${st!.executionId}-3`)).toBeUndefined();
    // History ends with the termination; the cancelled tasks have no result.
    const done = await th.client.waitForCompletion(id, { showHistory: true });
    expect(done.runtimeStatus).toBe('Terminated');
    expect(eventsOf(done.history, 'TaskScheduled')).toHaveLength(3);
    expect(eventsOf(done.history, 'TaskCompleted')).toHaveLength(0);
    expect(eventsOf(done.history, 'TaskFailed')).toHaveLength(0);
    expect(done.history!.at(-1)!.type).toBe('ExecutionTerminated');
  });

  it('a worker that missed the cancel message learns of the terminate from its next heartbeat reply', async () => {
    let entered!: () => void;
    const running = new Promise<void>((r) => (entered = r));
    let signal: AbortSignal | undefined;
    th = await createTestHub({
      orchestrators: {
        Beating: function* (ctx: OrchestrationContext) {
          return yield ctx.callActivity('Beats', null, { heartbeatTimeoutMs: 500 });
        },
      },
      activities: {
        Beats: async (_x: unknown, ctx) => {
          signal = ctx.signal;
          entered();
          while (!ctx.signal.aborted) {
            ctx.heartbeat();
            await sleep(50);
          }
          throw ctx.signal.reason;
        },
      },
    });
    // The worker's cancel channel goes deaf (as a connection that was down when the message went out).
    const subscriber = (th.workers[0] as unknown as { cancelSubscriber: { unsubscribe(): Promise<unknown> } }).cancelSubscriber;
    await subscriber.unsubscribe();
    const id = await th.client.startNew('Beating');
    await running;
    await th.client.terminate(id, 'stop');
    await waitUntil('the heartbeat reply to abort the signal', () => signal?.aborted === true);
    expect((signal!.reason as ActivityCancelledError).reason).toBe('terminated');
  });

  it('a cancelled timer has its delayed job removed', async () => {
    th = await createTestHub({
      orchestrators: {
        RaceTimer: function* (ctx: OrchestrationContext) {
          const timer = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 3_600_000));
          const winner = yield ctx.any([ctx.waitForExternalEvent('go'), timer]);
          timer.cancel();
          return winner === timer ? 'timer' : 'event';
        },
      },
    });
    const id = await th.client.startNew('RaceTimer');
    const { orchestratorQueue } = th.client.backend.forInstance(id);
    await waitUntil('the timer to be delayed', async () => (await orchestratorQueue.getDelayedCount()) === 1);
    await th.client.raiseEvent(id, 'go');
    expect((await th.client.waitForCompletion(id)).output).toBe('event');
    await waitUntil('the timer job to be removed', async () => (await orchestratorQueue.getDelayedCount()) === 0);
  });

  it('shutdown past its grace period aborts a running attempt and hands it back: it runs again in another worker', async () => {
    let firstSignal: AbortSignal | undefined;
    let entered!: () => void;
    const running = new Promise<void>((r) => (entered = r));
    const registry = new Registry()
      .addActivity('Stubborn', async (_x: unknown, ctx) => {
        if (!firstSignal) {
          firstSignal = ctx.signal;
          entered();
          await hang(); // ignores the signal
        }
        return `attempt ${ctx.attempt}`;
      })
      .addOrchestrator('OneStep', function* (ctx: OrchestrationContext) {
        return yield ctx.callActivity('Stubborn');
      });
    th = await createTestHub({}, { startWorker: false });
    const first = new DurabullWorker({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, registry, logger: false, shutdownGraceMs: 200, eagerActivities: false });
    await first.start();
    const id = await th.client.startNew('OneStep');
    await running;
    // Closes although the activity ignores its signal: the grace period ends the attempt.
    await first.close();
    expect(firstSignal!.aborted).toBe(true);
    expect((firstSignal!.reason as ActivityCancelledError).reason).toBe('worker-shutdown');
    await th.startWorker({ registry });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.output).toBe('attempt 2');
    expect(eventsOf(st.history, 'TaskFailed')).toHaveLength(0);
  });
});
