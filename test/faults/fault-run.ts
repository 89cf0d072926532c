/**
 * The fault-injection run ("nothing lost, nothing duplicated"): one call of {@link runFaults} starts its own
 * `redis-server` (append-only file on, `appendfsync` as asked, its own temporary data directory and free port),
 * several worker processes (test/src/fixtures/worker-process.ts: orchestrators + activities, every other one with
 * eager activities, and activities only; locks of 2 s, stalled check every 1 s, sweep every 1 s; the activities'
 * side effects counted in a second Redis that is never restarted), starts chaining and fan-out instances, and while they
 * run SIGKILLs random worker processes at random moments (a replacement is started at once) and kills and restarts
 * its Redis (same port, same data directory; the workers reconnect on their own).
 *
 * Then it waits for every instance to finish and checks:
 * - every instance Completed with the right output;
 * - `checkHub` (@durabull/redis) finds nothing;
 * - every activity's side effect was counted at least once (and counts those that ran more than once);
 * - no history has a duplicated event: each task id scheduled once and finished at most once, and every
 *   scheduled task finished.
 *
 * It returns the figures; it throws only on setup failures. The caller decides what must hold
 * (test/src/faults.test.ts, the short form; test/faults/main.ts, the long form: `npm run test:faults`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync, truncateSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DurabullClient, InstanceAlreadyExistsError, RedisUnavailableError } from '@durabull/client';
import type { HistoryEvent } from '@durabull/core';
import { type HubReport, checkHub, checkInstance } from '@durabull/redis';
import { type AppendFsync, type RedisServer, startRedisServer } from '@durabull/testing';
import { Redis } from 'ioredis';
import {
  CHAIN_STEPS,
  CHAINING,
  FAN_OUT,
  type FanOutInput,
  type WorkerKind,
  expectedChaining,
  expectedFanOut,
  sideEffectKeys,
} from '../src/fixtures/multi-process-shared.js';

const FIXTURE = fileURLToPath(new URL('../src/fixtures/worker-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface FaultRunOptions {
  /** A name for the log lines. */
  label: string;
  /** Chaining instances (CHAIN_STEPS activities each, one after the other). */
  chains: number;
  /** Fan-out instances of `fanOutSize` parallel activities each. */
  fanOuts: number;
  fanOutSize: number;
  /** Worker processes kept running: orchestrators + activities, activities only, and orchestrators only. Default 2 + 1 + 0. */
  workers?: { all: number; activities: number; orchestrators?: number };
  /** Every other orchestrator worker process (`all`) runs eager activities. Default true. */
  eagerActivities?: boolean;
  /** Activities run at once per worker process. Default 20. */
  activityConcurrency?: number;
  /** A worker process is SIGKILLed every `killEveryMs` ± 50 % (random). */
  killEveryMs: number;
  /** At most this many kills (default: no limit; they stop once everything has finished). */
  maxKills?: number;
  /** The first kill not before this share of the activities has run (default 0.05). */
  killFrom?: number;
  /** Redis restarts: at these shares of the activities run, SIGKILL (a crash) or SHUTDOWN Redis and restart it. */
  redisRestarts?: number[];
  /** How Redis goes down for a restart. Default 'kill' (SIGKILL, no final fsync). */
  redisStop?: 'kill' | 'shutdown';
  /**
   * With `redisStop: 'kill'`: also drop what the append-only file took in during the last `redisLoseTailMs` before
   * the crash (it is truncated to its size then), as an OS crash would with `appendfsync everysec`. A SIGKILL of the
   * redis-server process alone loses nothing: what Redis wrote is in the page cache, fsynced or not.
   */
  redisLoseTailMs?: number;
  /**
   * Where `redisLoseTailMs` cuts the file. `command` (default): at the last command boundary before that size that is
   * not inside a MULTI/EXEC block, what Redis itself expects of a file it wrote (a torn last command is dropped at
   * load). `byte`: at that exact size, even inside a block. Redis 7.0 mishandles a file torn inside a MULTI block:
   * with `aof-load-truncated yes` it drops only the torn command, keeps the block open, and at the next restart
   * applies the rolled-back block's commands (and later writes) out of order, or discards later writes; such cuts are
   * counted (`aofCutsInsideMulti`), as what they lose or duplicate is Redis's doing.
   */
  aofCut?: 'command' | 'byte';
  /** Besides `redisRestarts`: crash (and restart) Redis about every this many ms (± 50 %) until everything has finished. */
  redisCrashEveryMs?: number;
  /** How long Redis stays down before the restart. Default 500 ms. */
  redisDownMs?: number;
  /** The workers' sweep interval (worker-process.ts); the check after each restart waits for two of them. Default 1000 ms. */
  sweepIntervalMs?: number;
  appendfsync: AppendFsync;
  /** Start the instances in batches spread over this long (so that starts meet the faults too). Default 0: all at once. */
  startSpreadMs?: number;
  /** Give up waiting for the instances after this long. Default 180 s. */
  timeoutMs?: number;
  /** Progress lines; default none. */
  log?: (line: string) => void;
}

