/**
 * A wrong Redis password gives a clear error quickly, on a redis-server of our own started with
 * `requirepass` (never the shared test Redis).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurabullClient } from '@durabull/client';
import { Registry, RedisAuthError } from '@durabull/core';
import { type RedisServer, startRedisServer } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import { afterAll, beforeAll, expect, it, describe } from 'vitest';

let srv: RedisServer;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durabull-auth-'));
  srv = await startRedisServer({ dataDir: dir, password: 's3cret-pw' });
});
afterAll(async () => {
  await srv?.stop();
  await rm(dir, { recursive: true, force: true });
});

const registry = () =>
  new Registry().addOrchestrator('Hello', function* (ctx, name: string) {
    return yield ctx.callActivity('Greet', name);
  }).addActivity('Greet', async (name: string) => `Hello ${name}`);

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): a redis-server of its own with requirepass.
describe('Redis password', () => {
  for (const [what, url] of [
    ['a wrong password', () => srv.url.replace('s3cret-pw', 'wrong')],
    ['no password', () => srv.url.replace(':s3cret-pw@', '')],
  ] as const) {
    it(`a worker with ${what} fails start() at once with RedisAuthError`, async () => {
      const w = new DurabullWorker({ connection: url(), hub: 'auth', registry: registry(), logger: false });
      const t0 = Date.now();
      const err = await w.start().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(Date.now() - t0).toBeLessThan(2000);
      expect(err).toBeInstanceOf(RedisAuthError);
      expect((err as Error).message).toMatch(/^Redis refused the credentials: (WRONGPASS|NOAUTH) .*Check the password/);
      await w.close();
    });

    it(`a client with ${what} rejects its first call quickly with Redis' own reply`, async () => {
      const c = new DurabullClient({ connection: url(), hub: 'auth' });
      const t0 = Date.now();
      await expect(c.startNew('Hello', { input: 'x' })).rejects.toThrow(/WRONGPASS|NOAUTH/);
      expect(Date.now() - t0).toBeLessThan(2000);
      await c.close();
    });
  }

  it('the right password works end to end', async () => {
    const w = await new DurabullWorker({ connection: srv.url, hub: 'auth', registry: registry(), logger: false }).start();
    const c = new DurabullClient({ connection: srv.url, hub: 'auth' });
    try {
      const id = await c.startNew('Hello', { input: 'pw' });
      expect((await c.waitForCompletion(id, { timeoutMs: 10_000 })).output).toBe('Hello pw');
    } finally {
      await c.close();
      await w.close();
    }
  });
});
