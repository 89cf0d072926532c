/**
 * Two worker processes on one task hub, and a kill -9 in the middle of a fan-out.
 *
 * Process A (fixtures/worker-process.ts, WORKER_KIND=all) runs orchestrators and activities; process B
 * (WORKER_KIND=activities) runs activities only. Both use short BullMQ locks (2 s, stalled check every 1 s)
 * and sweep the outbox every second. The test starts fan-outs and chains from this process, SIGKILLs B
 * while a good part (not all) of the activities has run, and then A alone must finish every instance:
 * B's interrupted activity jobs come back through BullMQ's stalled-job check, and a wake-up that B wrote
 * to the outbox but never dispatched comes back through A's outbox sweep.
 *
 * Invariants checked (ARCHITECTURE.md, "Invariants to test" 1-3): every instance completes with the
 * exact output; in every history each task id is scheduled once and completed at most once, and every
 * scheduled task completed; the fan-in counter still wakes a fan-out only a handful of times. Activities
 * run at least once: the ones B had started when it died run again in A, and the test reports how many
 * ran twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HistoryEvent } from '@durabull/core';
import { DurabullClient, type OrchestrationStatus } from '@durabull/client';
import { HubKeys } from '@durabull/redis';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHAIN_STEPS,
  CHAINING,
  FAN_OUT,
  type FanOutInput,
  type WorkerKind,
  expectedChaining,
  expectedFanOut,
  sideEffectKeys,
} from './fixtures/multi-process-shared.js';
import { deleteKeysByPattern, redisUrl, uniqueHub } from './helpers/redis.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/worker-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const FAN_OUTS = 4;
const FAN_N = 300;
const CHAINS = 20;
const TOTAL_ACTIVITIES = FAN_OUTS * FAN_N + CHAINS * CHAIN_STEPS;
/** B is killed once this share of the activities has run (the side-effect counter says so). */
const KILL_AT = 0.3;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---- worker processes ----

interface WorkerProcess {
  kind: WorkerKind;
  child: ChildProcess;
  /** Resolves when the process has sent `ready` (its BullMQ workers are connected). */
  ready: Promise<void>;
  /** Resolves when the process has exited, however. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Set before the test ends the process on purpose. */
  stopping: boolean;
  /** The last lines the process wrote, for diagnostics. */
  output: string[];
}

