/**
 * What orchestrator code sees through the context: isReplaying, currentUtcDateTime, newGuid.
 * Values are recorded from inside the orchestrator while the executor replays hand-made histories.
 */
import { describe, it, expect } from 'vitest';
import {
  type HistoryEvent,
  type OrchestratorFunction,
  executeOrchestration,
  newExecutionStartedEvent,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
  newTaskScheduledEvent,
} from '../index.js';
import { INSTANCE_ID, T0, at, registryOf, startEvents } from './helpers.js';

/** A two-step chain whose code reports what it sees at each step through `record`. */
function twoSteps(record: (step: string, ctx: Parameters<OrchestratorFunction>[0]) => void): {
  generator: OrchestratorFunction;
  async: OrchestratorFunction;
} {
  return {
    generator: function* (ctx) {
      record('start', ctx);
      const a = yield ctx.callActivity('F1');
      record('after F1', ctx);
      const b = yield ctx.callActivity('F2', a);
      record('after F2', ctx);
      return b;
    },
    async: async (ctx) => {
      record('start', ctx);
      const a = await ctx.callActivity('F1');
      record('after F1', ctx);
      const b = await ctx.callActivity('F2', a);
      record('after F2', ctx);
      return b;
    },
  };
}

// Past: episode 1 at T0 (start, schedule F1), episode 2 at at(1) (F1 done, schedule F2). New: episode 3 at at(2).
const pastTwoEpisodes: HistoryEvent[] = [
  newOrchestratorStartedEvent(T0),
  newExecutionStartedEvent('Steps', INSTANCE_ID, undefined, { timestamp: T0 - 5_000 }),
  newTaskScheduledEvent(0, 'F1', undefined, T0),
  newOrchestratorStartedEvent(at(1)),
  newTaskCompletedEvent(0, 'a', at(1)),
  newTaskScheduledEvent(1, 'F2', 'a', at(1)),
];
const newThirdEpisode: HistoryEvent[] = [newOrchestratorStartedEvent(at(2)), newTaskCompletedEvent(1, 'b', at(2))];

describe.each(['generator', 'async'] as const)('%s orchestrator', (style) => {
  it('isReplaying is true while past events replay and false for new ones', async () => {
    const log: [string, boolean][] = [];
    const fns = twoSteps((step, ctx) => log.push([step, ctx.isReplaying]));
    const registry = registryOf('Steps', fns[style]);

    const result = await executeOrchestration(registry, pastTwoEpisodes, newThirdEpisode);
    expect(result.status).toBe('Completed');
    expect(log).toEqual([
      ['start', true],
      ['after F1', true],
      ['after F2', false],
    ]);

    log.length = 0;
    await executeOrchestration(registry, [], startEvents('Steps'));
    expect(log).toEqual([['start', false]]);
  });

  it('currentUtcDateTime comes from the OrchestratorStarted timestamp of each step', async () => {
    const times: [string, number][] = [];
    const fns = twoSteps((step, ctx) => times.push([step, ctx.currentUtcDateTime.getTime()]));
    const registry = registryOf('Steps', fns[style]);

    const result = await executeOrchestration(registry, pastTwoEpisodes, newThirdEpisode);
    // ExecutionStarted's own timestamp (T0 - 5 s) is not used: OrchestratorStarted precedes it.
    expect(times).toEqual([
      ['start', T0],
      ['after F1', at(1)],
      ['after F2', at(2)],
    ]);
    expect(result.actionEvents).toEqual([{ type: 'ExecutionCompleted', status: 'Completed', result: 'b', timestamp: at(2) }]);
  });

  it('newGuid is the same on every replay of a step and different for successive calls', async () => {
    const guids: string[] = [];
    const registry = registryOf(
      'Guids',
      style === 'generator'
        ? function* (ctx) {
            guids.push(ctx.newGuid(), ctx.newGuid());
            yield ctx.callActivity('F1');
            guids.push(ctx.newGuid());
            return 'ok';
          }
        : async (ctx) => {
            guids.push(ctx.newGuid(), ctx.newGuid());
            await ctx.callActivity('F1');
            guids.push(ctx.newGuid());
            return 'ok';
          },
    );

    await executeOrchestration(registry, [], startEvents('Guids'));
    const firstEpisode = guids.splice(0);
    expect(firstEpisode).toHaveLength(2);

    const past = [...startEvents('Guids'), newTaskScheduledEvent(0, 'F1', undefined, T0)];
    const inbox = [newOrchestratorStartedEvent(at(1)), newTaskCompletedEvent(0, undefined, at(1))];
    await executeOrchestration(registry, past, inbox);
    const replay1 = guids.splice(0);
    await executeOrchestration(registry, past, inbox);
    const replay2 = guids.splice(0);

    expect(replay1).toHaveLength(3);
    expect(replay1).toEqual(replay2);
    expect(replay1.slice(0, 2)).toEqual(firstEpisode);
    expect(new Set(replay1).size).toBe(3);
    for (const g of replay1) expect(g).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    // Another instance gets other GUIDs for the same steps.
    await executeOrchestration(registry, [], [
      newOrchestratorStartedEvent(T0),
      newExecutionStartedEvent('Guids', 'another-instance', undefined, { timestamp: T0 }),
    ]);
    const other = guids.splice(0);
    expect(other).toHaveLength(2);
    expect(other[0]).not.toBe(firstEpisode[0]);
  });
});

describe('ctx.parentInstanceId', () => {
  it("is the parent's instance id in a sub-orchestration and undefined in a top-level one", async () => {
    const seen: (string | undefined)[] = [];
    const registry = registryOf('Child', function* (ctx) {
      seen.push(ctx.parentInstanceId);
      return yield ctx.callActivity('F1');
    });
    const child = newExecutionStartedEvent('Child', 'child-1', undefined, { timestamp: T0 });
    child.parent = { instanceId: 'parent-7', executionId: 'e9', taskId: 3, name: 'Parent' };
    // First episode, then a replay of it: the same id both times.
    await executeOrchestration(registry, [], [newOrchestratorStartedEvent(T0), child]);
    await executeOrchestration(registry, [newOrchestratorStartedEvent(T0), child, newTaskScheduledEvent(0, 'F1', undefined, T0)], [
      newOrchestratorStartedEvent(at(1)),
      newTaskCompletedEvent(0, 'x', at(1)),
    ]);
    await executeOrchestration(registry, [], startEvents('Child'));
    expect(seen).toEqual(['parent-7', 'parent-7', undefined]);
  });
});
