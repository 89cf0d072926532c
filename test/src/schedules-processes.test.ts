/**
 * A schedule ticking every second on three worker processes: exactly one instance per tick (no tick
 * without its instance, none with two), also when a worker dies at a tick. Two of the processes
 * freeze in the first tick they take, as a process that dies at the tick would, and are killed
 * (SIGKILL); BullMQ hands each tick's job to another process once its lock expires. One froze before
 * it started anything: the process that gets the job starts the tick's instance late. The other
 * froze after it started the tick's instance: the tick is handled again, and starts nothing more
 * (the instance id is derived from the schedule id and the tick, and the schedule counts a tick once).
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { hungTickKey } from './fixtures/schedule-shared.js';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { waitUntil } from './helpers/orchestration.js';
import { forkReadyWorker } from './helpers/processes.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/schedule-worker.ts', import.meta.url));

let th: TestHub | undefined;
let children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children = [];
  await th?.cleanup();
  th = undefined;
});

describe('a schedule on three worker processes', () => {
  it('starts exactly one instance per tick over more than ten ticks, also with workers SIGKILLed at a tick', { timeout: 120_000 }, async () => {
    th = await createTestHub({}, { startWorker: false });
    const env = { REDIS_URL: th.url, DURABULL_HUB: th.hub };
    children = await Promise.all([
      forkReadyWorker(FIXTURE, env),
      forkReadyWorker(FIXTURE, { ...env, HANG_ON_TICK: 'before' } as typeof env),
      forkReadyWorker(FIXTURE, { ...env, HANG_ON_TICK: 'after' } as typeof env),
    ]);
    // allowAll: every tick starts its instance, whatever the one before does (the policies have tests of their own).
    await th.client.schedules.create({ scheduleId: 'per-second', orchestrator: 'Tick', input: 'tick', intervalMs: 1000, overlap: 'allowAll' });
    const ticksOf = async () => (await th!.client.list({ scheduleId: 'per-second', pageSize: 1000 })).instances.map((s) => s.schedule!.tick.getTime()).sort((a, b) => a - b);

    // Each of the two freezes in the first tick it takes (one before starting its instance, one
    // after), and is killed there.
    const hung: number[] = [];
    for (const [k, mode] of [[1, 'before'], [2, 'after']] as const) {
      await waitUntil(`a worker to freeze in a tick (${mode} its start)`, async () => (await th!.redis.exists(hungTickKey(th!.hub, mode))) === 1, 60_000);
      hung.push(Number(await th.redis.get(hungTickKey(th.hub, mode))));
      const p = children[k]!;
      const exited = new Promise<void>((r) => p.once('exit', () => r()));
      p.kill('SIGKILL');
      await exited;
    }

    // Ten more ticks after the last one a killed worker held, and their instances too.
    await waitUntil(
      'ten ticks past the killed ones, and theirs',
      async () => {
        const ticks = await ticksOf();
        return hung.every((t) => ticks.includes(t)) && (ticks.at(-1) ?? 0) >= Math.max(...hung) + 10_000;
      },
      60_000,
    );
    await th.client.schedules.pause('per-second');
    // Ticks under way when it was paused finish their starts.
    await waitUntil('every tick the schedule counted to have its instance', async () => (await th!.client.schedules.get('per-second'))!.started === (await ticksOf()).length, 20_000);

    const ticks = await ticksOf();
    expect(ticks.length).toBeGreaterThanOrEqual(11);
    // One instance per tick: consecutive ticks, none missing, none twice.
    expect(new Set(ticks).size).toBe(ticks.length);
    expect(ticks.slice(1).map((t, k) => t - ticks[k]!)).toEqual(ticks.slice(1).map(() => 1000));
    for (const t of hung) expect(ticks).toContain(t);
    // Every instance ran.
    for (const s of (await th.client.list({ scheduleId: 'per-second', pageSize: 1000 })).instances) {
      expect((await th.client.waitForCompletion(s.instanceId)).output).toBe('tick');
    }
  });
});
