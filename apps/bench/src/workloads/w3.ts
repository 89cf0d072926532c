/**
 * W3 latency: one instance of 100 sequential activities (ms per step), and 50 back-to-back runs of
 * one 4-activity chain (p50/p99 from startNew to waitForCompletion's result). Baseline: the same
 * chains of BullMQ jobs, timed from adding the first job to QueueEvents' `completed` of the last.
 */
import { BaselineChains } from '../baseline.js';
import { CHAIN, CHAIN_STEPS, SEQUENCE } from '../functions.js';
import { type Bench, type DurabullRig, errorMessage, startDurabull, withTimeout } from '../harness.js';
import { type Summary, median, ratio, summarize } from '../stats.js';

export interface LatencySide {
  /** Each run of the long sequence, ms. */
  sequenceRunsMs: number[];
  msPerStep: number;
  chain: Summary;
  errors: number;
  error?: string;
}

export interface W3Result {
  sequenceSteps: number;
  sequenceRuns: number;
  chainRuns: number;
  msPerStep: number;
  baselineMsPerStep: number;
  msPerStepRatio: number;
  chainP50Ms: number;
  chainP99Ms: number;
  baselineChainP50Ms: number;
  baselineChainP99Ms: number;
  chainP50Ratio: number;
  durabull: LatencySide;
  baseline: LatencySide;
}

const WARMUP_CHAINS = 5;

export async function runW3(b: Bench, opts: { steps: number; sequenceRuns: number; chainRuns: number; timeoutMs: number }): Promise<W3Result> {
  const durabull = await durabullSide(b, opts);
  b.log(`W3 durabull: ${durabull.msPerStep.toFixed(2)} ms/step, chain p50 ${durabull.chain.p50.toFixed(2)} ms, p99 ${durabull.chain.p99.toFixed(2)} ms`);
  const baseline = await baselineSide(b, opts);
  b.log(`W3 baseline: ${baseline.msPerStep.toFixed(2)} ms/step, chain p50 ${baseline.chain.p50.toFixed(2)} ms, p99 ${baseline.chain.p99.toFixed(2)} ms`);
  return {
    sequenceSteps: opts.steps,
    sequenceRuns: opts.sequenceRuns,
    chainRuns: opts.chainRuns,
    msPerStep: durabull.msPerStep,
    baselineMsPerStep: baseline.msPerStep,
    msPerStepRatio: ratio(durabull.msPerStep, baseline.msPerStep),
    chainP50Ms: durabull.chain.p50,
    chainP99Ms: durabull.chain.p99,
    baselineChainP50Ms: baseline.chain.p50,
    baselineChainP99Ms: baseline.chain.p99,
    chainP50Ratio: ratio(durabull.chain.p50, baseline.chain.p50),
    durabull,
    baseline,
  };
}

async function durabullSide(b: Bench, opts: { steps: number; sequenceRuns: number; chainRuns: number; timeoutMs: number }): Promise<LatencySide> {
  const rig = await startDurabull(b, b.hub('w3'));
  const side: LatencySide = { sequenceRunsMs: [], msPerStep: Number.NaN, chain: summarize([]), errors: 0 };
  try {
    // Warm-up: JIT, scripts loaded on every connection, BullMQ workers past their first fetch.
    for (let i = 0; i < WARMUP_CHAINS; i++) await runOne(rig, CHAIN, `warm${i}`, i, i + CHAIN_STEPS, opts.timeoutMs);
    await runOne(rig, SEQUENCE, 'warmseq', { steps: 10, x: 0 }, 10, opts.timeoutMs);

    b.log(`W3 durabull: ${opts.sequenceRuns} x one instance of ${opts.steps} sequential activities`);
    for (let r = 0; r < opts.sequenceRuns; r++) {
      const { ms, ok } = await runOne(rig, SEQUENCE, `seq${r}`, { steps: opts.steps, x: r }, r + opts.steps, opts.timeoutMs);
      side.sequenceRunsMs.push(ms);
      if (!ok) side.errors++;
    }
    side.msPerStep = median(side.sequenceRunsMs) / opts.steps;

    b.log(`W3 durabull: ${opts.chainRuns} back-to-back ${CHAIN_STEPS}-activity chains`);
    const lat: number[] = [];
    for (let r = 0; r < opts.chainRuns; r++) {
      const { ms, ok } = await runOne(rig, CHAIN, `chain${r}`, r, r + CHAIN_STEPS, opts.timeoutMs);
      lat.push(ms);
      if (!ok) side.errors++;
    }
    side.chain = summarize(lat);
  } catch (err) {
    side.error = errorMessage(err);
    b.log(`W3 durabull: ${side.error}`);
  } finally {
    await rig.close();
    await b.probe.deleteMatching(`dbl:{${rig.hub}:*`);
  }
  return side;
}

/** startNew -> waitForCompletion's result, ms; ok when the output is `expected`. */
async function runOne(rig: DurabullRig, name: string, id: string, input: unknown, expected: number, timeoutMs: number): Promise<{ ms: number; ok: boolean }> {
  const t0 = performance.now();
  await rig.client.startNew(name, { instanceId: id, input });
  const status = await rig.client.waitForCompletion(id, { timeoutMs });
  const ms = performance.now() - t0;
  return { ms, ok: status.runtimeStatus === 'Completed' && status.output === expected };
}

async function baselineSide(b: Bench, opts: { steps: number; sequenceRuns: number; chainRuns: number; timeoutMs: number }): Promise<LatencySide> {
  const queueName = 'w3';
  const chains = await new BaselineChains(b.url, b.baselinePrefix, queueName, b.concurrency, 'queue-events').start();
  const side: LatencySide = { sequenceRunsMs: [], msPerStep: Number.NaN, chain: summarize([]), errors: 0 };
  const one = async (c: string, v: number, n: number): Promise<{ ms: number; ok: boolean }> => {
    const t0 = performance.now();
    const finished = chains.done.waitFor([c], opts.timeoutMs, `W3 baseline chain ${c}`);
    await chains.begin(c, v, n);
    await finished;
    const ms = performance.now() - t0;
    return { ms, ok: chains.done.values.get(c) === v + n };
  };
  try {
    for (let i = 0; i < WARMUP_CHAINS; i++) await one(`warm${i}`, i, CHAIN_STEPS);
    await one('warmseq', 0, 10);

    b.log(`W3 baseline: ${opts.sequenceRuns} x one chain of ${opts.steps} jobs`);
    for (let r = 0; r < opts.sequenceRuns; r++) {
      const { ms, ok } = await one(`seq${r}`, r, opts.steps);
      side.sequenceRunsMs.push(ms);
      if (!ok) side.errors++;
    }
    side.msPerStep = median(side.sequenceRunsMs) / opts.steps;

    b.log(`W3 baseline: ${opts.chainRuns} back-to-back ${CHAIN_STEPS}-job chains`);
    const lat: number[] = [];
    for (let r = 0; r < opts.chainRuns; r++) {
      const { ms, ok } = await one(`chain${r}`, r, CHAIN_STEPS);
      lat.push(ms);
      if (!ok) side.errors++;
    }
    side.chain = summarize(lat);
  } catch (err) {
    side.error = errorMessage(err);
    b.log(`W3 baseline: ${side.error}`);
  } finally {
    await withTimeout(chains.close(), 15_000, 'closing the W3 baseline').catch(() => undefined);
    await b.probe.deleteMatching(`${b.baselinePrefix}:${queueName}:*`);
  }
  return side;
}
