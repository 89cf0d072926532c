/**
 * Executor unit tests: (orchestrator code, hand-made history) -> exact actions, action events,
 * status, output and wait spec. No Redis.
 */
import { describe, it, expect } from 'vitest';
import {
  ActivityTask,
  type FailureDetails,
  FunctionNotFoundError,
  HistoryError,
  type OrchestratorFunction,
  Registry,
  TaskFailedError,
  TimerTask,
  executeOrchestration,
  newEventRaisedEvent,
  newExecutionStartedEvent,
  newExecutionTerminatedEvent,
  newOrchestratorCompletedEvent,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
  newTaskFailedEvent,
  newTaskScheduledEvent,
  newTimerCreatedEvent,
  newTimerFiredEvent,
} from '../index.js';
import { INSTANCE_ID, T0, at, chain, registryOf, startEvents } from './helpers.js';

describe('chaining F1 -> F2 -> F3 -> F4', () => {
  const registry = registryOf('Chain', chain);

  it('first episode schedules only F1, with the orchestration input', async () => {
    const result = await executeOrchestration(registry, [], startEvents('Chain', 'x'));

    expect(result).toEqual({
      instanceId: INSTANCE_ID,
      executionId: 'e0',
      name: 'Chain',
      started: true,
      status: 'Running',
      actions: [{ type: 'ScheduleTask', id: 0, name: 'F1', input: 'x' }],
      actionEvents: [{ type: 'TaskScheduled', taskId: 0, name: 'F1', input: 'x', timestamp: T0 }],
      wait: { kind: 'any', ids: [0], coversAllOpen: true },
    });
    expect(result.output).toBeUndefined();
    expect(result.failure).toBeUndefined();
    expect(result.customStatus).toBeUndefined();
  });

  it("second episode (TaskCompleted(0) new) schedules F2 with F1's result", async () => {
    const past = [...startEvents('Chain', 'x'), newTaskScheduledEvent(0, 'F1', 'x', at(0)), newOrchestratorCompletedEvent(at(0))];
    const result = await executeOrchestration(registry, past, [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, 'x>F1', at(1))]);

    expect(result.status).toBe('Running');
    expect(result.started).toBe(false);
    expect(result.actions).toEqual([{ type: 'ScheduleTask', id: 1, name: 'F2', input: 'x>F1' }]);
    expect(result.actionEvents).toEqual([{ type: 'TaskScheduled', taskId: 1, name: 'F2', input: 'x>F1', timestamp: at(1) }]);
    expect(result.wait).toEqual({ kind: 'any', ids: [1], coversAllOpen: true });
  });

  it("third episode schedules F3 with F2's result", async () => {
    const past = [
      ...startEvents('Chain', 'x'),
      newTaskScheduledEvent(0, 'F1', 'x', at(0)),
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'x>F1', at(1)),
      newTaskScheduledEvent(1, 'F2', 'x>F1', at(1)),
    ];
    const result = await executeOrchestration(registry, past, [newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(1, 'x>F1>F2', at(2))]);

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([{ type: 'ScheduleTask', id: 2, name: 'F3', input: 'x>F1>F2' }]);
    expect(result.actionEvents).toEqual([{ type: 'TaskScheduled', taskId: 2, name: 'F3', input: 'x>F1>F2', timestamp: at(2) }]);
  });

  it('final episode completes with F4 result and an ExecutionCompleted action event', async () => {
    const past = [
      ...startEvents('Chain', 'x'),
      newTaskScheduledEvent(0, 'F1', 'x', at(0)),
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'x>F1', at(1)),
      newTaskScheduledEvent(1, 'F2', 'x>F1', at(1)),
      newOrchestratorStartedEvent(at(2)),
      newTaskCompletedEvent(1, 'x>F1>F2', at(2)),
      newTaskScheduledEvent(2, 'F3', 'x>F1>F2', at(2)),
      newOrchestratorStartedEvent(at(3)),
      newTaskCompletedEvent(2, 'x>F1>F2>F3', at(3)),
      newTaskScheduledEvent(3, 'F4', 'x>F1>F2>F3', at(3)),
    ];
    const result = await executeOrchestration(registry, past, [newOrchestratorStartedEvent(at(4)), newTaskCompletedEvent(3, 'done', at(4))]);

    expect(result.status).toBe('Completed');
    expect(result.output).toBe('done');
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Completed', result: 'done' }]);
    expect(result.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Completed', result: 'done', timestamp: at(4) }]);
    expect(result.wait).toBeUndefined();
  });

  it('a duplicate TaskCompleted for the same task changes nothing (the first result wins)', async () => {
    const past = [...startEvents('Chain', 'x'), newTaskScheduledEvent(0, 'F1', 'x', at(0))];
    const result = await executeOrchestration(registry, past, [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'first', at(1)),
      newTaskCompletedEvent(0, 'second', at(1)),
    ]);

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([{ type: 'ScheduleTask', id: 1, name: 'F2', input: 'first' }]);
  });
});

