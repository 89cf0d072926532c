/**
 * Extended sessions: a worker keeps an instance's code in memory after committing its episode and
 * resumes it with the next episode's events instead of replaying the history. The code then runs
 * each step once; the history is the same as with a replay per episode, and whenever the worker's
 * copy may be behind (a refused commit, another worker's episode) it replays.
 */
import { type HistoryEvent, type OrchestrationContext, Registry, ValidationError } from '@durabull/core';
import { DurabullWorker, type DurabullWorkerOptions } from '@durabull/worker';
import { checkHub } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { REPLAY_EVERY_EPISODE, type TestHub, createTestHub } from './helpers/hub.js';
import { Gate, historyShape, waitUntil } from './helpers/orchestration.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  Gate.releaseAll();
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});


/** A chain of `steps` activities on an object that the code changes as it goes; counts how often its body starts. */
function counted() {
  const runs = { starts: 0 };
  const fn = function* (ctx: OrchestrationContext, input: { steps: number }): Generator<unknown, { total: number; seen: number[] }, number> {
    runs.starts++;
    const acc = { total: 0, seen: [] as number[] };
    for (let i = 0; i < input.steps; i++) {
      const v = yield ctx.callActivity('Inc', i);
      acc.total += v;
      acc.seen.push(v);
    }
    return acc;
  };
  return { runs, fn };
}

