/**
 * The orchestrations of Durable Functions' own orchestrator tests (TestOrchestrations in
 * azure-functions-durable-js v3.x, test/testobjects), written with the v3 API and registered
 * through `df.app`, plus the activities and entity they call. Each returns what the test checks.
 */
import * as df from '@durabull/durable-functions';
import type { OrchestrationContext, Task, TimerTask } from '@durabull/durable-functions';
import { Gate } from '../helpers/orchestration.js';

/** Attempts per input of the activities that fail on purpose. */
export const attempts = new Map<string, number>();
/** Gates the TaskA activity waits on, by input. */
export const gates = new Map<string, Gate>();

export const hello = df.app.activity('Hello', { handler: (input: unknown) => `Hello, ${input}!` });
df.app.activity('ReturnsFour', { handler: () => 4 });
df.app.activity('ThrowsErrorActivity', {
  handler: () => {
    throw new Error('Result: Failure');
  },
});
/** Fails until its input has been tried `failures` times: `{ key, failures }`. */
df.app.activity('FlakyHello', {
  handler: ({ key, failures }: { key: string; failures: number }) => {
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    if (n <= failures) throw new Error(`Result: Failure ${n}`);
    return `Hello, ${key}!`;
  },
});
df.app.activity('GetFileList', { handler: (dir: string) => ['file1.txt', 'file2.png', 'file3.csx'].map((f) => `${dir}/${f}`) });
df.app.activity('GetFileSize', {
  handler: (file: string) => {
    if (file.endsWith('missing.bin')) throw new Error(`Could not find file ${file}`);
    return file.length;
  },
});
df.app.activity('Echo', { handler: (x: unknown) => x });
df.app.activity('TaskA', {
  handler: async (key: string | undefined) => {
    const gate = key ? gates.get(key) : undefined;
    if (gate) await gate.pass();
    return 'A';
  },
});
df.app.activity('TaskB', { handler: () => 'B' });

df.app.entity('StringStore2', (context) => {
  switch (context.df.operationName) {
    case 'set':
      context.df.setState(context.df.getInput());
      break;
    case 'get':
      context.df.return(context.df.getState());
      break;
  }
});
df.app.entity('Counter', async (context: df.EntityContext<number>) => {
  const value = context.df.getState(() => 0)!;
  switch (context.df.operationName) {
    case 'add':
      context.df.setState(value + context.df.getInput<number>()!);
      break;
    case 'get':
      context.df.return({ value, isNewlyConstructed: context.df.isNewlyConstructed });
      break;
    case 'fail':
      throw new Error('counter refuses');
  }
});

// ---- TestOrchestrations ----

df.app.orchestration('NotGenerator', function* () {
  return 'Hello';
});
df.app.orchestration(
  'YieldInteger',
  // @ts-expect-error yielding a non-Task type
  function* () {
    yield 4;
  },
);
df.app.orchestration('PassThrough', function* (context: OrchestrationContext) {
  return context.df.getInput();
});
export const sayHelloInline = df.app.orchestration('SayHelloInline', function* (context: OrchestrationContext) {
  return `Hello, ${context.df.getInput()}!`;
});
export const sayHelloWithActivity = df.app.orchestration('SayHelloWithActivity', function* (context: OrchestrationContext) {
  const output: string = yield context.df.callActivity('Hello', context.df.getInput());
  return output;
});
df.app.orchestration('CallActivityNoInput', function* (context: OrchestrationContext) {
  return yield context.df.callActivity('ReturnsFour');
});
df.app.orchestration('SayHelloSequence', function* (context: OrchestrationContext) {
  const output: string[] = [];
  output.push(yield context.df.callActivity('Hello', 'Tokyo'));
  output.push(yield context.df.callActivity('Hello', 'Seattle'));
  output.push(yield context.df.callActivity('Hello', 'London'));
  return output;
});
df.app.orchestration('SayHelloWithActivityYieldTwice', function* (context: OrchestrationContext) {
  const task = context.df.callActivity('Hello', context.df.getInput());
  yield task;
  yield task;
  return yield task;
});
/** Through the function df.app.activity returned, with and without withRetry. */
df.app.orchestration('RegisteredActivity', function* (context: OrchestrationContext) {
  const plain: string = yield hello(context.df.getInput());
  const retried: string = yield hello('again').withRetry(new df.RetryOptions(100, 2));
  return [plain, retried];
});
df.app.orchestration('ThrowsExceptionInline', function* () {
  throw new Error('Exception from Orchestrator');
});
df.app.orchestration('ThrowsExceptionFromActivity', function* (context: OrchestrationContext) {
  yield context.df.callActivity('ThrowsErrorActivity');
});
df.app.orchestration('ThrowsExceptionFromActivityWithCatch', function* (context: OrchestrationContext) {
  try {
    yield context.df.callActivity('ThrowsErrorActivity');
  } catch (e) {
    const output: string = yield context.df.callActivity('Hello', context.df.getInput());
    return { output, isDurableError: e instanceof df.DurableError, message: (e as Error).message };
  }
});
/** The properties, recorded before and after one activity. */
df.app.orchestration('Properties', function* (context: OrchestrationContext) {
  const before = { isReplaying: context.df.isReplaying, time: context.df.currentUtcDateTime.getTime() };
  yield context.df.callActivity('Hello', 'x');
  const after = { isReplaying: context.df.isReplaying, time: context.df.currentUtcDateTime.getTime() };
  return { instanceId: context.df.instanceId, parentInstanceId: context.df.parentInstanceId ?? null, before, after };
});
df.app.orchestration('PropertiesParent', function* (context: OrchestrationContext) {
  return yield context.df.callSubOrchestrator('Properties', undefined, `${context.df.instanceId}-child`);
});

