import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeysByPattern, redisUrl, uniqueHub } from './redis.js';

describe('test Redis helpers', () => {
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl(), { lazyConnect: true });
    await redis.connect();
  });

  afterAll(async () => {
    await redis.quit();
  });

  it('redisUrl() is the Redis globalSetup picked, and child processes see it as REDIS_URL', async () => {
    expect(redisUrl()).toBe(process.env.REDIS_URL);
    expect(await redis.ping()).toBe('PONG');
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
    const pipeline = redis.pipeline();
    for (let i = 0; i < 2500; i++) pipeline.set(`${hub}:k${i}`, i);
    pipeline.set(`${other}:keep`, 1);
    await pipeline.exec();

    expect(await deleteKeysByPattern(redis, `${hub}:*`)).toBe(2500);
    expect(await redis.exists(`${hub}:k0`, `${hub}:k2499`)).toBe(0);
    expect(await redis.get(`${other}:keep`)).toBe('1');

    expect(await deleteKeysByPattern(redis, `${other}:*`)).toBe(1);
  });

  it('deleteKeysByPattern() refuses patterns without a literal prefix', async () => {
    await expect(deleteKeysByPattern(redis, '*')).rejects.toThrow(RangeError);
    await expect(deleteKeysByPattern(redis, '')).rejects.toThrow(RangeError);
  });
});
