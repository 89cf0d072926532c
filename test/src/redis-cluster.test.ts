/**
 * durabull on a Redis Cluster, whatever Redis the run uses: on a cluster run the run's cluster, else a 3-master
 * cluster started here. Every connection form runs orchestrations through client and worker; a hub's keys live on
 * one slot; the done and cancel channels reach subscribers connected to other nodes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OrchestrationContext, Registry, ValidationError } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import { type ConnectionLike, HubKeys, hubMetaKey, type RedisClient, clusterUrl, createRedisClient, isCluster, masterNodes, parseClusterNodes } from '@durabull/redis';
import { type RedisCluster, startRedisCluster } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeysByPattern, onCluster, redisUrl, scanAll, uniqueHub } from './helpers/redis.js';

let url: string;
let own: { cluster: RedisCluster; dir: string } | undefined;
let admin: RedisClient;
const hubs: string[] = [];

beforeAll(async () => {
  if (onCluster()) url = redisUrl();
  else {
    const dir = await mkdtemp(join(tmpdir(), 'durabull-cluster-test-'));
    own = { cluster: await startRedisCluster({ dataDir: dir }), dir };
    url = own.cluster.url;
  }
  admin = createRedisClient(url);
});

afterAll(async () => {
  for (const hub of hubs) await deleteKeysByPattern(admin, new HubKeys(hub).pattern);
  await admin?.quit();
  if (own) {
    await own.cluster.stop();
    await rm(own.dir, { recursive: true, force: true });
  }
});

const registry = () =>
  new Registry()
    .addOrchestrator('FanOut', function* (ctx: OrchestrationContext, n: number) {
      const parts: number[] = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Square', i + 1)));
      const approved: boolean = yield ctx.waitForExternalEvent('Approve');
      const child: string = yield ctx.callSubOrchestrator('Child', 'c');
      return { sum: parts.reduce((a, b) => a + b, 0), approved, child };
    })
    .addOrchestrator('Child', function* (ctx: OrchestrationContext, x: string) {
      yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 10));
      return `${x}!`;
    })
    .addOrchestrator('Waits', function* (ctx: OrchestrationContext) {
      return yield ctx.callActivity('Forever');
    })
    .addActivity('Square', async (i: number) => i * i)
    .addActivity('Forever', () => new Promise(() => {}));

/** Runs FanOut through a client and a worker on `connection` (hubs of `partitions`, default: the default count); returns the hub. */
async function runFanOut(connection: ConnectionLike, partitions?: number): Promise<string> {
  const hub = uniqueHub('cl');
  hubs.push(hub);
  const p = partitions === undefined ? {} : { partitions };
  const worker = await new DurabullWorker({ connection, hub, registry: registry(), logger: false, ...p }).start();
  const client = new DurabullClient({ connection, hub, logger: false, ...p });
  try {
    const id = await client.startNew('FanOut', { input: 20, instanceId: 'fan-1' });
    await client.raiseEvent(id, 'Approve', true);
    const done = await client.waitForCompletion(id, { timeoutMs: 30_000 });
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toEqual({ sum: 2870, approved: true, child: 'c!' });
    expect((await client.list({ name: 'FanOut' })).instances.map((i) => i.instanceId)).toEqual(['fan-1']);
    // Written to the cluster, not to some other Redis the connection fell back to.
    expect(await admin.hget(client.backend.forInstance('fan-1').keys.state('fan-1'), 'status')).toBe('Completed');
  } finally {
    await client.close();
    await worker.close();
  }
  return hub;
}

