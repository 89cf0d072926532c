/**
 * The replay check on hand-made histories: v1 code writes them, v2 code is checked against them.
 */
import { describe, expect, it } from 'vitest';
import {
  type HistoryEvent,
  type OrchestratorFunction,
  Registry,
  ReplayChecker,
  ValidationError,
  newOrchestratorCompletedEvent,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
  replayHistories,
} from '../index.js';
import { EpisodeRunner, at, chain, registryOf, startEvents } from './helpers.js';

const v1: OrchestratorFunction = function* (ctx, input: string) {
  const a = yield ctx.callActivity('F1', input);
  const b = yield ctx.callActivity('F2', a);
  return yield ctx.callActivity('F3', b);
};

/** v2 renames the second activity: instances past F1 diverge, the others do not. */
const renamed: OrchestratorFunction = function* (ctx, input: string) {
  const a = yield ctx.callActivity('F1', input);
  const b = yield ctx.callActivity('F2b', a);
  return yield ctx.callActivity('F3', b);
};

/** The same change behind a patch: old instances keep F2. */
const patched: OrchestratorFunction = function* (ctx, input: string) {
  const a = yield ctx.callActivity('F1', input);
  const b = yield ctx.callActivity(ctx.patched('use-F2b') ? 'F2b' : 'F2', a);
  return yield ctx.callActivity('F3', b);
};

/** The history of a v1 instance after `steps` results (0: blocked on F1), each episode framed as stored. */
async function v1History(steps: number, fn: OrchestratorFunction = v1): Promise<HistoryEvent[]> {
  const runner = new EpisodeRunner(registryOf('Order', fn));
  const framed: HistoryEvent[] = [];
  let inbox = startEvents('Order', 'x');
  for (let k = 0; k <= steps; k++) {
    const before = runner.history.length;
    await runner.run(inbox);
    framed.push(...runner.history.slice(before), newOrchestratorCompletedEvent(at(k)));
    inbox = [newOrchestratorStartedEvent(at(k + 1)), newTaskCompletedEvent(k, `r${k}`, at(k + 1))];
  }
  return framed;
}

