import { type RedisClient, isCluster, masterNodes } from '@durabull/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis, deleteKeysByPattern, onCluster, redisUrl, scanAll, uniqueHub } from './redis.js';

describe('test Redis helpers', () => {
  let redis: RedisClient;

  beforeAll(async () => {
    redis = connectRedis();
  });

  afterAll(async () => {
    await redis.quit();
  });

  it('redisUrl() is the Redis globalSetup picked, and child processes see it as REDIS_URL', async () => {
    expect(redisUrl()).toBe(process.env.REDIS_URL);
    expect(await redis.ping()).toBe('PONG');
    // connectRedis() is a Cluster exactly when the run's Redis is one.
    expect(isCluster(redis)).toBe(onCluster());
    expect(onCluster()).toBe(redisUrl().startsWith('redis-cluster://'));
  });

  it('uniqueHub() gives distinct names of letters, digits and dashes', () => {
    const hubs = new Set(Array.from({ length: 100 }, () => uniqueHub()));
    expect(hubs.size).toBe(100);
    for (const hub of hubs) expect(hub).toMatch(/^t-[0-9a-f]{8}$/);
    expect(uniqueHub('chain-2')).toMatch(/^chain-2-[0-9a-f]{8}$/);
    expect(() => uniqueHub('bad:prefix')).toThrow(RangeError);
  });

  it('deleteKeysByPattern() deletes only the matching keys, across several SCAN pages', async () => {
    const hub = uniqueHub();
    const other = uniqueHub();
    // Keys without a hash tag: on a cluster they spread over every slot, so over every master.
    for (let i = 0; i < 2500; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => redis.set(`${hub}:k${i + j}`, i + j)));
    await redis.set(`${other}:keep`, 1);
    const perMaster = await Promise.all((await masterNodes(redis)).map(async (n) => (await n.dbsize()) > 0));
    expect(perMaster.every(Boolean)).toBe(true);
    expect(await scanAll(redis, `${hub}:*`)).toHaveLength(2500);

    expect(await deleteKeysByPattern(redis, `${hub}:*`)).toBe(2500);
    expect(await scanAll(redis, `${hub}:*`)).toEqual([]);
    expect((await redis.exists(`${hub}:k0`)) + (await redis.exists(`${hub}:k2499`))).toBe(0);
    expect(await redis.get(`${other}:keep`)).toBe('1');

    expect(await deleteKeysByPattern(redis, `${other}:*`)).toBe(1);
  });

  it('deleteKeysByPattern() refuses patterns without a literal prefix', async () => {
    await expect(deleteKeysByPattern(redis, '*')).rejects.toThrow(RangeError);
    await expect(deleteKeysByPattern(redis, '')).rejects.toThrow(RangeError);
  });
});
