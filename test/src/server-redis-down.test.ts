/**
 * The HTTP server while its Redis is down (a redis-server of our own, stopped and started again):
 * requests get a 503 at once instead of hanging in ioredis' offline queue, nothing they asked for
 * happens later, and the server serves again once Redis is back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '@durabull/server';
import { type RedisServer, startRedisServer } from '@durabull/testing';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from './helpers/orchestration.js';

let srv: RedisServer;
let dir: string;
let app: FastifyInstance;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durabull-down-'));
  srv = await startRedisServer({ dataDir: dir, appendonly: true });
  app = createServer({ connection: srv.url, hub: 'down' });
});
afterAll(async () => {
  await app?.close();
  await srv?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('HTTP server without Redis', () => {
  it('answers 503 while Redis is unreachable, starts nothing later, and serves again once it is back', async () => {
    const start = () =>
      app.inject({ method: 'POST', url: '/orchestrations/Anything?instanceId=while-down', headers: { 'content-type': 'application/json' }, payload: '1' });
    expect((await app.inject({ method: 'GET', url: '/instances' })).statusCode).toBe(200);

    expect((await app.inject({ method: 'GET', url: '/health' })).json()).toEqual({ status: 'ok', redis: 'ready' });
    await srv.stop();
    // A request already sent when Redis went away waits for it (ioredis retries it); those that
    // come once the connection is known lost are refused.
    await waitUntil('the server notices Redis is gone', async () => (await app.inject({ method: 'GET', url: '/health' })).statusCode === 503);
    const refused = await start();
    expect(refused.statusCode).toBe(503);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json()).toMatchObject({ error: 'ServiceUnavailable', message: expect.stringMatching(/^Redis is unreachable \(connection \w+\); nothing was done/) });

    await srv.restart();
    await waitUntil('the server serves again', async () => (await app.inject({ method: 'GET', url: '/instances' })).statusCode === 200);
    // The refused start never happened: no instance, no key naming it.
    expect((await app.inject({ method: 'GET', url: '/instances/while-down' })).statusCode).toBe(404);
    const raw = new Redis(srv.url);
    try {
      expect(await raw.keys('*while-down*')).toEqual([]);
    } finally {
      await raw.quit();
    }
  });
});
