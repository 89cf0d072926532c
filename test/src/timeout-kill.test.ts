/**
 * A worker killed (SIGKILL) in the middle of an activity attempt: the attempt's timeout still holds.
 * The killed process holds its BullMQ lock for 60 s, so BullMQ would hand the job over only after
 * that (past the test's timeout); what hands the task over is the attempt's deadline, which the
 * killed worker recorded in Redis and another worker's sweep reads: the task fails with
 * ActivityTimeoutError and its retry runs in the other worker, which reads the last heartbeat
 * details the killed attempt wrote.
 */
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ActivityContext } from '@durabull/core';
import { decode } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { timeoutKeys, timeoutRegistry } from './fixtures/timeout-shared.js';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { eventsOf, waitUntil } from './helpers/orchestration.js';
import { forkReadyWorker } from './helpers/processes.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/timeout-worker.ts', import.meta.url));

let th: TestHub | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  child = undefined;
  await th?.cleanup();
  th = undefined;
});

/** The worker that survives: its versions of the activities say where they ran and what they were given. */
const survivor = timeoutRegistry({
  HbWork: (_input: unknown, ctx: ActivityContext) => ({ ranIn: 'survivor', lastHeartbeatDetails: ctx.lastHeartbeatDetails, attempt: ctx.attempt }),
  StcWork: () => ({ ranIn: 'survivor' }),
} as never);

async function killed(p: ChildProcess): Promise<void> {
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  p.kill('SIGKILL');
  await exited;
}

describe('a worker killed mid-attempt', () => {
  it('with a heartbeat timeout: its task is retried in another worker within the timeout plus a sweep, from the last heartbeat details', { timeout: 60_000 }, async () => {
    th = await createTestHub({}, { startWorker: false });
    const keys = timeoutKeys(th.hub);
    child = await forkReadyWorker(FIXTURE, { REDIS_URL: th.url, DURABULL_HUB: th.hub });
    const id = await th.client.startNew('HbRetry');
    // The attempt runs in the child, has heartbeated a few times, and its details are recorded.
    await waitUntil(
      'the attempt in the worker process to record heartbeat details',
      async () => Number(await th!.redis.get(keys.hbStep)) >= 3 && (await th!.redis.exists(th!.keys.heartbeats(id))) === 1,
      20_000,
    );
    await killed(child);
    // What the killed attempt left: the details its last recorded heartbeat wrote.
    const stored = await th.redis.hgetallBuffer(th.keys.heartbeats(id));
    const [field] = Object.keys(stored);
    const lastDetails = decode(stored[field!]!) as { step: number };
    expect(lastDetails.step).toBeGreaterThanOrEqual(1);

    await th.startWorker({ registry: survivor, sweepIntervalMs: 300 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 40_000, showHistory: true });
    expect(st.output).toEqual({ ranIn: 'survivor', lastHeartbeatDetails: lastDetails, attempt: 1 });
    const failed = eventsOf(st.history, 'TaskFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.failure.errorName).toBe('ActivityTimeoutError');
    expect(failed[0]!.failure.message).toMatch(/no heartbeat for 1500 ms/);
  });

  it('with a start-to-close timeout: its task fails at the deadline and is retried in another worker', { timeout: 60_000 }, async () => {
    th = await createTestHub({}, { startWorker: false });
    const keys = timeoutKeys(th.hub);
    child = await forkReadyWorker(FIXTURE, { REDIS_URL: th.url, DURABULL_HUB: th.hub });
    const id = await th.client.startNew('StcRetry');
    await waitUntil('the attempt to run in the worker process', async () => (await th!.redis.exists(keys.stcEntered)) === 1, 20_000);
    // An attempt records its deadline once it has run a second (half its timeout at most).
    await waitUntil('the attempt deadline to be recorded', async () => (await th!.redis.zcard(th!.client.backend.forInstance(id).keys.activityDeadlines)) === 1, 20_000);
    await killed(child);

    await th.startWorker({ registry: survivor, sweepIntervalMs: 300 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 40_000, showHistory: true });
    expect(st.output).toEqual({ ranIn: 'survivor' });
    const failed = eventsOf(st.history, 'TaskFailed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.failure.errorName).toBe('ActivityTimeoutError');
    expect(failed[0]!.failure.message).toMatch(/start-to-close timeout 2500 ms/);
    // The record was taken by the sweep that failed the task.
    expect(await th.redis.zcard(th.keys.activityDeadlines)).toBe(0);
  });
});
