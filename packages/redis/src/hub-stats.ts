/**
 * What the dashboard's charts draw, kept in Redis by durabull itself (no Prometheus needed):
 * per-minute counters and latency histograms that the workers add to (from memory, a few times a
 * minute: never a command on the per-episode or per-activity path), and once a minute a sample of
 * the hub's gauges (instances by status, queue depths, outbox). One hash per minute
 * (`HubKeys.stats`), expiring after {@link STATS_RETENTION_MINUTES}.
 */
import type { RuntimeStatus } from '@durabull/core';
import type { RedisBackend } from './redis-backend.js';
import { TaskHub } from './task-hub.js';

/** How long a minute's counters are kept. The charts show the last hour. */
export const STATS_RETENTION_MINUTES = 120;

/** Upper bounds (ms) of the latency buckets; one more bucket holds everything above the last. */
export const LATENCY_BUCKETS_MS: readonly number[] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000, 60_000, 300_000, 1_800_000];

/** The latencies the charts show: activity run time, schedule-to-start, episode time, instance end to end. */
export type LatencyKind = 'activity' | 'scheduleToStart' | 'episode' | 'instance';
export const LATENCY_KINDS: readonly LatencyKind[] = ['activity', 'scheduleToStart', 'episode', 'instance'];

/** The counters a minute has. */
export type StatsCounter = 'episodes' | 'activities' | 'activitiesFailed' | 'instancesCompleted' | 'instancesFailed';
const COUNTER_FIELDS: Record<StatsCounter, string> = { episodes: 'e', activities: 'a', activitiesFailed: 'af', instancesCompleted: 'ic', instancesFailed: 'if' };
const LATENCY_FIELDS: Record<LatencyKind, string> = { activity: 'ha', scheduleToStart: 'hs', episode: 'he', instance: 'hi' };
const COUNTERS = Object.keys(COUNTER_FIELDS) as StatsCounter[];
const COUNTER_INDEX = Object.fromEntries(COUNTERS.map((c, i) => [c, i])) as Record<StatsCounter, number>;
const LATENCY_INDEX: Record<LatencyKind, number> = { activity: 0, scheduleToStart: 1, episode: 2, instance: 3 };
const BUCKETS = LATENCY_BUCKETS_MS.length + 1;

export const STATUSES: readonly RuntimeStatus[] = ['Pending', 'Running', 'Suspended', 'ContinuedAsNew', 'Completed', 'Failed', 'Terminated'];
export type QueueState = 'waiting' | 'active' | 'delayed' | 'failed';
export const QUEUE_STATES: readonly QueueState[] = ['waiting', 'active', 'delayed', 'failed'];
export type QueueName = 'orchestrator' | 'activity';
export const QUEUE_NAMES: readonly QueueName[] = ['orchestrator', 'activity'];

/** The hub as of now: what the gauges of `/metrics` and the charts' once-a-minute samples show. */
export interface HubGauges {
  /** Instances by runtime status (the status index). */
  statuses: Record<RuntimeStatus, number>;
  /** Jobs per queue and state (BullMQ's counts; `waiting` includes prioritized jobs). */
  queues: Record<QueueName, Record<QueueState, number>>;
  /** Outbox entries not yet in BullMQ, and how long the oldest (not leased) has waited, ms. */
  outbox: { size: number; oldestAgeMs: number };
  /** The round trip of the pipelined read, ms. */
  roundTripMs: number;
}

const minuteOf = (ms: number) => Math.floor(ms / 60_000);

function bucketOf(ms: number): number {
  let i = 0;
  while (i < LATENCY_BUCKETS_MS.length && ms > LATENCY_BUCKETS_MS[i]!) i++;
  return i;
}

/**
 * Reads the hub's gauges: one pipeline (status index counts, outbox size and oldest entry) and
 * BullMQ's job counts of the two queues, at once.
 */