describe('fan-out / fan-in with ctx.all', () => {
  const fanOut: OrchestratorFunction = function* (ctx, items: number[]) {
    const results: number[] = yield ctx.all(items.map((i) => ctx.callActivity('Square', i)));
    return { results, sum: results.reduce((a, b) => a + b, 0) };
  };
  const registry = registryOf('FanOut', fanOut);
  const items = [1, 2, 3, 4];
  const scheduled = items.map((i, id) => newTaskScheduledEvent(id, 'Square', i, T0));

  it('first episode schedules N tasks and waits on all of them', async () => {
    const result = await executeOrchestration(registry, [], startEvents('FanOut', items));

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual(items.map((i, id) => ({ type: 'ScheduleTask', id, name: 'Square', input: i })));
    expect(result.actionEvents).toEqual(scheduled);
    expect(result.wait).toEqual({ kind: 'all', ids: [0, 1, 2, 3], coversAllOpen: true });
  });

  it('with only some completions it stays Running and waits on the missing ones', async () => {
    const past = [...startEvents('FanOut', items), ...scheduled];
    const result = await executeOrchestration(registry, past, [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(2, 9, at(1)),
      newTaskCompletedEvent(0, 1, at(1)),
    ]);

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([]);
    expect(result.actionEvents).toEqual([]);
    expect(result.wait).toEqual({ kind: 'all', ids: [1, 3], coversAllOpen: true });
  });

  it('with all completed (out of order, over two episodes) it completes with results in task order', async () => {
    const past = [
      ...startEvents('FanOut', items),
      ...scheduled,
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(2, 9, at(1)),
      newTaskCompletedEvent(0, 1, at(1)),
    ];
    const result = await executeOrchestration(registry, past, [
      newOrchestratorStartedEvent(at(2)),
      newTaskCompletedEvent(3, 16, at(2)),
      newTaskCompletedEvent(1, 4, at(2)),
    ]);

    const output = { results: [1, 4, 9, 16], sum: 30 };
    expect(result.status).toBe('Completed');
    expect(result.output).toEqual(output);
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Completed', result: output }]);
    expect(result.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Completed', result: output, timestamp: at(2) }]);
  });

  it('completions in reverse order in one episode still give results in task order', async () => {
    const past = [...startEvents('FanOut', items), ...scheduled];
    const result = await executeOrchestration(registry, past, [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(3, 'd', at(1)),
      newTaskCompletedEvent(2, 'c', at(1)),
      newTaskCompletedEvent(1, 'b', at(1)),
      newTaskCompletedEvent(0, 'a', at(1)),
    ]);

    expect(result.status).toBe('Completed');
    expect((result.output as { results: unknown[] }).results).toEqual(['a', 'b', 'c', 'd']);
  });

  it('an empty fan-out completes at once with []', async () => {
    const result = await executeOrchestration(registry, [], startEvents('FanOut', []));

    expect(result.status).toBe('Completed');
    expect(result.output).toEqual({ results: [], sum: 0 });
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Completed', result: { results: [], sum: 0 } }]);
  });

  it('a failed child fails ctx.all with that activity failure (uncaught -> Failed)', async () => {
    const past = [...startEvents('FanOut', items), ...scheduled];
    const failure: FailureDetails = { errorName: 'RangeError', message: 'too big' };
    const result = await executeOrchestration(registry, past, [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 1, at(1)),
      newTaskFailedEvent(2, failure, at(1)),
    ]);

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('TaskFailedError');
    expect(result.failure?.message).toContain("'Square' (task 2)");
    expect(result.failure?.inner).toEqual(failure);
  });
});

