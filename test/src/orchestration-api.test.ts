/**
 * The orchestration API on a real Redis: durable timers (also across a worker restart), external
 * events, races (human interaction with a timeout, two activities), custom status, the
 * deterministic helpers (newGuid, isReplaying) and the async fan-in counter.
 *
 * Sub-orchestrations and retries: orchestration-api-subs.test.ts; continue-as-new and versioning:
 * orchestration-api-versions.test.ts.
 */
import { type OrchestrationContext, InstanceNotFoundError, type Task } from '@durabull/core';
import { InstanceFinishedError } from '@durabull/client';
import { afterEach, describe, expect, it } from 'vitest';
import { REPLAY_EVERY_EPISODE, type TestHub, createTestHub } from './helpers/hub.js';
import {
  Gate,
  eventsOf,
  historyOf,
  recordDeliveries,
  sleepUntil,
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

describe('durable timers', () => {
  it('fires a timer and records the TimerCreated / TimerFired pair (generator and async)', async () => {
    function* gen(ctx: OrchestrationContext, ms: number): Generator<unknown, unknown, any> {
      const fireAt = new Date(ctx.currentUtcDateTime.getTime() + ms);
      yield ctx.createTimer(fireAt);
      return { fireAt: fireAt.getTime(), after: ctx.currentUtcDateTime.getTime() };
    }
    async function asy(ctx: OrchestrationContext, ms: number) {
      const fireAt = new Date(ctx.currentUtcDateTime.getTime() + ms);
      await ctx.createTimer(fireAt);
      return { fireAt: fireAt.getTime(), after: ctx.currentUtcDateTime.getTime() };
    }
    th = await createTestHub({ orchestrators: { TimerGen: gen, TimerAsync: asy } });
    const ids = await Promise.all([th.client.startNew('TimerGen', { input: 150 }), th.client.startNew('TimerAsync', { input: 100 })]);
    for (const id of ids) {
      const st = await th.client.waitForCompletion<{ fireAt: number; after: number }>(id, WAIT);
      expect(st.runtimeStatus).toBe('Completed');
      expect(typesOf(st.history)).toEqual([
        'OrchestratorStarted', 'ExecutionStarted', 'TimerCreated', 'OrchestratorCompleted',
        'OrchestratorStarted', 'TimerFired', 'ExecutionCompleted', 'OrchestratorCompleted',
      ]);
      const [created] = eventsOf(st.history, 'TimerCreated');
      const [fired] = eventsOf(st.history, 'TimerFired');
      expect(created!.taskId).toBe(0);
      expect(fired!.timerId).toBe(created!.taskId);
      expect(fired!.fireAt).toBe(created!.fireAt);
      expect(created!.fireAt).toBe(st.output!.fireAt);
      // The timer never fires early, and the code resumes at an episode time past its due time.
      expect(fired!.timestamp).toBeGreaterThanOrEqual(created!.fireAt);
      expect(st.output!.after).toBeGreaterThanOrEqual(st.output!.fireAt);
      expect(st.episodes).toBe(2);
    }
  });

  it('fires a timer that came due while no worker was running', async () => {
    th = await createTestHub({
      orchestrators: {
        Sleeper: function* (ctx) {
          yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 200));
          return yield ctx.callActivity('After', 'woke');
        },
      },
      activities: { After: async (x: string) => `${x} up` },
    });
    const first = th.workers[0]!;
    const id = await th.client.startNew('Sleeper', { instanceId: 'sleeper' });
    await waitIdle(th, id);
    const [created] = eventsOf(await historyOf(th, id), 'TimerCreated');
    expect(created).toBeDefined();
    await first.close();
    expect(first.stats.episodes).toBe(1);
    // The timer comes due with no worker at all.
    await sleepUntil(created!.fireAt + 50);
    expect((await th.client.getStatus(id))!.runtimeStatus).toBe('Running');

    const second = await th.startWorker();
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('woke up');
    expect(second.stats.episodes).toBe(2);
    const [fired] = eventsOf(st.history, 'TimerFired');
    expect(fired).toMatchObject({ timerId: created!.taskId, fireAt: created!.fireAt });
    expect(eventsOf(st.history, 'TimerCreated')).toHaveLength(1);
  });
  it('holds a timer that fires while the instance is suspended until it is resumed', async () => {
    th = await createTestHub({
      orchestrators: {
        Nap: function* (ctx): Generator<unknown, unknown, any> {
          yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 100));
          return 'rested';
        },
      },
    });
    const deliveries = recordDeliveries(th.workers[0]!);
    const id = await th.client.startNew('Nap');
    await waitIdle(th, id);
    await th.client.suspend(id, 'maintenance');
    const before = await th.client.getStatus(id, { showHistory: true });
    expect(before!.runtimeStatus).toBe('Suspended');
    const firing = await waitTimerFired(deliveries, id, before!.executionId, 0);
    expect(firing.result).toEqual({ status: 'delivered' });
    const during = await th.client.getStatus(id, { showHistory: true });
    expect(during!.runtimeStatus).toBe('Suspended');
    expect(during!.episodes).toBe(before!.episodes);
    expect(during!.history).toEqual(before!.history);
    await th.client.resume(id, 'back');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toBe('rested');
    expect(st.episodes).toBe(before!.episodes + 1);
    expect(typesOf(st.history).slice(4)).toEqual([
      'OrchestratorStarted', 'ExecutionSuspended', 'TimerFired', 'ExecutionResumed', 'ExecutionCompleted', 'OrchestratorCompleted',
    ]);
  });
});

