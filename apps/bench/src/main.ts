/**
 * `npm run bench`: durabull against a plain-BullMQ baseline on the same Redis, workload by
 * workload (W1 chain throughput, W2 fan-out/fan-in, W3 latency, W4 scale-out over processes, W4L
 * long chains over processes, the capacity model and its check). Writes bench-results/latest.json
 * and bench-results/latest.md.
 *
 *   npm run bench [-- --only w4,w4l,model] [-- --quick]
 *
 * Environment (the flags win over it):
 *   BENCH_REDIS_URL     use this Redis (default: start a redis-server with appendonly yes,
 *                       appendfsync everysec in a temp dir, on a free port)
 *   BENCH_QUICK=1       skip W2 N=100,000 (--quick)
 *   BENCH_ONLY=w1,w3    run only these workloads (--only): w1, w2, w3, w4, w4l, model (model needs w4), w6 (entities),
 *                       w5 (W1 and W2 N=10,000 on one Redis and on a 3-master Redis Cluster, both started by the bench);
 *                       two more run only when named: w1m (the cost of metrics on W1, interleaved
 *                       pairs) and replay (durabull replay-check on 10,000 running instances)
 *   BENCH_W1M_PAIRS     pairs of w1m (default 6); BENCH_W1M_N chains per run (default 1,000)
 *   BENCH_REPLAY_N      running instances of replay (default 10,000)
 *   BENCH_CONCURRENCY   jobs at once per BullMQ worker (default 20, durabull's default)
 *   BENCH_CENSUS=0      skip the MONITOR and slow-log censuses and the CPU profiles (W1, W4)
 *   BENCH_W4_KS=1,2,4   worker-process counts of W4 and W4L
 *   BENCH_W4_INSTANCES  timed instances per W4 fleet (default 1,000)
 *   BENCH_W4_WARMUP     warm-up per process, in instances of the k = 1 process (default 2,000)
 *   BENCH_W4_PAIRS      pairs of k = 1 runs (split, then 2 baseline processes) whose medians make the k = 1 keys (default 3)
 *   BENCH_W4L_INSTANCES timed instances per W4L fleet (default 200, each a chain of 50)
 *   BENCH_W5_INSTANCES  chains per W5 W1 run (default 2,000); BENCH_W5_RUNS runs per side (default 5)
 *   BENCH_MODEL_CORES   worker cores of the capacity model's prediction (default 8; one Redis core)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RedisServer, redactUrl, startRedisServer } from '@durabull/testing';
import { Redis } from 'ioredis';
import { type Bench, errorMessage } from './harness.js';
import { RedisProbe, type ScriptNames, allScriptNames, globEscape } from './redis-probe.js';
import { type Machine, type Persistence, type Results, evaluateTargets, toJson, toMarkdown } from './report.js';
import { buildModel, checkModel } from './workloads/model.js';
import { runW1 } from './workloads/w1.js';
import { runW2 } from './workloads/w2.js';
import { runW3 } from './workloads/w3.js';
import { type K1Pair, type ScaleSet, W4L_STEPS, runK1Pairs, runW4, runW4L, w4Keys } from './workloads/w4.js';
import { runW1Metrics } from './workloads/w1-metrics.js';
import { runReplayCheck } from './workloads/replay-check.js';
import { runW6 } from './workloads/w6.js';
import { runW5 } from './workloads/w5.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const OUT_DIR = join(REPO_ROOT, 'bench-results');

const t0 = performance.now();
const log = (msg: string) => console.log(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);

const env = process.env;
const WORKLOADS = ['w1', 'w2', 'w3', 'w4', 'w4l', 'model', 'w6', 'w5'] as const;
/** Workloads that run only when named (not in the default set). */
const EXTRA_WORKLOADS = ['w1m', 'replay'] as const;

export class BenchArgumentError extends Error {
  override readonly name = 'BenchArgumentError';
}

/** The command line: `--only <list>` (or `--only=<list>`) and `--quick`; anything else is an error. */
function parseArgs(argv: string[]): { only?: string; quick?: boolean } {
  const out: { only?: string; quick?: boolean } = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') out.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a === '--only' ? argv[++i] : a.slice('--only='.length);
      if (!v) throw new BenchArgumentError('--only needs a list of workloads, e.g. --only w4,w4l');
      out.only = v;
    } else throw new BenchArgumentError(`unknown argument ${JSON.stringify(a)} (known: --only <${WORKLOADS.join(',')}>, --quick)`);
  }
  return out;
}

