/**
 * W5: one Redis against a 3-master Redis Cluster. The same W1 chains (instances/s) and the W2
 * fan-out (N = 10,000) run on a redis-server and on a cluster of 3 masters (no replicas), both
 * started here with the same settings (no persistence) and stopped at the end; runs alternate
 * between the two so that other load on the machine falls on both alike. Measured per run: Redis
 * CPU per activity summed over the masters (INFO cpu of each node before and after), and the
 * commands each master processed (INFO stats total_commands_processed, less the probe's own INFO),
 * from which the busiest master's share over the mean (the spread: 1 is perfectly even, 3 is
 * everything on one of 3 masters).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RedisCluster, type RedisServer, startRedisCluster, startRedisServer } from '@durabull/testing';
import { Redis } from 'ioredis';
import { CHAIN, CHAIN_STEPS, FAN_OUT, fanOutSum } from '../functions.js';
import { type Bench, type DurabullRig, cpuMsSince, errorMessage, stallWatch, startDurabull, ticker } from '../harness.js';
import { type ClusterCapacity, clusterCapacity } from '../model.js';
import type { RunFigures } from './w1.js';
import { type RedisSnapshot, RedisProbe } from '../redis-probe.js';
import { median, perSecond } from '../stats.js';

export type W5Mode = 'single' | 'cluster';

/** What one run cost on each master (one entry on a single Redis). */
export interface NodeDelta {
  port: number;
  /** Commands the node processed (scripts' inner commands included), less the probe's INFO calls. */
  commands: number;
  cpuMs: number;
}

export interface W5Run extends RunFigures {
  mode: W5Mode;
  workload: 'w1' | 'w2';
  error?: string;
  /** Redis CPU per activity, summed over the masters, µs. */
  redisCpuUsPerActivity: number;
  /** Commands (all masters) per activity. */
  commandsPerActivity: number;
  nodes: NodeDelta[];
  /** Busiest master's commands over the mean of the masters (1 on a single Redis). */
  spread: number;
}

export interface W5Arm {
  mode: W5Mode;
  masters: number;
  /** Median of the runs. */
  w1InstancesPerSec: number;
  w1RedisCpuUsPerActivity: number;
  w1CommandsPerActivity: number;
  w1Spread: number;
  /** Commands per master of the median-spread W1 run (port -> commands). */
  w1CommandsPerMaster: Record<string, number>;
  w2Ms: number;
  w2ActivitiesPerSec: number;
  w2RedisCpuUsPerActivity: number;
  w2Spread: number;
  w2CommandsPerMaster: Record<string, number>;
  /** Worker + client CPU per W1 instance (this process), ms: the worker side of the capacity model. */
  w1NodeCpuMsPerInstance: number;
}

export interface W5Result {
  w1Instances: number;
  w2N: number;
  runs: number;
  /** The partitions of the W1 task hub on the cluster (1 before task hubs had partitions). */
  partitions: number;
  single: W5Arm;
  cluster: W5Arm;
  /**
   * Redis CPU per activity, cluster over single (W1): the median of the ratios of the pairs of runs
   * made one after the other (what other load on the machine does moves both runs of a pair alike);
   * target <= 1.3.
   */
  clusterRedisCpuRatio: number;
  /** The same as the ratio of the medians. */
  clusterRedisCpuRatioOfMedians: number;
  /** The pairs' ratios. */
  clusterRedisCpuRatioPairs: number[];
  /** The same for W2 (median of the pairs). */
  clusterRedisCpuRatioW2: number;
  /** W1 on the cluster: busiest master's share of commands over the mean; target <= 1.25. */
  masterSpread: number;
  /** The same for W2 (one instance: its keys are on one slot, so on one master whatever the partitions). */
  masterSpreadW2: number;
  /** instances/s, cluster over single (W1; on one 2-core machine the cluster cannot be faster). */
  clusterInstancesRatio: number;
  /** What 3 and 6 masters would sustain with enough worker cores, from the cluster's W1 figures. */
  model: Record<'masters3' | 'masters6', ClusterCapacity>;
  runsDetail: W5Run[];
  how: string;
}

interface Target {
  mode: W5Mode;
  url: string;
  /** Direct connections to each master (INFO per node). */
  nodes: { port: number; probe: RedisProbe }[];
  stop(): Promise<void>;
}

/** INFO calls each snapshot makes (RedisProbe.snapshot: stats, commandstats, cpu, memory). */
const INFO_PER_SNAPSHOT = 4;

