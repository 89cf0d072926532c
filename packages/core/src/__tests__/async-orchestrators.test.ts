/**
 * Async orchestrators (`async (ctx, input) => { await ctx.callActivity(...) }`) must behave exactly like
 * their generator twins, episode by episode; and awaiting or yielding something that is not a durable
 * task must be reported as NonDurableAwaitError.
 */
import { describe, it, expect } from 'vitest';
import {
  type ExecutionResult,
  type FailureDetails,
  type HistoryEvent,
  NonDurableAwaitError,
  type OrchestratorFunction,
  TaskFailedError,
  executeOrchestration,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
  newTaskFailedEvent,
  newTaskScheduledEvent,
} from '../index.js';
import { EpisodeRunner, T0, at, registryOf, startEvents } from './helpers.js';

/** Runs the same inboxes through a generator and an async orchestrator registered under one name. */
async function runBoth(name: string, generator: OrchestratorFunction, asyncFn: OrchestratorFunction, inboxes: HistoryEvent[][]) {
  const gen = new EpisodeRunner(registryOf(name, generator));
  const asy = new EpisodeRunner(registryOf(name, asyncFn));
  const pairs: { generator: ExecutionResult; async: ExecutionResult }[] = [];
  for (const inbox of inboxes) pairs.push({ generator: await gen.run(inbox), async: await asy.run(inbox) });
  return { pairs, genHistory: gen.history, asyncHistory: asy.history };
}

