/**
 * The orchestration API on a real Redis, part 3: continue-as-new (eternal orchestrations, event
 * carry-over) and versioning with ctx.patched across a code change on a running task hub.
 */
import { type OrchestrationContext, Registry } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import {
  Gate,
  eventsOf,
  historyOf,
  recordDeliveries,
  scheduledIds,
  typesOf,
  waitIdle,
  waitTimerFired,
  waitUntil,
} from './helpers/orchestration.js';

let th: TestHub | undefined;
afterEach(async () => {
  Gate.releaseAll();
  await th?.cleanup();
  th = undefined;
});

const WAIT = { timeoutMs: 15_000, showHistory: true } as const;

describe('continue-as-new', () => {
  it('counts to 50 in 51 executions, each with a short fresh history', async () => {
    const executions = new Set<string>();
    const ticks: number[] = [];
    th = await createTestHub({
      orchestrators: {
        Counter: function* (ctx, n: number): Generator<unknown, unknown, any> {
          if (!ctx.isReplaying) executions.add(ctx.executionId);
          if (n >= 50) return { final: n, executions: executions.size };
          const next: number = yield ctx.callActivity('Tick', n);
          ctx.continueAsNew(next);
          return undefined;
        },
      },
      activities: { Tick: async (n: number) => (ticks.push(n), n + 1) },
    });
    const id = await th.client.startNew('Counter', { input: 0, instanceId: 'counter' });
    const first = await th.client.getStatus(id);
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toEqual({ final: 50, executions: 51 });
    expect(ticks).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(st.executionId).not.toBe(first!.executionId);
    expect(executions.size).toBe(51);
    expect(executions.has(st.executionId)).toBe(true);
    expect(executions.has(first!.executionId)).toBe(true);
    // Only the last execution's history is kept: it started with input 50 and did nothing else.
    expect(st.history!.length).toBeLessThan(20);
    expect(typesOf(st.history)).toEqual(['OrchestratorStarted', 'ExecutionStarted', 'ExecutionCompleted', 'OrchestratorCompleted']);
    expect(eventsOf(st.history, 'ExecutionStarted')[0]).toMatchObject({ input: 50, executionId: st.executionId, instanceId: 'counter' });
    // The instance keeps its id and creation time; its input is the last execution's.
    expect(st.input).toBe(50);
    expect(st.createdAt).toEqual(first!.createdAt);
    // Nothing of older executions is left in the instance's keys.
    expect(await th.redis.exists(th.keys.inbox(id), th.keys.pending(id), th.keys.wait(id))).toBe(0);
  });

  it('carries raised events that were not consumed over to the next execution, in order', async () => {
    const gate = new Gate();
    th = await createTestHub({
      orchestrators: {
        Rounds: function* (ctx, state: { round: number; got: unknown[] }): Generator<unknown, unknown, any> {
          if (state.round === 0) {
            // Two events arrive while this activity runs; this execution never waits for them.
            yield ctx.callActivity('Hold');
            ctx.continueAsNew({ round: 1, got: [] });
            return undefined;
          }
          const v = yield ctx.waitForExternalEvent('Data');
          const got = [...state.got, v];
          if (state.round < 2) {
            ctx.continueAsNew({ round: state.round + 1, got });
            return undefined;
          }
          return { got, round: state.round };
        },
      },
      activities: { Hold: async () => gate.pass() },
    });
    const id = await th.client.startNew('Rounds', { input: { round: 0, got: [] } });
    const exec0 = (await th.client.getStatus(id))!.executionId;
    await gate.entered;
    await th.client.raiseEvent(id, 'Data', 'first');
    await th.client.raiseEvent(id, 'Data', { second: true });
    await waitUntil('both events are in the first execution', async () => eventsOf(await historyOf(th!, id), 'EventRaised').length === 2);
    gate.open();
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    // Round 1 took the first event and carried the second over once more; round 2 took it.
    expect(st.output).toEqual({ got: ['first', { second: true }], round: 2 });
    expect(st.executionId).not.toBe(exec0);
    expect(eventsOf(st.history, 'EventRaised').map((e) => [e.name, e.input])).toEqual([['Data', { second: true }]]);
    expect(eventsOf(st.history, 'ExecutionStarted')[0]!.input).toEqual({ round: 2, got: ['first'] });
  });

  it('drops unconsumed events with preserveUnprocessedEvents: false', async () => {
    const gate = new Gate();
    th = await createTestHub({
      orchestrators: {
        Forgetful: function* (ctx, round: number): Generator<unknown, unknown, any> {
          if (round === 0) {
            yield ctx.callActivity('Hold');
            ctx.continueAsNew(1, { preserveUnprocessedEvents: false });
            return undefined;
          }
          return yield ctx.waitForExternalEvent('Data');
        },
      },
      activities: { Hold: async () => gate.pass() },
    });
    const id = await th.client.startNew('Forgetful', { input: 0 });
    const exec0 = (await th.client.getStatus(id))!.executionId;
    await gate.entered;
    await th.client.raiseEvent(id, 'Data', 'stale');
    await waitUntil('the event is in the first execution', async () => eventsOf(await historyOf(th!, id), 'EventRaised').length === 1);
    gate.open();
    await waitUntil('the second execution runs', async () => (await th!.client.getStatus(id))!.executionId !== exec0);
    await waitIdle(th, id);
    expect(eventsOf(await historyOf(th, id), 'EventRaised')).toHaveLength(0);
    await th.client.raiseEvent(id, 'Data', 'fresh');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toBe('fresh');
    expect(eventsOf(st.history, 'EventRaised').map((e) => e.input)).toEqual(['fresh']);
  });
  it('drops timers of earlier executions: they wake nothing in the current one', async () => {
    th = await createTestHub({
      orchestrators: {
        Monitor: function* (ctx, round: number): Generator<unknown, unknown, any> {
          if (round === 2) return { round, finish: yield ctx.waitForExternalEvent('Finish') };
          const timer = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 300));
          const poke = ctx.waitForExternalEvent('Poke');
          const winner = yield ctx.any([poke, timer]);
          if (winner === timer) return { round, by: 'timer (the test poked too late)' };
          ctx.continueAsNew(round + 1);
          return undefined;
        },
      },
    });
    const deliveries = recordDeliveries(th.workers[0]!);
    const id = await th.client.startNew('Monitor', { input: 0 });
    const oldExecs: string[] = [];
    for (let round = 0; round < 2; round++) {
      await waitIdle(th, id);
      const exec = (await th.client.getStatus(id))!.executionId;
      oldExecs.push(exec);
      await th.client.raiseEvent(id, 'Poke', round);
      await waitUntil(`round ${round + 1} starts`, async () => (await th!.client.getStatus(id))!.executionId !== exec);
    }
    await waitIdle(th, id);
    const before = await th.client.getStatus(id, { showHistory: true });
    expect(eventsOf(before!.history, 'ExecutionStarted')[0]!.input).toBe(2);
    // Both old timers (task 0 of each earlier execution) fire while round 2 waits: dropped as stale.
    for (const exec of oldExecs) expect((await waitTimerFired(deliveries, id, exec, 0)).result).toEqual({ status: 'stale' });
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(after!.runtimeStatus).toBe('Running');
    expect(after!.episodes).toBe(before!.episodes);
    expect(after!.history).toEqual(before!.history);
    expect(await th.redis.llen(th.keys.inbox(id))).toBe(0);
    await th.client.raiseEvent(id, 'Finish', 'bye');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toEqual({ round: 2, finish: 'bye' });
    expect(eventsOf(st.history, 'TimerFired')).toHaveLength(0);
    expect(oldExecs).not.toContain(st.executionId);
  });
});