describe('ctx.any', () => {
  const deadlineMs = 60_000;

  function raceRegistry(seen: { work?: unknown; winner?: unknown }[]): Registry {
    return registryOf('Race', function* (ctx) {
      const work = ctx.callActivity('Work', 'job');
      const deadline = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + deadlineMs));
      const winner = yield ctx.any([work, deadline]);
      seen.push({ work, winner });
      if (winner !== work) return 'timed out';
      return yield ctx.callActivity('Next', winner.result);
    });
  }
  const scheduledPast = [
    ...startEvents('Race'),
    newTaskScheduledEvent(0, 'Work', 'job', T0),
    newTimerCreatedEvent(1, T0 + deadlineMs, T0),
  ];

  it('first episode schedules the activity and the timer and waits on any of them', async () => {
    const result = await executeOrchestration(raceRegistry([]), [], startEvents('Race'));

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([
      { type: 'ScheduleTask', id: 0, name: 'Work', input: 'job' },
      { type: 'CreateTimer', id: 1, fireAt: T0 + deadlineMs },
    ]);
    expect(result.actionEvents).toEqual(scheduledPast.slice(2));
    expect(result.wait).toEqual({ kind: 'any', ids: [0, 1], coversAllOpen: true });
  });

  it('the winning task is the result; the losing timer stays open, so the next wait does not cover all open tasks', async () => {
    const seen: { work?: unknown; winner?: unknown }[] = [];
    const result = await executeOrchestration(raceRegistry(seen), scheduledPast, [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'worked', at(1)),
    ]);

    expect(seen).toHaveLength(1);
    expect(seen[0]!.winner).toBe(seen[0]!.work);
    expect(seen[0]!.winner).toBeInstanceOf(ActivityTask);
    expect((seen[0]!.winner as ActivityTask).result).toBe('worked');
    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([{ type: 'ScheduleTask', id: 2, name: 'Next', input: 'worked' }]);
    expect(result.wait).toEqual({ kind: 'any', ids: [2], coversAllOpen: false });
  });

  it('once the losing timer fires, the wait covers all open tasks again; then the orchestration completes', async () => {
    const past = [
      ...scheduledPast,
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'worked', at(1)),
      newTaskScheduledEvent(2, 'Next', 'worked', at(1)),
    ];
    const registry = raceRegistry([]);
    const fired = await executeOrchestration(registry, past, [newOrchestratorStartedEvent(at(60)), newTimerFiredEvent(1, T0 + deadlineMs, at(60))]);
    expect(fired.status).toBe('Running');
    expect(fired.actions).toEqual([]);
    expect(fired.wait).toEqual({ kind: 'any', ids: [2], coversAllOpen: true });

    const done = await executeOrchestration(
      registry,
      [...past, newOrchestratorStartedEvent(at(60)), newTimerFiredEvent(1, T0 + deadlineMs, at(60))],
      [newOrchestratorStartedEvent(at(61)), newTaskCompletedEvent(2, 'next done', at(61))],
    );
    expect(done.status).toBe('Completed');
    expect(done.output).toBe('next done');
  });

  it('when the timer wins, the result is the TimerTask', async () => {
    const seen: { work?: unknown; winner?: unknown }[] = [];
    const result = await executeOrchestration(raceRegistry(seen), scheduledPast, [
      newOrchestratorStartedEvent(at(60)),
      newTimerFiredEvent(1, T0 + deadlineMs, at(60)),
    ]);

    expect(seen[0]!.winner).toBeInstanceOf(TimerTask);
    expect((seen[0]!.winner as TimerTask).id).toBe(1);
    expect(result.status).toBe('Completed');
    expect(result.output).toBe('timed out');
  });
  it('a loser of ctx.any that the code then yields (or awaits) on its own is what the code waits on', async () => {
    const gen: OrchestratorFunction = function* (ctx) {
      const a = ctx.callActivity('A');
      const b = ctx.callActivity('B');
      const winner = yield ctx.any([a, b]);
      const rest = yield b;
      return [winner === a, rest];
    };
    const asyncStyle: OrchestratorFunction = async (ctx) => {
      const a = ctx.callActivity('A');
      const b = ctx.callActivity('B');
      await ctx.any([a, b]);
      const rest = await b;
      return [a.isCompleted, rest];
    };
    const past = [...startEvents('Loser'), newTaskScheduledEvent(0, 'A', undefined, T0), newTaskScheduledEvent(1, 'B', undefined, T0)];
    for (const fn of [gen, asyncStyle]) {
      const registry = registryOf('Loser', fn);
      const waiting = await executeOrchestration(registry, past, [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, 'a', at(1))]);
      expect(waiting.status).toBe('Running'); // not NonDurableAwaitError: the code waits on B
      expect(waiting.wait).toEqual({ kind: 'any', ids: [1], coversAllOpen: true });
      const done = await executeOrchestration(registry, [...past, newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, 'a', at(1))], [
        newOrchestratorStartedEvent(at(2)),
        newTaskCompletedEvent(1, 'b', at(2)),
      ]);
      expect(done.status).toBe('Completed');
      expect(done.output).toEqual([true, 'b']);
    }
  });
});

