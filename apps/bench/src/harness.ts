/**
 * The pieces every workload shares: the run's context, progress lines, timeouts, completion
 * tracking, RSS sampling, CPU accounting, and an in-process durabull worker + client.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { DurabullClient } from '@durabull/client';
import { createRedisClient } from '@durabull/redis';
import { DurabullWorker, type DurabullWorkerOptions } from '@durabull/worker';
import type { Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { registry } from './functions.js';
import type { RedisProbe } from './redis-probe.js';

/** What every workload gets. */
export interface Bench {
  /** Redis URL (the bench's own redis-server, or BENCH_REDIS_URL). */
  url: string;
  /** Unique per run: every task hub and baseline queue name carries it. */
  tag: string;
  /** An admin connection (INFO, SCAN, MEMORY USAGE, UNLINK). */
  admin: Redis;
  probe: RedisProbe;
  /** Jobs run at once per BullMQ worker: durabull's orchestrator and activity workers each, and the baseline's worker. */
  concurrency: number;
  /** BENCH_PARTITIONS: the partitions of durabull's hubs (default: durabull's default). */
  partitions?: number;
  /** BENCH_QUICK=1: skip W2 N=100,000. */
  quick: boolean;
  log(msg: string): void;
  /** A task hub name of this run: `bench-<tag>-<name>`. */
  hub(name: string): string;
  /** BullMQ prefix of this run's baseline queues. */
  baselinePrefix: string;
  /** The bench started this redis-server itself (it may change its config for a census, and pin it to a CPU). */
  ownsRedis: boolean;
  /** Its pid, when the bench started it. */
  redisPid?: number;
}

