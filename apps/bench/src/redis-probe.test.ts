/**
 * What the bench reads from Redis, on a redis-server of its own (MONITOR and the slow log see every
 * client of a server, and the slow-log census changes its config): script names by sha1, the
 * MONITOR census with each script's inner commands, the slow-log census, and the per-process
 * counter of commands and socket writes.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScripts } from '@durabull/redis';
import { type RedisServer, startRedisServer } from '@durabull/testing';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installIoCounter } from './io-counter.js';
import { type MonitorLine, allScriptNames, commandLabel, countMonitorLines, labelCounts, monitorCensus, scriptNames, scriptSha, slowlogCensus } from './redis-probe.js';

let server: RedisServer;
let dir: string;
let redis: Redis;
const TWO_CALLS = "redis.call('set', KEYS[1], 'x'); redis.call('get', KEYS[1]); return 1";

type WithScript = Redis & { benchTwoCalls(key: string): Promise<number> };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bench-probe-'));
  server = await startRedisServer({ dataDir: dir });
  redis = new Redis(server.url, { maxRetriesPerRequest: null });
  redis.defineCommand('benchTwoCalls', { numberOfKeys: 1, lua: TWO_CALLS });
  // Loaded once, so that the censuses see EVALSHA only (not ioredis' NOSCRIPT fallback to EVAL).
  await (redis as WithScript).benchTwoCalls('probe:warm');
  await redis.del('probe:warm');
});

afterAll(async () => {
  await redis?.quit().catch(() => undefined);
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('script names', () => {
  it("name durabull's scripts from their files and BullMQ's from a queue's connection", async () => {
    const names = await allScriptNames(server.url, 'bench-names-test');
    const commit = loadScripts().find((s) => s.name === 'commitEpisode')!;
    expect(names.bySha.get(scriptSha(commit.lua))).toBe('commitEpisode');
    const bull = [...names.bySha.values()];
    for (const n of ['moveToActive', 'moveToFinished', 'addStandardJob', 'extendLocks', 'moveStalledJobsToWait']) expect(bull).toContain(n);
    // The queue's meta key is gone again.
    expect(await redis.keys('bench-names-test*')).toEqual([]);
  });

  it('label what a process counted: script calls by name, unknown ones by their first 8 hex digits', () => {
    const names = scriptNames(redis);
    const sha = scriptSha(TWO_CALLS);
    expect(commandLabel(`evalsha:${sha}`, names)).toBe('script:benchTwoCalls');
    expect(commandLabel(`evalsha:${'ab'.repeat(20)}`, names)).toBe('script:abababab');
    expect(commandLabel('hgetall', names)).toBe('hgetall');
    expect(labelCounts({ [`evalsha:${sha}`]: 2, [`eval:${sha}`]: 1, get: 3 }, names)).toEqual({ 'script:benchTwoCalls': 3, get: 3 });
  });
});

describe('MONITOR census', () => {
  it("counts script calls by name and each script's inner commands, apart from plain commands", async () => {
    const client = redis as WithScript;
    const census = await monitorCensus(server.url, () => scriptNames(redis), async () => {
      await client.benchTwoCalls('probe:a');
      await client.benchTwoCalls('probe:b');
      await redis.del('probe:a', 'probe:b');
      await redis.zadd('probe:q:marker', 0, '0');
    });
    expect(census.topLevel).toEqual({ 'script:benchTwoCalls': 2, del: 1, zadd: 1 });
    expect(census.inScripts).toEqual({ set: 2, get: 2 });
    expect(census.byScript['script:benchTwoCalls']).toEqual({ calls: 2, inner: { set: 2, get: 2 }, innerTotal: 4 });
    expect(census.markerOps).toBe(1);
    await redis.del('probe:q:marker');
  });

  it('attributes inner commands to the script call before them, and none to plain commands', () => {
    const names = { bySha: new Map([['a'.repeat(40), 'one'], ['b'.repeat(40), 'two']]), byText: new Map() };
    const lines: MonitorLine[] = [
      { args: ['evalsha', 'a'.repeat(40)], lua: false },
      { args: ['hset', 'k'], lua: true },
      { args: ['evalsha', 'b'.repeat(40)], lua: false },
      { args: ['zadd', 'x:marker'], lua: true },
      { args: ['xadd', 's'], lua: true },
      { args: ['get', 'k'], lua: false },
      { args: ['echo', 'marker'], lua: false },
    ];
    const c = countMonitorLines(lines, names);
    expect(c.byScript).toEqual({
      'script:one': { calls: 1, inner: { hset: 1 }, innerTotal: 1 },
      'script:two': { calls: 1, inner: { zadd: 1, xadd: 1 }, innerTotal: 2 },
    });
    expect(c).toMatchObject({ topLevelTotal: 3, inScriptsTotal: 3, markerOps: 1 });
  });
});

describe('slow-log census', () => {
  it('sums the logged execution time per command and script, and restores the config', async () => {
    const before = await redis.config('GET', 'slowlog-*');
    const client = redis as WithScript;
    const c = await slowlogCensus(redis, () => scriptNames(redis), async () => {
      for (let i = 0; i < 3; i++) await client.benchTwoCalls('probe:s');
      await redis.del('probe:s');
    });
    expect(c.byCommand['script:benchTwoCalls']?.calls).toBe(3);
    expect(c.byCommand.del?.calls).toBe(1);
    // The commands the script ran (logged too, as client `?:0`) are in its time, not counted apart; nor are the census' own calls.
    expect(Object.keys(c.byCommand).sort()).toEqual(['del', 'script:benchTwoCalls']);
    expect(c.calls).toBe(4);
    expect(c.usec).toBeGreaterThan(0);
    expect(c.overflowed).toBe(false);
    expect(await redis.config('GET', 'slowlog-*')).toEqual(before);
    expect(await redis.slowlog('LEN')).toBe(0);
  });

  it('says when the log overflowed', async () => {
    const c = await slowlogCensus(redis, () => scriptNames(redis), async () => {
      for (let i = 0; i < 5; i++) await redis.get('probe:none');
    }, 3);
    // The log kept the last 3 entries: the CONFIG SET that opened it is gone.
    expect(c.overflowed).toBe(true);
    expect(c.calls).toBe(3);
  });
});

describe('io counter', () => {
  it('counts each command sent, and one socket write per command sent alone or per pipeline', async () => {
    const read = installIoCounter(server.port);
    const conn = new Redis(server.url, { maxRetriesPerRequest: null });
    await conn.ping();
    const a = read();
    await conn.get('probe:io');
    await conn.pipeline().set('probe:io', '1').get('probe:io').del('probe:io').exec();
    const b = read();
    expect(b.commands.get! - (a.commands.get ?? 0)).toBe(2);
    expect(b.commands.set! - (a.commands.set ?? 0)).toBe(1);
    expect(b.writes - a.writes).toBe(2);
    expect(b.bytesOut - a.bytesOut).toBeGreaterThan(0);
    expect(() => installIoCounter(server.port + 1)).toThrow(/already counting for port/);
    expect(() => installIoCounter(0)).toThrow(RangeError);
    await conn.quit();
  });
});
