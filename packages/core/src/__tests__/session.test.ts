/**
 * OrchestrationSession: an execution's code kept between episodes. After each committed (accepted)
 * Running episode, `resume` with the next episode's new events must give exactly what a fresh
 * replay of the whole history gives: the same actions, action events, status, output, custom
 * status and wait spec.
 */
import { describe, expect, it } from 'vitest';
import {
  type ExecutionResult,
  type FailureDetails,
  type HistoryEvent,
  type OrchestrationContext,
  type OrchestratorFunction,
  OrchestrationSession,
  type Task,
  executeOrchestration,
  newEventRaisedEvent,
  newOrchestratorCompletedEvent,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
  newTaskFailedEvent,
  newTimerFiredEvent,
} from '../index.js';
import { at, chain, registryOf, startEvents } from './helpers.js';

/**
 * Runs each episode twice: by a fresh replay of the history, and by one session resumed from
 * episode to episode. Both must agree; history grows as the backend grows it.
 */
class Twins {
  history: HistoryEvent[] = [];
  readonly session: OrchestrationSession;
  private first = true;
  constructor(private readonly registry: ReturnType<typeof registryOf>) {
    this.session = new OrchestrationSession(registry);
  }

  async episode(seconds: number, events: HistoryEvent[]): Promise<ExecutionResult> {
    const inbox = [newOrchestratorStartedEvent(at(seconds)), ...events];
    const replayed = await executeOrchestration(this.registry, this.history, inbox);
    const resumed = this.first ? await this.session.run(this.history, inbox) : await this.session.resume(inbox);
    this.first = false;
    // A failure's stack names the path the code was run from: everything else must be the same.
    expect(withoutStack(resumed)).toEqual(withoutStack(replayed));
    this.history = [...this.history, ...inbox, ...replayed.actionEvents, newOrchestratorCompletedEvent(at(seconds))];
    this.session.accept();
    expect(this.session.resumable).toBe(replayed.status === 'Running');
    if (this.session.resumable) expect(this.session.historyLength).toBe(this.history.length);
    return replayed;
  }
}

function withoutStack(r: ExecutionResult): unknown {
  return JSON.parse(JSON.stringify(r, (key, value: unknown) => (key === 'stack' ? undefined : value)));
}