describe('versioning with ctx.patched', () => {
  const activities = {
    Step1: async () => 'step1',
    Extra: async () => 'extra',
    Step2: async (x: string) => `step2(${x})`,
  };

  function* v1Gen(ctx: OrchestrationContext): Generator<unknown, unknown, any> {
    const a: string = yield ctx.callActivity('Step1');
    const go: string = yield ctx.waitForExternalEvent('Go');
    const b: string = yield ctx.callActivity('Step2', go);
    return [a, b];
  }

  // v2 adds a step between Step1 and the wait, behind a patch.
  function* v2Gen(ctx: OrchestrationContext): Generator<unknown, unknown, any> {
    const a: string = yield ctx.callActivity('Step1');
    const steps = [a];
    if (ctx.patched('add-step')) steps.push(yield ctx.callActivity('Extra'));
    const go: string = yield ctx.waitForExternalEvent('Go');
    steps.push(yield ctx.callActivity('Step2', go));
    return steps;
  }

  async function v1Async(ctx: OrchestrationContext) {
    const a = await ctx.callActivity<string>('Step1');
    const go = await ctx.waitForExternalEvent<string>('Go');
    return [a, await ctx.callActivity<string>('Step2', go)];
  }

  async function v2Async(ctx: OrchestrationContext) {
    const steps = [await ctx.callActivity<string>('Step1')];
    if (ctx.patched('add-step')) steps.push(await ctx.callActivity<string>('Extra'));
    const go = await ctx.waitForExternalEvent<string>('Go');
    steps.push(await ctx.callActivity<string>('Step2', go));
    return steps;
  }

  it.each([
    ['generator', v1Gen, v2Gen],
    ['async', v1Async, v2Async],
  ] as const)('keeps an instance started on v1 on the old path, and puts new instances on the new one (%s)', async (_style, v1, v2) => {
    th = await createTestHub({ orchestrators: { Flow: v1 }, activities });
    const oldId = await th.client.startNew('Flow', { instanceId: 'old' });
    // Blocked on the event: Step1 is done and in history, past the point where v2 adds its step.
    await waitUntil('the v1 instance waits for Go', async () => eventsOf(await historyOf(th!, oldId), 'TaskCompleted').length === 1);
    await waitIdle(th, oldId);
    expect(scheduledIds(await historyOf(th, oldId), 'Step1')).toEqual([0]);
    await th.workers[0]!.close();

    const registryV2 = new Registry().addOrchestrator('Flow', v2);
    for (const [name, fn] of Object.entries(activities)) registryV2.addActivity(name, fn);
    const w2 = await th.startWorker({ registry: registryV2 });

    await th.client.raiseEvent(oldId, 'Go', 'old-go');
    const old = await th.client.waitForCompletion(oldId, WAIT);
    expect(old.runtimeStatus).toBe('Completed');
    expect(old.output).toEqual(['step1', 'step2(old-go)']);
    expect(eventsOf(old.history, 'TaskScheduled').map((e) => [e.taskId, e.name])).toEqual([[0, 'Step1'], [1, 'Step2']]);
    expect(eventsOf(old.history, 'PatchApplied')).toHaveLength(0);
    expect(w2.stats.episodes).toBeGreaterThan(0);

    const newId = await th.client.startNew('Flow', { instanceId: 'new' });
    await waitIdle(th, newId);
    await th.client.raiseEvent(newId, 'Go', 'new-go');
    const neu = await th.client.waitForCompletion(newId, WAIT);
    expect(neu.runtimeStatus).toBe('Completed');
    expect(neu.output).toEqual(['step1', 'extra', 'step2(new-go)']);
    expect(eventsOf(neu.history, 'TaskScheduled').map((e) => [e.taskId, e.name])).toEqual([[0, 'Step1'], [1, 'Extra'], [2, 'Step2']]);
    expect(eventsOf(neu.history, 'PatchApplied').map((e) => e.patchId)).toEqual(['add-step']);
    // Recorded once, in the episode that first took the new path, before the step it guards.
    const h = neu.history!;
    const patchAt = h.findIndex((e) => e.type === 'PatchApplied');
    expect(h[patchAt - 1]).toMatchObject({ type: 'TaskCompleted', taskScheduledId: 0 });
    expect(h[patchAt + 1]).toMatchObject({ type: 'TaskScheduled', taskId: 1, name: 'Extra' });
  });

  it('takes the new path in the part of a running instance that history does not hold yet', async () => {
    function* after(ctx: OrchestrationContext): Generator<unknown, unknown, any> {
      const a: string = yield ctx.callActivity('Step1');
      const go: string = yield ctx.waitForExternalEvent('Go');
      const steps = [a];
      if (ctx.patched('after-wait')) steps.push(yield ctx.callActivity('Extra'));
      steps.push(yield ctx.callActivity('Step2', go));
      return steps;
    }
    th = await createTestHub({ orchestrators: { Flow: v1Gen }, activities });
    const id = await th.client.startNew('Flow');
    await waitUntil('the v1 instance waits for Go', async () => eventsOf(await historyOf(th!, id), 'TaskCompleted').length === 1);
    await waitIdle(th, id);
    await th.workers[0]!.close();
    const registry = new Registry().addOrchestrator('Flow', after);
    for (const [name, fn] of Object.entries(activities)) registry.addActivity(name, fn);
    await th.startWorker({ registry });
    await th.client.raiseEvent(id, 'Go', 'g');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toEqual(['step1', 'extra', 'step2(g)']);
    expect(eventsOf(st.history, 'PatchApplied').map((e) => e.patchId)).toEqual(['after-wait']);
    expect(eventsOf(st.history, 'TaskScheduled').map((e) => e.name)).toEqual(['Step1', 'Extra', 'Step2']);
  });
});