export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Rejects with TimeoutError after `ms`; the promise itself goes on. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what}: no result within ${Math.round(ms / 1000)} s`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** Calls `fn` every `everyMs` until the returned function is called. */
export function ticker(everyMs: number, fn: () => void): () => void {
  const timer = setInterval(fn, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Which of a set of ids have completed (and when, with what value): fed by a done channel, a
 * worker's `completed` event or QueueEvents; awaited by the workload.
 */
export class CompletionTracker {
  readonly at = new Map<string, number>();
  readonly values = new Map<string, unknown>();
  private waiters = new Set<{ pending: Set<string>; resolve: () => void }>();

  mark(id: string, value?: unknown): void {
    if (this.at.has(id)) return;
    this.at.set(id, performance.now());
    this.values.set(id, value);
    for (const w of this.waiters) {
      if (w.pending.delete(id) && w.pending.size === 0) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Resolves once every id has completed; TimeoutError after `timeoutMs`. */
  waitFor(ids: Iterable<string>, timeoutMs: number, what: string): Promise<void> {
    const pending = new Set<string>();
    for (const id of ids) if (!this.at.has(id)) pending.add(id);
    if (pending.size === 0) return Promise.resolve();
    let waiter!: { pending: Set<string>; resolve: () => void };
    const p = new Promise<void>((resolve) => {
      waiter = { pending, resolve };
      this.waiters.add(waiter);
    });
    return withTimeout(p, timeoutMs, `${what} (${pending.size} not completed)`).catch((err: unknown) => {
      this.waiters.delete(waiter);
      throw err;
    });
  }

  count(ids: readonly string[]): number {
    let n = 0;
    for (const id of ids) if (this.at.has(id)) n++;
    return n;
  }

  /** Forgets everything (between runs on one tracker). */
  clear(): void {
    this.at.clear();
    this.values.clear();
  }
}

/** Peak resident set size of this process over a run: sampled, and the kernel's high-water mark where available. */
export class RssSampler {
  private peak = 0;
  private timer: NodeJS.Timeout | undefined;
  private hwmReset = false;

  start(everyMs = 25): this {
    this.hwmReset = resetHwm();
    this.peak = process.memoryUsage.rss();
    this.timer = setInterval(() => {
      this.peak = Math.max(this.peak, process.memoryUsage.rss());
    }, everyMs);
    this.timer.unref();
    return this;
  }

  /** Peak RSS in bytes. */
  stop(): number {
    if (this.timer) clearInterval(this.timer);
    this.peak = Math.max(this.peak, process.memoryUsage.rss());
    const hwm = this.hwmReset ? readHwm() : undefined;
    return Math.max(this.peak, hwm ?? 0);
  }
}

/** Linux: resets VmHWM (the peak RSS) of this process to its current RSS. */
function resetHwm(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function readHwm(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, ms) this process used since `since`. */
export function cpuMsSince(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
}

/** A failed attempt of one of durabull's BullMQ jobs (retried with backoff by BullMQ). */
export interface JobFailure {
  queue: string;
  jobId: string;
  attempt: number;
  reason: string;
  at: number;
}

/** An in-process durabull worker (both kinds), a client, and a tracker fed by the hub's done channel. */
export interface DurabullRig {
  hub: string;
  worker: DurabullWorker;
  client: DurabullClient;
  done: CompletionTracker;
  /** Failed job attempts (DurabullWorker logs none of them: they are retried silently). */
  failures: JobFailure[];
  close(): Promise<void>;
}

export async function startDurabull(b: Bench, hub: string, extra: Partial<DurabullWorkerOptions> = {}): Promise<DurabullRig> {
  const worker = await new DurabullWorker({
    connection: b.url,
    hub,
    registry,
    logger: false,
    orchestratorConcurrency: b.concurrency,
    activityConcurrency: b.concurrency,
    ...(b.partitions !== undefined ? { partitions: b.partitions } : {}),
    ...extra,
  }).start();
  const client = new DurabullClient({ connection: b.url, hub, ...(b.partitions !== undefined ? { partitions: b.partitions } : {}) });
  const done = await subscribeDone(b.url, (await client.backend.open()).map((p) => p.keys.doneChannel));
  const failures: JobFailure[] = [];
  // DurabullWorker keeps its BullMQ workers private and logs no failed attempt; the bench looks anyway, so a job
  // that fails and is retried with backoff shows up in the output instead of as a silent stall.
  // One BullMQ worker per partition and queue.
  const internals = worker as unknown as { orchestratorWorkers: Worker[]; activityWorkers: Worker[] };
  for (const [queue, w] of [
    ...internals.orchestratorWorkers.map((w) => ['orchestrator', w] as const),
    ...internals.activityWorkers.map((w) => ['activity', w] as const),
  ]) {
    w.on('failed', (job, err) => {
      const f: JobFailure = { queue, jobId: job?.id ?? '?', attempt: job?.attemptsMade ?? 0, reason: errorMessage(err), at: performance.now() };
      failures.push(f);
      if (failures.length <= 3) b.log(`${hub}: ${queue} job ${f.jobId} failed (attempt ${f.attempt}, BullMQ retries it): ${f.reason}`);
    });
  }
  return {
    hub,
    worker,
    client,
    failures,
    done: done.tracker,
    async close() {
      await done.close();
      await client.close();
      await worker.close();
    },
  };
}

/** A tracker of the ids published on `channel` (durabull's done channel, or the baseline's). */
export async function subscribeDone(url: string, channels: string[]): Promise<{ tracker: CompletionTracker; close(): Promise<void> }> {
  const tracker = new CompletionTracker();
  const sub = createRedisClient(url);
  sub.on('message', (_channel: string, id: string) => tracker.mark(id));
  await sub.subscribe(...channels);
  return {
    tracker,
    close: async () => {
      await sub.quit().catch(() => undefined);
    },
  };
}

/**
 * Rejects when the rig stops making progress (episodes + activities unchanged): after `failedMs`
 * once a job attempt has failed, or after `idleMs` in any case. Call the returned `stop` when done.
 */
export function stallWatch(rig: DurabullRig, opts: { failedMs: number; idleMs: number }): { stalled: Promise<never>; stop(): void } {
  let last = -1;
  let since = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      const now = performance.now();
      const progress = rig.worker.stats.episodes + rig.worker.stats.activities;
      if (progress !== last) {
        last = progress;
        since = now;
        return;
      }
      const idle = now - since;
      const failed = rig.failures.at(-1);
      if ((failed && idle > opts.failedMs) || idle > opts.idleMs) {
        reject(
          new TimeoutError(
            `no progress for ${Math.round(idle / 1000)} s` +
              (failed ? ` after ${rig.failures.length} failed job attempt(s), last: ${failed.queue} job ${failed.jobId}: ${failed.reason}` : ''),
          ),
        );
      }
    }, 500);
  });
  stalled.catch(() => undefined);
  return { stalled, stop: () => clearInterval(timer) };
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
