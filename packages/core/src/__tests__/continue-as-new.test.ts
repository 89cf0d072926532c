/**
 * Executor unit tests of continue-as-new event carry-over: which raised events the next execution
 * receives. No Redis.
 */
import { describe, expect, it } from 'vitest';
import { type OrchestratorFunction, newEventRaisedEvent, newOrchestratorStartedEvent } from '../index.js';
import { EpisodeRunner, T0, at, registryOf, startEvents } from './helpers.js';

/** Takes one `Data` event per execution and continues as new until it has three. */
const rounds: OrchestratorFunction = function* (ctx, got: unknown[]) {
  const v = yield ctx.waitForExternalEvent('Data');
  const next = [...got, v];
  if (next.length < 3) ctx.continueAsNew(next);
  else return next;
};

describe('continue-as-new carry-over', () => {
  it('carries the raised events after the one that let the code continue as new', async () => {
    const runner = new EpisodeRunner(registryOf('Rounds', rounds));
    // One episode sees three events: the first completes the wait and the code continues as new at
    // once; the replay stops there, so the other two were never delivered and must be carried over.
    const r = await runner.run([
      ...startEvents('Rounds', [], T0),
      newEventRaisedEvent('Data', 'a', T0),
      newEventRaisedEvent('Other', 'o', T0),
      newEventRaisedEvent('Data', 'b', T0),
    ]);
    expect(r.status).toBe('ContinuedAsNew');
    expect(r.output).toEqual(['a']);
    expect(r.carryOverEvents).toEqual([
      { name: 'Other', input: 'o' },
      { name: 'Data', input: 'b' },
    ]);
  });

  it('puts buffered events first, then the ones the replay did not reach, in arrival order', async () => {
    const bufferFirst: OrchestratorFunction = function* (ctx) {
      yield ctx.createTimer(new Date(at(10)));
      yield ctx.waitForExternalEvent('Go');
      ctx.continueAsNew('next');
    };
    const runner = new EpisodeRunner(registryOf('Buffer', bufferFirst));
    await runner.run(startEvents('Buffer', undefined, T0));
    // 'Data' x arrives while the code waits on the timer: buffered, never consumed.
    await runner.run([newOrchestratorStartedEvent(at(1)), newEventRaisedEvent('Data', 'x', at(1))]);
    const r = await runner.run([
      newOrchestratorStartedEvent(at(11)),
      { type: 'TimerFired', timerId: 0, fireAt: at(10), timestamp: at(10) },
      newEventRaisedEvent('Go', 1, at(11)),
      newEventRaisedEvent('Data', 'y', at(11)),
    ]);
    expect(r.status).toBe('ContinuedAsNew');
    expect(r.carryOverEvents).toEqual([
      { name: 'Data', input: 'x' },
      { name: 'Data', input: 'y' },
    ]);
  });

  it('carries nothing with preserveUnprocessedEvents: false', async () => {
    const drop: OrchestratorFunction = function* (ctx) {
      yield ctx.waitForExternalEvent('Go');
      ctx.continueAsNew('next', { preserveUnprocessedEvents: false });
    };
    const runner = new EpisodeRunner(registryOf('Drop', drop));
    const r = await runner.run([...startEvents('Drop', undefined, T0), newEventRaisedEvent('Go', 1, T0), newEventRaisedEvent('Data', 'z', T0)]);
    expect(r.status).toBe('ContinuedAsNew');
    expect(r.carryOverEvents).toEqual([]);
  });
});
