/**
 * The capacity model (model.ts) from this run's W4 figures, and its check: the k = 1 fleets run
 * again with redis-server pinned to CPU 0 and the worker processes and the bench's client to CPU 1
 * (taskset), and the instances/s measured there are set against what the model predicts for one
 * worker core and one Redis core. Needs a redis-server the bench started (to pin it), taskset
 * (util-linux) and at least 2 CPUs; otherwise the check is skipped with the reason.
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { CHAIN4, type FleetRun, fleetRun } from '../fleet.js';
import type { Bench } from '../harness.js';
import { type Capacity, type PerInstanceCpu, capacity, modelError, perInstance } from '../model.js';
import type { ScriptNames } from '../redis-probe.js';
import type { ScaleSet } from './w4.js';

export type ModelLayout = 'combined' | 'split' | 'baseline';

export interface LayoutModel {
  /** What the model was fed: CPU per instance at k = 1 (the baseline: the process count of the combined layout, 1). */
  perInstance: PerInstanceCpu;
  /** The prediction for the asked cores from the k = 1 figures. */
  predicted: Capacity;
  /** The same from the figures of the largest k (more processes than cores here: contention included; for the split layout, its cache misses). */
  perInstanceKmax?: PerInstanceCpu;
  predictedKmax?: Capacity;
}

export interface CheckRun {
  layout: ModelLayout;
  /** Model: one worker core (workers + client), one Redis core, from the unpinned k = 1 figures. */
  predicted: number;
  /** The pinned run's steady pace (10–90% of its activities), and its pace over the whole run. */
  measured: number;
  measuredWhole: number;
  /** predicted / measured - 1. */
  error: number;
  /**
   * The same with the prediction scaled to the share of CPU 1 that other processes on the machine
   * left to the run (1 - their share): what remains is the model's own error (the workers not
   * CPU-bound all the time, CPU per instance that changed under pinning).
   */
  errorForCoreLeft: number;
  /** What the pinned run cost per instance (against `perInstance` of the unpinned run). */
  perInstance: PerInstanceCpu;
  /** CPU 1 over the run, % of the core: ours (workers + client) and the rest (other processes on the machine). */
  workerCoreOursPct: number;
  workerCoreOthersPct: number;
  /** CPU 0: redis-server and the rest. */
  redisCoreRedisPct: number;
  redisCoreOthersPct: number;
  run: FleetRun;
}

export interface ModelResult {
  workerCores: number;
  redisCores: number;
  basis: string;
  layouts: Partial<Record<ModelLayout, LayoutModel>>;
  /** Redis CPU per activity at k = 1, µs, and what one Redis core sustains in activities/s. */
  redisUsPerActivity: Partial<Record<ModelLayout, number>>;
  redisActivitiesPerSecPerCore: Partial<Record<ModelLayout, number>>;
  check?: {
    how: string;
    runs: CheckRun[];
    /** The largest |error| of the runs, and of their errors for the core left by other processes. */
    worstAbsError: number;
    worstAbsErrorForCoreLeft: number;
  };
  checkSkipped?: string;
}

function k1Runs(scale: ScaleSet): Record<ModelLayout, FleetRun | undefined> {
  return {
    combined: scale.combined.durabull.find((r) => r.k === 1),
    split: scale.durabull.find((r) => r.k === 1),
    baseline: scale.combined.baseline.find((r) => r.k === 1),
  };
}

function kMaxRuns(scale: ScaleSet): Record<ModelLayout, FleetRun | undefined> {
  const k = Math.max(...scale.ks);
  return {
    combined: scale.combined.durabull.find((r) => r.k === k),
    split: scale.durabull.find((r) => r.k === k),
    baseline: scale.combined.baseline.find((r) => r.k === k),
  };
}

const usable = (r: FleetRun | undefined): r is FleetRun => !!r && !r.timedOut && r.errors === 0 && r.workersCpuMs > 0 && r.redisCpuMs > 0;

/** The model for `workerCores` + `redisCores` from a W4 scale set. */
export function buildModel(scale: ScaleSet, workerCores: number, redisCores = 1): ModelResult {
  const out: ModelResult = {
    workerCores,
    redisCores,
    basis: `CPU per instance of this run's W4 fleets (${scale.instances} × ${scale.steps}-activity chains, steady state), workers and the client on the worker cores`,
    layouts: {},
    redisUsPerActivity: {},
    redisActivitiesPerSecPerCore: {},
  };
  const one = k1Runs(scale);
  const max = kMaxRuns(scale);
  for (const layout of ['combined', 'split', 'baseline'] as const) {
    const r = one[layout];
    if (!usable(r)) continue;
    const cost = perInstance(r, r.instances);
    const m: LayoutModel = { perInstance: cost, predicted: capacity(cost, workerCores, redisCores) };
    const rm = max[layout];
    if (usable(rm) && rm !== r) {
      m.perInstanceKmax = perInstance(rm, rm.instances);
      m.predictedKmax = capacity(m.perInstanceKmax, workerCores, redisCores);
    }
    out.layouts[layout] = m;
    out.redisUsPerActivity[layout] = (r.redisCpuMs * 1000) / r.activities;
    out.redisActivitiesPerSecPerCore[layout] = r.activities / (r.redisCpuMs / 1000);
  }
  return out;
}