describe('external events', () => {
  it('buffers an event raised before the code waits for it', async () => {
    const gate = new Gate();
    th = await createTestHub({
      orchestrators: {
        LateWaiter: function* (ctx) {
          const prep = yield ctx.callActivity('Prepare');
          const approval = yield ctx.waitForExternalEvent('Approval');
          return { prep, approval };
        },
      },
      activities: { Prepare: async () => (await gate.pass(), 'prepared') },
    });
    const id = await th.client.startNew('LateWaiter');
    await gate.entered;
    await th.client.raiseEvent(id, 'Approval', { by: 'alice' });
    // The event is in history (an episode saw it) while the code still waits on Prepare.
    await waitUntil('the event is recorded', async () => eventsOf(await historyOf(th!, id), 'EventRaised').length === 1);
    expect(eventsOf(await historyOf(th, id), 'TaskCompleted')).toHaveLength(0);
    gate.open();
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toEqual({ prep: 'prepared', approval: { by: 'alice' } });
    const types = typesOf(st.history);
    expect(types.indexOf('EventRaised')).toBeLessThan(types.indexOf('TaskCompleted'));
    expect(eventsOf(st.history, 'EventRaised').map((e) => [e.name, e.input])).toEqual([['Approval', { by: 'alice' }]]);
  });

  it('delivers events of the same name in the order they were raised, buffered or awaited', async () => {
    th = await createTestHub({
      orchestrators: {
        Collect: function* (ctx, n: number) {
          const got: unknown[] = [];
          for (let i = 0; i < n; i++) got.push(yield ctx.waitForExternalEvent('Item'));
          return got;
        },
      },
    });
    const id = await th.client.startNew('Collect', { input: 5 });
    // 'a' and 'b' may reach the instance before its first episode (so they are buffered); the rest arrive while it waits.
    await th.client.raiseEvent(id, 'Item', 'a');
    await th.client.raiseEvent(id, 'Item', 'b');
    await waitIdle(th, id);
    await th.client.raiseEvent(id, 'Item', 'c');
    await th.client.raiseEvent(id, 'Other', 'ignored');
    await th.client.raiseEvent(id, 'Item', { d: 4 });
    await th.client.raiseEvent(id, 'Item', 5);
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toEqual(['a', 'b', 'c', { d: 4 }, 5]);
    expect(eventsOf(st.history, 'EventRaised').map((e) => e.input)).toEqual(['a', 'b', 'c', 'ignored', { d: 4 }, 5]);
  });

  it('refuses events for a missing instance and for a finished one with typed errors', async () => {
    th = await createTestHub({
      orchestrators: {
        One: function* (ctx) {
          return yield ctx.waitForExternalEvent('Go');
        },
        Forever: function* (ctx) {
          return yield ctx.waitForExternalEvent('Never');
        },
      },
    });
    const missing = await th.client.raiseEvent('no-such-instance', 'Go', 1).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InstanceNotFoundError);
    expect((missing as InstanceNotFoundError).instanceId).toBe('no-such-instance');
    expect(await th.client.getStatus('no-such-instance')).toBeUndefined();

    const id = await th.client.startNew('One');
    await th.client.raiseEvent(id, 'Go', 'first');
    const done = await th.client.waitForCompletion(id, WAIT);
    expect(done.output).toBe('first');
    const finished = await th.client.raiseEvent(id, 'Go', 'second').catch((e: unknown) => e);
    expect(finished).toBeInstanceOf(InstanceFinishedError);
    expect(finished).toMatchObject({ instanceId: id, runtimeStatus: 'Completed' });
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(after!.history).toEqual(done.history);

    const t = await th.client.startNew('Forever');
    await waitIdle(th, t);
    await th.client.terminate(t, 'stop');
    const terminated = await th.client.raiseEvent(t, 'Never', 1).catch((e: unknown) => e);
    expect(terminated).toBeInstanceOf(InstanceFinishedError);
    expect(terminated).toMatchObject({ instanceId: t, runtimeStatus: 'Terminated' });
  });
});

