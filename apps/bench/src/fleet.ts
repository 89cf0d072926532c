/**
 * A fleet of worker processes on one hub or queue, measured in steady state (W4, W4L and the
 * capacity model's check): start the processes of a layout, warm each one up as much as the single
 * process of k = 1 is warmed, then time a run of n instances started at once and read, around it,
 * every process' CPU, counters (DurabullWorker.stats) and what it sent to Redis (io-counter.ts),
 * and Redis' INFO. Optionally a MONITOR census and a slow-log census of separate, untimed batches.
 *
 * Layouts: `split` (k orchestrator-only + k activity-only processes), `combined` (k processes
 * that run both kinds), `baseline` (plain-BullMQ chain workers).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { BaselineChains } from './baseline.js';
import { CHAIN, CHAIN_STEPS, SEQUENCE } from './functions.js';
import { type Bench, type CompletionTracker, cpuMsSince, errorMessage, subscribeDone, ticker, withTimeout } from './harness.js';
import type { IoCounts } from './io-counter.js';
import type { ProfileSummary } from './profiler.js';
import { type Census, RedisProbe, type ScriptNames, type SlowlogCensus, labelCounts, monitorCensus, slowlogCensus } from './redis-probe.js';
import { counterDelta, perSecond, steadyRate } from './stats.js';

export type Layout = 'split' | 'combined' | 'baseline';
export type Role = 'orchestrators' | 'activities' | 'all' | 'baseline';

/** What each instance does. */
export interface Workload {
  name: string;
  /** Activities per instance (the baseline: jobs per chain). */
  steps: number;
  orchestrator: string;
  input(i: number): unknown;
  expected(i: number): number;
}

/** W4: the 4-activity chain of W1. */
export const CHAIN4: Workload = { name: `chain of ${CHAIN_STEPS}`, steps: CHAIN_STEPS, orchestrator: CHAIN, input: (i) => i, expected: (i) => i + CHAIN_STEPS };

/** W4L: a chain of `steps` activities. */
export function longChain(steps: number): Workload {
  return { name: `chain of ${steps}`, steps, orchestrator: SEQUENCE, input: (i) => ({ steps, x: i }), expected: (i) => i + steps };
}

/** The counter that says how much a process of a role has done: what warm-up is measured in. */
const WORK_UNIT: Record<Role, string> = { orchestrators: 'episodes', activities: 'activities', all: 'activities', baseline: 'jobs' };

/** Units of WORK_UNIT one instance gives the processes of a role, all together. */
function unitsPerInstance(role: Role, w: Workload): number {
  return role === 'orchestrators' ? w.steps + 1 : w.steps;
}

// ---- processes ----

const WORKER_ENTRY = fileURLToPath(new URL('./worker-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface Proc {
  role: Role;
  child: ChildProcess;
  output: string[];
  ready: Promise<void>;
  exited: Promise<void>;
}

export interface ProcStats {
  cpuMs: number;
  rss: number;
  stats: Record<string, number>;
  io: IoCounts;
}

/** Every process this module started and has not seen exit: killed if the bench dies. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

/**
 * Starts a worker process (worker-process.ts) with `env`; on the CPUs `cpus` (a taskset list such
 * as `1`) when given. BENCH_WORKER_NODE_ARGS: extra node flags (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
 */
export function startProcess(env: Record<string, string> & { BENCH_ROLE: Role }, cpus?: string): Proc {
  const extra = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  // BENCH_WORKER_CODE=dist: the workers load durabull's compiled packages (npm run build first), as
  // an application does, instead of its TypeScript through tsx (whose keepNames adds a call per closure).
  const source = process.env.BENCH_WORKER_CODE === 'dist' ? [] : ['--conditions=source'];
  const node = [process.execPath, ...extra, '--import', 'tsx', ...source, WORKER_ENTRY];
  // taskset execs node in its own process: the pid is node's.
  const [cmd, ...args] = cpus ? ['taskset', '-c', cpus, ...node] : node;
  const child = spawn(cmd!, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  live.add(child);
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 50) output.shift();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => {
      if (m?.type === 'ready') resolve();
    });
    void exited.then(() => reject(new Error(`worker process (${env.BENCH_ROLE}) exited before it was ready:\n${output.join('')}`)));
  });
  ready.catch(() => undefined);
  return { role: env.BENCH_ROLE, child, output, ready, exited };
}

