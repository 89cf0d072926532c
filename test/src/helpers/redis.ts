import { randomBytes } from 'node:crypto';
import { type RedisClient, createRedisClient, isCluster, isClusterUrl, masterNodes, scanKeys } from '@durabull/redis';
import type { RedisOptions } from 'ioredis';
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the Redis that test/global-setup.ts picked for the whole run. */
    redisUrl: string;
  }
}

/**
 * URL of the Redis the tests must use: the one test/global-setup.ts provided, else `REDIS_URL`.
 *
 * @throws when neither is there (the file was not run through the root vitest.config.ts and REDIS_URL is unset).
 */
export function redisUrl(): string {
  let provided: string | undefined;
  try {
    provided = inject('redisUrl');
  } catch {
    // Not inside a vitest worker (e.g. imported by a script run with tsx): only the environment can tell.
  }
  const url = provided || process.env.REDIS_URL;
  if (!url) {
    throw new Error(
      'No Redis for this test: run it through the root vitest.config.ts (its globalSetup picks one) or set REDIS_URL.',
    );
  }
  return url;
}

/** Whether the run's Redis is a Redis Cluster (`DURABULL_TEST_REDIS=cluster`). */
export function onCluster(): boolean {
  return isClusterUrl(redisUrl());
}

/**
 * An ioredis client on `url` (default: the run's Redis): a `Cluster` for a `redis-cluster://` URL, else a `Redis`,
 * with `maxRetriesPerRequest: null` unless `opts` says otherwise (on a cluster, `opts` go to every node).
 */
export function connectRedis(url: string = redisUrl(), opts: RedisOptions = {}): RedisClient {
  return createRedisClient(url, opts);
}

/** What a task-hub name may contain; it ends up in Redis key names and BullMQ queue names. */
const HUB_NAME = /^[A-Za-z0-9-]+$/;

/**
 * A task-hub name no other test uses: `<prefix>-<8 random hex digits>`, e.g. `t-3f9a0c1e`.
 * Letters, digits and `-` only, so it is safe in key names, queue names and key patterns.
 *
 * @throws {RangeError} when `prefix` contains anything else.
 */
export function uniqueHub(prefix = 't'): string {
  if (!HUB_NAME.test(prefix)) {
    throw new RangeError(`uniqueHub prefix must contain only letters, digits and '-', got ${JSON.stringify(prefix)}`);
  }
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/**
 * Deletes every key matching the glob `pattern` (e.g. `` `durabull:${hub}:*` ``) with SCAN + UNLINK, and returns how
 * many were deleted. The Redis may be shared with other runs or a developer's data, so this never uses
 * FLUSHALL/FLUSHDB, and it refuses patterns that do not start with a literal prefix (`*`, `?x`, `[ab]x` …).
 *
 * Pass a client without `keyPrefix`: SCAN's MATCH ignores the prefix while UNLINK would add it a second time.
 */
export async function deleteKeysByPattern(redis: RedisClient, pattern: string): Promise<number> {
  if (pattern === '' || /^[*?[\\]/.test(pattern)) {
    throw new RangeError(`deleteKeysByPattern needs a pattern with a literal prefix, got ${JSON.stringify(pattern)}`);
  }
  if (redis.options.keyPrefix) {
    throw new RangeError('deleteKeysByPattern needs a client without keyPrefix');
  }
  let deleted = 0;
  // On a cluster SCAN covers one node: every master is scanned, and keys are deleted one by one (a multi-key UNLINK
  // of keys in different slots is refused even on one node).
  for (const node of await masterNodes(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      if (isCluster(redis)) deleted += (await Promise.all(keys.map((k) => node.unlink(k)))).reduce((a, b) => a + b, 0);
      else deleted += await node.unlink(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

/** The keys matching `pattern` (SCAN of every master, not KEYS), sorted. */
export async function scanAll(redis: RedisClient, pattern: string): Promise<string[]> {
  const found: string[] = [];
  for await (const keys of scanKeys(redis, pattern)) found.push(...keys);
  return found.sort();
}

/** The keys matching `pattern` whose name contains `part` (SCAN of every master, not KEYS), sorted. */
export async function keysContaining(redis: RedisClient, pattern: string, part: string): Promise<string[]> {
  return (await scanAll(redis, pattern)).filter((k) => k.includes(part));
}
