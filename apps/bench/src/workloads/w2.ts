/**
 * W2 fan-out/fan-in: one instance fans out N activities (each returns its input), awaits them all
 * (ctx.all) and sums. Wall time to the sum, orchestrator episodes, peak RSS of this process (the
 * worker runs in it), Redis memory before/after, and what the instance left in Redis after
 * purge. Baseline: a FlowProducer parent with N children; the parent sums getChildrenValues().
 */
import { FlowProducer, type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { JOB_OPTS } from '../baseline.js';
import { FAN_OUT, fanOutSum } from '../functions.js';
import { type Bench, RssSampler, cpuMsSince, errorMessage, stallWatch, startDurabull, ticker, withTimeout } from '../harness.js';
import type { KeysSummary } from '../redis-probe.js';
import { ratio } from '../stats.js';

export interface FanOutRun {
  ms: number;
  ok: boolean;
  timedOut: boolean;
  error?: string;
  peakRssBytes: number;
  nodeCpuMs: number;
  redisCpuMs: number;
  redisUsedMemoryBefore: number;
  redisUsedMemoryAfter: number;
  /** Keys under the hub (durabull: after purge) or the baseline's queues (after completion). */
  leftBehind: KeysSummary;
  /** used_memory after purge (durabull) / after completion (baseline) minus before. */
  leftBehindUsedMemory: number;
}

export interface W2Point {
  n: number;
  ms: number;
  baselineMs: number;
  ratio: number;
  episodes: number;
  peakRssMb: number;
  baselinePeakRssMb: number;
  durabull: FanOutRun & { episodes: number; keysBeforePurge: number; activitiesRun: number; purgeMs: number; failedJobAttempts: number; firstFailure?: string };
  baseline: FanOutRun;
}

export type W2Result = Record<string, W2Point | { n: number; skipped: string }>;

export async function runW2(b: Bench, ns: number[], skipped: number[], timeoutFor: (n: number) => number): Promise<W2Result> {
  const out: W2Result = {};
  for (const n of ns) {
    const durabull = await durabullFanOut(b, n, timeoutFor(n));
    b.log(
      `W2 N=${n} durabull: ${durabull.ok ? `${durabull.ms.toFixed(0)} ms` : `FAILED (${durabull.error})`}, ${durabull.episodes} episodes, ` +
        `peak RSS ${(durabull.peakRssBytes / 2 ** 20).toFixed(0)} MB`,
    );
    const baseline = await baselineFanOut(b, n, timeoutFor(n));
    b.log(`W2 N=${n} baseline: ${baseline.ok ? `${baseline.ms.toFixed(0)} ms` : `FAILED (${baseline.error})`}, peak RSS ${(baseline.peakRssBytes / 2 ** 20).toFixed(0)} MB`);
    out[`n${n}`] = {
      n,
      ms: durabull.ms,
      baselineMs: baseline.ms,
      ratio: ratio(durabull.ms, baseline.ms),
      episodes: durabull.episodes,
      peakRssMb: durabull.peakRssBytes / 2 ** 20,
      baselinePeakRssMb: baseline.peakRssBytes / 2 ** 20,
      durabull,
      baseline,
    };
  }
  for (const n of skipped) out[`n${n}`] = { n, skipped: 'BENCH_QUICK=1' };
  return out;
}

async function durabullFanOut(b: Bench, n: number, timeoutMs: number): Promise<W2Point['durabull']> {
  const rig = await startDurabull(b, b.hub(`w2-n${n}`));
  const prefix = (await rig.client.backend.at(`fan-${n}`)).keys.queuePrefix;
  const id = `fan-${n}`;
  let ms = Number.NaN;
  let ok = false;
  let timedOut = false;
  let error: string | undefined;
  let episodes = Number.NaN;
  const memBefore = await b.probe.usedMemory();
  const cpuBefore = (await b.probe.snapshot()).cpuSec;
  const rss = new RssSampler().start();
  const cpu0 = process.cpuUsage();
  const progress = ticker(2000, () => b.log(`W2 N=${n} durabull: ${rig.worker.stats.activities}/${n} activities, ${rig.worker.stats.episodes} episodes`));
  const t0 = performance.now();
  const watch = stallWatch(rig, { failedMs: 10_000, idleMs: 60_000 });
  try {
    await rig.client.startNew(FAN_OUT, { instanceId: id, input: n });
    const status = await Promise.race([rig.client.waitForCompletion<number>(id, { timeoutMs }), watch.stalled]);
    ms = performance.now() - t0;
    episodes = status.episodes;
    ok = status.runtimeStatus === 'Completed' && status.output === fanOutSum(n);
    if (!ok) error = `status ${status.runtimeStatus}, output ${JSON.stringify(status.output)}, expected ${fanOutSum(n)}${status.failure ? `: ${status.failure.message}` : ''}`;
  } catch (err) {
    timedOut = true;
    error = errorMessage(err);
    b.log(`W2 N=${n} durabull: ${error}`);
  } finally {
    progress();
    watch.stop();
  }
  const peakRssBytes = rss.stop();
  const nodeCpuMs = cpuMsSince(cpu0);
  const redisCpuMs = ((await b.probe.snapshot()).cpuSec - cpuBefore) * 1000;
  const memAfter = await b.probe.usedMemory();
  const failures = rig.failures.length;
  const firstFailure = rig.failures[0]?.reason;
  const activitiesRun = rig.worker.stats.activities;
  const keysBeforePurge = (await b.probe.scan(`dbl:{${rig.hub}:*`)).length;
  let purgeMs = Number.NaN;
  if (ok) {
    const tp = performance.now();
    await rig.client.purge(id);
    purgeMs = performance.now() - tp;
  } else await rig.client.terminate(id, 'bench timeout').catch(() => undefined);
  await rig.close();
  const leftBehind = await b.probe.keysSummary(prefix, ['orchestrator', 'activity']);
  const memLeft = await b.probe.usedMemory();
  await b.probe.deleteMatching(`dbl:{${rig.hub}:*`);
  const run: W2Point['durabull'] = {
    ms,
    ok,
    timedOut,
    peakRssBytes,
    nodeCpuMs,
    redisCpuMs,
    redisUsedMemoryBefore: memBefore,
    redisUsedMemoryAfter: memAfter,
    leftBehind,
    leftBehindUsedMemory: memLeft - memBefore,
    episodes,
    keysBeforePurge,
    activitiesRun,
    purgeMs,
    failedJobAttempts: failures,
  };
  if (error) run.error = error;
  if (firstFailure) run.firstFailure = firstFailure;
  return run;
}

async function baselineFanOut(b: Bench, n: number, timeoutMs: number): Promise<FanOutRun> {
  const parentQ = `w2n${n}p`;
  const childQ = `w2n${n}c`;
  const prefix = b.baselinePrefix;
  const conn = new Redis(b.url, { maxRetriesPerRequest: null });
  const flow = new FlowProducer({ connection: conn, prefix });
  let childrenDone = 0;
  const children = new Worker(childQ, async (job: Job<{ v: number }>) => job.data.v, { connection: conn, prefix, concurrency: b.concurrency });
  children.on('completed', () => childrenDone++);
  let resolveSum!: (v: number) => void;
  const summed = new Promise<number>((resolve) => (resolveSum = resolve));
  const parent = new Worker(
    parentQ,
    async (job: Job) => {
      const values = await job.getChildrenValues<number>();
      let sum = 0;
      for (const v of Object.values(values)) sum += v;
      return sum;
    },
    { connection: conn, prefix, concurrency: b.concurrency },
  );
  parent.on('completed', (_job: Job, result: number) => resolveSum(result));
  for (const w of [children, parent]) w.on('error', (err) => console.error(`baseline W2 worker: ${err.message}`));
  await Promise.all([flow.waitUntilReady(), children.waitUntilReady(), parent.waitUntilReady()]);

  let ms = Number.NaN;
  let ok = false;
  let timedOut = false;
  let error: string | undefined;
  const memBefore = await b.probe.usedMemory();
  const cpuBefore = (await b.probe.snapshot()).cpuSec;
  const rss = new RssSampler().start();
  const cpu0 = process.cpuUsage();
  const progress = ticker(2000, () => b.log(`W2 N=${n} baseline: ${childrenDone}/${n} children completed`));
  const t0 = performance.now();
  try {
    const work = (async () => {
      await flow.add({
        name: 'sum',
        queueName: parentQ,
        data: { n },
        opts: { ...JOB_OPTS, jobId: `fan-${n}` },
        children: Array.from({ length: n }, (_, i) => ({ name: 'echo', queueName: childQ, data: { v: i }, opts: { ...JOB_OPTS, jobId: `fan-${n}-${i}` } })),
      });
      return summed;
    })();
    const sum = await withTimeout(work, timeoutMs, `W2 N=${n} baseline`);
    ms = performance.now() - t0;
    ok = sum === fanOutSum(n);
    if (!ok) error = `sum ${sum}, expected ${fanOutSum(n)}`;
  } catch (err) {
    timedOut = true;
    error = errorMessage(err);
    b.log(`W2 N=${n} baseline: ${error}`);
  } finally {
    progress();
  }
  const peakRssBytes = rss.stop();
  const nodeCpuMs = cpuMsSince(cpu0);
  const redisCpuMs = ((await b.probe.snapshot()).cpuSec - cpuBefore) * 1000;
  const memAfter = await b.probe.usedMemory();
  await Promise.all([children.close(), parent.close()]);
  await flow.close();
  await conn.quit().catch(() => undefined);
  const leftBehind = await b.probe.keysSummary(prefix, [parentQ, childQ]);
  // keysSummary(prefix) sees every baseline queue of this run: only these two exist now.
  await b.probe.deleteMatching(`${prefix}:${parentQ}:*`);
  await b.probe.deleteMatching(`${prefix}:${childQ}:*`);
  const run: FanOutRun = {
    ms,
    ok,
    timedOut,
    peakRssBytes,
    nodeCpuMs,
    redisCpuMs,
    redisUsedMemoryBefore: memBefore,
    redisUsedMemoryAfter: memAfter,
    leftBehind,
    leftBehindUsedMemory: memAfter - memBefore,
  };
  if (error) run.error = error;
  return run;
}