async function startTargets(b: Bench): Promise<{ single: Target; cluster: Target }> {
  const dir = mkdtempSync(join(tmpdir(), 'durabull-bench-w5-'));
  const conns: Redis[] = [];
  const connect = (port: number) => {
    const r = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null });
    conns.push(r);
    return { port, probe: new RedisProbe(r) };
  };
  let server: RedisServer | undefined;
  let cluster: RedisCluster | undefined;
  try {
    server = await startRedisServer({ dataDir: join(dir, 'single') });
    cluster = await startRedisCluster({ masters: 3, dataDir: join(dir, 'cluster') });
  } catch (err) {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  b.log(`W5: redis-server on port ${server.port} (pid ${server.pid}); 3-master cluster on ports ${cluster.masterPorts.join(', ')} (pids ${cluster.nodes.map((n) => n.pid).join(', ')}); no persistence on either`);
  let stopped = false;
  const stopAll = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of conns) c.disconnect();
    await Promise.all([server!.stop(), cluster!.stop()]);
    rmSync(dir, { recursive: true, force: true });
  };
  return {
    single: { mode: 'single', url: server.url, nodes: [connect(server.port)], stop: stopAll },
    cluster: { mode: 'cluster', url: cluster.url, nodes: cluster.masterPorts.map(connect), stop: stopAll },
  };
}

async function snapshots(t: Target): Promise<RedisSnapshot[]> {
  return Promise.all(t.nodes.map((n) => n.probe.snapshot()));
}

function nodeDeltas(t: Target, before: RedisSnapshot[], after: RedisSnapshot[]): NodeDelta[] {
  return t.nodes.map((n, i) => ({
    port: n.port,
    commands: after[i]!.totalCommands - before[i]!.totalCommands - INFO_PER_SNAPSHOT,
    cpuMs: (after[i]!.cpuSec - before[i]!.cpuSec) * 1000,
  }));
}

/** Busiest node's commands over the mean of the nodes. */
export function spreadOf(commands: readonly number[]): number {
  const total = commands.reduce((a, c) => a + c, 0);
  if (commands.length === 0 || total <= 0) return Number.NaN;
  return Math.max(...commands) / (total / commands.length);
}

function runOf(
  t: Target,
  workload: 'w1' | 'w2',
  instances: number,
  activities: number,
  ms: number,
  errors: number,
  nodeCpuMs: number,
  nodes: NodeDelta[],
  error?: string,
): W5Run {
  const redisCpuMs = nodes.reduce((a, n) => a + n.cpuMs, 0);
  const commands = nodes.reduce((a, n) => a + n.commands, 0);
  return {
    mode: t.mode,
    workload,
    instances,
    activities,
    ms,
    instancesPerSec: perSecond(instances, ms),
    activitiesPerSec: perSecond(activities, ms),
    errors,
    ...(error ? { error } : {}),
    nodeCpuMs,
    redisCpuMs,
    redisCpuUsPerActivity: (redisCpuMs * 1000) / activities,
    commandsPerActivity: commands / activities,
    nodes,
    spread: spreadOf(nodes.map((n) => n.commands)),
  };
}