/** Human interaction: an approval event raced against a timeout timer. */
function* approvalFlow(ctx: OrchestrationContext, timeoutMs: number): Generator<unknown, unknown, any> {
  const timeout = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + timeoutMs));
  const approval = ctx.waitForExternalEvent<string>('Approval');
  const winner: Task<unknown> = yield ctx.any([approval, timeout]);
  if (winner === approval) return yield ctx.callActivity('Process', approval.result);
  return yield ctx.callActivity('Escalate', timeoutMs);
}

describe('races and human interaction', () => {
  function approvalHub() {
    const calls = { Process: 0, Escalate: 0 };
    return {
      calls,
      hub: createTestHub({
        orchestrators: {
          Approval: approvalFlow,
          // After the approval, keep running (waiting on another event) while the losing timer fires.
          ApprovalThenWait: function* (ctx, timeoutMs: number): Generator<unknown, unknown, any> {
            const timeout = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + timeoutMs));
            const approval = ctx.waitForExternalEvent<string>('Approval');
            const winner: Task<unknown> = yield ctx.any([approval, timeout]);
            const done = yield ctx.waitForExternalEvent('Done');
            return { approved: winner === approval, timeoutFired: timeout.isCompleted, done };
          },
        },
        activities: {
          Process: async (by: string) => (calls.Process++, `approved by ${by}`),
          Escalate: async (ms: number) => (calls.Escalate++, `escalated after ${ms} ms`),
        },
      }),
    };
  }

  it('approval wins: the losing timer fires later and changes nothing', async () => {
    const h = approvalHub();
    th = await h.hub;
    const deliveries = recordDeliveries(th.workers[0]!);
    // The approval must win: a wide window keeps that true on a loaded machine.
    const id = await th.client.startNew('Approval', { input: 1500 });
    await waitIdle(th, id);
    await th.client.raiseEvent(id, 'Approval', 'alice');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('approved by alice');
    expect(h.calls).toEqual({ Process: 1, Escalate: 0 });
    expect(eventsOf(st.history, 'TimerFired')).toHaveLength(0);

    // The timer fires after its due time; the instance is finished, so the firing is refused.
    const [created] = eventsOf(st.history, 'TimerCreated');
    const firing = await waitTimerFired(deliveries, id, st.executionId, created!.taskId);
    expect(firing.error).toBeInstanceOf(InstanceFinishedError);
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(after!.runtimeStatus).toBe('Completed');
    expect(after!.output).toBe('approved by alice');
    expect(after!.episodes).toBe(st.episodes);
    expect(after!.history).toEqual(st.history);
    expect(h.calls).toEqual({ Process: 1, Escalate: 0 });
  });

  it('approval wins while the instance keeps running: the losing timer does not wake it', async () => {
    const h = approvalHub();
    th = await h.hub;
    const deliveries = recordDeliveries(th.workers[0]!);
    const id = await th.client.startNew('ApprovalThenWait', { input: 1500 });
    await waitIdle(th, id);
    await th.client.raiseEvent(id, 'Approval', 'bob');
    await waitUntil('the approval is processed', async () => eventsOf(await historyOf(th!, id), 'EventRaised').length === 1);
    await waitIdle(th, id);
    const before = await th.client.getStatus(id, { showHistory: true });
    const [created] = eventsOf(before!.history, 'TimerCreated');
    const firing = await waitTimerFired(deliveries, id, before!.executionId, created!.taskId);
    // The firing is in the inbox, but it woke nothing: no episode, no new history.
    expect(firing.result).toEqual({ status: 'delivered' });
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(after!.runtimeStatus).toBe('Running');
    expect(after!.episodes).toBe(before!.episodes);
    expect(after!.history).toEqual(before!.history);
    expect(await isScheduled(th, id)).toBe(false);
    expect(await th.redis.llen(th.keys.inbox(id))).toBe(1);

    await th.client.raiseEvent(id, 'Done', 'ok');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toEqual({ approved: true, timeoutFired: true, done: 'ok' });
    expect(st.episodes).toBe(before!.episodes + 1);
    expect(eventsOf(st.history, 'TimerFired')).toHaveLength(1);
  });

  it('timeout wins: the escalation runs and a late approval is refused', async () => {
    const h = approvalHub();
    th = await h.hub;
    const id = await th.client.startNew('Approval', { input: 100 });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('escalated after 100 ms');
    expect(h.calls).toEqual({ Process: 0, Escalate: 1 });
    expect(eventsOf(st.history, 'TimerFired')).toHaveLength(1);
    expect(eventsOf(st.history, 'EventRaised')).toHaveLength(0);
    expect(eventsOf(st.history, 'TaskScheduled').map((e) => e.name)).toEqual(['Escalate']);
    await expect(th.client.raiseEvent(id, 'Approval', 'too late')).rejects.toBeInstanceOf(InstanceFinishedError);
    expect(h.calls).toEqual({ Process: 0, Escalate: 1 });
  });

  it('async orchestrators race an event against a timer the same way', async () => {
    th = await createTestHub({
      orchestrators: {
        ApprovalAsync: async (ctx: OrchestrationContext, timeoutMs: number) => {
          const timeout = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + timeoutMs));
          const approval = ctx.waitForExternalEvent<string>('Approval');
          // `await` unwraps thenables and tasks are thenables, so `await ctx.any(...)` gives the winner's
          // result, not the winning task (unlike `yield`): ask the tasks which one completed.
          await ctx.any([approval, timeout]);
          return approval.isCompleted ? `approved by ${approval.result}` : `timed out after ${timeoutMs} ms`;
        },
      },
    });
    const [approved, timedOut] = await Promise.all([
      th.client.startNew('ApprovalAsync', { input: 60_000 }),
      th.client.startNew('ApprovalAsync', { input: 50 }),
    ]);
    await waitIdle(th, approved);
    await th.client.raiseEvent(approved, 'Approval', 'dave');
    const sa = await th.client.waitForCompletion(approved, WAIT);
    const st = await th.client.waitForCompletion(timedOut, WAIT);
    expect(sa.output).toBe('approved by dave');
    expect(eventsOf(sa.history, 'TimerFired')).toHaveLength(0);
    expect(st.output).toBe('timed out after 50 ms');
    expect(eventsOf(st.history, 'TimerFired')).toHaveLength(1);
  });

  it('races two activities: the first to finish wins, the loser changes nothing', async () => {
    const slowGate = new Gate();
    th = await createTestHub({
      orchestrators: {
        Race: function* (ctx): Generator<unknown, unknown, any> {
          const fast = ctx.callActivity<string>('Fast', 'f');
          const slow = ctx.callActivity<string>('Slow', 's');
          const winner: Task<unknown> = yield ctx.any([slow, fast]);
          return { winner: winner === fast ? 'fast' : 'slow', result: winner.result, slowDone: slow.isCompleted };
        },
      },
      activities: {
        Fast: async (x: string) => `${x}!`,
        Slow: async (x: string) => (await slowGate.pass(), `${x}...`),
      },
    });
    const worker = th.workers[0]!;
    const id = await th.client.startNew('Race');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toEqual({ winner: 'fast', result: 'f!', slowDone: false });
    expect(eventsOf(st.history, 'TaskScheduled').map((e) => [e.taskId, e.name])).toEqual([[0, 'Fast'], [1, 'Slow']]);
    expect(eventsOf(st.history, 'TaskCompleted').map((e) => e.taskScheduledId)).toEqual([0]);
    await slowGate.entered;
    slowGate.open();
    await waitUntil('the slow activity finished', () => worker.stats.activities === 2);
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(after!.runtimeStatus).toBe('Completed');
    expect(after!.output).toEqual(st.output);
    expect(after!.episodes).toBe(st.episodes);
    expect(after!.history).toEqual(st.history);
  });
});

