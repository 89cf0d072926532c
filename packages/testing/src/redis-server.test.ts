import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPortFree, pingRedis } from './net.js';
import { RedisServerNotFoundError, startRedisServer, type RedisServer } from './redis-server.js';

/** Runs `fn` with a fresh ioredis client on `url` and always disconnects it. */
async function withClient<T>(url: string, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  try {
    await redis.connect();
    return await fn(redis);
  } finally {
    redis.disconnect();
  }
}

describe('startRedisServer', () => {
  let dataDir: string;
  let server: RedisServer | undefined;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'durabull-redis-server-test-'));
  });

  afterEach(async () => {
    await server?.stop();
    server = undefined;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('keeps AOF data across a restart on the same port and data directory', async () => {
    server = await startRedisServer({ dataDir, appendonly: true, appendfsync: 'always' });
    const { port, url } = server;
    const firstPid = server.pid;
    expect(url).toBe(`redis://127.0.0.1:${port}`);

    await withClient(url, async (redis) => {
      expect(await redis.set('durable-key', 'survives')).toBe('OK');
    });

    await server.restart();

    expect(server.port).toBe(port);
    expect(server.url).toBe(url);
    expect(server.pid).not.toBe(firstPid);
    await withClient(url, async (redis) => {
      expect(await redis.get('durable-key')).toBe('survives');
    });
  });

  it('keeps AOF data across a SIGKILL crash and restart', async () => {
    server = await startRedisServer({ dataDir, appendonly: true, appendfsync: 'always' });
    await withClient(server.url, async (redis) => {
      await redis.rpush('crash-list', 'a', 'b', 'c');
    });

    server.kill('SIGKILL');
    await server.restart();

    await withClient(server.url, async (redis) => {
      expect(await redis.lrange('crash-list', 0, -1)).toEqual(['a', 'b', 'c']);
    });
  });

  it('loses data across a restart when appendonly is off (RDB snapshots are disabled)', async () => {
    server = await startRedisServer({ dataDir });
    await withClient(server.url, async (redis) => {
      await redis.set('volatile-key', 'x');
    });

    await server.restart();

    await withClient(server.url, async (redis) => {
      expect(await redis.exists('volatile-key')).toBe(0);
    });
  });

  it('requires the password and puts it in the url', async () => {
    server = await startRedisServer({ dataDir, password: 's3cret/pw' });
    expect(server.url).toBe(`redis://:${encodeURIComponent('s3cret/pw')}@127.0.0.1:${server.port}`);
    expect(await pingRedis(server.url)).toBe(true);
    expect(await pingRedis(`redis://127.0.0.1:${server.port}`)).toBe(false);
  });

  it('frees the port on stop, and stop can be called twice', async () => {
    server = await startRedisServer({ dataDir });
    const { port, url } = server;
    await server.stop();
    await server.stop();
    expect(await pingRedis(url, 300)).toBe(false);
    expect(await isPortFree(port)).toBe(true);
  });

  it('throws RedisServerNotFoundError with install advice when redis-server is not on the PATH', async () => {
    const path = process.env.PATH;
    process.env.PATH = dataDir; // an empty directory
    try {
      const attempt = startRedisServer({ dataDir });
      await expect(attempt).rejects.toBeInstanceOf(RedisServerNotFoundError);
      await expect(attempt).rejects.toThrow(/apt-get install redis-server.*REDIS_URL/);
    } finally {
      process.env.PATH = path;
    }
  });
});
