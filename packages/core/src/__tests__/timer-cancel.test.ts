import { describe, expect, it } from 'vitest';
import {
  type OrchestrationContext,
  type Task,
  type TimerTask,
  newEventRaisedEvent,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
} from '../index.js';
import { EpisodeRunner, at, registryOf, startEvents } from './helpers.js';

function* approval(ctx: OrchestrationContext): Generator<unknown, string, any> {
  const timer: TimerTask = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 60_000));
  const event = ctx.waitForExternalEvent<string>('Approval');
  const winner: Task<unknown> = yield ctx.any([event, timer]);
  if (winner === event) {
    timer.cancel();
    yield ctx.callActivity('Notify', event.result);
    return `approved by ${event.result}`;
  }
  return 'timed out';
}

describe('timer cancellation', () => {
  it('asks the backend to cancel a losing timer once, and never again on replay', async () => {
    const run = new EpisodeRunner(registryOf('Approval', approval));
    const first = await run.run(startEvents('Approval'));
    expect(first.actions).toEqual([{ type: 'CreateTimer', id: 0, fireAt: at(60) }]);
    const second = await run.run([newOrchestratorStartedEvent(at(5)), newEventRaisedEvent('Approval', 'ann')]);
    expect(second.status).toBe('Running');
    expect(second.actions).toEqual([
      { type: 'ScheduleTask', id: 1, name: 'Notify', input: 'ann' },
      { type: 'CancelTimer', id: 0 },
    ]);
    // The timer is no longer open: the wait covers the one activity only.
    expect(second.wait).toEqual({ kind: 'any', ids: [1], coversAllOpen: true });
    // The next episode replays the cancel: no second CancelTimer.
    const third = await run.run([newOrchestratorStartedEvent(at(6)), newTaskCompletedEvent(1)]);
    expect(third.status).toBe('Completed');
    expect(third.output).toBe('approved by ann');
    expect(third.actions.filter((a) => a.type === 'CancelTimer')).toEqual([]);
  });

  it('never schedules a timer created and cancelled in the same step', async () => {
    const run = new EpisodeRunner(
      registryOf('Quick', function* (ctx) {
        const t = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 1000));
        t.cancel();
        expect(t.isCancelled).toBe(true);
        return yield ctx.callActivity('A');
      }),
    );
    const first = await run.run(startEvents('Quick'));
    expect(first.actions).toEqual([{ type: 'ScheduleTask', id: 1, name: 'A', input: undefined }]);
    expect(first.actionEvents.map((e) => e.type)).toEqual(['TaskScheduled']);
    expect(first.wait).toEqual({ kind: 'any', ids: [1], coversAllOpen: true });
  });
});