describe('replayHistories', () => {
  it('reports v2 code that renames an activity for the v1 instances past it, not for the others', async () => {
    const atF1 = await v1History(0); // blocked on F1: F2 not scheduled yet
    const atF2 = await v1History(1); // F2 scheduled under its old name
    const report = await replayHistories(registryOf('Order', renamed), [
      { instanceId: 'new', events: atF1 },
      { instanceId: 'old', events: atF2 },
    ]);
    expect(report.checked).toBe(2);
    expect(report.ok).toBe(false);
    expect(report.divergences).toEqual([
      {
        instanceId: 'old',
        orchestrator: 'Order',
        kind: 'non-determinism',
        step: { sequenceNumber: 1, historyIndex: expect.any(Number) },
        history: expect.stringMatching(/TaskScheduled #1 activity 'F2'$/),
        code: "activity 'F2b' (#1)",
      },
    ]);
    expect(atF2[report.divergences[0]!.step!.historyIndex!]).toMatchObject({ type: 'TaskScheduled', name: 'F2' });
  });

  it('passes the same change behind ctx.patched, and says the patch is still needed', async () => {
    const report = await replayHistories(registryOf('Order', patched), [await v1History(0), await v1History(1), await v1History(2)]);
    expect(report.divergences).toEqual([]);
    expect(report.ok).toBe(true);
    // The instances past F1 took the old path: the patch must stay.
    expect(report.patches).toEqual([{ patchId: 'use-F2b', predating: 2, applied: 0, removable: false }]);
  });

  it('says a patch can be removed once every instance that reaches it has it applied', async () => {
    // Instances started on the patched code record PatchApplied when they reach it.
    const histories = [await v1History(1, patched), await v1History(2, patched), await v1History(0, v1)];
    const report = await replayHistories(registryOf('Order', patched), histories);
    expect(report.ok).toBe(true);
    expect(report.patches).toEqual([{ patchId: 'use-F2b', predating: 0, applied: 2, removable: true }]);
  });

  it('reports instances of an orchestrator the code no longer has', async () => {
    const report = await replayHistories(registryOf('Other', chain), [{ instanceId: 'o-1', events: await v1History(1) }]);
    expect(report.divergences).toEqual([
      expect.objectContaining({ instanceId: 'o-1', orchestrator: 'Order', kind: 'missing-orchestrator', code: "no orchestrator 'Order' (the code has 'Other')" }),
    ]);
  });

  it('reports a step the code adds where the history has reached, code that throws, and an early completion', async () => {
    const extra: OrchestratorFunction = function* (ctx, input: string) {
      const [a] = (yield ctx.all([ctx.callActivity('F1', input), ctx.callActivity('Audit', input)])) as string[];
      return yield ctx.callActivity('F2', a);
    };
    const throws: OrchestratorFunction = function* () {
      throw new TypeError('input.items is undefined');
    };
    const early: OrchestratorFunction = function* () {
      return 'done';
    };
    const h = await v1History(0);
    const [e, t, c] = await Promise.all([extra, throws, early].map((fn) => replayHistories(registryOf('Order', fn), [h])));
    expect(e!.divergences).toEqual([expect.objectContaining({ kind: 'extra-step', code: "activity 'Audit' (#1)", step: { sequenceNumber: 1, historyIndex: h.length } })]);
    expect(t!.divergences).toEqual([expect.objectContaining({ kind: 'failure', code: 'fails: TypeError: input.items is undefined' })]);
    // Returning before the recorded F1 step is the step missing from the code.
    expect(c!.divergences).toEqual([expect.objectContaining({ kind: 'non-determinism', code: 'nothing (the code scheduled no task with this sequence number)' })]);
  });

  it('replays a finished history to the same outcome, and reports code that would not finish', async () => {
    const done = await v1History(3);
    expect(done.at(-2)).toMatchObject({ type: 'ExecutionCompleted', status: 'Completed' });
    expect((await replayHistories(registryOf('Order', v1), [done])).ok).toBe(true);
    const longer: OrchestratorFunction = function* (ctx, input: string) {
      const r = yield* (v1 as (c: typeof ctx, i: string) => Generator<unknown, unknown, unknown>)(ctx, input);
      return yield ctx.callActivity('F4', r);
    };
    const report = await replayHistories(registryOf('Order', longer), [done]);
    expect(report.divergences).toEqual([
      expect.objectContaining({ kind: 'outcome', history: 'the instance Completed', code: 'still running (waiting for a task) at the end of the history' }),
    ]);
  });

  it('skips instances that have not run an episode, and accepts the JSON of `durabull history --json`', async () => {
    const h = await v1History(1);
    const json = JSON.parse(JSON.stringify({ instanceId: 'j-1', name: 'Order', executionId: 'e0', runtimeStatus: 'Running', events: h }));
    const report = await replayHistories(registryOf('Order', v1), [json, { instanceId: 'p-1', name: 'Order', events: [] }]);
    expect(report).toMatchObject({ checked: 1, notStarted: ['p-1'], divergences: [], ok: true });
  });

  it('refuses arguments that are not a registry or histories, naming them', async () => {
    await expect(replayHistories({} as Registry, [])).rejects.toThrow(ValidationError);
    await expect(replayHistories({} as Registry, [])).rejects.toThrow(/registry must be a Registry/);
    await expect(replayHistories(new Registry(), 'h' as never)).rejects.toThrow('replayHistories: histories must be an array of histories, got string "h"');
    await expect(replayHistories(new Registry(), [{ events: 3 } as never])).rejects.toThrow(/histories\[0\] must be an array of history events or an object with an 'events' array/);
    await expect(replayHistories(new Registry(), [[null] as never])).rejects.toThrow("replayHistories: histories[0]: events[0] must be a history event (an object with a 'type'), got null");
    // A checker goes on after a bad history: what it has is still reported.
    const checker = new ReplayChecker(new Registry());
    await expect(checker.add({ events: 'x' } as never)).rejects.toThrow(ValidationError);
    expect(checker.report()).toMatchObject({ checked: 0, ok: true });
  });
});
