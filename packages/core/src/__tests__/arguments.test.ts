/**
 * Wrong arguments to the orchestration context, the registry and the typed API: a ValidationError
 * (or, from the payload check, a PayloadError) that names the call, the argument and the value,
 * thrown at the call where the orchestrator's own try/catch sees it, the same on every replay.
 */
import { describe, expect, it } from 'vitest';
import {
  type OrchestrationContext,
  type PayloadCheck,
  PayloadError,
  Registry,
  ValidationError,
  defineActivity,
  defineOrchestrator,
  describeValue,
  executeOrchestration,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
} from '../index.js';
import { EpisodeRunner, at, registryOf, startEvents } from './helpers.js';

/** Every misuse below, each caught by the code itself; the output lists the messages. */
function* misuses(ctx: OrchestrationContext): Generator<unknown, string[], any> {
  const seen: string[] = [];
  const attempt = (f: () => unknown) => {
    try {
      f();
      seen.push('no error');
    } catch (err) {
      seen.push(`${(err as Error).name}: ${(err as Error).message}`);
    }
  };
  const c = ctx as any;
  attempt(() => c.callActivity(42));
  attempt(() => c.callActivity({ kind: 'orchestrator', name: 'X' }));
  attempt(() => c.callActivity('bad name!'));
  attempt(() => c.createTimer('tomorrow'));
  attempt(() => c.createTimer(new Date('nonsense')));
  attempt(() => c.waitForExternalEvent(undefined));
  attempt(() => c.waitForExternalEvent('has space'));
  attempt(() => c.callSubOrchestrator('Child', 1, 5));
  attempt(() => c.callSubOrchestrator('Child', 1, '..'));
  attempt(() => c.callActivityWithRetry('F1', { maxNumberOfAttempts: '3', firstRetryIntervalMs: 10 }));
  attempt(() => c.patched(''));
  attempt(() => c.all('tasks'));
  attempt(() => c.any([]));
  attempt(() => c.all([ctx.createTimer(new Date(0)), 7]));
  attempt(() => c.continueAsNew(1, 'keep'));
  // None of the refused calls took a sequence number: the timer made inside ctx.all is task 0, F1 task 1.
  const r = yield ctx.callActivity('F1', 'ok');
  seen.push(`result ${String(r)}`);
  return seen;
}