describe('activity failures', () => {
  const failure: FailureDetails = {
    errorName: 'PaymentDeclinedError',
    message: 'card declined',
    stack: 'PaymentDeclinedError: card declined\n    at charge (activities.ts:10:5)',
  };

  function compensatingRegistry(caught: unknown[]): Registry {
    return registryOf('Order', function* (ctx, order: string) {
      yield ctx.callActivity('Reserve', order);
      try {
        return yield ctx.callActivity('Charge', order);
      } catch (err) {
        caught.push(err);
        const e = err as TaskFailedError;
        yield ctx.callActivity('Release', { order, taskName: e.taskName, errorName: e.failure.errorName });
        return 'compensated';
      }
    });
  }
  const past = [
    ...startEvents('Order', 'o-1'),
    newTaskScheduledEvent(0, 'Reserve', 'o-1', T0),
    newOrchestratorStartedEvent(at(1)),
    newTaskCompletedEvent(0, 'reserved', at(1)),
    newTaskScheduledEvent(1, 'Charge', 'o-1', at(1)),
  ];

  it('TaskFailed reaches the catch block as a TaskFailedError, and the compensation gets scheduled', async () => {
    const caught: unknown[] = [];
    const result = await executeOrchestration(compensatingRegistry(caught), past, [
      newOrchestratorStartedEvent(at(2)),
      newTaskFailedEvent(1, failure, at(2)),
    ]);

    expect(caught).toHaveLength(1);
    const err = caught[0] as TaskFailedError;
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(err.name).toBe('TaskFailedError');
    expect(err.taskName).toBe('Charge');
    expect(err.taskId).toBe(1);
    expect(err.failure.errorName).toBe('PaymentDeclinedError');
    expect(err.failure.message).toBe('card declined');
    expect(err.failure.stack).toBe(failure.stack);
    expect(err.causeName).toBe('PaymentDeclinedError');
    expect(err.causeStack).toBe(failure.stack);
    expect(err.message).toBe("Activity 'Charge' (task 1) failed: PaymentDeclinedError: card declined");

    expect(result.status).toBe('Running');
    const releaseInput = { order: 'o-1', taskName: 'Charge', errorName: 'PaymentDeclinedError' };
    expect(result.actions).toEqual([{ type: 'ScheduleTask', id: 2, name: 'Release', input: releaseInput }]);
    expect(result.actionEvents).toEqual([{ type: 'TaskScheduled', taskId: 2, name: 'Release', input: releaseInput, timestamp: at(2) }]);
  });

  it('after the compensation completes, the orchestration completes normally', async () => {
    const releaseInput = { order: 'o-1', taskName: 'Charge', errorName: 'PaymentDeclinedError' };
    const result = await executeOrchestration(
      compensatingRegistry([]),
      [...past, newOrchestratorStartedEvent(at(2)), newTaskFailedEvent(1, failure, at(2)), newTaskScheduledEvent(2, 'Release', releaseInput, at(2))],
      [newOrchestratorStartedEvent(at(3)), newTaskCompletedEvent(2, undefined, at(3))],
    );

    expect(result.status).toBe('Completed');
    expect(result.output).toBe('compensated');
  });

  it('an uncaught activity failure fails the orchestration with details naming the activity', async () => {
    const registry = registryOf('Pay', function* (ctx, amount: number) {
      return yield ctx.callActivity('Charge', amount);
    });
    const result = await executeOrchestration(registry, [...startEvents('Pay', 5), newTaskScheduledEvent(0, 'Charge', 5, T0)], [
      newOrchestratorStartedEvent(at(1)),
      newTaskFailedEvent(0, failure, at(1)),
    ]);

    expect(result.status).toBe('Failed');
    expect(result.output).toBeUndefined();
    expect(result.failure).toMatchObject({
      errorName: 'TaskFailedError',
      message: "Activity 'Charge' (task 0) failed: PaymentDeclinedError: card declined",
      functionName: 'Pay',
      inner: failure,
    });
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Failed', failure: result.failure }]);
    expect(result.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Failed', failure: result.failure, timestamp: at(1) }]);
  });

  it('an orchestrator that throws before its first yield fails with its own error', async () => {
    const registry = registryOf('Boom', function* () {
      throw new TypeError('bad input');
    });
    const result = await executeOrchestration(registry, [], startEvents('Boom'));

    expect(result.status).toBe('Failed');
    expect(result.failure).toMatchObject({ errorName: 'TypeError', message: 'bad input', functionName: 'Boom' });
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Failed', failure: result.failure }]);
  });

  it('a plain (non-generator, non-async) function that throws when called fails the orchestration', async () => {
    const registry = registryOf('Plain', () => {
      throw new Error('plain failure');
    });
    const result = await executeOrchestration(registry, [], startEvents('Plain'));

    expect(result.status).toBe('Failed');
    expect(result.failure).toMatchObject({ errorName: 'Error', message: 'plain failure', functionName: 'Plain' });
  });
});

describe('non-determinism', () => {
  it("history says TaskScheduled(0, 'F1') but the code schedules 'F2'", async () => {
    const registry = registryOf('Changed', function* (ctx) {
      return yield ctx.callActivity('F2');
    });
    const result = await executeOrchestration(registry, [...startEvents('Changed'), newTaskScheduledEvent(0, 'F1', undefined, T0)], [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'r', at(1)),
    ]);

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDeterminismError');
    expect(result.failure?.message).toContain("activity 'F1'");
    expect(result.failure?.message).toContain("activity 'F2'");
    expect(result.failure?.message).toContain('sequence number 0');
    // A non-deterministic replay must not schedule or complete anything else.
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Failed', failure: result.failure }]);
    expect(result.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Failed', failure: result.failure, timestamp: at(1) }]);
  });

  it("an async orchestrator scheduling 'F2' where history says 'F1' fails the same way", async () => {
    const registry = registryOf('Changed', async (ctx) => await ctx.callActivity('F2'));
    const result = await executeOrchestration(registry, [...startEvents('Changed'), newTaskScheduledEvent(0, 'F1', undefined, T0)], [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'r', at(1)),
    ]);

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDeterminismError');
    expect(result.failure?.message).toContain("the history records activity 'F1', but the code did activity 'F2'");
  });

  it('history has a TaskScheduled where the (blocked) code scheduled nothing', async () => {
    const registry = registryOf('Shrunk', function* (ctx) {
      return yield ctx.callActivity('F1');
    });
    const result = await executeOrchestration(
      registry,
      [...startEvents('Shrunk'), newTaskScheduledEvent(0, 'F1', undefined, T0), newTaskScheduledEvent(1, 'F2', undefined, T0)],
      [newOrchestratorStartedEvent(at(1))],
    );

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDeterminismError');
    expect(result.failure?.message).toContain("sequence number 1 the history records activity 'F2'");
    expect(result.failure?.message).toContain('nothing');
  });

  it('history has a TaskScheduled but the code now returns without scheduling anything', async () => {
    const registry = registryOf('Shortcut', function* () {
      return 'early';
    });
    const result = await executeOrchestration(registry, [...startEvents('Shortcut'), newTaskScheduledEvent(0, 'F1', undefined, T0)], [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'r', at(1)),
    ]);

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDeterminismError');
    expect(result.failure?.message).toContain("activity 'F1'");
    expect(result.failure?.message).toContain('nothing');
  });

  it('history says a timer was created where the code calls an activity', async () => {
    const registry = registryOf('Swapped', function* (ctx) {
      return yield ctx.callActivity('F1');
    });
    const result = await executeOrchestration(registry, [...startEvents('Swapped'), newTimerCreatedEvent(0, T0 + 1000, T0)], [
      newOrchestratorStartedEvent(at(1)),
    ]);

    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDeterminismError');
    expect(result.failure?.message).toContain('a timer');
    expect(result.failure?.message).toContain("activity 'F1'");
  });
});

