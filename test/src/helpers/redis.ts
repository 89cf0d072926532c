import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
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
export async function deleteKeysByPattern(redis: Redis, pattern: string): Promise<number> {
  if (pattern === '' || /^[*?[\\]/.test(pattern)) {
    throw new RangeError(`deleteKeysByPattern needs a pattern with a literal prefix, got ${JSON.stringify(pattern)}`);
  }
  if (redis.options.keyPrefix) {
    throw new RangeError('deleteKeysByPattern needs a client without keyPrefix');
  }
  let deleted = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** The keys matching `pattern` whose name contains `part` (SCAN, not KEYS), sorted. */
export async function keysContaining(redis: Redis, pattern: string, part: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys.filter((k) => k.includes(part)));
  } while (cursor !== '0');
  return found.sort();
}
