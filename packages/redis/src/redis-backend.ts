/**
 * The Redis backend: every state transition of an instance is one Lua script; queued work goes
 * through the partition outbox into BullMQ. High-level operations only: KEYS/ARGV never leave this
 * file.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash, randomBytes } from 'node:crypto';
import {
  DurabullError,
  type ExecutionResult,
  type FailureDetails,
  type HistoryEvent,
  InstanceNotFoundError,
  type OrchestrationSession,
  OrchestratorNotServedError,
  type OrchestratorAction,
  RedisAuthError,
  type RuntimeStatus,
  StaleEpisodeError,
  type WaitSpec,
  ValidationError,
  assertFunctionName,
  assertOptionalNumber,
  assertScheduleId,
  isTerminalStatus,
  toFailureDetails,
} from '@durabull/core';
import { Queue, type JobsOptions } from 'bullmq';
import { closeConnection, createRedisClient, duplicateConnection, isRedisClient, type ConnectionLike, type RedisClient } from './connection.js';
import {
  type CheckedPayload,
  type Claim,
  DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES,
  DEFAULT_MAX_PAYLOAD_BYTES,
  PayloadRef,
  checkPayload,
  claimPayload,
  decode,
  decodeEvent,
  encode,
  encodeEvent,
  encodePayload,
  encodeStoredEvent,
  payloadRefsDecoded,
} from './codec.js';
import { ErrorCode, InstanceFinishedError, PayloadMissingError, toError } from './error-codes.js';
import { type ConnectionLogger, ConnectionMonitor, isConnectionError, silentLogger } from './connection-monitor.js';
import { ACTIVITY_QUEUE, HubKeys, ORCHESTRATOR_QUEUE, assertInstanceId } from './keys.js';
import { defineScripts } from './script-loader.js';
import { type BullFinish, COMMIT_EPISODE_KEYS, runComposite } from './job-composites.js';
import { WorkerRegistry } from './worker-registry.js';
import { ScheduleStore } from './schedules.js';
import { type EntityResponseData, EntityStore, parseRemoteMessage } from './entity-store.js';

export interface BackendOptions {
  connection?: ConnectionLike;
  /** Task hub name: the namespace of keys and queues. Default `default`. */
  hub?: string;
  /** Largest encoded payload (input, output, activity result, event data). Default 16 MiB. */
  maxPayloadBytes?: number;
  /**
   * Claim check: a payload (input, output, activity input or result, event data, reason) whose
   * encoding is larger than this many bytes is stored apart, under a key of its own, and history,
   * jobs and the instance state carry a small reference to it. Written atomically with what
   * references it; read back transparently; deleted with the instance. `maxPayloadBytes` still
   * applies. Default 64 KiB; 0 (or Infinity) stores every payload inline. Readers resolve
   * references whatever this is set to.
   */
  claimCheckThresholdBytes?: number;
  /**
   * Instances whose decoded history (and, with extended sessions, code) a worker keeps between
   * episodes (0 turns it off). Default 1000.
   */
  historyCacheSize?: number;
  /**
   * Events the cache may hold in all instances together; the least recently used instances go
   * first, and an instance whose history alone is larger is not cached. Default 1,000,000.
   */
  historyCacheEvents?: number;
  /**
   * ioredis' `commandTimeout` for the connections this backend opens: a command without a reply
   * after this many ms rejects with ioredis' "Command timed out" (while Redis is down commands wait
   * in ioredis' queue until it is back; this bounds that wait). The command itself stays queued and
   * may still be applied. Default: none (a worker's commands wait for Redis as long as it takes).
   * Not applied to a connection given as an ioredis client: its own options hold.
   */
  commandTimeoutMs?: number;
  /**
   * Where connection problems are logged: each connection's outage once when it starts (warn) and
   * once when it ends (info), through {@link ConnectionMonitor}. Default: nothing is logged (but
   * every connection still has an error listener).
   */
  logger?: ConnectionLogger;
  /** Names the component in those log lines. Default `backend`. */
  component?: string;
  /**
   * How long the orchestrator names of the hub's live workers are reused by the start check
   * (`startInstance` with `checkServed`) before they are read again. Default 2000 ms.
   */
  servedNamesCacheMs?: number;
  /**
   * A checked start (`checkServed`) hands its first episode to a live worker that runs the
   * orchestrator and reads the wake-ups handed to it (sticky episodes), through that worker's
   * stream, instead of a job on the orchestrator queue; the outbox keeps the fallback. Default true.
   */
  stickyStarts?: boolean;
}

export interface CachedHistory {
  exec: string;
  lastId: string;
  /**
   * How many stream entries `events` were decoded from: a load checks it against the stream's
   * length, so a history that lost entries (a Redis restart that dropped the last second of its
   * append-only file) is read again in full instead of being patched onto events Redis no longer has.
   */
  entries: number;
  events: CachedEvent[];
  /** `events.length` when last put in the cache (what it adds to the cache's event count). */
  counted?: number;
  /**
   * Set by this worker's own commit of a Running episode: the instance as that commit left it
   * (`state.version` is what Redis holds unless someone else wrote since) and what its code waits
   * on. A result for it can then run its episode from here without reading Redis first.
   */
  committed?: { state: InstanceState; wait: WaitSpec; session?: OrchestrationSession };
}

/**
 * A history event as the worker's cache keeps it: decoded, or, when it carries an object payload
 * (an input, result, failure or reason that orchestrator code receives and could mutate), its
 * bytes, decoded afresh for each episode, so that every replay sees what Redis holds.
 */
type CachedEvent = HistoryEvent | Buffer;

function hasObjectPayload(e: HistoryEvent): boolean {
  const x = e as { input?: unknown; result?: unknown; failure?: unknown; reason?: unknown };
  const obj = (v: unknown) => typeof v === 'object' && v !== null;
  return obj(x.input) || obj(x.result) || obj(x.failure) || obj(x.reason);
}

/** `event` in the cache's form; `bytes` are its stored encoding when known (never with references in it). */
function toCached(event: HistoryEvent, bytes: Buffer | undefined): CachedEvent {
  return hasObjectPayload(event) ? (bytes ?? encodeEvent(event)) : event;
}

/**
 * Hands the cached session (if any) to one episode: a session is the code's live state, so two
 * episodes never share one (another episode of the instance replays from the cache instead).
 */
function takeSession(entry: CachedHistory): OrchestrationSession | undefined {
  const session = entry.committed?.session;
  if (!session) return undefined;
  delete entry.committed!.session;
  return session.resumable && session.historyLength === entry.events.length ? session : undefined;
}

/**
 * An episode's input from a cache entry: its history in the cache's form and, with `withSession`,
 * the code the entry kept (then `history` stays empty: the session goes on instead of a replay).
 */
function episodeFromCache(entry: CachedHistory, state: InstanceState, inbox: InboxItem[], withSession: boolean): LoadedEpisode {
  const cachedNow = entry.events.slice();
  const session = withSession ? takeSession(entry) : undefined;
  const loaded: LoadedEpisode = { state, history: session ? [] : materialize(cachedNow), inbox, stream: { entries: entry.entries, lastId: entry.lastId, cached: cachedNow } };
  if (session) loaded.session = session;
  return loaded;
}

/** Fresh events for an episode from the cache's form. */
function materialize(events: readonly CachedEvent[]): HistoryEvent[] {
  return events.map((e) => (Buffer.isBuffer(e) ? decodeEvent(e) : e));
}

/** Options of `commitEpisode` for a worker that runs the activities around an episode itself. */
export interface CommitOptions {
  /**
   * The task result this episode consumed directly (the last of `prefix`), already encoded: the
   * worker that ran the activity ran the episode from its cached history. The commit applies only
   * if nothing else reached the instance since the episode it started from; otherwise it writes
   * nothing and `commitEpisode` returns `{ refused: true }`.
   */
  direct?: { seq: number; encoded: Buffer; event?: HistoryEvent };
  /** Outbox entry removed in the same script: the eagerly run activity whose result this is. */
  ackJobId?: string;
  /** Outbox entry written leased until `until` (ms): an activity the caller will run itself. */
  lease?: { jobId: string; until: number };
  /**
   * The episode's trace context (W3C entries), carried in the jobs this commit writes (activities,
   * timers, sub-orchestration starts) so that their spans are children of the episode's.
   */
  trace?: Record<string, string>;
  /**
   * The session that ran this episode (the code's live state): accepted and kept with the cached
   * history when the commit is remembered, so that the next episode resumes it instead of replaying.
   */
  session?: OrchestrationSession;
  /**
   * The worker that keeps this episode's session (Running): recorded in the state (`sw`), so that
   * the delivery that wakes the next episode hands it to that worker ({@link DeliverResult.sticky}).
   */
  stickyWorker?: string;
  /**
   * Activity jobs go through the outbox like the other jobs (the caller dispatches them) instead of
   * being added to BullMQ by the commit itself: for tools and tests of the outbox path.
   */
  activityJobsViaOutbox?: boolean;
  /**
   * The orchestrator job that runs this episode, completed by the commit's own script
   * (job-composites.ts, `finishEpisode`) when the commit applies or finds the episode stale; the job's
   * queue must be this partition's. `command` builds BullMQ's moveToFinished (its Lua, key count,
   * keys then arguments) when the commit is sent; `reply` is then moveToFinished's raw reply, and
   * `done` says the job was completed (or BullMQ refused: a negative reply).
   */
  finish?: EpisodeJobFinish;
}

/** commitEpisode's reply: its code, then (committed) version, wake job id and payload, parent job id and payload, history entry id. */
type CommitReply = [number, number?, string?, string?, string?, string?, string?];

/** {@link CommitOptions.finish}. */
export interface EpisodeJobFinish {
  command(): BullFinish;
  done?: boolean;
  reply?: unknown;
}

/** An event encoded for storage: its bytes, with a large payload replaced by a reference, and that payload. */
export interface StoredEvent {
  bytes: Buffer;
  /** Payloads stored apart with the event (claim check). */
  claims: Claim[];
}

/** A script's claim-check arguments: the count, then pairs of token and encoded payload. */
function claimArgs(claims: readonly Claim[]): Arg[] {
  const out: Arg[] = [claims.length];
  for (const c of claims) out.push(c.token, c.blob);
  return out;
}

/** Packs encoded events into one history batch entry: records of <u32 big-endian length><event>. */
function packBatch(events: Buffer[]): Buffer {
  let size = 0;
  for (const e of events) size += 4 + e.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  for (const e of events) {
    out.writeUInt32BE(e.length, at);
    e.copy(out, at + 4);
    at += 4 + e.length;
  }
  return out;
}

/** Decodes one history stream entry (`e`: one event; `b`: a batch) into `into`. */
function decodeStreamEntry(fields: Buffer[], into: HistoryEvent[], raw?: Buffer[]): void {
  const kind = fields[0]!.toString('latin1');
  const value = fields[1]!;
  if (kind === 'e') {
    into.push(decodeEvent(value));
    raw?.push(value);
    return;
  }
  for (let at = 0; at < value.length; ) {
    const len = value.readUInt32BE(at);
    const bytes = value.subarray(at + 4, at + 4 + len);
    into.push(decodeEvent(bytes));
    raw?.push(bytes);
    at += 4 + len;
  }
}

/** Orders Redis stream ids (`<ms>-<seq>`). */
function compareStreamIds(a: string, b: string): number {
  const [am, as] = a.split('-');
  const [bm, bs] = b.split('-');
  return Number(am) - Number(bm) || Number(as) - Number(bs);
}

/** Orchestrator queue job: replay instance `i`, execution `x`, at version `v`. */
export interface EpisodeJobData {
  i: string;
  x: string;
  v: number;
  /**
   * First episode only, when its client queued it: the ExecutionStarted event as stored (base64
   * msgpack), so that the worker runs it without a load (history is empty, the inbox starts with it).
   */
  s?: string;
  /**
   * A wake that one delivery made while the inbox held nothing else: that inbox entry as stored
   * (base64), so that a worker whose cache holds the instance as its own last commit left it runs
   * the episode without a load.
   */
  e?: string;
}

/** Largest ExecutionStarted event a first episode's job carries (a larger one is loaded); the same bound for a wake's inbox entry. */
const FIRST_EPISODE_MAX_BYTES = 8 * 1024;
/** Orchestrator queue job: a durable timer of instance `i` fires. */
export interface TimerJobData {
  i: string;
  x: string;
  s: number;
  f: number;
  /** The trace context of the episode that created the timer, when it was traced. */
  t?: Record<string, string>;
}
/** Activity queue job: run activity `n` (task `s`) of instance `i`, execution `x`, input `p` (base64 msgpack). */
export interface ActivityJobData {
  i: string;
  x: string;
  s: number;
  n: string;
  p: string;
  /** The trace context of the episode that scheduled the activity, when it was traced. */
  t?: Record<string, string>;
  /** The call's start-to-close timeout (ms), when it gave one. */
  c?: number;
  /** The call's heartbeat timeout (ms), when it gave one. */
  h?: number;
  /** A retry of a retry policy: the task id of its first attempt (whose heartbeat details it reads). */
  r?: number;
}

/** What the caller of an activity gave besides its name and input (timeouts, the first attempt of a retry). */
export interface ActivityCallOptions {
  startToCloseTimeoutMs?: number;
  heartbeatTimeoutMs?: number;
  retryOf?: number;
}

/** Outbox payload of a sub-orchestration start. */
interface SubOrchestrationStart {
  i: string;
  n: string;
  p: string;
  pi: string;
  px: string;
  ps: number;
  /** The trace context of the parent's episode that asked for the child, when it was traced. */
  t?: Record<string, string>;
}

export interface InstanceState {
  instanceId: string;
  name: string;
  runtimeStatus: RuntimeStatus;
  executionId: string;
  version: number;
  scheduled: boolean;
  episodes: number;
  input: unknown;
  output: unknown;
  failure?: FailureDetails;
  customStatus: unknown;
  createdAt: Date;
  lastUpdatedAt: Date;
  completedAt?: Date;
  /** Set for a sub-orchestration. */
  parent?: ParentLink;
  /** A delayed start: when its first episode was to run. */
  scheduledStartTime?: Date;
  /** Set for an instance a schedule started: the schedule and its tick. */
  schedule?: ScheduleLink;
}

/** The schedule that started an instance, and the tick it started it for. */
export interface ScheduleLink {
  scheduleId: string;
  tick: Date;
}

