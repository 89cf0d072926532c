/**
 * SIGTERM lets a worker finish what it runs: the activity in flight completes, its result is
 * committed to history, and the process exits 0; another worker then finishes the orchestration.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Registry } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { gracefulKeys } from './fixtures/graceful-shared.js';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { forkReadyWorker } from './helpers/processes.js';

const fixture = fileURLToPath(new URL('./fixtures/graceful-worker.ts', import.meta.url));
let th: TestHub | undefined;
let child: ChildProcess | undefined;

afterEach(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
  await th?.cleanup();
  th = undefined;
});

async function until(cond: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('graceful shutdown', () => {
  it('finishes the running activity, commits its result and exits 0 on SIGTERM', async () => {
    th = await createTestHub({}, { startWorker: false });
    const keys = gracefulKeys(th.hub);
    child = await forkReadyWorker(fixture, { REDIS_URL: th.url, DURABULL_HUB: th.hub });
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));

    const id = await th.client.startNew('Slow', { input: 'step' });
    await until(async () => (await th!.redis.get(keys.started)) === '1', 'the activity to start');
    child.kill('SIGTERM');
    // Still running: shutdown waits for the activity in flight.
    await new Promise((r) => setTimeout(r, 300));
    expect(child.exitCode).toBeNull();
    expect(await th.redis.get(keys.finished)).toBeNull();
    await th.redis.set(keys.gate, 'open');
    expect(await exited).toBe(0);

    // The result was committed before the process left: history holds it.
    const mid = await th.client.getStatus(id, { showHistory: true });
    expect(await th.redis.get(keys.finished)).toBe('1');
    // The result is in the inbox or already in history, never lost: a new worker finishes the instance.
    const registry = new Registry()
      .addActivity('Last', async (x: string) => `${x}, then last`)
      .addActivity('SlowStep', async () => {
        throw new Error('SlowStep must not run twice');
      })
      .addOrchestrator('Slow', function* (ctx, x: string) {
        const a: string = yield ctx.callActivity('SlowStep', x);
        return yield ctx.callActivity('Last', a);
      });
    expect(mid?.runtimeStatus).toBe('Running');
    await th.startWorker({ registry });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('step done, then last');
    expect(st.history!.filter((e) => e.type === 'TaskCompleted')).toHaveLength(2);
    expect(st.history!.some((e) => e.type === 'TaskFailed')).toBe(false);
  });
});