describe('fire-and-forget activities', () => {
  const registry = registryOf('Notify', function* (ctx, who: string) {
    ctx.callActivity('SendEmail', who);
    return 'sent';
  });

  it('an activity the code does not wait on is still scheduled when the code completes in the same episode', async () => {
    const result = await executeOrchestration(registry, [], startEvents('Notify', 'ann'));

    expect(result.status).toBe('Completed');
    expect(result.actions).toEqual([
      { type: 'ScheduleTask', id: 0, name: 'SendEmail', input: 'ann' },
      { type: 'CompleteOrchestration', status: 'Completed', result: 'sent' },
    ]);
    expect(result.actionEvents).toEqual([
      { type: 'TaskScheduled', taskId: 0, name: 'SendEmail', input: 'ann', timestamp: T0 },
      { type: 'ExecutionCompleted', status: 'Completed', result: 'sent', timestamp: T0 },
    ]);
  });

  it('replaying that history does not schedule the activity a second time', async () => {
    const first = await executeOrchestration(registry, [], startEvents('Notify', 'ann'));
    const history = [...startEvents('Notify', 'ann'), ...first.actionEvents];
    const result = await executeOrchestration(registry, history, [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, undefined, at(1))]);

    expect(result.actions.filter((a) => a.type === 'ScheduleTask')).toEqual([]);
    expect(result.actionEvents.filter((e) => e.type === 'TaskScheduled')).toEqual([]);
  });
});