describe('OrchestrationSession', () => {
  it('resumes a chain where it stopped, step after step', async () => {
    const t = new Twins(registryOf('Chain', chain));
    const first = await t.episode(0, startEvents('Chain', 'x').slice(1));
    expect(first.started).toBe(true);
    expect((await t.episode(1, [newTaskCompletedEvent(0, 'a', at(1))])).actions).toEqual([{ type: 'ScheduleTask', id: 1, name: 'F2', input: 'a' }]);
    await t.episode(2, [newTaskCompletedEvent(1, 'b', at(2))]);
    await t.episode(3, [newTaskCompletedEvent(2, 'c', at(3))]);
    const done = await t.episode(4, [newTaskCompletedEvent(3, 'd', at(4))]);
    expect(done).toMatchObject({ status: 'Completed', output: 'd', started: false });
    expect(t.session.resumable).toBe(false);
  });

  it('resumes an async fan-out/fan-in whose results arrive in several episodes', async () => {
    const fan = async (ctx: OrchestrationContext, n: number) => {
      const tasks: Task<number>[] = [];
      for (let i = 0; i < n; i++) tasks.push(ctx.callActivity<number>('Work', i));
      const values = await ctx.all(tasks);
      ctx.setCustomStatus({ got: values.length });
      return values.reduce((s, v) => s + v, 0);
    };
    const t = new Twins(registryOf('Fan', fan));
    await t.episode(0, startEvents('Fan', 3).slice(1));
    const partial = await t.episode(1, [newTaskCompletedEvent(0, 10, at(1)), newTaskCompletedEvent(2, 30, at(1))]);
    expect(partial.wait).toEqual({ kind: 'all', ids: [1], coversAllOpen: true });
    const done = await t.episode(2, [newTaskCompletedEvent(1, 20, at(2))]);
    expect(done).toMatchObject({ status: 'Completed', output: 60, customStatus: { value: { got: 3 } } });
  });

  it('keeps timers, raised events, races, patches, guids and custom status across episodes', async () => {
    const guids: string[] = [];
    const approval = function* (ctx: OrchestrationContext): Generator<unknown, string, any> {
      guids.push(ctx.newGuid());
      ctx.setCustomStatus('waiting');
      const timeout = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 60_000));
      const answer = ctx.waitForExternalEvent<string>('answer');
      const winner: Task<unknown> = yield ctx.any([timeout, answer]);
      if (winner === timeout) return 'timed out';
      timeout.cancel();
      guids.push(ctx.newGuid());
      const extra = ctx.patched('audit') ? yield ctx.callActivity('Audit', answer.result) : 'no audit';
      const more: string = yield ctx.waitForExternalEvent<string>('more');
      return `${answer.result}/${extra}/${more}`;
    };
    const t = new Twins(registryOf('Approval', approval));
    await t.episode(0, startEvents('Approval').slice(1));
    // An unrelated event is buffered; the answer wins the race.
    const answered = await t.episode(5, [newEventRaisedEvent('more', 'later', at(5)), newEventRaisedEvent('answer', 'yes', at(5))]);
    expect(answered.actions.map((a) => a.type)).toEqual(['ScheduleTask', 'CancelTimer']);
    expect(answered.actionEvents.map((e) => e.type)).toEqual(['PatchApplied', 'TaskScheduled']);
    // The cancelled timer fires anyway: nothing changes.
    const fired = await t.episode(60, [newTimerFiredEvent(0, at(60), at(60))]);
    expect(fired.actions).toEqual([]);
    const done = await t.episode(61, [newTaskCompletedEvent(1, 'audited', at(61))]);
    expect(done).toMatchObject({ status: 'Completed', output: 'yes/audited/later' });
    // The session's guids are the replay's (each episode above ran both ways).
    expect(new Set(guids).size).toBe(2);
  });

  it('retries a failed activity with its timer, as a replay does', async () => {
    const retry = function* (ctx: OrchestrationContext): Generator<unknown, string, string> {
      return yield ctx.callActivityWithRetry('Flaky', { maxNumberOfAttempts: 3, firstRetryIntervalMs: 1000 }, 'in');
    };
    const failure: FailureDetails = { errorName: 'Error', message: 'boom' };
    const t = new Twins(registryOf('Retry', retry));
    await t.episode(0, startEvents('Retry').slice(1));
    const waiting = await t.episode(1, [newTaskFailedEvent(0, failure, at(1))]);
    expect(waiting.actions).toEqual([{ type: 'CreateTimer', id: 1, fireAt: at(2) }]);
    const again = await t.episode(2, [newTimerFiredEvent(1, at(2), at(2))]);
    // The retry names its first attempt (their heartbeat details are shared).
    expect(again.actions).toEqual([{ type: 'ScheduleTask', id: 2, name: 'Flaky', input: 'in', retryOf: 0 }]);
    expect(await t.episode(3, [newTaskCompletedEvent(2, 'ok', at(3))])).toMatchObject({ status: 'Completed', output: 'ok' });
  });

  it('is not resumable after continue-as-new, a failure, or before its result is accepted', async () => {
    const loop = function* (ctx: OrchestrationContext, n: number): Generator<unknown, void, unknown> {
      yield ctx.callActivity('Step', n);
      if (n === 0) throw new Error('bad input');
      ctx.continueAsNew(n + 1);
    };
    const s = new OrchestrationSession(registryOf('Loop', loop));
    const inbox = [newOrchestratorStartedEvent(at(0)), ...startEvents('Loop', 5).slice(1)];
    const r = await s.run([], inbox);
    expect(s.resumable).toBe(false);
    await expect(s.resume([newOrchestratorStartedEvent(at(1))])).rejects.toThrow(/not accepted/);
    s.accept();
    expect(s.resumable).toBe(true);
    const history = [...inbox, ...r.actionEvents, newOrchestratorCompletedEvent(at(0))];
    const next = [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, null, at(1))];
    const continued = await s.resume(next);
    expect(continued).toEqual(await executeOrchestration(registryOf('Loop', loop), history, next));
    expect(continued.status).toBe('ContinuedAsNew');
    s.accept();
    expect(s.resumable).toBe(false);

    const t = new Twins(registryOf('Loop', loop));
    await t.episode(0, startEvents('Loop', 0).slice(1));
    expect((await t.episode(1, [newTaskCompletedEvent(0, null, at(1))])).status).toBe('Failed');
    expect(t.session.resumable).toBe(false);
  });
});
