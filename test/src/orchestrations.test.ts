/**
 * End-to-end behaviour on a real Redis: chaining, fan-out/fan-in with the wake counter, errors,
 * unknown functions, duplicate starts and bad input.
 */
import {
  type HistoryEvent,
  InstanceAlreadyExistsError,
  type OrchestrationContext,
  PayloadError,
  TaskFailedError,
  ValidationError,
  WaitTimeoutError,
} from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { scanAll } from './helpers/redis.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const chainingActivities = {
  F1: async (x: string) => `${x}>F1`,
  F2: async (x: string) => `${x}>F2`,
  F3: async (x: string) => `${x}>F3`,
  F4: async (x: string) => `${x}>F4`,
};

function* chaining(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const x = yield ctx.callActivity('F1', input);
  const y = yield ctx.callActivity('F2', x);
  const z = yield ctx.callActivity('F3', y);
  return yield ctx.callActivity('F4', z);
}

async function chainingAsync(ctx: OrchestrationContext, input: string): Promise<string> {
  const x = await ctx.callActivity<string>('F1', input);
  const y = await ctx.callActivity<string>('F2', x);
  const z = await ctx.callActivity<string>('F3', y);
  return ctx.callActivity<string>('F4', z);
}

function* fanOut(ctx: OrchestrationContext, n: number): Generator<unknown, number, any> {
  const items: number[] = yield ctx.callActivity('List', n);
  const results: number[] = yield ctx.all(items.map((i) => ctx.callActivity('Square', i)));
  return results.reduce((a, b) => a + b, 0);
}

async function fanOutAsync(ctx: OrchestrationContext, n: number): Promise<number> {
  const items = await ctx.callActivity<number[]>('List', n);
  const results = await ctx.all(items.map((i) => ctx.callActivity<number>('Square', i)));
  return results.reduce((a, b) => a + b, 0);
}

const fanActivities = {
  List: async (n: number) => Array.from({ length: n }, (_, i) => i + 1),
  Square: async (i: number) => i * i,
};

/** History without timestamps and stream ids, for comparing runs. */
function shape(history: HistoryEvent[] | undefined): unknown[] {
  return (history ?? []).map((e) => {
    const { timestamp: _t, ...rest } = e as HistoryEvent & Record<string, unknown>;
    if (rest.type === 'ExecutionStarted') return { type: rest.type, input: rest.input };
    return rest;
  });
}

describe('function chaining', () => {
  it('runs F1 -> F2 -> F3 -> F4 and records a readable history', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities: chainingActivities });
    const id = await th.client.startNew('Chaining', { input: 'in', instanceId: 'chain-1' });
    expect(id).toBe('chain-1');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('in>F1>F2>F3>F4');
    expect(st.input).toBe('in');
    expect(st.name).toBe('Chaining');
    expect(st.episodes).toBe(5);
    const types = st.history!.map((e) => e.type);
    expect(types).toEqual([
      'OrchestratorStarted', 'ExecutionStarted', 'TaskScheduled', 'OrchestratorCompleted',
      'OrchestratorStarted', 'TaskCompleted', 'TaskScheduled', 'OrchestratorCompleted',
      'OrchestratorStarted', 'TaskCompleted', 'TaskScheduled', 'OrchestratorCompleted',
      'OrchestratorStarted', 'TaskCompleted', 'TaskScheduled', 'OrchestratorCompleted',
      'OrchestratorStarted', 'TaskCompleted', 'ExecutionCompleted', 'OrchestratorCompleted',
    ]);
    const scheduled = st.history!.filter((e) => e.type === 'TaskScheduled');
    expect(scheduled.map((e) => [e.taskId, e.name, e.input])).toEqual([
      [0, 'F1', 'in'],
      [1, 'F2', 'in>F1'],
      [2, 'F3', 'in>F1>F2'],
      [3, 'F4', 'in>F1>F2>F3'],
    ]);
    expect(st.createdAt.getTime()).toBeLessThanOrEqual(st.lastUpdatedAt.getTime());
  });

  it('works with orchestrator-only and activity-only workers on separate queues', async () => {
    th = await createTestHub(
      { orchestrators: { Chaining: chaining }, activities: chainingActivities },
      { startWorker: false },
    );
    const orch = await th.startWorker({ activities: false });
    const act = await th.startWorker({ orchestrators: false });
    const id = await th.client.startNew('Chaining', { input: 'q' });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toBe('q>F1>F2>F3>F4');
    expect(orch.stats.episodes).toBe(5);
    expect(orch.stats.activities).toBe(0);
    expect(act.stats.activities).toBe(4);
    expect(act.stats.episodes).toBe(0);
  });

  it('gives generator and async orchestrators identical histories', async () => {
    th = await createTestHub({
      orchestrators: { Gen: chaining, Async: chainingAsync, FanGen: fanOut, FanAsync: fanOutAsync },
      activities: { ...chainingActivities, ...fanActivities },
    });
    const c = th.client;
    const [g, a, fg, fa] = await Promise.all([
      c.startNew('Gen', { input: 'x' }),
      c.startNew('Async', { input: 'x' }),
      c.startNew('FanGen', { input: 25 }),
      c.startNew('FanAsync', { input: 25 }),
    ]);
    const [sg, sa, sfg, sfa] = await Promise.all(
      [g, a, fg, fa].map((id) => c.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true })),
    );
    expect(sa!.output).toBe(sg!.output);
    expect(sfa!.output).toBe(5525);
    expect(sfg!.output).toBe(5525);
    expect(shape(sa!.history)).toEqual(shape(sg!.history));
    // Fan-out completions arrive in any order; compare the scheduled part and the result.
    const scheduled = (h: HistoryEvent[] | undefined) => (h ?? []).filter((e) => e.type === 'TaskScheduled');
    expect(shape(scheduled(sfa!.history))).toEqual(shape(scheduled(sfg!.history)));
  });
});