describe('durabull on a Redis Cluster', () => {
  it('runs orchestrations with each connection form: redis-cluster:// URL, { clusterNodes }, an ioredis Cluster', async () => {
    await runFanOut(url);
    const nodes = parseClusterNodes(url.slice('redis-cluster://'.length));
    await runFanOut({ clusterNodes: nodes.map((n) => `${n.host}:${n.port}`) });
    // Without maxRetriesPerRequest: null (the backend's queue connection, a duplicate, gets it).
    const cluster = new Cluster(nodes);
    try {
      await runFanOut(cluster);
      // Given as a client, it is the caller's: still open.
      expect(cluster.status).toBe('ready');
    } finally {
      await cluster.quit();
    }
    expect(clusterUrl(nodes)).toBe(url);
  });

  it('keeps every key of a one-partition hub on one slot, on one master; the partition map under a tag of its own', async () => {
    const hub = await runFanOut(url, 1);
    const meta = hubMetaKey(hub);
    const all = await scanAll(admin, new HubKeys(hub).pattern);
    expect(all).toContain(meta);
    const keys = all.filter((k) => k !== meta);
    expect(keys.length).toBeGreaterThan(5);
    const slots = new Set(await Promise.all(keys.map((k) => (admin as Cluster).cluster('KEYSLOT', k))));
    expect(slots.size).toBe(1);
    const perNode = await Promise.all((await masterNodes(admin)).map(async (n) => (await n.keys(new HubKeys(hub).pattern)).filter((k) => k !== meta).length));
    expect(perNode.filter((n) => n > 0)).toEqual([keys.length]);
  });

  it('publishes completions and cancellations cluster-wide: subscribers on every master hear them', async () => {
    const hub = uniqueHub('cl');
    hubs.push(hub);
    const keys = new HubKeys(hub);
    expect(isCluster(admin)).toBe(true);
    const heard = new Map<number, string[]>();
    const subs = (await masterNodes(admin)).map((n) => n.duplicate());
    try {
      for (const [i, s] of subs.entries()) {
        heard.set(i, []);
        s.on('message', (channel: string, msg: string) => heard.get(i)!.push(`${channel === keys.doneChannel ? 'done' : 'cancel'}:${msg}`));
        await s.subscribe(keys.doneChannel, keys.cancelChannel);
      }
      // One partition: the channels of partition 0 are the hub's.
      const worker = await new DurabullWorker({ connection: url, hub, registry: registry(), logger: false, partitions: 1 }).start();
      const client = new DurabullClient({ connection: url, hub, logger: false, partitions: 1 });
      try {
        const id = await client.startNew('Waits', { instanceId: 'w-1' });
        // Terminated once its activity is pending, so that the terminate cancels it.
        for (let i = 0; i < 200 && (await admin.scard(keys.pending(id))) === 0; i++) await new Promise((r) => setTimeout(r, 25));
        await client.terminate(id, 'stop');
        const st = await client.waitForCompletion(id, { timeoutMs: 10_000 });
        expect(st.runtimeStatus).toBe('Terminated');
      } finally {
        await client.close();
        await worker.close();
      }
      for (let i = 0; i < 200 && [...heard.values()].some((h) => h.length < 2); i++) await new Promise((r) => setTimeout(r, 25));
      for (const h of heard.values()) expect(h.sort()).toEqual(['cancel:w-1', 'done:w-1']);
    } finally {
      for (const s of subs) s.disconnect();
    }
  });

  it('refuses a bad cluster connection before connecting, naming it', () => {
    expect(() => new DurabullClient({ connection: 'redis-cluster://127.0.0.1', hub: 'x' })).toThrow(ValidationError);
    expect(() => new DurabullClient({ connection: 'redis-cluster://127.0.0.1', hub: 'x' })).toThrow(/'127.0.0.1' is not a cluster node/);
    expect(() => new DurabullWorker({ connection: { clusterNodes: [] }, hub: 'x', registry: registry() })).toThrow(/clusterNodes must be a non-empty array/);
    expect(() => new DurabullWorker({ connection: '127.0.0.1:7000', hub: 'x', registry: registry() })).toThrow(/is not a Redis URL/);
  });
});

describe('durabull through a failover', () => {
  it('an instance started before its master is killed completes on the promoted replica, with the same worker and client', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'durabull-cluster-failover-'));
    const cluster = await startRedisCluster({ dataDir: dir, masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
    const hub = uniqueHub('fo');
    const keys = new HubKeys(hub);
    // One partition, so that `keys` names the instance's keys and the fence goes to their master.
    const worker = await new DurabullWorker({ connection: cluster.url, hub, registry: registry(), logger: false, partitions: 1 }).start();
    // A second worker, closed as soon as the replica has taken over: its blocking reads were being retried across the failover.
    const leaving = await new DurabullWorker({ connection: cluster.url, hub, registry: registry(), logger: false, partitions: 1 }).start();
    const client = new DurabullClient({ connection: cluster.url, hub, logger: false, commandTimeoutMs: 30_000, partitions: 1 });
    const probe = new Cluster(cluster.masterPorts.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: null } });
    try {
      const id = await client.startNew('FanOut', { input: 5, instanceId: 'fo-1' });
      for (let i = 0; i < 400 && (await client.getStatus(id))?.runtimeStatus !== 'Running'; i++) await new Promise((r) => setTimeout(r, 25));
      // The master of the hub's slot; a fenced write, replicated, so the replica has everything written so far.
      const slot = (await probe.cluster('KEYSLOT', keys.state(id))) as number;
      const shards = (await probe.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
      const master = shards.find(([from, to]) => from <= slot && slot <= to)![2][1];
      const conn = new Redis(master, '127.0.0.1', { maxRetriesPerRequest: 1 });
      await conn.set(`dbl:{${hub}:0}:fence`, '1');
      expect(await conn.wait(1, 5000)).toBe(1);
      conn.disconnect();
      await cluster.killNode(master);
      const promoted = await cluster.waitForPromotion(master);
      expect(promoted).not.toBe(master);
      // close() returns (ioredis before 6.1 could leave a retried BZPOPMIN pending for ever: the close waited on it).
      await leaving.close();
      await client.raiseEvent(id, 'Approve', true);
      const done = await client.waitForCompletion(id, { timeoutMs: 60_000 });
      expect(done.runtimeStatus).toBe('Completed');
      expect(done.output).toEqual({ sum: 55, approved: true, child: 'c!' });
    } finally {
      probe.disconnect();
      await client.close();
      await Promise.all([worker.close(), leaving.close()]);
      await cluster.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