describe('async orchestrators match their generator twins', () => {
  it('chaining F1 -> F2 -> F3 -> F4: identical actions, action events, status and output in every episode', async () => {
    const generator: OrchestratorFunction = function* (ctx, input: string) {
      const a = yield ctx.callActivity('F1', input);
      const b = yield ctx.callActivity('F2', a);
      const c = yield ctx.callActivity('F3', b);
      return yield ctx.callActivity('F4', c);
    };
    const asyncFn: OrchestratorFunction = async (ctx, input: string) => {
      const a = await ctx.callActivity('F1', input);
      const b = await ctx.callActivity('F2', a);
      const c = await ctx.callActivity('F3', b);
      return await ctx.callActivity('F4', c);
    };
    const inboxes = [
      startEvents('Chain', 'x'),
      [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, 'r1', at(1))],
      [newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(1, 'r2', at(2))],
      [newOrchestratorStartedEvent(at(3)), newTaskCompletedEvent(2, 'r3', at(3))],
      [newOrchestratorStartedEvent(at(4)), newTaskCompletedEvent(3, 'r4', at(4))],
    ];

    const { pairs, genHistory, asyncHistory } = await runBoth('Chain', generator, asyncFn, inboxes);

    for (const { generator: g, async: a } of pairs) expect(a).toEqual(g);
    expect(asyncHistory).toEqual(genHistory);
    // And what they agree on is the right thing.
    expect(pairs.map((p) => p.async.actions)).toEqual([
      [{ type: 'ScheduleTask', id: 0, name: 'F1', input: 'x' }],
      [{ type: 'ScheduleTask', id: 1, name: 'F2', input: 'r1' }],
      [{ type: 'ScheduleTask', id: 2, name: 'F3', input: 'r2' }],
      [{ type: 'ScheduleTask', id: 3, name: 'F4', input: 'r3' }],
      [{ type: 'CompleteOrchestration', status: 'Completed', result: 'r4' }],
    ]);
    expect(pairs.map((p) => p.async.status)).toEqual(['Running', 'Running', 'Running', 'Running', 'Completed']);
    expect(pairs[4]!.async.output).toBe('r4');
    expect(pairs[4]!.async.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Completed', result: 'r4', timestamp: at(4) }]);
  });

  it('fan-out / fan-in (F1 -> all(F2 x N) -> F3): identical results in every episode, including partial fan-in', async () => {
    const generator: OrchestratorFunction = function* (ctx) {
      const items: number[] = yield ctx.callActivity('GetItems');
      const results: number[] = yield ctx.all(items.map((i) => ctx.callActivity('Square', i)));
      return yield ctx.callActivity('Sum', results);
    };
    const asyncFn: OrchestratorFunction = async (ctx) => {
      const items = await ctx.callActivity<number[]>('GetItems');
      const results = await ctx.all(items.map((i) => ctx.callActivity<number>('Square', i)));
      return await ctx.callActivity('Sum', results);
    };
    const inboxes = [
      startEvents('FanOut'),
      [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, [1, 2, 3], at(1))],
      [newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(2, 4, at(2))],
      [newOrchestratorStartedEvent(at(3)), newTaskCompletedEvent(3, 9, at(3)), newTaskCompletedEvent(1, 1, at(3))],
      [newOrchestratorStartedEvent(at(4)), newTaskCompletedEvent(4, 14, at(4))],
    ];

    const { pairs, genHistory, asyncHistory } = await runBoth('FanOut', generator, asyncFn, inboxes);

    for (const { generator: g, async: a } of pairs) expect(a).toEqual(g);
    expect(asyncHistory).toEqual(genHistory);
    expect(pairs.map((p) => p.async.wait)).toEqual([
      { kind: 'any', ids: [0], coversAllOpen: true },
      { kind: 'all', ids: [1, 2, 3], coversAllOpen: true },
      { kind: 'all', ids: [1, 3], coversAllOpen: true },
      { kind: 'any', ids: [4], coversAllOpen: true },
      undefined,
    ]);
    expect(pairs[1]!.async.actions).toEqual([
      { type: 'ScheduleTask', id: 1, name: 'Square', input: 1 },
      { type: 'ScheduleTask', id: 2, name: 'Square', input: 2 },
      { type: 'ScheduleTask', id: 3, name: 'Square', input: 3 },
    ]);
    expect(pairs[2]!.async.actions).toEqual([]);
    expect(pairs[3]!.async.actions).toEqual([{ type: 'ScheduleTask', id: 4, name: 'Sum', input: [1, 4, 9] }]);
    expect(pairs[4]!.async.status).toBe('Completed');
    expect(pairs[4]!.async.output).toBe(14);
  });

  it('try/catch compensation: identical results, and the async catch gets the same TaskFailedError', async () => {
    const failure: FailureDetails = { errorName: 'PaymentDeclinedError', message: 'card declined', stack: 'PaymentDeclinedError: card declined\n    at x' };
    const caught: { style: string; err: unknown }[] = [];
    const generator: OrchestratorFunction = function* (ctx) {
      try {
        return yield ctx.callActivity('Charge');
      } catch (err) {
        caught.push({ style: 'generator', err });
        yield ctx.callActivity('Refund', (err as TaskFailedError).taskName);
        return 'refunded';
      }
    };
    const asyncFn: OrchestratorFunction = async (ctx) => {
      try {
        return await ctx.callActivity('Charge');
      } catch (err) {
        caught.push({ style: 'async', err });
        await ctx.callActivity('Refund', (err as TaskFailedError).taskName);
        return 'refunded';
      }
    };
    const inboxes = [
      startEvents('Pay'),
      [newOrchestratorStartedEvent(at(1)), newTaskFailedEvent(0, failure, at(1))],
      [newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(1, undefined, at(2))],
    ];

    const { pairs } = await runBoth('Pay', generator, asyncFn, inboxes);

    for (const { generator: g, async: a } of pairs) expect(a).toEqual(g);
    expect(pairs[1]!.async.actions).toEqual([{ type: 'ScheduleTask', id: 1, name: 'Refund', input: 'Charge' }]);
    expect(pairs[2]!.async.output).toBe('refunded');
    const asyncErr = caught.find((c) => c.style === 'async')!.err as TaskFailedError;
    expect(asyncErr).toBeInstanceOf(TaskFailedError);
    expect(asyncErr.taskName).toBe('Charge');
    expect(asyncErr.failure).toEqual(failure);
  });

  it('an uncaught activity failure fails both styles identically', async () => {
    const failure: FailureDetails = { errorName: 'Error', message: 'nope' };
    const { pairs } = await runBoth(
      'Pay',
      function* (ctx) {
        return yield ctx.callActivity('Charge');
      },
      async (ctx) => await ctx.callActivity('Charge'),
      [startEvents('Pay'), [newOrchestratorStartedEvent(at(1)), newTaskFailedEvent(0, failure, at(1))]],
    );

    const last = pairs[1]!;
    expect(last.async.status).toBe('Failed');
    expect(last.generator.status).toBe('Failed');
    expect(last.async.failure?.errorName).toBe('TaskFailedError');
    expect(last.async.failure?.message).toContain("'Charge'");
    // Stacks differ between the two styles; everything else must match.
    const strip = (r: ExecutionResult) => JSON.parse(JSON.stringify(r, (k, v) => (k === 'stack' ? undefined : v)));
    expect(strip(last.async)).toEqual(strip(last.generator));
  });
});