export interface InboxItem {
  kind: 'c' | 'f' | 'e';
  seq: string;
  event: HistoryEvent;
  /** The event's stored bytes, when they hold no reference to a payload stored apart (for the worker's cache). */
  raw?: Buffer;
}

export interface LoadedEpisode {
  /** The state; its `input`, `output` and `customStatus` may be unresolved references ({@link PayloadRef}): an episode does not read them. */
  state: InstanceState;
  history: HistoryEvent[];
  inbox: InboxItem[];
  /**
   * Bookkeeping of the worker's cache: the stream entries `history` came from (their number and
   * the last one's id) and `history` in the cache's form (not shared with the episode's code).
   */
  stream?: { entries: number; lastId: string; cached: CachedEvent[] };
  /** SHA-1 of the inbox entries as read (each as <u32 length><entry>): the commit checks it is still that inbox. */
  inboxDigest?: string;
  /**
   * State and history came from the worker's cache, not from Redis (a wake job that carried its
   * inbox): the commit applies only while the history still ends at `stream.lastId` and the inbox
   * is the one carried; otherwise `commitEpisode` returns `{ refused: true }` and the caller loads.
   */
  fromCache?: boolean;
  /**
   * The code as this worker's last commit left it (a kept session): the episode resumes it with its
   * new events instead of replaying, and `history` is then empty (`stream.cached` holds it).
   */
  session?: OrchestrationSession;
}

/** `crypto.hash` (Node 20.12 and later). */
const oneShotHash = (nodeCrypto as { hash?: (algorithm: string, data: Buffer) => string }).hash;

/** The digest `commitEpisode` checks the consumed inbox entries against. */
function inboxDigest(entries: readonly Buffer[]): string {
  if (entries.length === 1 && oneShotHash) {
    // The common case (one result): one-shot hashing costs half of a Hash object's.
    const e = entries[0]!;
    const framed = Buffer.allocUnsafe(4 + e.length);
    framed.writeUInt32BE(e.length, 0);
    e.copy(framed, 4);
    return oneShotHash('sha1', framed);
  }
  const h = createHash('sha1');
  const len = Buffer.allocUnsafe(4);
  for (const e of entries) {
    len.writeUInt32BE(e.length, 0);
    h.update(len);
    h.update(e);
  }
  return h.digest('hex');
}

export interface DeliverResult {
  status: 'delivered' | 'duplicate' | 'stale';
  /** Set when the event woke the orchestrator. */
  wakeJobId?: string;
  /** With `dispatch: false`: the wake's outbox entry, for the caller to dispatch (its payload may carry the inbox entry: {@link EpisodeJobData.e}). */
  wake?: [jobId: string, payload: string];
  /** With `load: true`: what the woken episode needs, read in the same script. */
  loaded?: LoadedEpisode;
  /**
   * The wake-up was handed to the worker that keeps the instance's session (its sticky stream):
   * nothing to dispatch or run here. Its outbox entry stays until that worker's commit, or the sweep.
   */
  sticky?: boolean;
}

export interface CommitResult {
  version: number;
  /** With `direct`, or for a `fromCache` episode: the instance had moved on (an event arrived, an episode is queued, another commit); nothing was written. */
  refused?: boolean;
  /** Outbox entries this commit wrote, for the committing worker to dispatch at once. */
  outbox: [jobId: string, payload: string][];
}

type Arg = string | Buffer | number;
type ScriptClient = RedisClient & {
  startInstance(...args: Arg[]): Promise<[number, string?, string?, number?]>;
  deliverEvent(...args: Arg[]): Promise<unknown[]>;
  deliverEventBuffer(...args: Arg[]): Promise<unknown[]>;
  commitEpisode(...args: Arg[]): Promise<CommitReply>;
  terminateInstance(...args: Arg[]): Promise<[number, string?, string?, string?, ...string[]]>;
  heartbeatActivity(...args: Arg[]): Promise<[number, string?]>;
  endActivityAttempt(...args: Arg[]): Promise<number>;
  claimExpiredActivities(...args: Arg[]): Promise<string[]>;
  setSuspended(...args: Arg[]): Promise<[number, string?, string?]>;
  purgeInstance(...args: Arg[]): Promise<[number, string?]>;
  ackOutbox(...args: Arg[]): Promise<number | string[]>;
};

/** Parent of a sub-orchestration. */
export interface ParentLink {
  instanceId: string;
  executionId: string;
  taskId: number;
}

export interface ListQuery {
  /** Only instances in one of these statuses. */
  status?: RuntimeStatus | RuntimeStatus[];
  /** Only instances of this orchestrator. */
  name?: string;
  /** Only instances this schedule started. */
  scheduleId?: string;
  createdFrom?: Date;
  createdTo?: Date;
  /** Default 100, at most 1000. */
  pageSize?: number;
  /** From the previous page's `nextCursor`. */
  cursor?: string;
}

export interface ListPage {
  instances: InstanceState[];
  /** Pass it as `cursor` for the next page; undefined on the last page. */
  nextCursor?: string;
}

/** The outbox entry of an activity job; `input` is the payload or its reference (claim check). */
function activityEntry(
  instanceId: string,
  executionId: string,
  seq: number,
  name: string,
  input: unknown,
  call?: ActivityCallOptions,
  trace?: Record<string, string>,
): [string, string] {
  const data: ActivityJobData = { i: instanceId, x: executionId, s: seq, n: name, p: encode(input).toString('base64') };
  if (trace) data.t = trace;
  // Only what the call gave: a plain call's job is no larger than before.
  if (call?.startToCloseTimeoutMs !== undefined) data.c = call.startToCloseTimeoutMs;
  if (call?.heartbeatTimeoutMs !== undefined) data.h = call.heartbeatTimeoutMs;
  if (call?.retryOf !== undefined) data.r = call.retryOf;
  return [activityJobId(instanceId, executionId, seq), `A${JSON.stringify(data)}`];
}

/** The job id (and outbox entry id) of activity task `seq` of an execution. */
export function activityJobId(instanceId: string, executionId: string, seq: number): string {
  return `a-${instanceId}-${executionId}-${seq}`;
}

/** The job id (and outbox entry id) of timer `seq` of an execution. */
export function timerJobId(instanceId: string, executionId: string, seq: number): string {
  return `t-${instanceId}-${executionId}-${seq}`;
}

/** The outbox entry id of the start of sub-orchestration task `seq` of an execution. */
export function subStartJobId(instanceId: string, executionId: string, seq: number): string {
  return `s-${instanceId}-${executionId}-${seq}`;
}

/** The deadline record (and cancellation key) of an activity task: `<instance>|<execution>|<task id>`. */
export function attemptMember(instanceId: string, executionId: string, taskId: number): string {
  return `${instanceId}|${executionId}|${taskId}`;
}

/** How long an instance's heartbeat details are kept after the last heartbeat that wrote any (30 days); purge deletes them at once. */
export const HEARTBEAT_DETAILS_TTL_MS = 30 * 24 * 3600 * 1000;

/** What a worker recorded of a running attempt: `<attempt>|<start ms>|<start-to-close ms, 0: none>|<heartbeat ms, 0: none>|<name>`. */
export interface AttemptInfo {
  attempt: number;
  startedAt: number;
  startToCloseTimeoutMs: number;
  heartbeatTimeoutMs: number;
  name: string;
}

export function formatAttemptInfo(a: AttemptInfo): string {
  return `${a.attempt}|${a.startedAt}|${a.startToCloseTimeoutMs}|${a.heartbeatTimeoutMs}|${a.name}`;
}

function parseAttemptInfo(info: string): AttemptInfo | undefined {
  const [attempt, startedAt, stc, hb, name] = info.split('|');
  if (name === undefined) return undefined;
  return { attempt: Number(attempt), startedAt: Number(startedAt), startToCloseTimeoutMs: Number(stc), heartbeatTimeoutMs: Number(hb), name };
}

/** A recorded attempt whose deadline passed (`claimExpiredActivities`). */
export interface ExpiredAttempt extends AttemptInfo {
  instanceId: string;
  executionId: string;
  taskId: number;
  deadline: number;
  /** The record as written. */
  info: string;
}

/** Random bytes for execution ids, drawn from the system's generator 6 KiB at a time (a call per id costs about 1.8 µs, a slice of the pool 0.1). */
let idPool = Buffer.alloc(0);
let idPoolAt = 0;

/** A random id for a raised event (its delivery's idempotency key). */
export function newEventId(): string {
  return newExecutionId();
}

export function newExecutionId(): string {
  if (idPoolAt + 6 > idPool.length) {
    idPool = randomBytes(6 * 1024);
    idPoolAt = 0;
  }
  const id = idPool.toString('hex', idPoolAt, idPoolAt + 6);
  idPoolAt += 6;
  return id;
}

/** Decoded histories of recently replayed instances, least recently used first, bounded by instances and events. */
export class HistoryCache {
  private readonly map = new Map<string, CachedHistory>();
  /** Events held, all instances together. */
  private events = 0;
  constructor(
    readonly capacity: number,
    readonly maxEvents: number,
  ) {}

  get(instanceId: string): CachedHistory | undefined {
    return this.map.get(instanceId);
  }

  /** Puts an instance's entry in the cache (as the most recently used), then evicts to the bounds. */
  set(instanceId: string, entry: CachedHistory): void {
    const old = this.map.get(instanceId);
    if (old) {
      this.events -= old.counted ?? 0;
      this.map.delete(instanceId);
    }
    entry.counted = entry.events.length;
    this.events += entry.counted;
    this.map.set(instanceId, entry);
    // The oldest first; the entry just put goes too when it alone is over the event budget.
    while (this.map.size > 0 && (this.map.size > this.capacity || this.events > this.maxEvents)) {
      this.delete(this.map.keys().next().value!);
    }
  }

  delete(instanceId: string): void {
    const old = this.map.get(instanceId);
    if (!old) return;
    this.events -= old.counted ?? 0;
    this.map.delete(instanceId);
  }
}

/**
 * What the partitions of one hub share in a process: the connections, the history cache (bounded
 * for the process, not per partition), the connection monitor.
 */
export class SharedResources {
  readonly redis: RedisClient;
  readonly ownsClient: boolean;
  readonly connections: ConnectionMonitor;
  readonly log: ConnectionLogger;
  readonly component: string;
  readonly maxPayloadBytes: number;
  readonly claimCheckThresholdBytes: number;
  readonly servedNamesCacheMs: number | undefined;
  readonly stickyStarts: boolean;
  readonly historyCache: HistoryCache;
  private _queueConnection: RedisClient | undefined;

  /** Checks the options, then connects (a refused option leaves no connection open). */
  constructor(opts: BackendOptions = {}) {
    const servedMs = opts.servedNamesCacheMs;
    if (servedMs !== undefined && (typeof servedMs !== 'number' || !(servedMs >= 0))) {
      throw new ValidationError(`servedNamesCacheMs must be a number of ms >= 0, got ${String(servedMs)}`);
    }
    this.servedNamesCacheMs = servedMs;
    if (opts.stickyStarts !== undefined && typeof opts.stickyStarts !== 'boolean') throw new ValidationError(`stickyStarts must be a boolean, got ${String(opts.stickyStarts)}`);
    this.stickyStarts = opts.stickyStarts !== false;
    this.ownsClient = !isRedisClient(opts.connection);
    assertOptionalNumber('', 'maxPayloadBytes', opts.maxPayloadBytes, 0);
    const timeout = opts.commandTimeoutMs;
    if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0)) {
      throw new ValidationError(`commandTimeoutMs must be a number of milliseconds > 0, got ${String(timeout)}`);
    }
    this.log = opts.logger ?? silentLogger;
    this.component = opts.component ?? 'backend';
    this.connections = new ConnectionMonitor(this.log, this.component);
    this.maxPayloadBytes = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    const threshold = opts.claimCheckThresholdBytes ?? DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES;
    if (typeof threshold !== 'number' || !(threshold >= 0)) {
      throw new ValidationError(`claimCheckThresholdBytes must be a number of bytes >= 0 (0 turns the claim check off), got ${String(threshold)}`);
    }
    this.claimCheckThresholdBytes = threshold;
    const cacheSize = opts.historyCacheSize ?? 1000;
    if (typeof cacheSize !== 'number' || !Number.isInteger(cacheSize) || cacheSize < 0) {
      throw new ValidationError(`cachedInstances (historyCacheSize) must be an integer >= 0 (0 turns the cache off), got ${String(cacheSize)}`);
    }
    const cacheEvents = opts.historyCacheEvents ?? 1_000_000;
    if (typeof cacheEvents !== 'number' || !Number.isInteger(cacheEvents) || cacheEvents < 0) {
      throw new ValidationError(`cachedHistoryEvents (historyCacheEvents) must be an integer >= 0, got ${String(cacheEvents)}`);
    }
    this.historyCache = new HistoryCache(cacheSize, cacheEvents);
    // Connected once the options are known to be good: a refused option leaves no connection open.
    this.redis = createRedisClient(opts.connection, timeout !== undefined ? { commandTimeout: timeout } : {});
    this.connections.watch(this.redis);
    defineScripts(this.redis);
  }

  /**
   * The connection BullMQ uses (queues here, workers in @durabull/worker): a second one, because
   * ioredis copies every script defined on a connection into each pipeline built on it, and BullMQ
   * defines dozens; our pipelines stay cheap on a connection with only our scripts.
   */
  get queueConnection(): RedisClient {
    if (!this._queueConnection) {
      this._queueConnection = duplicateConnection(this.redis);
      this.connections.watch(this._queueConnection);
    }
    return this._queueConnection;
  }

  /** Closes the connections opened here (not a client given as an ioredis instance). */
  async close(): Promise<void> {
    if (this._queueConnection) await closeConnection(this._queueConnection);
    if (this.ownsClient) await closeConnection(this.redis);
  }
}

/** How a partition of a hub of several is made (by the hub's router, {@link TaskHub}). */
export interface PartitionSetup {
  shared: SharedResources;
  /** This partition's number, and the hub's partition count. */
  index: number;
  count: number;
  /** The partition that holds an instance or entity (this one or another of the same hub). */
  route: (id: string) => RedisBackend;
  /** The registry the start check reads (partition 0's: every worker registers in every partition). */
  registry?: WorkerRegistry;
}

/**
 * One partition of a task hub: its keys (one hash tag), its scripts, its outbox and queues. A hub
 * of one partition is one of these (built alone, it is partition 0 of 1); a hub of several is
 * routed by {@link TaskHub}.
 */
