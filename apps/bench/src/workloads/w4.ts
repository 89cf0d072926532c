/**
 * W4 scale-out: W1 (1,000 four-activity chains) with the workers in child processes: for k = 1, 2,
 * 4, k orchestrator-only + k activity-only processes (durabull) and 2k chain-worker processes
 * (baseline: the same number of processes). Then the layout we recommend for chains: k processes
 * that run both kinds, against k chain-worker processes. A fresh task hub / queue per run; the
 * processes start and connect before the clock starts. Reports instances/s and the speedup over k = 1.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { BaselineChains } from '../baseline.js';
import { CHAIN, CHAIN_STEPS } from '../functions.js';
import { type Bench, errorMessage, subscribeDone, ticker, withTimeout } from '../harness.js';
import { perSecond, ratio } from '../stats.js';

export interface ScaleRun {
  k: number;
  processes: number;
  ms: number;
  instancesPerSec: number;
  errors: number;
  timedOut: boolean;
  /** CPU of the worker processes and of redis-server during the run, ms (and % of one core). */
  workersCpuMs: number;
  redisCpuMs: number;
  redisCpuPct: number;
  /** Per process role: jobs / episodes / activities it ran. */
  perProcess: { role: string; stats: Record<string, number>; cpuMs: number }[];
}

export interface W4Result {
  instances: number;
  ks: number[];
  layout: string;
  durabull: ScaleRun[];
  baseline: ScaleRun[];
  speedup2: number;
  speedup4: number;
  baselineSpeedup2: number;
  baselineSpeedup4: number;
  instancesPerSec: Record<string, number>;
  baselineInstancesPerSec: Record<string, number>;
  /** k processes running both kinds, against k baseline processes. */
  combined: {
    durabull: ScaleRun[];
    baseline: ScaleRun[];
    speedup2: number;
    baselineSpeedup2: number;
    instancesPerSec: Record<string, number>;
    baselineInstancesPerSec: Record<string, number>;
  };
}

