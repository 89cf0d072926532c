/**
 * The durable-functions (v3) compatibility suite: every behaviour that Durable Functions' own
 * orchestrator tests check (test/integration/orchestrator-spec.ts of azure-functions-durable-js
 * v3.x) run end to end on Redis with the v3 API: `df.app.orchestration`, `context.df.*`, a worker
 * over `df.registry` and v3's DurableClient. v3 checks the actions of one replay against hand-made
 * histories; here each orchestration runs for real and the test checks its output and history.
 * Where durabull's result differs from v3's, docs/durable-functions.md says so and why.
 *
 * The suite runs twice: with every episode replaying its history (as v3 always does), and with
 * durabull's extended sessions (the code kept in memory between episodes).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HubKeys, type RedisClient } from '@durabull/redis';
import * as df from '@durabull/durable-functions';
import { DurabullWorker } from '@durabull/worker';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Gate, eventsOf, waitUntil } from '../helpers/orchestration.js';
import { deleteKeysByPattern, redisUrl, uniqueHub, connectRedis } from '../helpers/redis.js';
import { attempts, gates } from './functions.js';

/** v3's newGuid, computed with uuid@3.3.2 as v3's GuidManager does (for the names below). */
const V3_GUIDS = {
  'abc_1700000000000_0': '1d2253a8-be9b-5f16-9d85-1951414101c6',
  'order-42_1767000000000_3': '7a0c932e-4897-5d3d-981b-3bb49e5a0998',
};

const MODES = [
  { mode: 'replaying every episode', replays: true, worker: { extendedSessions: false } },
  { mode: 'extended sessions', replays: false, worker: {} },
] as const;

df.configure({ logger: false });

let redis: RedisClient;
beforeAll(() => {
  redis = connectRedis();
});
afterAll(async () => {
  await df.closeClient();
  await redis.quit();
});
afterEach(() => Gate.releaseAll());