export class RedisBackend {
  readonly keys: HubKeys;
  readonly redis: RedisClient;
  readonly maxPayloadBytes: number;
  /** The claim-check threshold as configured (0: off). */
  readonly claimCheckThresholdBytes: number;
  /** The same, as a size to compare with (Infinity when off). */
  private readonly claimThreshold: number;
  private _orchestratorQueue: Queue | undefined;
  private pendingAcks: string[] = [];
  private ackScheduled = false;
  /** Decoded histories of recently replayed instances (shared by the hub's partitions in this process). */
  private readonly historyCache: HistoryCache;
  private _activityQueue: Queue | undefined;
  /** Every connection this backend uses has its error listener here; an outage is logged once. */
  readonly connections: ConnectionMonitor;
  private readonly log: ConnectionLogger;
  private readonly component: string;
  /** The hub's worker registry: workers' entries, and the start check against the names they run. */
  readonly workerRegistry: WorkerRegistry;
  /** This partition's part of the registry (a worker's heartbeat writes it in every partition it serves). */
  readonly partitionRegistry: WorkerRegistry;
  /** Durable entities: state, inboxes, batches ([entity-store.ts](./entity-store.ts)). */
  readonly entities: EntityStore;
  readonly shared: SharedResources;
  /** Whether this partition owns the shared connections (built alone): then close() closes them. */
  private readonly ownsShared: boolean;
  /** The partition of an instance or entity id (itself, for a hub of one partition). */
  readonly route: (id: string) => RedisBackend;
  /**
   * The id of the worker this backend serves ("" for a client): a delivery that wakes an instance
   * whose session another live worker keeps hands the wake-up to that worker; one this worker
   * keeps itself is left to it.
   */
  workerId = '';
  /** Run before a start's script (the router stores the hub's partition map there, once). */
  beforeWrite: (() => Promise<void>) | undefined;

  constructor(opts: BackendOptions = {}, setup?: PartitionSetup) {
    const hub = opts.hub ?? 'default';
    // Checked before connecting: a refused option leaves no connection behind.
    this.keys = new HubKeys(hub, setup?.index ?? 0, setup?.count ?? 1);
    this.ownsShared = !setup;
    this.shared = setup?.shared ?? new SharedResources(opts);
    const sh = this.shared;
    this.redis = sh.redis;
    this.connections = sh.connections;
    this.log = sh.log;
    this.component = sh.component;
    this.maxPayloadBytes = sh.maxPayloadBytes;
    this.claimCheckThresholdBytes = sh.claimCheckThresholdBytes;
    this.claimThreshold = sh.claimCheckThresholdBytes === 0 ? Number.POSITIVE_INFINITY : sh.claimCheckThresholdBytes;
    this.historyCache = sh.historyCache;
    this.route = setup?.route ?? (() => this);
    this.partitionRegistry = new WorkerRegistry(this.redis, this.keys, sh.servedNamesCacheMs);
    this.workerRegistry = setup?.registry ?? this.partitionRegistry;
    this.entities = new EntityStore(this.redis, this.keys, (id) => this.route(id));
  }

  /** The task hub's name. */
  get hub(): string {
    return this.keys.hub;
  }

  /** This partition's number. */
  get partition(): number {
    return this.keys.partition;
  }

  /** The connection BullMQ uses ({@link SharedResources.queueConnection}). */
  get queueConnection(): RedisClient {
    return this.shared.queueConnection;
  }

  private get scripts(): ScriptClient {
    return this.redis as ScriptClient;
  }

  get orchestratorQueue(): Queue {
    this._orchestratorQueue ??= this.newQueue(ORCHESTRATOR_QUEUE);
    return this._orchestratorQueue;
  }

  get activityQueue(): Queue {
    this._activityQueue ??= this.newQueue(ACTIVITY_QUEUE);
    return this._activityQueue;
  }

  private newQueue(name: string): Queue {
    const q = new Queue(name, { connection: this.queueConnection, prefix: this.keys.queuePrefix });
    // BullMQ passes on its connection's errors; without a listener it prints each one. An outage is
    // logged by the connection monitor, anything else here.
    q.on('error', (err: Error) => this.onBullMQError(err, `${name} queue`));
    return q;
  }

  /** An `error` event of a BullMQ queue or worker of this backend: connection errors are the monitor's. */
  onBullMQError(err: Error, what: string): void {
    if (isConnectionError(err)) this.log.debug({ err, component: this.component, source: what }, 'Redis connection error');
    else this.log.error({ err, component: this.component, source: what }, `${what} error`);
  }

  // ---- instance lifecycle ----

  /**
   * Creates the instance and queues its first episode. Throws InstanceAlreadyExistsError if it
   * exists and has not finished; validation errors before anything is written.
   */
  async startInstance(
    name: string,
    instanceId: string,
    input: unknown,
    opts: {
      now?: number;
      parent?: ParentLink;
      inputBuf?: Buffer;
      /**
       * The new execution's id (default: a random one). A start sent again with the same id (as
       * ioredis resends a command whose reply a broken connection lost) is recognized as applied:
       * it creates nothing and restarts nothing.
       */
      executionId?: string;
      /**
       * Refuse (OrchestratorNotServedError, nothing written) when live workers of the hub run
       * orchestrators and none runs `name`. Checked after the arguments, before the write.
       */
      checkServed?: boolean;
      /** The trace context of the span that starts it (W3C entries), stored in ExecutionStarted. */
      trace?: Record<string, string>;
      /**
       * A delayed start (epoch ms): the instance is Pending, its first episode queued as a delayed
       * job that runs no earlier than this. A time in the past starts it at once.
       */
      startAt?: number;
      /** The schedule that starts it, and the tick: recorded in its state and in the schedule index. */
      schedule?: { scheduleId: string; tick: number };
      /**
       * Refuse an id whose instance exists whatever its status (InstanceAlreadyExistsError), where a
       * plain start replaces a finished one: a schedule's tick handled twice starts one instance.
       */
      refuseExisting?: boolean;
      /**
       * A sub-orchestration's parent as read in its partition (`<status>|<execution>|<tree>`): a
       * parent terminated recursively refuses the start (the parent may be in another partition).
       */
      parentState?: string;
    } = {},
  ): Promise<{ executionId: string; created: boolean }> {
    assertFunctionName('orchestrator', name);
    assertInstanceId(instanceId);
    const now = opts.now ?? Date.now();
    const startAt = opts.startAt !== undefined && opts.startAt > now ? Math.floor(opts.startAt) : undefined;
    const claims: Claim[] = [];
    // The state's input and ExecutionStarted's share one payload key when the input is stored apart.
    const stored = claimPayload(opts.inputBuf ?? encodePayload(input, 'Orchestration input', this.maxPayloadBytes), input, this.claimThreshold, claims);
    const executionId = opts.executionId ?? newExecutionId();
    const started: HistoryEvent = { type: 'ExecutionStarted', name, instanceId, executionId, input: stored.value, timestamp: now };
    if (opts.parent) started.parent = { ...opts.parent, name };
    if (opts.trace && Object.keys(opts.trace).length > 0) started.trace = opts.trace;
    if (startAt !== undefined) started.scheduledStartTime = startAt;
    const startedBuf = encodeEvent(started);
    if (opts.checkServed) await this.workerRegistry.assertServed(name);
    let parentState = opts.parentState;
    if (opts.parent && parentState === undefined && this.route(opts.parent.instanceId) === this) {
      // Called directly (not by the dispatcher, which reads it): the parent is in this partition.
      parentState = (await this.redis.hmget(this.keys.state(opts.parent.instanceId), 'status', 'exec', 'tree')).map((v) => v ?? '').join('|');
    }
    const k = this.keys;
    // The first episode's job carries its one event (the worker need not load anything) unless its
    // payload is stored apart or large, and the script adds it to BullMQ itself unless it is delayed.
    const carried = claims.length === 0 && startedBuf.length <= FIRST_EPISODE_MAX_BYTES;
    const direct = carried && startAt === undefined;
    // A checked start may hand its first episode to a worker (no job): the registry was just read.
    const handTo = direct && opts.checkServed && this.shared.stickyStarts ? this.workerRegistry.stickyWorkerFor(name) : undefined;
    await this.beforeWrite?.();
    const res = await this.scripts.startInstance(
      ...k.instanceKeys(instanceId),
      k.outbox,
      k.outboxIndex,
      k.instances,
      k.statusIndex,
      k.nameIndex,
      k.claims(instanceId),
      k.scheduleIndex,
      k.heartbeats(instanceId),
      instanceId,
      name,
      executionId,
      now,
      stored.buf,
      Buffer.concat([Buffer.from('e|'), startedBuf]),
      opts.parent ? `${opts.parent.instanceId}|${opts.parent.executionId}|${opts.parent.taskId}` : '',
      startAt === undefined ? '' : startAt,
      opts.schedule ? `${opts.schedule.scheduleId}|${opts.schedule.tick}` : '',
      opts.refuseExisting ? '1' : '0',
      // A sub-orchestration: a parent terminated recursively meanwhile refuses it.
      parentState ?? '',
      direct ? k.jobPrefix(ORCHESTRATOR_QUEUE) : '',
      direct ? JSON.stringify({ i: instanceId, x: executionId, v: 0, s: startedBuf.toString('base64') }) : '',
      direct ? WAKE_JOB_OPTS_JSON : '',
      handTo ?? '',
      k.workers,
      k.stickyPrefix,
      ...claimArgs(claims),
    );
    if (res[0] === 2 || res[0] === ErrorCode.ParentTerminated) return { executionId, created: false };
    if (res[0] === 3) {
      // Applied before (a resent command): its first wake may still be in the outbox. Queued from
      // there as any wake (a job whose instance moved on meanwhile is dropped as stale).
      await this.dispatch([[res[1]!, res[2]!]]);
      return { executionId, created: true };
    }
    if (res[0] !== 1) throw toError(res[0], { instanceId, status: res[1], script: 'startInstance' });
    const [jobId, payload] = [res[1]!, res[2]!];
    // Added by the script (direct), or handed to a worker's stream.
    if (res[3] === 1 || res[3] === 2) return { executionId, created: true };
    if (!carried) {
      await this.dispatch([[jobId, payload]]);
    } else {
      // A delayed start: its delayed job carries the event all the same.
      const jobOpts: JobsOptions = { jobId, ...WAKE_JOB_OPTS };
      if (startAt !== undefined) jobOpts.delay = Math.max(0, startAt - Date.now());
      await this.orchestratorQueue.add('episode', { ...parseWake(payload), s: startedBuf.toString('base64') }, jobOpts);
      await this.ackOutbox([jobId]);
    }
    return { executionId, created: true };
  }

  /**
   * The input of an instance's first episode from its job (`s`), without reading Redis: no history
   * yet, and the inbox starts with the ExecutionStarted event (others raised meanwhile follow it;
   * the commit, which consumes that one entry, sees them and wakes the instance again). The
   * commit's version and execution checks hold it to the state the job was queued for.
   */
  firstEpisodeFrom(data: EpisodeJobData): LoadedEpisode | undefined {
    if (data.v !== 0 || typeof data.s !== 'string') return undefined;
    const raw = Buffer.from(data.s, 'base64');
    let event: HistoryEvent;
    try {
      event = decodeEvent(raw);
    } catch {
      return undefined; // not what a client wrote: load instead
    }
    if (event.type !== 'ExecutionStarted' || event.executionId !== data.x || event.instanceId !== data.i) return undefined;
    const at = new Date(event.timestamp);
    const state: InstanceState = {
      instanceId: data.i,
      name: event.name,
      runtimeStatus: 'Pending',
      executionId: data.x,
      version: 0,
      scheduled: true,
      episodes: 0,
      input: event.input,
      output: undefined,
      customStatus: undefined,
      createdAt: at,
      lastUpdatedAt: at,
    };
    if (event.parent) state.parent = { instanceId: event.parent.instanceId, executionId: event.parent.executionId, taskId: event.parent.taskId };
    return {
      state,
      history: [],
      inbox: [{ kind: 'e', seq: '', event, raw }],
      stream: { entries: 0, lastId: '0-0', cached: [] },
      inboxDigest: inboxDigest([Buffer.concat([Buffer.from('e|'), raw])]),
    };
  }

  /**
   * The input of an episode from its wake job's inbox entry (`e`) and this worker's cache, without
   * reading Redis: only when the worker's own last commit of the instance left the version the
   * wake was queued for (so history and state are what the cache holds, which the commit checks).
   */
  wakeEpisodeFrom(data: EpisodeJobData): LoadedEpisode | undefined {
    if (typeof data.e !== 'string') return undefined;
    const entry = this.historyCache.get(data.i);
    const c = entry?.committed;
    if (!c || entry.exec !== data.x || c.state.version !== data.v) return undefined;
    const raw = Buffer.from(data.e, 'base64');
    const refsBefore = payloadRefsDecoded();
    let item: InboxItem;
    try {
      item = parseInboxEntry(raw);
    } catch {
      return undefined; // not what a delivery wrote: load instead
    }
    if (payloadRefsDecoded() !== refsBefore) return undefined;
    const loaded = episodeFromCache(entry, { ...c.state, scheduled: true }, [item], true);
    loaded.inboxDigest = inboxDigest([raw]);
    loaded.fromCache = true;
    return loaded;
  }

  /** Reads state, history and inbox of an instance in one round trip. */
  async loadEpisode(instanceId: string): Promise<LoadedEpisode | undefined> {
    const [state, history, inbox] = this.keys.instanceKeys(instanceId);
    // History is append-only within an execution, so a worker that saw this instance before reads
    // only the entries after the last one it decoded (Durable Functions' extended sessions, without
    // trusting anything but Redis).
    const cached = this.historyCache.get(instanceId);
    const res = await this.redis
      .pipeline()
      .hgetallBuffer(state)
      .xrangeBuffer(history, cached ? `(${cached.lastId}` : '-', '+')
      .xlen(history)
      .lrangeBuffer(inbox, 0, -1)
      .exec();
    if (!res) return undefined;
    for (const [err] of res) if (err) throw err;
    return this.assembleEpisode(
      instanceId,
      res[0]![1] as Record<string, Buffer>,
      res[1]![1] as [Buffer, Buffer[]][],
      res[3]![1] as Buffer[],
      cached,
      res[2]![1] as number,
    );
  }

