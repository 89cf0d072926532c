/**
 * W1 chain throughput: 1,000 instances of a 4-activity chain started at once; instances/s and
 * activities/s from the first start to the last completion. Baseline: 1,000 BullMQ chains where
 * each step's handler adds the next step's job. Also counts Redis commands per activity (INFO
 * deltas over the timed run, and a MONITOR census of a smaller untimed run).
 */
import type { DurabullWorkerOptions } from '@durabull/worker';
import { BaselineChains } from '../baseline.js';
import { CHAIN, CHAIN_STEPS } from '../functions.js';
import { type Bench, type DurabullRig, cpuMsSince, errorMessage, startDurabull, ticker } from '../harness.js';
import { type Census, RedisProbe, type SnapshotDelta, allScriptNames, monitorCensus } from '../redis-probe.js';
import { perSecond, ratio } from '../stats.js';

/** What one timed run of instances did and cost. */
export interface RunFigures {
  instances: number;
  activities: number;
  ms: number;
  instancesPerSec: number;
  activitiesPerSec: number;
  /** Instances whose result was wrong or missing. */
  errors: number;
  /** CPU of this process (workers + client + bench) and of Redis (on a cluster: summed over the masters) over the run, ms. */
  nodeCpuMs: number;
  redisCpuMs: number;
}

export interface ThroughputRun extends RunFigures {
  timedOut: boolean;
  redis: SnapshotDelta;
}

export interface CommandCounts {
  /** total_commands_processed delta / activity (Redis 7 counts each command a script runs too). */
  totalPerActivity: number;
  /** EVALSHA + EVAL calls / activity: each script call counts once, whatever it does inside. */
  scriptCallsPerActivity: number;
  /** Commands other than EVAL/EVALSHA / activity (sent by clients or run inside scripts). */
  otherPerActivity: number;
  /** Redis CPU per activity, microseconds. */
  redisCpuUsPerActivity: number;
  /** Calls per activity of each command (INFO commandstats), largest first. */
  byCommand: Record<string, number>;
  /** MONITOR census of a smaller run: what clients sent (one line = one command) and what scripts ran. */
  census?: CensusPerActivity;
}

export interface CensusPerActivity {
  instances: number;
  activities: number;
  sentPerActivity: number;
  inScriptsPerActivity: number;
  sent: Record<string, number>;
  inScripts: Record<string, number>;
}

export interface W1Result {
  instances: number;
  steps: number;
  concurrency: number;
  instancesPerSec: number;
  activitiesPerSec: number;
  baselineInstancesPerSec: number;
  baselineActivitiesPerSec: number;
  ratio: number;
  durabull: ThroughputRun;
  baseline: ThroughputRun;
  commands: { durabull: CommandCounts; baseline: CommandCounts };
  workerStats: Record<string, number>;
  /** Failed attempts of durabull's BullMQ jobs during W1 (retried by BullMQ; should be 0). */
  durabullFailedJobAttempts: number;
}

const WARMUP = 1000;
const CENSUS = 100;

export async function runW1(
  b: Bench,
  opts: { instances: number; timeoutMs: number; census: boolean; hub?: string; workerOptions?: Partial<DurabullWorkerOptions> },
): Promise<W1Result> {
  const n = opts.instances;
  const activities = n * CHAIN_STEPS;
  // durabull's and BullMQ's scripts by sha1, for both sides' censuses.
  const names = opts.census ? await allScriptNames(b.url, b.baselinePrefix) : undefined;

  // ---- durabull ----
  const rig = await startDurabull(b, b.hub(opts.hub ?? 'w1'), opts.workerOptions);
  let durabull: ThroughputRun;
  let dCensus: CensusPerActivity | undefined;
  let workerStats: Record<string, number> = {};
  let failedAttempts = 0;
  try {
    b.log(`W1 durabull: warm-up (${WARMUP} instances)`);
    await durabullBatch(rig, 'warm', WARMUP, 60_000);
    durabull = await measure(b, 'W1 durabull', n, async () => {
      const ids = Array.from({ length: n }, (_, i) => `c${i}`);
      const t0 = performance.now();
      const starts = ids.map((id, i) => rig.client.startNew(CHAIN, { instanceId: id, input: i }));
      const progress = ticker(1000, () => b.log(`W1 durabull: ${rig.done.count(ids)}/${n} instances completed`));
      try {
        await Promise.all(starts);
        await rig.done.waitFor(ids, opts.timeoutMs, 'W1 durabull');
      } finally {
        progress();
      }
      const ms = performance.now() - t0;
      const states = await rig.client.backend.getStates(ids);
      const errors = states.filter((s, i) => s?.runtimeStatus !== 'Completed' || s.output !== i + CHAIN_STEPS).length;
      return { ms, errors };
    });
    if (opts.census) {
      b.log(`W1 durabull: command census (MONITOR, ${CENSUS} instances, untimed)`);
      const census = await monitorCensus(b.url, () => names!, () =>
        durabullBatch(rig, 'census', CENSUS, 60_000),
      );
      dCensus = censusPerActivity(census, CENSUS, CENSUS * CHAIN_STEPS);
    }
  } finally {
    workerStats = { ...rig.worker.stats };
    failedAttempts = rig.failures.length;
    await rig.close();
    await b.probe.deleteMatching(`dbl:{${rig.hub}:*`);
  }
  b.log(`W1 durabull: ${durabull.instancesPerSec.toFixed(0)} instances/s, ${durabull.activitiesPerSec.toFixed(0)} activities/s`);

  // ---- baseline ----
  const queueName = 'w1';
  const chains = await new BaselineChains(b.url, b.baselinePrefix, queueName, b.concurrency, 'local').start();
  let baseline: ThroughputRun;
  let bCensus: CensusPerActivity | undefined;
  try {
    b.log(`W1 baseline: warm-up (${WARMUP} chains)`);
    await baselineBatch(chains, 'warm', WARMUP, 60_000);
    baseline = await measure(b, 'W1 baseline', n, async () => {
      const ids = Array.from({ length: n }, (_, i) => `c${i}`);
      const t0 = performance.now();
      const starts = ids.map((id, i) => chains.begin(id, i, CHAIN_STEPS));
      const progress = ticker(1000, () => b.log(`W1 baseline: ${chains.done.count(ids)}/${n} chains completed`));
      try {
        await Promise.all(starts);
        await chains.done.waitFor(ids, opts.timeoutMs, 'W1 baseline');
      } finally {
        progress();
      }
      const ms = performance.now() - t0;
      const errors = ids.filter((id, i) => chains.done.values.get(id) !== i + CHAIN_STEPS).length;
      return { ms, errors };
    });
    if (opts.census) {
      b.log(`W1 baseline: command census (MONITOR, ${CENSUS} chains, untimed)`);
      const census = await monitorCensus(b.url, () => names!, () => baselineBatch(chains, 'census', CENSUS, 60_000));
      bCensus = censusPerActivity(census, CENSUS, CENSUS * CHAIN_STEPS);
    }
  } finally {
    await chains.close();
    await b.probe.deleteMatching(`${b.baselinePrefix}:${queueName}:*`);
  }
  b.log(`W1 baseline: ${baseline.instancesPerSec.toFixed(0)} chains/s, ${baseline.activitiesPerSec.toFixed(0)} steps/s`);

  return {
    instances: n,
    steps: CHAIN_STEPS,
    concurrency: b.concurrency,
    instancesPerSec: durabull.instancesPerSec,
    activitiesPerSec: durabull.activitiesPerSec,
    baselineInstancesPerSec: baseline.instancesPerSec,
    baselineActivitiesPerSec: baseline.activitiesPerSec,
    ratio: ratio(durabull.instancesPerSec, baseline.instancesPerSec),
    durabull,
    baseline,
    commands: {
      durabull: commandCounts(durabull.redis, activities, dCensus),
      baseline: commandCounts(baseline.redis, activities, bCensus),
    },
    workerStats,
    durabullFailedJobAttempts: failedAttempts,
  };
}