function intList(name: string, text: string, min: number): number[] {
  const xs = text.split(',').map((x) => Number(x.trim()));
  const bad = xs.find((x) => !Number.isInteger(x) || x < min);
  if (bad !== undefined || xs.length === 0) throw new BenchArgumentError(`${name} must be a comma-separated list of integers >= ${min}, got ${JSON.stringify(text)}`);
  return xs;
}

function intEnv(name: string, fallback: number, min: number): number {
  const v = env[name];
  return v === undefined || v === '' ? fallback : intList(name, v, min)[0]!;
}

/** Prints a bad argument's message and exits with 2 (the bench has not started anything yet). */
function orExit<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof BenchArgumentError)) throw err;
    console.error(`npm run bench: ${err.message}`);
    process.exit(2);
  }
}

const { quick, only, concurrency, partitions, W4_KS, W4_INSTANCES, W4_WARMUP, W4_PAIRS, W4L_INSTANCES, MODEL_CORES } = orExit(() => {
  const args = parseArgs(process.argv.slice(2));
  const only = new Set((args.only ?? env.BENCH_ONLY ?? WORKLOADS.join(',')).split(',').map((s) => s.trim().toLowerCase()).filter(Boolean));
  const known: readonly string[] = [...WORKLOADS, ...EXTRA_WORKLOADS];
  for (const w of only) if (!known.includes(w)) throw new BenchArgumentError(`unknown workload ${JSON.stringify(w)} (known: ${known.join(', ')})`);
  if (only.has('model') && !only.has('w4')) throw new BenchArgumentError('the capacity model is built from W4\'s figures: run it with w4 (--only w4,model)');
  return {
    quick: args.quick ?? (env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true'),
    only,
    concurrency: intEnv('BENCH_CONCURRENCY', 20, 1),
    partitions: env.BENCH_PARTITIONS ? intEnv('BENCH_PARTITIONS', 1, 1) : undefined,
    W4_KS: intList('BENCH_W4_KS', env.BENCH_W4_KS ?? '1,2,4', 1),
    W4_INSTANCES: intEnv('BENCH_W4_INSTANCES', 1000, 10),
    W4_WARMUP: intEnv('BENCH_W4_WARMUP', 2000, 1),
    W4_PAIRS: intEnv('BENCH_W4_PAIRS', 3, 1),
    W4L_INSTANCES: intEnv('BENCH_W4L_INSTANCES', 200, 10),
    MODEL_CORES: intEnv('BENCH_MODEL_CORES', 8, 1),
  };
});
const census = env.BENCH_CENSUS !== '0';
const W1_INSTANCES = 1000;
const W2_NS = quick ? [1000, 10_000] : [1000, 10_000, 100_000];
const W2_SKIPPED = quick ? [100_000] : [];
const W3 = { steps: 100, sequenceRuns: 3, chainRuns: 50 };
/** W6 entities: a hot counter, many counters, transfers under critical sections. */
const W6 = { hotSignals: 10_000, senders: 100, entities: 1000, opsEach: 10, orchestrations: 100, transfers: 5, accounts: 20 };
/** Instances of the untimed MONITOR census, slow-log census and CPU profile of each W4 fleet. */
const W4_CENSUS = census ? 200 : 0;
/** W5: W1 chains per run, the W2 fan-out, runs per side, warm-up chains per side. */
const W5 = orExit(() => ({ w1Instances: intEnv('BENCH_W5_INSTANCES', 2000, 10), w2N: 10_000, runs: intEnv('BENCH_W5_RUNS', 5, 1), warmup: 1000 }));

/** % of all CPUs busy over `ms` (from the kernel's per-CPU times): what else is running on the machine. */
async function cpuBusyPct(ms = 1000): Promise<number> {
  const total = () => cpus().reduce((a, c) => {
    const t = c.times;
    return { busy: a.busy + t.user + t.nice + t.sys + t.irq, all: a.all + t.user + t.nice + t.sys + t.irq + t.idle };
  }, { busy: 0, all: 0 });
  const a = total();
  await new Promise((r) => setTimeout(r, ms));
  const b = total();
  return b.all > a.all ? ((b.busy - a.busy) / (b.all - a.all)) * 100 : Number.NaN;
}

/** The commit measured, and whether packages/ had uncommitted changes (the runtime under test). */
function gitInfo(): { commit: string; packagesDirty: boolean } {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { commit: git('rev-parse', '--short', 'HEAD'), packagesDirty: git('status', '--porcelain', '--', 'packages') !== '' };
  } catch {
    return { commit: '?', packagesDirty: false };
  }
}