// retries
df.app.orchestration('SayHelloWithActivityRetry', function* (context: OrchestrationContext) {
  const retryOptions = new df.RetryOptions(100, 2);
  return yield context.df.callActivityWithRetry('FlakyHello', retryOptions, context.df.getInput());
});
df.app.orchestration('SayHelloWithActivityRetryNoOptions', function* (context: OrchestrationContext) {
  return yield context.df.callActivityWithRetry('Hello', undefined as never, 'World');
});
df.app.orchestration('SayHelloWithActivityRetryAndReturnTimestamps', function* (context: OrchestrationContext) {
  const retryOptions = new df.RetryOptions(200, 2);
  const timestamps = [context.df.currentUtcDateTime.getTime()];
  try {
    yield context.df.callActivityWithRetry('FlakyHello', retryOptions, context.df.getInput());
  } catch {
    // pass
  }
  timestamps.push(context.df.currentUtcDateTime.getTime());
  return timestamps;
});
df.app.orchestration('SayHelloWithActivityRetryFanout', function* (context: OrchestrationContext) {
  const retryOptions = new df.RetryOptions(100, 5);
  const { a, b } = context.df.getInput<{ a: unknown; b: unknown }>();
  const tasks = [context.df.callActivityWithRetry('FlakyHello', retryOptions, a), context.df.callActivityWithRetry('FlakyHello', retryOptions, b)];
  return yield context.df.Task.all(tasks);
});
/** The mutable fields of RetryOptions, set after construction and before the yield. */
df.app.orchestration('RetryBackoff', function* (context: OrchestrationContext) {
  const retryOptions = new df.RetryOptions(100, 4);
  retryOptions.backoffCoefficient = 2;
  retryOptions.maxRetryIntervalInMilliseconds = 300;
  return yield context.df.callActivityWithRetry('FlakyHello', retryOptions, context.df.getInput());
});

// sub-orchestrations
df.app.orchestration('SayHelloWithSubOrchestrator', function* (context: OrchestrationContext) {
  const childId = `${context.df.instanceId}-0`;
  return yield context.df.callSubOrchestrator('SayHelloWithActivity', context.df.getInput(), childId);
});
df.app.orchestration('SayHelloWithSubOrchestratorColonId', function* (context: OrchestrationContext) {
  return yield context.df.callSubOrchestrator('SayHelloWithActivity', context.df.getInput(), `${context.df.instanceId}:0`);
});
df.app.orchestration('MultipleSubOrchestratorNoSubId', function* (context: OrchestrationContext) {
  const input = context.df.getInput<string>();
  const a = context.df.callSubOrchestrator('SayHelloWithActivity', `${input}_SayHelloWithActivity_0`);
  const b = context.df.callSubOrchestrator('SayHelloInline', `${input}_SayHelloInline_1`);
  const c = context.df.callSubOrchestrator('SayHelloWithActivity', `${input}_SayHelloWithActivity_2`);
  const d = context.df.callSubOrchestrator('SayHelloInline', `${input}_SayHelloInline_3`);
  return yield context.df.Task.all([a, b, c, d]);
});
df.app.orchestration('SubOrchestratorFails', function* (context: OrchestrationContext) {
  return yield context.df.callSubOrchestrator('ThrowsExceptionInline', undefined, `${context.df.instanceId}-child`);
});
df.app.orchestration('FlakyChild', function* (context: OrchestrationContext) {
  return yield context.df.callActivity('FlakyHello', context.df.getInput());
});
df.app.orchestration('SayHelloWithSubOrchestratorRetry', function* (context: OrchestrationContext) {
  const retryOptions = new df.RetryOptions(100, 2);
  return yield context.df.callSubOrchestratorWithRetry('FlakyChild', retryOptions, context.df.getInput(), `${context.df.instanceId}-0`);
});
df.app.orchestration('SayHelloWithSubOrchestratorRetryNoOptions', function* (context: OrchestrationContext) {
  return yield context.df.callSubOrchestratorWithRetry('SayHelloInline', undefined as never, 'World', `${context.df.instanceId}-0`);
});
df.app.orchestration('SayHelloWithSubOrchestratorRetryFanout', function* (context: OrchestrationContext) {
  const retryOptions = new df.RetryOptions(100, 5);
  return yield context.df.Task.all([
    context.df.callSubOrchestratorWithRetry('SayHelloInline', retryOptions, 'Tokyo'),
    context.df.callSubOrchestratorWithRetry('SayHelloInline', retryOptions, 'Seattle'),
  ]);
});
/** Through the function df.app.orchestration returned, with and without withRetry. */
df.app.orchestration('RegisteredOrchestration', function* (context: OrchestrationContext) {
  const plain: string = yield sayHelloInline('plain');
  const retried: string = yield sayHelloWithActivity('retried', `${context.df.instanceId}-r`).withRetry(new df.RetryOptions(100, 2));
  return [plain, retried];
});