async function isScheduled(th: TestHub, id: string): Promise<boolean> {
  return (await th.client.backend.getState(id))!.scheduled;
}

describe('custom status', () => {
  it('is visible while the instance waits and after it completes', async () => {
    th = await createTestHub({
      orchestrators: {
        Staged: function* (ctx): Generator<unknown, unknown, any> {
          ctx.setCustomStatus({ stage: 'preparing' });
          const n = yield ctx.callActivity('Count');
          ctx.setCustomStatus({ stage: 'awaiting approval', n });
          const who = yield ctx.waitForExternalEvent<string>('Approve');
          ctx.setCustomStatus({ stage: 'done', by: who });
          return n;
        },
        SetOnce: function* (ctx): Generator<unknown, unknown, any> {
          ctx.setCustomStatus('set in the first episode');
          return yield ctx.callActivity('Count');
        },
      },
      activities: { Count: async () => 7 },
    });
    const id = await th.client.startNew('Staged');
    await waitUntil('the instance waits for approval', async () => {
      const s = await th!.client.getStatus(id);
      return s?.runtimeStatus === 'Running' && (s.customStatus as { stage?: string } | undefined)?.stage === 'awaiting approval';
    });
    await waitIdle(th, id);
    const waiting = await th.client.getStatus(id);
    expect(waiting!.customStatus).toEqual({ stage: 'awaiting approval', n: 7 });
    await th.client.raiseEvent(id, 'Approve', 'carol');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe(7);
    expect(st.customStatus).toEqual({ stage: 'done', by: 'carol' });

    const once = await th.client.startNew('SetOnce');
    const so = await th.client.waitForCompletion(once, WAIT);
    expect(so.customStatus).toBe('set in the first episode');
  });
});

