import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isPortFree } from './net.js';
import { startRedisCluster, type RedisCluster } from './redis-cluster.js';

describe('startRedisCluster', () => {
  let dataDir: string;
  let cluster: RedisCluster | undefined;
  let client: Cluster | undefined;

  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'durabull-redis-cluster-test-'));
  });

  afterEach(async () => {
    client?.disconnect();
    client = undefined;
    await cluster?.stop();
    cluster = undefined;
    await rm(dataDir, { recursive: true, force: true });
  });

  it('forms a 3-master cluster: slots split evenly, keys of every slot writable, stop() frees the ports', async () => {
    cluster = await startRedisCluster({ dataDir });
    expect(cluster.masterPorts).toHaveLength(3);
    expect(cluster.url).toBe(`redis-cluster://${cluster.masterPorts.map((p) => `127.0.0.1:${p}`).join(',')}`);
    client = new Cluster(cluster.masterPorts.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 1 } });
    const slots = (await client.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
    const ranges = slots.map(([from, to, [, port]]) => [from, to, port]).sort((a, b) => a[0]! - b[0]!);
    expect(ranges).toEqual([
      [0, 5460, cluster.masterPorts[0]],
      [5461, 10921, cluster.masterPorts[1]],
      [10922, 16383, cluster.masterPorts[2]],
    ]);
    // 30 tags spread over the three masters; each master holds some of them.
    const tags = Array.from({ length: 30 }, (_, i) => `t${i}`);
    for (const tag of tags) await client.set(`{${tag}}:k`, tag);
    for (const tag of tags) expect(await client.get(`{${tag}}:k`)).toBe(tag);
    const sizes = await Promise.all(client.nodes('master').map((n) => n.dbsize()));
    expect(sizes).toHaveLength(3);
    expect(sizes.every((n) => n > 0)).toBe(true);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(30);
    const direct = new Redis(cluster.masterPorts[0]!, '127.0.0.1', { maxRetriesPerRequest: 1 });
    expect(await direct.call('DEBUG', 'SLEEP', '0')).toBe('OK');
    direct.disconnect();
    client.disconnect();
    client = undefined;
    const ports = cluster.nodes.map((n) => n.port);
    await cluster.stop();
    cluster = undefined;
    for (const port of ports) expect(await isPortFree(port)).toBe(true);
  });

  it('a killed master is replaced by its replica, and the data written before is there', async () => {
    cluster = await startRedisCluster({ dataDir, masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000 });
    expect(cluster.nodes.filter((n) => n.role === 'replica').map((n) => n.masterPort)).toEqual(cluster.masterPorts);
    client = new Cluster(cluster.masterPorts.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: null } });
    // A key on the first master's slots (0..5460): slot of "{b}" is 3300.
    expect(await client.cluster('KEYSLOT', '{b}')).toBe(3300);
    await client.set('{b}:k', 'kept');
    const first = cluster.masterPorts[0]!;
    const replica = cluster.nodes.find((n) => n.masterPort === first)!.port;
    // WAIT covers this connection's writes, and replication is in order: the fence write reaching the replica
    // means the earlier write did too.
    const direct = new Redis(first, '127.0.0.1', { maxRetriesPerRequest: 1 });
    await direct.set('{b}:fence', '1');
    expect(await direct.wait(1, 5000)).toBe(1);
    direct.disconnect();
    await cluster.killNode(first);
    expect(await cluster.waitForPromotion(first)).toBe(replica);
    expect(await client.get('{b}:k')).toBe('kept');
    await client.set('{b}:k', 'after');
    expect(await client.get('{b}:k')).toBe('after');
  });

  it('refuses bad sizes', async () => {
    await expect(startRedisCluster({ dataDir, masters: 0 })).rejects.toThrow(/masters must be an integer >= 1/);
    await expect(startRedisCluster({ dataDir, replicasPerMaster: -1 })).rejects.toThrow(/replicasPerMaster/);
  });
});