/** Runs `body` between two Redis snapshots and CPU readings; a timeout is recorded, not thrown. */
async function measure(b: Bench, label: string, n: number, body: () => Promise<{ ms: number; errors: number }>): Promise<ThroughputRun> {
  const before = await b.probe.snapshot();
  const cpu0 = process.cpuUsage();
  let ms = Number.NaN;
  let errors = n;
  let timedOut = false;
  try {
    ({ ms, errors } = await body());
  } catch (err) {
    timedOut = true;
    b.log(`${label}: ${errorMessage(err)}`);
  }
  const nodeCpuMs = cpuMsSince(cpu0);
  const after = await b.probe.snapshot();
  const redis = RedisProbe.delta(before, after);
  if (errors > 0) b.log(`${label}: ${errors} instances with a wrong or missing result`);
  return {
    instances: n,
    activities: n * CHAIN_STEPS,
    ms,
    instancesPerSec: perSecond(n, ms),
    activitiesPerSec: perSecond(n * CHAIN_STEPS, ms),
    errors,
    timedOut,
    nodeCpuMs,
    redisCpuMs: redis.cpuMs,
    redis,
  };
}

/** Starts `count` chains on durabull and waits for them (warm-up, census). */
export async function durabullBatch(
  rig: Pick<DurabullRig, 'client' | 'done'>,
  tag: string,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const ids = Array.from({ length: count }, (_, i) => `${tag}${i}`);
  await Promise.all(ids.map((id, i) => rig.client.startNew(CHAIN, { instanceId: id, input: i })));
  await rig.done.waitFor(ids, timeoutMs, `${tag} batch`);
}

async function baselineBatch(chains: BaselineChains, tag: string, count: number, timeoutMs: number): Promise<void> {
  const ids = Array.from({ length: count }, (_, i) => `${tag}${i}`);
  await Promise.all(ids.map((id, i) => chains.begin(id, i, CHAIN_STEPS)));
  await chains.done.waitFor(ids, timeoutMs, `${tag} batch`);
}

function censusPerActivity(c: Census, instances: number, activities: number): CensusPerActivity {
  const per = (r: Record<string, number>) =>
    Object.fromEntries(
      Object.entries(r)
        .sort((x, y) => y[1] - x[1])
        .map(([k, v]) => [k, v / activities]),
    );
  return {
    instances,
    activities,
    sentPerActivity: c.topLevelTotal / activities,
    inScriptsPerActivity: c.inScriptsTotal / activities,
    sent: per(c.topLevel),
    inScripts: per(c.inScripts),
  };
}

function commandCounts(d: SnapshotDelta, activities: number, census: CensusPerActivity | undefined): CommandCounts {
  const scripts = (d.calls.evalsha ?? 0) + (d.calls.eval ?? 0);
  const byCommand = Object.fromEntries(
    Object.entries(d.calls)
      .filter(([k]) => k !== 'info')
      .sort((x, y) => y[1] - x[1])
      .map(([k, v]) => [k, v / activities]),
  );
  const out: CommandCounts = {
    totalPerActivity: d.totalCommands / activities,
    scriptCallsPerActivity: scripts / activities,
    otherPerActivity: (d.totalCommands - scripts) / activities,
    redisCpuUsPerActivity: (d.cpuMs * 1000) / activities,
    byCommand,
  };
  if (census) out.census = census;
  return out;
}