export async function readHubGauges(hub: RedisBackend | TaskHub, now = Date.now()): Promise<HubGauges> {
  // A hub of several partitions: each partition read as one, in parallel, and added up.
  if (hub instanceof TaskHub) {
    const parts = await hub.open();
    if (parts.length === 1) return readHubGauges(parts[0]!, now);
    const all = await Promise.all(parts.map((p) => readHubGauges(p, now)));
    const sum = all[0]!;
    for (const g of all.slice(1)) {
      for (const st of STATUSES) sum.statuses[st] += g.statuses[st];
      for (const q of ['orchestrator', 'activity'] as const) for (const k of Object.keys(sum.queues[q]) as QueueState[]) sum.queues[q][k] += g.queues[q][k];
      sum.outbox.size += g.outbox.size;
      sum.outbox.oldestAgeMs = Math.max(sum.outbox.oldestAgeMs, g.outbox.oldestAgeMs);
      sum.roundTripMs = Math.max(sum.roundTripMs, g.roundTripMs);
    }
    return sum;
  }
  const backend = hub;
  const k = backend.keys;
  const started = performance.now();
  const p = backend.redis.pipeline();
  for (const st of STATUSES) p.zlexcount(k.statusIndex, `[${st}|`, `[${st}|\xff`);
  p.hlen(k.outbox);
  p.zrange(k.outboxIndex, 0, 0, 'WITHSCORES');
  const types = ['wait', 'prioritized', 'active', 'delayed', 'failed'] as const;
  const [res, orch, act] = await Promise.all([
    p.exec(),
    backend.orchestratorQueue.getJobCounts(...types),
    backend.activityQueue.getJobCounts(...types),
  ]);
  const roundTripMs = performance.now() - started;
  const values = (res ?? []).map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  const statuses = {} as Record<RuntimeStatus, number>;
  STATUSES.forEach((st, i) => (statuses[st] = Number(values[i])));
  const oldest = values[STATUSES.length + 1] as string[];
  const depth = (c: Record<string, number>): Record<QueueState, number> => ({
    waiting: (c.wait ?? 0) + (c.prioritized ?? 0),
    active: c.active ?? 0,
    delayed: c.delayed ?? 0,
    failed: c.failed ?? 0,
  });
  return {
    statuses,
    queues: { orchestrator: depth(orch), activity: depth(act) },
    outbox: { size: Number(values[STATUSES.length]), oldestAgeMs: oldest.length === 2 ? Math.max(0, now - Number(oldest[1])) : 0 },
    roundTripMs,
  };
}

/**
 * A worker's side of the charts: counts and latencies added up in memory, written to the minute's
 * hash by {@link flush} (one pipelined round trip, with the hub's gauges sampled at most once a
 * minute). A flush that fails keeps its counts for the next one.
 */
export class HubStatsRecorder {
  /** minute -> what was counted in it, not yet written (counters, then each latency's buckets). */
  private pending = new Map<number, Float64Array>();
  /** The minute counted last (most calls fall in it: no map lookup). */
  private curMinute = -1;
  private cur: Float64Array | undefined;
  private sampledMinute = -1;
  private flushing: Promise<void> | undefined;

  constructor(private readonly backend: RedisBackend | TaskHub) {}

  count(counter: StatsCounter, now = Date.now(), n = 1): void {
    this.at(now)[COUNTER_INDEX[counter]]! += n;
  }

  latency(kind: LatencyKind, ms: number, now = Date.now()): void {
    if (!(ms >= 0)) return;
    this.at(now)[COUNTERS.length + LATENCY_INDEX[kind] * BUCKETS + bucketOf(ms)]! += 1;
  }

  private at(now: number): Float64Array {
    const minute = minuteOf(now);
    if (minute === this.curMinute && this.cur) return this.cur;
    let m = this.pending.get(minute);
    if (!m) this.pending.set(minute, (m = new Float64Array(COUNTERS.length + LATENCY_KINDS.length * BUCKETS)));
    this.curMinute = minute;
    this.cur = m;
    return m;
  }

  /** Writes what was counted since the last flush (one at a time; a second call waits for the first). */
  flush(now = Date.now()): Promise<void> {
    this.flushing ??= this.write(now).finally(() => (this.flushing = undefined));
    return this.flushing;
  }

  private async write(now: number): Promise<void> {
    const minute = minuteOf(now);
    const gauges = this.sampledMinute === minute ? undefined : await readHubGauges(this.backend, now);
    const batch = this.pending;
    this.pending = new Map();
    this.cur = undefined;
    this.curMinute = -1;
    const k = this.backend.keys;
    const p = this.backend.redis.pipeline();
    const expire = (m: number) => p.pexpireat(k.stats(m), (m + 1 + STATS_RETENTION_MINUTES) * 60_000);
    for (const [m, counts] of batch) {
      for (const [f, n] of fieldsOf(counts)) p.hincrby(k.stats(m), f, n);
      expire(m);
    }
    if (gauges) {
      const fields: Record<string, number> = { ob: gauges.outbox.size, oa: Math.round(gauges.outbox.oldestAgeMs), rt: Math.round(gauges.roundTripMs * 1000) };
      for (const st of STATUSES) fields[`s:${st}`] = gauges.statuses[st];
      for (const q of QUEUE_NAMES) for (const s of QUEUE_STATES) fields[`q:${q}:${s}`] = gauges.queues[q][s];
      p.hset(k.stats(minute), fields);
      expire(minute);
    }
    try {
      const res = await p.exec();
      for (const [err] of res ?? []) if (err) throw err;
      if (gauges) this.sampledMinute = minute;
    } catch (err) {
      // Kept for the next flush (HINCRBY is not idempotent, but a failed pipeline applied nothing
      // more than a connection loss can: at worst a minute counts a flush twice).
      for (const [m, counts] of batch) {
        const into = this.at(m * 60_000);
        counts.forEach((n, i) => (into[i]! += n));
      }
      throw err;
    }
  }
}