export interface FaultRunFigures {
  label: string;
  appendfsync: AppendFsync;
  instances: number;
  activities: number;
  /** Worker processes SIGKILLed by the run. */
  kills: number;
  /** Worker processes that exited without being told to (each one also replaced). */
  unexpectedExits: number;
  /** Redis restarts. */
  redisRestarts: number;
  /** Instances not Completed with the right output by the deadline (includes `startsLost`). */
  lost: number;
  /**
   * Instances whose state is gone altogether and whose start was lost with Redis's last writes: with
   * `redisLoseTailMs`, those whose state the dropped tail of the file created (read from it before the cut); with a
   * plain crash, those whose `startNew` returned in the 2 s before it (what `everysec` may lose: Redis acknowledges
   * writes before they are in the file, and may postpone writing them behind a slow fsync). Any other start gone stays
   * in `lost` only.
   */
  startsLost: number;
  /** startNew calls that threw something else than RedisUnavailableError, or that on their tenth try. */
  startErrors: number;
  /** startNew calls tried again with the same id after RedisUnavailableError (outcome unknown). */
  startRetries: number;
  /** Instances seen finished (or gone) during the run that were running again afterwards (a completion lost with an AOF tail). */
  completionsRolledBack: number;
  /** Instances that finished but with a wrong output or status. */
  wrong: number;
  /** Scheduled tasks of completed instances whose side effect was never counted. */
  sideEffectsMissing: number;
  /** History events duplicated: a task scheduled twice, a result twice, a second ExecutionStarted/Completed. */
  duplicatedHistoryEvents: number;
  /** Scheduled tasks without a result in a Completed history. */
  missingResults: number;
  /** Activities whose side effect ran more than once, and the runs beyond the first. */
  activitiesRunTwice: number;
  extraRuns: number;
  /** checkHub findings once everything finished, per code. */
  checkerFindings: number;
  checkerCounts: HubReport['counts'];
  /** Instances checkHub reported right after a Redis restart (stuck, ...), and how many of those completed after. */
  stuckAfterRestart: number;
  stuckAfterRestartCompleted: number;
  /**
   * Instances checkHub found `stuck` or with a `lost-task` after a Redis restart and that still were two sweep
   * intervals later: what the workers' own sweep did not repair (no repair is ever run by the suite).
   */
  stuckAfterTwoSweeps: number;
  /** Bytes of AOF dropped by `redisLoseTailMs`, and the committed episodes lost with them (all restarts). */
  aofBytesDropped: number;
  /** Cuts of the AOF (aofCut `byte`) that fell inside a MULTI/EXEC block: Redis 7.0 may then lose or re-apply writes itself. */
  aofCutsInsideMulti: number;
  episodesRolledBack: number;
  /** From the start of the instances to the last completion. */
  durationMs: number;
  /** A few examples of what went wrong, for the report. */
  problems: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface WorkerProcess {
  kind: WorkerKind;
  child: ChildProcess;
  /** Set before the run kills or stops it on purpose. */
  stopping: boolean;
  /** Set once it said it is ready (its BullMQ workers connected). */
  isReady: boolean;
  exited: Promise<void>;
  output: string[];
}

interface Run {
  id: string;
  name: string;
  input: unknown;
  output: unknown;
  tasks: number;
}

export async function runFaults(opts: FaultRunOptions): Promise<FaultRunFigures> {
  const log = opts.log ?? (() => undefined);
  const t0 = Date.now();
  const dataDir = await mkdtemp(join(tmpdir(), 'durabull-faults-'));
  const hub = 'faults';
  let server: RedisServer | undefined;
  let sideServer: RedisServer | undefined;
  let client: DurabullClient | undefined;
  let redis: Redis | undefined;
  const procs = new Set<WorkerProcess>();
  const problems: string[] = [];
  const problem = (p: string) => {
    if (problems.length < 40) problems.push(p);
  };
  let unexpectedExits = 0;
  let kills = 0;
  let restarts = 0;
  let finished = false;
  let aofBytesDropped = 0;
  let aofCutsInsideMulti = 0;
  let episodesRolledBack = 0;
  let completionsRolledBack = 0;

  const workerSpec = opts.workers ?? { all: 2, activities: 1 };
  const concurrency = opts.activityConcurrency ?? 20;
  const timeoutMs = opts.timeoutMs ?? 180_000;

  try {
    server = await startRedisServer({ dataDir, appendonly: true, appendfsync: opts.appendfsync });
    // The activities' side effects are counted in a second Redis that is never restarted: a crash of the task
    // hub's Redis must not take their records with it (else runs lost with an AOF tail would not count as twice).
    sideServer = await startRedisServer({ dataDir: join(dataDir, 'side-effects') });
    const url = server.url;
    log(`[${opts.label}] redis-server pid ${server.pid} on ${url}, appendfsync ${opts.appendfsync}, data in ${dataDir}`);
    /** The side-effect counters (sideServer). */
    redis = new Redis(sideServer.url, { maxRetriesPerRequest: null });
    client = new DurabullClient({ connection: url, hub });
    // Connection errors while Redis is down are expected: the clients reconnect on their own.
    const quiet = () => undefined;
    redis.on('error', quiet);
    client.backend.redis.on('error', quiet);
    client.backend.queueConnection.on('error', quiet);
    for (const p of await client.backend.open()) {
      p.orchestratorQueue.on('error', quiet);
      p.activityQueue.on('error', quiet);
    }
    const keys = sideEffectKeys(hub);

    let started = 0;
    const startWorker = (kind: WorkerKind): WorkerProcess => {
      // Every other orchestrator worker runs a chain's next step eagerly (in place, under a 2 s outbox lease).
      const eager = kind === 'all' && opts.eagerActivities !== false && started++ % 2 === 1;
      const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', FIXTURE], {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          REDIS_URL: url,
          DURABULL_HUB: hub,
          SIDE_EFFECT_REDIS_URL: sideServer!.url,
          EAGER_ACTIVITIES: eager ? '1' : '0',
          WORKER_KIND: kind,
          ACTIVITY_CONCURRENCY: String(concurrency),
          WORKER_MAX_LIFE_MS: String(timeoutMs + 120_000),
        },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      const output: string[] = [];
      const keep = (chunk: Buffer) => {
        output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        if (output.length > 50) output.splice(0, output.length - 50);
      };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      const p: WorkerProcess = { kind, child, stopping: false, isReady: false, output, exited: Promise.resolve() };
      child.on('message', (m: { type?: string }) => {
        if (m?.type === 'ready') p.isReady = true;
      });
      p.exited = new Promise<void>((resolve) => {
        child.once('exit', (code, signal) => {
          procs.delete(p);
          if (!p.stopping) {
            unexpectedExits++;
            problem(`worker '${kind}' pid ${child.pid} exited on its own (code ${code}, signal ${signal}): ${output.slice(-5).join(' | ')}`);
            if (!finished) startWorker(kind);
          }
          resolve();
        });
      });
      procs.add(p);
      return p;
    };
    const ready = (p: WorkerProcess) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`worker '${p.kind}' not ready within 60 s: ${p.output.join('\n')}`)), 60_000);
        p.child.on('message', (m: { type?: string }) => {
          if (m?.type === 'ready') {
            clearTimeout(timer);
            resolve();
          }
        });
        void p.exited.then(() => {
          clearTimeout(timer);
          reject(new Error(`worker '${p.kind}' exited before it was ready: ${p.output.join('\n')}`));
        });
      });

    const first = [
      ...Array.from({ length: workerSpec.all }, () => startWorker('all')),
      ...Array.from({ length: workerSpec.activities }, () => startWorker('activities')),
      ...Array.from({ length: workerSpec.orchestrators ?? 0 }, () => startWorker('orchestrators')),
    ];
    await Promise.all(first.map(ready));
    log(`[${opts.label}] ${first.length} worker processes ready after ${Date.now() - t0} ms`);

    // ---- the instances ----
    const runs: Run[] = [
      ...Array.from({ length: opts.chains }, (_, j): Run => {
        const input = `c${j}`;
        return { id: `chain-${j}`, name: CHAINING, input, output: expectedChaining(input), tasks: CHAIN_STEPS };
      }),
      ...Array.from({ length: opts.fanOuts }, (_, j): Run => {
        const input: FanOutInput = { n: opts.fanOutSize, offset: j * opts.fanOutSize + 1 };
        return { id: `fan-${j}`, name: FAN_OUT, input, output: expectedFanOut(input), tasks: opts.fanOutSize };
      }),
    ];
    // Fan-outs spread evenly among the chains, so that both kinds start (and run) throughout.
    const chainRuns = runs.slice(0, opts.chains);
    const fanRuns = runs.slice(opts.chains);
    const order: Run[] = [];
    chainRuns.forEach((r, j) => {
      while (fanRuns.length > 0 && order.length >= ((opts.fanOuts - fanRuns.length) * runs.length) / Math.max(1, opts.fanOuts)) order.push(fanRuns.shift()!);
      order.push(r);
    });
    order.push(...fanRuns);
    const totalActivities = runs.reduce((n, r) => n + r.tasks, 0);
    const tStart = Date.now();
    /** When each instance's startNew returned (or threw). */
    const startedAt = new Map<string, number>();
    let startErrors = 0;
    let startRetries = 0;
    const startOne = async (r: Run) => {
      // As a caller should (docs/api.md, "When Redis does not answer"): a start whose outcome is unknown is
      // retried with the same id; InstanceAlreadyExistsError then means the first one took effect.
      for (let attempt = 1; ; attempt++) {
        try {
          await client!.startNew(r.name, { instanceId: r.id, input: r.input });
        } catch (err) {
          if (err instanceof RedisUnavailableError && attempt < 10 && Date.now() < tStart + timeoutMs) {
            startRetries++;
            continue;
          }
          if (!(err instanceof InstanceAlreadyExistsError && attempt > 1)) {
            startErrors++;
            problem(`${r.id}: startNew threw ${(err as Error).name}: ${(err as Error).message}`);
          }
        }
        break;
      }
      startedAt.set(r.id, Date.now());
    };
    const spread = opts.startSpreadMs ?? 0;
    const batch = spread > 0 ? 20 : 50;
    const starting = (async () => {
      const batches = Math.ceil(order.length / batch);
      for (let i = 0; i < batches; i++) {
        if (spread > 0) {
          const at = tStart + (spread * i) / batches;
          if (at > Date.now()) await sleep(at - Date.now());
        }
        await Promise.all(order.slice(i * batch, (i + 1) * batch).map(startOne));
      }
      log(`[${opts.label}] started ${runs.length} instances (${totalActivities} activities) in ${Date.now() - tStart} ms`);
    })();
    if (spread === 0) await starting;

    /** Episodes committed over all instances (the `episodes` field of their state), read on a connection of its own. */
    const episodesSum = async (at: string) => {
      const c = new Redis(at, { maxRetriesPerRequest: 3 });
      c.on('error', () => undefined);
      try {
        const p = c.pipeline();
        for (const r of runs) p.hget(client!.backend.forInstance(r.id).keys.state(r.id), 'episodes');
        const res = await p.exec();
        return res!.reduce((n, [, v]) => n + Number(v ?? 0), 0);
      } finally {
        c.disconnect();
      }
    };
    const runsSoFar = async () => Number((await redis!.get(keys.runs)) ?? 0);

    // ---- completion tracking ----
    const open = new Set(runs.map((r) => r.id));
    /** Instances given up as lost with an AOF tail, and when. */
    const declaredLost = new Map<string, number>();
    const deadline = tStart + timeoutMs;
    const poll = async () => {
      const ids = [...open];
      for (let i = 0; i < ids.length; i += 200) {
        const batch = ids.slice(i, i + 200);
        const p = client!.backend.redis.pipeline();
        for (const id of batch) p.hget(client!.backend.forInstance(id).keys.state(id), 'status');
        const res = await p.exec();
        batch.forEach((id, k) => {
          if (res![k]![0]) return; // e.g. LOADING right after a restart
          const st = res![k]![1] as string | null;
          if (st === 'Completed' || st === 'Failed' || st === 'Terminated') open.delete(id);
          // Started before a Redis crash and gone since: lost with the AOF tail (reported below), not waited for.
          const t = startedAt.get(id);
          if (st === null && t !== undefined && t < lastRestartAt && Date.now() - lastRestartAt > 5000) {
            open.delete(id);
            declaredLost.set(id, Date.now());
          }
        });
      }
    };

    // ---- faults: worker kills ----
    let lastKillAt = 0;
    const killer = (async () => {
      const from = Math.floor(totalActivities * (opts.killFrom ?? 0.05));
      while (!finished && (await runsSoFar()) < from && Date.now() < deadline) await sleep(50);
      while (!finished && Date.now() < deadline && (opts.maxKills === undefined || kills < opts.maxKills)) {
        await sleep(opts.killEveryMs * (0.5 + Math.random()));
        if (finished) break;
        // Only processes that got going: on a loaded machine a replacement takes seconds to start, and killing
        // those again and again would leave no worker running at all.
        const live = [...procs].filter((p) => !p.stopping && p.isReady);
        if (live.length === 0) continue;
        const victim = live[Math.floor(Math.random() * live.length)]!;
        victim.stopping = true;
        victim.child.kill('SIGKILL');
        kills++;
        lastKillAt = Date.now();
        startWorker(victim.kind);
        log(`[${opts.label}] kill ${kills}: '${victim.kind}' pid ${victim.child.pid} at ${await runsSoFar()} runs`);
      }
    })();

    // ---- faults: Redis restarts ----
    const stuckAfterRestart = new Set<string>();
    let lastRestartAt = 0;
    /** When Redis was crashed (SIGKILL). */
    const crashTimes: number[] = [];
    /** Instances whose state a dropped tail of the file created (startInstance's HSET of the state hash, `name` first; any partition's tag). */
    const startsInDroppedTails = new Set<string>();
    const stateKeyCreated = new RegExp(`HSET\\r\\n\\$\\d+\\r\\ndbl:\\{${hub}:[0-9-]+\\}:i:([A-Za-z0-9_.@-]+)\\r\\n\\$4\\r\\nname\\r\\n`, 'gi');
    /** The crash under way, if any (fixed-point and periodic crashes never overlap). */
    let restarting: Promise<void> = Promise.resolve();
    // The AOF's size over time (every 50 ms), to cut its tail off after a crash (redisLoseTailMs).
    const aofSizes: { t: number; file: string; size: number }[] = [];
    const sampler = setInterval(() => {
      const file = currentAofFile(server!.dataDir);
      if (file === undefined) return;
      try {
        aofSizes.push({ t: Date.now(), file, size: statSync(file).size });
      } catch {
        return;
      }
      if (aofSizes.length > 400) aofSizes.splice(0, aofSizes.length - 400);
    }, 50);
    const sweepMs = opts.sweepIntervalMs ?? 1000;
    const stillStuck = new Set<string>();
    /** Crashes (or stops) Redis, cuts the AOF as asked, restarts it, and looks at the hub with the checker after. */
    const crashAndRestart = async () => {
      const before = await runsSoFar();
      const episodesBefore = await episodesSum(url);
      const killedAt = Date.now();
      const crash = (opts.redisStop ?? 'kill') === 'kill';
      if (crash) crashTimes.push(killedAt);
      server!.kill(crash ? 'SIGKILL' : 'SIGTERM');
      await server!.stop();
      let cut = '';
      if (crash && opts.redisLoseTailMs) {
        const file = currentAofFile(server!.dataDir);
        const then = aofSizes.filter((s) => s.t <= killedAt - opts.redisLoseTailMs!).at(-1);
        if (file && then && then.file === file) {
          const size = statSync(file).size;
          const whole = readFileSync(file);
          const at = aofCutPoint(whole, then.size);
          const to = (opts.aofCut ?? 'command') === 'command' ? at.safe : then.size;
          // The instances whose state the dropped part created: their starts go with it.
          for (const m of whole.subarray(to).toString('latin1').matchAll(stateKeyCreated)) startsInDroppedTails.add(m[1]!);
          if (opts.aofCut === 'byte' && at.insideMulti) aofCutsInsideMulti++;
          truncateSync(file, to);
          aofBytesDropped += size - to;
          cut = `; AOF cut from ${size} to ${to} bytes (its size ${killedAt - then.t} ms before the crash: ${then.size}${at.insideMulti ? ', inside a MULTI block' : ''})`;
        } else cut = '; AOF not cut (no sample of the same file)';
      }
      await sleep(opts.redisDownMs ?? 500);
      await server!.restart();
      restarts++;
      lastRestartAt = Date.now();
      // A fresh connection reads the episodes before the workers (reconnecting with backoff) commit many.
      const episodesAfter = await episodesSum(url);
      if (episodesAfter < episodesBefore) episodesRolledBack += episodesBefore - episodesAfter;
      log(
        `[${opts.label}] Redis restart ${restarts} (${crash ? 'SIGKILL' : 'SIGTERM'}) at ${before} runs${cut}; ` +
          `episodes committed: ${episodesBefore} before the crash, ${episodesAfter} right after the restart; down ${Date.now() - killedAt} ms`,
      );
      // What does the checker see right after the restart, once the grace period has passed?
      await sleep(3000);
      const report = await checkHub(client!.backend, { graceMs: 2000 });
      for (const f of report.findings) stuckAfterRestart.add(f.instanceId);
      if (report.findings.length > 0) {
        log(`[${opts.label}] checkHub 3 s after restart ${restarts}: ${JSON.stringify(report.counts)} (${report.findings.length} findings)`);
        for (const f of report.findings.slice(0, 5)) log(`    ${f.instanceId} ${f.code}: ${f.message}`);
      }
      // Stuck or with a lost task: the workers' sweep must have repaired it two sweep intervals later.
      const flagged = [...new Set(report.findings.filter((f) => f.code === 'stuck' || f.code === 'lost-task').map((f) => f.instanceId))];
      if (flagged.length > 0) {
        await sleep(2 * sweepMs);
        for (const id of flagged) {
          const again = await checkInstance(client!.backend, id, { graceMs: 2000 });
          const left = again.findings.filter((f) => f.code === 'stuck' || f.code === 'lost-task');
          if (left.length > 0) {
            stillStuck.add(id);
            problem(`${id}: still ${left.map((f) => `${f.code} (${f.message})`).join('; ')} two sweep intervals after restart ${restarts}`);
          }
        }
      }
    };
    const restarter = (async () => {
      for (const at of opts.redisRestarts ?? []) {
        const target = Math.floor(totalActivities * at);
        while (!finished && Date.now() < deadline && (await runsSoFar()) < target) await sleep(25);
        if (finished || Date.now() >= deadline) break;
        await restarting;
        restarting = crashAndRestart();
        await restarting;
      }
    })();
    const crasher = (async () => {
      if (!opts.redisCrashEveryMs) return;
      const from = Math.floor(totalActivities * (opts.killFrom ?? 0.05));
      while (!finished && (await runsSoFar()) < from && Date.now() < deadline) await sleep(50);
      while (!finished && Date.now() < deadline) {
        await sleep(opts.redisCrashEveryMs * (0.5 + Math.random()));
        if (finished || Date.now() >= deadline) break;
        await restarting;
        restarting = crashAndRestart();
        await restarting;
      }
    })();

    for (;;) {
      while (open.size > 0 && Date.now() < deadline) {
        await poll();
        if (open.size > 0) await sleep(250);
      }
      await starting;
      // A completion seen before a crash can be rolled back with the AOF tail (everysec): look at every
      // instance again, and wait for the ones that are running again.
      const again = await Promise.all(runs.map((r) => client!.backend.redis.hget(client!.backend.forInstance(r.id).keys.state(r.id), 'status')));
      runs.forEach((r, k) => {
        const st = again[k];
        if (st !== null && st !== 'Completed' && st !== 'Failed' && st !== 'Terminated') {
          if (!open.has(r.id)) {
            completionsRolledBack++;
            declaredLost.delete(r.id);
          }
          open.add(r.id);
        }
      });
      if (open.size === 0 || Date.now() >= deadline) break;
      log(`[${opts.label}] ${open.size} instances seen finished (or gone) earlier are running again`);
    }
    const tDone = Date.now();
    finished = true;
    await Promise.all([killer, restarter, crasher]);
    clearInterval(sampler);
    log(`[${opts.label}] ${runs.length - open.size}/${runs.length} finished after ${tDone - tStart} ms; ${kills} kills, ${restarts} Redis restarts`);

    // Let the last sweeps settle (outbox entries of finished instances, stalled jobs of the last kill).
    const settleUntil = Math.max(Date.now() + 1500, lastKillAt + 4000);
    while (Date.now() < settleUntil) await sleep(100);

    // ---- checks ----
    let lost = 0;
    let startsLost = 0;
    let wrong = 0;
    let duplicated = 0;
    let missingResults = 0;
    let sideEffectsMissing = 0;
    const byTask = await redis.hgetall(keys.byTask);
    for (let i = 0; i < runs.length; i += 50) {
      const batch = runs.slice(i, i + 50);
      const statuses = await Promise.all(batch.map((r) => client!.getStatus(r.id, { showHistory: true })));
      batch.forEach((r, k) => {
        const st = statuses[k];
        if (!st) {
          lost++;
          const t = startedAt.get(r.id);
          const window = 2250;
          if (opts.redisLoseTailMs ? startsInDroppedTails.has(r.id) : t !== undefined && crashTimes.some((c) => t >= c - window && t <= c + 1000)) {
            startsLost++;
            problem(`${r.id}: no state (its start was in the last writes a crash took: ${opts.redisLoseTailMs ? 'the cut tail of the file' : `acknowledged ${crashTimes.map((c) => c - t!).filter((d) => d >= -1000).sort((a, b) => a - b)[0]} ms before a crash`})`);
          } else {
            problem(`${r.id}: no state, and its start was not in the last writes a crash took`);
          }
          return;
        }
        const h = checkHistory(st.history ?? []);
        duplicated += h.duplicated;
        if (h.duplicated > 0) problem(`${r.id}: ${h.duplicated} duplicated history events: ${h.notes.join('; ')}`);
        if (st.runtimeStatus !== 'Completed') {
          if (st.runtimeStatus === 'Failed' || st.runtimeStatus === 'Terminated') {
            wrong++;
            problem(`${r.id}: ${st.runtimeStatus} ${JSON.stringify(st.failure ?? st.output)}`);
          } else {
            lost++;
            problem(`${r.id}: still ${st.runtimeStatus} (episodes ${st.episodes})`);
          }
          return;
        }
        if (JSON.stringify(st.output) !== JSON.stringify(r.output)) {
          wrong++;
          problem(`${r.id}: output ${JSON.stringify(st.output)}, expected ${JSON.stringify(r.output)}`);
        }
        missingResults += h.scheduled - h.finished;
        if (h.scheduled > h.finished) problem(`${r.id}: completed, but ${h.scheduled - h.finished} scheduled task(s) have no result in history: ${h.notes.join('; ')}`);
        if (h.scheduled !== r.tasks) problem(`${r.id}: ${h.scheduled} tasks scheduled, expected ${r.tasks}`);
        for (let t = 0; t < r.tasks; t++) {
          if (!(Number(byTask[`${r.id}#${t}`] ?? 0) >= 1)) {
            sideEffectsMissing++;
            problem(`${r.id}#${t}: completed but its side effect was never counted`);
          }
        }
      });
    }
    // What a few unfinished instances look like, for the report.
    const notCompleted = await Promise.all(runs.map(async (r) => ((await client!.getStatus(r.id))?.runtimeStatus ?? 'gone')));
    const unfinished = runs.filter((r, k) => notCompleted[k] !== 'Completed' && notCompleted[k] !== 'gone').slice(0, 3);
    for (const r of unfinished) {
      const t = declaredLost.get(r.id);
      if (t !== undefined) problem(`${r.id}: had no state ${t - lastRestartAt} ms after the last restart (started ${startedAt.get(r.id)! - t} ms before that), exists now`);
    }
    for (const r of unfinished) problem(`diagnosis ${r.id}: ${await diagnose(client, r.id)}`);
    if (unfinished.length > 0) {
      for (const p of client.backend.partitions) {
        const [a, o] = await Promise.all([p.activityQueue.getJobCounts(), p.orchestratorQueue.getJobCounts()]);
        problem(`partition ${p.partition} queues: activity ${JSON.stringify(a)}, orchestrator ${JSON.stringify(o)}, outbox ${await p.redis.hlen(p.keys.outbox)}`);
      }
    }
    let activitiesRunTwice = 0;
    let extraRuns = 0;
    for (const v of Object.values(byTask)) {
      const n = Number(v);
      if (n > 1) {
        activitiesRunTwice++;
        extraRuns += n - 1;
      }
    }
    const report = await checkHub(client.backend, { graceMs: 5000 });
    for (const f of report.findings.slice(0, 10)) problem(`checkHub: ${f.instanceId} ${f.code}: ${f.message}`);
    const stuckCompleted = [...stuckAfterRestart].filter((id) => !open.has(id)).length;

    return {
      label: opts.label,
      appendfsync: opts.appendfsync,
      instances: runs.length,
      activities: totalActivities,
      kills,
      unexpectedExits,
      redisRestarts: restarts,
      lost,
      startsLost,
      startErrors,
      startRetries,
      completionsRolledBack,
      wrong,
      sideEffectsMissing,
      duplicatedHistoryEvents: duplicated,
      missingResults,
      activitiesRunTwice,
      extraRuns,
      checkerFindings: report.findings.length,
      checkerCounts: report.counts,
      stuckAfterRestart: stuckAfterRestart.size,
      stuckAfterRestartCompleted: stuckCompleted,
      stuckAfterTwoSweeps: stillStuck.size,
      aofBytesDropped,
      aofCutsInsideMulti,
      episodesRolledBack,
      durationMs: tDone - tStart,
      problems,
    };
  } finally {
    finished = true;
    await Promise.all(
      [...procs].map(async (p) => {
        p.stopping = true;
        p.child.kill('SIGKILL');
        await p.exited;
      }),
    );
    await client?.close().catch(() => undefined);
    redis?.disconnect();
    await server?.stop().catch(() => undefined);
    await sideServer?.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** State, pending tasks, inbox and the BullMQ jobs of one instance, on one line. */
export async function diagnose(client: DurabullClient, id: string): Promise<string> {
  const b = await client.backend.at(id);
  const r = b.redis;
  const [state, pending, inbox] = await Promise.all([
    r.hgetall(b.keys.state(id)),
    r.smembers(b.keys.pending(id)),
    r.llen(b.keys.inbox(id)),
  ]);
  const { input: _i, output: _o, ...st } = state;
  const jobs = await Promise.all(
    pending.slice(0, 3).map(async (seq) => {
      const jobId = `a-${id}-${state.exec}-${seq}`;
      const [js, inOutbox, job] = await Promise.all([
        b.activityQueue.getJobState(jobId),
        r.hexists(b.keys.outbox, jobId),
        b.activityQueue.getJob(jobId),
      ]);
      return `${jobId}: ${js}, outbox ${inOutbox}, attempts ${job?.attemptsMade} stalled ${job?.stalledCounter} failed '${job?.failedReason ?? ''}'`;
    }),
  );
  const wake = `w-${id}-${state.exec}-${state.version}`;
  const wakeState = await b.orchestratorQueue.getJobState(wake);
  return `state ${JSON.stringify(st)}; pending [${pending.join(',')}]; inbox ${inbox}; ${jobs.join('; ')}; ${wake}: ${wakeState}`;
}

/** The append-only file Redis writes to now: the newest `*.incr.aof` of Redis 7's multi-part AOF, else `appendonly.aof`. */
function currentAofFile(dataDir: string): string | undefined {
  const dir = join(dataDir, 'appendonlydir');
  if (existsSync(dir)) {
    const incr = readdirSync(dir)
      .map((f) => /\.(\d+)\.incr\.aof$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(b[1]) - Number(a[1]));
    if (incr.length > 0) return join(dir, incr[0]!.input);
  }
  const single = join(dataDir, 'appendonly.aof');
  return existsSync(single) ? single : undefined;
}

/**
 * Where to cut an append-only file so that it ends where Redis could have stopped writing it: `safe` is the last
 * command boundary at or before `size` that is not inside a MULTI/EXEC block (Redis writes a script's effects and a
 * transaction as one such block); `insideMulti` tells whether `size` itself falls inside a block (or inside a
 * command of one). Reads the RESP commands from the start of the file; `#` lines (annotations) are skipped.
 */
export function aofCutPoint(buf: Buffer, size: number): { safe: number; insideMulti: boolean } {
  let pos = 0;
  let safe = 0;
  let inMulti = false;
  const line = (from: number): [string, number] | undefined => {
    const end = buf.indexOf('\r\n', from, 'latin1');
    return end < 0 ? undefined : [buf.toString('latin1', from, end), end + 2];
  };
  while (pos < buf.length && pos < size) {
    if (buf[pos] === 0x23) {
      // '#': an annotation line.
      const l = line(pos);
      if (!l) break;
      pos = l[1];
      if (!inMulti && pos <= size) safe = pos;
      continue;
    }
    const head = line(pos);
    if (!head || head[0][0] !== '*') break;
    let at = head[1];
    let name = '';
    let complete = true;
    for (let i = 0; i < Number(head[0].slice(1)); i++) {
      const len = line(at);
      if (!len || len[0][0] !== '$') {
        complete = false;
        break;
      }
      const n = Number(len[0].slice(1));
      if (len[1] + n + 2 > buf.length) {
        complete = false;
        break;
      }
      if (i === 0) name = buf.toString('latin1', len[1], len[1] + n).toUpperCase();
      at = len[1] + n + 2;
    }
    if (!complete || at > size) {
      // The command that `size` falls in: torn by a cut there.
      return { safe, insideMulti: inMulti || name === 'MULTI' };
    }
    pos = at;
    if (name === 'MULTI') inMulti = true;
    else if (name === 'EXEC') inMulti = false;
    if (!inMulti) safe = pos;
  }
  return { safe, insideMulti: inMulti };
}

/** Counts duplicated events of one execution's history, and its scheduled / finished tasks. */
export function checkHistory(history: readonly HistoryEvent[]): { duplicated: number; scheduled: number; finished: number; notes: string[] } {
  const scheduled = new Set<number>();
  const finished = new Set<number>();
  const notes: string[] = [];
  let duplicated = 0;
  let started = 0;
  let completed = 0;
  for (const e of history) {
    if (e.type === 'TaskScheduled') {
      if (scheduled.has(e.taskId)) {
        duplicated++;
        notes.push(`task ${e.taskId} scheduled twice`);
      }
      scheduled.add(e.taskId);
    } else if (e.type === 'TaskCompleted' || e.type === 'TaskFailed') {
      if (finished.has(e.taskScheduledId)) {
        duplicated++;
        notes.push(`task ${e.taskScheduledId} finished twice`);
      }
      finished.add(e.taskScheduledId);
    } else if (e.type === 'ExecutionStarted') started++;
    else if (e.type === 'ExecutionCompleted') completed++;
  }
  if (started > 1) {
    duplicated += started - 1;
    notes.push(`${started} ExecutionStarted`);
  }
  if (completed > 1) {
    duplicated += completed - 1;
    notes.push(`${completed} ExecutionCompleted`);
  }
  const unfinished = [...scheduled].filter((id) => !finished.has(id));
  if (unfinished.length > 0) notes.push(`no result for task${unfinished.length === 1 ? '' : 's'} ${unfinished.slice(0, 10).join(', ')}`);
  return { duplicated, scheduled: scheduled.size, finished: finished.size, notes };
}

/** One line per figure, for the console. */
export function formatFigures(f: FaultRunFigures): string {
  return [
    `[${f.label}] appendfsync ${f.appendfsync}: ${f.instances} instances, ${f.activities} activities, done in ${(f.durationMs / 1000).toFixed(1)} s`,
    `  worker kills ${f.kills} (unexpected exits ${f.unexpectedExits}), Redis restarts ${f.redisRestarts}`,
    `  lost ${f.lost} (starts lost ${f.startsLost}; startNew errors ${f.startErrors}, retried ${f.startRetries}; completions rolled back and redone ${f.completionsRolledBack}), wrong ${f.wrong}, side effects missing ${f.sideEffectsMissing}, results missing ${f.missingResults}`,
    `  duplicated history events ${f.duplicatedHistoryEvents}; activities run twice ${f.activitiesRunTwice} (${f.extraRuns} extra runs)`,
    `  checkHub findings at the end ${f.checkerFindings} ${JSON.stringify(f.checkerCounts)}; ` +
      `instances flagged right after a restart ${f.stuckAfterRestart}, of which completed ${f.stuckAfterRestartCompleted}`,
    `  still stuck or with a lost task two sweep intervals after a restart ${f.stuckAfterTwoSweeps}`,
    ...(f.aofBytesDropped > 0
      ? [
          `  AOF tail dropped at the crashes: ${f.aofBytesDropped} bytes, ${f.episodesRolledBack} committed episodes rolled back` +
            (f.aofCutsInsideMulti > 0 ? `; ${f.aofCutsInsideMulti} cut(s) inside a MULTI block (Redis 7.0 may lose or re-apply writes itself)` : ''),
        ]
      : []),
    ...f.problems.map((p) => `  ! ${p}`),
  ].join('\n');
}
