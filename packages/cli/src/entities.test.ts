/**
 * `durabull entity ...` in-process against a real Redis and a hub of its own: signal, get, list,
 * purge, and the refusals (exit code 2, nothing written).
 */
import { randomBytes } from 'node:crypto';
import { DurabullClient } from '@durabull/client';
import { Registry } from '@durabull/core';
import { HubKeys, type RedisClient } from '@durabull/redis';
import { DurabullWorker } from '@durabull/worker';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from './cli.js';
import { connectRedis, deleteKeysByPattern } from '../../../test/src/helpers/redis.js';

let url: string;
let redis: RedisClient;
let hub: string;
let worker: DurabullWorker;
let client: DurabullClient;

beforeAll(async () => {
  url = inject('redisUrl') || process.env.REDIS_URL!;
  redis = connectRedis(url);
  hub = `cli-ent-${randomBytes(4).toString('hex')}`;
  const registry = new Registry().addEntity('Counter', (ctx) => {
    if (ctx.operationName === 'add') ctx.setState((ctx.getState(() => 0) as number) + ctx.getInput<number>());
    else if (ctx.operationName === 'delete') ctx.destructOnExit();
  });
  worker = await new DurabullWorker({ connection: url, hub, registry, logger: false }).start();
  client = new DurabullClient({ connection: url, hub, logger: false });
});
afterAll(async () => {
  await worker.close();
  await client.close();
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
  await redis.quit();
});

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['--redis', url, '--hub', hub, ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: false, columns: 200 },
    env: {},
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('durabull entity', () => {
  it('signals, reads, lists and purges', async () => {
    expect(await cli(['entity', 'signal', '@Counter@c1', 'add', '--input', '5'])).toMatchObject({ code: 0, stdout: "Signalled 'add' to entity '@Counter@c1'.\n" });
    await until('the state', async () => (await client.readEntityState('@Counter@c1')).entityState === 5);
    const got = await cli(['entity', 'get', '@Counter@c1']);
    expect(got.code).toBe(0);
    expect(got.stdout).toContain('state:              5');
    const listed = await cli(['--json', 'entity', 'list', '--name', 'Counter']);
    expect(JSON.parse(listed.stdout).entities.map((e: { id: string; state: number }) => [e.id, e.state])).toEqual([['@Counter@c1', 5]]);
    await cli(['entity', 'signal', '@Counter@c1', 'delete']);
    await until('the delete', async () => !(await client.readEntityState('@Counter@c1')).entityExists);
    expect(await cli(['entity', 'purge', '--all'])).toMatchObject({ code: 0, stdout: 'Deleted 1 empty entity.\n' });
    expect((await cli(['entity', 'get', '@Counter@c1'])).code).toBe(1);
  });

  it('refuses a bad entity id, unknown entities and bad options with nothing written', async () => {
    const before = await client.listEntities();
    expect(await cli(['entity', 'signal', 'Counter:c1', 'add'])).toMatchObject({ code: 2 });
    expect((await cli(['entity', 'signal', '@Counter@c1', 'add', '--input', '{bad'])).code).toBe(2);
    expect((await cli(['entity', 'signal', '@Counter@c1', 'add', '--at', 'soon'])).code).toBe(2);
    expect((await cli(['entity', 'list', '--page-size', '0'])).code).toBe(2);
    expect((await cli(['entity', 'purge'])).code).toBe(2);
    const unknown = await cli(['entity', 'signal', '@Nobody@k', 'add']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/No live worker of task hub .* runs an entity named 'Nobody'/);
    expect(await client.listEntities()).toEqual(before);
  });
});
