/**
 * Split layouts (orchestrator-only and activity-only workers): the wake job a result makes carries
 * that result's inbox entry, and the orchestrator worker whose cache holds the instance as its own
 * last commit left it runs the episode without a load. The commit checks that the history and the
 * inbox are still what the cache and the job said; when they are not it writes nothing, and the
 * episode is loaded and run again.
 */
import { type HistoryEvent, type OrchestrationContext } from '@durabull/core';
import { checkHub, encodeEvent } from '@durabull/redis';
import type { DurabullWorker } from '@durabull/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { doubleThrice, Gate, historyShape, waitUntil } from './helpers/orchestration.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  Gate.releaseAll();
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});

const chain = doubleThrice;


/**
 * A hub with one orchestrator-only and one activity-only worker; counts the orchestrator worker's loads.
 * Sticky episodes are off: the wake-ups go through the orchestrator queue, as they do when no live
 * worker keeps the session (test/src/sticky-episodes.test.ts covers the other way).
 */
async function splitHub(double: (x: number) => Promise<number>): Promise<{ th: TestHub; orch: DurabullWorker; loads: () => number }> {
  const th = await createTestHub({ orchestrators: { Chain: chain }, activities: { Double: double } }, { startWorker: false });
  hubs.push(th);
  const orch = await th.startWorker({ activities: false, stickyEpisodes: false });
  await th.startWorker({ orchestrators: false });
  let n = 0;
  for (const p of orch.backend.partitions) {
    const load = p.loadEpisode.bind(p);
    p.loadEpisode = (id: string) => {
      n++;
      return load(id);
    };
  }
  return { th, orch, loads: () => n };
}

describe('wake jobs that carry their inbox', () => {
  it('run each episode of a chain from the cache, writing the same history as loaded episodes', async () => {
    const { th, orch, loads } = await splitHub(async (x) => x * 2);
    const id = await th.client.startNew('Chain', { input: 1 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000, showHistory: true });
    expect(st.output).toBe(8);
    // The first episode runs from the client's job; the three a result woke, from the cache.
    expect(orch.stats).toMatchObject({ episodes: 4, cachedEpisodes: 3, cachedRefused: 0 });
    expect(loads()).toBe(0);

    // The same chain with every woken episode loaded writes the same history.
    const plain = await splitHub(async (x) => x * 2);
    for (const p of plain.orch.backend.partitions) p.wakeEpisodeFrom = () => undefined;
    const id2 = await plain.th.client.startNew('Chain', { input: 1 });
    const st2 = await plain.th.client.waitForCompletion(id2, { timeoutMs: 15_000, showHistory: true });
    expect(plain.loads()).toBe(3);
    expect(historyShape(st.history)).toEqual(historyShape(st2.history));
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });

  it('give way when the history no longer ends where the cache does: the episode is loaded and run again', async () => {
    const gate = new Gate();
    const { th, orch, loads } = await splitHub(async (x) => {
      if (x === 2) await gate.pass();
      return x * 2;
    });
    const id = await th.client.startNew('Chain', { input: 1 });
    await gate.entered;
    // As if Redis had lost this worker's last commit and another had written the entry instead.
    await th.redis.hset(th.keys.state(id), 'hlast', '1-1');
    gate.open();
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(8);
    expect(orch.stats).toMatchObject({ cachedRefused: 1, episodes: 4 });
    expect(loads()).toBe(1);
  });

  it('give way when the inbox is not the entry the job carried: the episode runs on the inbox in Redis', async () => {
    const gate = new Gate();
    const { th, orch } = await splitHub(async (x) => {
      if (x === 2) await gate.pass();
      return x * 2;
    });
    const id = await th.client.startNew('Chain', { input: 1 });
    await gate.entered;
    // Hold the woken episode in the queue, then change the result in the inbox under it.
    const queue = th.client.backend.forInstance(id).orchestratorQueue;
    await queue.pause();
    gate.open();
    await waitUntil('the result is in the inbox', async () => (await th.redis.llen(th.keys.inbox(id))) === 1);
    const other = encodeEvent({ type: 'TaskCompleted', taskScheduledId: 1, result: 100, timestamp: Date.now() });
    await th.redis.lset(th.keys.inbox(id), 0, Buffer.concat([Buffer.from('c1|'), other]));
    await queue.resume();
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(200);
    expect(orch.stats).toMatchObject({ cachedRefused: 1 });
  });
});
