/**
 * Two worker processes on one task hub, and a kill -9 in the middle of a fan-out.
 *
 * Process A (fixtures/worker-process.ts, WORKER_KIND=all) runs orchestrators and activities; process B
 * (WORKER_KIND=activities) runs activities only. Both use short BullMQ locks (2 s, stalled check every 1 s)
 * and sweep the outbox every second. The test starts fan-outs and chains from this process, SIGKILLs B
 * while a good part (not all) of the activities has run, and A alone (no replacement) must finish every
 * instance: B's interrupted activity jobs come back through BullMQ's stalled-job check.
 *
 * A random kill -9 rarely lands in the two narrowest windows, so B also opens them on purpose (see the
 * fixture):
 * - DROP_WAKE_DISPATCH=1: every wake-up B's deliverEvent writes to the outbox stays there, as if B had
 *   crashed right after that script: the chains B serves move on only through A's outbox sweep;
 * - HANG_AFTER_DELIVER=3 on the instance `gated-0`: B (its deliveries apart from its jobs' completions, as
 *   in a process that runs episodes, not in one script) freezes in 3 of its jobs right after delivering
 *   their results. After the kill, BullMQ hands those jobs to A while the instance is still running
 *   (its gate activity holds it open until then): a job delivered again checks its task first, finds
 *   its result in and does not run the activity again, so no second result reaches the instance.
 *
 * Invariants checked (ARCHITECTURE.md, "Invariants to test" 1-3): every instance completes with the
 * exact output; in every history each task id is scheduled once and completed at most once, every
 * scheduled task completed, and no episode was committed twice; the fan-in counter still wakes a fan-out
 * only a handful of times; nothing is left in the outbox. Activities run at least once: the ones B had
 * started when it died run again in A, and the test reports how many ran twice.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { HistoryEvent } from '@durabull/core';
import { DurabullClient, type OrchestrationStatus } from '@durabull/client';
import { HubKeys, type RedisClient } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import {
  CHAIN_STEPS,
  CHAINING,
  FAN_OUT,
  type FanOutInput,
  GATED_FAN_OUT,
  type WorkerKind,
  expectedChaining,
  expectedFanOut,
  sideEffectKeys,
} from './fixtures/multi-process-shared.js';
import { deleteKeysByPattern, redisUrl, uniqueHub, connectRedis } from './helpers/redis.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/worker-process.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const FAN_OUTS = 4;
const FAN_N = 300;
const CHAINS = 20;
/** The gated fan-out: its gate task plus GATED_N work tasks. */
const GATED_N = 30;
const GATED_ID = 'gated-0';
/** Jobs of `gated-0` that B freezes in after delivering their results. */
const HUNG = 3;
const TOTAL_ACTIVITIES = FAN_OUTS * FAN_N + CHAINS * CHAIN_STEPS + GATED_N + 1;
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

