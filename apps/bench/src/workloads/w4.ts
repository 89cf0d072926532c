/**
 * W4 scale-out: W1 (1,000 four-activity chains) with the workers in child processes, for k = 1,
 * 2, 4, in two layouts: `split` (k orchestrator-only + k activity-only processes, against 2k
 * baseline chain-worker processes: the same number of processes) and `combined` (k processes that
 * run both kinds, against k baseline processes). Each fleet is warmed up per process and measured
 * in steady state (fleet.ts); a MONITOR census and a slow-log census of each fleet follow its
 * timed run. W4L: 200 instances of a 50-activity chain over the same layouts, for the replays.
 * The headline keys (`splitVsBaseline1`, ...) are computed by `w4Keys` from both.
 */
import { CHAIN4, type FleetRun, type Workload, fleetRun, longChain } from '../fleet.js';
import type { Bench } from '../harness.js';
import type { ScriptNames } from '../redis-probe.js';
import { median, ratio } from '../stats.js';

export interface ScaleSet {
  instances: number;
  steps: number;
  ks: number[];
  layout: string;
  /** Split layout, against 2k baseline processes. */
  durabull: FleetRun[];
  baseline: FleetRun[];
  speedup2: number;
  speedup4: number;
  baselineSpeedup2: number;
  baselineSpeedup4: number;
  instancesPerSec: Record<string, number>;
  baselineInstancesPerSec: Record<string, number>;
  /** k processes running both kinds, against k baseline processes. */
  combined: {
    durabull: FleetRun[];
    baseline: FleetRun[];
    speedup2: number;
    speedup4: number;
    baselineSpeedup2: number;
    baselineSpeedup4: number;
    instancesPerSec: Record<string, number>;
    baselineInstancesPerSec: Record<string, number>;
  };
}

export interface ScaleOptions {
  instances: number;
  ks: number[];
  timeoutMs: number;
  /** Warm-up, in instances of the single process of k = 1 (each process of a fleet does as much). */
  warmupPerProcess: number;
  names: ScriptNames;
  census: number;
  slowlog: number;
  /** CPU profiles of an untimed batch of this many instances per fleet (0: none). */
  profile: number;
}

/** Both layouts and their baselines over `ks`, for one workload. */
export async function runScaleSet(b: Bench, tag: string, workload: Workload, o: ScaleOptions): Promise<ScaleSet> {
  const run = (layout: FleetRun['layout'], k: number) =>
    fleetRun(b, {
      layout,
      k,
      workload,
      instances: o.instances,
      warmupPerProcess: o.warmupPerProcess,
      timeoutMs: o.timeoutMs,
      names: o.names,
      census: o.census,
      slowlog: o.slowlog,
      profile: o.profile,
      name: `${tag}-${layout}-${k}`,
    });
  const split: FleetRun[] = [];
  const baseline: FleetRun[] = [];
  const combined: FleetRun[] = [];
  const combinedBaseline: FleetRun[] = [];
  const baselineOf = async (processes: number) => baseline.find((r) => r.k === processes) ?? combinedBaseline.find((r) => r.k === processes) ?? run('baseline', processes);
  for (const k of o.ks) {
    split.push(await run('split', k));
    const bl = await baselineOf(2 * k);
    if (!baseline.includes(bl)) baseline.push(bl);
  }
  for (const k of o.ks) {
    combined.push(await run('combined', k));
    // The same process count may have been measured above (2k' = k): that run is reused.
    const bl = await baselineOf(k);
    if (!combinedBaseline.includes(bl)) combinedBaseline.push(bl);
  }
  const byK = (runs: FleetRun[], keyOf: (r: FleetRun) => number) => Object.fromEntries(runs.map((r) => [`k${keyOf(r)}`, r.instancesPerSec]));
  const at = (runs: FleetRun[], k: number) => runs.find((r) => r.k === k)?.instancesPerSec;
  const splitBase = (k: number) => at(baseline, 2 * k);
  const speed = (runs: FleetRun[], k: number) => ratio(at(runs, k), at(runs, 1));
  return {
    instances: o.instances,
    steps: workload.steps,
    ks: o.ks,
    layout:
      `durabull split: k orchestrator-only + k activity-only processes, against 2k baseline processes; combined: k processes running both kinds, against k baseline processes; ` +
      `concurrency ${b.concurrency} per BullMQ worker; each process warmed up with what the k = 1 process does with ${o.warmupPerProcess} instances`,
    durabull: split,
    baseline,
    speedup2: speed(split, 2),
    speedup4: speed(split, 4),
    baselineSpeedup2: ratio(splitBase(2), splitBase(1)),
    baselineSpeedup4: ratio(splitBase(4), splitBase(1)),
    instancesPerSec: byK(split, (r) => r.k),
    baselineInstancesPerSec: Object.fromEntries(o.ks.map((k) => [`k${k}`, splitBase(k) ?? Number.NaN])),
    combined: {
      durabull: combined,
      baseline: combinedBaseline,
      speedup2: speed(combined, 2),
      speedup4: speed(combined, 4),
      baselineSpeedup2: speed(combinedBaseline, 2),
      baselineSpeedup4: speed(combinedBaseline, 4),
      instancesPerSec: byK(combined, (r) => r.k),
      baselineInstancesPerSec: byK(combinedBaseline, (r) => r.k),
    },
  };
}