// continue-as-new
df.app.orchestration('ContinueAsNewCounter', function* (context: OrchestrationContext) {
  const { value = 0, until } = context.df.getInput<{ value?: number; until: number }>();
  const next = value + 1;
  if (next >= until) return next;
  context.df.continueAsNew({ value: next, until });
  return next;
});

// timers
df.app.orchestration('WaitOnTimer', function* (context: OrchestrationContext) {
  yield context.df.createTimer(new Date(context.df.getInput<number>()));
  return 'Timer fired!';
});
df.app.orchestration('CancelTimer', function* (context: OrchestrationContext) {
  const timer = context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + 3_600_000));
  const work = context.df.callActivity('Hello', 'work');
  const winner: Task = yield context.df.Task.any([timer, work]);
  if (!timer.isCompleted) timer.cancel();
  return { workWon: winner === work, isCanceled: timer.isCanceled };
});
df.app.orchestration('CancelCompletedTimer', function* (context: OrchestrationContext) {
  const timer = context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime()));
  yield timer;
  try {
    timer.cancel();
    return 'cancelled';
  } catch (e) {
    return (e as Error).message;
  }
});

// newGuid, custom status, events
df.app.orchestration('GuidGenerator', function* (context: OrchestrationContext) {
  const first = [0, 1, 2].map(() => context.df.newGuid(context.df.instanceId));
  const echoed: string[] = yield context.df.callActivity('Echo', first);
  const second = context.df.newGuid(context.df.instanceId);
  return { first, echoed, second };
});
df.app.orchestration('SayHelloWithCustomStatus', function* (context: OrchestrationContext) {
  const output: string[] = [];
  output.push(yield context.df.callActivity('Hello', 'Tokyo'));
  context.df.setCustomStatus('Tokyo');
  yield context.df.waitForExternalEvent('next');
  output.push(yield context.df.callActivity('Hello', 'Seattle'));
  context.df.setCustomStatus({ city: 'Seattle', seen: context.df.customStatus });
  return output;
});
df.app.orchestration('WaitForExternalEvent', function* (context: OrchestrationContext) {
  const name: string = yield context.df.waitForExternalEvent('start');
  return yield context.df.callActivity('Hello', name);
});

