/**
 * Sticky starts: a start checked against the live workers hands its first episode to one of the
 * workers that run the orchestrator and read the wake-ups handed to them (startInstance's XADD to
 * that worker's sticky stream, with the ExecutionStarted), instead of a job on the orchestrator
 * queue. The wake's outbox entry stays until that episode's commit: when the worker does not run it,
 * the sweep queues it and another worker does.
 */
import { ORCHESTRATOR_QUEUE, checkHub } from '@durabull/redis';
import { type DurabullWorker } from '@durabull/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub, queueTally } from './helpers/hub.js';
import { doublings, waitUntil } from './helpers/orchestration.js';

const hubs: TestHub[] = [];
afterEach(async () => {
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});

const functions = {
  orchestrators: { Chain: doublings },
  activities: { Double: async (x: number) => x * 2 },
};

/** Jobs the orchestrator queue of every partition was given (its `added` events). */
async function orchestratorJobsAdded(th: TestHub): Promise<number> {
  return (await queueTally(th, ORCHESTRATOR_QUEUE, ['wait'], 'added')).events;
}

async function fleet(stickyStarts?: boolean): Promise<{ th: TestHub; orchestrators: DurabullWorker[] }> {
  const th = await createTestHub(functions, { startWorker: false, ...(stickyStarts !== undefined ? { stickyStarts } : {}) });
  hubs.push(th);
  const orchestrators = [await th.startWorker({ activities: false }), await th.startWorker({ activities: false })];
  await th.startWorker({ orchestrators: false });
  return { th, orchestrators };
}

describe('sticky starts', () => {
  it('hand each first episode to one of the workers, with its ExecutionStarted: no orchestrator job, no load', async () => {
    const { th, orchestrators } = await fleet();
    const ids = await Promise.all(Array.from({ length: 20 }, (_, k) => th.client.startNew('Chain', { input: 2, instanceId: `s-${k}` })));
    for (const id of ids) expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(4);
    // Every episode (3 per instance) came through a worker's stream, the first ones included.
    expect(orchestrators.reduce((n, w) => n + w.stats.stickyEpisodes, 0)).toBe(60);
    expect(orchestrators.reduce((n, w) => n + w.stats.episodes, 0)).toBe(60);
    expect(orchestrators.map((w) => w.stats.loads)).toEqual([0, 0]);
    // Both workers were picked (each start picks one at random: 2 × 2^-20 that one got them all).
    for (const w of orchestrators) expect(w.stats.episodes).toBeGreaterThan(0);
    expect(await orchestratorJobsAdded(th)).toBe(0);
    expect(await th.redis.hlen(th.keys.outbox)).toBe(0);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  });

  it('without stickyStarts, queue the first episode as a job', async () => {
    const { th, orchestrators } = await fleet(false);
    const id = await th.client.startNew('Chain', { input: 2 });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(4);
    expect(orchestrators.reduce((n, w) => n + w.stats.stickyEpisodes, 0)).toBe(2);
    expect(await orchestratorJobsAdded(th)).toBe(1);
  });

  it('fall back to the orchestrator queue when the chosen worker does not run the episode', async () => {
    const th = await createTestHub(functions, { startWorker: false });
    hubs.push(th);
    // A worker whose entry is live and says it reads its stream, but nothing reads it (a process
    // frozen or killed since its last heartbeat); the only real one does not take handed starts.
    const ghost = 'ghost-1-abc';
    const entry = {
      id: ghost,
      host: 'nowhere',
      pid: 1,
      version: '0',
      kinds: ['orchestrator' as const],
      orchestratorNames: ['Chain'],
      activityNames: [],
      sticky: true,
      startedAt: Date.now(),
      heartbeatIntervalMs: 5000,
      heartbeatExpiryMs: 60_000,
      jobsRunning: 0,
      episodesDone: 0,
      activitiesDone: 0,
    };
    await Promise.all(th.client.backend.partitions.map((p) => p.partitionRegistry.heartbeat(entry)));
    const worker = await th.startWorker({ stickyEpisodes: false, sweepIntervalMs: 200 });
    const id = await th.client.startNew('Chain', { input: 3 });
    const stream = th.client.backend.forInstance(id).keys.sticky(ghost);
    expect(await th.redis.xlen(stream)).toBe(1);
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(8);
    // The sweep queued the wake its outbox entry kept; the worker ran every episode.
    expect(worker.stats.swept).toBeGreaterThanOrEqual(1);
    expect(worker.stats.episodes).toBe(4);
    await waitUntil('the outbox is empty', async () => (await th.redis.hlen(th.keys.outbox)) === 0);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
    await Promise.all(th.client.backend.partitions.map((p) => p.partitionRegistry.remove(ghost)));
  });
});
