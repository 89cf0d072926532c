import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ensureRedis, type EnsuredRedis } from './ensure-redis.js';
import { getFreePort, pingRedis } from './net.js';
import { RedisServerNotFoundError, startRedisServer, type RedisServer } from './redis-server.js';

describe('ensureRedis', () => {
  let dataDir: string;
  const cleanups: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'durabull-ensure-redis-test-'));
  });

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await rm(dataDir, { recursive: true, force: true });
  });

  async function track<T extends EnsuredRedis | RedisServer>(started: Promise<T>): Promise<T> {
    const value = await started;
    cleanups.push(() => value.stop());
    return value;
  }

  it('uses a Redis that answers PING and does not start one', async () => {
    const running = await track(startRedisServer({ dataDir: join(dataDir, 'running') }));
    const lines: string[] = [];

    const ensured = await ensureRedis({ url: running.url, dataDir, log: (line) => lines.push(line) });

    expect(ensured).toMatchObject({ url: running.url, started: false });
    await ensured.stop(); // a no-op: the server must still answer
    expect(await pingRedis(running.url)).toBe(true);
    expect(lines.join('\n')).toMatch(/answers PING/);
  });

  it('starts redis-server with appendonly on the loopback port of the URL when nothing answers there', async () => {
    const port = await getFreePort();
    const url = `redis://127.0.0.1:${port}`;

    const ensured = await track(ensureRedis({ url, dataDir }));

    expect(ensured).toMatchObject({ url, started: true });
    expect(await pingRedis(url)).toBe(true);
    expect(existsSync(join(dataDir, 'appendonlydir'))).toBe(true);
    await ensured.stop();
    expect(await pingRedis(url, 300)).toBe(false);
  });

  it('keeps the password and database index of the URL', async () => {
    const port = await getFreePort();
    const url = `redis://:pw@localhost:${port}/2`;

    const ensured = await track(ensureRedis({ url, dataDir }));

    expect(ensured).toMatchObject({ url: `redis://:pw@127.0.0.1:${port}/2`, started: true });
    expect(await pingRedis(ensured.url)).toBe(true);
  });

  it('falls back to REDIS_URL when no url is given', async () => {
    const port = await getFreePort();
    const previous = process.env.REDIS_URL;
    process.env.REDIS_URL = `redis://127.0.0.1:${port}`;
    try {
      const ensured = await track(ensureRedis({ dataDir }));
      expect(ensured).toMatchObject({ url: `redis://127.0.0.1:${port}`, started: true });
    } finally {
      if (previous === undefined) delete process.env.REDIS_URL;
      else process.env.REDIS_URL = previous;
    }
  });

  it('throws a one-line RedisServerNotFoundError when nothing answers and redis-server is missing', async () => {
    const port = await getFreePort();
    const path = process.env.PATH;
    process.env.PATH = dataDir;
    try {
      const attempt = ensureRedis({ url: `redis://127.0.0.1:${port}`, dataDir });
      await expect(attempt).rejects.toBeInstanceOf(RedisServerNotFoundError);
      const message = await attempt.catch((err: Error) => err.message);
      expect(message).not.toContain('\n');
      expect(message).toMatch(/apt-get install redis-server/);
      expect(message).toMatch(/REDIS_URL/);
    } finally {
      process.env.PATH = path;
    }
  });
});