  /**
   * Turns raw state, history tail and inbox into an episode's input, through the history cache.
   * References to payloads stored apart (claim check) in history and inbox are resolved here, in
   * one more round trip, only when something decoded is one; the state's are left as they are.
   */
  private async assembleEpisode(
    instanceId: string,
    st: Record<string, Buffer>,
    stream: [Buffer, Buffer[]][],
    inboxEntries: Buffer[],
    cached: CachedHistory | undefined,
    streamLength: number,
  ): Promise<LoadedEpisode | undefined> {
    if (!st.status) {
      this.historyCache.delete(instanceId);
      return undefined;
    }
    const parsed = parseState(instanceId, st);
    let base = cached !== undefined && cached.exec === parsed.executionId ? cached : undefined;
    if (base) {
      // The cache and the new entries must make up the whole stream; otherwise (entries lost by a
      // Redis restart, or another load in this process moved the cache on) read it all again.
      let fresh = 0;
      for (const [id] of stream) if (compareStreamIds(id.toString('latin1'), base.lastId) > 0) fresh++;
      if (base.entries + fresh !== streamLength) base = undefined;
    }
    const entries =
      base || !cached ? stream : ((await this.redis.xrangeBuffer(this.keys.history(instanceId), '-', '+')) as unknown as [Buffer, Buffer[]][]);
    const refsBefore = payloadRefsDecoded();
    const decoded: [id: string, events: HistoryEvent[], raw: (Buffer | undefined)[]][] = [];
    for (const [id, fields] of entries) {
      const sid = id.toString('latin1');
      if (base && compareStreamIds(sid, base.lastId) <= 0) continue;
      const events: HistoryEvent[] = [];
      const raw: Buffer[] = [];
      decodeStreamEntry(fields, events, raw);
      decoded.push([sid, events, raw]);
    }
    const inbox = inboxEntries.map(parseInboxEntry);
    if (payloadRefsDecoded() !== refsBefore) {
      // Resolved before anything is cached: the cache holds payloads, never references (and so
      // not these bytes either: toCached encodes the resolved events again).
      const holders: object[] = inbox.map((m) => m.event);
      for (const [, events] of decoded) for (const e of events) holders.push(e);
      await this.resolvePayloads(instanceId, holders);
      for (const m of inbox) delete m.raw;
      for (const d of decoded) d[2] = [];
    }
    let entry: CachedHistory;
    if (base) {
      entry = base;
      if (entry.committed && entry.committed.state.version !== parsed.version) delete entry.committed;
      for (const [sid, events, raw] of decoded) {
        // Another load of this instance in this process may have appended these already.
        if (compareStreamIds(sid, entry.lastId) <= 0) continue;
        events.forEach((e, k) => entry.events.push(toCached(e, raw[k])));
        entry.lastId = sid;
        entry.entries++;
      }
    } else {
      entry = { exec: parsed.executionId, lastId: '0-0', entries: 0, events: [] };
      for (const [sid, events, raw] of decoded) {
        events.forEach((e, k) => entry.events.push(toCached(e, raw[k])));
        entry.lastId = sid;
        entry.entries++;
      }
    }
    this.historyCache.set(instanceId, entry);
    // Nothing was written since this worker's own commit (same version, no new entry): the code it
    // kept goes on from there.
    const loaded = episodeFromCache(entry, parsed, inbox, !!base && decoded.length === 0);
    if (inboxEntries.length > 0) loaded.inboxDigest = inboxDigest(inboxEntries);
    return loaded;
  }

  /**
   * Commits an episode: `consumed` inbox entries become history between `prefix` (OrchestratorStarted)
   * and the executor's action events; new work goes to the outbox. Throws StaleEpisodeError when
   * another worker committed first.
   */
  async commitEpisode(
    loaded: LoadedEpisode,
    prefix: HistoryEvent[],
    result: ExecutionResult,
    now = Date.now(),
    opts: CommitOptions = {},
  ): Promise<CommitResult> {
    const { state } = loaded;
    const id = state.instanceId;
    const max = this.maxPayloadBytes;
    const threshold = this.claimThreshold;
    const continued = result.status === 'ContinuedAsNew';
    // Claim check: payloads stored apart with this commit, of this execution and (continue-as-new) of the next.
    const claims: Claim[] = [];
    const nextClaims: Claim[] = [];
    // What the orchestration context's payload check said of the inputs at the call (not checked again).
    const checked = result.checkedPayloads as { inputs: Map<number, CheckedPayload>; next?: CheckedPayload } | undefined;
    // The next execution's input is checked like any input (its state field and ExecutionStarted share one payload key).
    const nextInput = continued
      ? claimPayload(encodePayload(result.output, `Input of the next execution of '${state.name}'`, max, checked?.next), result.output, threshold, nextClaims)
      : undefined;
    /** References that stand for an activity or sub-orchestration input (by task id) in the jobs too. */
    const inputRefs = new Map<number, PayloadRef>();
    let outputRef: PayloadRef | undefined;
    const suffix: Buffer[] = [];
    /** The events of `suffix`, for this worker's cache. */
    const suffixEvents: HistoryEvent[] = [];
    for (const e of result.actionEvents) {
      if (nextInput && e.type === 'ExecutionCompleted') {
        const replaced = { ...e, result: nextInput.value };
        suffix.push(encodeEvent(replaced));
        suffixEvents.push(replaced);
        continue;
      }
      const what =
        e.type === 'ExecutionCompleted' && e.status === 'Completed'
          ? `Output of orchestrator '${state.name}'`
          : e.type === 'TaskScheduled'
            ? `Input of activity '${e.name}'`
            : e.type === 'SubOrchestrationInstanceCreated'
              ? `Input of sub-orchestration '${e.name}'`
              : undefined;
      const pre = e.type === 'TaskScheduled' || e.type === 'SubOrchestrationInstanceCreated' ? checked?.inputs.get(e.taskId) : undefined;
      const { bytes, ref } = encodeStoredEvent(e, what, max, threshold, claims, pre);
      suffix.push(bytes);
      suffixEvents.push(e);
      if (ref && (e.type === 'TaskScheduled' || e.type === 'SubOrchestrationInstanceCreated')) inputRefs.set(e.taskId, ref);
      else if (ref && e.type === 'ExecutionCompleted') outputRef = ref;
    }
    const completed: HistoryEvent = { type: 'OrchestratorCompleted', timestamp: now };
    suffix.push(encodeEvent(completed));
    suffixEvents.push(completed);
    // The episode is one history entry; its action events travel packed (one argument).
    const suffixBatch = packBatch(suffix);

    let outbox: [string, string][] = [];
    const newSeqs: number[] = [];
    /** Messages to entities: appended to their inboxes by the commit itself, in this order. */
    const entityEntries: [string, Buffer][] = [];
    /** The activity jobs' names, by job id. */
    const activityNames = new Map<string, string>();
    for (const a of result.actions) {
      if (a.type === 'SendEntityMessage') {
        // Appended by this commit's script when the entity is in this partition; else an outbox
        // entry, delivered into the entity's partition by the dispatcher.
        if (this.route(a.entity) !== this) outbox.push(this.entities.remoteMessageFor(id, state.executionId, a, now));
        else entityEntries.push(this.entities.messageFor(id, state.executionId, a, now));
        if (a.kind === 'call' || a.kind === 'lock') newSeqs.push(a.id);
        continue;
      }
      const entry = this.outboxEntryFor(id, state.executionId, a, inputRefs, opts.trace);
      if (entry) outbox.push(entry);
      if (entry && a.type === 'ScheduleTask') activityNames.set(entry[0], a.name);
      if (a.type === 'ScheduleTask' || a.type === 'CreateTimer' || a.type === 'CreateSubOrchestration') newSeqs.push(a.id);
    }
    // Many new jobs travel as one outbox entry, expanded by the dispatcher.
    const written: [string, string][] = outbox.length > 64 ? [[`b-${id}-${state.executionId}-${state.version}`, `B${JSON.stringify(outbox)}`]] : outbox;
    // Fewer, and the commit adds their activity jobs to BullMQ itself ("Q" pairs, addQueueJob):
    // no outbox entry, no add and no ack per step. An activity this worker runs itself (leased)
    // keeps its outbox entry.
    const sent = written === outbox && !opts.activityJobsViaOutbox ? written.map((e): [string, string] => {
      const name = e[1][0] === 'A' && e[0] !== opts.lease?.jobId ? activityNames.get(e[0]) : undefined;
      return name === undefined ? e : [e[0], `Q${Buffer.byteLength(name)}:${name}${e[1].slice(1)}`];
    }) : written;
    const wait = result.wait ?? { kind: 'unknown' as const };
    const waitIds = wait.kind === 'unknown' ? [] : wait.ids;
    const newExec = continued ? newExecutionId() : '';
    const newInbox: Buffer[] = [];
    // Outputs were checked in their event.
    const outputBuf = result.status === 'Failed' ? '' : nextInput ? nextInput.buf : encode(outputRef ?? result.output);
    if (nextInput) {
      const restarted: HistoryEvent = { type: 'ExecutionStarted', name: state.name, instanceId: id, executionId: newExec, input: nextInput.value, timestamp: now };
      if (state.parent) restarted.parent = { ...state.parent, name: state.name };
      newInbox.push(Buffer.concat([Buffer.from('e|'), encodeEvent(restarted)]));
      for (const e of result.carryOverEvents ?? []) {
        // A payload stored apart is stored again for the next execution (this one's go with its history).
        const raised: HistoryEvent = { type: 'EventRaised', name: e.name, input: e.input, timestamp: now };
        newInbox.push(Buffer.concat([Buffer.from('e|'), encodeStoredEvent(raised, undefined, max, threshold, nextClaims).bytes]));
      }
    }
    // The 31 scalar arguments travel as one msgpack array of strings (the blobs apart): each
    // argument costs ioredis more to build and send than the script spends unpacking them.
    const scalars: string[] = [
      String(state.version),
      state.executionId,
      id,
      String(now),
      loaded.inboxDigest && loaded.inbox.length > 0 ? `${loaded.inbox.length}|${loaded.inboxDigest}` : String(loaded.inbox.length),
      result.status,
      '', // output: ARGV[2]
      '', // failure: ARGV[3]
      result.customStatus ? '1' : '0',
      '', // custom status: ARGV[4]
      wait.kind === 'all' ? 'a' : wait.kind === 'any' ? 'y' : 'u',
      wait.kind !== 'unknown' && wait.coversAllOpen ? '1' : '0',
      waitIds.join(','),
      newSeqs.join(','),
      '', // events after the S events: ARGV[5]
      this.keys.doneChannel,
      newExec,
      String(newInbox.length),
      continued && result.carryOverEvents !== undefined ? '1' : '0',
      String(prefix.length + (opts.direct ? 1 : 0)),
      '0',
      String(sent.length + entityEntries.length),
      opts.direct || loaded.fromCache ? `${opts.direct?.seq ?? ''}|${loaded.stream?.lastId ?? ''}|${loaded.stream?.entries ?? 0}` : '',
      opts.ackJobId ?? '',
      opts.lease?.jobId ?? '',
      String(opts.lease?.until ?? 0),
      // A continued execution's events go with its history: their payloads need not be stored.
      String(continued ? 0 : claims.length),
      String(nextClaims.length),
      opts.stickyWorker ?? '',
      this.keys.jobPrefix(ACTIVITY_QUEUE),
      ACTIVITY_JOB_OPTS_JSON,
    ];
    const args: (string | Buffer)[] = [
      ...this.keys.instanceKeys(id),
      this.keys.outbox,
      this.keys.outboxIndex,
      this.keys.statusIndex,
      this.keys.claims(id),
      encode(scalars),
      outputBuf,
      result.failure ? encode(result.failure) : '',
      result.customStatus ? encode(result.customStatus.value) : '',
      suffixBatch,
    ];
    const prefixBufs = prefix.map((e) => encodeEvent(e));
    if (opts.direct) prefixBufs.push(opts.direct.encoded);
    for (const b of prefixBufs) args.push(b);
    for (const [jobId, payload] of sent) args.push(jobId, payload);
    for (const [jobId, payload] of entityEntries) args.push(jobId, payload);
    for (const b of newInbox) args.push(b);
    if (!continued) for (const c of claims) args.push(c.token, c.blob);
    for (const c of nextClaims) args.push(c.token, c.blob);
    const res = opts.finish ? await this.commitAndFinish(args, opts.finish) : await this.scripts.commitEpisode(...args);
    if (res[0] === ErrorCode.DirectRefused || (res[0] === ErrorCode.InboxChanged && loaded.fromCache)) return { version: state.version, refused: true, outbox: [] };
    if (res[0] === ErrorCode.InboxChanged) {
      // Thrown, not stale: the episode must run again on the inbox as it is (a retry reloads it).
      throw new DurabullError(`Instance '${id}': its inbox is not what this episode read (deliveries lost by a Redis restart?); nothing was committed, the episode runs again.`);
    }
    if (res[0] !== 1) throw toError(res[0], { instanceId: id, script: 'commitEpisode' });
    // What the commit wrote to the outbox: all but the activity jobs it added to BullMQ.
    outbox = written.filter((e, k) => sent[k] === e);
    if (res[2]) outbox.push([res[2], res[3]!]);
    if (res[4]) outbox.push([res[4], res[5]!]);
    const prefixEvents = opts.direct ? [...prefix, opts.direct.event ?? decodeEvent(opts.direct.encoded)] : prefix;
    this.rememberCommit(loaded, { events: prefixEvents, bufs: prefixBufs }, { events: suffixEvents, bufs: suffix }, result, res[1]!, res[6]!, !!res[2], opts.session, claims.length > 0);
    return { version: res[1]!, outbox };
  }

  /** commitEpisode and the episode job's completion in one script ({@link CommitOptions.finish}). */
  private async commitAndFinish(args: Arg[], finish: EpisodeJobFinish): Promise<CommitReply> {
    const [committed, finished] = await runComposite(this.redis, 'finishEpisode', args.slice(0, COMMIT_EPISODE_KEYS), args.slice(COMMIT_EPISODE_KEYS), finish.command());
    if (finished !== null && finished !== false) {
      finish.done = true;
      finish.reply = finished;
    }
    return committed as CommitReply;
  }