/** The hash fields of one minute's counts (those not 0). */
function fieldsOf(counts: Float64Array): [string, number][] {
  const out: [string, number][] = [];
  COUNTERS.forEach((c, i) => counts[i] && out.push([COUNTER_FIELDS[c], counts[i]!]));
  for (const kind of LATENCY_KINDS) {
    const base = COUNTERS.length + LATENCY_INDEX[kind] * BUCKETS;
    for (let b = 0; b < BUCKETS; b++) if (counts[base + b]) out.push([`${LATENCY_FIELDS[kind]}${b}`, counts[base + b]!]);
  }
  return out;
}

/** Percentiles of a latency per minute, ms (null: nothing measured that minute). */
export interface LatencySeries {
  count: number[];
  p50: (number | null)[];
  p95: (number | null)[];
  p99: (number | null)[];
}

/** The charts' data: per minute, oldest first. */
export interface HubStatsSeries {
  /** Start of each minute, epoch ms. */
  minutes: number[];
  /** Seconds of each minute counted (60, less for the current one). */
  seconds: number[];
  counters: Record<StatsCounter, number[]>;
  latency: Record<LatencyKind, LatencySeries>;
  /** Samples (null: none that minute). */
  statuses: Record<RuntimeStatus, (number | null)[]>;
  queues: Record<QueueName, Record<QueueState, (number | null)[]>>;
  outbox: { size: (number | null)[]; oldestAgeMs: (number | null)[] };
}

/** A quantile of a bucketed histogram, interpolated inside its bucket as Prometheus' `histogram_quantile` does. */
export function bucketQuantile(counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0 && seen + c >= rank) {
      const lo = i === 0 ? 0 : LATENCY_BUCKETS_MS[i - 1]!;
      // The overflow bucket has no upper bound: its lower one is the best estimate.
      if (i >= LATENCY_BUCKETS_MS.length) return lo;
      const hi = LATENCY_BUCKETS_MS[i]!;
      return lo + (hi - lo) * ((rank - seen) / c);
    }
    seen += c;
  }
  return LATENCY_BUCKETS_MS.at(-1)!;
}

/** Reads the last `minutes` minutes (the current one included) in one pipelined round trip. */
export async function readHubStats(backend: RedisBackend | TaskHub, opts: { minutes?: number; now?: number } = {}): Promise<HubStatsSeries> {
  const n = opts.minutes ?? 60;
  if (!Number.isInteger(n) || n < 1 || n > STATS_RETENTION_MINUTES) throw new RangeError(`minutes must be an integer from 1 to ${STATS_RETENTION_MINUTES}, got ${String(n)}`);
  const now = opts.now ?? Date.now();
  const last = minuteOf(now);
  const minutes = Array.from({ length: n }, (_, i) => last - n + 1 + i);
  const p = backend.redis.pipeline();
  for (const m of minutes) p.hgetall(backend.keys.stats(m));
  const res = (await p.exec()) ?? [];
  const hashes = res.map(([err, v]) => {
    if (err) throw err;
    return v as Record<string, string>;
  });
  const num = (h: Record<string, string>, f: string) => Number(h[f] ?? 0);
  const sample = (h: Record<string, string>, f: string) => (h[f] === undefined ? null : Number(h[f]));
  const counters = {} as HubStatsSeries['counters'];
  for (const c of Object.keys(COUNTER_FIELDS) as StatsCounter[]) counters[c] = hashes.map((h) => num(h, COUNTER_FIELDS[c]));
  const latency = {} as HubStatsSeries['latency'];
  for (const kind of LATENCY_KINDS) {
    const s: LatencySeries = { count: [], p50: [], p95: [], p99: [] };
    for (const h of hashes) {
      const counts = Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => num(h, `${LATENCY_FIELDS[kind]}${i}`));
      s.count.push(counts.reduce((a, b) => a + b, 0));
      s.p50.push(bucketQuantile(counts, 0.5));
      s.p95.push(bucketQuantile(counts, 0.95));
      s.p99.push(bucketQuantile(counts, 0.99));
    }
    latency[kind] = s;
  }
  const statuses = {} as HubStatsSeries['statuses'];
  for (const st of STATUSES) statuses[st] = hashes.map((h) => sample(h, `s:${st}`));
  const queues = {} as HubStatsSeries['queues'];
  for (const q of QUEUE_NAMES) {
    queues[q] = {} as Record<QueueState, (number | null)[]>;
    for (const s of QUEUE_STATES) queues[q][s] = hashes.map((h) => sample(h, `q:${q}:${s}`));
  }
  return {
    minutes: minutes.map((m) => m * 60_000),
    seconds: minutes.map((m) => (m === last ? Math.max(1, (now - m * 60_000) / 1000) : 60)),
    counters,
    latency,
    statuses,
    queues,
    outbox: { size: hashes.map((h) => sample(h, 'ob')), oldestAgeMs: hashes.map((h) => sample(h, 'oa')) },
  };
}