describe('registry and history errors', () => {
  it('an unknown orchestrator name fails with FunctionNotFoundError listing the registered names', async () => {
    const registry = new Registry()
      .addOrchestrator('Beta', function* () {
        return 1;
      })
      .addOrchestrator('Alpha', function* () {
        return 2;
      });
    const result = await executeOrchestration(registry, [], startEvents('Gamma'));

    expect(result.status).toBe('Failed');
    expect(result.name).toBe('Gamma');
    expect(result.failure?.errorName).toBe('FunctionNotFoundError');
    expect(result.failure?.message).toBe("No orchestrator named 'Gamma' is registered. Registered orchestrators: 'Alpha', 'Beta'");
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Failed', failure: result.failure }]);
    expect(result.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Failed', failure: result.failure, timestamp: T0 }]);
    expect(new FunctionNotFoundError('orchestrator', 'Gamma', ['Alpha', 'Beta']).message).toBe(result.failure?.message);
  });

  it('a history without ExecutionStarted throws HistoryError', async () => {
    const registry = registryOf('Chain', chain);
    await expect(
      executeOrchestration(registry, [newOrchestratorStartedEvent(T0)], [newTaskCompletedEvent(0, 'r', at(1))]),
    ).rejects.toBeInstanceOf(HistoryError);
    await expect(executeOrchestration(registry, [], [newOrchestratorStartedEvent(T0)])).rejects.toThrow('no ExecutionStarted');
  });
});

describe('timers', () => {
  const registry = registryOf('Sleepy', function* (ctx) {
    const fireAt = new Date(ctx.currentUtcDateTime.getTime() + 30_000);
    yield ctx.createTimer(fireAt);
    return `woke at ${ctx.currentUtcDateTime.toISOString()}`;
  });

  it('createTimer produces a CreateTimer action and a TimerCreated event', async () => {
    const result = await executeOrchestration(registry, [], startEvents('Sleepy'));

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([{ type: 'CreateTimer', id: 0, fireAt: T0 + 30_000 }]);
    expect(result.actionEvents).toEqual([{ type: 'TimerCreated', taskId: 0, fireAt: T0 + 30_000, timestamp: T0 }]);
    expect(result.wait).toEqual({ kind: 'any', ids: [0], coversAllOpen: true });
  });

  it('TimerFired completes the timer and the code moves on', async () => {
    const result = await executeOrchestration(registry, [...startEvents('Sleepy'), newTimerCreatedEvent(0, T0 + 30_000, T0)], [
      newOrchestratorStartedEvent(at(30)),
      newTimerFiredEvent(0, T0 + 30_000, at(30)),
    ]);

    expect(result.status).toBe('Completed');
    expect(result.output).toBe(`woke at ${new Date(at(30)).toISOString()}`);
  });
});

describe('external events', () => {
  function approvalRegistry(): Registry {
    return registryOf('Approval', function* (ctx) {
      const prepared = yield ctx.callActivity('Prepare');
      const first = yield ctx.waitForExternalEvent('Approve');
      const second = yield ctx.waitForExternalEvent('Approve');
      return [prepared, first, second];
    });
  }
  const past = [...startEvents('Approval'), newTaskScheduledEvent(0, 'Prepare', undefined, T0)];

  it('events raised before the code waits are buffered and delivered in order to successive waits', async () => {
    const result = await executeOrchestration(approvalRegistry(), past, [
      newOrchestratorStartedEvent(at(1)),
      newEventRaisedEvent('Approve', 'first', at(1)),
      newEventRaisedEvent('Other', 'ignored', at(1)),
      newEventRaisedEvent('Approve', 'second', at(1)),
      newTaskCompletedEvent(0, 'ready', at(1)),
    ]);

    expect(result.status).toBe('Completed');
    expect(result.output).toEqual(['ready', 'first', 'second']);
  });

  it('buffered events replayed from past history are delivered the same way', async () => {
    const result = await executeOrchestration(
      approvalRegistry(),
      [...past, newOrchestratorStartedEvent(at(1)), newEventRaisedEvent('Approve', 'first', at(1))],
      [newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(0, 'ready', at(2))],
    );

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([]);

    const done = await executeOrchestration(
      approvalRegistry(),
      [...past, newOrchestratorStartedEvent(at(1)), newEventRaisedEvent('Approve', 'first', at(1)), newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(0, 'ready', at(2))],
      [newOrchestratorStartedEvent(at(3)), newEventRaisedEvent('Approve', 'second', at(3))],
    );
    expect(done.status).toBe('Completed');
    expect(done.output).toEqual(['ready', 'first', 'second']);
  });

  it('an event raised while the code waits completes the wait', async () => {
    const result = await executeOrchestration(
      approvalRegistry(),
      [...past, newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, 'ready', at(1))],
      [newOrchestratorStartedEvent(at(2)), newEventRaisedEvent('Approve', 'yes', at(2))],
    );

    expect(result.status).toBe('Running');
    expect(result.actions).toEqual([]);
    expect(result.wait).toEqual({ kind: 'any', ids: [], coversAllOpen: true });
  });
});

