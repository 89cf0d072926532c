/**
 * Sticky episodes: the worker that commits an episode and keeps its session is recorded in the
 * instance (`sw`), and a delivery that wakes the instance hands the wake-up to that worker through
 * its sticky stream instead of the orchestrator queue, so the code resumes there instead of
 * replaying elsewhere. The wake's outbox entry stays until that worker's commit: if the worker dies,
 * another one's sweep queues it, and the episode runs there, replayed from Redis.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type OrchestrationContext, Registry } from '@durabull/core';
import { checkHub } from '@durabull/redis';
import type { DurabullWorker } from '@durabull/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { checkHistory } from '../faults/fault-run.js';
import { CHAINING, STEP, expectedChaining } from './fixtures/multi-process-shared.js';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { Gate, doublings, waitUntil } from './helpers/orchestration.js';
import { forkReadyWorker } from './helpers/processes.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/worker-process.ts', import.meta.url));

const hubs: TestHub[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  Gate.releaseAll();
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});

const functions = {
  orchestrators: {
    Chain: doublings,
    FanIn: function* (ctx: OrchestrationContext, n: number) {
      const r: number[] = yield ctx.all(Array.from({ length: n }, (_, k) => ctx.callActivity('Double', k)));
      const e: number = yield ctx.waitForExternalEvent('bonus');
      return r.reduce((a, b) => a + b, 0) + e;
    },
  },
  activities: { Double: async (x: number) => x * 2 },
};

/** Two orchestrator-only workers and one activity-only worker on one hub. */
async function fleet(): Promise<{ th: TestHub; orchestrators: DurabullWorker[] }> {
  const th = await createTestHub(functions, { startWorker: false });
  hubs.push(th);
  const orchestrators = [await th.startWorker({ activities: false }), await th.startWorker({ activities: false })];
  await th.startWorker({ orchestrators: false });
  return { th, orchestrators };
}

describe('sticky episodes', () => {
  it("hand every wake-up to the worker that keeps the instance's session: no replay, no load, no orchestrator job", async () => {
    const { th, orchestrators } = await fleet();
    const loads = orchestrators.map((w) => {
      let n = 0;
      for (const p of w.backend.partitions) {
        const load = p.loadEpisode.bind(p);
        p.loadEpisode = (id: string) => {
          n++;
          return load(id);
        };
      }
      return () => n;
    });
    const id = await th.client.startNew('Chain', { input: 6 });
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(64);
    // The start handed the first episode to one of them (sticky-starts.test.ts); the six a result
    // woke, there too, resuming its session.
    const holder = orchestrators.find((w) => w.stats.episodes > 0)!;
    const other = orchestrators.find((w) => w !== holder)!;
    expect(holder.stats).toMatchObject({ episodes: 7, stickyEpisodes: 7, resumedEpisodes: 6, cachedEpisodes: 6 });
    expect(other.stats.episodes).toBe(0);
    expect(loads.map((n) => n())).toEqual([0, 0]);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
    // Nothing waits for the sweep: every wake's outbox entry went with the commit of its episode.
    expect(await th.redis.hlen(th.keys.outbox)).toBe(0);
    expect(orchestrators.map((w) => w.stats.swept)).toEqual([0, 0]);
  });

  it('hand a fan-in and a raised event to the holder too', async () => {
    const { th, orchestrators } = await fleet();
    const id = await th.client.startNew('FanIn', { input: 20 });
    await waitUntil('the fan-in episode ran', async () => orchestrators.some((w) => w.stats.episodes === 2));
    await th.client.raiseEvent(id, 'bonus', 1000);
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(380 + 1000);
    const holder = orchestrators.find((w) => w.stats.episodes > 0)!;
    expect(holder.stats).toMatchObject({ episodes: 3, stickyEpisodes: 3, resumedEpisodes: 2 });
    expect(orchestrators.reduce((n, w) => n + w.stats.episodes, 0)).toBe(3);
  });

  it('go to the orchestrator queue once the holder has closed: the other worker runs the next episode', async () => {
    const gate = new Gate();
    const th = await createTestHub(
      { ...functions, activities: { Double: async (x: number) => (x === 4 ? (await gate.pass(), x * 2) : x * 2) } },
      { startWorker: false },
    );
    hubs.push(th);
    const first = await th.startWorker({ activities: false });
    await th.startWorker({ orchestrators: false });
    const id = await th.client.startNew('Chain', { input: 4 });
    await gate.entered;
    expect(await th.redis.hget(th.keys.state(id), 'sw')).toBe(first.id);
    const second = await th.startWorker({ activities: false });
    await first.close();
    gate.open();
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(16);
    // The client can see the final commit before the worker that made it has read its reply.
    await waitUntil('the second worker counted both episodes', () => second.stats.episodes >= 2);
    expect(second.stats.stickyEpisodes).toBeGreaterThanOrEqual(1);
  });

  it('fall back to another process when the holder is SIGKILLed: the right result, no duplicate history event', async () => {
    const gate = new Gate();
    const th = await createTestHub({}, { startWorker: false });
    hubs.push(th);
    // Orchestrators in two processes (sweep every second); the chain's step 2 waits here.
    const env = { REDIS_URL: th.url, DURABULL_HUB: th.hub, WORKER_KIND: 'orchestrators' };
    const procs = await Promise.all([forkReadyWorker(FIXTURE, env), forkReadyWorker(FIXTURE, env)]);
    children.push(...procs);
    await th.startWorker({
      orchestrators: false,
      registry: new Registry().addActivity(STEP, async ({ s, k }: { s: string; k: number }) => {
        if (k === 2) await gate.pass();
        return `${s}>${k}`;
      }),
    });
    const id = await th.client.startNew(CHAINING, { input: 'x' });
    await gate.entered;
    // The process that keeps the session: its registry entry names its pid.
    const holderId = await th.redis.hget(th.keys.state(id), 'sw');
    const holder = (await th.client.listWorkers()).find((w) => w.id === holderId)!;
    expect(holder).toBeDefined();
    const victim = procs.find((p) => p.pid === holder.pid)!;
    victim.kill('SIGKILL');
    await new Promise((resolve) => victim.once('exit', resolve));
    // Its registry entry lives on until it expires: the result is handed to the dead process's
    // stream, and the other process's sweep queues the wake-up from the outbox.
    gate.open();
    const st = await th.client.waitForCompletion(id, { timeoutMs: 60_000, showHistory: true });
    expect(st.output).toBe(expectedChaining('x'));
    const h = checkHistory(st.history!);
    expect(h).toMatchObject({ duplicated: 0, scheduled: 5, finished: 5 });
    // The three episodes after the kill ran in the other process (its next heartbeats say so).
    const survivor = procs.find((p) => p !== victim)!.pid;
    await waitUntil('the survivor reports its episodes', async () => ((await th.client.listWorkers()).find((w) => w.pid === survivor)?.episodesDone ?? 0) >= 3, 20_000);
    expect((await checkHub(th.client.backend)).findings).toEqual([]);
  }, 90_000);
});
