/**
 * The orchestration API on a real Redis, part 2: sub-orchestrations (output, failure, ids,
 * termination) and retry policies (callActivityWithRetry, callSubOrchestratorWithRetry).
 */
import {
  type HistoryEvent,
  InstanceAlreadyExistsError,
  NonRetriableError,
  type OrchestrationContext,
  type RetryOptions,
  SubOrchestrationTask,
  TaskFailedError,
} from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { REPLAY_EVERY_EPISODE, type TestHub, createTestHub } from './helpers/hub.js';
import { Gate, eventsOf, scheduledIds, waitIdle } from './helpers/orchestration.js';

let th: TestHub | undefined;
afterEach(async () => {
  Gate.releaseAll();
  await th?.cleanup();
  th = undefined;
});

const WAIT = { timeoutMs: 15_000, showHistory: true } as const;

/** What an orchestrator returns from a caught TaskFailedError. */
function caught(err: unknown) {
  if (!(err instanceof TaskFailedError)) return { notATaskFailedError: String(err) };
  return {
    taskName: err.taskName,
    taskId: err.taskId,
    message: err.message,
    attempts: err.attempts,
    errorName: err.failure.errorName,
    failureMessage: err.failure.message,
    nonRetriable: err.failure.nonRetriable ?? false,
    functionName: err.failure.functionName,
  };
}

