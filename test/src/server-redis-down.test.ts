/**
 * The HTTP server while its Redis is down (a redis-server of our own, stopped and started again, or
 * a port where nothing listens yet): health says so (503), requests get a 503 with Retry-After at
 * once instead of hanging in ioredis' offline queue, nothing they asked for happens later, a request
 * in flight when Redis stops answering ends with a 503, and the server serves again once Redis is back.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from '@durabull/server';
import { type RedisServer, getFreePort, startRedisServer } from '@durabull/testing';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it, describe } from 'vitest';
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

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): stops a redis-server of its own.
describe('HTTP server without Redis', () => {
  it('answers 503 while Redis is unreachable, starts nothing later, and serves again once it is back', async () => {
    const start = () =>
      app.inject({ method: 'POST', url: '/orchestrations/Anything?instanceId=while-down', headers: { 'content-type': 'application/json' }, payload: '1' });
    expect((await app.inject({ method: 'GET', url: '/instances' })).statusCode).toBe(200);

    expect((await app.inject({ method: 'GET', url: '/health' })).json()).toEqual({ status: 'ok', redis: 'ready' });
    await srv.stop();
    // A request already sent when Redis went away waits for it (ioredis sends it again), at most
    // the client's command timeout; those that come once the connection is known lost are refused.
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

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): starts a redis-server of its own late.
describe('HTTP server started while Redis is down', () => {
  it('says it is unhealthy and answers 503 with Retry-After on every route from the start, then serves once Redis is up', async () => {
    const port = await getFreePort();
    const late = createServer({ connection: `redis://127.0.0.1:${port}`, hub: 'down' });
    let lateRedis: RedisServer | undefined;
    const lateDir = await mkdtemp(join(tmpdir(), 'durabull-down-late-'));
    try {
      const health = await late.inject({ method: 'GET', url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(health.headers['retry-after']).toBe('1');
      expect(health.json()).toEqual({ status: 'unavailable', redis: expect.stringMatching(/^(connecting|connect|reconnecting|close)$/) });
      for (const [method, url] of [
        ['GET', '/instances'],
        ['GET', '/instances/anything'],
        ['POST', '/orchestrations/Anything?instanceId=while-down-2'],
        ['DELETE', '/instances?status=Completed'],
        ['GET', '/'],
        ['GET', '/ui/instances/anything'],
        ['GET', '/queues/api/queues'],
      ] as const) {
        const r = await late.inject({ method, url, ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, payload: '1' } : {}) });
        expect(r.statusCode, `${method} ${url}`).toBe(503);
        expect(r.headers['retry-after'], `${method} ${url}`).toBe('1');
        expect(r.json(), `${method} ${url}`).toEqual({ error: 'ServiceUnavailable', message: expect.stringMatching(/^Redis is unreachable \(connection \w+\); nothing was done/) });
      }

      lateRedis = await startRedisServer({ dataDir: lateDir, port });
      await waitUntil('the server serves', async () => (await late.inject({ method: 'GET', url: '/health' })).statusCode === 200);
      expect((await late.inject({ method: 'GET', url: '/health' })).json()).toEqual({ status: 'ok', redis: 'ready' });
      expect((await late.inject({ method: 'GET', url: '/instances' })).json()).toEqual({ instances: [] });
      expect((await late.inject({ method: 'GET', url: '/instances/while-down-2' })).statusCode).toBe(404);
    } finally {
      await late.close();
      await lateRedis?.stop();
      await rm(lateDir, { recursive: true, force: true });
    }
  }, 60_000);
});

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): freezes a redis-server of its own.
describe('a request in flight when Redis stops answering', () => {
  it('ends with a 503 after the command timeout instead of hanging', async () => {
    const frozenDir = await mkdtemp(join(tmpdir(), 'durabull-down-frozen-'));
    const frozen = await startRedisServer({ dataDir: frozenDir });
    const server = createServer({ connection: frozen.url, hub: 'down', commandTimeoutMs: 2000 });
    try {
      expect((await server.inject({ method: 'GET', url: '/instances' })).statusCode).toBe(200);
      // The process stops answering; its connections stay open, so the request is sent and waits.
      frozen.kill('SIGSTOP');
      try {
        const r = await server.inject({ method: 'GET', url: '/instances/frozen-1' });
        expect(r.statusCode).toBe(503);
        expect(r.headers['retry-after']).toBe('1');
        expect(r.json()).toEqual({
          error: 'ServiceUnavailable',
          message: expect.stringMatching(/^getStatus: Redis did not answer within 2000 ms \(connection \w+\)\. The outcome is unknown/),
        });
      } finally {
        frozen.kill('SIGCONT');
      }
      await waitUntil('the server serves again', async () => (await server.inject({ method: 'GET', url: '/instances' })).statusCode === 200);
    } finally {
      await server.close();
      await frozen.stop();
      await rm(frozenDir, { recursive: true, force: true });
    }
  }, 60_000);
});