describe('fan-out/fan-in', () => {
  it('sums 1,000 parallel activities with at most 4 orchestrator episodes', async () => {
    th = await createTestHub({ orchestrators: { FanOut: fanOut }, activities: fanActivities });
    const id = await th.client.startNew('FanOut', { input: 1000 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 60_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe((1000 * 1001 * 2001) / 6);
    // List, the fan-out, the fan-in: the counter wakes the orchestrator once for 1,000 results.
    expect(st.episodes).toBeLessThanOrEqual(4);
    const completed = st.history!.filter((e) => e.type === 'TaskCompleted');
    expect(completed).toHaveLength(1001);
    expect(new Set(completed.map((e) => e.taskScheduledId)).size).toBe(1001);
  });

  it('wakes at once when one task of a fan-out fails, and try/catch sees it', async () => {
    th = await createTestHub({
      orchestrators: {
        FanFail: function* (ctx) {
          const tasks = [1, 2, 3, 4].map((i) => ctx.callActivity('MaybeFail', i));
          try {
            yield ctx.all(tasks);
            return 'no error';
          } catch (err) {
            return `caught ${(err as TaskFailedError).taskName}: ${(err as TaskFailedError).failure.message}`;
          }
        },
      },
      activities: {
        MaybeFail: async (i: number) => {
          if (i === 3) throw new RangeError('three is bad');
          await new Promise((r) => setTimeout(r, 50));
          return i;
        },
      },
    });
    const id = await th.client.startNew('FanFail');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toBe('caught MaybeFail: three is bad');
  });
});

describe('errors', () => {
  it('delivers an activity failure to try/catch with name, message and stack, and runs compensation', async () => {
    let seen: TaskFailedError | undefined;
    th = await createTestHub({
      orchestrators: {
        Transfer: function* (ctx, amount: number) {
          yield ctx.callActivity('Debit', amount);
          try {
            yield ctx.callActivity('Credit', amount);
            return 'done';
          } catch (err) {
            if (!ctx.isReplaying) seen = err as TaskFailedError;
            yield ctx.callActivity('Refund', amount);
            return 'refunded';
          }
        },
      },
      activities: {
        Debit: async () => 'debited',
        Credit: async () => {
          class AccountClosedError extends Error {
            override name = 'AccountClosedError';
          }
          throw new AccountClosedError('account 42 is closed');
        },
        Refund: async (amount: number) => `refunded ${amount}`,
      },
    });
    const id = await th.client.startNew('Transfer', { input: 10 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('refunded');
    expect(seen).toBeInstanceOf(TaskFailedError);
    expect(seen!.taskName).toBe('Credit');
    expect(seen!.failure.errorName).toBe('AccountClosedError');
    expect(seen!.failure.message).toBe('account 42 is closed');
    expect(seen!.failure.stack).toContain('AccountClosedError');
    const names = st.history!.filter((e) => e.type === 'TaskScheduled').map((e) => e.name);
    expect(names).toEqual(['Debit', 'Credit', 'Refund']);
    expect(st.history!.some((e) => e.type === 'TaskFailed' && e.failure.errorName === 'AccountClosedError')).toBe(true);
  });

  it('fails the instance on an uncaught error, with the details in its status', async () => {
    th = await createTestHub({
      orchestrators: {
        Uncaught: function* (ctx) {
          yield ctx.callActivity('Boom');
          return 'unreachable';
        },
      },
      activities: {
        Boom: async () => {
          throw new TypeError('boom in activity');
        },
      },
    });
    const id = await th.client.startNew('Uncaught');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('TaskFailedError');
    expect(st.failure?.message).toContain("Activity 'Boom'");
    expect(st.failure?.message).toContain('TypeError: boom in activity');
    expect(st.failure?.inner?.errorName).toBe('TypeError');
    expect(st.failure?.inner?.stack).toContain('boom in activity');
    expect(st.history!.at(-2)).toMatchObject({ type: 'ExecutionCompleted', status: 'Failed' });
  });

  it('fails an instance of an unknown orchestrator started anyway, naming it and listing the registered ones', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining, Other: chaining }, activities: chainingActivities });
    // Without allowUnknownName the start itself is refused (worker-registry.test.ts).
    const id = await th.client.startNew('Missing', { allowUnknownName: true });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('FunctionNotFoundError');
    expect(st.failure?.message).toContain("No orchestrator named 'Missing' is registered. Registered orchestrators:");
    expect(st.failure?.message).toContain("'Chaining', 'Other'");
  });

  it('fails the task of an unknown activity, naming it and listing the registered ones', async () => {
    th = await createTestHub({
      orchestrators: {
        CallsMissing: function* (ctx) {
          try {
            yield ctx.callActivity('Nope', 1);
          } catch (err) {
            return (err as TaskFailedError).failure;
          }
        },
      },
      activities: chainingActivities,
    });
    const id = await th.client.startNew('CallsMissing');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toMatchObject({ errorName: 'FunctionNotFoundError', functionName: 'Nope' });
    expect((st.output as { message: string }).message).toContain("No activity named 'Nope' is registered. Registered activities: 'F1', 'F2', 'F3', 'F4'");
  });
});