export function runW4(b: Bench, o: ScaleOptions): Promise<ScaleSet> {
  return runScaleSet(b, 'w4', CHAIN4, o);
}

/** One pair of k = 1 runs: the split layout against 2 baseline processes, one right after the other. */
export interface K1Pair {
  /** Steady instances/s, durabull over baseline; over whole runs. */
  ratio: number;
  ratioWhole: number;
  /** Worker CPU per activity, durabull over baseline. */
  cpu: number;
}

export function k1Pair(split: FleetRun | undefined, baseline: FleetRun | undefined): K1Pair {
  return {
    ratio: ratio(split?.steadyInstancesPerSec, baseline?.steadyInstancesPerSec),
    ratioWhole: ratio(split?.instancesPerSec, baseline?.instancesPerSec),
    cpu: split && baseline ? ratio(split.workersCpuMs / split.activities, baseline.workersCpuMs / baseline.activities) : Number.NaN,
  };
}

/**
 * `n` more pairs of W4's k = 1 runs (split, then 2 baseline processes, fresh fleets warmed up as in
 * W4, no census): on a shared machine one pair moves by 1.5x, so the k = 1 keys are medians over
 * W4's own pair and these (BENCH_W4_PAIRS).
 */
export async function runK1Pairs(b: Bench, o: ScaleOptions, n: number): Promise<K1Pair[]> {
  const pairs: K1Pair[] = [];
  for (let i = 0; i < n; i++) {
    const run = (layout: FleetRun['layout'], k: number) =>
      fleetRun(b, { layout, k, workload: CHAIN4, instances: o.instances, warmupPerProcess: o.warmupPerProcess, timeoutMs: o.timeoutMs, names: o.names, name: `w4p${i}-${layout}-${k}` });
    const split = await run('split', 1);
    const baseline = await run('baseline', 2);
    pairs.push(k1Pair(split, baseline));
  }
  return pairs;
}

export const W4L_STEPS = 50;

export function runW4L(b: Bench, o: ScaleOptions): Promise<ScaleSet> {
  return runScaleSet(b, 'w4l', longChain(W4L_STEPS), o);
}

/** The pace of a run: `steady` (10–90% of its work) or over the `whole` run. */
export type Pace = 'steady' | 'whole';

export function pace(r: FleetRun | undefined, p: Pace): number | undefined {
  return r && (p === 'steady' ? r.steadyInstancesPerSec : r.instancesPerSec);
}

/** Durabull vs baseline for one layout at k: instances/s ratio (split: against 2k baseline processes; combined: k). */
export function layoutRatio(set: ScaleSet, layout: 'split' | 'combined', k: number, p: Pace = 'steady'): number {
  if (layout === 'split') return ratio(pace(set.durabull.find((r) => r.k === k), p), pace(set.baseline.find((r) => r.k === 2 * k), p));
  return ratio(pace(set.combined.durabull.find((r) => r.k === k), p), pace(set.combined.baseline.find((r) => r.k === k), p));
}

/** Summed counter over the runs' orchestrator-side roles. */
function statSum(run: FleetRun, stat: string): number {
  return run.roles.reduce((s, r) => s + (r.stats[stat] ?? 0), 0);
}

/** Share of a run's episodes that replayed history, and the history events replayed per episode. */
export function replays(run: FleetRun | undefined): { share: number; eventsPerEpisode: number; episodes: number } {
  if (!run) return { share: Number.NaN, eventsPerEpisode: Number.NaN, episodes: 0 };
  const episodes = statSum(run, 'episodes');
  return { share: ratio(statSum(run, 'replayedEpisodes'), episodes), eventsPerEpisode: ratio(statSum(run, 'replayedEvents'), episodes), episodes };
}