// Task.all / Task.any
df.app.orchestration('FanOutFanInDiskUsage', function* (context: OrchestrationContext) {
  const files: string[] = yield context.df.callActivity('GetFileList', context.df.getInput());
  const tasks = files.map((file) => context.df.callActivity('GetFileSize', file));
  const results: number[] = yield context.df.Task.all(tasks);
  return results.reduce((a, b) => a + b, 0);
});
df.app.orchestration('FanOutFaulted', function* (context: OrchestrationContext) {
  const tasks = ['a.txt', 'missing.bin', 'c.txt'].map((file) => context.df.callActivity('GetFileSize', file));
  try {
    yield context.df.Task.all(tasks);
    return 'no error';
  } catch (e) {
    return { message: (e as Error).message, isDurableError: e instanceof df.DurableError, sameAsTaskResult: e === tasks[1]!.result, faulted: tasks.map((t) => t.isFaulted) };
  }
});
df.app.orchestration('AnyAOrB', function* (context: OrchestrationContext) {
  const a = context.df.waitForExternalEvent('A');
  const b = context.df.waitForExternalEvent('B');
  const winner: Task = yield context.df.Task.any([a, b]);
  return { result: winner.result, isA: winner === a, isB: winner === b };
});
df.app.orchestration('AnyAOrBYieldATwice', function* (context: OrchestrationContext) {
  const tasks = [context.df.callActivity('TaskA'), context.df.callActivity('TaskB')];
  const winner: Task = yield context.df.Task.any(tasks);
  yield tasks[0]!;
  yield tasks[1]!;
  return { winner: winner.result, a: tasks[0]!.result, b: tasks[1]!.result };
});
df.app.orchestration('TimerActivityRace', function* (context: OrchestrationContext) {
  const { timerMs, gate } = context.df.getInput<{ timerMs: number; gate?: string }>();
  const tasks: Task[] = [context.df.createTimer(new Date(context.df.currentUtcDateTime.getTime() + timerMs)), context.df.callActivity('TaskA', gate)];
  const output: Task = yield context.df.Task.any(tasks);
  if (output === tasks[1]) {
    (tasks[0] as TimerTask).cancel();
    yield context.df.callActivity('TaskB');
    return output.result;
  }
  if (output === tasks[0]) return 'Timer finished';
  throw new Error("context.df.Task.any() didn't return a task");
});
df.app.orchestration('AnyWithTaskSet', function* (context: OrchestrationContext) {
  const deadline = new Date(context.df.currentUtcDateTime.getTime() + context.df.getInput<number>());
  const timeoutTask = context.df.createTimer(deadline);
  const first = context.df.waitForExternalEvent('firstRequiredEvent');
  const second = context.df.waitForExternalEvent('secondRequiredEvent');
  const allRequiredEvents = context.df.Task.all([first, second]);
  const winner: Task = yield context.df.Task.any([allRequiredEvents, timeoutTask]);
  const outputs: unknown[] = [];
  if (winner === timeoutTask) {
    outputs.push('timeout');
  } else {
    outputs.push(yield context.df.callActivity('Hello', 'Tokyo'));
    timeoutTask.cancel();
    outputs.push(winner.result);
  }
  return outputs;
});
/** Task.all over a Task.any and an activity: the any's slot holds the winning task. */
df.app.orchestration('NestedAllAny', function* (context: OrchestrationContext) {
  const a = context.df.waitForExternalEvent('A');
  const b = context.df.waitForExternalEvent('B');
  const results: unknown[] = yield context.df.Task.all([context.df.Task.any([a, b]), context.df.callActivity('Hello', 'nested')]);
  return { winnerIsB: results[0] === b, winnerResult: (results[0] as Task).result, hello: results[1] };
});
df.app.orchestration('TaskAllWithNoChildren', function* (context: OrchestrationContext) {
  return yield context.df.Task.all([]);
});
df.app.orchestration('TaskAnyWithNoChildren', function* (context: OrchestrationContext) {
  return yield context.df.Task.any([]);
});

// entities
df.app.orchestration('CallEntitySet', function* (context: OrchestrationContext) {
  const entity = new df.EntityId('StringStore2', context.df.getInput<string>());
  yield context.df.callEntity(entity, 'set', 'testString');
  return yield context.df.callEntity(entity, 'get');
});
df.app.orchestration('SignalEntity', function* (context: OrchestrationContext) {
  const { key, amount } = context.df.getInput<{ key: string; amount: number }>();
  const counter = new df.EntityId('Counter', key);
  context.df.signalEntity(counter, 'add', amount);
  context.df.signalEntity(counter, 'add', amount);
  return yield context.df.callEntity(counter, 'get');
});
df.app.orchestration('SignalEntityYield', function* (context: OrchestrationContext) {
  yield context.df.signalEntity(new df.EntityId('Counter', context.df.getInput<string>()), 'add', 1) as never;
});
df.app.orchestration('CallEntityFails', function* (context: OrchestrationContext) {
  try {
    yield context.df.callEntity(new df.EntityId('Counter', context.df.getInput<string>()), 'fail');
    return 'no error';
  } catch (e) {
    return { isDurableError: e instanceof df.DurableError, message: (e as Error).message };
  }
});

// callHttp
df.app.orchestration('SendHttpRequest', function* (context: OrchestrationContext) {
  const input = context.df.getInput<df.CallHttpOptions>();
  const res: df.DurableHttpResponse = yield context.df.callHttp(input);
  return { statusCode: res.statusCode, content: res.content, location: res.getHeader('LOCATION') ?? null, isResponse: res instanceof df.DurableHttpResponse };
});
df.app.orchestration('SendHttpRequestCatch', function* (context: OrchestrationContext) {
  try {
    yield context.df.callHttp(context.df.getInput<df.CallHttpOptions>());
    return 'no error';
  } catch (e) {
    return { name: (e as Error).name, message: (e as Error).message };
  }
});

// not supported
df.app.orchestration('AsyncHandler', (async () => 'never') as never);