describe('client', () => {
  it('refuses a duplicate start of a running instance and changes nothing', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    th = await createTestHub({
      orchestrators: { Slow: function* (ctx, x: string) { return yield ctx.callActivity('Wait', x); } },
      activities: { Wait: async (x: string) => { await gate; return x; } },
    });
    await th.client.startNew('Slow', { instanceId: 'dup', input: 'first' });
    const before = await th.client.getStatus('dup', { showHistory: true });
    const err = await th.client.startNew('Slow', { instanceId: 'dup', input: 'second' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstanceAlreadyExistsError);
    expect((err as InstanceAlreadyExistsError).instanceId).toBe('dup');
    expect((err as Error).message).toMatch(/already exists and is (Pending|Running)/);
    const after = await th.client.getStatus('dup', { showHistory: true });
    expect(after!.input).toBe('first');
    expect(after!.executionId).toBe(before!.executionId);
    release();
    const st = await th.client.waitForCompletion('dup', { timeoutMs: 20_000 });
    expect(st.output).toBe('first');
    // Once finished, the id can be used again: a new execution with fresh history.
    await th.client.startNew('Slow', { instanceId: 'dup', input: 'again' });
    const again = await th.client.waitForCompletion('dup', { timeoutMs: 20_000, showHistory: true });
    expect(again.output).toBe('again');
    expect(again.executionId).not.toBe(st.executionId);
    expect(again.history!.filter((e) => e.type === 'ExecutionStarted')).toHaveLength(1);
  });

  it('rejects bad ids, names and payloads without writing anything', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities: chainingActivities });
    const c = th.client;
    for (const bad of ['', 'a:b', 'x{y}', 'new\nline', 'sp ace', 'x'.repeat(257)]) {
      await expect(c.startNew('Chaining', { instanceId: bad })).rejects.toBeInstanceOf(ValidationError);
    }
    await expect(c.startNew('bad name!', {})).rejects.toThrow(/Invalid orchestrator name/);
    await expect(c.startNew('Chaining', { instanceId: 'f', input: { fn: () => 1 } })).rejects.toThrow(PayloadError);
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    await expect(c.startNew('Chaining', { instanceId: 'g', input: circular })).rejects.toThrow(/circular reference/);
    await expect(c.startNew('Chaining', { instanceId: 'h', input: Symbol('s') })).rejects.toThrow(/symbol/);
    expect(await c.getStatus('f')).toBeUndefined();
    expect(await scanAll(th.redis, `${th.keys.state('')}*`)).toEqual([]);
  });

  it('times out waiting with WaitTimeoutError and reports missing instances as undefined', async () => {
    th = await createTestHub({
      orchestrators: { Never: function* (ctx) { return yield ctx.waitForExternalEvent('go'); } },
    });
    const id = await th.client.startNew('Never');
    const err = await th.client.waitForCompletion(id, { timeoutMs: 300 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as WaitTimeoutError).runtimeStatus).toBe('Running');
    expect(await th.client.getStatus('no-such-instance')).toBeUndefined();
  });
});