describe('non-durable awaits', () => {
  it('an async orchestrator awaiting a setTimeout promise fails with NonDurableAwaitError', async () => {
    const registry = registryOf('Sleepy', async (ctx) => {
      const r = await ctx.callActivity('F1');
      await new Promise((resolve) => setTimeout(resolve, 10));
      return r;
    });

    const first = await executeOrchestration(registry, [], startEvents('Sleepy'));
    expect(first.status).toBe('Running');
    expect(first.actions).toEqual([{ type: 'ScheduleTask', id: 0, name: 'F1', input: undefined }]);

    const second = await executeOrchestration(registry, [...startEvents('Sleepy'), newTaskScheduledEvent(0, 'F1', undefined, T0)], [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'r', at(1)),
    ]);
    expect(second.status).toBe('Failed');
    expect(second.failure?.errorName).toBe('NonDurableAwaitError');
    expect(second.failure?.message).toContain("Orchestrator 'Sleepy'");
    expect(second.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Failed', failure: second.failure }]);
  });

  it('an async orchestrator awaiting a never-resolving promise fails in its first episode', async () => {
    const registry = registryOf('Stuck', async () => {
      await new Promise(() => {});
      return 'unreachable';
    });
    const result = await executeOrchestration(registry, [], startEvents('Stuck'));

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDurableAwaitError');
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Failed', failure: result.failure }]);
  });

  it('awaiting an already-resolved plain promise is fine (it settles within the episode)', async () => {
    const registry = registryOf('Fine', async (ctx) => {
      const n = await Promise.resolve(2);
      return await ctx.callActivity('F1', n);
    });
    const result = await executeOrchestration(registry, [], startEvents('Fine'));

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([{ type: 'ScheduleTask', id: 0, name: 'F1', input: 2 }]);
  });

  it('a generator yielding a Promise gets NonDurableAwaitError thrown in, and can catch it', async () => {
    const caught: unknown[] = [];
    const registry = registryOf('Yields', function* (ctx) {
      try {
        yield Promise.resolve(1);
      } catch (err) {
        caught.push(err);
      }
      return yield ctx.callActivity('F1');
    });
    const result = await executeOrchestration(registry, [], startEvents('Yields'));

    expect(caught).toHaveLength(1);
    expect(caught[0]).toBeInstanceOf(NonDurableAwaitError);
    expect((caught[0] as Error).name).toBe('NonDurableAwaitError');
    expect((caught[0] as Error).message).toContain("Orchestrator 'Yields' yielded a Promise");
    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([{ type: 'ScheduleTask', id: 0, name: 'F1', input: undefined }]);
  });

  it('a generator yielding a Promise without catching it fails with NonDurableAwaitError', async () => {
    const registry = registryOf('Yields', function* () {
      const v = yield Promise.resolve(1);
      return v;
    });
    const result = await executeOrchestration(registry, [], startEvents('Yields'));

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDurableAwaitError');
    expect(result.failure?.message).toContain('yielded a Promise');
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Failed', failure: result.failure }]);
    expect(result.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Failed', failure: result.failure, timestamp: T0 }]);
  });

  it('a generator yielding a plain value fails with NonDurableAwaitError naming its type', async () => {
    const registry = registryOf('Yields', function* () {
      yield 42;
      return 'unreachable';
    });
    const result = await executeOrchestration(registry, [], startEvents('Yields'));

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDurableAwaitError');
    expect(result.failure?.message).toContain('yielded number');
  });
});