  /**
   * After this worker's commit, its cached history is the stream as the commit left it (the
   * version check passed, so nobody wrote in between): it takes the episode's events, decoded from
   * what was written so that a replay from the cache sees exactly what a replay from Redis would.
   */
  private rememberCommit(
    loaded: LoadedEpisode,
    prefix: { events: readonly HistoryEvent[]; bufs: readonly Buffer[] },
    suffix: { events: readonly HistoryEvent[]; bufs: readonly Buffer[] },
    result: ExecutionResult,
    version: number,
    entryId: string,
    woken: boolean,
    session: OrchestrationSession | undefined,
    claimed: boolean,
  ): void {
    const { state } = loaded;
    const id = state.instanceId;
    const held = this.historyCache.get(id);
    // An inbox event without its bytes had a payload stored apart: left to the next load.
    // A payload of this episode stored apart: the cache holds payloads, never references, so the
    // next episode reads the history from Redis (which resolves them).
    if (result.status !== 'Running' || this.historyCache.capacity <= 0 || !loaded.stream || claimed || loaded.inbox.some((m) => !m.raw)) {
      this.historyCache.delete(id);
      return;
    }
    if (held && held.exec === state.executionId && held.committed && held.committed.state.version >= version) return;
    // An event with an object payload is cached as its stored bytes, never as the object the
    // episode's code received or gave (it may change it); the others as they are (their payloads
    // are immutable, and no code holds the event objects).
    const events = loaded.stream.cached.slice();
    prefix.events.forEach((e, k) => events.push(toCached(e, prefix.bufs[k])));
    for (const m of loaded.inbox) events.push(toCached(m.event, m.raw));
    suffix.events.forEach((e, k) => events.push(toCached(e, suffix.bufs[k])));
    const entry: CachedHistory = { exec: state.executionId, lastId: entryId, entries: loaded.stream.entries + 1, events };
    if (!woken) {
      entry.committed = {
        state: { ...state, version, episodes: state.episodes + 1, runtimeStatus: 'Running', scheduled: false },
        wait: result.wait ?? { kind: 'unknown' },
      };
      // The code goes on from here next time, unless what it saw is not the history just stored.
      session?.accept();
      if (session?.resumable && session.historyLength === events.length) entry.committed.session = session;
    }
    this.historyCache.set(id, entry);
  }

  /**
   * The episode a result of task `seq` would run, from this worker's cache, when its last commit of
   * the instance left the code waiting on that task (so the result lets it progress); undefined
   * otherwise. The commit (`direct`) checks that nothing else happened since.
   */
  cachedEpisodeFor(instanceId: string, executionId: string, seq: number): LoadedEpisode | undefined {
    const entry = this.historyCache.get(instanceId);
    const c = entry?.committed;
    if (!c || entry.exec !== executionId) return undefined;
    const w = c.wait;
    const progresses = w.kind === 'unknown' || (w.kind === 'any' ? w.ids.includes(seq) : w.ids.length === 1 && w.ids[0] === seq);
    if (!progresses) return undefined;
    return episodeFromCache(entry, { ...c.state }, [], true);
  }

  /**
   * Queues tasks again from the events of `history` that scheduled them (the checker's repair of a
   * lost task): an activity job, a timer job or a sub-orchestration start, with the same id and data
   * as the commit wrote. Returns how many were queued.
   */
  async requeueTasks(instanceId: string, executionId: string, history: readonly HistoryEvent[], seqs: number[]): Promise<number> {
    const want = new Set(seqs);
    const entries: [string, string][] = [];
    const none = new Map<number, PayloadRef>();
    // The tasks' spans go under the execution's root (the episode that scheduled them is not known here).
    const trace = (history.find((e) => e.type === 'ExecutionStarted') as { trace?: Record<string, string> } | undefined)?.trace;
    for (const e of history) {
      let action: OrchestratorAction | undefined;
      if (e.type === 'TaskScheduled' && want.has(e.taskId)) {
        const task: OrchestratorAction & { type: 'ScheduleTask' } = { type: 'ScheduleTask', id: e.taskId, name: e.name, input: e.input };
        if (e.startToCloseTimeoutMs !== undefined) task.startToCloseTimeoutMs = e.startToCloseTimeoutMs;
        if (e.heartbeatTimeoutMs !== undefined) task.heartbeatTimeoutMs = e.heartbeatTimeoutMs;
        if (e.retryOf !== undefined) task.retryOf = e.retryOf;
        action = task;
      }
      else if (e.type === 'TimerCreated' && want.has(e.taskId)) action = { type: 'CreateTimer', id: e.taskId, fireAt: e.fireAt };
      else if (e.type === 'SubOrchestrationInstanceCreated' && want.has(e.taskId)) {
        action = { type: 'CreateSubOrchestration', id: e.taskId, name: e.name, instanceId: e.instanceId, input: e.input };
      }
      const entry = action && this.outboxEntryFor(instanceId, executionId, action, none, trace);
      if (entry) entries.push(entry);
    }
    await this.dispatch(entries);
    return entries.length;
  }

  /** Forgets what this worker's last commit of the instance left (its direct commit was refused). */
  forgetCommitted(instanceId: string): void {
    const entry = this.historyCache.get(instanceId);
    if (entry) delete entry.committed;
  }

  private outboxEntryFor(
    instanceId: string,
    executionId: string,
    a: OrchestratorAction,
    inputRefs: ReadonlyMap<number, PayloadRef>,
    trace?: Record<string, string>,
  ): [string, string] | undefined {
    if (trace && Object.keys(trace).length === 0) trace = undefined;
    if (a.type === 'ScheduleTask') return activityEntry(instanceId, executionId, a.id, a.name, inputRefs.get(a.id) ?? a.input, a, trace);
    if (a.type === 'CreateTimer') {
      const data: TimerJobData = { i: instanceId, x: executionId, s: a.id, f: a.fireAt };
      if (trace) data.t = trace;
      return [timerJobId(instanceId, executionId, a.id), `T${JSON.stringify(data)}`];
    }
    if (a.type === 'CancelTimer') {
      return [`x-${instanceId}-${executionId}-${a.id}`, `X${JSON.stringify({ i: instanceId, x: executionId, s: a.id })}`];
    }
    if (a.type === 'CreateSubOrchestration') {
      const data: SubOrchestrationStart = { i: a.instanceId, n: a.name, p: encode(inputRefs.get(a.id) ?? a.input).toString('base64'), pi: instanceId, px: executionId, ps: a.id };
      if (trace) data.t = trace;
      return [subStartJobId(instanceId, executionId, a.id), `S${JSON.stringify(data)}`];
    }
    return undefined;
  }

  /**
   * Delivers an activity result, timer firing or raised event. Returns the wake job id when the
   * orchestrator must run (already dispatched), "" when not, or a drop reason.
   */
  async deliverEvent(
    instanceId: string,
    executionId: string,
    kind: 'c' | 'f' | 'e',
    seq: number | undefined,
    event: HistoryEvent,
    opts: {
      now?: number;
      /** false: return the wake entry instead of dispatching it */
      dispatch?: boolean;
      /** with dispatch false: when this wakes the instance, also return its episode's input (`loaded`) */
      load?: boolean;
      /** `event` already encoded (by `encodeForStorage`, which checks its payload) */
      encoded?: StoredEvent;
      /**
       * Kind "e": the event's id; delivering an id the instance has seen (the last 100, within an
       * hour) is a duplicate, as when ioredis resends a command whose reply was lost.
       */
      eventId?: string;
    } = {},
  ): Promise<DeliverResult> {
    const load = opts.dispatch === false && opts.load === true;
    const cached = load ? this.historyCache.get(instanceId) : undefined;
    const stored = opts.encoded ?? this.encodeForStorage(event);
    const { keys, args } = this.deliveryArgs(instanceId, executionId, kind, seq, stored, opts.now ?? Date.now(), load, cached, opts.eventId);
    // With `load` the reply carries msgpack, so it is read as buffers.
    const raw = load ? await this.scripts.deliverEventBuffer(...keys, ...args) : await this.scripts.deliverEvent(...keys, ...args);
    const res = raw.map((v, i) => (i < 3 && Buffer.isBuffer(v) ? v.toString('latin1') : v)) as [number, string?, string?, ...unknown[]];
    const code = res[0];
    if (code === 1 && res[1] && load && res.length > 3) {
      const flat = res[3] as Buffer[];
      const st: Record<string, Buffer> = {};
      for (let i = 0; i < flat.length; i += 2) st[flat[i]!.toString('latin1')] = flat[i + 1]!;
      const loaded = await this.assembleEpisode(instanceId, st, res[5] as [Buffer, Buffer[]][], res[4] as Buffer[], cached, res[6] as number);
      if (loaded) return { status: 'delivered', wakeJobId: res[1], wake: [res[1], res[2]!], loaded };
    }
    const delivered = this.parseDelivery(res, instanceId, kind, seq, stored, load);
    if (delivered.wake && opts.dispatch !== false) {
      await this.dispatch([delivered.wake]);
      return { status: 'delivered', wakeJobId: delivered.wakeJobId };
    }
    return delivered;
  }

  /** deliverEvent's keys and arguments (its script's header says what each is). */
  private deliveryArgs(
    instanceId: string,
    executionId: string,
    kind: 'c' | 'f' | 'e',
    seq: number | undefined,
    stored: StoredEvent,
    now: number,
    load: boolean,
    cached: { lastId: string } | undefined,
    eventId: string | undefined,
  ): { keys: string[]; args: Arg[] } {
    const k = this.keys;
    return {
      keys: [k.state(instanceId), k.inbox(instanceId), k.pending(instanceId), k.wait(instanceId), k.outbox, k.outboxIndex, k.history(instanceId), k.claims(instanceId), k.workers, k.stickyPrefix],
      args: [
        instanceId,
        executionId,
        kind,
        seq === undefined ? (kind === 'e' ? (eventId ?? '') : '') : seq,
        stored.bytes,
        now,
        load ? '1' : '0',
        cached ? `(${cached.lastId}` : '-',
        this.workerId,
        ...claimArgs(stored.claims),
      ],
    };
  }

  /** deliverEvent's reply, read without `load`: the wake (not dispatched) when it woke the instance. */
  private parseDelivery(res: [number, string?, string?, ...unknown[]], instanceId: string, kind: 'c' | 'f' | 'e', seq: number | undefined, stored: StoredEvent, load: boolean): DeliverResult {
    const code = res[0];
    if (code === 2) return { status: 'delivered', wakeJobId: res[1]!, sticky: true };
    if (code === 1) {
      const wakeJobId = res[1] || undefined;
      if (!wakeJobId) return { status: 'delivered' };
      const wake: [string, string] = [wakeJobId, res[2]!];
      // The wake's job carries the inbox when this event is all of it (see EpisodeJobData.e).
      if (!load && res[3] === 1 && stored.claims.length === 0 && stored.bytes.length <= FIRST_EPISODE_MAX_BYTES) {
        wake[1] += `|${Buffer.concat([Buffer.from(`${kind}${seq ?? ''}|`, 'latin1'), stored.bytes]).toString('base64')}`;
      }
      return { status: 'delivered', wakeJobId, wake };
    }
    if (code === 0) return { status: 'duplicate' };
    if (code === ErrorCode.StaleExecution) return { status: 'stale' };
    throw toError(code, { instanceId, status: res[1], script: 'deliverEvent' });
  }

  /**
   * An activity's result delivered and its BullMQ job completed in one script (job-composites.ts):
   * deliverEvent, then BullMQ's own moveToFinished with the arguments BullMQ built for it (`finish`:
   * its Lua, its key count, its keys and arguments). The job's queue must be this partition's (one
   * slot on a cluster). Returns the delivery (never dispatched: the caller wakes) or the error it
   * would have thrown (the job is completed either way), and moveToFinished's raw reply.
   */
  async deliverAndFinish(
    d: { instanceId: string; executionId: string; kind: 'c' | 'f'; seq: number; encoded: StoredEvent; now?: number },
    finish: BullFinish,
  ): Promise<{ delivery: DeliverResult | Error; finished: unknown }> {
    const { keys, args } = this.deliveryArgs(d.instanceId, d.executionId, d.kind, d.seq, d.encoded, d.now ?? Date.now(), false, undefined, undefined);
    const raw = await runComposite(this.redis, 'finishActivity', keys, args, finish);
    let delivery: DeliverResult | Error;
    try {
      delivery = this.parseDelivery(raw[0] as [number, string?, string?], d.instanceId, d.kind, d.seq, d.encoded, false);
    } catch (err) {
      delivery = err as Error;
    }
    return { delivery, finished: raw[1] };
  }

  // ---- activity attempts: heartbeats, deadlines, cancellation ----

  /**
   * Records a heartbeat of an activity attempt (one script): its details, under `details.field`,
   * for the next attempt of the task, and its deadline (`deadline`), for the sweep. Says whether
   * the task still waits for this attempt: `ok`; `terminated` (its instance was); `task-done` (the
   * task has a result, another attempt's or a timeout's, or its execution ended); `gone`.
   */
  async heartbeatActivity(
    instanceId: string,
    executionId: string,
    taskId: number,
    record: { details?: { field: string; bytes: Buffer }; deadline?: { at: number; info: string } },
  ): Promise<'ok' | 'terminated' | 'task-done' | 'gone'> {
    const k = this.keys;
    const res = await this.scripts.heartbeatActivity(
      k.state(instanceId),
      k.pending(instanceId),
      k.heartbeats(instanceId),
      k.activityDeadlines,
      k.activityAttempts,
      executionId,
      taskId,
      record.details?.field ?? '',
      record.details?.bytes ?? '',
      record.deadline ? attemptMember(instanceId, executionId, taskId) : '',
      record.deadline?.at ?? 0,
      record.deadline?.info ?? '',
      HEARTBEAT_DETAILS_TTL_MS,
    );
    switch (res[0]) {
      case 1:
        return 'ok';
      case -1:
        return 'gone';
      case -3:
        return res[1] === 'Terminated' ? 'terminated' : 'task-done';
      default:
        return 'task-done';
    }
  }

  /** Removes an attempt's recorded deadline once it is over (not awaited by the caller). */
  endActivityAttempt(instanceId: string, executionId: string, taskId: number, info: string): Promise<unknown> {
    return this.scripts.endActivityAttempt(this.keys.activityDeadlines, this.keys.activityAttempts, attemptMember(instanceId, executionId, taskId), info);
  }

  /**
   * The sweep's pass over recorded attempt deadlines: takes (atomically, so one worker handles
   * each) those at or before `latest`, at most `limit`.
   */
  async claimExpiredActivities(latest: number, limit = 100): Promise<ExpiredAttempt[]> {
    const flat = await this.scripts.claimExpiredActivities(this.keys.activityDeadlines, this.keys.activityAttempts, Math.floor(latest), limit);
    const out: ExpiredAttempt[] = [];
    for (let i = 0; i + 2 < flat.length; i += 3) {
      const [instanceId, executionId, task] = flat[i]!.split('|');
      const info = parseAttemptInfo(flat[i + 2]!);
      if (!instanceId || !executionId || !info) continue;
      out.push({ instanceId, executionId, taskId: Number(task), deadline: Number(flat[i + 1]), ...info, info: flat[i + 2]! });
    }
    return out;
  }

