/**
 * Where the fault suite cuts an append-only file (test/faults/fault-run.ts, `aofCutPoint`): at a command boundary
 * outside MULTI/EXEC blocks. A file torn inside a block is mishandled by Redis 7.0: with `aof-load-truncated yes`
 * it drops the torn command only, keeps the block open, and the next restart applies the rolled-back block's
 * writes after later ones, which is Redis's loss, not durabull's (docs/reliability.md). Cut at the safe point, the
 * file loads the same on every Redis (checked here on a redis-server of this test's own).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, truncateSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type HistoryEvent, Registry, executeOrchestration } from '@durabull/core';
import { RedisBackend } from '@durabull/redis';
import { type RedisServer, findRedisServer, startRedisServer } from '@durabull/testing';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { aofCutPoint } from '../faults/fault-run.js';

const resp = (...args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;

describe('aofCutPoint', () => {
  const set = resp('SET', 'a', '1');
  const block = resp('MULTI') + resp('SET', 'b', '2') + resp('SET', 'c', '3') + resp('EXEC');
  const file = Buffer.from(set + block + resp('SET', 'd', '4'));

  it('cuts at command boundaries outside blocks, and says whether a size falls inside a block', () => {
    expect(aofCutPoint(file, file.length)).toEqual({ safe: file.length, insideMulti: false });
    expect(aofCutPoint(file, set.length)).toEqual({ safe: set.length, insideMulti: false });
    // Inside the first SET: back to the start.
    expect(aofCutPoint(file, 5)).toEqual({ safe: 0, insideMulti: false });
    // Anywhere in the block, including in the middle of its EXEC: back to before MULTI.
    for (const at of [set.length + 3, set.length + resp('MULTI').length + 4, set.length + block.length - 3]) {
      expect(aofCutPoint(file, at)).toEqual({ safe: set.length, insideMulti: true });
    }
    // Right after EXEC: the whole block stays.
    expect(aofCutPoint(file, set.length + block.length)).toEqual({ safe: set.length + block.length, insideMulti: false });
  });

  it('skips annotation lines', () => {
    const annotated = Buffer.from(`#TS:1700000000\r\n${set}`);
    expect(aofCutPoint(annotated, annotated.length)).toEqual({ safe: annotated.length, insideMulti: false });
  });
});

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): restarts a redis-server of its own from a cut append-only file.
describe('a file torn inside a MULTI block, on this Redis', () => {
  async function tornRun(): Promise<string[]> {
    const dir = await mkdtemp(join(tmpdir(), 'durabull-aof-'));
    const server = await startRedisServer({ dataDir: dir, appendonly: true, appendfsync: 'always' });
    try {
      let r = new Redis(server.url);
      await r.set('before', '1');
      // A script's two writes go to the file as MULTI, SET, SET, EXEC.
      await r.eval("redis.call('SET', 'rolled-back-1', '1'); redis.call('SET', 'rolled-back-2', '1'); return 1", 0);
      r.disconnect();
      server.kill('SIGKILL');
      await server.stop();
      const aofDir = join(dir, 'appendonlydir');
      const incr = join(aofDir, readdirSync(aofDir).find((f) => f.endsWith('.incr.aof'))!);
      const buf = readFileSync(incr);
      // Torn in the middle of the block's EXEC, as a crash can leave it.
      const at = buf.length - 3;
      const point = aofCutPoint(buf, at);
      expect(point.insideMulti).toBe(true);
      truncateSync(incr, point.safe);
      await server.restart();
      r = new Redis(server.url);
      await r.set('after', '1');
      r.disconnect();
      server.kill('SIGKILL');
      await server.stop();
      await server.restart();
      r = new Redis(server.url);
      const keys = (await r.keys('*')).sort();
      r.disconnect();
      return keys;
    } finally {
      await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('cut at the safe point: the block is gone for good and later writes stay', async () => {
    expect(await tornRun()).toEqual(['after', 'before']);
  });
});

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): restarts a redis-server of its own from a cut append-only file.
describe('a file torn inside an episode commit, repaired as docs/reliability.md says', () => {
  const registry = new Registry().addOrchestrator('Chain2', function* (ctx, n: number) {
    const a: number = yield ctx.callActivity('Sq', n);
    return yield ctx.callActivity('Sq', a);
  });

  /** One episode of `id`, loaded, run and committed by a backend of its own (no cache shared), not dispatched. */
  async function episode(server: RedisServer, id: string): Promise<void> {
    const backend = new RedisBackend({ connection: server.url, hub: 'torn' });
    try {
      const loaded = (await backend.loadEpisode(id))!;
      const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
      const result = await executeOrchestration(registry, loaded.history, [...prefix, ...loaded.inbox.map((m) => m.event)]);
      await backend.commitEpisode(loaded, prefix, result);
    } finally {
      await backend.close();
    }
  }

  it('redis-check-aof --fix cuts it before the block: the episode runs again and is in the history once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'durabull-aof-'));
    const server = await startRedisServer({ dataDir: dir, appendonly: true, appendfsync: 'always' });
    try {
      const starter = new RedisBackend({ connection: server.url, hub: 'torn' });
      await starter.startInstance('Chain2', 'once', 2);
      await new Promise<void>((resolve) => setImmediate(resolve));
      await starter.redis.ping();
      await starter.close();
      await episode(server, 'once');
      // The commit's MULTI block is the last thing in the file: a crash tears it inside its EXEC.
      server.kill('SIGKILL');
      await server.stop();
      const aofDir = join(dir, 'appendonlydir');
      const incr = join(aofDir, readdirSync(aofDir).find((f) => f.endsWith('.incr.aof'))!);
      const size = readFileSync(incr).length;
      const point = aofCutPoint(readFileSync(incr), size - 3);
      expect(point.insideMulti).toBe(true);
      truncateSync(incr, size - 3);
      // What a Redis started with `aof-load-truncated no` asks the operator to run before it starts again.
      const checkAof = join(dirname(findRedisServer()!), 'redis-check-aof');
      execFileSync(checkAof, ['--fix', join(aofDir, 'appendonly.aof.manifest')], { input: 'y\n', stdio: ['pipe', 'ignore', 'ignore'] });
      expect(readFileSync(incr).length).toBe(point.safe);
      // The episode was rolled back whole; it runs again, and a later restart keeps exactly that.
      await server.restart();
      await episode(server, 'once');
      server.kill('SIGKILL');
      await server.stop();
      await server.restart();
      const reader = new RedisBackend({ connection: server.url, hub: 'torn' });
      try {
        const history = await reader.getHistory('once');
        expect(history.filter((e) => e.type === 'ExecutionStarted')).toHaveLength(1);
        expect(history.filter((e) => e.type === 'TaskScheduled')).toEqual([expect.objectContaining({ taskId: 0, input: 2 })]);
        expect(await reader.redis.xlen(reader.keys.history('once'))).toBe(1);
      } finally {
        await reader.close();
      }
    } finally {
      await server.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