describe('deterministic helpers', () => {
  it('newGuid gives the same values on every replay, distinct per call', async () => {
    const computed: string[][] = [[], [], [], []];
    const recorded: string[] = [];
    th = await createTestHub({
      orchestrators: {
        Guids: function* (ctx): Generator<unknown, unknown, any> {
          const out: string[] = [];
          // Two in the first episode, then one per episode.
          for (let i = 0; i < 4; i++) {
            const g = ctx.newGuid();
            computed[i]!.push(g);
            if (i === 0) continue;
            out.push(yield ctx.callActivity<string>('Record', g));
          }
          out.unshift(computed[0]!.at(-1)!);
          return out;
        },
      },
      activities: { Record: async (g: string) => (recorded.push(g), g) },
    }, REPLAY_EVERY_EPISODE);
    const id = await th.client.startNew('Guids');
    const st = await th.client.waitForCompletion<string[]>(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    const out = st.output!;
    expect(out).toHaveLength(4);
    expect(new Set(out).size).toBe(4);
    for (const g of out) expect(g).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // What the activities saw is what the orchestrator returned (computed in later replays).
    expect(recorded).toEqual(out.slice(1));
    expect(eventsOf(st.history, 'TaskScheduled').map((e) => e.input)).toEqual(out.slice(1));
    // Every replay computed the same value for each call: step 0 and 1 ran in all 4 episodes, 2 in 3, 3 in 2.
    expect(st.episodes).toBe(4);
    expect(computed.map((c) => c.length)).toEqual([4, 4, 3, 2]);
    computed.forEach((c, i) => expect(new Set(c), `newGuid #${i}`).toEqual(new Set([out[i]])));
  });

  it('isReplaying is false exactly once per step (generator and async)', async () => {
    const log: Record<string, string[]> = { gen: [], async: [] };
    const calls: Record<string, number> = { gen: 0, async: 0 };
    th = await createTestHub({
      orchestrators: {
        StepsGen: function* (ctx): Generator<unknown, unknown, any> {
          calls.gen!++;
          let acc = '';
          for (const s of ['a', 'b', 'c']) {
            if (!ctx.isReplaying) log.gen!.push(`before ${s}`);
            acc += yield ctx.callActivity('Echo', s);
          }
          const [x, y] = yield ctx.all([ctx.callActivity('Echo', 'x'), ctx.callActivity('Echo', 'y')]);
          if (!ctx.isReplaying) log.gen!.push('end');
          return acc + x + y;
        },
        StepsAsync: async (ctx: OrchestrationContext) => {
          calls.async!++;
          let acc = '';
          for (const s of ['a', 'b', 'c']) {
            if (!ctx.isReplaying) log.async!.push(`before ${s}`);
            acc += await ctx.callActivity<string>('Echo', s);
          }
          const [x, y] = await ctx.all([ctx.callActivity<string>('Echo', 'x'), ctx.callActivity<string>('Echo', 'y')]);
          if (!ctx.isReplaying) log.async!.push('end');
          return acc + x + y;
        },
      },
      activities: { Echo: async (s: string) => s },
    }, REPLAY_EVERY_EPISODE);
    const [g, a] = await Promise.all([th.client.startNew('StepsGen'), th.client.startNew('StepsAsync')]);
    const [sg, sa] = await Promise.all([th.client.waitForCompletion(g, WAIT), th.client.waitForCompletion(a, WAIT)]);
    for (const [key, st] of [['gen', sg], ['async', sa]] as const) {
      expect(st.output).toBe('abcxy');
      expect(log[key], key).toEqual(['before a', 'before b', 'before c', 'end']);
      // The code ran once per episode, so the log did see replays (it is not trivially once).
      expect(st.episodes).toBe(5);
      expect(calls[key]).toBe(5);
    }
  });
});

describe('async fan-in counter', () => {
  it('await ctx.all over 500 activities takes at most 4 episodes', async () => {
    th = await createTestHub({
      orchestrators: {
        FanAsync: async (ctx: OrchestrationContext, n: number) => {
          const items = await ctx.callActivity<number[]>('List', n);
          const results = await ctx.all(items.map((i) => ctx.callActivity<number>('Double', i)));
          return results.reduce((s, x) => s + x, 0);
        },
      },
      activities: {
        List: async (n: number) => Array.from({ length: n }, (_, i) => i + 1),
        Double: async (i: number) => 2 * i,
      },
    });
    const id = await th.client.startNew('FanAsync', { input: 500 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 25_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe(500 * 501);
    expect(st.episodes).toBeLessThanOrEqual(4);
    expect(eventsOf(st.history, 'TaskScheduled')).toHaveLength(501);
    const completed = eventsOf(st.history, 'TaskCompleted');
    expect(completed).toHaveLength(501);
    expect(new Set(completed.map((e) => e.taskScheduledId)).size).toBe(501);
  });
});