  /**
   * What an activity attempt reads before it runs, in one round trip, only when it has something
   * to read: with `checkPending` (a job delivered again) whether its task still waits for a result
   * (a task that timed out meanwhile does not run again); with `detailsField` (a retry, or a job
   * delivered again) the heartbeat details the previous attempt left.
   */
  async readAttemptStart(
    instanceId: string,
    executionId: string,
    taskId: number,
    opts: { checkPending: boolean; detailsField?: string },
  ): Promise<{ pending: boolean; details: unknown }> {
    const p = this.redis.pipeline();
    if (opts.checkPending) {
      p.hget(this.keys.state(instanceId), 'exec');
      p.sismember(this.keys.pending(instanceId), String(taskId));
    }
    if (opts.detailsField) p.hgetBuffer(this.keys.heartbeats(instanceId), opts.detailsField);
    const res = (await p.exec()) ?? [];
    for (const [err] of res) if (err) throw err;
    const pending = !opts.checkPending || (res[0]![1] === executionId && res[1]![1] === 1);
    const blob = opts.detailsField ? (res.at(-1)![1] as Buffer | null) : null;
    return { pending, details: blob ? decode(blob) : undefined };
  }

  /**
   * Checks a payload that orchestrator code hands out, at the call (the worker's payload check for
   * {@link OrchestrationSession}): PayloadError when it cannot be stored under `maxPayloadBytes`;
   * otherwise what `commitEpisode` reuses (its size bounds, its encoding when it was needed).
   */
  checkPayload(value: unknown, what: string): CheckedPayload {
    return checkPayload(value, what, this.maxPayloadBytes);
  }

  /**
   * Encodes an event for storage. With `what`, its payload is checked first (`PayloadError`:
   * functions, symbols, cycles, over `maxPayloadBytes`; `what` names it). A payload over the
   * claim-check threshold is stored apart with the event: the event carries a reference.
   */
  encodeForStorage(event: HistoryEvent, what?: string): StoredEvent {
    const claims: Claim[] = [];
    const { bytes } = encodeStoredEvent(event, what, this.maxPayloadBytes, this.claimThreshold, claims);
    return { bytes, claims };
  }

  /**
   * Claim check: replaces every reference ({@link PayloadRef}) held by a field of one of `holders`
   * (events, states) of instance `instanceId` with its payload, read in one round trip. Throws
   * PayloadMissingError when a payload key is gone.
   */
  async resolvePayloads(instanceId: string, holders: readonly object[]): Promise<void> {
    const found: [holder: Record<string, unknown>, field: string, ref: PayloadRef][] = [];
    for (const h of holders) {
      const rec = h as Record<string, unknown>;
      for (const field of Object.keys(rec)) {
        const v = rec[field];
        if (v instanceof PayloadRef) found.push([rec, field, v]);
      }
    }
    if (found.length === 0) return;
    const keys = found.map(([, , ref]) => this.keys.claim(instanceId, ref.token));
    const blobs = await this.redis.mgetBuffer(...keys);
    found.forEach(([rec, field, ref], i) => {
      const blob = blobs[i];
      if (!blob) throw new PayloadMissingError(instanceId, keys[i]!, ref.bytes);
      rec[field] = decode(blob);
    });
  }

  /** A payload of instance `instanceId` as decoded: itself, or what its reference stands for. */
  async resolvePayload(instanceId: string, value: unknown): Promise<unknown> {
    if (!(value instanceof PayloadRef)) return value;
    const holder = { value };
    await this.resolvePayloads(instanceId, [holder]);
    return holder.value;
  }

  // ---- outbox ----

  /**
   * Adds outbox entries to BullMQ, then removes them from the outbox. Adding twice is harmless:
   * BullMQ ignores a job id it already holds, and a stale episode fails its version check.
   */
  async dispatch(entries: [jobId: string, payload: string][], opts: { now?: number; awaitCleanup?: boolean } = {}): Promise<void> {
    const now = opts.now ?? Date.now();
    if (entries.length === 0) return;
    const orch: { name: string; data: unknown; opts: JobsOptions }[] = [];
    const acts: { name: string; data: unknown; opts: JobsOptions }[] = [];
    const others: Promise<unknown>[] = [];
    const messages: [string, string][] = [];
    const expanded: [string, string][] = [];
    for (const e of entries) {
      if (e[1][0] === 'B') for (const inner of JSON.parse(e[1].slice(1)) as [string, string][]) expanded.push(inner);
      else expanded.push(e);
    }
    for (const [jobId, payload] of expanded) {
      const type = payload[0];
      if (type === 'W') {
        const notBefore = wakeNotBefore(payload);
        const wakeOpts: JobsOptions = notBefore === undefined ? { jobId, ...WAKE_JOB_OPTS } : { jobId, ...WAKE_JOB_OPTS, delay: Math.max(0, notBefore - now) };
        orch.push({ name: 'episode', data: parseWake(payload), opts: wakeOpts });
      } else if (type === 'A') {
        const data = JSON.parse(payload.slice(1)) as ActivityJobData;
        acts.push({ name: data.n, data, opts: { jobId, ...ACTIVITY_JOB_OPTS } });
      } else if (type === 'T') {
        const data = JSON.parse(payload.slice(1)) as TimerJobData;
        orch.push({ name: 'timer', data, opts: { jobId, delay: Math.max(0, data.f - now), ...TIMER_JOB_OPTS } });
      } else if (type === 'S') {
        others.push(this.startChild(JSON.parse(payload.slice(1)) as SubOrchestrationStart));
      } else if (type === 'P') {
        others.push(this.notifyParent(payload.slice(1)));
      } else if (type === 'R') {
        others.push(this.deliverEntityResponse(JSON.parse(payload.slice(1)) as EntityResponseData));
      } else if (type === 'X') {
        others.push(this.cancelTimer(JSON.parse(payload.slice(1)) as { i: string; x: string; s: number }));
      } else if (type === 'M') {
        messages.push([jobId, payload]);
      }
    }
    // Messages to entities of other partitions, one after another and before the jobs are queued:
    // an entity gets a sender's messages in the order they were sent, also across its episodes
    // (the next episode needs a job queued here).
    for (const [jobId, payload] of messages) {
      const m = parseRemoteMessage(payload);
      await this.route(m.entityId).entities.deliverMessage(m.entityId, m.message, m.due, jobId);
    }
    const adds: Promise<unknown>[] = [...others];
    // One job is one script call; addBulk wraps jobs in MULTI/EXEC, worth it from two jobs on, in
    // chunks so that a fan-out of 100,000 does not build one giant transaction.
    const add = async (q: Queue, jobs: typeof acts) => {
      if (jobs.length === 1) return q.add(jobs[0]!.name, jobs[0]!.data, jobs[0]!.opts);
      for (let k = 0; k < jobs.length; k += 1000) await q.addBulk(jobs.slice(k, k + 1000));
    };
    if (acts.length) adds.push(add(this.activityQueue, acts));
    if (orch.length) adds.push(add(this.orchestratorQueue, orch));
    await Promise.all(adds);
    if (this.keys.count > 1) {
      // Entries that name another instance (a child's start, a parent's notification, an entity's
      // response) may point into another partition, whose keys the ack script cannot read: once
      // delivered (above, awaited), they are removed as done.
      const crosses = (p: string) => p[0] === 'S' || p[0] === 'P' || p[0] === 'R' || p[0] === 'M';
      const crossing = (p: string) => crosses(p) || (p[0] === 'B' && (JSON.parse(p.slice(1)) as [string, string][]).some(([, q]) => crosses(q)));
      const done = entries.filter(([, p]) => crossing(p)).map(([id]) => id);
      if (done.length > 0) {
        const rest = entries.filter(([, p]) => !crossing(p)).map(([id]) => id);
        await Promise.all([this.ackScript('done', done), this.ackOutbox(rest, opts.awaitCleanup)]);
        return;
      }
    }
    await this.ackOutbox(entries.map(([id]) => id), opts.awaitCleanup);
  }

  /**
   * Removes dispatched (or handled) entries from the outbox. Not awaited on the hot path: it is
   * sent only once what handled the entries has finished (so it can never take effect before
   * them), and if it is lost the sweep dispatches the entries again, which adds nothing (a job id
   * BullMQ still holds) or is dropped as stale or duplicate.
   */
  ackOutbox(ids: string[], wait = false): Promise<unknown> {
    if (ids.length === 0) return Promise.resolve();
    if (wait) return this.ackScript('ack', ids);
    // Acks of one turn of the event loop (under load: many episodes and activities) go as one pair
    // of commands.
    for (const id of ids) this.pendingAcks.push(id);
    if (!this.ackScheduled) {
      this.ackScheduled = true;
      setImmediate(() => void this.flushAcks().catch(() => undefined));
    }
    return Promise.resolve();
  }

  /**
   * Keeps an outbox entry from the sweep for `ms` from now (an entry this worker is handling
   * itself). Not awaited: if it is lost, the entry is swept at its original time and handled twice,
   * which the duplicate checks absorb.
   */
  leaseOutbox(jobId: string, ms: number): void {
    this.redis.zadd(this.keys.outboxIndex, 'XX', Date.now() + ms, jobId).catch(() => undefined);
  }

  private async flushAcks(): Promise<void> {
    this.ackScheduled = false;
    const ids = this.pendingAcks;
    if (ids.length === 0) return;
    this.pendingAcks = [];
    await this.ackScript('ack', ids);
  }

  /**
   * `ackOutbox` script: removes the entries whose work this Redis holds (the job is in BullMQ) or
   * has done (the result is in, the version moved, the child exists), and keeps the others. An
   * ack may reach a Redis that lost the add it acknowledges (a crash under `appendfsync
   * everysec`, the ack queued or resent by ioredis across the reconnect): checked here, in the
   * same script, it can never delete the only record of work that no longer exists anywhere.
   * In `sweep` mode it returns the entries kept, with their payloads (a batch reduced to what is
   * still to do).
   */
  private ackScript(mode: 'ack' | 'done', ids: string[]): Promise<number>;
  private ackScript(mode: 'sweep', ids: string[]): Promise<string[]>;
  private ackScript(mode: 'ack' | 'sweep' | 'done', ids: string[]): Promise<number | string[]> {
    const k = this.keys;
    return this.scripts.ackOutbox(
      k.outbox,
      k.outboxIndex,
      k.jobPrefix(ACTIVITY_QUEUE),
      k.jobPrefix(ORCHESTRATOR_QUEUE),
      k.statePrefix,
      k.pendingPrefix,
      mode,
      k.count > 1 ? '1' : '0',
      ...ids,
    );
  }


  /** Starts a sub-orchestration; a start that cannot happen fails the parent's task instead. */
  private async startChild(d: SubOrchestrationStart): Promise<void> {
    const parent: ParentLink = { instanceId: d.pi, executionId: d.px, taskId: d.ps };
    // The child's partition may be another: its start reads nothing here, so the parent's state
    // (here: this outbox is the parent's partition's) travels with it.
    const target = this.route(d.i);
    const readParent = async () => (await this.redis.hmget(this.keys.state(d.pi), 'status', 'exec', 'tree')).map((v) => v ?? '').join('|');
    try {
      let inputBuf: Buffer = Buffer.from(d.p, 'base64');
      const input = decode(inputBuf);
      if (input instanceof PayloadRef) {
        // Stored apart by the parent: the child stores its own copy (the parent's goes with the parent).
        const blob = await this.redis.getBuffer(this.keys.claim(d.pi, input.token));
        if (!blob) throw new PayloadMissingError(d.pi, this.keys.claim(d.pi, input.token), input.bytes);
        inputBuf = blob;
      }
      const started = await target.startInstance(d.n, d.i, input instanceof PayloadRef ? decode(inputBuf) : input, {
        parent,
        inputBuf,
        checkServed: true,
        parentState: await readParent(),
        ...(d.t ? { trace: d.t } : {}),
      });
      if (target !== this && started.created) {
        // A recursive terminate of the parent between the read above and the start: the
        // terminating client may have walked the parent's children before this one existed, so
        // the tombstone is honoured here (a terminate applied twice changes nothing).
        const [status, exec, tree] = (await readParent()).split('|');
        if (status === 'Terminated' && tree === '1' && exec === d.px) {
          await target.terminate(d.i, 'parent terminated', Date.now(), true, `tree-${d.px}`).catch(ignoreGone);
        }
      }
    } catch (err) {
      if (!(err instanceof DurabullError)) throw err;
      // A start dispatched again (the sweep) after it created the child, once no live worker runs
      // the name any more: the child exists and will report to the parent; nothing to refuse.
      if (err instanceof OrchestratorNotServedError && (await target.redis.hget(target.keys.state(d.i), 'plink')) === `${d.pi}|${d.px}|${d.ps}`) return;
      const event: HistoryEvent = {
        type: 'SubOrchestrationInstanceFailed',
        taskScheduledId: d.ps,
        failure: toFailureDetails(err, d.n),
        timestamp: Date.now(),
      };
      await this.deliverEvent(d.pi, d.px, 'f', d.ps, event).catch(ignoreGone);
    }
  }

  /** A cancelled timer: no longer pending (a late firing is dropped) and its delayed job removed. */
  private async cancelTimer(t: { i: string; x: string; s: number }): Promise<void> {
    const state = await this.redis.hget(this.keys.state(t.i), 'exec');
    if (state === t.x) await this.redis.srem(this.keys.pending(t.i), String(t.s));
    // A job that is firing right now is locked and stays: its delivery is dropped as not pending.
    await this.orchestratorQueue.remove(`t-${t.i}-${t.x}-${t.s}`).catch(() => undefined);
  }

  /** Delivers an entity's response (a call's result or failure, a granted lock) to the orchestration that asked. */
  private async deliverEntityResponse(d: EntityResponseData): Promise<void> {
    const now = Date.now();
    const value = d.p === undefined ? undefined : decode(Buffer.from(d.p, 'base64'));
    const event: HistoryEvent =
      d.k === 'c'
        ? { type: 'EntityOperationCompleted', taskScheduledId: d.s, result: value, timestamp: now }
        : d.k === 'f'
          ? { type: 'EntityOperationFailed', taskScheduledId: d.s, failure: value as FailureDetails, timestamp: now }
          : { type: 'EntityLockGranted', taskScheduledId: d.s, timestamp: now };
    await this.route(d.i).deliverEvent(d.i, d.x, d.k === 'f' ? 'f' : 'c', d.s, event).catch(ignoreGone);
  }