function startWorkerProcess(kind: WorkerKind, hub: string, url: string, env: Record<string, string> = {}): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', FIXTURE], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env, REDIS_URL: url, DURABULL_HUB: hub, WORKER_KIND: kind },
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
let redis: RedisClient | undefined;
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
      redis = connectRedis(url);
      client = new DurabullClient({ connection: url, hub });
      const keys = sideEffectKeys(hub);

      // A takes no sticky wake-ups: B's deliveries would hand them to A's stream instead of writing the
      // wake-ups B must leave in the outbox (sticky hand-offs: test/src/sticky-episodes.test.ts).
      const a = startWorkerProcess('all', hub, url, { STICKY_EPISODES: '0' });
      const b = startWorkerProcess('activities', hub, url, {
        DROP_WAKE_DISPATCH: '1',
        HANG_AFTER_DELIVER: String(HUNG),
        HANG_INSTANCE_PREFIX: GATED_ID,
      });
      procs.push(a, b);
      await Promise.all([a.ready, b.ready]);
      const tReady = Date.now();

      // What runs, in the order it is started: the gated fan-out, then the chains (their first steps are
      // queued ahead of the fan-outs' 1,200 tasks, so both workers run some of them before the kill), then
      // the fan-outs.
      interface Run {
        id: string;
        kind: 'gated' | 'chain' | 'fan';
        name: string;
        input: unknown;
        output: unknown;
        tasks: number;
      }
      const gatedInput: FanOutInput = { n: GATED_N, offset: 100_001 };
      const runs: Run[] = [
        { id: GATED_ID, kind: 'gated', name: GATED_FAN_OUT, input: gatedInput, output: expectedFanOut(gatedInput), tasks: GATED_N + 1 },
        ...Array.from({ length: CHAINS }, (_, j): Run => {
          const input = `c${j}`;
          return { id: `chain-${j}`, kind: 'chain', name: CHAINING, input, output: expectedChaining(input), tasks: CHAIN_STEPS };
        }),
        ...Array.from({ length: FAN_OUTS }, (_, j): Run => {
          const input: FanOutInput = { n: FAN_N, offset: j * FAN_N + 1 };
          return { id: `fan-${j}`, kind: 'fan', name: FAN_OUT, input, output: expectedFanOut(input), tasks: FAN_N };
        }),
      ];
      expect(runs.reduce((n, r) => n + r.tasks, 0)).toBe(TOTAL_ACTIVITIES);
      await client.startNew(GATED_FAN_OUT, { instanceId: GATED_ID, input: gatedInput });
      await Promise.all(runs.slice(1).map((r) => client!.startNew(r.name, { instanceId: r.id, input: r.input })));

      // Kill B (kill -9) once a good part of the activities has run, B has done a share of them and frozen
      // in its HUNG jobs, and not all are done: B is then in the middle of its share of the fan-outs.
      const killAt = Math.floor(TOTAL_ACTIVITIES * KILL_AT);
      const killDeadline = Date.now() + 30_000;
      for (;;) {
        const [count, byB, hung] = await redis
          .pipeline()
          .get(keys.runs)
          .hget(keys.byWorker, 'activities')
          .scard(keys.hung)
          .exec()
          .then((r) => r!.map(([, v]) => Number(v ?? 0)));
        if (count! >= killAt && byB! > 0 && hung === HUNG) break;
        if (Date.now() > killDeadline) throw new Error(`activities did not get going: ${count} runs, ${byB} in B, ${hung} frozen in B, after 30 s`);
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
      const hungInB = await redis.smembers(keys.hung);
      expect(runsAtKill, 'B must be killed before every activity has run').toBeLessThan(TOTAL_ACTIVITIES);
      expect(hungInB.every((t) => t.startsWith(`${GATED_ID}#`))).toBe(true);

      // Open the gate of `gated-0` only once A has taken B's frozen jobs and finished them (without
      // running them again: their results are in), while the instance runs. BullMQ hands the jobs over ~2-4 s
      // after the kill. Activity job ids are `a-<instance>-<execution>-<task>` (RedisBackend); a finished
      // job is `completed`, or gone once newer completed jobs pushed it out (removeOnComplete).
      const gatedExec = (await client.getStatus(GATED_ID))!.executionId;
      const hungJobs = hungInB.map((t) => `a-${GATED_ID}-${gatedExec}-${t.split('#')[1]}`);
      const rerunDeadline = Date.now() + 20_000;
      let notRerun = hungJobs;
      let states: string[] = [];
      while (notRerun.length > 0) {
        if (Date.now() > rerunDeadline) throw new Error(`A did not finish the jobs B froze in within 20 s: ${notRerun.map((id, i) => `${id} (${states[i]})`).join(', ')}`);
        await sleep(50);
        states = await Promise.all(notRerun.map((id) => client!.backend.forInstance(GATED_ID).activityQueue.getJobState(id)));
        notRerun = notRerun.filter((_, i) => states[i] !== 'completed' && states[i] !== 'unknown');
        states = states.filter((st) => st !== 'completed' && st !== 'unknown');
      }
      const gatedBefore = await client.getStatus(GATED_ID);
      expect(gatedBefore?.runtimeStatus, 'gated-0 must still be open when A takes the frozen jobs').toBe('Running');
      await redis.set(keys.gate, '1');

      // A alone must finish everything.
      const statuses: OrchestrationStatus[] = await Promise.race([
        Promise.all(runs.map((r) => client!.waitForCompletion(r.id, { timeoutMs: 30_000, showHistory: true }))),
        failOnUnexpectedExit(a),
      ]);
      const tDone = Date.now();

      const episodes: Record<Run['kind'], number[]> = { gated: [], chain: [], fan: [] };
      for (const [j, st] of statuses.entries()) {
        const r = runs[j]!;
        expect(st.runtimeStatus, `${r.id}: ${JSON.stringify(st.failure)}`).toBe('Completed');
        expect(st.output, r.id).toBe(r.output);
        expect(checkHistory(r.id, st.history!), `${r.id}: scheduled tasks`).toBe(r.tasks);
        // No episode committed twice: one OrchestratorStarted per counted episode.
        expect(episodesInHistory(st.history!), `${r.id}: episodes in history`).toBe(st.episodes);
        episodes[r.kind].push(st.episodes);
      }
      // A fan-out needs 2 episodes: one schedules its tasks, and the fan-in counter wakes the next once the
      // last result is in. A second result of a task (a job run again after B died) is dropped by
      // deliverEvent before it touches the counter, and a wake-up dispatched twice (the fast path and a
      // sweep) has one job id per version, so a second run of it is a stale episode that commits nothing and
      // is not counted. So the kill should add no episode at all, and 2 is what runs show; the bound leaves
      // room for a wake or two should the protocol ever need them, while a wake-per-result regression
      // (~300) fails it.
      for (const e of [...episodes.fan, ...episodes.gated]) expect(e).toBeLessThanOrEqual(6);
      // A chain wakes once per result: 1 + CHAIN_STEPS episodes, kill or not.
      for (const e of episodes.chain) expect(e).toBe(CHAIN_STEPS + 1);

      // Side effects: every task ran at least once; the ones B had started when it died ran again (in A),
      // and the ones it froze in after delivering their results did not.
      const byTask = await redis.hgetall(keys.byTask);
      const expectedTasks = runs.flatMap((r) => Array.from({ length: r.tasks }, (_, t) => `${r.id}#${t}`));
      expect(Object.keys(byTask).sort()).toEqual(expectedTasks.sort());
      const totalRuns = Number((await redis.get(keys.runs)) ?? 0);
      expect(Object.values(byTask).reduce((n, v) => n + Number(v), 0)).toBe(totalRuns);
      const duplicates = totalRuns - TOTAL_ACTIVITIES;
      const ranTwice = Object.values(byTask).filter((v) => Number(v) > 1).length;
      expect(duplicates).toBeGreaterThanOrEqual(interruptedInB);
      expect(ranTwice).toBeGreaterThanOrEqual(interruptedInB);
      for (const t of hungInB) expect(Number(byTask[t]), `${t}: its result was in when its job was delivered again`).toBe(1);

      // Nothing is left behind in the outbox once the sweeps have had their turn.
      const outboxDeadline = Date.now() + 5000;
      let outbox = -1;
      while (Date.now() < outboxDeadline) {
        outbox = 0;
        // Every partition's outbox.
        for (const p of await client.backend.open()) outbox += (await redis.hlen(p.keys.outbox)) + (await redis.zcard(p.keys.outboxIndex));
        if (outbox === 0) break;
        await sleep(100);
      }
      expect(outbox, 'outbox entries left undispatched').toBe(0);
      // The sweep path really was taken: B left wake-ups in the outbox that only A's sweep dispatched.
      const wakesLeftByB = await redis.scard(keys.droppedWakes);
      expect(wakesLeftByB, 'wake-ups B left in the outbox').toBeGreaterThan(0);

      console.log(
        `[multi-process] ${TOTAL_ACTIVITIES} activities: ${FAN_OUTS} fan-outs of ${FAN_N}, ${CHAINS} chains of ${CHAIN_STEPS}, ` +
          `1 gated fan-out of ${GATED_N}+1; workers ready in ${tReady - t0} ms; ` +
          `B killed after ${tKill - tReady} ms at ${runsAtKill} runs (A ${byWorkerAtKill.all ?? 0}, B ${byWorkerAtKill.activities ?? 0}), ` +
          `with ${interruptedInB} activities in flight and ${HUNG} jobs frozen after delivery; ` +
          `${wakesLeftByB} wake-ups B left in the outbox; all completed ${tDone - tKill} ms after the kill; ` +
          `${totalRuns} runs: ${duplicates} duplicate runs over ${ranTwice} tasks; ` +
          `episodes: fan-outs [${episodes.fan.join(', ')}], gated [${episodes.gated.join(', ')}], ` +
          `chains ${Math.min(...episodes.chain)}..${Math.max(...episodes.chain)}; total ${Date.now() - t0} ms`,
      );
    },
    120_000,
  );
});