describe('custom status', () => {
  const registry = registryOf('Status', function* (ctx) {
    ctx.setCustomStatus({ step: 'started' });
    const r = yield ctx.callActivity('F1');
    ctx.setCustomStatus({ step: 'F1 done', r });
    return r;
  });

  it('setCustomStatus shows in result.customStatus', async () => {
    const first = await executeOrchestration(registry, [], startEvents('Status'));
    expect(first.customStatus).toEqual({ value: { step: 'started' } });

    const second = await executeOrchestration(registry, [...startEvents('Status'), newTaskScheduledEvent(0, 'F1', undefined, T0)], [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 42, at(1)),
    ]);
    expect(second.status).toBe('Completed');
    expect(second.customStatus).toEqual({ value: { step: 'F1 done', r: 42 } });
  });

  it('customStatus is absent when the code never sets it', async () => {
    const result = await executeOrchestration(registryOf('Chain', chain), [], startEvents('Chain', 'x'));
    expect(result).not.toHaveProperty('customStatus');
  });
});

describe('termination', () => {
  it('ExecutionTerminated ends the instance as Terminated and schedules nothing more', async () => {
    const registry = registryOf('Chain', chain);
    const result = await executeOrchestration(registry, [...startEvents('Chain', 'x'), newTaskScheduledEvent(0, 'F1', 'x', T0)], [
      newOrchestratorStartedEvent(at(1)),
      newExecutionTerminatedEvent('operator stop', at(1)),
      newTaskCompletedEvent(0, 'late', at(1)),
    ]);

    expect(result.status).toBe('Terminated');
    expect(result.output).toBe('operator stop');
    expect(result.actions).toEqual([{ type: 'CompleteOrchestration', status: 'Terminated', result: 'operator stop' }]);
    expect(result.actionEvents).toEqual([]);
  });
});

describe('execution ids and the started flag', () => {
  it('reports the executionId and name from ExecutionStarted', async () => {
    const registry = registryOf('Chain', chain);
    const result = await executeOrchestration(registry, [], [
      newOrchestratorStartedEvent(T0),
      newExecutionStartedEvent('Chain', 'other-instance', 'x', { executionId: 'exec-7', timestamp: T0 }),
    ]);

    expect(result.instanceId).toBe('other-instance');
    expect(result.executionId).toBe('exec-7');
    expect(result.name).toBe('Chain');
    expect(result.started).toBe(true);
  });
});