  /** Delivers a finished sub-orchestration's output or failure to its parent. */
  private async notifyParent(childId: string): Promise<void> {
    // Only the output (or termination reason) is needed: a large input stays where it is.
    const child = await this.getState(childId, { resolve: false });
    if (!child?.parent || !isTerminalStatus(child.runtimeStatus)) return;
    child.output = await this.resolvePayload(childId, child.output);
    const p = child.parent;
    const now = Date.now();
    const event: HistoryEvent =
      child.runtimeStatus === 'Completed'
        ? { type: 'SubOrchestrationInstanceCompleted', taskScheduledId: p.taskId, result: child.output, timestamp: now }
        : {
            type: 'SubOrchestrationInstanceFailed',
            taskScheduledId: p.taskId,
            failure:
              child.failure ??
              { errorName: 'TerminatedError', message: `Sub-orchestration '${childId}' was terminated: ${String(child.output ?? 'no reason given')}`, functionName: child.name },
            timestamp: now,
          };
    // The parent may be in another partition: delivered there (deliverEvent drops a duplicate).
    await this.route(p.instanceId).deliverEvent(p.instanceId, p.executionId, event.type === 'SubOrchestrationInstanceCompleted' ? 'c' : 'f', p.taskId, event).catch(ignoreGone);
  }

  /**
   * Terminates an instance at once (its parent, if any, sees a failed sub-orchestration).
   * `recursive`: recorded with it, so that a sub-orchestration whose start is still queued is not
   * started afterwards (the caller terminates those already running). `opId` makes it idempotent:
   * a terminate sent again with the same id (as ioredis resends a command whose reply a broken
   * connection lost) succeeds without doing anything. The activities it was waiting for are
   * cancelled: the workers running them abort their signals (told on the cancel channel), and their
   * jobs still queued are removed, as are its timers' delayed jobs.
   */
  async terminate(instanceId: string, reason?: unknown, now = Date.now(), recursive = false, opId = newEventId()): Promise<void> {
    assertInstanceId(instanceId);
    const claims: Claim[] = [];
    // The state's output and ExecutionTerminated's reason share one payload key when it is stored apart.
    const stored = claimPayload(encodePayload(reason, 'Termination reason', this.maxPayloadBytes), reason, this.claimThreshold, claims);
    const k = this.keys;
    const res = await this.scripts.terminateInstance(
      ...k.instanceKeys(instanceId),
      k.outbox,
      k.outboxIndex,
      k.statusIndex,
      k.claims(instanceId),
      instanceId,
      stored.buf,
      encodeEvent({ type: 'ExecutionTerminated', reason: stored.value, timestamp: now }),
      now,
      k.doneChannel,
      recursive ? '1' : '0',
      opId,
      k.cancelChannel,
      ...claimArgs(claims),
    );
    if (res[0] !== 1) throw toError(res[0], { instanceId, status: res[1], script: 'terminateInstance', operation: 'terminate' });
    const [, parentJobId, parentPayload, executionId, ...pending] = res;
    await Promise.all([
      parentJobId ? this.dispatch([[parentJobId, parentPayload!]]) : undefined,
      executionId && pending.length > 0 ? this.removeTaskJobs(instanceId, executionId, pending.map(Number)) : undefined,
    ]);
  }

  /**
   * Removes the queued jobs of tasks that nothing waits for any more (a terminated instance's):
   * activity jobs still waiting (a running one is locked and stays; its result is dropped) and
   * timers' delayed jobs. An entry still in the outbox is dropped by the ack that finds its task
   * settled.
   */
  private async removeTaskJobs(instanceId: string, executionId: string, seqs: number[]): Promise<void> {
    const gone = (p: Promise<unknown>) => p.catch(() => undefined);
    for (let k = 0; k < seqs.length; k += 500) {
      await Promise.all(
        seqs.slice(k, k + 500).flatMap((seq) => [
          gone(this.activityQueue.remove(activityJobId(instanceId, executionId, seq))),
          gone(this.orchestratorQueue.remove(timerJobId(instanceId, executionId, seq))),
        ]),
      );
    }
  }

  /** Suspends (`suspend`) or resumes (`resume`) an instance; `opId` makes it idempotent, as for {@link terminate}. */
  async setSuspended(instanceId: string, op: 'suspend' | 'resume', reason?: unknown, now = Date.now(), opId = newEventId()): Promise<void> {
    assertInstanceId(instanceId);
    const k = this.keys;
    const event: HistoryEvent = op === 'suspend' ? { type: 'ExecutionSuspended', reason, timestamp: now } : { type: 'ExecutionResumed', reason, timestamp: now };
    const stored = this.encodeForStorage(event, `Reason to ${op}`);
    const res = await this.scripts.setSuspended(
      k.state(instanceId),
      k.inbox(instanceId),
      k.outbox,
      k.outboxIndex,
      k.statusIndex,
      k.claims(instanceId),
      instanceId,
      op,
      Buffer.concat([Buffer.from('n|'), stored.bytes]),
      now,
      opId,
      ...claimArgs(stored.claims),
    );
    if (res[0] !== 1) throw toError(res[0], { instanceId, status: res[1], script: 'setSuspended', operation: op });
    if (res[1]) await this.dispatch([[res[1], res[2]!]]);
  }

  /** Deletes a finished instance and everything it left in Redis. */
  async purge(instanceId: string): Promise<void> {
    assertInstanceId(instanceId);
    const k = this.keys;
    // Payloads stored apart are not read: only the timers matter here.
    const [state, history] = await Promise.all([this.getState(instanceId, { resolve: false }), this.getHistory(instanceId, { resolve: false })]);
    const res = await this.scripts.purgeInstance(
      ...k.instanceKeys(instanceId),
      k.instances,
      k.statusIndex,
      k.nameIndex,
      k.claims(instanceId),
      k.scheduleIndex,
      k.heartbeats(instanceId),
      instanceId,
    );
    if (res[0] !== 1) throw toError(res[0], { instanceId, status: res[1], script: 'purgeInstance', operation: 'purge' });
    // Its timer jobs: kept once completed (TIMER_JOB_OPTS), or still delayed (a timer that lost a race).
    const timers = state ? history.flatMap((e) => (e.type === 'TimerCreated' ? [`t-${instanceId}-${state.executionId}-${e.taskId}`] : [])) : [];
    await Promise.all(timers.map((jobId) => this.orchestratorQueue.remove(jobId)));
  }

  /**
   * Lists instances in creation order, a page at a time, from an index (never a key scan). With
   * `status` and `name` or `scheduleId`, the status index is read and the others are filtered (with
   * `scheduleId` and `name`, the schedule index), so a page may hold fewer than `pageSize`
   * instances while `nextCursor` is still set.
   */
  async list(q: ListQuery = {}): Promise<ListPage> {
    return this.listAcross([this], q);
  }