describe.each(MODES)('durable-functions v3 API, $mode', ({ replays, worker: workerOptions }) => {
  const hub = uniqueHub('df');
  let worker: DurabullWorker;
  let client: df.DurableClient;
  let n = 0;
  /** A fresh instance id for this run. */
  const id = (prefix: string) => `${prefix}-${hub}-${++n}`;

  beforeAll(async () => {
    worker = await new DurabullWorker({ connection: redisUrl(), hub, registry: df.registry, logger: false, ...workerOptions }).start();
    client = new df.DurableClient({ connection: redisUrl(), hub, logger: false });
  });
  afterAll(async () => {
    await client.close();
    await worker.close();
    await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
  });

  /** Starts `name` and waits until it has finished; returns v3's status, with history. */
  async function run(name: string, input?: unknown, instanceId = id(name)) {
    await client.startNew(name, { instanceId, input });
    return finished(instanceId);
  }
  async function finished(instanceId: string) {
    await client.durabull.waitForCompletion(instanceId, { timeoutMs: 20_000 });
    return client.getStatus(instanceId, { showHistory: true, showHistoryOutput: true });
  }
  /** The durabull history of an instance (typed events). */
  async function history(instanceId: string) {
    return (await client.durabull.getStatus(instanceId, { showHistory: true }))!.history!;
  }
  async function failure(instanceId: string) {
    return (await client.durabull.getStatus(instanceId))!.failure!;
  }

  describe('orchestrator', () => {
    it('allows orchestrations with no yield-statements', async () => {
      const s = await run('NotGenerator');
      expect(s.runtimeStatus).toBe(df.OrchestrationRuntimeStatus.Completed);
      expect(s.output).toBe('Hello');
    });

    it("doesn't allow yielding non-Task types: the orchestration fails with v3's message", async () => {
      const instanceId = id('yield-int');
      const s = await run('YieldInteger', undefined, instanceId);
      expect(s.runtimeStatus).toBe('Failed');
      expect(s.output).toContain('Durable Functions programming constraint violation: Orchestration yielded data of type number. Only Task types can be yielded.');
      expect((await failure(instanceId)).errorName).toBe('NonDurableAwaitError');
    });

    it('refuses an async handler (v3 orchestrators are generator functions) with NotSupportedError', async () => {
      const instanceId = id('async');
      expect((await run('AsyncHandler', undefined, instanceId)).runtimeStatus).toBe('Failed');
      expect(await failure(instanceId)).toMatchObject({ errorName: 'NotSupportedError', message: expect.stringContaining("df.app.orchestration('AsyncHandler'): the handler returned a Promise") });
    });

    it('handles a simple orchestration function (no activity functions)', async () => {
      const s = await run('SayHelloInline', 'World');
      expect(s.output).toBe('Hello, World!');
    });

    describe('handle falsy values', () => {
      for (const falsy of [false, 0, '', null, undefined, Number.NaN]) {
        it(`returns ${JSON.stringify(falsy) ?? 'undefined'} as its output, and passes it to an activity`, async () => {
          const s = await run('PassThrough', falsy);
          expect(s.runtimeStatus).toBe('Completed');
          if (Number.isNaN(falsy)) expect(Number.isNaN(s.output)).toBe(true);
          else expect(s.output).toBe(falsy);
          const a = await run('SayHelloWithActivity', falsy);
          expect(a.output).toBe(`Hello, ${falsy}!`);
          expect(eventsOf(a.history as never, 'TaskScheduled')[0]!.input).toEqual(falsy);
        });
      }
    });
  });

  describe('properties', () => {
    it('assigns instanceId, isReplaying, and currentUtcDateTime from the latest OrchestratorStarted', async () => {
      const instanceId = id('props');
      const s = await run('Properties', undefined, instanceId);
      const out = s.output as { instanceId: string; parentInstanceId: string | null; before: { isReplaying: boolean; time: number }; after: { isReplaying: boolean; time: number } };
      expect(out.instanceId).toBe(instanceId);
      expect(out.parentInstanceId).toBeNull();
      // The output is computed in the last episode: a replay re-runs the first step (v3 always does); a kept session does not.
      expect(out.before.isReplaying).toBe(replays);
      expect(out.after.isReplaying).toBe(false);
      const started = eventsOf(await history(instanceId), 'OrchestratorStarted').map((e) => e.timestamp);
      expect(started).toHaveLength(2);
      expect(out.before.time).toBe(started[0]);
      expect(out.after.time).toBe(started[1]);
    });

    it('assigns parentInstanceId in a sub-orchestration', async () => {
      const parent = id('parent');
      const s = await run('PropertiesParent', undefined, parent);
      expect(s.output).toMatchObject({ instanceId: `${parent}-child`, parentInstanceId: parent });
    });
  });

  describe('error handling', () => {
    it('reports an unhandled exception from the orchestrator', async () => {
      const instanceId = id('throws');
      const s = await run('ThrowsExceptionInline', undefined, instanceId);
      expect(s.runtimeStatus).toBe('Failed');
      expect(s.output).toBe("Orchestrator function 'ThrowsExceptionInline' failed: Exception from Orchestrator");
      expect(await failure(instanceId)).toMatchObject({ errorName: 'Error', message: 'Exception from Orchestrator' });
    });

    it('reports an unhandled exception from an activity passed through the orchestrator (a DurableError)', async () => {
      const instanceId = id('throws-activity');
      const s = await run('ThrowsExceptionFromActivity', undefined, instanceId);
      expect(s.runtimeStatus).toBe('Failed');
      const f = await failure(instanceId);
      expect(f).toMatchObject({ errorName: 'DurableError', message: "Activity function 'ThrowsErrorActivity' failed: Result: Failure" });
      expect(f.inner).toMatchObject({ errorName: 'Error', message: 'Result: Failure' });
    });

    it('schedules an activity function after the orchestrator catches an exception', async () => {
      const s = await run('ThrowsExceptionFromActivityWithCatch', 'World');
      expect(s.output).toEqual({ output: 'Hello, World!', isDurableError: true, message: "Activity function 'ThrowsErrorActivity' failed: Result: Failure" });
    });
  });

  describe('callActivity()', () => {
    it('schedules an activity function with no input', async () => {
      const s = await run('CallActivityNoInput');
      expect(s.output).toBe(4);
      expect(eventsOf(s.history as never, 'TaskScheduled').map((e) => [e.name, e.input])).toEqual([['ReturnsFour', undefined]]);
    });

    it('handles a completed series of activity functions (chaining)', async () => {
      const s = await run('SayHelloSequence');
      expect(s.output).toEqual(['Hello, Tokyo!', 'Hello, Seattle!', 'Hello, London!']);
      expect(eventsOf(s.history as never, 'TaskScheduled').map((e) => e.input)).toEqual(['Tokyo', 'Seattle', 'London']);
    });

    it('is yielded twice, only scheduled once', async () => {
      const s = await run('SayHelloWithActivityYieldTwice', 'World');
      expect(s.output).toBe('Hello, World!');
      expect(eventsOf(s.history as never, 'TaskScheduled')).toHaveLength(1);
    });

    it('calls an activity through the function df.app.activity returned, and .withRetry on it', async () => {
      const s = await run('RegisteredActivity', 'direct');
      expect(s.output).toEqual(['Hello, direct!', 'Hello, again!']);
    });
  });

  describe('callActivityWithRetry()', () => {
    it('reports an error when retryOptions is undefined, at the call', async () => {
      const instanceId = id('no-retry-options');
      const s = await run('SayHelloWithActivityRetryNoOptions', undefined, instanceId);
      expect(s.runtimeStatus).toBe('Failed');
      expect((await failure(instanceId)).message).toContain('retryOptions: Expected object of type RetryOptions but got undefined; are you missing properties?');
      expect(eventsOf(s.history as never, 'TaskScheduled')).toHaveLength(0);
    });

    it('retries a failed activity function if < max attempts, on a durable timer', async () => {
      const key = id('flaky');
      const s = await run('SayHelloWithActivityRetry', { key, failures: 1 });
      expect(s.output).toBe(`Hello, ${key}!`);
      expect(eventsOf(s.history as never, 'TaskScheduled')).toHaveLength(2);
      expect(eventsOf(s.history as never, 'TimerCreated')).toHaveLength(1);
    });

    it('reports a failed activity function if >= max attempts', async () => {
      const key = id('hopeless');
      const instanceId = id('retry-fails');
      const s = await run('SayHelloWithActivityRetry', { key, failures: 9 }, instanceId);
      expect(s.runtimeStatus).toBe('Failed');
      expect((await failure(instanceId)).message).toBe("Activity function 'FlakyHello' failed: Result: Failure 2");
      expect(attempts.get(key)).toBe(2);
    });

    it('works with fan-out/fan-in', async () => {
      const a = id('fan-a');
      const b = id('fan-b');
      const s = await run('SayHelloWithActivityRetryFanout', { a: { key: a, failures: 2 }, b: { key: b, failures: 0 } });
      expect(s.output).toEqual([`Hello, ${a}!`, `Hello, ${b}!`]);
      expect(attempts.get(a)).toBe(3);
    });

    it('updates currentUtcDateTime after all retries fail', async () => {
      const key = id('timestamps');
      const instanceId = id('retry-times');
      const s = await run('SayHelloWithActivityRetryAndReturnTimestamps', { key, failures: 9 }, instanceId);
      const [first, last] = s.output as number[];
      const started = eventsOf(await history(instanceId), 'OrchestratorStarted').map((e) => e.timestamp);
      expect(first).toBe(started[0]);
      expect(last).toBe(started.at(-1));
      expect(last! - first!).toBeGreaterThanOrEqual(200); // the retry waited its interval on a durable timer
    });

    it('reads backoffCoefficient and maxRetryIntervalInMilliseconds set after construction', async () => {
      const key = id('backoff');
      const s = await run('RetryBackoff', { key, failures: 3 });
      expect(s.output).toBe(`Hello, ${key}!`);
      // Each retry timer fires `delay` after the episode that created it: 100, 200, then 400 capped at 300.
      const delays = eventsOf(s.history as never, 'TimerCreated').map((e) => e.fireAt - e.timestamp);
      expect(delays).toEqual([100, 200, 300]);
    });
  });

  describe('callSubOrchestrator()', () => {
    it('handles a completed suborchestrator function with an instanceId', async () => {
      const parent = id('sub');
      const s = await run('SayHelloWithSubOrchestrator', 'World', parent);
      expect(s.output).toBe('Hello, World!');
      expect(eventsOf(s.history as never, 'SubOrchestrationInstanceCreated')[0]!.instanceId).toBe(`${parent}-0`);
      expect((await client.getStatus(`${parent}-0`)).runtimeStatus).toBe('Completed');
    });

    it("refuses v3's `<parent id>:<n>` child id (':' cannot be in a durabull id), at the call", async () => {
      const parent = id('sub-colon');
      const s = await run('SayHelloWithSubOrchestratorColonId', 'World', parent);
      expect(s.runtimeStatus).toBe('Failed');
      expect((await failure(parent)).errorName).toBe('ValidationError');
      expect((await failure(parent)).message).toContain(`${parent}:0`);
    });

    it('runs multiple suborchestrator functions with no instanceId', async () => {
      const parent = id('subs');
      const s = await run('MultipleSubOrchestratorNoSubId', 'World', parent);
      expect(s.output).toEqual(['Hello, World_SayHelloWithActivity_0!', 'Hello, World_SayHelloInline_1!', 'Hello, World_SayHelloWithActivity_2!', 'Hello, World_SayHelloInline_3!']);
      const execution = eventsOf(s.history as never, 'ExecutionStarted')[0]!.executionId;
      expect(eventsOf(s.history as never, 'SubOrchestrationInstanceCreated').map((e) => e.instanceId)).toEqual([0, 1, 2, 3].map((i) => `${parent}-${execution}-${i}`));
    });

    it('reports an unhandled exception from a suborchestrator', async () => {
      const parent = id('sub-fails');
      const s = await run('SubOrchestratorFails', undefined, parent);
      expect(s.runtimeStatus).toBe('Failed');
      expect(await failure(parent)).toMatchObject({ errorName: 'DurableError', message: "Sub orchestrator function 'ThrowsExceptionInline' failed: Exception from Orchestrator" });
    });

    it('callSubOrchestratorWithRetry: an error when retryOptions is undefined; retries a failed child', async () => {
      const bad = id('sub-no-options');
      expect((await run('SayHelloWithSubOrchestratorRetryNoOptions', undefined, bad)).runtimeStatus).toBe('Failed');
      expect((await failure(bad)).message).toContain('retryOptions: Expected object of type RetryOptions but got undefined');
      const key = id('flaky-child');
      const s = await run('SayHelloWithSubOrchestratorRetry', { key, failures: 1 });
      expect(s.output).toBe(`Hello, ${key}!`);
      expect(eventsOf(s.history as never, 'SubOrchestrationInstanceCreated')).toHaveLength(2);
    });

    it('callSubOrchestratorWithRetry handles fan-out/fan-in', async () => {
      const s = await run('SayHelloWithSubOrchestratorRetryFanout');
      expect(s.output).toEqual(['Hello, Tokyo!', 'Hello, Seattle!']);
    });

    it('calls a sub-orchestration through the function df.app.orchestration returned, and .withRetry on it', async () => {
      const s = await run('RegisteredOrchestration');
      expect(s.output).toEqual(['Hello, plain!', 'Hello, retried!']);
    });
  });

  describe('continueAsNew()', () => {
    it('continues as new with the next input until it returns', async () => {
      const instanceId = id('can');
      const s = await run('ContinueAsNewCounter', { until: 3 }, instanceId);
      expect(s.runtimeStatus).toBe('Completed');
      expect(s.output).toBe(3);
      expect(s.input).toEqual({ value: 2, until: 3 }); // the last execution's input
    });
  });

  describe('createTimer()', () => {
    it('proceeds after a timer fires', async () => {
      const instanceId = id('timer');
      const fireAt = Date.now() + 200;
      const s = await run('WaitOnTimer', fireAt, instanceId);
      expect(s.output).toBe('Timer fired!');
      expect(eventsOf(await history(instanceId), 'TimerCreated').map((e) => e.fireAt)).toEqual([fireAt]);
    });

    it('schedules a long timer (10 days) as one timer', async () => {
      const instanceId = id('long-timer');
      const fireAt = Date.now() + 10 * 24 * 3600 * 1000;
      await client.startNew('WaitOnTimer', { instanceId, input: fireAt });
      await waitUntil('the timer is scheduled', async () => eventsOf(await history(instanceId), 'TimerCreated').length === 1);
      expect(eventsOf(await history(instanceId), 'TimerCreated')[0]!.fireAt).toBe(fireAt);
      await client.terminate(instanceId, 'done');
    });

    it('cancel(): the losing timer is cancelled; cancelling a completed timer throws', async () => {
      expect((await run('CancelTimer')).output).toEqual({ workWon: true, isCanceled: true });
      expect((await run('CancelCompletedTimer')).output).toBe('Cannot cancel a completed task.');
    });
  });

  describe('newGuid()', () => {
    it('generates the same GUIDs on every replay, and the values v3 computes', async () => {
      const instanceId = id('guid');
      const s = await run('GuidGenerator', undefined, instanceId);
      const out = s.output as { first: string[]; echoed: string[]; second: string };
      expect(new Set(out.first).size).toBe(3);
      expect(out.first).toEqual(out.echoed); // computed in the first episode, and again in the last
      const [t0, t1] = eventsOf(await history(instanceId), 'OrchestratorStarted').map((e) => e.timestamp);
      const { deterministicGuid } = await import('../../../packages/durable-functions/src/guid.js');
      expect(out.first[0]).toBe(deterministicGuid(`${instanceId}_${t0}_0`));
      expect(out.second).toBe(deterministicGuid(`${instanceId}_${t1}_3`));
      for (const [name, guid] of Object.entries(V3_GUIDS)) expect(deterministicGuid(name)).toBe(guid);
    });
  });

  describe('setCustomStatus()', () => {
    it('sets a custom status that clients see, and context.df.customStatus', async () => {
      const instanceId = id('custom');
      await client.startNew('SayHelloWithCustomStatus', { instanceId });
      await waitUntil('the custom status is set', async () => (await client.getStatus(instanceId)).customStatus === 'Tokyo');
      await client.raiseEvent(instanceId, 'next', null);
      const s = await finished(instanceId);
      expect(s.output).toEqual(['Hello, Tokyo!', 'Hello, Seattle!']);
      expect(s.customStatus).toEqual({ city: 'Seattle', seen: 'Tokyo' });
    });
  });

  describe('waitForExternalEvent()', () => {
    it('does not proceed on an incorrectly-named event, and proceeds on the right one', async () => {
      const instanceId = id('event');
      await client.startNew('WaitForExternalEvent', { instanceId });
      await client.raiseEvent(instanceId, 'wrongEvent', 'Nope');
      await waitUntil('the wrong event is in history', async () => eventsOf(await history(instanceId), 'EventRaised').length === 1);
      expect((await client.getStatus(instanceId)).runtimeStatus).toBe('Running');
      await client.raiseEvent(instanceId, 'start', 'Reykjavik');
      expect((await finished(instanceId)).output).toBe('Hello, Reykjavik!');
    });
  });

  describe('Task.all() and Task.any()', () => {
    it('Task.all proceeds once all parallel tasks have completed (fan-out/fan-in)', async () => {
      const s = await run('FanOutFanInDiskUsage', 'C:/Dev');
      expect(s.output).toBe(['C:/Dev/file1.txt', 'C:/Dev/file2.png', 'C:/Dev/file3.csx'].reduce((a, f) => a + f.length, 0));
      expect(eventsOf(s.history as never, 'TaskScheduled').map((e) => e.name)).toEqual(['GetFileList', 'GetFileSize', 'GetFileSize', 'GetFileSize']);
    });

    it("Task.all throws the first faulted task's error (the same DurableError as the task's result)", async () => {
      const s = await run('FanOutFaulted');
      expect(s.output).toEqual({
        message: "Activity function 'GetFileSize' failed: Could not find file missing.bin",
        isDurableError: true,
        sameAsTaskResult: true,
        faulted: [false, true, false],
      });
    });

    it('Task.any proceeds with the first task to complete, and returns that task', async () => {
      for (const first of ['A', 'B'] as const) {
        const instanceId = id(`any-${first}`);
        await client.startNew('AnyAOrB', { instanceId });
        await client.raiseEvent(instanceId, first, `from ${first}`);
        expect((await finished(instanceId)).output).toEqual({ result: `from ${first}`, isA: first === 'A', isB: first === 'B' });
      }
    });

    it('a task yielded in Task.any() and afterwards is scheduled only once', async () => {
      const s = await run('AnyAOrBYieldATwice');
      expect(s.output).toMatchObject({ a: 'A', b: 'B' });
      expect(eventsOf(s.history as never, 'TaskScheduled').map((e) => e.name)).toEqual(['TaskA', 'TaskB']);
    });

    it('a timer in Task.any(): the activity wins, and the timer wins', async () => {
      const won = await run('TimerActivityRace', { timerMs: 3_600_000 });
      expect(won.output).toBe('A');
      expect(eventsOf(won.history as never, 'TaskScheduled').map((e) => e.name)).toEqual(['TaskA', 'TaskB']);
      const gate = id('gate');
      gates.set(gate, new Gate());
      const lost = await run('TimerActivityRace', { timerMs: 0, gate });
      expect(lost.output).toBe('Timer finished');
      gates.get(gate)!.open();
    });

    it('Task.any over a Task.all and a timer: the events win, and the timer wins', async () => {
      const instanceId = id('taskset');
      await client.startNew('AnyWithTaskSet', { instanceId, input: 3_600_000 });
      await client.raiseEvent(instanceId, 'secondRequiredEvent', 2);
      await client.raiseEvent(instanceId, 'firstRequiredEvent', 1);
      expect((await finished(instanceId)).output).toEqual(['Hello, Tokyo!', [1, 2]]);
      expect((await run('AnyWithTaskSet', 0)).output).toEqual(['timeout']);
    });

    it('nests Task.any inside Task.all: the slot of the any holds the winning task', async () => {
      const instanceId = id('nested');
      await client.startNew('NestedAllAny', { instanceId });
      await client.raiseEvent(instanceId, 'B', 'b wins');
      expect((await finished(instanceId)).output).toEqual({ winnerIsB: true, winnerResult: 'b wins', hello: 'Hello, nested!' });
    });

    it("doesn't allow compound tasks with no children", async () => {
      for (const name of ['TaskAllWithNoChildren', 'TaskAnyWithNoChildren']) {
        const instanceId = id(name);
        expect((await run(name, undefined, instanceId)).runtimeStatus).toBe('Failed');
        expect((await failure(instanceId)).message).toContain('When constructing a CompoundTask (such as Task.all() or Task.any()), you must specify at least one Task.');
      }
    });
  });

  describe('entities', () => {
    it('callEntity() calls an operation and gets its result', async () => {
      const key = id('store');
      expect((await run('CallEntitySet', key)).output).toBe('testString');
      expect(await client.readEntityState(new df.EntityId('StringStore2', key))).toEqual(new df.EntityStateResponse(true, 'testString'));
    });

    it('signalEntity() sends one-way operations, in order, before the call that follows', async () => {
      const key = id('counter');
      expect((await run('SignalEntity', { key, amount: 5 })).output).toEqual({ value: 10, isNewlyConstructed: false });
    });

    it("doesn't allow signalEntity() to be yielded", async () => {
      const instanceId = id('signal-yield');
      expect((await run('SignalEntityYield', id('c'), instanceId)).runtimeStatus).toBe('Failed');
      expect((await failure(instanceId)).message).toContain('This is likely a result of yielding a "fire-and-forget API" such as signalEntity or continueAsNew.');
    });

    it('a failed operation fails the call with a DurableError', async () => {
      const out = (await run('CallEntityFails', id('c'))).output as { isDurableError: boolean; message: string };
      expect(out.isDurableError).toBe(true);
      expect(out.message).toMatch(/^Entity operation 'fail' of entity '@counter@.*' failed: Error: counter refuses$/);
    });
  });

  describe('callHttp()', () => {
    let server: ReturnType<typeof createServer>;
    let other: ReturnType<typeof createServer>;
    let base: string;
    let otherBase: string;
    const seen: string[] = [];
    beforeAll(async () => {
      let polls = 0;
      const handler: Parameters<typeof createServer>[1] = (req, res) => {
        seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? '-'}`);
        if (req.url === '/start') {
          res.writeHead(202, { Location: `${base}/status`, 'Retry-After': '0' }).end('accepted');
        } else if (req.url === '/start-elsewhere') {
          // Another origin: the second server (another port).
          res.writeHead(202, { Location: `${otherBase}/done`, 'Retry-After': '0' }).end('accepted');
        } else if (req.url === '/done') {
          res.writeHead(200).end('done elsewhere');
        } else if (req.url === '/status') {
          polls++;
          if (polls < 2) res.writeHead(202, { location: `${base}/status`, 'retry-after': '0' }).end('still working');
          else res.writeHead(200, { 'content-type': 'text/plain' }).end('done');
        } else res.writeHead(404).end('not found');
      };
      server = createServer(handler);
      other = createServer(handler);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => other.close(() => r()));
    });

    it('polls a 202 with a Location on durable timers until another status comes back', async () => {
      seen.length = 0;
      const s = await run('SendHttpRequest', { method: 'POST', url: `${base}/start`, body: { a: 1 }, headers: { Authorization: 'Bearer t' } });
      expect(s.output).toEqual({ statusCode: 200, content: 'done', location: null, isResponse: true });
      expect(seen).toEqual([`POST /start Bearer t`, `GET /status Bearer t`, `GET /status Bearer t`]);
    });

    it('does not send credentials to a Location of another origin', async () => {
      seen.length = 0;
      const s = await run('SendHttpRequest', { method: 'POST', url: `${base}/start-elsewhere`, headers: { Authorization: 'Bearer t' } });
      expect(s.output).toMatchObject({ statusCode: 200, content: 'done elsewhere' });
      expect(seen).toEqual([`POST /start-elsewhere Bearer t`, `GET /done -`]);
    });

    it('does no polling with enablePolling false, and treats headers case-insensitively', async () => {
      const s = await run('SendHttpRequest', { method: 'POST', url: `${base}/start`, enablePolling: false });
      expect(s.output).toEqual({ statusCode: 202, content: 'accepted', location: `${base}/status`, isResponse: true });
    });

    it('fails with a DurableError when the request cannot be sent; refuses a managed-identity tokenSource', async () => {
      const spare = createServer();
      await new Promise<void>((r) => spare.listen(0, '127.0.0.1', r));
      const closed = `http://127.0.0.1:${(spare.address() as AddressInfo).port}/x`;
      await new Promise<void>((r) => spare.close(() => r())); // nothing listens there now
      const out = (await run('SendHttpRequestCatch', { method: 'GET', url: closed, enablePolling: false })).output as { name: string; message: string };
      expect(out.name).toBe('DurableError');
      expect(out.message).toContain(`context.df.callHttp: GET ${closed} failed:`);
      const token = (await run('SendHttpRequestCatch', { method: 'GET', url: base, tokenSource: new df.ManagedIdentityTokenSource('https://management.core.windows.net') })).output as {
        name: string;
        message: string;
      };
      expect(token.name).toBe('NotSupportedError');
      expect(token.message).toContain('options.tokenSource');
    });
  });
});
