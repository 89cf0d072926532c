/**
 * Connection drops in the log: a client and a worker whose Redis (a redis-server of our own) is
 * stopped and started again print no "[ioredis] Unhandled error event" (every connection durabull
 * opens has an error listener, BullMQ's queues and workers too), and each logs the outage once
 * through its pino logger (warn, with the address and the reason) and once when it is back (info),
 * however many reconnect attempts it took.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DurabullClient } from '@durabull/client';
import { Registry } from '@durabull/core';
import { type RedisServer, startRedisServer } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import type { Logger } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it, vi, describe } from 'vitest';
import { captureLog } from './helpers/log.js';
import { waitUntil } from './helpers/orchestration.js';

interface Line {
  level: number;
  msg: string;
  component?: string;
  address?: string;
  reason?: string;
}

/** A pino logger at debug whose lines are kept, parsed. */
function capture(): { logger: Logger; lines: Line[] } {
  return captureLog('debug') as { logger: Logger; lines: Line[] };
}

const WARN = 40;
const INFO = 30;
const ERROR = 50;
const lost = (lines: Line[]) => lines.filter((l) => l.msg.startsWith('Redis connection lost'));
const back = (lines: Line[]) => lines.filter((l) => l.msg === 'Redis connection is back');

let srv: RedisServer;
let dir: string;
let client: DurabullClient | undefined;
let worker: DurabullWorker | undefined;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durabull-connlog-'));
  srv = await startRedisServer({ dataDir: dir, appendonly: true });
});
afterEach(async () => {
  await worker?.close();
  await client?.close();
  vi.restoreAllMocks();
});
afterAll(async () => {
  await srv?.stop();
  await rm(dir, { recursive: true, force: true });
});

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): stops and restarts a redis-server of its own.
describe('a lost Redis connection in the log', () => {
  it('is logged once by the client and once by the worker, and once more each when it is back; nothing unhandled', async () => {
    const printed: string[] = [];
    for (const method of ['error', 'warn', 'log'] as const) {
      const original = console[method].bind(console);
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        printed.push(args.map(String).join(' '));
        original(...args);
      });
    }
    const c = capture();
    const w = capture();
    const registry = new Registry()
      .addOrchestrator('Chain', function* (ctx, n: number): Generator<unknown, number, number> {
        return yield ctx.callActivity('Inc', n);
      })
      .addActivity('Inc', async (n: number) => n + 1);
    client = new DurabullClient({ connection: srv.url, hub: 'connlog', logger: c.logger });
    worker = await new DurabullWorker({ connection: srv.url, hub: 'connlog', registry, logger: w.logger }).start();
    // Every connection in use: the client's commands, its queue and its subscription; the worker's.
    const first = await client.startNew('Chain', { input: 1 });
    expect((await client.waitForCompletion(first, { timeoutMs: 15_000 })).output).toBe(2);

    await srv.stop();
    // Several failed reconnect attempts on each side (each one an ioredis error event).
    let attempts = 0;
    const count = () => attempts++;
    client.backend.redis.on('reconnecting', count);
    worker.backend.redis.on('reconnecting', count);
    await waitUntil('reconnect attempts on both sides', () => attempts >= 6 && lost(c.lines).length > 0 && lost(w.lines).length > 0);
    await srv.restart();
    await waitUntil('both to log that Redis is back', () => back(c.lines).length > 0 && back(w.lines).length > 0);
    // And they work again.
    const second = await client.startNew('Chain', { input: 5 });
    expect((await client.waitForCompletion(second, { timeoutMs: 15_000 })).output).toBe(6);

    expect(printed.filter((p) => /Unhandled error event|ECONNREFUSED|ECONNRESET|Connection is closed/.test(p))).toEqual([]);
    const address = `127.0.0.1:${srv.port}`;
    for (const [component, lines] of [['client', c.lines], ['worker', w.lines]] as const) {
      expect(lost(lines), component).toEqual([
        expect.objectContaining({ level: WARN, component, address, reason: expect.stringMatching(/ECONNREFUSED|closed/) }),
      ]);
      expect(back(lines), component).toEqual([expect.objectContaining({ level: INFO, component, address, downMs: expect.any(Number) })]);
      // The attempts themselves are at debug only; nothing at error.
      expect(lines.filter((l) => l.level >= ERROR), component).toEqual([]);
    }
  }, 90_000);
});