function tasksetWorks(): string | undefined {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'taskset (util-linux) is not installed';
  }
}

/** Pins every thread of `pid` to `list` (taskset -a -p -c). */
function pin(pid: number, list: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', list, String(pid)], { stdio: 'ignore' });
}

/**
 * Runs the k = 1 fleets pinned (Redis on CPU 0; workers and the bench's client on CPU 1) and sets
 * the instances/s measured against the model's prediction for 1 + 1 cores.
 */
export async function checkModel(
  b: Bench,
  scale: ScaleSet,
  o: { instances: number; warmupPerProcess: number; timeoutMs: number; names: ScriptNames; layouts?: ModelLayout[] },
): Promise<ModelResult['check'] | string> {
  const n = cpus().length;
  if (n < 2) return `needs 2 CPUs, this machine has ${n}`;
  if (!b.ownsRedis || b.redisPid === undefined) return 'needs a redis-server the bench started (BENCH_REDIS_URL is set)';
  const missing = tasksetWorks();
  if (missing) return missing;
  const all = `0-${n - 1}`;
  const one = k1Runs(scale);
  const runs: CheckRun[] = [];
  try {
    pin(b.redisPid, '0');
    pin(process.pid, '1');
    for (const layout of o.layouts ?? (['combined', 'split', 'baseline'] as const)) {
      const base = one[layout];
      if (!usable(base)) continue;
      const cost = perInstance(base, base.instances);
      const predicted = capacity(cost, 1, 1).instancesPerSec;
      const run = await fleetRun(b, {
        layout,
        k: 1,
        workload: CHAIN4,
        instances: o.instances,
        warmupPerProcess: o.warmupPerProcess,
        timeoutMs: o.timeoutMs,
        names: o.names,
        cpus: '1',
        name: `model-${layout}`,
      });
      const ours = ((run.workersCpuMs + run.clientCpuMs) / run.ms) * 100;
      const redis = (run.redisCpuMs / run.ms) * 100;
      const measured = run.steadyInstancesPerSec;
      const others = Math.max(0, (run.machineCpuBusyPct[1] ?? Number.NaN) - ((run.workersCpuMs + run.clientCpuMs) / run.ms) * 100);
      runs.push({
        layout,
        predicted,
        measured,
        measuredWhole: run.instancesPerSec,
        error: run.timedOut || !Number.isFinite(measured) ? Number.NaN : modelError(predicted, measured),
        errorForCoreLeft: run.timedOut || !Number.isFinite(measured) || !(others < 100) ? Number.NaN : modelError(predicted * (1 - others / 100), measured),
        perInstance: perInstance(run, run.instances),
        workerCoreOursPct: ours,
        workerCoreOthersPct: others,
        redisCoreRedisPct: redis,
        redisCoreOthersPct: Math.max(0, (run.machineCpuBusyPct[0] ?? Number.NaN) - redis),
        run,
      });
      b.log(`model check, ${layout}: predicted ${predicted.toFixed(0)} instances/s for 1 worker core + 1 Redis core, measured ${measured.toFixed(0)} (error ${((predicted / measured - 1) * 100).toFixed(0)}%)`);
    }
  } finally {
    try {
      pin(b.redisPid, all);
    } catch {
      // Redis may be gone already (the bench is ending); nothing to restore then.
    }
    pin(process.pid, all);
  }
  const worstOf = (f: (r: CheckRun) => number) => (runs.length ? runs.reduce((m, r) => (Number.isFinite(f(r)) ? Math.max(m, Math.abs(f(r))) : m), 0) : Number.NaN);
  return {
    how: `redis-server on CPU 0, the worker processes and the bench's client on CPU 1 (taskset), ${o.instances} × ${CHAIN4.steps}-activity chains after the same per-process warm-up as W4; prediction for 1 worker core + 1 Redis core from the unpinned k = 1 figures of this run, against the pinned run's steady pace (its whole-run pace in brackets)`,
    runs,
    worstAbsError: worstOf((r) => r.error),
    worstAbsErrorForCoreLeft: worstOf((r) => r.errorForCoreLeft),
  };
}