/** Instances run on fresh worker processes before the clock starts (JIT, scripts loaded on every connection). */
const WARMUP = 100;
const WORKER_ENTRY = fileURLToPath(new URL('../worker-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

export interface Proc {
  role: string;
  child: ChildProcess;
  output: string[];
  ready: Promise<void>;
  exited: Promise<void>;
}

/** Every process this module started and has not seen exit: killed if the bench dies. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export function startProcess(env: Record<string, string>): Proc {
  // BENCH_WORKER_NODE_ARGS: extra node flags for the worker processes (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...extra, '--import', 'tsx', '--conditions=source', WORKER_ENTRY], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  live.add(child);
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 50) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    live.delete(child);
    resolve();
  }));
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => {
      if (m?.type === 'ready') resolve();
    });
    void exited.then(() => reject(new Error(`worker process (${env.BENCH_ROLE}) exited before it was ready:\n${output.join('')}`)));
  });
  ready.catch(() => undefined);
  return { role: env.BENCH_ROLE ?? '?', child, output, ready, exited };
}

function askStats(p: Proc): Promise<{ cpuMs: number; stats: Record<string, number> }> {
  return withTimeout(
    new Promise((resolve) => {
      const on = (m: { type?: string; cpuMs?: number; stats?: Record<string, number> }) => {
        if (m?.type !== 'stats') return;
        p.child.off('message', on);
        resolve({ cpuMs: m.cpuMs ?? Number.NaN, stats: m.stats ?? {} });
      };
      p.child.on('message', on);
      p.child.send({ type: 'stats' });
    }),
    10_000,
    `stats of a ${p.role} process`,
  );
}

export async function stopAll(procs: Proc[]): Promise<void> {
  for (const p of procs) if (p.child.connected) p.child.send({ type: 'stop' });
  await Promise.all(
    procs.map(async (p) => {
      try {
        await withTimeout(p.exited, 15_000, `stopping a ${p.role} process`);
      } catch {
        p.child.kill('SIGKILL'); // only processes this bench started, by their own handle
        await p.exited;
      }
    }),
  );
}

export async function runW4(b: Bench, opts: { instances: number; ks: number[]; timeoutMs: number }): Promise<W4Result> {
  const durabull: ScaleRun[] = [];
  const baseline: ScaleRun[] = [];
  const combined: ScaleRun[] = [];
  const combinedBaseline: ScaleRun[] = [];
  for (const k of opts.ks) {
    durabull.push(await durabullRun(b, k, 'split', opts));
    baseline.push(await baselineRun(b, k, 2 * k, opts));
  }
  for (const k of opts.ks) {
    combined.push(await durabullRun(b, k, 'combined', opts));
    // The same process count was measured above (2k' = k): reuse that run rather than measure it twice.
    const same = baseline.find((r) => r.processes === k);
    combinedBaseline.push(same ? { ...same, k } : await baselineRun(b, k, k, opts));
  }
  const byK = (runs: ScaleRun[]) => Object.fromEntries(runs.map((r) => [`k${r.k}`, r.instancesPerSec]));
  const speed = (runs: ScaleRun[], k: number) => ratio(runs.find((r) => r.k === k)?.instancesPerSec, runs.find((r) => r.k === 1)?.instancesPerSec);
  return {
    instances: opts.instances,
    ks: opts.ks,
    layout: `durabull: k orchestrator-only + k activity-only processes; baseline: 2k chain-worker processes; concurrency ${b.concurrency} per BullMQ worker; ${WARMUP} instances of warm-up on fresh processes before each timed run`,
    durabull,
    baseline,
    speedup2: speed(durabull, 2),
    speedup4: speed(durabull, 4),
    baselineSpeedup2: speed(baseline, 2),
    baselineSpeedup4: speed(baseline, 4),
    instancesPerSec: byK(durabull),
    baselineInstancesPerSec: byK(baseline),
    combined: {
      durabull: combined,
      baseline: combinedBaseline,
      speedup2: speed(combined, 2),
      baselineSpeedup2: speed(combinedBaseline, 2),
      instancesPerSec: byK(combined),
      baselineInstancesPerSec: byK(combinedBaseline),
    },
  };
}

async function durabullRun(b: Bench, k: number, layout: 'split' | 'combined', opts: { instances: number; timeoutMs: number }): Promise<ScaleRun> {
  const hub = b.hub(`w4-${layout}-k${k}`);
  const common = { BENCH_REDIS_URL: b.url, BENCH_HUB: hub, BENCH_CONCURRENCY: String(b.concurrency) };
  const procs: Proc[] = [];
  for (let i = 0; i < k; i++) {
    if (layout === 'combined') {
      procs.push(startProcess({ ...common, BENCH_ROLE: 'all' }));
      continue;
    }
    procs.push(startProcess({ ...common, BENCH_ROLE: 'orchestrators' }));
    procs.push(startProcess({ ...common, BENCH_ROLE: 'activities' }));
  }
  const client = new DurabullClient({ connection: b.url, hub });
  const done = await subscribeDone(b.url, client.backend.keys.doneChannel);
  try {
    await withTimeout(Promise.all(procs.map((p) => p.ready)), 60_000, `W4 k=${k}: worker processes ready`);
    b.log(`W4 durabull ${layout} k=${k}: ${procs.length} worker processes ready; warm-up (${WARMUP} instances)`);
    const warm = Array.from({ length: WARMUP }, (_, i) => `warm${i}`);
    await Promise.all(warm.map((id, i) => client.startNew(CHAIN, { instanceId: id, input: i })));
    await done.tracker.waitFor(warm, 60_000, `W4 durabull ${layout} k=${k} warm-up`);
    const n = opts.instances;
    const ids = Array.from({ length: n }, (_, i) => `c${i}`);
    return await timed(b, `W4 durabull ${layout} k=${k}`, k, procs, n, async () => {
      const t0 = performance.now();
      const progress = ticker(1000, () => b.log(`W4 durabull ${layout} k=${k}: ${done.tracker.count(ids)}/${n} instances completed`));
      try {
        await Promise.all(ids.map((id, i) => client.startNew(CHAIN, { instanceId: id, input: i })));
        await done.tracker.waitFor(ids, opts.timeoutMs, `W4 durabull ${layout} k=${k}`);
      } finally {
        progress();
      }
      const ms = performance.now() - t0;
      const states = await client.backend.getStates(ids);
      return { ms, errors: states.filter((s, i) => s?.runtimeStatus !== 'Completed' || s.output !== i + CHAIN_STEPS).length };
    });
  } finally {
    await stopAll(procs);
    await done.close();
    await client.close();
    await b.probe.deleteMatching(`dbl:{${hub}:*`);
  }
}

async function baselineRun(b: Bench, k: number, processes: number, opts: { instances: number; timeoutMs: number }): Promise<ScaleRun> {
  const queueName = `w4p${processes}`;
  const procs: Proc[] = [];
  for (let i = 0; i < processes; i++) {
    procs.push(
      startProcess({
        BENCH_REDIS_URL: b.url,
        BENCH_ROLE: 'baseline',
        BENCH_PREFIX: b.baselinePrefix,
        BENCH_QUEUE: queueName,
        BENCH_CONCURRENCY: String(b.concurrency),
      }),
    );
  }
  const chains = await new BaselineChains(b.url, b.baselinePrefix, queueName, b.concurrency, 'publish', false).start();
  try {
    await withTimeout(Promise.all(procs.map((p) => p.ready)), 60_000, `W4 baseline ${processes} processes: worker processes ready`);
    b.log(`W4 baseline ${processes} processes: ${procs.length} worker processes ready; warm-up (${WARMUP} chains)`);
    const warm = Array.from({ length: WARMUP }, (_, i) => `warm${i}`);
    await Promise.all(warm.map((id, i) => chains.begin(id, i, CHAIN_STEPS)));
    await chains.done.waitFor(warm, 60_000, `W4 baseline ${processes} processes warm-up`);
    const n = opts.instances;
    const ids = Array.from({ length: n }, (_, i) => `c${i}`);
    return await timed(b, `W4 baseline ${processes} processes`, k, procs, n, async () => {
      const t0 = performance.now();
      const progress = ticker(1000, () => b.log(`W4 baseline ${processes} processes: ${chains.done.count(ids)}/${n} chains completed`));
      try {
        await Promise.all(ids.map((id, i) => chains.begin(id, i, CHAIN_STEPS)));
        await chains.done.waitFor(ids, opts.timeoutMs, `W4 baseline ${processes} processes`);
      } finally {
        progress();
      }
      const ms = performance.now() - t0;
      return { ms, errors: ids.filter((id, i) => chains.done.values.get(id) !== i + CHAIN_STEPS).length };
    });
  } finally {
    await stopAll(procs);
    await chains.close();
    await b.probe.deleteMatching(`${b.baselinePrefix}:${queueName}:*`);
  }
}

async function timed(
  b: Bench,
  label: string,
  k: number,
  procs: Proc[],
  n: number,
  body: () => Promise<{ ms: number; errors: number }>,
): Promise<ScaleRun> {
  const cpuBefore = await Promise.all(procs.map(askStats));
  const redisBefore = await b.probe.snapshot();
  let ms = Number.NaN;
  let errors = n;
  let timedOut = false;
  try {
    ({ ms, errors } = await body());
  } catch (err) {
    timedOut = true;
    b.log(`${label}: ${errorMessage(err)}`);
  }
  const redisAfter = await b.probe.snapshot();
  const after = await Promise.all(procs.map(askStats));
  const redisCpuMs = (redisAfter.cpuSec - redisBefore.cpuSec) * 1000;
  const perProcess = procs.map((p, i) => ({ role: p.role, stats: after[i]!.stats, cpuMs: after[i]!.cpuMs - cpuBefore[i]!.cpuMs }));
  const run: ScaleRun = {
    k,
    processes: procs.length,
    ms,
    instancesPerSec: perSecond(n, ms),
    errors,
    timedOut,
    workersCpuMs: perProcess.reduce((s, p) => s + p.cpuMs, 0),
    redisCpuMs,
    redisCpuPct: (redisCpuMs / (redisAfter.at - redisBefore.at)) * 100,
    perProcess,
  };
  b.log(`${label}: ${run.instancesPerSec.toFixed(0)} instances/s (${procs.length} processes, redis CPU ${run.redisCpuPct.toFixed(0)}% of a core)`);
  return run;
}
