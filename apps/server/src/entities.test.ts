/**
 * The entity routes and the Entities page on a real Redis, through fastify.inject: signal, read,
 * list, purge, the page's state / pending operations / lock holder, and the refusals.
 */
import type { EntityFunction, OrchestratorFunction } from '@durabull/core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from '../../../test/src/helpers/hub.js';
import { createServer } from './server.js';

const Counter: EntityFunction<number> = (ctx) => {
  if (ctx.operationName === 'add') ctx.setState((ctx.getState(() => 0) as number) + ctx.getInput<number>());
  else if (ctx.operationName === 'delete') ctx.destructOnExit();
};
const Holder: OrchestratorFunction = async (ctx) => {
  const lock = await ctx.lockEntities('@Counter@locked');
  await ctx.waitForExternalEvent('go');
  lock.release();
};

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('entity routes', () => {
  let th: TestHub;
  let app: FastifyInstance;
  const req = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({ method, url, headers: payload === undefined ? {} : { 'content-type': 'application/json' }, ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });

  beforeAll(async () => {
    th = await createTestHub({ entities: { Counter }, orchestrators: { Holder } });
    app = createServer({ connection: th.url, hub: th.hub });
  });
  afterAll(async () => {
    await app?.close();
    await th?.cleanup();
  });

  it('signals an entity, reads it, lists it, and purges it once it is empty', async () => {
    expect((await req('POST', '/entities/Counter/c1?op=add', 5)).statusCode).toBe(202);
    expect((await req('POST', '/entities/Counter/c1?op=add', 2)).statusCode).toBe(202);
    const got = await until('the state', () => req('GET', '/entities/Counter/c1'), (r) => r.statusCode === 200 && r.json().state === 7);
    expect(got.json()).toMatchObject({ id: '@Counter@c1', name: 'Counter', key: 'c1', hasState: true, state: 7, pendingOperations: 0, operations: 2 });
    const list = await req('GET', '/entities?name=Counter&withState=true');
    expect(list.json().entities.map((e: { id: string; state: number }) => [e.id, e.state])).toEqual([['@Counter@c1', 7]]);
    expect((await req('DELETE', '/entities/Counter/c1')).json()).toEqual({ entitiesDeleted: 0 });
    await req('POST', '/entities/Counter/c1?op=delete');
    await until('the delete', () => req('GET', '/entities/Counter/c1'), (r) => r.json().hasState === false);
    expect((await req('DELETE', '/entities/Counter/c1')).json()).toEqual({ entitiesDeleted: 1 });
    expect((await req('GET', '/entities/Counter/c1')).statusCode).toBe(404);
  });

  it('refuses unknown entities and bad requests, writing nothing', async () => {
    const unknown = await req('POST', '/entities/Nobody/k?op=add', 1);
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error).toBe('EntityNotFoundError');
    expect((await req('POST', '/entities/Counter/k', 1)).statusCode).toBe(400);
    expect((await req('POST', '/entities/Counter/bad:key?op=add', 1)).statusCode).toBe(400);
    expect((await req('GET', '/entities?pageSize=0')).statusCode).toBe(400);
    expect((await th.client.listEntities()).entities.map((e) => e.id)).not.toContain('@Nobody@k');
  });

  it('shows state, pending operations and the lock holder on the Entities page', async () => {
    const id = await th.client.startNew('Holder', { instanceId: 'holder-1' });
    await until('the lock', () => th.client.getEntity('@Counter@locked'), (m) => m?.lockedBy !== undefined);
    await th.client.signalEntity('@Counter@locked', 'add', 1);
    await until('the parked signal', () => th.client.getEntity('@Counter@locked'), (m) => m?.pendingOperations === 1);
    const page = await req('GET', '/ui/entities?name=Counter');
    expect(page.statusCode).toBe(200);
    const row = /<tr data-entity-id="@Counter@locked">([\s\S]*?)<\/tr>/.exec(page.body)?.[1] ?? '';
    expect(row).toContain('(no state)');
    expect(row).toMatch(/<td>1<\/td>/);
    expect(row).toContain('href="/ui/instances/holder-1"');
    await th.client.raiseEvent(id, 'go');
    await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    await until('the signal after the release', () => th.client.readEntityState('@Counter@locked'), (s) => s.entityState === 1);
  });
});
