/**
 * An activity run eagerly (in the process that committed the episode, not through the queue) is
 * not lost when that process dies: its outbox entry stays, leased, and once the lease runs out the
 * sweep of any worker queues it. History gets its result once.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Registry } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { forkReadyWorker } from './helpers/processes.js';

const fixture = fileURLToPath(new URL('./fixtures/eager-worker.ts', import.meta.url));
let th: TestHub | undefined;
let child: ChildProcess | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
  await th?.cleanup();
  th = undefined;
});

describe('eager activities', () => {
  it('are queued by the sweep when the process running them is killed', async () => {
    th = await createTestHub({}, { startWorker: false });
    const base = `dbl:{${th.hub}:0}:test`;
    child = await forkReadyWorker(fixture, { REDIS_URL: th.url, DURABULL_HUB: th.hub });
    const id = await th.client.startNew('Eager', { input: 'x' });
    const end = Date.now() + 20_000;
    while ((await th.redis.get(`${base}:hang-runs`)) !== '1') {
      if (Date.now() > end) throw new Error('Hang never started');
      await new Promise((r) => setTimeout(r, 20));
    }
    // It ran eagerly: no job for it in the activity queue, only its (leased) outbox entry.
    const part = th.client.backend.forInstance(id);
    expect(await part.activityQueue.getJobCounts('waiting', 'active')).toEqual({ waiting: 0, active: 0 });
    expect(await th.redis.hkeys(part.keys.outbox)).toEqual([expect.stringMatching(/^a-/)]);
    child.kill('SIGKILL');
    await new Promise((r) => child!.once('exit', r));

    await th.redis.set(`${base}:gate`, 'open');
    const registry = new Registry()
      .addActivity('First', async (x: string) => `${x}>first`)
      .addActivity('Hang', async (x: string) => {
        await th!.redis.incr(`${base}:hang-runs`);
        return `${x}>hang`;
      })
      .addOrchestrator('Eager', function* (ctx, x: string) {
        const a: string = yield ctx.callActivity('First', x);
        return yield ctx.callActivity('Hang', a);
      });
    await th.startWorker({ registry, sweepIntervalMs: 300 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.output).toBe('x>first>hang');
    expect(await th.redis.get(`${base}:hang-runs`)).toBe('2');
    const completed = st.history!.filter((e) => e.type === 'TaskCompleted').map((e) => e.taskScheduledId);
    expect(completed).toEqual([0, 1]);
  });
});