describe('sub-orchestrations', () => {
  const childFns = {
    Child: function* (ctx: OrchestrationContext, n: number): Generator<unknown, unknown, any> {
      const doubled: number = yield ctx.callActivity('Double', n);
      if (doubled < 0) throw new RangeError(`negative: ${doubled}`);
      return { doubled, child: ctx.instanceId };
    },
  };
  const activities = { Double: async (n: number) => n * 2 };

  it("flows the child's output back to the parent", async () => {
    th = await createTestHub({
      orchestrators: {
        ...childFns,
        Parent: function* (ctx, n: number): Generator<unknown, unknown, any> {
          const r: { doubled: number } = yield ctx.callSubOrchestrator('Child', n, 'child-of-parent');
          return r.doubled + 1;
        },
      },
      activities,
    });
    const id = await th.client.startNew('Parent', { input: 20, instanceId: 'parent' });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe(41);
    const [created] = eventsOf(st.history, 'SubOrchestrationInstanceCreated');
    expect(created).toMatchObject({ taskId: 0, name: 'Child', instanceId: 'child-of-parent', input: 20 });
    expect(eventsOf(st.history, 'SubOrchestrationInstanceCompleted')).toEqual([
      expect.objectContaining({ taskScheduledId: 0, result: { doubled: 40, child: 'child-of-parent' } }),
    ]);
    // The child is an ordinary instance under the explicit id, linked to its parent.
    const child = await th.client.getStatus('child-of-parent', { showHistory: true });
    expect(child).toMatchObject({ runtimeStatus: 'Completed', name: 'Child', input: 20, output: { doubled: 40, child: 'child-of-parent' } });
    expect(child!.parent).toEqual({ instanceId: 'parent', executionId: st.executionId, taskId: 0 });
    expect(eventsOf(child!.history, 'ExecutionStarted')[0]!.parent).toMatchObject({ instanceId: 'parent', taskId: 0, name: 'Child' });
  });

  it("fails the parent's task with a TaskFailedError that names the child's error", async () => {
    th = await createTestHub({
      orchestrators: {
        ...childFns,
        Catches: function* (ctx): Generator<unknown, unknown, any> {
          try {
            yield ctx.callSubOrchestrator('Child', -3);
            return 'no error';
          } catch (err) {
            return caught(err);
          }
        },
        DoesNotCatch: function* (ctx): Generator<unknown, unknown, any> {
          return yield ctx.callSubOrchestrator('Child', -5);
        },
      },
      activities,
    });
    const [a, b] = await Promise.all([th.client.startNew('Catches'), th.client.startNew('DoesNotCatch')]);
    const st = await th.client.waitForCompletion(a, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toMatchObject({
      taskName: 'Child',
      taskId: 0,
      message: "Sub-orchestration 'Child' (task 0) failed: RangeError: negative: -6",
      errorName: 'RangeError',
      failureMessage: 'negative: -6',
      functionName: 'Child',
    });
    const childId = eventsOf(st.history, 'SubOrchestrationInstanceCreated')[0]!.instanceId;
    const child = await th.client.getStatus(childId);
    expect(child!.runtimeStatus).toBe('Failed');
    expect(child!.failure).toMatchObject({ errorName: 'RangeError', message: 'negative: -6' });
    expect(eventsOf(st.history, 'SubOrchestrationInstanceFailed')).toEqual([
      expect.objectContaining({ taskScheduledId: 0, failure: expect.objectContaining({ errorName: 'RangeError' }) }),
    ]);

    const sb = await th.client.waitForCompletion(b, WAIT);
    expect(sb.runtimeStatus).toBe('Failed');
    expect(sb.failure).toMatchObject({ errorName: 'TaskFailedError', inner: { errorName: 'RangeError', message: 'negative: -10' } });
  });

  it('uses a deterministic default child id: <parent>-<execution>-<seq>, the same on every replay', async () => {
    const seenIds: string[][] = [[], []];
    th = await createTestHub({
      orchestrators: {
        ...childFns,
        TwoChildren: function* (ctx): Generator<unknown, unknown, any> {
          const first = ctx.callSubOrchestrator('Child', 1);
          seenIds[0]!.push((first as SubOrchestrationTask).instanceId);
          const r1 = yield first;
          yield ctx.callActivity('Double', 0);
          const second = ctx.callSubOrchestrator('Child', 2);
          seenIds[1]!.push((second as SubOrchestrationTask).instanceId);
          const r2 = yield second;
          return [r1, r2];
        },
      },
      activities,
    }, REPLAY_EVERY_EPISODE);
    const id = await th.client.startNew('TwoChildren', { instanceId: 'twins' });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    const expected = [`twins-${st.executionId}-0`, `twins-${st.executionId}-2`];
    expect(eventsOf(st.history, 'SubOrchestrationInstanceCreated').map((e) => e.instanceId)).toEqual(expected);
    expect(st.output).toEqual([
      { doubled: 2, child: expected[0] },
      { doubled: 4, child: expected[1] },
    ]);
    // Computed again on every episode's replay (child 1, activity, child 2, done), always the same.
    expect(seenIds[0]!.length).toBe(st.episodes);
    expect(new Set(seenIds[0])).toEqual(new Set([expected[0]]));
    expect(new Set(seenIds[1])).toEqual(new Set([expected[1]]));
    for (const [i, cid] of expected.entries()) {
      const child = await th.client.getStatus(cid!);
      expect(child).toMatchObject({ runtimeStatus: 'Completed', parent: { instanceId: 'twins', executionId: st.executionId, taskId: i * 2 } });
    }
  });

  it("fails the parent's task when the explicit child id belongs to a running instance", async () => {
    th = await createTestHub({
      orchestrators: {
        ...childFns,
        Waits: function* (ctx) {
          return yield ctx.waitForExternalEvent('Never');
        },
        Collides: function* (ctx): Generator<unknown, unknown, any> {
          try {
            return yield ctx.callSubOrchestrator('Child', 1, 'taken');
          } catch (err) {
            return caught(err);
          }
        },
      },
      activities,
    });
    await th.client.startNew('Waits', { instanceId: 'taken' });
    await waitIdle(th, 'taken');
    const id = await th.client.startNew('Collides');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toMatchObject({ taskName: 'Child', errorName: InstanceAlreadyExistsError.name });
    expect((st.output as { failureMessage: string }).failureMessage).toContain("Instance 'taken' already exists");
    // The running instance is untouched.
    const taken = await th.client.getStatus('taken');
    expect(taken).toMatchObject({ runtimeStatus: 'Running', name: 'Waits' });
    expect(taken!.parent).toBeUndefined();
  });

  it('gives each execution of a parent that continues as new its own default child ids', async () => {
    th = await createTestHub({
      orchestrators: {
        ...childFns,
        Generations: function* (ctx, gen: number): Generator<unknown, unknown, any> {
          const r: { child: string } = yield ctx.callSubOrchestrator('Child', gen);
          if (gen === 0) {
            ctx.continueAsNew(1);
            return undefined;
          }
          return r.child;
        },
      },
      activities,
    });
    const id = await th.client.startNew('Generations', { input: 0, instanceId: 'gens' });
    const exec0 = (await th.client.getStatus(id))!.executionId;
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toBe(`gens-${st.executionId}-0`);
    expect(st.executionId).not.toBe(exec0);
    const first = await th.client.getStatus(`gens-${exec0}-0`);
    expect(first).toMatchObject({ runtimeStatus: 'Completed', output: { doubled: 0 }, parent: { instanceId: 'gens', executionId: exec0, taskId: 0 } });
  });

  it('returns the final output of a child that continues as new', async () => {
    th = await createTestHub({
      orchestrators: {
        Looper: function* (ctx, n: number): Generator<unknown, unknown, any> {
          const next: number = yield ctx.callActivity('Double', n);
          if (next < 40) {
            ctx.continueAsNew(next);
            return undefined;
          }
          return next;
        },
        Caller: function* (ctx): Generator<unknown, unknown, any> {
          return { fromChild: yield ctx.callSubOrchestrator('Looper', 3, 'looper') };
        },
      },
      activities,
    });
    const id = await th.client.startNew('Caller');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    // 3 -> 6 -> 12 -> 24 -> 48 in four executions of the child.
    expect(st.output).toEqual({ fromChild: 48 });
    const child = await th.client.getStatus('looper', { showHistory: true });
    expect(child).toMatchObject({ runtimeStatus: 'Completed', output: 48, input: 24, parent: { instanceId: id, taskId: 0 } });
    expect(eventsOf(child!.history, 'ExecutionStarted')[0]).toMatchObject({ input: 24, parent: { instanceId: id, taskId: 0 } });
    expect(eventsOf(st.history, 'SubOrchestrationInstanceCompleted')).toHaveLength(1);
  });

  it('terminates the whole tree with recursive terminate', async () => {
    th = await createTestHub({
      orchestrators: {
        Root: function* (ctx): Generator<unknown, unknown, any> {
          return yield ctx.all([ctx.callSubOrchestrator('Mid', 'a', 'tree-a'), ctx.callSubOrchestrator('Leaf', 'b', 'tree-b')]);
        },
        Mid: function* (ctx): Generator<unknown, unknown, any> {
          return yield ctx.callSubOrchestrator('Leaf', 'g', 'tree-a-g');
        },
        Leaf: function* (ctx) {
          return yield ctx.waitForExternalEvent('Never');
        },
      },
    });
    const all = ['tree', 'tree-a', 'tree-b', 'tree-a-g'];
    await th.client.startNew('Root', { instanceId: 'tree' });
    for (const id of all) await waitIdle(th, id);
    await th.client.terminate('tree', 'shutting down', { recursive: true });
    for (const id of all) {
      const st = await th.client.waitForCompletion(id, WAIT);
      expect(st.runtimeStatus, id).toBe('Terminated');
      expect(st.output, id).toBe('shutting down');
      expect(st.history!.at(-1), id).toMatchObject({ type: 'ExecutionTerminated', reason: 'shutting down' });
    }
    // The children's terminations reached a finished parent: nothing changed there.
    const root = await th.client.getStatus('tree', { showHistory: true });
    expect(root!.history!.filter((e) => e.type === 'ExecutionTerminated')).toHaveLength(1);
    expect(root!.history!.at(-1)!.type).toBe('ExecutionTerminated');
  });

  it("terminating a child alone fails the parent's task", async () => {
    th = await createTestHub({
      orchestrators: {
        Leaf: function* (ctx) {
          return yield ctx.waitForExternalEvent('Never');
        },
        Guardian: function* (ctx): Generator<unknown, unknown, any> {
          try {
            return yield ctx.callSubOrchestrator('Leaf', undefined, 'kid');
          } catch (err) {
            return caught(err);
          }
        },
      },
    });
    const id = await th.client.startNew('Guardian', { instanceId: 'guardian' });
    await waitIdle(th, id);
    await waitIdle(th, 'kid');
    await th.client.terminate('kid', 'kid stopped');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toMatchObject({
      taskName: 'Leaf',
      taskId: 0,
      errorName: 'TerminatedError',
      failureMessage: "Sub-orchestration 'kid' was terminated: kid stopped",
    });
    expect((await th.client.getStatus('kid'))!.runtimeStatus).toBe('Terminated');
    expect(eventsOf(st.history, 'SubOrchestrationInstanceFailed')).toHaveLength(1);
  });
});

/** Per OrchestratorStarted, the episode time of each TimerCreated: its fireAt minus that time is the delay. */
function retryDelays(history: readonly HistoryEvent[] | undefined): number[] {
  let episodeTime = 0;
  const delays: number[] = [];
  for (const e of history ?? []) {
    if (e.type === 'OrchestratorStarted') episodeTime = e.timestamp;
    if (e.type === 'TimerCreated') delays.push(e.fireAt - episodeTime);
  }
  return delays;
}

describe('retries', () => {
  it('succeeds on the third attempt, with backoff recorded as timers', async () => {
    let calls = 0;
    th = await createTestHub({
      orchestrators: {
        Retry: function* (ctx): Generator<unknown, unknown, any> {
          const opts: RetryOptions = { maxNumberOfAttempts: 5, firstRetryIntervalMs: 20, backoffCoefficient: 2 };
          return yield ctx.callActivityWithRetry('Flaky', opts, 'in');
        },
      },
      activities: {
        Flaky: async (x: string) => {
          calls++;
          if (calls < 3) throw new Error(`attempt ${calls} failed`);
          return `${x} ok on attempt ${calls}`;
        },
      },
    });
    const id = await th.client.startNew('Retry');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('in ok on attempt 3');
    expect(calls).toBe(3);
    const h = st.history;
    expect(scheduledIds(h, 'Flaky')).toEqual([0, 2, 4]);
    expect(eventsOf(h, 'TaskScheduled').map((e) => e.input)).toEqual(['in', 'in', 'in']);
    expect(eventsOf(h, 'TaskFailed').map((e) => [e.taskScheduledId, e.failure.message])).toEqual([
      [0, 'attempt 1 failed'],
      [2, 'attempt 2 failed'],
    ]);
    expect(eventsOf(h, 'TimerCreated').map((e) => e.taskId)).toEqual([1, 3]);
    expect(eventsOf(h, 'TimerFired').map((e) => e.timerId)).toEqual([1, 3]);
    expect(eventsOf(h, 'TaskCompleted').map((e) => e.taskScheduledId)).toEqual([4]);
    expect(retryDelays(h)).toEqual([20, 40]);
  });

  it('gives up after maxNumberOfAttempts with the last error and the attempt count', async () => {
    let calls = 0;
    th = await createTestHub({
      orchestrators: {
        GiveUp: function* (ctx): Generator<unknown, unknown, any> {
          try {
            yield ctx.callActivityWithRetry('AlwaysFails', { maxNumberOfAttempts: 3, firstRetryIntervalMs: 20, maxRetryIntervalMs: 30, backoffCoefficient: 3 });
            return 'no error';
          } catch (err) {
            return caught(err);
          }
        },
        GiveUpUncaught: function* (ctx): Generator<unknown, unknown, any> {
          return yield ctx.callActivityWithRetry('AlwaysFails', { maxNumberOfAttempts: 2, firstRetryIntervalMs: 20 });
        },
      },
      activities: {
        AlwaysFails: async () => {
          calls++;
          throw new TypeError(`failure #${calls}`);
        },
      },
    });
    const id = await th.client.startNew('GiveUp');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toMatchObject({ taskName: 'AlwaysFails', attempts: 3, errorName: 'TypeError', failureMessage: 'failure #3', taskId: 4 });
    expect(calls).toBe(3);
    expect(scheduledIds(st.history, 'AlwaysFails')).toEqual([0, 2, 4]);
    expect(eventsOf(st.history, 'TaskFailed')).toHaveLength(3);
    expect(eventsOf(st.history, 'TimerCreated')).toHaveLength(2);
    // 20, then 20 * 3 = 60 capped at 30.
    expect(retryDelays(st.history)).toEqual([20, 30]);

    const u = await th.client.startNew('GiveUpUncaught');
    const su = await th.client.waitForCompletion(u, WAIT);
    expect(su.runtimeStatus).toBe('Failed');
    expect(su.failure).toMatchObject({ errorName: 'TaskFailedError', inner: { errorName: 'TypeError', message: 'failure #5' } });
    expect(calls).toBe(5);
  });

  it('stops at once on a NonRetriableError (or any error marked nonRetriable)', async () => {
    const calls = { Declined: 0, Marked: 0 };
    th = await createTestHub({
      orchestrators: {
        NoRetry: function* (ctx, name: string): Generator<unknown, unknown, any> {
          try {
            yield ctx.callActivityWithRetry(name, { maxNumberOfAttempts: 5, firstRetryIntervalMs: 20 });
            return 'no error';
          } catch (err) {
            return caught(err);
          }
        },
      },
      activities: {
        Declined: async () => {
          calls.Declined++;
          throw new NonRetriableError('card declined');
        },
        Marked: async () => {
          calls.Marked++;
          throw Object.assign(new Error('marked by hand'), { nonRetriable: true });
        },
      },
    });
    const [a, b] = await Promise.all([th.client.startNew('NoRetry', { input: 'Declined' }), th.client.startNew('NoRetry', { input: 'Marked' })]);
    const sa = await th.client.waitForCompletion(a, WAIT);
    expect(sa.output).toMatchObject({ attempts: 1, errorName: 'NonRetriableError', failureMessage: 'card declined', nonRetriable: true });
    const sb = await th.client.waitForCompletion(b, WAIT);
    expect(sb.output).toMatchObject({ attempts: 1, errorName: 'Error', failureMessage: 'marked by hand', nonRetriable: true });
    for (const st of [sa, sb]) {
      expect(eventsOf(st.history, 'TaskScheduled')).toHaveLength(1);
      expect(eventsOf(st.history, 'TimerCreated')).toHaveLength(0);
    }
    expect(calls).toEqual({ Declined: 1, Marked: 1 });
  });

  it('stops when the handle callback says so', async () => {
    let calls = 0;
    th = await createTestHub({
      orchestrators: {
        Picky: function* (ctx): Generator<unknown, unknown, any> {
          try {
            yield ctx.callActivityWithRetry('Fails', {
              maxNumberOfAttempts: 10,
              firstRetryIntervalMs: 20,
              handle: (err) => err.failure.errorName !== 'SyntaxError',
            });
            return 'no error';
          } catch (err) {
            return caught(err);
          }
        },
      },
      activities: {
        Fails: async () => {
          calls++;
          throw calls < 3 ? new Error(`transient ${calls}`) : new SyntaxError(`fatal ${calls}`);
        },
      },
    });
    const id = await th.client.startNew('Picky');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toMatchObject({ attempts: 3, errorName: 'SyntaxError', failureMessage: 'fatal 3' });
    expect(calls).toBe(3);
    expect(eventsOf(st.history, 'TimerCreated')).toHaveLength(2);
  });

  it('retries inside a fan-out: ctx.all over retried activities, each failing before it succeeds', async () => {
    const attempts = new Map<number, number>();
    th = await createTestHub({
      orchestrators: {
        FanRetry: function* (ctx, n: number): Generator<unknown, unknown, any> {
          const opts: RetryOptions = { maxNumberOfAttempts: 4, firstRetryIntervalMs: 20 };
          const results: number[] = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivityWithRetry('FailsUntil', opts, i)));
          return results;
        },
      },
      activities: {
        // Item i fails (i % 3) times before it succeeds.
        FailsUntil: async (i: number) => {
          const a = (attempts.get(i) ?? 0) + 1;
          attempts.set(i, a);
          if (a <= i % 3) throw new Error(`item ${i} attempt ${a}`);
          return i * 10;
        },
      },
    });
    const id = await th.client.startNew('FanRetry', { input: 9 });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toEqual([0, 10, 20, 30, 40, 50, 60, 70, 80]);
    expect([...attempts.entries()].sort((a, b) => a[0] - b[0]).map(([, a]) => a)).toEqual([1, 2, 3, 1, 2, 3, 1, 2, 3]);
    // 9 first attempts + 9 retries; one timer per retry.
    expect(eventsOf(st.history, 'TaskScheduled')).toHaveLength(18);
    expect(eventsOf(st.history, 'TaskFailed')).toHaveLength(9);
    expect(eventsOf(st.history, 'TimerCreated')).toHaveLength(9);
    expect(eventsOf(st.history, 'TimerFired')).toHaveLength(9);
  });

  it('stops retrying once the next attempt would start after retryTimeoutMs', async () => {
    let calls = 0;
    const retryTimeoutMs = 150;
    th = await createTestHub({
      orchestrators: {
        Deadline: function* (ctx): Generator<unknown, unknown, any> {
          try {
            yield ctx.callActivityWithRetry('Down', { maxNumberOfAttempts: 100, firstRetryIntervalMs: 50, retryTimeoutMs });
            return 'no error';
          } catch (err) {
            return caught(err);
          }
        },
      },
      activities: {
        Down: async () => {
          calls++;
          throw new Error('service down');
        },
      },
    });
    const id = await th.client.startNew('Deadline');
    const st = await th.client.waitForCompletion<{ attempts: number }>(id, WAIT);
    const h = st.history!;
    const attempts = st.output!.attempts;
    expect(st.output).toMatchObject({ errorName: 'Error', failureMessage: 'service down' });
    expect(attempts).toBeGreaterThanOrEqual(1);
    expect(attempts).toBeLessThan(100);
    expect(calls).toBe(attempts);
    expect(eventsOf(h, 'TaskScheduled')).toHaveLength(attempts);
    expect(eventsOf(h, 'TaskFailed')).toHaveLength(attempts);
    expect(eventsOf(h, 'TimerCreated')).toHaveLength(attempts - 1);
    // The rule, checked against the recorded episode times: every retry timer is due within the
    // timeout of the first attempt's episode, and the retry that did not happen would not have been.
    const start = h.find((e) => e.type === 'OrchestratorStarted')!.timestamp;
    for (const t of eventsOf(h, 'TimerCreated')) expect(t.fireAt - start).toBeLessThanOrEqual(retryTimeoutMs);
    const os = h.filter((e) => e.type === 'OrchestratorStarted');
    const lastEpisode = os.at(-1)!.timestamp;
    expect(lastEpisode + 50 - start).toBeGreaterThan(retryTimeoutMs);
  });

  it('retries a sub-orchestration that fails twice', async () => {
    let calls = 0;
    th = await createTestHub({
      orchestrators: {
        Unsteady: function* (ctx, x: string): Generator<unknown, unknown, any> {
          const n: number = yield ctx.callActivity('Attempt');
          if (n < 3) throw new Error(`child attempt ${n} failed`);
          return `${x} done by ${ctx.instanceId}`;
        },
        Supervisor: function* (ctx): Generator<unknown, unknown, any> {
          return yield ctx.callSubOrchestratorWithRetry('Unsteady', { maxNumberOfAttempts: 4, firstRetryIntervalMs: 20 }, 'job');
        },
      },
      activities: { Attempt: async () => ++calls },
    });
    const id = await th.client.startNew('Supervisor', { instanceId: 'sup' });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    const childIds = eventsOf(st.history, 'SubOrchestrationInstanceCreated').map((e) => e.instanceId);
    expect(childIds).toEqual([0, 2, 4].map((s) => `sup-${st.executionId}-${s}`));
    expect(st.output).toBe(`job done by ${childIds[2]}`);
    expect(eventsOf(st.history, 'SubOrchestrationInstanceFailed').map((e) => [e.taskScheduledId, e.failure.errorName, e.failure.message])).toEqual([
      [0, 'Error', 'child attempt 1 failed'],
      [2, 'Error', 'child attempt 2 failed'],
    ]);
    expect(eventsOf(st.history, 'SubOrchestrationInstanceCompleted').map((e) => e.taskScheduledId)).toEqual([4]);
    expect(eventsOf(st.history, 'TimerCreated').map((e) => e.taskId)).toEqual([1, 3]);
    const statuses = await Promise.all(childIds.map(async (c) => (await th!.client.getStatus(c))!.runtimeStatus));
    expect(statuses).toEqual(['Failed', 'Failed', 'Completed']);
    expect(calls).toBe(3);
  });

  it('retries a sub-orchestration under one explicit id, reusing it per attempt', async () => {
    let calls = 0;
    th = await createTestHub({
      orchestrators: {
        Unsteady: function* (ctx): Generator<unknown, unknown, any> {
          const n: number = yield ctx.callActivity('Attempt');
          if (n < 3) throw new Error(`child attempt ${n} failed`);
          return n;
        },
        Supervisor: function* (ctx): Generator<unknown, unknown, any> {
          return yield ctx.callSubOrchestratorWithRetry('Unsteady', { maxNumberOfAttempts: 3, firstRetryIntervalMs: 20 }, undefined, 'worker-child');
        },
      },
      activities: { Attempt: async () => ++calls },
    });
    const id = await th.client.startNew('Supervisor');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe(3);
    expect(eventsOf(st.history, 'SubOrchestrationInstanceCreated').map((e) => e.instanceId)).toEqual(['worker-child', 'worker-child', 'worker-child']);
    const child = await th.client.getStatus('worker-child');
    expect(child).toMatchObject({ runtimeStatus: 'Completed', output: 3, parent: { instanceId: id, taskId: 4 } });
  });
});