/** The keys. Instances/s are steady paces (10–90% of each run's work); `…Whole` the same over whole runs. */
export interface W4Keys {
  /** Split layout instances/s over the baseline's (2 processes) at k = 1. */
  splitVsBaseline1: number;
  splitVsBaseline1Whole: number;
  /** Split layout worker CPU per activity over the baseline's at k = 1. */
  splitCpuVsBaseline1: number;
  /** The k = 1 pairs the two keys above are the medians of: W4's own, then runK1Pairs'. */
  pairs1: K1Pair[];
  /** (durabull / baseline at k = 4) / (the same at k = 1), the worse of the two layouts. */
  ratioHeld4: number;
  ratioHeld4ByLayout: { split: number; combined: number };
  ratioHeld4Whole: number;
  /** Share of W4L episodes at k = 4 that replayed history, the larger of the two layouts. */
  replayShare4: number;
  replayShare4ByLayout: { split: number; combined: number };
  /** History events replayed per W4L episode at k = 4 (the larger of the two layouts), and at k = 1. */
  replayedEventsPerEpisode4: number;
  replayedEventsPerEpisode1: number;
  replayedEventsPerEpisodeByLayout: { split: Record<string, number>; combined: Record<string, number> };
  /** Outbox entries that durabull's sweeps dispatched over all W4 and W4L fleets (no failures are injected: should be 0). */
  sweepPickups: number;
}

export function w4Keys(scale: ScaleSet | undefined, long: ScaleSet | undefined, morePairs: K1Pair[] = []): W4Keys {
  const s1 = scale?.durabull.find((r) => r.k === 1);
  const b1 = scale?.baseline.find((r) => r.k === 2);
  const pairs1 = [...(s1 && b1 ? [k1Pair(s1, b1)] : []), ...morePairs];
  const mid = (f: (p: K1Pair) => number) => median(pairs1.map(f).filter((x) => !Number.isNaN(x)));
  const held = (layout: 'split' | 'combined', p: Pace = 'steady') => (scale ? ratio(layoutRatio(scale, layout, 4, p), layoutRatio(scale, layout, 1, p)) : Number.NaN);
  const ratioHeld4ByLayout = { split: held('split'), combined: held('combined') };
  const longRun = (layout: 'split' | 'combined', k: number) => (layout === 'split' ? long?.durabull : long?.combined.durabull)?.find((r) => r.k === k);
  const replayShare4ByLayout = { split: replays(longRun('split', 4)).share, combined: replays(longRun('combined', 4)).share };
  const perEpisode = (layout: 'split' | 'combined') => Object.fromEntries((long?.ks ?? []).map((k) => [`k${k}`, replays(longRun(layout, k)).eventsPerEpisode]));
  const byLayout = { split: perEpisode('split'), combined: perEpisode('combined') };
  const worse = (a: number, b: number, pick: (x: number, y: number) => number) => (Number.isNaN(a) ? b : Number.isNaN(b) ? a : pick(a, b));
  const runs = [...(scale ? [...scale.durabull, ...scale.combined.durabull] : []), ...(long ? [...long.durabull, ...long.combined.durabull] : [])];
  return {
    splitVsBaseline1: mid((p) => p.ratio),
    splitVsBaseline1Whole: mid((p) => p.ratioWhole),
    splitCpuVsBaseline1: mid((p) => p.cpu),
    pairs1,
    ratioHeld4: worse(ratioHeld4ByLayout.split, ratioHeld4ByLayout.combined, Math.min),
    ratioHeld4ByLayout,
    ratioHeld4Whole: worse(held('split', 'whole'), held('combined', 'whole'), Math.min),
    replayShare4: worse(replayShare4ByLayout.split, replayShare4ByLayout.combined, Math.max),
    replayShare4ByLayout,
    replayedEventsPerEpisode4: worse(byLayout.split.k4 ?? Number.NaN, byLayout.combined.k4 ?? Number.NaN, Math.max),
    replayedEventsPerEpisode1: worse(byLayout.split.k1 ?? Number.NaN, byLayout.combined.k1 ?? Number.NaN, Math.max),
    replayedEventsPerEpisodeByLayout: byLayout,
    sweepPickups: runs.length ? runs.reduce((s, r) => s + r.sweptTotal, 0) : Number.NaN,
  };
}
