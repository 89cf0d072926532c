/**
 * Non-determinism diagnosis: the error shows, side by side, what history recorded and what the code
 * did at the first divergence (history index, event type, sequence number, kind and name).
 */
import { describe, expect, it } from 'vitest';
import { RuntimeOrchestrationContext } from '../context/runtime-orchestration-context.js';
import { NonDeterminismError, type OrchestratorFunction, newOrchestratorStartedEvent, newTaskCompletedEvent } from '../index.js';
import { EpisodeRunner, at, registryOf, startEvents } from './helpers.js';

const v1: OrchestratorFunction = function* (ctx) {
  const a = yield ctx.callActivity('F1');
  const b = yield ctx.callActivity('F2', a);
  return yield ctx.callActivity('F4', b);
};

/** Runs v1 for two episodes (F1 done, F2 scheduled) and returns the history. */
async function v1History() {
  const runner = new EpisodeRunner(registryOf('Flow', v1));
  await runner.run(startEvents('Flow'));
  await runner.run([newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, 'a', at(1))]);
  return runner.history;
}

describe('NonDeterminismError diagnosis', () => {
  it("names history[i], the event type, sequence number, kind and name next to the code's step", async () => {
    const history = await v1History();
    const idx = history.findIndex((e) => e.type === 'TaskScheduled' && e.taskId === 1);
    expect(idx).toBeGreaterThan(0);

    const v2: OrchestratorFunction = function* (ctx) {
      const a = yield ctx.callActivity('F1');
      const b = yield ctx.callActivity('F3', a);
      return b;
    };
    const result = await (async () => {
      const runner = new EpisodeRunner(registryOf('Flow', v2));
      runner.history = history;
      return runner.run([newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(1, 'b', at(2))]);
    })();
    expect(result.status).toBe('Failed');
    expect(result.failure?.errorName).toBe('NonDeterminismError');
    expect(result.failure?.message).toContain(`history[${idx}] TaskScheduled #1 activity 'F2'  vs  code: activity 'F3' (#1)`);
  });

  it('carries the two sides as fields', () => {
    const ctx = new RuntimeOrchestrationContext('i', 'x', 'Flow');
    ctx.callActivity('F3');
    let err: unknown;
    try {
      ctx.matchScheduled(0, 'ScheduleTask', 'F2', { historyIndex: 7, eventType: 'TaskScheduled' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NonDeterminismError);
    const nd = err as NonDeterminismError;
    expect(nd.historyIndex).toBe(7);
    expect(nd.historyEventType).toBe('TaskScheduled');
    expect(nd.sequenceNumber).toBe(0);
    expect(nd.recorded).toEqual({ kind: 'activity', name: 'F2', sequenceNumber: 0 });
    expect(nd.code).toEqual({ kind: 'activity', name: 'F3', sequenceNumber: 0 });
    expect(nd.message).toContain("history[7] TaskScheduled #0 activity 'F2'  vs  code: activity 'F3' (#0)");
  });

  it('a timer where history has an activity, and nothing where history has a step', () => {
    const ctx = new RuntimeOrchestrationContext('i', 'x', 'Flow');
    ctx.createTimer(new Date(1000));
    const catchIt = (f: () => void) => {
      try {
        f();
      } catch (e) {
        return e as NonDeterminismError;
      }
      throw new Error('no error');
    };
    const swapped = catchIt(() => ctx.matchScheduled(0, 'ScheduleTask', 'F1', { historyIndex: 3, eventType: 'TaskScheduled' }));
    expect(swapped.code).toEqual({ kind: 'timer', name: undefined, sequenceNumber: 0 });
    expect(swapped.message).toContain("history[3] TaskScheduled #0 activity 'F1'  vs  code: a timer (#0)");

    const missing = catchIt(() => ctx.matchScheduled(5, 'CreateTimer', undefined, { historyIndex: 9, eventType: 'TimerCreated' }));
    expect(missing.code).toBeUndefined();
    expect(missing.recorded).toEqual({ kind: 'timer', name: undefined, sequenceNumber: 5 });
    expect(missing.message).toContain('history[9] TimerCreated #5 a timer  vs  code: nothing');
  });

  it('code that returns early: the first unmatched history step is reported with its index', async () => {
    const history = await v1History();
    const idx = history.findIndex((e) => e.type === 'TaskScheduled' && e.taskId === 1);
    const early: OrchestratorFunction = function* (ctx) {
      yield ctx.callActivity('F1');
      return 'early';
    };
    const runner = new EpisodeRunner(registryOf('Flow', early));
    runner.history = history;
    const result = await runner.run([newOrchestratorStartedEvent(at(2))]);
    expect(result.status).toBe('Failed');
    expect(result.failure?.message).toContain(`history[${idx}] TaskScheduled #1 activity 'F2'  vs  code: nothing`);
  });
});