describe('extended sessions', () => {
  it('run each step of a chain once, writing the same history as a replay per episode', async () => {
    const a = counted();
    const b = counted();
    const activities = { Inc: async (x: number) => x + 1 };
    const kept = await createTestHub({ orchestrators: { Chain: a.fn }, activities });
    const replayed = await createTestHub({ orchestrators: { Chain: b.fn }, activities }, REPLAY_EVERY_EPISODE);
    hubs.push(kept, replayed);
    const [ia, ib] = await Promise.all([kept.client.startNew('Chain', { input: { steps: 30 } }), replayed.client.startNew('Chain', { input: { steps: 30 } })]);
    const [sa, sb] = await Promise.all([
      kept.client.waitForCompletion(ia, { timeoutMs: 20_000, showHistory: true }),
      replayed.client.waitForCompletion(ib, { timeoutMs: 20_000, showHistory: true }),
    ]);
    const want = { total: 465, seen: Array.from({ length: 30 }, (_, i) => i + 1) };
    expect(sa.output).toEqual(want);
    expect(sb.output).toEqual(want);
    expect(historyShape(sa.history)).toEqual(historyShape(sb.history));
    // 31 episodes: the first ran the code from its start, the other 30 resumed it.
    expect(kept.workers[0]!.stats).toMatchObject({ episodes: 31, resumedEpisodes: 30, replayedEpisodes: 0, replayedEvents: 0 });
    expect(a.runs.starts).toBe(1);
    // Each of the 30 woken episodes replayed the history before it: 4 events per episode (OrchestratorStarted,
    // the result or ExecutionStarted, TaskScheduled, OrchestratorCompleted), 4 + 8 + ... + 120 in all.
    expect(replayed.workers[0]!.stats).toMatchObject({ resumedEpisodes: 0, replayedEpisodes: 30, replayedEvents: 4 * ((30 * 31) / 2) });
    expect(b.runs.starts).toBe(31);
    expect((await checkHub(kept.client.backend)).findings).toEqual([]);
  });

  it('resume in a split layout too, from the wake job that carries the result', async () => {
    const c = counted();
    const th = await createTestHub({ orchestrators: { Chain: c.fn }, activities: { Inc: async (x: number) => x + 1 } }, { startWorker: false });
    hubs.push(th);
    const orch = await th.startWorker({ activities: false });
    await th.startWorker({ orchestrators: false });
    const id = await th.client.startNew('Chain', { input: { steps: 5 } });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toEqual({ total: 15, seen: [1, 2, 3, 4, 5] });
    expect(orch.stats).toMatchObject({ episodes: 6, cachedEpisodes: 5, resumedEpisodes: 5, replayedEpisodes: 0, loads: 0 });
    expect(c.runs.starts).toBe(1);
  });

  it('count the loads and replays of a split layout without the cache', async () => {
    const c = counted();
    const th = await createTestHub({ orchestrators: { Chain: c.fn }, activities: { Inc: async (x: number) => x + 1 } }, { startWorker: false });
    hubs.push(th);
    const orch = await th.startWorker({ activities: false, cachedInstances: 0 });
    const acts = await th.startWorker({ orchestrators: false });
    const id = await th.client.startNew('Chain', { input: { steps: 3 } });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toEqual({ total: 6, seen: [1, 2, 3] });
    // The first episode runs from its job; each of the 3 woken ones loads (one round trip) and replays the history.
    expect(orch.stats).toMatchObject({ episodes: 4, cachedEpisodes: 0, loads: 3, replayedEpisodes: 3, replayedEvents: 4 + 8 + 12 });
    expect(acts.stats).toMatchObject({ episodes: 0, activities: 3, loads: 0 });
    expect(c.runs.starts).toBe(4);
  });

  it('resume after a load that finds nothing new: a fan-in woken by its last result', async () => {
    const runs = { starts: 0 };
    const th = await createTestHub({
      orchestrators: {
        Fan: async (ctx: OrchestrationContext, n: number) => {
          runs.starts++;
          const values = await ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity<number>('Inc', i)));
          return values.reduce((a, b) => a + b, 0);
        },
      },
      activities: { Inc: async (x: number) => x + 1 },
    });
    hubs.push(th);
    const id = await th.client.startNew('Fan', { input: 5 });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(15);
    // Two episodes: the fan-out, and the fan-in, which the last result's delivery loaded (no direct
    // commit for an `all` of five) and which resumed the code kept from the first.
    expect(th.workers[0]!.stats).toMatchObject({ episodes: 2, directEpisodes: 0, resumedEpisodes: 1 });
    expect(runs.starts).toBe(1);
  });

  it('replay after a refused commit: the kept code may be ahead of the history', async () => {
    const gate = new Gate();
    const c = counted();
    const th = await createTestHub({
      orchestrators: { Chain: c.fn },
      activities: {
        Inc: async (x: number) => {
          if (x === 1) await gate.pass();
          return x + 1;
        },
      },
    });
    hubs.push(th);
    const worker = th.workers[0]!;
    const id = await th.client.startNew('Chain', { input: { steps: 3 } });
    await gate.entered;
    // The direct commit of step 1's result is refused (the instance is suspended meanwhile): the
    // session that ran that episode went ahead of the stored history and is dropped.
    await th.client.suspend(id, 'hold');
    gate.open();
    await waitUntil('the direct commit was refused', () => worker.stats.directRefused === 1);
    const startsBefore = c.runs.starts;
    await th.client.resume(id, 'go on');
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toEqual({ total: 6, seen: [1, 2, 3] });
    // The episode after resume replayed from the start; the one after it resumed again.
    expect(c.runs.starts).toBe(startsBefore + 1);
    expect(worker.stats.resumedEpisodes).toBeGreaterThanOrEqual(2);
  });

  it('replay when another worker ran the last episode', async () => {
    const c = counted();
    const gate = new Gate();
    const th = await createTestHub(
      {
        orchestrators: { Chain: c.fn },
        activities: {
          Inc: async (x: number) => {
            if (x === 1) await gate.pass();
            return x + 1;
          },
        },
      },
      { inlineEpisodes: false, eagerActivities: false },
    );
    hubs.push(th);
    const [first] = th.workers;
    const id = await th.client.startNew('Chain', { input: { steps: 3 } });
    await gate.entered;
    // A second worker takes part from here: episodes go to whichever takes the wake job.
    const second = await th.startWorker();
    gate.open();
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toEqual({ total: 6, seen: [1, 2, 3] });
    const episodes = first!.stats.episodes + second.stats.episodes;
    const resumed = first!.stats.resumedEpisodes + second.stats.resumedEpisodes;
    expect(episodes).toBe(4);
    // Every episode that did not resume ran the code from its start: each worker's first one at least.
    expect(c.runs.starts).toBe(episodes - resumed);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });

  /** A 3-step chain on one worker with `options`: its stats and how often the code started. */
  async function threeSteps(options: Partial<DurabullWorkerOptions>): Promise<{ stats: DurabullWorker['stats']; starts: number }> {
    const c = counted();
    const th = await createTestHub({ orchestrators: { Chain: c.fn }, activities: { Inc: async (x: number) => x + 1 } }, options);
    hubs.push(th);
    const id = await th.client.startNew('Chain', { input: { steps: 3 } });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toEqual({ total: 6, seen: [1, 2, 3] });
    return { stats: th.workers[0]!.stats, starts: c.runs.starts };
  }

  it('need the cache: with cachedInstances 0 every woken episode loads and replays', async () => {
    const { stats, starts } = await threeSteps({ cachedInstances: 0 });
    expect(stats).toMatchObject({ episodes: 4, resumedEpisodes: 0, directEpisodes: 0, replayedEpisodes: 3, replayedEvents: 4 + 8 + 12 });
    expect(starts).toBe(4);
  });

  it('are not kept for an instance whose history is over the cache\'s event budget', async () => {
    // The first episode's history is 4 events, the second's 8: only the first fits in 6.
    const { stats, starts } = await threeSteps({ cachedHistoryEvents: 6 });
    expect(stats).toMatchObject({ episodes: 4, resumedEpisodes: 1, directEpisodes: 1, replayedEpisodes: 2, replayedEvents: 8 + 12 });
    expect(starts).toBe(3);
  });

  it('refuse a cachedInstances that is not an integer >= 0', () => {
    for (const bad of [-1, 1.5, Number.NaN, '10' as unknown as number]) {
      expect(() => new DurabullWorker({ registry: new Registry(), cachedInstances: bad, connection: { lazyConnect: true } })).toThrow(ValidationError);
    }
    expect(() => new DurabullWorker({ registry: new Registry(), cachedInstances: -1, connection: { lazyConnect: true } })).toThrow(/cachedInstances .* must be an integer >= 0/);
    expect(() => new DurabullWorker({ registry: new Registry(), cachedHistoryEvents: -5, connection: { lazyConnect: true } })).toThrow(/cachedHistoryEvents .* must be an integer >= 0/);
  });
});