function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

async function main(): Promise<number> {
  const busyBeforeStartPct = await cpuBusyPct();
  let server: RedisServer | undefined;
  let dataDir: string | undefined;
  let url = env.BENCH_REDIS_URL;
  if (!url) {
    dataDir = mkdtempSync(join(tmpdir(), 'durabull-bench-'));
    server = await startRedisServer({ dataDir, appendonly: true, appendfsync: 'everysec' });
    url = server.url;
    log(`Started redis-server ${url} (pid ${server.pid}, data in ${dataDir})`);
  } else {
    log(`Using BENCH_REDIS_URL ${redactUrl(url)}`);
  }
  const admin = new Redis(url, { maxRetriesPerRequest: null });
  const probe = new RedisProbe(admin);
  const tag = Date.now().toString(36);
  const baselinePrefix = `dblbench-${tag}`;
  const cleanupPatterns = [`dbl:{bench-${tag}-*`, `${globEscape(baselinePrefix)}:*`];

  const cfg = async (key: string) => ((await admin.config('GET', key)) as string[])[1] ?? '?';
  const persistence: Persistence = {
    appendonly: await cfg('appendonly'),
    appendfsync: await cfg('appendfsync'),
    save: await cfg('save'),
    startedByBench: server !== undefined,
  };
  const server_ = await probe.info('server');
  const machine: Machine = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? '?',
    memGb: totalmem() / 2 ** 30,
    platform: `${platform()} ${release()}`,
    node: process.version,
    redisVersion: server_.redis_version ?? '?',
    bullmq: packageVersion('bullmq'),
    ioredis: packageVersion('ioredis'),
    loadavgStart: loadavg(),
    loadavgEnd: [],
    busyBeforeStartPct,
    ...gitInfo(),
  };
  log(`Runtime under test: commit ${machine.commit}${machine.packagesDirty ? ' with uncommitted changes in packages/' : ''}`);
  log(`Machine: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, Redis ${machine.redisVersion}, bullmq ${machine.bullmq}`);
  log(`CPU busy before the run: ${busyBeforeStartPct.toFixed(0)}% of ${machine.cpus} CPUs (load average ${machine.loadavgStart.map((x) => x.toFixed(2)).join(' ')})`);
  if (busyBeforeStartPct > 25) log('WARNING: other processes are using the CPUs: every figure below will be lower and noisier');
  log(`Redis persistence: appendonly ${persistence.appendonly}, appendfsync ${persistence.appendfsync}, save '${persistence.save}'`);
  log(`Workloads: ${[...only].join(', ')}${quick ? ' (BENCH_QUICK=1: W2 without N=100,000)' : ''}; concurrency ${concurrency} per BullMQ worker`);

  const bench: Bench = {
    url,
    tag,
    admin,
    probe,
    concurrency,
    quick,
    log,
    hub: (name) => `bench-${tag}-${name}`,
    baselinePrefix,
    ownsRedis: server !== undefined,
    ...(server ? { redisPid: server.pid } : {}),
    ...(partitions !== undefined ? { partitions } : {}),
  };
  const results: Results = {
    startedAt: new Date().toISOString(),
    totalSeconds: 0,
    quick,
    settings: {
      concurrency,
      w1Instances: W1_INSTANCES,
      w2Ns: W2_NS,
      w3: W3,
      w6: W6,
      w5: W5,
      w4Ks: W4_KS,
      w4Instances: W4_INSTANCES,
      w4WarmupPerProcess: W4_WARMUP,
      w4lInstances: W4L_INSTANCES,
      w4lSteps: W4L_STEPS,
      modelWorkerCores: MODEL_CORES,
    },
    machine,
    redis: { url: redactUrl(url), persistence },
    errors: {},
    targets: [],
    notes: [
      'Activities do no work (they return input + 1 or their input): every figure is runtime overhead.',
      `durabull workers run with logger: false; orchestrator and activity workers each at concurrency ${concurrency}; the baseline's BullMQ worker at the same concurrency.`,
      'W1/W2/W3 run the workers in the bench process; W4 and W4L run them in child processes. Redis, the workers and the bench share the same CPUs.',
    ],
  };
  let names: ScriptNames | undefined;
  const scriptNamesOnce = async () => (names ??= await allScriptNames(url, baselinePrefix));
  let scale: ScaleSet | undefined;
  let long: ScaleSet | undefined;
  let pairs: K1Pair[] = [];
  const scaleOpts = async (instances: number, warmupPerProcess: number, withCensus: boolean) => ({
    instances,
    ks: W4_KS,
    timeoutMs: 180_000,
    warmupPerProcess,
    names: await scriptNamesOnce(),
    census: withCensus ? W4_CENSUS : 0,
    slowlog: withCensus ? W4_CENSUS : 0,
    profile: withCensus ? W4_CENSUS : 0,
  });
  const setW4 = () => {
    const model = results.w4?.model;
    results.w4 = { ...w4Keys(scale, long, pairs), ...(model ? { model } : {}), ...(scale ? { scale } : {}), ...(long ? { long } : {}) };
  };

  const step = async (name: string, fn: () => Promise<void>) => {
    if (!only.has(name)) return;
    log(`== ${name.toUpperCase()}`);
    try {
      await fn();
    } catch (err) {
      results.errors[name] = errorMessage(err);
      log(`${name.toUpperCase()} failed: ${errorMessage(err)}`);
      if (err instanceof Error && err.stack) console.error(err.stack);
    }
  };

  try {
    await step('w1', async () => {
      results.w1 = await runW1(bench, { instances: W1_INSTANCES, timeoutMs: 120_000, census });
    });
    await step('w2', async () => {
      results.w2 = await runW2(bench, W2_NS, W2_SKIPPED, (n) => (n >= 100_000 ? 240_000 : 90_000));
    });
    await step('w3', async () => {
      results.w3 = await runW3(bench, { ...W3, timeoutMs: 30_000 });
    });
    await step('w4', async () => {
      const opts = await scaleOpts(W4_INSTANCES, W4_WARMUP, true);
      scale = await runW4(bench, opts);
      setW4();
      // The k = 1 keys are medians over more pairs than W4's own (BENCH_W4_PAIRS in all).
      if (W4_KS.includes(1) && W4_PAIRS > 1) {
        pairs = await runK1Pairs(bench, opts, W4_PAIRS - 1);
        setW4();
      }
    });
    await step('w4l', async () => {
      // Warm-up per process: as many activities as W4's, in 50-step chains.
      long = await runW4L(bench, await scaleOpts(W4L_INSTANCES, Math.max(1, Math.round((W4_WARMUP * 4) / W4L_STEPS)), false));
      setW4();
    });
    await step('model', async () => {
      if (!scale) throw new Error('the capacity model is built from W4, which did not complete');
      const model = buildModel(scale, MODEL_CORES, 1);
      const check = await checkModel(bench, scale, { instances: W4_INSTANCES, warmupPerProcess: W4_WARMUP, timeoutMs: 180_000, names: await scriptNamesOnce() });
      if (typeof check === 'string') model.checkSkipped = check;
      else model.check = check;
      setW4();
      results.w4!.model = model;
    });
    await step('w1m', async () => {
      results.w1Metrics = await runW1Metrics(bench, { instances: Number(env.BENCH_W1M_N ?? W1_INSTANCES), pairs: Number(env.BENCH_W1M_PAIRS ?? 6), timeoutMs: 120_000 });
    });
    await step('replay', async () => {
      results.replayCheck = await runReplayCheck(bench, { instances: Number(env.BENCH_REPLAY_N ?? 10_000), batch: 500, timeoutMs: 300_000 });
    });
    await step('w6', async () => {
      results.w6 = await runW6(bench, { ...W6, timeoutMs: 180_000 });
    });
    await step('w5', async () => {
      results.w5 = await runW5(bench, { ...W5, timeoutMs: 120_000 });
    });
  } finally {
    // Our keys only; FLUSHALL never (a redis-server the bench started is stopped and its dir removed instead).
    let left = 0;
    for (const pattern of cleanupPatterns) left += await probe.deleteMatching(pattern).catch(() => 0);
    if (left > 0) log(`Deleted ${left} leftover keys of this run`);
    await admin.quit().catch(() => undefined);
    if (server) await server.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  }

  results.totalSeconds = (performance.now() - t0) / 1000;
  machine.loadavgEnd = loadavg();
  results.targets = evaluateTargets(results);
  mkdirSync(OUT_DIR, { recursive: true });
  const md = toMarkdown(results);
  writeFileSync(join(OUT_DIR, 'latest.json'), toJson(results));
  writeFileSync(join(OUT_DIR, 'latest.md'), md);
  console.log(`\n${md}`);
  log(`Wrote ${join(OUT_DIR, 'latest.json')} and latest.md (total ${results.totalSeconds.toFixed(0)} s)`);
  return Object.keys(results.errors).length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