function startWorkerProcess(kind: WorkerKind, hub: string, url: string): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', FIXTURE], {
    cwd: REPO_ROOT,
    env: { ...process.env, REDIS_URL: url, DURABULL_HUB: hub, WORKER_KIND: kind },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output: string[] = [];
  const keep = (chunk: Buffer) => {
    output.push(...chunk.toString('utf8').split('\n').filter(Boolean));
    if (output.length > 100) output.splice(0, output.length - 100);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker process '${kind}' sent no 'ready' within 30 s:\n${output.join('\n')}`)), 30_000);
    child.on('message', (m: { type?: string }) => {
      if (m?.type === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`worker process '${kind}' exited (code ${code}, signal ${signal}) before it was ready:\n${output.join('\n')}`));
    });
  });
  ready.catch(() => undefined); // Awaited by the test; this only keeps an early exit from being "unhandled".
  return { kind, child, ready, exited, stopping: false, output };
}

function isRunning(p: WorkerProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** Rejects if `p` exits while the test did not mean it to, so that a crash fails fast instead of timing out. */
function failOnUnexpectedExit(p: WorkerProcess): Promise<never> {
  return p.exited.then(({ code, signal }) => {
    if (p.stopping) return new Promise<never>(() => undefined);
    throw new Error(`worker process '${p.kind}' died (code ${code}, signal ${signal}):\n${p.output.join('\n')}`);
  });
}

/** SIGTERM (a graceful close), then SIGKILL if the process is still there after `graceMs`. */
async function stopWorkerProcess(p: WorkerProcess, graceMs = 5000): Promise<void> {
  p.stopping = true;
  if (!isRunning(p)) return;
  p.child.kill('SIGTERM');
  const gone = await Promise.race([p.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (!gone && isRunning(p)) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

// ---- per-test resources, released even when the test fails ----

let procs: WorkerProcess[] = [];
let client: DurabullClient | undefined;
let redis: Redis | undefined;
let hub: string | undefined;

afterEach(async () => {
  await Promise.allSettled(procs.map((p) => stopWorkerProcess(p)));
  procs = [];
  await client?.close().catch(() => undefined);
  client = undefined;
  if (redis && hub) await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
  await redis?.quit().catch(() => undefined);
  redis = undefined;
  hub = undefined;
});

// ---- history checks ----

/**
 * Each task id appears in exactly one TaskScheduled and at most one TaskCompleted/TaskFailed (after its
 * TaskScheduled), every scheduled task completed, and the history holds one execution that completed.
 * Returns the number of scheduled tasks.
 */
function checkHistory(id: string, history: HistoryEvent[]): number {
  const scheduled = new Set<number>();
  const finished = new Set<number>();
  let completed = 0;
  for (const [pos, e] of history.entries()) {
    const where = `${id}, event ${pos} (${e.type})`;
    if (e.type === 'TaskScheduled') {
      expect(scheduled.has(e.taskId), `${where}: task ${e.taskId} scheduled twice`).toBe(false);
      scheduled.add(e.taskId);
    } else if (e.type === 'TaskCompleted' || e.type === 'TaskFailed') {
      const t = e.taskScheduledId;
      expect(scheduled.has(t), `${where}: task ${t} finished but never scheduled before`).toBe(true);
      expect(finished.has(t), `${where}: task ${t} finished twice`).toBe(false);
      finished.add(t);
      if (e.type === 'TaskCompleted') completed++;
    }
  }
  expect(completed, `${id}: TaskCompleted count`).toBe(scheduled.size);
  expect(history.filter((e) => e.type === 'ExecutionStarted'), `${id}: ExecutionStarted`).toHaveLength(1);
  expect(history.filter((e) => e.type === 'ExecutionCompleted'), `${id}: ExecutionCompleted`).toHaveLength(1);
  return scheduled.size;
}

/** Each committed episode writes one OrchestratorStarted. */
function episodesInHistory(history: HistoryEvent[]): number {
  return history.filter((e) => e.type === 'OrchestratorStarted').length;
}

describe('two worker processes on one task hub', () => {
  it(
    'finishes every fan-out and chain, without duplicate history events, after kill -9 of the activity-only worker',
    async () => {
      const t0 = Date.now();
      const url = redisUrl();
      hub = uniqueHub('mp');
      redis = new Redis(url, { maxRetriesPerRequest: null });
      client = new DurabullClient({ connection: url, hub });
      const keys = sideEffectKeys(hub);
      const hubKeys = new HubKeys(hub);

      const a = startWorkerProcess('all', hub, url);
      const b = startWorkerProcess('activities', hub, url);
      procs.push(a, b);
      await Promise.all([a.ready, b.ready]);
      const tReady = Date.now();

      const fanInputs: FanOutInput[] = Array.from({ length: FAN_OUTS }, (_, j) => ({ n: FAN_N, offset: j * FAN_N + 1 }));
      const chainInputs = Array.from({ length: CHAINS }, (_, j) => `c${j}`);
      const fanIds = await Promise.all(fanInputs.map((input, j) => client!.startNew(FAN_OUT, { instanceId: `fan-${j}`, input })));
      const chainIds = await Promise.all(chainInputs.map((input, j) => client!.startNew(CHAINING, { instanceId: `chain-${j}`, input })));

      // Kill B (kill -9) once a good part of the activities has run, B has done some of them, and not all
      // are done: B is then in the middle of its share of the fan-out.
      const killAt = Math.floor(TOTAL_ACTIVITIES * KILL_AT);
      const killDeadline = Date.now() + 30_000;
      for (;;) {
        const [runs, byB] = await redis.pipeline().get(keys.runs).hget(keys.byWorker, 'activities').exec().then((r) => r!.map(([, v]) => Number(v ?? 0)));
        if (runs! >= killAt && byB! > 0) break;
        if (Date.now() > killDeadline) throw new Error(`activities did not get going: ${runs} runs, ${byB} in B, after 30 s`);
        await sleep(5);
      }
      b.stopping = true;
      b.child.kill('SIGKILL');
      expect(await b.exited).toEqual({ code: null, signal: 'SIGKILL' });
      const tKill = Date.now();
      const runsAtKill = Number((await redis.get(keys.runs)) ?? 0);
      const byWorkerAtKill = await redis.hgetall(keys.byWorker);
      // B is dead, so its in-flight count is frozen: activities it had started (and counted) but not finished.
      const interruptedInB = Number((await redis.hget(keys.inflight, 'activities')) ?? 0);
      expect(runsAtKill, 'B must be killed before every activity has run').toBeLessThan(TOTAL_ACTIVITIES);

      // A alone must finish everything (no replacement for B).
      const ids = [...fanIds, ...chainIds];
      const statuses: OrchestrationStatus[] = await Promise.race([
        Promise.all(ids.map((id) => client!.waitForCompletion(id, { timeoutMs: 60_000, showHistory: true }))),
        failOnUnexpectedExit(a),
      ]);
      const tDone = Date.now();

      const fanEpisodes: number[] = [];
      const chainEpisodes: number[] = [];
      for (const [j, st] of statuses.entries()) {
        const id = ids[j]!;
        expect(st.runtimeStatus, `${id}: ${JSON.stringify(st.failure)}`).toBe('Completed');
        const isFan = j < FAN_OUTS;
        expect(st.output, id).toBe(isFan ? expectedFanOut(fanInputs[j]!) : expectedChaining(chainInputs[j - FAN_OUTS]!));
        const tasks = checkHistory(id, st.history!);
        expect(tasks, `${id}: scheduled tasks`).toBe(isFan ? FAN_N : CHAIN_STEPS);
        // No episode committed twice: one OrchestratorStarted per counted episode.
        expect(episodesInHistory(st.history!), `${id}: episodes in history`).toBe(st.episodes);
        (isFan ? fanEpisodes : chainEpisodes).push(st.episodes);
      }
      // A fan-out needs 2 episodes: one schedules the 300 tasks, and the fan-in counter wakes the next once
      // the last result is in. A duplicate result (an activity B had delivered before it died, run again by
      // A) is dropped by deliverEvent before it touches the counter, and a wake-up dispatched twice (B's fast
      // path and A's sweep) has one job id per version, so its second run is a stale episode that commits
      // nothing and is not counted. So the kill should add no episode at all; the bound leaves room for a
      // wake or two should the protocol ever need them, while an O(N) wake-per-result regression (~300)
      // fails it.
      for (const e of fanEpisodes) expect(e).toBeLessThanOrEqual(6);
      // A chain wakes once per result: 1 + CHAIN_STEPS episodes, kill or not.
      for (const e of chainEpisodes) expect(e).toBe(CHAIN_STEPS + 1);

      // Side effects: every task ran at least once; those B had started when it died ran again (in A).
      const byTask = await redis.hgetall(keys.byTask);
      const expectedTasks = [
        ...fanIds.flatMap((id) => Array.from({ length: FAN_N }, (_, t) => `${id}#${t}`)),
        ...chainIds.flatMap((id) => Array.from({ length: CHAIN_STEPS }, (_, t) => `${id}#${t}`)),
      ];
      expect(Object.keys(byTask).sort()).toEqual(expectedTasks.sort());
      const runs = Number((await redis.get(keys.runs)) ?? 0);
      expect(Object.values(byTask).reduce((s, v) => s + Number(v), 0)).toBe(runs);
      const duplicates = runs - TOTAL_ACTIVITIES;
      const ranTwice = Object.values(byTask).filter((v) => Number(v) > 1).length;
      expect(duplicates).toBeGreaterThanOrEqual(interruptedInB);
      expect(ranTwice).toBeGreaterThanOrEqual(interruptedInB);

      // Nothing is left behind in the outbox once the sweeps have had their turn.
      const outboxDeadline = Date.now() + 5000;
      let outbox = -1;
      while (Date.now() < outboxDeadline) {
        const [h, z] = await redis.pipeline().hlen(hubKeys.outbox).zcard(hubKeys.outboxIndex).exec().then((r) => r!.map(([, v]) => Number(v)));
        outbox = h! + z!;
        if (outbox === 0) break;
        await sleep(100);
      }
      expect(outbox, 'outbox entries left undispatched').toBe(0);

      console.log(
        `[multi-process] ${TOTAL_ACTIVITIES} activities in ${FAN_OUTS} fan-outs of ${FAN_N} + ${CHAINS} chains of ${CHAIN_STEPS}; ` +
          `workers ready in ${tReady - t0} ms; B killed after ${tKill - tReady} ms at ${runsAtKill} runs ` +
          `(A ${byWorkerAtKill.all ?? 0}, B ${byWorkerAtKill.activities ?? 0}, ${interruptedInB} in flight in B); ` +
          `all completed ${tDone - tKill} ms after the kill; ${runs} runs: ${duplicates} duplicate runs over ${ranTwice} tasks; ` +
          `fan-out episodes [${fanEpisodes.join(', ')}], chain episodes ${Math.min(...chainEpisodes)}..${Math.max(...chainEpisodes)}; ` +
          `total ${Date.now() - t0} ms`,
      );
    },
    120_000,
  );
});
