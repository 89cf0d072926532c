/**
 * Direct episodes: when the worker that committed an episode also runs the activity it waits on,
 * the result and the next episode are committed together, from the worker's cached history, in one
 * script. The history is the same as through the inbox, and the commit gives way (writing nothing)
 * whenever anything else reached the instance in between.
 */
import type { HistoryEvent, OrchestrationContext } from '@durabull/core';
import { checkHub } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { doubleThrice, Gate, historyShape, waitUntil } from './helpers/orchestration.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  Gate.releaseAll();
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});

const chain = doubleThrice;
const functions = { orchestrators: { Chain: chain }, activities: { Double: async (x: number) => x * 2 } };


const loadCounts = new WeakMap<TestHub, { n: number }>();
/** Counts the history loads of the hub's worker. */
function countLoads(th: TestHub): void {
  const count = { n: 0 };
  loadCounts.set(th, count);
  for (const backend of th.workers[0]!.backend.partitions) {
    const load = backend.loadEpisode.bind(backend);
    backend.loadEpisode = (id: string) => {
      count.n++;
      return load(id);
    };
  }
}
const loads = (th: TestHub) => loadCounts.get(th)!.n;

describe('first episodes', () => {
  it('run from their job, and an event raised before they ran is seen by the next one', async () => {
    const th = await createTestHub(
      {
        orchestrators: {
          Greet: function* (ctx: OrchestrationContext, name: string): Generator<unknown, string, string> {
            const a: string = yield ctx.callActivity('Hello', name);
            const b: string = yield ctx.waitForExternalEvent('more');
            return `${a} ${b}`;
          },
        },
        activities: { Hello: async (name: string) => `hello ${name}` },
      },
      { startWorker: false },
    );
    hubs.push(th);
    const id = await th.client.startNew('Greet', { input: 'ann' });
    await th.client.raiseEvent(id, 'more', 'and bob');
    await th.startWorker();
    countLoads(th);
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000, showHistory: true });
    expect(st.output).toBe('hello ann and bob');
    expect(st.history!.filter((e) => e.type === 'ExecutionStarted')).toHaveLength(1);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });

  it('are loaded when the job does not carry the event (a large input)', async () => {
    const th = await createTestHub({ orchestrators: { Len: function* (_ctx: OrchestrationContext, s: string) { return s.length; } } });
    hubs.push(th);
    countLoads(th);
    const id = await th.client.startNew('Len', { input: 'x'.repeat(20_000) });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(20_000);
    expect(loads(th)).toBe(1);
  });
});

describe('direct episodes', () => {
  it('commit each result of a chain with its episode, writing the same history as the queue', async () => {
    const direct = await createTestHub(functions);
    const queued = await createTestHub(functions, { inlineEpisodes: false });
    hubs.push(direct, queued);
    countLoads(direct);
    countLoads(queued);
    const [a, b] = await Promise.all([direct.client.startNew('Chain', { input: 1 }), queued.client.startNew('Chain', { input: 1 })]);
    const [sa, sb] = await Promise.all([
      direct.client.waitForCompletion(a, { timeoutMs: 15_000, showHistory: true }),
      queued.client.waitForCompletion(b, { timeoutMs: 15_000, showHistory: true }),
    ]);
    expect(sa.output).toBe(8);
    expect(sb.output).toBe(8);
    // The first episode comes from the queue; each of the three results ran its episode directly.
    expect(direct.workers[0]!.stats).toMatchObject({ episodes: 4, directEpisodes: 3, directRefused: 0, eagerActivities: 3 });
    // ... and nothing was loaded: the first episode's job carried its ExecutionStarted.
    expect(loads(direct)).toBe(0);
    // Through the queue, each result's wake job carried it, and the worker's cache held the rest.
    expect(loads(queued)).toBe(0);
    expect(queued.workers[0]!.stats).toMatchObject({ episodes: 4, directEpisodes: 0, cachedEpisodes: 3 });
    expect(historyShape(sa.history)).toEqual(historyShape(sb.history));
    // Nothing left behind: no outbox entry (the eager entries went with the commits), nothing for the checker.
    expect(await direct.redis.hlen(direct.keys.outbox)).toBe(0);
    expect(await direct.redis.zcard(direct.keys.outboxIndex)).toBe(0);
    expect((await checkHub(direct.client.backend)).findings).toEqual([]);
  });

  it('keep a chain in the activity slot it holds, a queue job slot included', async () => {
    const gate = new Gate();
    const th = await createTestHub(
      {
        orchestrators: { Chain: chain },
        activities: {
          Double: async (x: number) => {
            if (x === 100) await gate.pass();
            return x * 2;
          },
        },
      },
      { activityConcurrency: 1 },
    );
    hubs.push(th);
    const worker = th.workers[0]!;
    // The first chain's first step runs eagerly and holds the one eager slot until the gate opens.
    const held = await th.client.startNew('Chain', { input: 100 });
    await gate.entered;
    expect(worker.stats.eagerActivities).toBe(1);
    // The second chain's first step finds that slot taken and goes through the activity queue; its
    // next two steps go on in that job's slot instead of two more trips through the queue.
    const other = await th.client.startNew('Chain', { input: 1 });
    expect((await th.client.waitForCompletion(other, { timeoutMs: 15_000 })).output).toBe(8);
    expect(worker.stats).toMatchObject({ activities: 3, eagerActivities: 3, directEpisodes: 3 });
    gate.open();
    expect((await th.client.waitForCompletion(held, { timeoutMs: 15_000 })).output).toBe(800);
    expect(worker.stats).toMatchObject({ activities: 6, eagerActivities: 5, directEpisodes: 6 });
  });

  it('give way to a suspend that came while the activity ran: the result waits in the inbox', async () => {
    const gate = new Gate();
    const th = await createTestHub({
      orchestrators: { Chain: chain },
      activities: {
        Double: async (x: number) => {
          if (x === 2) await gate.pass();
          return x * 2;
        },
      },
    });
    hubs.push(th);
    const id = await th.client.startNew('Chain', { input: 1 });
    await gate.entered;
    await th.client.suspend(id, 'hold');
    gate.open();
    const worker = th.workers[0]!;
    await waitUntil('the result was delivered after the refused direct commit', () => worker.stats.directRefused === 1);
    const held = await th.client.getStatus(id, { showHistory: true });
    expect(held!.runtimeStatus).toBe('Suspended');
    // Task 1's result is not in history: it is in the inbox, for the episode after resume.
    expect(held!.history!.filter((e) => e.type === 'TaskCompleted').map((e) => (e as { taskScheduledId: number }).taskScheduledId)).toEqual([0]);
    expect(await th.redis.llen(th.keys.inbox(id))).toBeGreaterThanOrEqual(1);
    await th.client.resume(id, 'go on');
    const done = await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    expect(done.output).toBe(8);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });
});