describe('orchestration context', () => {
  it('throws a ValidationError at the call for every wrong argument; the code catches it and goes on', async () => {
    const runner = new EpisodeRunner(registryOf('Misuses', misuses));
    const first = await runner.run(startEvents('Misuses'));
    expect(first.status).toBe('Running');
    // Only what was well formed was scheduled: the timer inside ctx.all, then F1.
    expect(first.actions.map((a) => a.type)).toEqual(['CreateTimer', 'ScheduleTask']);
    const done = await runner.run([newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(1, 'fine', at(1))]);
    expect(done.status).toBe('Completed');
    expect(done.output).toEqual([
      "ValidationError: ctx.callActivity: activity must be a string (the activity name) or a definition from defineActivity(), got number 42",
      'ValidationError: ctx.callActivity: activity must be a string (the activity name) or a definition from defineActivity(), got object { kind, name }',
      `ValidationError: Invalid activity name "bad name!": use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or '_'.`,
      'ValidationError: ctx.createTimer: fireAt must be a valid Date, got string "tomorrow"',
      'ValidationError: ctx.createTimer: fireAt must be a valid Date, got Date Invalid Date',
      'ValidationError: ctx.waitForExternalEvent: eventName must be a string, got undefined',
      `ValidationError: Invalid event name "has space": use 1 to 128 letters, digits, '_', '.', ':', '@' or '-'.`,
      'ValidationError: ctx.callSubOrchestrator: instanceId must be a string, got number 5',
      `ValidationError: Invalid instance id "..": '.' and '..' are refused, since no URL can address them (they are path segments).`,
      'ValidationError: ctx.callActivityWithRetry: Invalid retry options: maxNumberOfAttempts must be an integer >= 1, got string "3"',
      'ValidationError: ctx.patched: patchId must be a non-empty string, got string ""',
      'ValidationError: ctx.all: tasks must be an array of durable tasks, got string "tasks"',
      'ValidationError: ctx.any: tasks must be an array of at least one durable task, got an array of length 0',
      'ValidationError: ctx.all: tasks[1] must be a durable task (from ctx.callActivity, ctx.createTimer, ...), got number 7',
      'ValidationError: ctx.continueAsNew: options must be an object, got string "keep"',
      'result fine',
    ]);
  });

  it('throws the payload check’s PayloadError at the call, before a sequence number is taken, on every replay', async () => {
    const checked: string[] = [];
    // A check that refuses strings over 3 characters, as the backend's refuses what cannot be stored.
    const check: PayloadCheck = (value, what) => {
      checked.push(what);
      if (typeof value === 'string' && value.length > 3) throw new PayloadError(`${what} is too long`);
      return { size: JSON.stringify(value ?? null).length };
    };
    async function flow(ctx: OrchestrationContext): Promise<string> {
      let note = '';
      try {
        await ctx.callActivity('F1', 'too long');
      } catch (err) {
        note = `${(err as Error).name}: ${(err as Error).message}`;
      }
      try {
        ctx.setCustomStatus('also too long');
      } catch (err) {
        note += ` / ${(err as Error).message}`;
      }
      const a = await ctx.callActivity<string>('F1', 'ok');
      const b = await ctx.callSubOrchestrator<string>('Child', 'abc', 'child-1');
      return `${note} / ${a} ${b}`;
    }
    const registry = registryOf('Flow', flow);
    const past = [...startEvents('Flow')];
    const first = await executeOrchestration(registry, [], past, { checkPayload: check });
    expect(first.actions).toMatchObject([{ type: 'ScheduleTask', id: 0, name: 'F1', input: 'ok' }]);
    // What the check returned for the new activity comes back with the result, by task id.
    expect(first.checkedPayloads?.inputs).toEqual(new Map([[0, { size: 4 }]]));
    expect(checked).toEqual(["Input of activity 'F1'", 'Custom status', "Input of activity 'F1'"]);

    // The next episode replays the refused call the same way: task 0 is still 'ok', no NonDeterminismError.
    const history = [...past, ...first.actionEvents];
    const second = await executeOrchestration(registry, history, [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, 'A', at(1))], {
      checkPayload: check,
    });
    expect(second.status).toBe('Running');
    expect(second.actions).toMatchObject([{ type: 'CreateSubOrchestration', id: 1, name: 'Child', instanceId: 'child-1' }]);
    // Only the new sub-orchestration's input is handed back; the replayed activity's is dropped.
    expect([...second.checkedPayloads!.inputs.keys()]).toEqual([1]);
  });
});

describe('registry and typed API', () => {
  it('names the call, the argument and the value', () => {
    const r = new Registry() as any;
    const cases: [() => unknown, string][] = [
      [() => r.addOrchestrator(42, () => 1), 'addOrchestrator: name must be a string (the orchestrator name), got number 42'],
      [() => r.addOrchestrator('Ok', 'not a function'), `addOrchestrator('Ok'): fn must be a function, got string "not a function"`],
      [() => r.addActivity('Ok', undefined), `addActivity('Ok'): fn must be a function, got undefined`],
      [() => r.add({ name: 'x' }), 'Registry.add: every argument must be a definition from defineActivity(), defineOrchestrator() or defineEntity(), got object { name }'],
      [() => (defineActivity as any)(undefined, () => 1), 'defineActivity: name must be a string (the activity name), got undefined'],
      [() => (defineOrchestrator as any)('Flow', null), `defineOrchestrator('Flow'): fn must be a function, got null`],
    ];
    for (const [call, message] of cases) {
      let err: unknown;
      try {
        call();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as Error).message).toBe(message);
    }
  });

  it('describes values briefly', () => {
    expect(describeValue(42)).toBe('number 42');
    expect(describeValue('x'.repeat(100))).toBe(`string "${'x'.repeat(56)}...`);
    expect(describeValue(null)).toBe('null');
    expect(describeValue([1, 2])).toBe('an array of length 2');
    expect(describeValue({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 })).toBe('object { a, b, c, d, e, ... }');
    expect(describeValue(new (class Thing {})())).toBe('an instance of Thing');
    expect(describeValue(function named() {})).toBe('function named');
    expect(describeValue(Symbol('s'))).toBe('symbol Symbol(s)');
    expect(describeValue(5n)).toBe('bigint 5n');
  });
});