export function askStats(p: Proc): Promise<ProcStats> {
  return withTimeout(
    new Promise((resolve) => {
      const on = (m: { type?: string } & Partial<ProcStats>) => {
        if (m?.type !== 'stats') return;
        p.child.off('message', on);
        resolve({ cpuMs: m.cpuMs ?? Number.NaN, rss: m.rss ?? Number.NaN, stats: m.stats ?? {}, io: m.io ?? { commands: {}, writes: 0, bytesOut: 0 } });
      };
      p.child.on('message', on);
      p.child.send({ type: 'stats' });
    }),
    10_000,
    `stats of a ${p.role} process`,
  );
}

/** Sends `{ type }` to a process and waits for its `{ type: reply }` answer (rejects on an `error` in it). */
function ask(p: Proc, type: string, reply: string): Promise<Record<string, unknown>> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const on = (m: { type?: string; error?: string }) => {
        if (m?.type !== reply) return;
        p.child.off('message', on);
        if (m.error) reject(new Error(`${p.role} process: ${m.error}`));
        else resolve(m as Record<string, unknown>);
      };
      p.child.on('message', on);
      p.child.send({ type });
    }),
    30_000,
    `${type} of a ${p.role} process`,
  );
}

/** Profiles of the processes summed per role (top functions merged, the 15 largest kept). */
function mergeProfiles(procs: Proc[], summaries: ProfileSummary[]): { role: Role; processes: number; summary: ProfileSummary }[] {
  const out = new Map<Role, { role: Role; processes: number; summary: ProfileSummary; fns: Map<string, number> }>();
  procs.forEach((p, i) => {
    const s = summaries[i]!;
    const r = out.get(p.role) ?? { role: p.role, processes: 0, summary: { totalMs: 0, byCategory: {}, top: [] }, fns: new Map<string, number>() };
    r.processes++;
    r.summary.totalMs += s.totalMs;
    for (const [k, v] of Object.entries(s.byCategory)) r.summary.byCategory[k] = (r.summary.byCategory[k] ?? 0) + v;
    for (const [k, v] of s.top) r.fns.set(k, (r.fns.get(k) ?? 0) + v);
    out.set(p.role, r);
  });
  return [...out.values()].map(({ fns, ...r }) => ({ ...r, summary: { ...r.summary, top: [...fns.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15) } }));
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

// ---- figures ----

/** One role's processes over the timed run, summed. */
export interface RoleFigures {
  role: Role;
  processes: number;
  cpuMs: number;
  /** Counter deltas (DurabullWorker.stats and failedJobs; the baseline: jobs). */
  stats: Record<string, number>;
  /** Commands sent, by name (`script:<name>` for script calls). */
  commands: Record<string, number>;
  commandsTotal: number;
  /** Socket writes to Redis: one per command sent alone, one per pipeline or MULTI block. */
  writes: number;
  bytesOut: number;
}

export interface WarmUp {
  /** Instances run before the clock started, in `batches` batches. */
  instances: number;
  batches: number;
  ms: number;
  /** What each process had to reach, in its role's unit (episodes, activities, jobs): what the k = 1 process does with `perProcessInstances` instances. */
  perProcessInstances: number;
  /** Work units per process after warm-up, against its role's target. */
  processes: { role: Role; unit: string; done: number; target: number }[];
  /** Worker CPU per instance, ms, of each warm-up batch (flat at the end: warm). */
  workerCpuMsPerInstance: number[];
}

export interface FleetRun {
  label: string;
  layout: Layout;
  k: number;
  processes: number;
  workload: string;
  steps: number;
  instances: number;
  activities: number;
  /** Worker processes pinned to these CPUs (taskset), if any. */
  pinned?: string;
  ms: number;
  instancesPerSec: number;
  /**
   * The pace between 10% and 90% of the run's work (activities done, read from the processes every
   * 50 ms), as instances/s: the run without its ramp-up and tail.
   */
  steadyInstancesPerSec: number;
  /** Share of the run's time beyond what the steady rate needs (ramp-up and tail): 1 - instancesPerSec / steadyInstancesPerSec. */
  edgeShare: number;
  /** Instances with a wrong or missing result. */
  errors: number;
  timedOut: boolean;
  workersCpuMs: number;
  /** The bench process: the client that starts the instances and follows their completion. */
  clientCpuMs: number;
  redisCpuMs: number;
  /** Redis CPU over the run, % of one core. */
  redisCpuPct: number;
  /** How busy each CPU of the machine was over the run, % (everything on it: this fleet, Redis, the bench, other processes). */
  machineCpuBusyPct: number[];
  redis: { totalCommands: number; calls: Record<string, number>; usec: Record<string, number> };
  roles: RoleFigures[];
  perProcess: { role: Role; cpuMs: number; units: number }[];
  warmup: WarmUp;
  /** Outbox entries the processes' sweeps dispatched, over their whole life (warm-up, run, censuses). */
  sweptTotal: number;
  /** Outbox entries left once every instance had completed (durabull). */
  outboxLeft: number;
  /** Failed job attempts (BullMQ retried them), whole life. */
  failedJobsTotal: number;
  census?: { instances: number; census: Census };
  slowlog?: { instances: number; census: SlowlogCensus; redisCpuMs: number };
  /** CPU profiles of an untimed batch, summed per role: self time by library and the top functions. */
  profile?: { instances: number; byRole: { role: Role; processes: number; summary: ProfileSummary }[] };
  /**
   * BullMQ's time-driven work over the processes' whole life (from ready to the end of the
   * censuses, `ms`), all processes together: lock renewals (extendLock/extendLocks calls), stalled
   * checks (moveStalledJobsToWait calls) and blocking waits (bzpopmin).
   */
  lifetime: { ms: number; lockRenewals: number; stalledChecks: number; blockingWaits: number };
}

export interface FleetOptions {
  layout: Layout;
  /** Processes per kind (split), processes (combined), or baseline processes. */
  k: number;
  workload: Workload;
  instances: number;
  /** Warm-up: each process does what the single process of k = 1 does with this many instances. */
  warmupPerProcess: number;
  timeoutMs: number;
  names: ScriptNames;
  /** MONITOR census of this many instances, untimed (0: none). */
  census?: number;
  /** Slow-log census of this many instances, untimed (0: none; only on a Redis the bench started). */
  slowlog?: number;
  /** CPU profiles of the worker processes over an untimed batch of this many instances (0: none). */
  profile?: number;
  /** Pin the worker processes to these CPUs (taskset list). */
  cpus?: string;
  /** Hub / queue name suffix. */
  name: string;
}

/** Starts the instances of a batch and waits for them; the driver of one layout. */
interface Driver {
  tracker: CompletionTracker;
  start(ids: string[], from: number): Promise<void>;
  errors(ids: string[], from: number): Promise<number>;
  outboxLeft(): Promise<number>;
  close(): Promise<void>;
}

async function durabullDriver(b: Bench, hub: string, w: Workload): Promise<Driver> {
  const client = new DurabullClient({ connection: b.url, hub });
  const parts = await client.backend.open();
  const done = await subscribeDone(b.url, parts.map((p) => p.keys.doneChannel));
  return {
    tracker: done.tracker,
    async start(ids, from) {
      await Promise.all(ids.map((id, i) => client.startNew(w.orchestrator, { instanceId: id, input: w.input(from + i) })));
    },
    async errors(ids, from) {
      const states = await client.backend.getStates(ids);
      return states.filter((s, i) => s?.runtimeStatus !== 'Completed' || s.output !== w.expected(from + i)).length;
    },
    outboxLeft: async () => (await Promise.all(parts.map((p) => p.redis.zcard(p.keys.outboxIndex)))).reduce((a, n) => a + n, 0),
    async close() {
      await done.close();
      await client.close();
      await b.probe.deleteMatching(`dbl:{${hub}:*`);
    },
  };
}

async function baselineDriver(b: Bench, queueName: string, w: Workload): Promise<Driver> {
  const chains = await new BaselineChains(b.url, b.baselinePrefix, queueName, b.concurrency, 'publish', false).start();
  return {
    tracker: chains.done,
    async start(ids, from) {
      await Promise.all(ids.map((id, i) => chains.begin(id, from + i, w.steps)));
    },
    async errors(ids, from) {
      return ids.filter((id, i) => chains.done.values.get(id) !== from + i + w.steps).length;
    },
    outboxLeft: async () => 0,
    async close() {
      await chains.close();
      await b.probe.deleteMatching(`${b.baselinePrefix}:${queueName}:*`);
    },
  };
}

function rolesOf(layout: Layout, k: number): Role[] {
  if (layout === 'combined') return Array.from({ length: k }, () => 'all' as const);
  if (layout === 'baseline') return Array.from({ length: k }, () => 'baseline' as const);
  return Array.from({ length: k }, () => ['orchestrators', 'activities'] as const).flat();
}

/** Runs one fleet: start, warm up, time, census, stop. */
export async function fleetRun(b: Bench, o: FleetOptions): Promise<FleetRun> {
  const w = o.workload;
  const label = `${o.layout === 'baseline' ? `baseline ${o.k} processes` : `durabull ${o.layout} k=${o.k}`}, ${w.name}${o.cpus ? ` (workers on CPU ${o.cpus})` : ''}`;
  const roles = rolesOf(o.layout, o.k);
  const hub = b.hub(o.name);
  const queueName = o.name;
  const procs = roles.map((role) =>
    startProcess(
      role === 'baseline'
        ? { BENCH_REDIS_URL: b.url, BENCH_ROLE: role, BENCH_PREFIX: b.baselinePrefix, BENCH_QUEUE: queueName, BENCH_CONCURRENCY: String(b.concurrency) }
        : { BENCH_REDIS_URL: b.url, BENCH_ROLE: role, BENCH_HUB: hub, BENCH_CONCURRENCY: String(b.concurrency) },
      o.cpus,
    ),
  );
  let driver: Driver | undefined;
  try {
    driver = o.layout === 'baseline' ? await baselineDriver(b, queueName, w) : await durabullDriver(b, hub, w);
    await withTimeout(Promise.all(procs.map((p) => p.ready)), 60_000, `${label}: worker processes ready`);
    const tReady = performance.now();
    const d = driver;
    let batchNo = 0;
    const batch = async (tag: string, count: number, timeoutMs: number) => {
      const ids = Array.from({ length: count }, (_, i) => `${tag}${batchNo}-${i}`);
      batchNo++;
      await d.start(ids, 0);
      await d.tracker.waitFor(ids, timeoutMs, `${label}: ${tag} batch`);
    };

    // Warm-up per process: until every process has done what the k = 1 process does with `warmupPerProcess` instances.
    const warm: WarmUp = { instances: 0, batches: 0, ms: 0, perProcessInstances: o.warmupPerProcess, processes: [], workerCpuMsPerInstance: [] };
    const w0 = performance.now();
    const kinds = new Set(roles).size;
    const total = Math.ceil((o.warmupPerProcess * roles.length) / kinds);
    let stats = await Promise.all(procs.map(askStats));
    const targetOf = (role: Role) => o.warmupPerProcess * unitsPerInstance(role, w);
    const unitsOf = (i: number) => stats[i]!.stats[WORK_UNIT[procs[i]!.role]] ?? 0;
    // In quarters, so that the CPU per instance of the last batches shows whether the processes are warm.
    const quarter = Math.max(10, Math.ceil(total / 4));
    while (warm.batches < 12) {
      const before = stats;
      await batch('warm', quarter, 120_000);
      stats = await Promise.all(procs.map(askStats));
      warm.instances += quarter;
      warm.batches++;
      warm.workerCpuMsPerInstance.push(stats.reduce((s, x, i) => s + x.cpuMs - before[i]!.cpuMs, 0) / quarter);
      if (procs.every((p, i) => unitsOf(i) >= targetOf(p.role))) break;
    }
    warm.ms = performance.now() - w0;
    warm.processes = procs.map((p, i) => ({ role: p.role, unit: WORK_UNIT[p.role], done: unitsOf(i), target: targetOf(p.role) }));
    const short = warm.processes.filter((p) => p.done < p.target).length;
    b.log(
      `${label}: ${procs.length} processes warmed up with ${warm.instances} instances in ${warm.batches} batches (${(warm.ms / 1000).toFixed(1)} s)` +
        `${short ? `; ${short} process(es) short of the target after 12 batches` : ''}; worker CPU ms/instance by batch: ${warm.workerCpuMsPerInstance.map((x) => x.toFixed(2)).join(', ')}`,
    );

    // The timed run.
    const n = o.instances;
    const ids = Array.from({ length: n }, (_, i) => `c${i}`);
    const before = await Promise.all(procs.map(askStats));
    const redisBefore = await b.probe.snapshot();
    const cpu0 = process.cpuUsage();
    const machine0 = cpuTimes();
    let ms = Number.NaN;
    let errors = n;
    let timedOut = false;
    const t0 = performance.now();
    const progress = ticker(2000, () => b.log(`${label}: ${d.tracker.count(ids)}/${n} instances completed`));
    // The work done so far (activities; the baseline's jobs), sampled for the steady pace.
    const unit = o.layout === 'baseline' ? 'jobs' : 'activities';
    const done = (xs: ProcStats[]) => xs.reduce((sum, x) => sum + (x.stats[unit] ?? 0), 0);
    const samples: [number, number][] = [[t0, done(before)]];
    let sampling: Promise<unknown> | undefined;
    const stopSampling = ticker(50, () => {
      sampling ??= Promise.all(procs.map(askStats))
        .then((xs) => samples.push([performance.now(), done(xs)]))
        .catch(() => undefined)
        .finally(() => {
          sampling = undefined;
        });
    });
    try {
      await d.start(ids, 0);
      await d.tracker.waitFor(ids, o.timeoutMs, label);
      ms = performance.now() - t0;
    } catch (err) {
      timedOut = true;
      b.log(`${label}: ${errorMessage(err)}`);
    } finally {
      progress();
      stopSampling();
      // A stats request still under way would answer the next one with older figures.
      await sampling;
    }
    const clientCpuMs = cpuMsSince(cpu0);
    const machine1 = cpuTimes();
    const redisAfter = await b.probe.snapshot();
    const after = await Promise.all(procs.map(askStats));
    if (!timedOut) errors = await d.errors(ids, 0);
    const outboxLeft = await d.outboxLeft();
    samples.push([Number.isFinite(ms) ? t0 + ms : performance.now(), done(after)]);
    const steady = (steadyRate(samples.sort((x, y) => x[0] - y[0])) * 1000) / w.steps;
    const redis = RedisProbe.delta(redisBefore, redisAfter);
    const perProcess = procs.map((p, i) => ({
      role: p.role,
      cpuMs: after[i]!.cpuMs - before[i]!.cpuMs,
      units: (after[i]!.stats[WORK_UNIT[p.role]] ?? 0) - (before[i]!.stats[WORK_UNIT[p.role]] ?? 0),
    }));
    const run: FleetRun = {
      label,
      layout: o.layout,
      k: o.k,
      processes: procs.length,
      workload: w.name,
      steps: w.steps,
      instances: n,
      activities: n * w.steps,
      ...(o.cpus ? { pinned: o.cpus } : {}),
      ms,
      instancesPerSec: perSecond(n, ms),
      steadyInstancesPerSec: steady,
      edgeShare: 1 - perSecond(n, ms) / steady,
      errors,
      timedOut,
      workersCpuMs: perProcess.reduce((s, p) => s + p.cpuMs, 0),
      clientCpuMs,
      redisCpuMs: redis.cpuMs,
      redisCpuPct: (redis.cpuMs / redis.ms) * 100,
      machineCpuBusyPct: machine1.map((c, i) => {
        const all = c.all - machine0[i]!.all;
        return all > 0 ? ((c.busy - machine0[i]!.busy) / all) * 100 : Number.NaN;
      }),
      redis: { totalCommands: redis.totalCommands, calls: redis.calls, usec: redis.usec },
      roles: roleFigures(procs, before, after, o.names),
      perProcess,
      warmup: warm,
      sweptTotal: 0,
      outboxLeft,
      failedJobsTotal: 0,
      lifetime: { ms: 0, lockRenewals: 0, stalledChecks: 0, blockingWaits: 0 },
    };
    b.log(
      `${label}: ${run.instancesPerSec.toFixed(0)} instances/s (steady ${steady.toFixed(0)}), worker CPU ${(run.workersCpuMs / n).toFixed(2)} ms/instance, ` +
        `Redis ${(run.redisCpuMs / n).toFixed(3)} ms/instance (${run.redisCpuPct.toFixed(0)}% of a core)${errors ? `, ${errors} wrong results` : ''}`,
    );

    if (o.census && !timedOut) {
      const count = o.census;
      const census = await monitorCensus(b.url, () => o.names, () => batch('census', count, 120_000));
      run.census = { instances: count, census };
    }
    if (o.slowlog && b.ownsRedis && !timedOut) {
      const count = o.slowlog;
      const r0 = await b.probe.snapshot();
      const census = await slowlogCensus(b.admin, () => o.names, () => batch('slowlog', count, 120_000));
      const r1 = await b.probe.snapshot();
      run.slowlog = { instances: count, census, redisCpuMs: RedisProbe.delta(r0, r1).cpuMs };
    }
    if (o.profile && !timedOut) {
      const count = o.profile;
      await Promise.all(procs.map((p) => ask(p, 'profile-start', 'profile-started')));
      try {
        await batch('profile', count, 120_000);
      } finally {
        const summaries = await Promise.all(procs.map((p) => ask(p, 'profile-stop', 'profile')));
        run.profile = { instances: count, byRole: mergeProfiles(procs, summaries.map((m) => m.summary as ProfileSummary)) };
      }
    }
    const last = await Promise.all(procs.map(askStats));
    run.sweptTotal = last.reduce((s, x) => s + (x.stats.swept ?? 0), 0);
    run.failedJobsTotal = last.reduce((s, x) => s + (x.stats.failedJobs ?? 0), 0);
    const whole: Record<string, number> = {};
    for (const x of last) for (const [k, v] of Object.entries(labelCounts(x.io.commands, o.names))) whole[k] = (whole[k] ?? 0) + v;
    run.lifetime = {
      ms: performance.now() - tReady,
      lockRenewals: (whole['script:extendLock'] ?? 0) + (whole['script:extendLocks'] ?? 0),
      stalledChecks: whole['script:moveStalledJobsToWait'] ?? 0,
      blockingWaits: whole.bzpopmin ?? 0,
    };
    return run;
  } finally {
    await stopAll(procs);
    await driver?.close();
  }
}

/** Busy and total times of each CPU so far, ms (os.cpus()). */
export function cpuTimes(): { busy: number; all: number }[] {
  return cpus().map((c) => {
    const t = c.times;
    const busy = t.user + t.nice + t.sys + t.irq;
    return { busy, all: busy + t.idle };
  });
}

function roleFigures(procs: Proc[], before: ProcStats[], after: ProcStats[], names: ScriptNames): RoleFigures[] {
  const out = new Map<Role, RoleFigures>();
  procs.forEach((p, i) => {
    const a = before[i]!;
    const z = after[i]!;
    const r = out.get(p.role) ?? { role: p.role, processes: 0, cpuMs: 0, stats: {}, commands: {}, commandsTotal: 0, writes: 0, bytesOut: 0 };
    r.processes++;
    r.cpuMs += z.cpuMs - a.cpuMs;
    for (const [k, v] of Object.entries(counterDelta(a.stats, z.stats))) r.stats[k] = (r.stats[k] ?? 0) + v;
    for (const [k, v] of Object.entries(labelCounts(counterDelta(a.io.commands, z.io.commands), names))) {
      r.commands[k] = (r.commands[k] ?? 0) + v;
      r.commandsTotal += v;
    }
    r.writes += z.io.writes - a.io.writes;
    r.bytesOut += z.io.bytesOut - a.io.bytesOut;
    out.set(p.role, r);
  });
  return [...out.values()];
}
