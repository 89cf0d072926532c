/**
 * The cost of metrics on W1: the whole of W1 (durabull, then the plain-BullMQ baseline right after
 * it) with the worker's metrics, the charts' counters and tracing (no SDK registered, as in most
 * deployments) on, and with all three off, in interleaved pairs (off-on, on-off, ...). Each run's
 * figure is its durabull / baseline ratio, so that the machine's speed at that moment cancels out;
 * each pair compares the two ratios, and the median of the pairs is the figure.
 */
import { OrchestrationSession, Registry } from '@durabull/core';
import { HubStatsRecorder, type LoadedEpisode, type RedisBackend } from '@durabull/redis';
import { DurabullMetrics, TracingInstrumentation, type WorkerInstrumentation, combineInstrumentations, noopInstrumentation } from '@durabull/worker';
import { CHAIN, CHAIN_STEPS } from '../functions.js';
import type { Bench } from '../harness.js';
import { median } from '../stats.js';
import { runW1 } from './w1.js';

export interface W1MetricsRun {
  metrics: boolean;
  instancesPerSec: number;
  baselineInstancesPerSec: number;
  /** durabull / baseline instances/s of this run. */
  ratio: number;
  nodeCpuUsPerActivity: number;
}

export interface W1MetricsResult {
  instances: number;
  pairs: { off: W1MetricsRun; on: W1MetricsRun; ratio: number; cpuRatio: number }[];
  /** Median over the pairs of (on's ratio to its baseline) / (off's ratio to its baseline): 1 = no cost, 0.95 = 5% slower. */
  medianRatio: number;
  /** Median of on/off node CPU per activity. */
  medianCpuRatio: number;
  /**
   * CPU of the hooks themselves per chain step (one episode and one activity), µs: the worker's
   * calls into its instrumentation in a loop, with the defaults (metrics, the charts' counters,
   * tracing without an SDK) and with none. Steadier than the pairs on a busy machine.
   */
  hookUsPerStep: { defaults: number; none: number };
}

/** CPU µs per episode + activity of `instr`'s hooks, as the worker calls them (no Redis involved). */
export function hookCost(instr: WorkerInstrumentation, n = 200_000): number {
  const session = new OrchestrationSession(new Registry());
  const state = { createdAt: new Date(), name: CHAIN } as LoadedEpisode['state'];
  const loaded = { state, history: [], inbox: [] } as unknown as LoadedEpisode;
  const result = { status: 'Running' } as Parameters<ReturnType<WorkerInstrumentation['episode']>['committed']>[0];
  let us = 0;
  for (let round = 0; round < 3; round++) {
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < n; i++) {
      const e = instr.episode({ hub: 'h', instanceId: 'i', executionId: 'x', orchestrator: CHAIN, episode: 2, mode: 'resumed', startedAt: performance.now(), state, loaded, session, prefix: [{ type: 'OrchestratorStarted', timestamp: 1 }] });
      e.committed(result);
      const a = instr.activity({ hub: 'h', instanceId: 'i', executionId: 'x', taskId: 1, activity: 'Inc', attempt: 1, scheduledAt: undefined, eager: true, trace: undefined });
      a.run(() => 1);
      a.done('completed');
    }
    const d = process.cpuUsage(cpu0);
    // The first round warms the JIT up; the best of the others.
    if (round > 0) us = round === 1 ? (d.user + d.system) / n : Math.min(us, (d.user + d.system) / n);
  }
  return us;
}

const OFF = { metrics: false, statsIntervalMs: 0, tracing: false } as const;

async function once(b: Bench, tag: string, on: boolean, n: number, timeoutMs: number): Promise<W1MetricsRun> {
  const r = await runW1(b, { instances: n, timeoutMs, census: false, hub: tag, ...(on ? {} : { workerOptions: OFF }) });
  if (r.durabull.errors > 0 || r.durabull.timedOut) throw new Error(`${tag}: ${r.durabull.errors} wrong results${r.durabull.timedOut ? ', timed out' : ''}`);
  return {
    metrics: on,
    instancesPerSec: r.instancesPerSec,
    baselineInstancesPerSec: r.baselineInstancesPerSec,
    ratio: r.ratio,
    nodeCpuUsPerActivity: (r.durabull.nodeCpuMs * 1000) / r.durabull.activities,
  };
}

export async function runW1Metrics(b: Bench, opts: { instances: number; pairs: number; timeoutMs: number }): Promise<W1MetricsResult> {
  const pairs: W1MetricsResult['pairs'] = [];
  for (let k = 0; k < opts.pairs; k++) {
    const order = k % 2 === 0 ? [false, true] : [true, false];
    const runs: W1MetricsRun[] = [];
    for (const on of order) runs.push(await once(b, `w1m-${k}-${on ? 'on' : 'off'}`, on, opts.instances, opts.timeoutMs));
    const off = runs.find((r) => !r.metrics)!;
    const on = runs.find((r) => r.metrics)!;
    const pair = { off, on, ratio: on.ratio / off.ratio, cpuRatio: on.nodeCpuUsPerActivity / off.nodeCpuUsPerActivity };
    pairs.push(pair);
    b.log(
      `W1 metrics pair ${k + 1}/${opts.pairs}: off ${off.instancesPerSec.toFixed(0)}/s (${off.ratio.toFixed(3)} of its baseline, ${off.nodeCpuUsPerActivity.toFixed(0)} µs CPU/activity), ` +
        `on ${on.instancesPerSec.toFixed(0)}/s (${on.ratio.toFixed(3)}, ${on.nodeCpuUsPerActivity.toFixed(0)} µs): on / off ${pair.ratio.toFixed(3)}`,
    );
  }
  const stats = new HubStatsRecorder({ keys: { hub: 'h' } } as RedisBackend);
  const hookUsPerStep = {
    defaults: hookCost(combineInstrumentations([new DurabullMetrics().instrument('h', stats), new TracingInstrumentation('h')])),
    none: hookCost(noopInstrumentation),
  };
  b.log(`W1 metrics: the hooks cost ${hookUsPerStep.defaults.toFixed(2)} µs of CPU per chain step with the defaults, ${hookUsPerStep.none.toFixed(2)} µs with none`);
  return {
    hookUsPerStep,
    instances: opts.instances,
    pairs,
    medianRatio: median(pairs.map((p) => p.ratio)),
    medianCpuRatio: median(pairs.map((p) => p.cpuRatio)),
  };
}
