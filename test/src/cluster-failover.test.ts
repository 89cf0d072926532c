/**
 * A Redis Cluster failover under load. The test starts its own cluster (3 masters, one replica each,
 * cluster-node-timeout 1 s), whatever Redis the rest of the run uses, runs chains and fan-outs of
 * a hub of 6 partitions on two workers, SIGKILLs the master of some of its partitions while they
 * run, and waits for its replica to take over. Every instance must complete with the right result or be reported by the
 * checker (a write the old master acknowledged but had not replicated is lost with it: Redis
 * Cluster replicates asynchronously), and no history may hold an event twice.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OrchestrationContext, Registry } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import { type RedisClient, checkHub, createRedisClient } from '@durabull/redis';
import { type RedisCluster, startRedisCluster } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkHistory, diagnose } from '../faults/fault-run.js';
import { waitUntil } from './helpers/orchestration.js';
import { uniqueHub } from './helpers/redis.js';

const CHAINS = 60;
const CHAIN_STEPS = 5;
const FANOUTS = 6;
const FANOUT_SIZE = 40;
/** Partitions of the hub: spread over the 3 masters, so the failover hits some of them and not the others. */
const PARTITIONS = 6;

let cluster: RedisCluster;
let dir: string;
let admin: RedisClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durabull-failover-'));
  cluster = await startRedisCluster({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1000, dataDir: dir });
  admin = createRedisClient(cluster.url);
});

afterAll(async () => {
  admin?.disconnect();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs of each activity call, by `<instance>#<step>` (at least once: a run may repeat after the failover). */
const runs = new Map<string, number>();

const registry = () =>
  new Registry()
    .addActivity('Step', async (x: { id: string; i: number; v: number }) => {
      runs.set(`${x.id}#${x.i}`, (runs.get(`${x.id}#${x.i}`) ?? 0) + 1);
      await sleep(10);
      return x.v + 1;
    })
    .addOrchestrator('Chain', function* (ctx: OrchestrationContext, v: number): Generator<unknown, number, number> {
      for (let i = 0; i < CHAIN_STEPS; i++) v = yield ctx.callActivity<number>('Step', { id: ctx.instanceId, i, v });
      return v;
    })
    .addOrchestrator('FanOut', function* (ctx: OrchestrationContext, n: number): Generator<unknown, number, number[]> {
      const xs = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity<number>('Step', { id: ctx.instanceId, i, v: i })));
      return xs.reduce((a, b) => a + b, 0);
    });

/** The master now serving `key`'s slot. */
async function masterOf(key: string): Promise<number> {
  const slot = Number(await (admin as Cluster).cluster('KEYSLOT', key));
  const shards = (await (admin as Cluster).cluster('SLOTS')) as unknown as [number, number, [string, number]][];
  const owner = shards.find(([from, to]) => from <= slot && slot <= to);
  if (!owner) throw new Error(`no master serves slot ${slot}`);
  return owner[2][1];
}

describe('Redis Cluster failover', () => {
  it('a master SIGKILLed under load: its replica takes over, every instance completes or is reported by the checker, no event twice', async () => {
    const hub = uniqueHub('fo');
    const workers = await Promise.all(
      [0, 1].map(() => new DurabullWorker({
          connection: cluster.url,
          hub,
          partitions: PARTITIONS,
          registry: registry(),
          logger: false,
          orchestratorConcurrency: 10,
          activityConcurrency: 10,
          // A job the old master moved to active, whose reply died with it, waits for BullMQ's stalled check:
          // 2 s locks and a check every second (as in the fault suite) instead of 30 s each.
          lockDurationMs: 2000,
          stalledIntervalMs: 1000,
          sweepIntervalMs: 1000,
        }).start()),
    );
    const client = new DurabullClient({ connection: cluster.url, hub, partitions: PARTITIONS, logger: false });
    try {
      const expected = new Map<string, number>();
      for (let c = 0; c < CHAINS; c++) expected.set(`chain-${c}`, c + CHAIN_STEPS);
      for (let f = 0; f < FANOUTS; f++) expected.set(`fan-${f}`, (FANOUT_SIZE * (FANOUT_SIZE + 1)) / 2);
      const total = CHAINS * CHAIN_STEPS + FANOUTS * FANOUT_SIZE;
      for (let c = 0; c < CHAINS; c++) await client.startNew('Chain', { instanceId: `chain-${c}`, input: c });
      for (let f = 0; f < FANOUTS; f++) await client.startNew('FanOut', { instanceId: `fan-${f}`, input: FANOUT_SIZE });

      // The kill lands while work is in flight on the master it hits: instances of its partitions have not finished.
      await waitUntil('a tenth of the activities to run', () => runs.size >= total / 10, 20_000);
      // The master of chain-0's partition; the hub's other partitions on the other masters go on meanwhile.
      const victim = await masterOf((await client.backend.at('chain-0')).keys.state('chain-0'));
      const owners = await Promise.all((await client.backend.open()).map((p) => masterOf(p.keys.state('x'))));
      expect(new Set(owners).size).toBeGreaterThan(1);
      const onVictim = [...expected.keys()].filter((id) => owners[client.backend.partitionOf(id)] === victim);
      const unfinished = (await Promise.all(onVictim.map((id) => client.getStatus(id)))).filter((st) => st?.runtimeStatus !== 'Completed');
      await cluster.killNode(victim);
      expect(unfinished.length).toBeGreaterThan(0);
      expect(onVictim.length).toBeLessThan(expected.size);
      const promoted = await cluster.waitForPromotion(victim, 20_000);
      expect(promoted).not.toBe(victim);

      // Everything finishes on the promoted replica (or the checker names what was lost).
      const statuses = async () => Promise.all([...expected.keys()].map((id) => client.getStatus(id).catch(() => undefined)));
      let finished = 0;
      await waitUntil(
        'every instance to finish',
        async () => {
          await sleep(250);
          const st = await statuses();
          finished = st.filter((s) => s && (s.runtimeStatus === 'Completed' || s.runtimeStatus === 'Failed')).length;
          return finished === expected.size;
        },
        40_000,
      ).catch(() => undefined);

      const report = await checkHub(client.backend, { graceMs: 5000 });
      const reported = new Set(report.findings.map((f) => f.instanceId));
      const problems: string[] = [];
      let duplicated = 0;
      for (const [id, want] of expected) {
        const st = await client.getStatus(id, { showHistory: true });
        if (st) {
          const h = checkHistory(st.history ?? []);
          duplicated += h.duplicated;
          if (h.duplicated > 0) problems.push(`${id}: ${h.notes.join('; ')}`);
        }
        const ok = st?.runtimeStatus === 'Completed' && st.output === want;
        if (!ok && !reported.has(id)) problems.push(`${id}: ${st ? `${st.runtimeStatus} ${JSON.stringify(st.output)}` : 'gone'}, and the checker does not report it; ${await diagnose(client, id)}`);
      }
      expect(problems).toEqual([]);
      expect(duplicated).toBe(0);
      expect(report.counts['duplicate-completion'] ?? 0).toBe(0);
      expect(report.counts['duplicate-schedule'] ?? 0).toBe(0);
      // The failover lost nothing here that the sweeps could not bring back: every instance finished.
      expect(finished).toBe(expected.size);
    } finally {
      await Promise.all([client.close(), ...workers.map((w) => w.close())]);
    }
  }, 75_000);
});