describe('timers and external events', () => {
  it('fires a durable timer and delivers raised events, buffered in order', async () => {
    th = await createTestHub({
      orchestrators: {
        Approve: function* (ctx) {
          const fireAt = new Date(ctx.currentUtcDateTime.getTime() + 200);
          yield ctx.createTimer(fireAt);
          const first = yield ctx.waitForExternalEvent('step');
          const second = yield ctx.waitForExternalEvent('step');
          return [first, second, ctx.currentUtcDateTime.getTime() >= fireAt.getTime()];
        },
      },
    });
    const id = await th.client.startNew('Approve');
    // Both events arrive while the code still waits on the timer: they are buffered in order.
    await th.client.raiseEvent(id, 'step', 'one');
    await th.client.raiseEvent(id, 'step', { n: 2 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.output).toEqual(['one', { n: 2 }, true]);
    expect(st.history!.filter((e) => e.type === 'TimerFired')).toHaveLength(1);
    expect(st.history!.filter((e) => e.type === 'EventRaised').map((e) => e.input)).toEqual(['one', { n: 2 }]);
    await expect(th.client.raiseEvent(id, 'step', 3)).rejects.toThrow(/already finished \(Completed\)/);
    await expect(th.client.raiseEvent('missing', 'step', 3)).rejects.toThrow(/No instance 'missing'/);
    await expect(th.client.raiseEvent(id, 'bad name', 3)).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('timer cancellation', () => {
  it('removes a cancelled timer from BullMQ and forgets it', async () => {
    th = await createTestHub({
      orchestrators: {
        Approval: function* (ctx) {
          const timer = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 60_000));
          const event = ctx.waitForExternalEvent('Approval');
          const winner = yield ctx.any([event, timer]);
          if (winner !== event) return 'timed out';
          timer.cancel();
          yield ctx.waitForExternalEvent('Done');
          return `approved by ${event.result}`;
        },
      },
    });
    const id = await th.client.startNew('Approval', { instanceId: 'cancel-me' });
    const st0 = await waitUntil(async () => {
      const s = await th!.client.getStatus(id);
      return s?.runtimeStatus === 'Running' ? s : undefined;
    });
    const jobId = `t-${id}-${st0.executionId}-0`;
    expect(await th.client.backend.forInstance(id).orchestratorQueue.getJobState(jobId)).toBe('delayed');
    await th.client.raiseEvent(id, 'Approval', 'ann');
    await waitUntil(async () => ((await th!.client.backend.forInstance(id).orchestratorQueue.getJobState(jobId)) === 'unknown' ? true : undefined));
    expect(await th.redis.sismember(th.keys.pending(id), '0')).toBe(0);
    await th.client.raiseEvent(id, 'Done');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toBe('approved by ann');
  });
});

async function waitUntil<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('payloads the code produces', () => {
  it('fails the instance, instead of retrying forever, when its output or an activity input cannot be stored', async () => {
    th = await createTestHub({
      orchestrators: {
        BadOutput: function* () {
          return { callback: () => 1 };
        },
        BadActivityInput: function* (ctx) {
          return yield ctx.callActivity('F1', { when: Symbol('now') });
        },
      },
      activities: chainingActivities,
    });
    const a = await th.client.startNew('BadOutput');
    const b = await th.client.startNew('BadActivityInput');
    const sa = await th.client.waitForCompletion(a, { timeoutMs: 20_000, showHistory: true });
    const sb = await th.client.waitForCompletion(b, { timeoutMs: 20_000, showHistory: true });
    expect(sa.runtimeStatus).toBe('Failed');
    expect(sa.failure).toMatchObject({ errorName: 'PayloadError' });
    expect(sa.failure?.message).toContain("Output of orchestrator 'BadOutput'.callback is a function");
    expect(sb.runtimeStatus).toBe('Failed');
    expect(sb.failure?.message).toContain("Input of activity 'F1'.when is a symbol");
    // Nothing was scheduled for the failed episode.
    expect(sb.history!.some((e) => e.type === 'TaskScheduled')).toBe(false);
  });
});