  /**
   * {@link list} over several partitions of one hub (the router's): each scan reads every
   * partition's index after the cursor (in parallel) and merges them by member.
   */
  async listAcross(parts: readonly RedisBackend[], q: ListQuery = {}): Promise<ListPage> {
    const pageSize = q.pageSize ?? 100;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > 1000) throw new ValidationError(`pageSize must be an integer from 1 to 1000, got ${pageSize}`);
    const statuses = q.status === undefined ? [] : Array.isArray(q.status) ? q.status : [q.status];
    for (const st of statuses) if (!RUNTIME_STATUSES.has(st)) throw new ValidationError(`Unknown status ${JSON.stringify(st)}: use one of ${[...RUNTIME_STATUSES].join(', ')}`);
    if (q.name !== undefined) assertFunctionName('orchestrator', q.name);
    if (q.scheduleId !== undefined) assertScheduleId(q.scheduleId, 'list', 'scheduleId');
    for (const [field, d] of [['createdFrom', q.createdFrom], ['createdTo', q.createdTo]] as const) {
      if (d !== undefined && !(d instanceof Date && Number.isFinite(d.getTime()))) {
        throw new ValidationError(`${field} must be a valid Date, got ${d instanceof Date ? 'an invalid Date' : typeof d === 'string' ? JSON.stringify(d) : String(d)}`);
      }
    }
    const from = q.createdFrom ? pad13(q.createdFrom.getTime()) : '0000000000000';
    const to = q.createdTo ? pad13(q.createdTo.getTime()) : '9999999999999';
    // One index, one prefix per scan: the status index (per status), else the schedule index, else
    // the name index, else creation.
    const scans: { key: string; prefix: string }[] =
      statuses.length > 0
        ? statuses.map((st) => ({ key: this.keys.statusIndex, prefix: `${st}|` }))
        : q.scheduleId !== undefined
          ? [{ key: this.keys.scheduleIndex, prefix: `${q.scheduleId}|` }]
          : q.name !== undefined
            ? [{ key: this.keys.nameIndex, prefix: `${q.name}|` }]
            : [{ key: this.keys.instances, prefix: '' }];
    const cursor = q.cursor ? decodeCursor(q.cursor, scans.length) : { scan: 0, after: undefined };
    const ids: string[] = [];
    let next: { scan: number; after: string } | undefined;
    for (let sIdx = cursor.scan; sIdx < scans.length && ids.length < pageSize; sIdx++) {
      const { key, prefix } = scans[sIdx]!;
      const min = sIdx === cursor.scan && cursor.after ? `(${cursor.after}` : `[${prefix}${from}`;
      const max = `[${prefix}${to}|\xff`;
      const want = pageSize - ids.length + 1;
      const read = await Promise.all(parts.map((p) => p.redis.zrangebylex(p.keys.rename(key, this.keys), min, max, 'LIMIT', 0, want)));
      const members = read.length === 1 ? read[0]! : read.flat().sort().slice(0, want);
      const take = members.slice(0, pageSize - ids.length);
      for (const m of take) ids.push(m.slice(m.lastIndexOf('|') + 1));
      if (members.length > take.length) next = { scan: sIdx, after: take.at(-1)! };
      else if (sIdx + 1 < scans.length && ids.length >= pageSize) next = { scan: sIdx + 1, after: '' };
    }
    const states = parts.length === 1 ? await this.getStates(ids) : await getStatesAcross(parts, ids);
    const instances = states.filter(
      (s): s is InstanceState => !!s && (q.name === undefined || s.name === q.name) && (q.scheduleId === undefined || s.schedule?.scheduleId === q.scheduleId),
    );
    const page: ListPage = { instances };
    if (next) page.nextCursor = Buffer.from(JSON.stringify(next)).toString('base64url');
    return page;
  }

  /** States of many instances in one pipelined round trip. */
  async getStates(ids: string[]): Promise<(InstanceState | undefined)[]> {
    if (ids.length === 0) return [];
    const p = this.redis.pipeline();
    for (const id of ids) p.hgetallBuffer(this.keys.state(id));
    const res = (await p.exec()) ?? [];
    const refsBefore = payloadRefsDecoded();
    const states = res.map(([err, st], i) => {
      if (err) throw err;
      const rec = st as Record<string, Buffer>;
      return rec.status ? parseState(ids[i]!, rec) : undefined;
    });
    if (payloadRefsDecoded() !== refsBefore) {
      await Promise.all(
        states.map(async (s, i) => {
          if (!s) return;
          // A payload deleted meanwhile (continue-as-new, restart, purge): getState reads it again.
          await this.resolvePayloads(s.instanceId, [s]).catch(async (err: unknown) => {
            if (!(err instanceof PayloadMissingError)) throw err;
            states[i] = await this.getState(s.instanceId);
          });
        }),
      );
    }
    return states;
  }

  /** Recovery: dispatches outbox entries older than `graceMs` that no worker dispatched (it crashed). */
  async sweepOutbox(graceMs = 5000, limit = 500, now = Date.now()): Promise<number> {
    const ids = await this.redis.zrangebyscore(this.keys.outboxIndex, '-inf', now - graceMs, 'LIMIT', 0, limit);
    if (ids.length === 0) return 0;
    // What is done or queued already goes without being queued again (an activity that ran and
    // whose job BullMQ removed would run twice); what is left is queued, and acked once queued.
    const kept = await this.ackScript('sweep', ids);
    const entries: [string, string][] = [];
    for (let i = 0; i < kept.length; i += 2) entries.push([kept[i]!, kept[i + 1]!]);
    await this.dispatch(entries, { now, awaitCleanup: true });
    return entries.length;
  }

  /**
   * Ends the current execution of an instance as Failed with `failure`, without running its code
   * and without reading its history (which may be what cannot be decoded): one framed episode
   * (OrchestratorStarted, the inbox entries, ExecutionCompleted Failed, OrchestratorCompleted)
   * committed through `commitEpisode`, so parents are notified and waiters woken as usual. Returns
   * false when there is nothing to fail: the instance is gone, finished, in another execution, at
   * another version than `opts.version` (when given: the failing job was a stale one), or moved on
   * during the call.
   */
  async failExecution(
    instanceId: string,
    executionId: string,
    failure: FailureDetails,
    opts: { version?: number; now?: number } = {},
  ): Promise<boolean> {
    const now = opts.now ?? Date.now();
    // Not resolved: a missing payload may be why the execution fails.
    const state = await this.getState(instanceId, { resolve: false });
    if (!state || state.executionId !== executionId || isTerminalStatus(state.runtimeStatus)) return false;
    if (opts.version !== undefined && state.version !== opts.version) return false;
    // The commit moves the first N inbox entries into history on the server; only their number travels.
    const inboxLength = await this.redis.llen(this.keys.instanceKeys(instanceId)[2]);
    const loaded: LoadedEpisode = { state, history: [], inbox: new Array<InboxItem>(inboxLength) };
    const result: ExecutionResult = {
      instanceId,
      executionId,
      name: state.name,
      actions: [{ type: 'CompleteOrchestration', status: 'Failed', failure }],
      actionEvents: [{ type: 'ExecutionCompleted', status: 'Failed', failure, timestamp: now }],
      status: 'Failed',
      failure,
      started: false,
    };
    try {
      const commit = await this.commitEpisode(loaded, [{ type: 'OrchestratorStarted', timestamp: now }], result, now);
      this.historyCache.delete(instanceId);
      await this.dispatch(commit.outbox);
      return true;
    } catch (err) {
      if (err instanceof StaleEpisodeError) return false;
      throw err;
    }
  }

  // ---- queries ----

  /**
   * The instance's state, or undefined. Payloads stored apart (claim check) are read back, in one
   * more round trip when there are any; with `resolve: false` they stay references ({@link PayloadRef}).
   */
  async getState(instanceId: string, opts: { resolve?: boolean } = {}): Promise<InstanceState | undefined> {
    assertInstanceId(instanceId);
    for (let attempt = 1; ; attempt++) {
      const st = await this.redis.hgetallBuffer(this.keys.state(instanceId));
      if (!st.status) return undefined;
      const refsBefore = payloadRefsDecoded();
      const state = parseState(instanceId, st);
      if (opts.resolve === false || payloadRefsDecoded() === refsBefore) return state;
      try {
        await this.resolvePayloads(instanceId, [state]);
        return state;
      } catch (err) {
        // Deleted between the two reads by a continue-as-new, restart or purge (each moves `exec`,
        // or removes the state): read again. Otherwise the payload is really gone.
        if (!(err instanceof PayloadMissingError) || attempt >= 5) throw err;
        const now = await this.redis.hmget(this.keys.state(instanceId), 'exec', 'version');
        if (now[0] === state.executionId && Number(now[1]) === state.version) throw err;
      }
    }
  }

  /**
   * The current execution's history. Payloads stored apart (claim check) are read back, in one more
   * round trip when there are any; with `resolve: false` they stay references ({@link PayloadRef}).
   */
  async getHistory(instanceId: string, opts: { resolve?: boolean } = {}): Promise<HistoryEvent[]> {
    assertInstanceId(instanceId);
    if (opts.resolve === false) return this.readHistory(instanceId);
    for (let attempt = 1; ; attempt++) {
      // The execution is read before the history: if it is the same after a payload turned out
      // missing, no continue-as-new, restart or purge (which delete payloads) ran in between.
      const [[e1, exec], [e2, stream]] = (await this.redis
        .pipeline()
        .hget(this.keys.state(instanceId), 'exec')
        .xrangeBuffer(this.keys.history(instanceId), '-', '+')
        .exec()) as [[Error | null, string | null], [Error | null, [Buffer, Buffer[]][]]];
      if (e1 || e2) throw e1 ?? e2;
      const refsBefore = payloadRefsDecoded();
      const events: HistoryEvent[] = [];
      for (const [, fields] of stream) decodeStreamEntry(fields, events);
      if (payloadRefsDecoded() === refsBefore) return events;
      try {
        await this.resolvePayloads(instanceId, events);
        return events;
      } catch (err) {
        if (!(err instanceof PayloadMissingError) || attempt >= 5) throw err;
        if ((await this.redis.hget(this.keys.state(instanceId), 'exec')) === exec) throw err;
      }
    }
  }

  /**
   * The current execution's histories of many instances, in one pipelined round trip (an instance
   * that is gone has an empty history). Payloads stored apart are read back as `getHistory` does:
   * one more round trip per instance that has any.
   */
  async getHistories(ids: readonly string[]): Promise<HistoryEvent[][]> {
    if (ids.length === 0) return [];
    for (const id of ids) assertInstanceId(id);
    const p = this.redis.pipeline();
    for (const id of ids) p.xrangeBuffer(this.keys.history(id), '-', '+');
    const res = (await p.exec()) ?? [];
    const out: HistoryEvent[][] = [];
    const unresolved: number[] = [];
    for (const [i, [err, stream]] of res.entries()) {
      if (err) throw err;
      const refsBefore = payloadRefsDecoded();
      const events: HistoryEvent[] = [];
      for (const [, fields] of stream as [Buffer, Buffer[]][]) decodeStreamEntry(fields, events);
      if (payloadRefsDecoded() !== refsBefore) unresolved.push(i);
      out.push(events);
    }
    // Rare (payloads over the claim-check threshold): read those again the careful way.
    for (const i of unresolved) out[i] = await this.getHistory(ids[i]!);
    return out;
  }

  /** The current execution's history as stored: references stay references. */
  private async readHistory(instanceId: string): Promise<HistoryEvent[]> {
    const stream = (await this.redis.xrangeBuffer(this.keys.history(instanceId), '-', '+')) as unknown as [Buffer, Buffer[]][];
    const events: HistoryEvent[] = [];
    for (const [, fields] of stream) decodeStreamEntry(fields, events);
    return events;
  }

  /**
   * One PING. A refused password (WRONGPASS, NOAUTH...) becomes RedisAuthError at once, and the
   * connection stops reconnecting (retrying cannot fix a password).
   */
  async ping(): Promise<void> {
    try {
      await this.redis.ping();
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/^(WRONGPASS|NOAUTH|NOPERM)\b|invalid password|invalid username-password/i.test(msg)) {
        if (this.shared.ownsClient) this.redis.disconnect();
        throw new RedisAuthError(msg);
      }
      throw err;
    }
  }

  /**
   * Closes the queues and the connections this backend opened. While Redis is unreachable it sends
   * nothing more (acks still pending are left to the sweep, which dispatches such entries again
   * harmlessly) and drops the connections instead of waiting for Redis.
   */
  async close(): Promise<void> {
    if (this.redis.status === 'ready') await this.flushAcks().catch(() => undefined);
    await Promise.all([this._orchestratorQueue?.close(), this._activityQueue?.close()]);
    if (this.ownsShared) await this.shared.close();
  }

  // ---- recovery: stuck instances and index entries (checker.ts, the worker's sweep) ----

  /**
   * Re-queues an unfinished instance whose wake-up was lost (`requeueInstance` script): when it is
   * still at what the caller `seen` (execution, version, `scheduled`), has no wake in the outbox,
   * and, if idle, has inbox events that let its code progress, bumps its version and writes a
   * wake, dispatched here at once. Otherwise writes nothing and says why.
   */
  async requeueInstance(
    instanceId: string,
    seen: { executionId: string; version: number; scheduled: boolean },
    now = Date.now(),
  ): Promise<RequeueResult> {
    assertInstanceId(instanceId);
    const k = this.keys;
    const res = await (this.redis as RecoveryScripts).requeueInstance(
      k.state(instanceId),
      k.inbox(instanceId),
      k.wait(instanceId),
      k.outbox,
      k.outboxIndex,
      instanceId,
      seen.executionId,
      seen.version,
      seen.scheduled ? '1' : '0',
      now,
    );
    switch (res[0]) {
      case 1:
        await this.dispatch([[res[1]!, res[2]!]], { now, awaitCleanup: true });
        return { status: 'requeued', wakeJobId: res[1]! };
      case 0:
        return { status: 'not-stuck', reason: res[1]! };
      case ErrorCode.Stale:
        return { status: 'moved' };
      case ErrorCode.InstanceFinished:
        return { status: 'finished', reason: res[1]! };
      case ErrorCode.InvalidState:
        return { status: 'suspended' };
      default:
        return { status: 'gone' };
    }
  }

  /**
   * Rewrites an instance's creation, name and status index entries from its state
   * (`reindexInstance` script); with `indexedAt` (a creation time found in an index), removes the
   * entries of that time when they are not the instance's own. Returns how many entries changed.
   */
  async reindexInstance(instanceId: string, indexedAt?: string): Promise<number> {
    assertInstanceId(instanceId);
    const k = this.keys;
    const res = await (this.redis as RecoveryScripts).reindexInstance(k.state(instanceId), k.instances, k.statusIndex, k.nameIndex, instanceId, indexedAt ?? '');
    return res[0];
  }

  private _schedules: ScheduleStore | undefined;

  /** The partition's schedules: create, change, list them; the workers' side of their ticks. */
  get schedules(): ScheduleStore {
    this._schedules ??= new ScheduleStore(this);
    return this._schedules;
  }
}

/** States of instances of several partitions: one pipeline per partition that holds some. */
async function getStatesAcross(parts: readonly RedisBackend[], ids: string[]): Promise<(InstanceState | undefined)[]> {
  const out = new Array<InstanceState | undefined>(ids.length);
  const groups = new Map<RedisBackend, number[]>();
  ids.forEach((id, i) => {
    const p = parts[0]!.route(id);
    let g = groups.get(p);
    if (!g) groups.set(p, (g = []));
    g.push(i);
  });
  await Promise.all(
    [...groups].map(async ([p, idx]) => {
      const res = await p.getStates(idx.map((i) => ids[i]!));
      idx.forEach((i, k) => (out[i] = res[k]));
    }),
  );
  return out;
}

/** What `RedisBackend.requeueInstance` did. */
export interface RequeueResult {
  /**
   * `requeued`: a wake for version + 1 was written and dispatched; `not-stuck`: nothing to do
   * (`reason` says why); `moved`: its execution or version changed meanwhile; `gone`, `finished`,
   * `suspended`: as it says.
   */
  status: 'requeued' | 'not-stuck' | 'moved' | 'gone' | 'finished' | 'suspended';
  wakeJobId?: string;
  reason?: string;
}

/** The recovery scripts (lua/requeueInstance-5.lua, lua/reindexInstance-4.lua). */
type RecoveryScripts = RedisClient & {
  requeueInstance(...args: Arg[]): Promise<[number, string?, string?]>;
  reindexInstance(...args: Arg[]): Promise<[number]>;
};

// Job failures here are infrastructure failures (Redis unreachable mid-step): an activity's own
// error becomes TaskFailed in history, never a failed job. So jobs retry with backoff.
const RETRY: JobsOptions = { attempts: 20, backoff: { type: 'exponential', delay: 200 } };
const RUNTIME_STATUSES = new Set<string>(['Pending', 'Running', 'Completed', 'Failed', 'Terminated', 'ContinuedAsNew', 'Suspended']);

function pad13(n: number): string {
  return String(Math.max(0, Math.floor(n))).padStart(13, '0');
}

function decodeCursor(cursor: string, scans: number): { scan: number; after: string | undefined } {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { scan: number; after: string };
    if (Number.isInteger(c.scan) && c.scan >= 0 && c.scan < scans && typeof c.after === 'string') return { scan: c.scan, after: c.after || undefined };
  } catch {
    // fall through
  }
  throw new ValidationError('Invalid list cursor: pass the nextCursor of the previous page with the same filters.');
}

/**
 * Swallows the errors of an instance that is gone (finished, or purged): what was being delivered
 * or changed no longer matters, and retrying cannot help. Rethrows anything else.
 */
export function ignoreGone(err: unknown): undefined {
  if (err instanceof InstanceNotFoundError || err instanceof InstanceFinishedError) return undefined;
  throw err;
}

// Completed wake and activity jobs are not kept: their ids and data (activity inputs) name the instance, and a
// purged instance must leave nothing behind, also when its last jobs finish after the purge. A job dispatched
// again after it completed runs again: a stale wake is skipped, a second activity result is dropped as a
// duplicate. The last 1000 completed timer jobs are kept (no payload; they show that a timer fired); purge
// removes the instance's own.
const WAKE_JOB_OPTS: JobsOptions = { removeOnComplete: true, removeOnFail: { count: 5000 }, ...RETRY };
const TIMER_JOB_OPTS: JobsOptions = { removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 }, ...RETRY };
const ACTIVITY_JOB_OPTS: JobsOptions = { removeOnComplete: true, removeOnFail: { count: 5000 }, ...RETRY };
/** WAKE_JOB_OPTS as BullMQ stores them in a job (its `jobId` apart), for startInstance's addQueueJob. */
const WAKE_JOB_OPTS_JSON = JSON.stringify(WAKE_JOB_OPTS);
/** ACTIVITY_JOB_OPTS as BullMQ stores them in a job (its `jobId` apart), for commitEpisode's addQueueJob. */
const ACTIVITY_JOB_OPTS_JSON = JSON.stringify(ACTIVITY_JOB_OPTS);

/**
 * The episode job data of a wake outbox entry (`W<instance>|<execution>|<version>`), or of a wake
 * as a delivery returns it, which may carry the inbox entry (`|<base64>`, {@link EpisodeJobData.e}).
 */
export function parseWake(payload: string): EpisodeJobData {
  const [i, x, v, e] = payload.slice(1).split('|');
  const data: EpisodeJobData = { i: i!, x: x!, v: Number(v) };
  if (e) data.e = e;
  return data;
}

/** A delayed start's wake (`W<instance>|<execution>|0||<ms>`): when its episode may run; undefined for any other wake. */
export function wakeNotBefore(payload: string): number | undefined {
  const parts = payload.split('|');
  if (parts.length < 5 || parts[4] === '') return undefined;
  const t = Number(parts[4]);
  return Number.isFinite(t) ? t : undefined;
}

function wakePayload(instanceId: string, executionId: string, version: number): string {
  return `W${instanceId}|${executionId}|${version}`;
}

function parseInboxEntry(buf: Buffer): InboxItem {
  const sep = buf.indexOf(0x7c); // '|'
  const header = buf.subarray(0, sep).toString('latin1');
  const raw = buf.subarray(sep + 1);
  return { kind: header[0] as InboxItem['kind'], seq: header.slice(1), event: decodeEvent(raw), raw };
}

function parseState(instanceId: string, st: Record<string, Buffer>): InstanceState {
  const str = (k: string) => st[k]?.toString('utf8');
  const num = (k: string) => Number(str(k) ?? 0);
  const blob = (k: string) => (st[k] && st[k].length > 0 ? decode(st[k]) : undefined);
  const completedAt = str('completedAt');
  const failure = blob('failure') as FailureDetails | undefined;
  const state: InstanceState = {
    instanceId,
    name: str('name') ?? '',
    runtimeStatus: (str('status') ?? 'Pending') as RuntimeStatus,
    executionId: str('exec') ?? '',
    version: num('version'),
    scheduled: str('scheduled') === '1',
    episodes: num('episodes'),
    input: blob('input'),
    output: blob('output'),
    customStatus: blob('custom'),
    createdAt: new Date(num('createdAt')),
    lastUpdatedAt: new Date(num('updatedAt')),
  };
  if (failure) state.failure = failure;
  if (completedAt) state.completedAt = new Date(Number(completedAt));
  const plink = str('plink');
  if (plink) {
    const [pi, px, ps] = plink.split('|');
    state.parent = { instanceId: pi!, executionId: px!, taskId: Number(ps) };
  }
  const startAt = str('startAt');
  if (startAt) state.scheduledStartTime = new Date(Number(startAt));
  const sched = str('sched');
  if (sched) state.schedule = { scheduleId: sched, tick: new Date(Number(str('tick') ?? 0)) };
  return state;
}

export { isTerminalStatus };
