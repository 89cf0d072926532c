/**
 * The client while its Redis is unreachable (a redis-server of our own, stopped and started again,
 * and a port where nothing listens): a call that takes a timeout keeps it, and every other call
 * rejects with RedisUnavailableError after `commandTimeoutMs` instead of waiting for ever. What
 * such a call sent may still be applied once Redis is back (its outcome is unknown); a start
 * retried under the same instance id is then refused as the duplicate it is.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurabullClient, InstanceAlreadyExistsError, RedisUnavailableError, WaitTimeoutError } from '@durabull/client';
import { type RedisServer, getFreePort, pingRedis, startRedisServer } from '@durabull/testing';
import { afterAll, afterEach, beforeAll, expect, it, describe } from 'vitest';
import { waitUntil } from './helpers/orchestration.js';

let srv: RedisServer;
let dir: string;
const clients: DurabullClient[] = [];
const newClient = (opts: ConstructorParameters<typeof DurabullClient>[0]) => {
  const c = new DurabullClient({ hub: 'down', logger: false, ...opts });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durabull-client-down-'));
  srv = await startRedisServer({ dataDir: dir, appendonly: true });
});
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  // Each test leaves its Redis running.
  if (!(await pingRedis(srv.url))) await srv.restart();
});
afterAll(async () => {
  await srv?.stop();
  await rm(dir, { recursive: true, force: true });
});

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): stops and restarts a redis-server of its own.
describe('a client whose Redis is unreachable', () => {
  it('waitForCompletion keeps its timeout: WaitTimeoutError, even with a command timeout far longer', async () => {
    const client = newClient({ connection: srv.url, commandTimeoutMs: 10 * 60_000 });
    await client.startNew('NoWorkerServesThis', { instanceId: 'w-1' });
    // Subscribed and polled while Redis is up: it stays Pending (no worker).
    await expect(client.waitForCompletion('w-1', { timeoutMs: 200 })).rejects.toThrow(/did not finish within 200 ms \(it is Pending\)/);

    await srv.stop();
    const err = await client.waitForCompletion('w-1', { timeoutMs: 500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WaitTimeoutError);
    expect((err as WaitTimeoutError).message).toMatch(/^Instance 'w-1' did not finish within 500 ms \(it is unknown: Redis did not answer, connection \w+\)\.$/);

    // A client that never reached Redis (it subscribes while Redis is down) keeps it too.
    const fresh = newClient({ connection: srv.url, commandTimeoutMs: 10 * 60_000 });
    await expect(fresh.waitForCompletion('w-1', { timeoutMs: 300 })).rejects.toBeInstanceOf(WaitTimeoutError);
  }, 60_000);

  it('other calls reject with RedisUnavailableError after commandTimeoutMs, naming the call and that the outcome is unknown', async () => {
    await newClient({ connection: srv.url }).startNew('NoWorkerServesThis', { instanceId: 'u-1' });
    // Connected while Redis is up, its first command sent once Redis is gone.
    const client = newClient({ connection: srv.url, commandTimeoutMs: 300 });
    await waitUntil('the client to connect', () => client.backend.redis.status === 'ready');
    await srv.stop();
    const calls: [string, () => Promise<unknown>][] = [
      ['getStatus', () => client.getStatus('u-1')],
      ['list', () => client.list()],
      ['startNew', () => client.startNew('NoWorkerServesThis', { instanceId: 'u-2' })],
      ['raiseEvent', () => client.raiseEvent('u-1', 'Go', 1)],
      ['terminate', () => client.terminate('u-1', 'stop')],
      ['suspend', () => client.suspend('u-1')],
      ['purge', () => client.purge('u-1')],
      ['purgeInstances', () => client.purgeInstances({ all: true })],
      ['restart', () => client.restart('u-1', { newInstanceId: 'u-3' })],
    ];
    const errors = await Promise.all(calls.map(([, call]) => call().catch((e: unknown) => e)));
    for (const [k, [operation]] of calls.entries()) {
      const err = errors[k];
      expect(err, operation).toBeInstanceOf(RedisUnavailableError);
      expect(err, operation).toMatchObject({ name: 'RedisUnavailableError', operation, timeoutMs: 300 });
      expect((err as Error).message, operation).toMatch(new RegExp(`^${operation}: Redis did not answer within 300 ms \\(connection \\w+\\)\\. The outcome is unknown`));
    }

    // A client on a port where nothing listens fails the same way.
    const nowhere = newClient({ connection: `redis://127.0.0.1:${await getFreePort()}`, commandTimeoutMs: 300 });
    await expect(nowhere.getStatus('u-1')).rejects.toBeInstanceOf(RedisUnavailableError);
    await expect(nowhere.startNew('NoWorkerServesThis')).rejects.toBeInstanceOf(RedisUnavailableError);
  }, 60_000);

  it('a start that failed so may be applied once Redis is back; the same start again is then refused as a duplicate', async () => {
    const client = newClient({ connection: srv.url, commandTimeoutMs: 300 });
    await waitUntil('the client to connect', () => client.backend.redis.status === 'ready');
    // The partition map is read by the first call; read here while Redis is up.
    await client.backend.open();
    await srv.stop();
    // allowUnknownName: the start itself is the command that waits (not the read of the hub's workers before it).
    await expect(client.startNew('NoWorkerServesThis', { instanceId: 'late-1', input: 7, allowUnknownName: true })).rejects.toBeInstanceOf(RedisUnavailableError);
    await srv.restart();
    // ioredis sent the queued command after reconnecting: the start happened.
    // Until the client has reconnected its reads time out too (RedisUnavailableError): ask again.
    await waitUntil('the queued start to be applied', async () => (await client.getStatus('late-1').catch((err: unknown) => (err instanceof RedisUnavailableError ? undefined : Promise.reject(err))))?.input === 7);
    await expect(client.startNew('NoWorkerServesThis', { instanceId: 'late-1', input: 7, allowUnknownName: true })).rejects.toBeInstanceOf(InstanceAlreadyExistsError);
  }, 60_000);
});