/** Starts `n` chains and waits for them; returns their ids. */
async function chains(rig: DurabullRig, tag: string, n: number, timeoutMs: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${tag}${i}`);
  await Promise.all(ids.map((id, i) => rig.client.startNew(CHAIN, { instanceId: id, input: i })));
  await rig.done.waitFor(ids, timeoutMs, `W5 ${tag}`);
  return ids;
}

/** Chains whose result is wrong or missing. */
async function wrongChains(rig: DurabullRig, ids: string[]): Promise<number> {
  const states = await Promise.all(ids.map((id) => rig.client.getStatus(id)));
  return states.filter((s, i) => s?.runtimeStatus !== 'Completed' || s.output !== i + CHAIN_STEPS).length;
}

async function w1Run(b: Bench, t: Target, rig: DurabullRig, rep: number, n: number, timeoutMs: number): Promise<W5Run> {
  const before = await snapshots(t);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let ids: string[] | undefined;
  let error: string | undefined;
  const progress = ticker(2000, () => b.log(`W5 W1 ${t.mode}: ${rig.worker.stats.activities} activities so far`));
  try {
    ids = await chains(rig, `r${rep}-`, n, timeoutMs);
  } catch (err) {
    error = errorMessage(err);
  } finally {
    progress();
  }
  const ms = performance.now() - t0;
  const nodeCpuMs = cpuMsSince(cpu0);
  const after = await snapshots(t);
  const errors = ids ? await wrongChains(rig, ids) : n;
  return runOf(t, 'w1', n, n * CHAIN_STEPS, ms, errors, nodeCpuMs, nodeDeltas(t, before, after), error);
}

async function w2Run(b: Bench, t: Target, rig: DurabullRig, rep: number, n: number, timeoutMs: number): Promise<W5Run> {
  const id = `fan-${rep}`;
  const before = await snapshots(t);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let errors = 1;
  let error: string | undefined;
  const watch = stallWatch(rig, { failedMs: 10_000, idleMs: 60_000 });
  const progress = ticker(2000, () => b.log(`W5 W2 ${t.mode}: ${rig.worker.stats.activities} activities so far`));
  try {
    await rig.client.startNew(FAN_OUT, { instanceId: id, input: n });
    const status = await Promise.race([rig.client.waitForCompletion<number>(id, { timeoutMs }), watch.stalled]);
    if (status.runtimeStatus === 'Completed' && status.output === fanOutSum(n)) errors = 0;
    else error = `status ${status.runtimeStatus}, output ${JSON.stringify(status.output)}`;
  } catch (err) {
    error = errorMessage(err);
  } finally {
    watch.stop();
    progress();
  }
  const ms = performance.now() - t0;
  const nodeCpuMs = cpuMsSince(cpu0);
  const after = await snapshots(t);
  // Purged outside the measurement, so that the next run starts from the same state.
  await rig.client.purge(id).catch(() => undefined);
  return runOf(t, 'w2', 1, n, ms, errors, nodeCpuMs, nodeDeltas(t, before, after), error);
}

/** The partitions of a rig's hub: a client's backend that routes over partitions opens them (`open()`); else one. */
async function partitionsOf(rig: DurabullRig): Promise<number> {
  const hub = rig.client.backend as unknown as { open?: () => Promise<unknown[]> };
  return typeof hub.open === 'function' ? (await hub.open()).length : 1;
}

/** Redis CPU per activity, cluster over single, of each pair of good runs (a single run, then its cluster run). */
function pairRatios(runs: W5Run[], workload: 'w1' | 'w2'): number[] {
  const single = runs.filter((r) => r.workload === workload && r.mode === 'single');
  const cluster = runs.filter((r) => r.workload === workload && r.mode === 'cluster');
  const out: number[] = [];
  single.forEach((s, i) => {
    const c = cluster[i];
    if (c && s.errors === 0 && c.errors === 0) out.push(c.redisCpuUsPerActivity / s.redisCpuUsPerActivity);
  });
  return out;
}

/** The run whose value is the median (the lower middle one for an even count). */
function medianRun(runs: W5Run[], f: (r: W5Run) => number): W5Run {
  const sorted = [...runs].sort((a, b) => f(a) - f(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function perMaster(r: W5Run): Record<string, number> {
  return Object.fromEntries(r.nodes.map((n) => [String(n.port), n.commands]));
}

function arm(mode: W5Mode, masters: number, runs: W5Run[]): W5Arm {
  const w1 = runs.filter((r) => r.mode === mode && r.workload === 'w1' && r.errors === 0);
  const w2 = runs.filter((r) => r.mode === mode && r.workload === 'w2' && r.errors === 0);
  const med = (xs: W5Run[], f: (r: W5Run) => number) => (xs.length ? median(xs.map(f)) : Number.NaN);
  return {
    mode,
    masters,
    w1InstancesPerSec: med(w1, (r) => r.instancesPerSec),
    w1RedisCpuUsPerActivity: med(w1, (r) => r.redisCpuUsPerActivity),
    w1CommandsPerActivity: med(w1, (r) => r.commandsPerActivity),
    w1Spread: med(w1, (r) => r.spread),
    w1CommandsPerMaster: w1.length ? perMaster(medianRun(w1, (r) => r.spread)) : {},
    w2Ms: med(w2, (r) => r.ms),
    w2ActivitiesPerSec: med(w2, (r) => r.activitiesPerSec),
    w2RedisCpuUsPerActivity: med(w2, (r) => r.redisCpuUsPerActivity),
    w2Spread: med(w2, (r) => r.spread),
    w2CommandsPerMaster: w2.length ? perMaster(medianRun(w2, (r) => r.spread)) : {},
    w1NodeCpuMsPerInstance: med(w1, (r) => r.nodeCpuMs / r.instances),
  };
}

export async function runW5(
  b: Bench,
  o: { w1Instances: number; w2N: number; runs: number; warmup: number; timeoutMs: number },
): Promise<W5Result> {
  const targets = await startTargets(b);
  const runs: W5Run[] = [];
  let partitions = 1;
  try {
    const order = [targets.single, targets.cluster];
    for (const workload of ['w1', 'w2'] as const) {
      const rigs = new Map<W5Mode, DurabullRig>();
      try {
        for (const t of order) {
          const rig = await startDurabull({ ...b, url: t.url }, b.hub(`w5-${workload}-${t.mode}`));
          rigs.set(t.mode, rig);
          if (workload === 'w1' && t.mode === 'cluster') partitions = await partitionsOf(rig);
          b.log(`W5 ${workload.toUpperCase()} ${t.mode}: warm-up (${o.warmup} chains)`);
          await chains(rig, 'warm', o.warmup, o.timeoutMs);
        }
        // Alternating runs: single, cluster, single, cluster...
        for (let rep = 0; rep < o.runs; rep++) {
          for (const t of order) {
            const rig = rigs.get(t.mode)!;
            const run = workload === 'w1' ? await w1Run(b, t, rig, rep, o.w1Instances, o.timeoutMs) : await w2Run(b, t, rig, rep, o.w2N, o.timeoutMs);
            runs.push(run);
            const cmds = run.nodes.map((n) => n.commands).join(' / ');
            b.log(
              `W5 ${workload.toUpperCase()} ${t.mode} run ${rep + 1}: ` +
                (workload === 'w1' ? `${run.instancesPerSec.toFixed(0)} instances/s` : `${run.ms.toFixed(0)} ms`) +
                `, Redis ${run.redisCpuUsPerActivity.toFixed(1)} µs CPU / activity, commands per master ${cmds} (spread ${run.spread.toFixed(2)})` +
                (run.error ? `; FAILED: ${run.error}` : run.errors ? `; ${run.errors} wrong results` : ''),
            );
          }
        }
      } finally {
        for (const rig of rigs.values()) await rig.close();
      }
    }
  } finally {
    await targets.single.stop();
  }
  const w1Pairs = pairRatios(runs, 'w1');
  const w2Pairs = pairRatios(runs, 'w2');
  const single = arm('single', 1, runs);
  const cluster = arm('cluster', 3, runs);
  const cost = { redisCpuMsPerInstance: (cluster.w1RedisCpuUsPerActivity * CHAIN_STEPS) / 1000, workerCpuMsPerInstance: cluster.w1NodeCpuMsPerInstance };
  // Everything on one master (one partition: one slot) stays on one master however many there are;
  // otherwise the spread measured on 3 masters is taken for 6 too (an assumption: it depends on how
  // the partitions' slots fall on the masters).
  const oneMaster = cluster.w1Spread >= 3 - 0.05;
  const modelFor = (masters: number): ClusterCapacity => {
    try {
      return clusterCapacity({ ...cost, spread: oneMaster ? masters : Math.min(cluster.w1Spread, masters), masters });
    } catch (err) {
      return { masters, spread: cluster.w1Spread, redisCpuMsPerInstance: cost.redisCpuMsPerInstance, instancesPerSec: Number.NaN, evenInstancesPerSec: Number.NaN, workerCoresNeeded: Number.NaN, error: errorMessage(err) };
    }
  };
  return {
    w1Instances: o.w1Instances,
    w2N: o.w2N,
    runs: o.runs,
    partitions,
    single,
    cluster,
    clusterRedisCpuRatio: w1Pairs.length ? median(w1Pairs) : Number.NaN,
    clusterRedisCpuRatioOfMedians: cluster.w1RedisCpuUsPerActivity / single.w1RedisCpuUsPerActivity,
    clusterRedisCpuRatioPairs: w1Pairs,
    clusterRedisCpuRatioW2: w2Pairs.length ? median(w2Pairs) : Number.NaN,
    masterSpread: cluster.w1Spread,
    masterSpreadW2: cluster.w2Spread,
    clusterInstancesRatio: cluster.w1InstancesPerSec / single.w1InstancesPerSec,
    model: { masters3: modelFor(3), masters6: modelFor(6) },
    runsDetail: runs,
    how:
      `W1: ${o.w1Instances} × ${CHAIN_STEPS}-activity chains; W2: one fan-out of ${o.w2N}; ${o.runs} runs of each on each side, alternating, after ${o.warmup} warm-up chains; ` +
      'medians (of the runs; the cluster / single CPU ratios: median of the pairs\' ratios). Both sides: redis-server 7 with no persistence started by the bench (the single one is not the AOF redis-server of W1–W4), ' +
      'workers and client in the bench process, everything on loopback on the same cores.',
  };
}
