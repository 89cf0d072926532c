/**
 * Orchestrator and activity workers on two BullMQ queues. Either kind can run alone (one process
 * per kind, scaled independently) or both in one process.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import {
  ActivityTimeoutError,
  type HistoryEvent,
  HistoryLimitError,
  MalformedJobError,
  PoisonJobError,
  Registry,
  type ExecutionResult,
  type SessionOptions,
  PayloadError,
  StaleEpisodeError,
  OrchestrationSession,
  ValidationError,
  isTerminalStatus,
  toFailureDetails,
} from '@durabull/core';

/** The same episode, ending the instance as Failed with `err` instead of what the code asked for. */
function failedResult(result: ExecutionResult, err: unknown, now: number): ExecutionResult {
  const failure = toFailureDetails(err, result.name);
  return {
    ...result,
    status: 'Failed',
    output: undefined,
    failure,
    actions: [{ type: 'CompleteOrchestration', status: 'Failed', failure }],
    actionEvents: [{ type: 'ExecutionCompleted', status: 'Failed', failure, timestamp: now }],
    wait: undefined,
  };
}
import {
  ACTIVITY_QUEUE,
  type ActivityJobData,
  HubStatsRecorder,
  type CommitOptions,
  type EpisodeJobFinish,
  type ConnectionLike,
  activityJobId,
  type EpisodeJobData,
  type LoadedEpisode,
  ORCHESTRATOR_QUEUE,
  PayloadMissingError,
  type RedisBackend,
  StuckSweeper,
  TaskHub,
  type HubOptions,
  closeConnection,
  duplicateClient,
  isCluster,
  SCHEDULE_BUFFER_JOB,
  SCHEDULE_JOB,
  parseWake,
  type TimerJobData,
  type StoredEvent,
  type DeliverResult,
  type WorkerEntry,
  type WorkerKind,
  decode,
  decodeEvent,
  encodeEvent,
  ignoreGone,
  wakeJobId,
  useFastEncodingForAll,
} from '@durabull/redis';
import { type Job, UnrecoverableError, Worker } from 'bullmq';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RedisClient } from '@durabull/redis';
import { pino, type Logger } from 'pino';
import { ActivityAttempt } from './activity-attempt.js';
import { LogMessages as M } from './execution-log.js';
import { type EpisodeObserver, type WorkerInstrumentation, combineInstrumentations } from './instrumentation.js';
import { DurabullMetrics } from './metrics.js';
import { assertWorkerOptions } from './options.js';
import { TracingInstrumentation } from './tracing.js';
import { EntityWorker } from './entity-worker.js';
import { SharedConcurrency } from './shared-concurrency.js';
import { QueueWorker, DeliverOnFinish, FinishedInScript } from './queue-worker.js';

export interface DurabullWorkerOptions {
  /** Redis connection (URL, ioredis options or client). Default `redis://127.0.0.1:6379`. */
  connection?: ConnectionLike;
  /** Task hub name. Default `default`. */
  hub?: string;
  /**
   * The hub's partition count (1 to 1024): checked against the hub's own (PartitionMismatchError
   * at `start()` when they differ). Default: the hub's (a new hub gets 4). The worker serves
   * every partition.
   */
  partitions?: number;
  /** The orchestrators and activities this worker runs. */
  registry: Registry;
  /** Run the orchestrator worker. Default true. */
  orchestrators?: boolean;
  /** Run the activity worker. Default true. */
  activities?: boolean;
  /** Episodes processed at once. Default 20. */
  orchestratorConcurrency?: number;
  /** Activities run at once. Default 20. */
  activityConcurrency?: number;
  /**
   * A pino logger for the execution log and for connection problems (a lost Redis connection is
   * logged once at warn, with the address and the reason, and once at info when it is back);
   * `false` for none. Default: pino at info on stdout.
   */
  logger?: Logger | false;
  /** How long a job stays locked to a worker without renewal; after that a stalled job is handed to another worker. Default 30 s. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for. Default 30 s. */
  stalledIntervalMs?: number;
  /** How often this worker drains outbox entries that a crashed worker left. Default 5 s; 0 turns it off. */
  sweepIntervalMs?: number;
  /**
   * Unfinished instances each sweep looks at for a lost wake-up or lost tasks (a cursor moves on
   * from pass to pass, so every instance is looked at once per `instances / this` sweeps). Default
   * 100. Cost per instance: one pipelined read of its state, inbox length and up to 100 pending
   * task ids, one EXISTS per pending task, and more only for the instances found wanting.
   */
  sweepInstancesPerPass?: number;
  /** Largest encoded payload. Default 16 MiB. */
  maxPayloadBytes?: number;
  /**
   * Claim check: a payload this worker writes (activity inputs and results, outputs,
   * sub-orchestration and next-execution inputs) whose encoding is larger than this is stored
   * apart under a key of its own, atomically with the history entry that carries a reference to it,
   * and read back transparently. Default 64 KiB; 0 turns it off. References are read whatever this is.
   */
  claimCheckThresholdBytes?: number;
  /**
   * When this process runs both kinds, run the episode an activity result wakes in place of a trip
   * through the orchestrator queue. Default true.
   */
  inlineEpisodes?: boolean;
  /**
   * Sticky episodes (Temporal's sticky task queues): this worker records in each instance whose
   * session it keeps that it does, and a delivery that wakes such an instance (an activity result
   * from another process, a timer, a raised event) hands the wake-up to this worker through a Redis
   * stream of its own instead of the orchestrator queue, so the next episode resumes the code here
   * instead of replaying its history elsewhere. The wake's outbox entry stays until this worker's
   * commit: if it died, the sweep queues it after its grace period (`sweepIntervalMs`). Needs
   * `extendedSessions` and a cache (`cachedInstances` > 0). Default true.
   */
  stickyEpisodes?: boolean;
  /**
   * When this process runs both kinds, run the one activity an episode schedules (a chain's next
   * step) here instead of a trip through the activity queue. Default true.
   */
  eagerActivities?: boolean;
  /** How long an eagerly run activity keeps its outbox entry from the sweep; renewed while it runs. Default 30 s. */
  eagerLeaseMs?: number;
  /** Run the registry's entities (when it has any). Default true. */
  entities?: boolean;
  /** Entities whose batches run at once. Default 20. */
  entityConcurrency?: number;
  /** The most messages one batch of an entity takes (one load, one commit). Default 1000. */
  entityBatchSize?: number;
  /**
   * When a batch leaves fewer than `entityBatchSize` messages waiting, the entity's next batch waits
   * this long for more (a busy entity runs fewer, larger batches). 0: at once. Default 10 ms.
   */
  entityBatchWindowMs?: number;
  /** How long a claimed entity is leased to this worker: if it dies, another runs the batch after this. Default 30 s. */
  entityLeaseMs?: number;
  /**
   * Keep each instance's code in memory between its episodes (with the cached history of the
   * instance's last commit here) and resume it with the next episode's events instead of replaying
   * the whole history (Durable Functions' extended sessions, Temporal's sticky cache). A replay
   * still happens whenever this worker did not commit the instance's last episode. false: replay
   * every episode (to exercise replay determinism). Default true.
   */
  extendedSessions?: boolean;
  /**
   * How many instances this worker keeps in memory between their episodes: the decoded history of
   * its own last commit and, with extended sessions, the code. The least recently used goes first;
   * 0 turns the cache off (every episode loads its history and replays). Default 1000.
   */
  cachedInstances?: number;
  /**
   * How many history events the cache may hold, all instances together: the least recently used
   * go first, and an instance whose history alone is larger is not kept. Default 1,000,000.
   */
  cachedHistoryEvents?: number;
  /**
   * Attempts of one episode job (load, replay, commit) before the instance is failed with
   * `PoisonJobError` ("episode failed N times: ...") and the job dead-lettered. Jobs retry with
   * exponential backoff from 200 ms, so the default 10 gives up after about 100 s of failures.
   * Default 10 (at most the job's own `attempts`, 20).
   */
  maxEpisodeAttempts?: number;
  /**
   * How many times a job may be found stalled (its worker died or stopped renewing its lock) before
   * BullMQ fails it: an activity then fails as TaskFailed ("activity worker crashed N times"), an
   * episode fails its instance. Default 10.
   */
  maxStalledCount?: number;
  /**
   * Largest history of one execution, in events. An episode whose commit would grow the history
   * beyond it fails the instance with `HistoryLimitError` instead (none of its new work is written;
   * the failing episode records only its inbox events and the ExecutionCompleted). Continue-as-new
   * starts a fresh history. Default 1,000,000 (a fan-out of 100,000 activities takes about 200,000);
   * 0 turns the limit off.
   */
  maxHistoryEvents?: number;
  /**
   * How often this worker renews its entry in the task hub's worker registry (what it runs, with
   * its stats). Default 5 s.
   */
  heartbeatIntervalMs?: number;
  /**
   * How long the entry lives without a heartbeat: a worker that died without closing drops out of
   * the registry (and no longer counts for the start check) this long after its last heartbeat.
   * More than `heartbeatIntervalMs`. Default 15 s.
   */
  heartbeatExpiryMs?: number;
  /**
   * Prometheus metrics (prom-client): episodes, activities, latencies, sweep repairs, the Redis
   * round trip, and the hub's gauges read when scraped. true: in a registry of this worker's own
   * (`worker.metrics`); a {@link DurabullMetrics}: into that one (workers of a process can share
   * one); false: none. Default true.
   */
  metrics?: boolean | DurabullMetrics;
  /** Serve the metrics at `GET /metrics` on this port (0: any free one; `worker.metricsAddress`). Default: not served. */
  metricsPort?: number;
  /** The address the metrics port listens on. Default `0.0.0.0`. */
  metricsHost?: string;
  /**
   * OpenTelemetry spans through `@opentelemetry/api` (no-ops unless the application registered an
   * SDK): one per episode and per activity attempt, timers, one trace per execution. Default true.
   */
  tracing?: boolean;
  /**
   * How often the counters of the dashboard's charts (kept in Redis per minute) are written, with a
   * sample of the hub's gauges once a minute. 0 turns them off. Default 10 s.
   */
  statsIntervalMs?: number;
  /** More hooks of your own, called with the built-in ones ({@link WorkerInstrumentation}). */
  instrumentation?: WorkerInstrumentation;
  /**
   * The start-to-close timeout of the activities this worker runs that set none (at registration
   * or in the call): an attempt still running after it fails with `ActivityTimeoutError`. Default
   * 5 minutes (the default function timeout of Azure Functions' Consumption plan, where Durable
   * Functions' activities run); 0 for none.
   */
  defaultStartToCloseTimeoutMs?: number;
  /**
   * On `close()`, how long running activities may go on before their signals are aborted
   * (`ActivityCancelledError`, reason `worker-shutdown`) and their attempts handed back to the
   * queue, to run again elsewhere. Default 5 s (under Docker's 10 s before SIGKILL); 0 aborts them at once.
   */
  shutdownGraceMs?: number;
}

const DEFAULT_MAX_HISTORY_EVENTS = 1_000_000;
const DEFAULT_STATS_INTERVAL_MS = 10_000;
const DEFAULT_HEARTBEAT_INTERVAL_MS = 5000;
const DEFAULT_HEARTBEAT_EXPIRY_MS = 15_000;

/** This package's version, for the worker registry. */
const PACKAGE_VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** Heartbeat interval and expiry from the options, checked. */
function heartbeatTimes(opts: DurabullWorkerOptions): { interval: number; expiry: number } {
  const interval = opts.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const expiry = opts.heartbeatExpiryMs ?? DEFAULT_HEARTBEAT_EXPIRY_MS;
  if (typeof interval !== 'number' || !Number.isInteger(interval) || interval < 1) {
    throw new ValidationError(`heartbeatIntervalMs must be an integer number of ms >= 1, got ${String(interval)}`);
  }
  if (typeof expiry !== 'number' || !Number.isInteger(expiry) || expiry <= interval) {
    throw new ValidationError(`heartbeatExpiryMs must be an integer number of ms greater than heartbeatIntervalMs (${interval}), got ${String(expiry)}`);
  }
  return { interval, expiry };
}

/** A task result this worker holds, consumed by an episode run from its cached history. */
interface DirectResult {
  seq: number;
  event: HistoryEvent;
  encoded: Buffer;
  /** The eagerly run activity's outbox entry, removed by the same commit. */
  ackJobId?: string;
  /** Called once the commit took effect, before the episode is logged (the log reads in causal order). */
  onCommitted?: () => void;
  /**
   * Set by the episode: the activity it scheduled (a chain's next step), for the caller to run in
   * the activity slot it holds, so a chain keeps its slot until it ends or waits on something else.
   */
  next?: OutboxEntry;
}

type OutboxEntry = [jobId: string, payload: string];

/** BullMQ's `failedReason` for a job found stalled more than `maxStalledCount` times. */
const STALLED_REASON = 'job stalled more than allowable limit';
const DEFAULT_MAX_EPISODE_ATTEMPTS = 10;

const EAGER_LEASE_MS = 30_000;
/** Default of {@link DurabullWorkerOptions.defaultStartToCloseTimeoutMs}: 5 minutes. */
export const DEFAULT_START_TO_CLOSE_TIMEOUT_MS = 300_000;
/** Default of {@link DurabullWorkerOptions.shutdownGraceMs}. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5000;
/** The sweep fails the task of a recorded attempt this long after its deadline (clocks of workers may differ a little). */
const EXPIRED_ATTEMPT_GRACE_MS = 1000;

/** Thrown out of an activity job whose attempt the worker's shutdown cut off: BullMQ retries the job (elsewhere). */
class AttemptInterrupted extends Error {
  override readonly name = 'AttemptInterrupted';
}

export interface WorkerStats {
  /** Entity batches committed, the operations they ran, and batches found stale at their commit. */
  entityBatches: number;
  entityOperations: number;
  entityStaleBatches: number;
  episodes: number;
  /** Episodes run in place right after an activity result (included in `episodes`). */
  inlineEpisodes: number;
  /**
   * Of those, episodes run from this worker's cached history and committed together with the
   * result in one script (included in `inlineEpisodes`).
   */
  directEpisodes: number;
  /** Direct episodes whose commit was refused because the instance had moved on (the result was then delivered as usual). */
  directRefused: number;
  /**
   * Episodes of wake jobs run without a load: the job carried the inbox, and this worker's cache
   * held the instance as its own last commit left it (included in `episodes`).
   */
  cachedEpisodes: number;
  /** Such episodes whose commit was refused because the instance had moved on (they were then loaded and run again). */
  cachedRefused: number;
  /**
   * Episodes whose code went on from where this worker's last commit left it (a kept session),
   * without replaying the history (included in `episodes`).
   */
  resumedEpisodes: number;
  /**
   * Episodes woken by a delivery that handed the wake-up to this worker, which keeps the instance's
   * session (its sticky stream), instead of a job on the orchestrator queue (included in `episodes`).
   */
  stickyEpisodes: number;
  /**
   * Episodes that replayed a non-empty history to rebuild their code's state (no kept session),
   * and the history events they replayed (included in `episodes`).
   */
  replayedEpisodes: number;
  replayedEvents: number;
  /** Reads of an instance's state, history and inbox by an episode (one round trip each), including those of episodes then dropped or run again. */
  loads: number;
  /** Activities run in place right after the episode that scheduled them (included in `activities`). */
  eagerActivities: number;
  /**
   * Activity jobs whose result was delivered by the script that completed the job (one round trip
   * for both; a worker that runs no episodes), included in `activities`.
   */
  deliveredOnFinish: number;
  /** Orchestrator jobs completed by their episode's commit (one script for both; a worker that runs no activities). */
  committedOnFinish: number;
  staleEpisodes: number;
  activities: number;
  swept: number;
}

export class DurabullWorker {
  /** The task hub: its partitions, and the routing of an instance to its partition. */
  readonly backend: TaskHub;
  readonly registry: Registry;
  readonly log: Logger;
  readonly stats: WorkerStats = { entityBatches: 0, entityOperations: 0, entityStaleBatches: 0, episodes: 0, inlineEpisodes: 0, directEpisodes: 0, directRefused: 0, cachedEpisodes: 0, cachedRefused: 0, resumedEpisodes: 0, stickyEpisodes: 0, replayedEpisodes: 0, replayedEvents: 0, loads: 0, eagerActivities: 0, deliveredOnFinish: 0, committedOnFinish: 0, staleEpisodes: 0, activities: 0, swept: 0 };
  /** One BullMQ worker per partition and queue; `orchestratorWorker` / `activityWorker` say whether there are any. */
  private orchestratorWorkers: QueueWorker[] = [];
  private activityWorkers: QueueWorker[] = [];
  private orchestratorWorker: Worker | undefined;
  private entityWorker: EntityWorker | undefined;
  private activityWorker: Worker | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  /** Activities running eagerly (not through the queue), awaited by close(). */
  private readonly eager = new Set<Promise<void>>();
  /** Outbox dispatches under way, not holding the slot of the job that committed them; awaited by close(). */
  private readonly dispatching = new Set<Promise<void>>();
  private eagerRunning = 0;
  /** This worker's id in the task hub's worker registry. */
  readonly id: string;
  private readonly heartbeatMs: { interval: number; expiry: number };
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeating: Promise<void> | undefined;
  private heartbeatLost = false;
  private startedAt = 0;
  /** Queue jobs being processed (eager activities are counted by `eagerRunning`). */
  private jobsRunning = 0;
  /** Sticky episodes: whether this worker takes wake-ups handed to it, its reading loop and the episodes it runs. */
  private readonly sticky: boolean;
  private stickyConnections: RedisClient[] = [];
  private stickyLoops: Promise<void>[] = [];
  private readonly stickyRunning = new Set<Promise<void>>();
  private stickyWaiters: (() => void)[] = [];
  /** The last entry of the sticky stream read. */
  /** The last entry read of each partition's sticky stream, by key. */
  private readonly stickyLast = new Map<string, string>();
  /** Process-wide bounds of the jobs of all partitions' BullMQ workers (with several partitions). */
  private orchestratorShare: SharedConcurrency | undefined;
  private activityShare: SharedConcurrency | undefined;
  private readonly stuckSweepers = new Map<RedisBackend, StuckSweeper>();

  /** The worker's Prometheus metrics (unless `metrics: false`). */
  readonly metrics: DurabullMetrics | undefined;
  /** Where the worker hears of episodes, activities, timers and repairs: metrics, spans, the charts' counters. */
  private readonly instr: WorkerInstrumentation;
  private readonly statsRecorder: HubStatsRecorder | undefined;
  private statsTimer: NodeJS.Timeout | undefined;
  private metricsServer: Server | undefined;
  private statsFlushing: Promise<void> | undefined;
  /** Activity attempts running here, by instance: what a terminate (the cancel channel) and shutdown abort. */
  private readonly attempts = new Map<string, Set<ActivityAttempt>>();
  /** Subscribed to the hub's cancel channel (a worker that runs activities). */
  private cancelSubscriber: RedisClient | undefined;
  private shutdownTimer: NodeJS.Timeout | undefined;

  /** Payloads the code hands out are checked at the call, where the code can catch the PayloadError. */
  private readonly sessionOptions: SessionOptions = { checkPayload: (value, what) => this.backend.checkPayload(value, what) };

  constructor(private readonly opts: DurabullWorkerOptions) {
    assertWorkerOptions(opts);
    this.heartbeatMs = heartbeatTimes(opts);
    this.id = `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64)}-${process.pid}-${randomBytes(4).toString('hex')}`;
    this.registry = opts.registry;
    const backendOpts: HubOptions = {};
    if (opts.partitions !== undefined) backendOpts.partitions = opts.partitions;
    if (opts.connection !== undefined) backendOpts.connection = opts.connection;
    if (opts.hub !== undefined) backendOpts.hub = opts.hub;
    if (opts.maxPayloadBytes !== undefined) backendOpts.maxPayloadBytes = opts.maxPayloadBytes;
    if (opts.claimCheckThresholdBytes !== undefined) backendOpts.claimCheckThresholdBytes = opts.claimCheckThresholdBytes;
    if (opts.cachedInstances !== undefined) backendOpts.historyCacheSize = opts.cachedInstances;
    if (opts.cachedHistoryEvents !== undefined) backendOpts.historyCacheEvents = opts.cachedHistoryEvents;
    this.log = opts.logger === false ? pino({ enabled: false }) : (opts.logger ?? pino({ name: 'durabull' }));
    // A lost Redis connection is logged once (warn) and once more when it is back (info).
    backendOpts.logger = this.log;
    backendOpts.component = 'worker';
    this.backend = new TaskHub(backendOpts);
    this.backend.workerId = this.id;
    this.sticky =
      opts.orchestrators !== false && opts.stickyEpisodes !== false && opts.extendedSessions !== false && (opts.cachedInstances ?? 1) > 0;
    const hub = this.backend.hub;
    this.metrics = opts.metrics === false ? undefined : opts.metrics instanceof DurabullMetrics ? opts.metrics : new DurabullMetrics();
    this.metrics?.watchHub(this.backend);
    if ((opts.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS) > 0) this.statsRecorder = new HubStatsRecorder(this.backend);
    const list: WorkerInstrumentation[] = [];
    if (this.metrics) list.push(this.metrics.instrument(hub, this.statsRecorder));
    else if (this.statsRecorder) list.push(new DurabullMetrics().instrument(hub, this.statsRecorder));
    if (opts.tracing !== false) list.push(new TracingInstrumentation(hub));
    if (opts.instrumentation) list.push(opts.instrumentation);
    this.instr = combineInstrumentations(list);
  }

  /** Where `metricsPort` serves the metrics, once started. */
  get metricsAddress(): AddressInfo | undefined {
    return this.metricsServer ? (this.metricsServer.address() as AddressInfo) : undefined;
  }

  /**
   * Writes the charts' counters counted so far to Redis now (they are written every
   * `statsIntervalMs` anyway), and measures the Redis round trip.
   */
  flushStats(): Promise<void> {
    // One at a time: while Redis is away, the timer does not queue a PING per interval.
    this.statsFlushing ??= (async () => {
      if (this.metrics) {
        const t = performance.now();
        await this.backend.redis.ping();
        this.metrics.redisRoundTrip.labels({ hub: this.backend.hub }).observe((performance.now() - t) / 1000);
      }
      await this.statsRecorder?.flush();
    })().finally(() => (this.statsFlushing = undefined));
    return this.statsFlushing;
  }

  /** Starts consuming. Resolves once the workers are connected. */
  async start(): Promise<this> {
    // A wrong password fails here, at once, with RedisAuthError (BullMQ's workers would retry forever).
    await this.backend.ping();
    // The partition map: a worker configured with another count than the hub's stops here.
    const parts = await this.backend.open();
    await this.backend.store();
    // Registered before taking jobs: from here on, starts of this worker's orchestrators are accepted.
    this.startedAt = Date.now();
    await this.heartbeatAll();
    this.heartbeatTimer = setInterval(() => this.heartbeat(), this.heartbeatMs.interval);
    this.heartbeatTimer.unref();
    const common = {
      connection: this.backend.queueConnection,
      lockDuration: this.opts.lockDurationMs ?? 30_000,
      stalledInterval: this.opts.stalledIntervalMs ?? 30_000,
      maxStalledCount: this.opts.maxStalledCount ?? 10,
      autorun: true,
    };
    // Every partition has its own queues, each its own BullMQ worker; with several partitions they
    // share the process's concurrency (shared-concurrency.ts): a fan-out in one partition gets all
    // of it, and the process does not hold jobs it cannot run.
    const orchestratorConcurrency = this.opts.orchestratorConcurrency ?? 20;
    const activityConcurrency = this.opts.activityConcurrency ?? 20;
    if (parts.length > 1) {
      this.orchestratorShare = new SharedConcurrency(orchestratorConcurrency);
      this.activityShare = new SharedConcurrency(activityConcurrency);
    }
    for (const part of parts) {
      const opts = { ...common, prefix: part.keys.queuePrefix };
      if (this.opts.orchestrators !== false) {
        const share = this.orchestratorShare;
        let slot = -1;
        const run = (job: Job, token?: string) => this.processOrchestratorJob(job, token, w.canFinishWithDelivery ? { worker: w, part } : undefined);
        const w: QueueWorker = new QueueWorker(ORCHESTRATOR_QUEUE, (job, token) => this.counted(share ? share.run(slot, () => run(job, token)) : run(job, token)), {
          ...opts,
          concurrency: orchestratorConcurrency,
        });
        if (share) slot = share.add(w);
        w.on('error', (err) => part.onBullMQError(err, 'orchestrator worker'));
        w.on('failed', (job, err) => void this.onOrchestratorJobFailed(job, err));
        this.orchestratorWorkers.push(w);
      }
      if (this.opts.activities !== false) {
        const share = this.activityShare;
        let slot = -1;
        const run = (job: Job, waited = false) => this.processActivityJob(job, waited, w.canFinishWithDelivery ? part : undefined);
        const w: QueueWorker = new QueueWorker(ACTIVITY_QUEUE, (job) => this.counted(share ? share.run(slot, (waited) => run(job, waited)) : run(job)), {
          ...opts,
          concurrency: activityConcurrency,
        });
        if (share) slot = share.add(w);
        w.on('error', (err) => part.onBullMQError(err, 'activity worker'));
        w.on('failed', (job, err) => void this.onActivityJobFailed(job, err));
        this.activityWorkers.push(w);
      }
    }
    this.orchestratorWorker = this.orchestratorWorkers[0];
    this.activityWorker = this.activityWorkers[0];
    await Promise.all([...this.orchestratorWorkers, ...this.activityWorkers].map((w) => w.waitUntilReady()).concat(this.activityWorker ? [this.subscribeCancels()] : []));
    // Results delivered with their job's completion, in one script, where BullMQ allows it.
    if (this.opts.orchestrators === false) await Promise.all(this.activityWorkers.map((w) => w.enableFinish()));
    // An episode committed and its job completed in one script, where BullMQ allows it: in processes
    // that run no activities (elsewhere the episode's slot runs the activity it schedules, after the commit).
    if (this.opts.activities === false) await Promise.all(this.orchestratorWorkers.map((w) => w.enableFinish()));
    // BullMQ's scripts, defined on the queue connection by now, written as ours are (script-command.ts).
    useFastEncodingForAll(this.backend.queueConnection);
    if (this.sticky) this.startStickyLoops();
    if (this.runsEntities) {
      this.entityWorker = new EntityWorker(
        parts,
        this.registry,
        this.log,
        {
          concurrency: this.opts.entityConcurrency ?? 20,
          batchSize: this.opts.entityBatchSize ?? 1000,
          windowMs: this.opts.entityBatchWindowMs ?? 10,
          leaseMs: this.opts.entityLeaseMs ?? 30_000,
          lockCheckMs: 5000,
        },
        this.stats,
      );
      this.entityWorker.start();
    }
    const every = this.opts.sweepIntervalMs ?? 5000;
    if (every > 0) {
      this.sweepTimer = setInterval(() => void this.sweep(), every);
      this.sweepTimer.unref();
    }
    const statsEvery = this.opts.statsIntervalMs ?? DEFAULT_STATS_INTERVAL_MS;
    if (statsEvery > 0) {
      this.statsTimer = setInterval(() => void this.flushStats().catch((err: unknown) => this.log.debug({ err }, 'Writing the charts\' counters failed; retrying at the next interval')), statsEvery);
      this.statsTimer.unref();
    }
    if (this.metrics && this.opts.metricsPort !== undefined) this.metricsServer = await this.metrics.listen(this.opts.metricsPort, this.opts.metricsHost);
    await this.instr.start?.();
    return this;
  }

  /**
   * Reads the wake-ups handed to this worker (its sticky stream in each partition: `deliverEvent`
   * writes one when it wakes an instance whose session this worker keeps) and runs their
   * episodes, at most `orchestratorConcurrency` at a time, on a connection of its own (XREAD
   * blocks): one XREAD over every partition's stream on one Redis, one per partition on a cluster
   * (a command's keys must share a slot there). The streams are new with every worker (its id
   * is), so they are read from their start.
   */
  private startStickyLoops(): void {
    const parts = this.backend.partitions;
    const groups: RedisBackend[][] = isCluster(this.backend.redis) ? parts.map((p) => [p]) : [[...parts]];
    for (const group of groups) {
      const conn = duplicateClient(this.backend.redis);
      this.backend.connections.watch(conn);
      this.stickyConnections.push(conn);
      const keys = group.map((p) => p.keys.sticky(this.id));
      this.stickyLoops.push(this.stickyLoop(conn, keys));
    }
  }

  private async stickyLoop(conn: RedisClient, keys: string[]): Promise<void> {
    const limit = this.opts.orchestratorConcurrency ?? 20;
    while (!this.closing) {
      let res: [Buffer, [Buffer, Buffer[]][]][] | null;
      try {
        res = (await conn.xreadBuffer('COUNT', 100, 'BLOCK', 1000, 'STREAMS', ...keys, ...keys.map((k) => this.stickyLast.get(k) ?? '0-0'))) as typeof res;
      } catch {
        if (this.closing) break;
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      for (const [key, entries] of res ?? []) {
        const k = key.toString('latin1');
        for (const [entryId, fields] of entries) {
          this.stickyLast.set(k, entryId.toString('latin1'));
          const wake = parseStickyEntry(fields);
          if (!wake) continue;
          while (this.stickyRunning.size >= limit) await new Promise<void>((r) => this.stickyWaiters.push(r));
          const p: Promise<void> = this.runStickyEpisode(wake.jobId, wake.data).finally(() => {
            this.stickyRunning.delete(p);
            this.stickyWaiters.shift()?.();
          });
          this.stickyRunning.add(p);
        }
      }
    }
  }

  /** Stops reading the sticky streams and waits for the episodes they started. */
  private async stopStickyLoop(): Promise<void> {
    for (const c of this.stickyConnections) c.disconnect();
    await Promise.all(this.stickyLoops);
    while (this.stickyRunning.size > 0) await Promise.all([...this.stickyRunning]);
  }

  /** At close: queues the wake-ups still unread in the sticky streams, then deletes them. */
  private async requeueStickyLeftovers(): Promise<void> {
    await Promise.all(
      this.backend.partitions.map(async (part) => {
        const key = part.keys.sticky(this.id);
        const rest = (await part.redis.xrangeBuffer(key, `(${this.stickyLast.get(key) ?? '0-0'}`, '+')) as unknown as [Buffer, Buffer[]][];
        const wakes = rest.map(([, fields]) => parseStickyEntry(fields)).filter((w): w is StickyWake => w !== undefined);
        if (wakes.length > 0) await part.dispatch(wakes.map((w) => [w.jobId, w.payload]), { awaitCleanup: true });
        await part.redis.del(key);
      }),
    );
  }

  /**
   * One handed-over episode, from the cached session when this worker still keeps it. Its commit
   * removes the wake's outbox entry; a stale wake (another worker committed) is acked, which the
   * script checks; a failure leaves the entry to the sweep, which queues it on the orchestrator queue.
   */
  private async runStickyEpisode(jobId: string, data: EpisodeJobData): Promise<void> {
    try {
      if (await this.runEpisode(data, undefined, undefined, jobId)) this.stats.stickyEpisodes++;
      else await this.backend.forInstance(data.i).ackOutbox([jobId]);
    } catch (err) {
      this.log.warn({ err, instanceId: data.i }, 'Sticky episode failed; the sweep will queue it');
    }
  }

  /** Counts a queue job as running until it settles (the registry entry's `jobsRunning`). */
  private counted<T>(job: Promise<T>): Promise<T> {
    this.jobsRunning++;
    return job.finally(() => this.jobsRunning--);
  }

  /** This worker's entry in the task hub's worker registry, as of now. */
  private registryEntry(): WorkerEntry {
    const kinds: WorkerKind[] = [];
    if (this.opts.orchestrators !== false) kinds.push('orchestrator');
    if (this.opts.activities !== false) kinds.push('activity');
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      version: PACKAGE_VERSION,
      kinds,
      orchestratorNames: this.opts.orchestrators !== false ? this.registry.orchestratorNames() : [],
      activityNames: this.opts.activities !== false ? this.registry.activityNames() : [],
      ...(this.sticky ? { sticky: true } : {}),
      ...this.entityEntry(),
      startedAt: this.startedAt,
      heartbeatIntervalMs: this.heartbeatMs.interval,
      heartbeatExpiryMs: this.heartbeatMs.expiry,
      jobsRunning: this.jobsRunning + this.eagerRunning,
      episodesDone: this.stats.episodes,
      activitiesDone: this.stats.activities,
    };
  }

  /** Whether this worker runs entities: the registry has some and `entities` is not false. */
  private get runsEntities(): boolean {
    return this.opts.entities !== false && typeof this.registry.entityNames === 'function' && this.registry.entityNames().length > 0;
  }

  /** The entities this worker runs, for its registry entry (clients check signals against them). */
  private entityEntry(): { entityNames?: string[]; entityOperations?: Record<string, string[]> } {
    if (!this.runsEntities) return {};
    const names = this.registry.entityNames();
    const ops: Record<string, string[]> = {};
    for (const n of names) {
      const o = this.registry.entityOperations(n);
      if (o) ops[n] = [...o];
    }
    return { entityNames: names, entityOperations: ops };
  }

  /** Renews the registry entry (one at a time); a failure is logged once, and its end once. */
  private heartbeat(): void {
    if (this.heartbeating) return;
    this.heartbeating = this.heartbeatAll()
      .then(
        () => {
          if (this.heartbeatLost) this.log.info('Worker registry heartbeat works again');
          this.heartbeatLost = false;
        },
        (err: unknown) => {
          if (!this.heartbeatLost) this.log.warn({ err, workerId: this.id }, 'Worker registry heartbeat failed; retrying at the next interval');
          this.heartbeatLost = true;
        },
      )
      .finally(() => (this.heartbeating = undefined));
  }

  /**
   * Writes this worker's registry entry in every partition (the deliveries of each read its own
   * partition's: the sticky hand-off), in parallel; one script per partition.
   */
  private async heartbeatAll(): Promise<void> {
    const entry = this.registryEntry();
    await Promise.all(this.backend.partitions.map((p) => p.partitionRegistry.heartbeat(entry)));
  }

  /** Dispatches outbox entries that a crashed worker left behind, in every partition (one after another). */
  async sweep(): Promise<number> {
    let total = 0;
    for (const part of this.backend.partitions) {
      try {
        const n = await part.sweepOutbox(this.opts.sweepIntervalMs ?? 5000);
        total += n;
        this.stats.swept += n;
        this.instr.repaired('outbox', n);
        if (n > 0) this.log.warn({ entries: n, partition: part.partition }, 'Recovered undispatched outbox entries');
        await this.sweepStuckInstances(part);
        await this.sweepExpiredAttempts(part);
      } catch (err) {
        this.log.error({ err, partition: part.partition }, 'Outbox sweep failed');
      }
    }
    if (this.orchestratorWorker) await this.reconcileSchedules();
    return total;
  }

  /**
   * Graceful shutdown: stops taking jobs, lets running ones finish (their results are committed),
   * then closes connections. A job cut off by a hard kill is handed to another worker by BullMQ's
   * stalled-job check.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.sweepTimer) clearInterval(this.sweepTimer);
      // Past the grace period, running activities are aborted and their jobs handed back.
      const grace = this.opts.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
      this.shutdownTimer = setTimeout(() => this.cancelAttempts(undefined, 'worker-shutdown'), grace);
      this.shutdownTimer.unref();
      await Promise.all([...this.orchestratorWorkers, ...this.activityWorkers].map((w) => w.close()).concat(this.entityWorker ? [this.entityWorker.close()] : []));
      await this.stopStickyLoop();
      while (this.eager.size > 0 || this.dispatching.size > 0) await Promise.all([...this.eager, ...this.dispatching]);
      clearTimeout(this.shutdownTimer);
      if (this.cancelSubscriber) await closeConnection(this.cancelSubscriber);
      if (this.statsTimer) clearInterval(this.statsTimer);
      // The last counts: skipped while Redis is away, and given up after a second (they would wait for it).
      if (this.startedAt && this.backend.redis.status === 'ready') {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([this.flushStats().catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000)))]);
        clearTimeout(timer);
      }
      await this.instr.close?.();
      this.metrics?.unwatchHub(this.backend);
      if (this.metricsServer) await new Promise((resolve) => this.metricsServer!.close(resolve));
      await this.leaveRegistry();
      // Wake-ups handed to this worker that it did not take go to the orchestrator queue now
      // (registered no more, it is handed nothing new).
      if (this.sticky) await this.requeueStickyLeftovers().catch((err: unknown) => this.log.warn({ err }, 'Could not queue the wake-ups left in the sticky stream; the sweep will'));
      await this.backend.close();
    })();
    return this.closing;
  }

  /**
   * Terminate reaches the activities it cancels through the hub's cancel channel (pub/sub): the
   * terminating client cannot know which process runs them, and a message costs nothing while no
   * instance is terminated. A message lost while this connection was down is made up for by the
   * attempt's next heartbeat, whose reply says the instance was terminated.
   */
  private async subscribeCancels(): Promise<void> {
    const sub = duplicateClient(this.backend.redis);
    this.backend.connections.watch(sub);
    this.cancelSubscriber = sub;
    sub.on('message', (_channel: string, instanceId: string) => {
      this.noteTerminated(instanceId);
      this.cancelAttempts(instanceId, 'terminated');
    });
    await sub.subscribe(...this.backend.partitions.map((p) => p.keys.cancelChannel));
  }

  /**
   * Instances the cancel channel named in the last ten minutes (at most 10,000): an activity job
   * that waited in this process for a slot reads its task before it runs only when its instance is
   * one of them (a terminate while it waited), so that the wait costs no read otherwise.
   */
  private readonly terminatedLately = new Map<string, number>();

  private noteTerminated(instanceId: string): void {
    const now = Date.now();
    this.terminatedLately.delete(instanceId);
    this.terminatedLately.set(instanceId, now);
    for (const [id, at] of this.terminatedLately) {
      if (at > now - 600_000 && this.terminatedLately.size <= 10_000) break;
      this.terminatedLately.delete(id);
    }
  }

  /** Cancels the running attempts of one instance, or all of them (`instanceId` undefined). */
  private cancelAttempts(instanceId: string | undefined, reason: 'terminated' | 'worker-shutdown'): void {
    const sets = instanceId === undefined ? [...this.attempts.values()] : [this.attempts.get(instanceId)];
    for (const set of sets) for (const a of [...(set ?? [])]) a.cancel(reason);
  }

  /**
   * Removes this worker's registry entry (it heartbeats while its running jobs finish), once a
   * heartbeat under way has landed. Skipped while Redis is unreachable, and given up after a
   * second: the entry then expires on its own.
   */
  private async leaveRegistry(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
    if (!this.startedAt || this.backend.redis.status !== 'ready') return;
    const inFlight = this.heartbeating;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        await inFlight;
        await Promise.all(this.backend.partitions.map((p) => p.partitionRegistry.remove(this.id)));
      })().catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, 1000))),
    ]);
    clearTimeout(timer);
  }

  /** Closes the worker on SIGTERM and SIGINT. */
  closeOnSignals(signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): this {
    const handler = (sig: NodeJS.Signals) => {
      this.log.info({ signal: sig }, 'Shutting down: finishing running jobs');
      void this.close().then(
        () => process.exit(0),
        (err) => {
          this.log.error({ err }, 'Shutdown failed');
          process.exit(1);
        },
      );
    };
    for (const s of signals) process.once(s, handler);
    return this;
  }

  // ---- orchestrator side ----

  /**
   * One job of the orchestrator queue. `finishIn`: the job's worker and partition, when the episode's
   * commit may complete the job (queue-worker.ts); the processor then returns {@link FinishedInScript}.
   */
  private async processOrchestratorJob(job: Job, token?: string, finishIn?: { worker: QueueWorker; part: RedisBackend }): Promise<void | FinishedInScript> {
    // A schedule's tick, and a buffered tick's check (schedules.ts).
    if (job.name === SCHEDULE_JOB) return this.backend.schedules.onTickJob(job);
    if (job.name === SCHEDULE_BUFFER_JOB) return this.backend.schedules.onBufferJob(job, token);
    if (job.name === 'timer') {
      const bad = timerJobProblem(job.data);
      if (bad) this.deadLetter(job, ORCHESTRATOR_QUEUE, bad);
      const d = job.data as TimerJobData;
      this.instr.timerFired({ hub: this.backend.hub, instanceId: d.i, executionId: d.x, taskId: d.s, fireAt: d.f, createdAt: job.timestamp, trace: d.t });
      const fired: HistoryEvent = { type: 'TimerFired', timerId: d.s, fireAt: d.f, timestamp: Date.now() };
      await this.backend.deliverEvent(d.i, d.x, 'c', d.s, fired).catch(ignoreGone);
      return;
    }
    const bad = episodeJobProblem(job.data);
    // A wake carries no work of its own (the instance's inbox and state do), so a malformed one is
    // only dead-lettered: the instance's real wake, or the stuck sweep, runs it.
    if (bad) this.deadLetter(job, ORCHESTRATOR_QUEUE, bad);
    const data = job.data as EpisodeJobData;
    // Same slot on a cluster: only a job of the instance's own partition.
    const finish = finishIn && token && finishIn.part === this.backend.forInstance(data.i) ? episodeJobFinish(finishIn.worker, job, token) : undefined;
    try {
      await this.runEpisode(data, undefined, undefined, undefined, finish);
    } catch (err) {
      if (!finish?.done) return this.episodeAttemptFailed(job, data, err);
      // The commit completed the job: what failed came after it (the outbox keeps what was not dispatched).
      this.log.error({ err, instanceId: data.i, jobId: job.id }, 'Episode committed, then failed');
    }
    if (finish?.done) {
      this.stats.committedOnFinish++;
      return new FinishedInScript(finish.reply, finish.finishedOn);
    }
  }

  /**
   * An episode job's attempt threw: BullMQ retries it (the error is thrown again) until the attempts
   * run out; then the instance fails and the job is dead-lettered (UnrecoverableError).
   */
  private async episodeAttemptFailed(job: Job, data: EpisodeJobData, err: unknown): Promise<never> {
    const attempt = job.attemptsMade + 1;
    const limit = Math.min(this.opts.maxEpisodeAttempts ?? DEFAULT_MAX_EPISODE_ATTEMPTS, job.opts.attempts ?? 1);
    // A payload stored apart that is gone does not come back: no point in retrying (a stale job,
    // whose instance moved on meanwhile, fails nothing: failExecution checks the version).
    if (attempt < limit && !(err instanceof PayloadMissingError)) throw err;
    // A poison episode: it threw on every attempt (a history that cannot be decoded, a bug in
    // the executor...). End the instance as Failed instead of leaving it Running forever.
    const reason = errorText(err);
    const poison = new PoisonJobError('episode', attempt, reason, `episode failed ${attempt} times: ${reason}`);
    const failed = await this.backend.failExecution(data.i, data.x, toFailureDetails(poison), { version: data.v }).catch((e: unknown) => {
      this.log.error({ err: e, instanceId: data.i }, 'Could not fail the instance of a poison episode');
      return false;
    });
    this.log.error({ instanceId: data.i, executionId: data.x, jobId: job.id, attempts: attempt, err }, `Poison episode dead-lettered${failed ? '; instance failed' : ''}`);
    throw new UnrecoverableError(poison.message);
  }

  /** Logs a malformed job and throws BullMQ's UnrecoverableError: the job goes to the failed set, never retried. */
  private deadLetter(job: Job, queue: string, reason: string): never {
    const err = new MalformedJobError(queue, job.id, reason);
    this.log.error({ jobId: job.id, jobName: job.name, queue, reason }, 'Malformed job dead-lettered');
    throw new UnrecoverableError(err.message);
  }

  /**
   * A job BullMQ failed for good. A job found stalled too often never reaches the processor (BullMQ
   * fails it when it is next taken), so this is where an episode whose worker keeps dying fails
   * its instance.
   */
  private async onOrchestratorJobFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job || job.name === 'timer' || err.message !== STALLED_REASON || episodeJobProblem(job.data)) return;
    const d = job.data as EpisodeJobData;
    const n = job.stalledCounter ?? 0;
    const poison = new PoisonJobError('episode', n, 'worker crashed', `episode worker crashed ${n} times (job '${job.id}' stalled more than maxStalledCount)`);
    try {
      const failed = await this.backend.failExecution(d.i, d.x, toFailureDetails(poison), { version: d.v });
      this.log.error({ instanceId: d.i, executionId: d.x, jobId: job.id, stalled: n }, `Episode job stalled too often${failed ? '; instance failed' : ''}`);
    } catch (e) {
      this.log.error({ err: e, instanceId: d.i }, 'Could not fail the instance of a stalled episode');
    }
  }

  /** An activity job BullMQ failed for good because its worker kept dying: the task fails, so the orchestrator sees a TaskFailedError. */
  private async onActivityJobFailed(job: Job | undefined, err: Error): Promise<void> {
    if (!job || err.message !== STALLED_REASON || activityJobProblem(job.data)) return;
    const d = job.data as ActivityJobData;
    const n = job.stalledCounter ?? 0;
    const poison = new PoisonJobError('activity', n, 'worker crashed', `activity worker crashed ${n} times running '${d.n}' (job '${job.id}' stalled more than maxStalledCount)`);
    await this.failTask(d, poison);
  }

  /** Delivers TaskFailed with `err` for the task an activity job names. */
  private async failTask(d: Pick<ActivityJobData, 'i' | 'x' | 's'> & { n?: unknown }, err: Error): Promise<void> {
    const name = typeof d.n === 'string' ? d.n : undefined;
    const event: HistoryEvent = { type: 'TaskFailed', taskScheduledId: d.s, failure: toFailureDetails(err, name), timestamp: Date.now() };
    try {
      const res = await this.backend.deliverEvent(d.i, d.x, 'f', d.s, event, { dispatch: false }).catch(ignoreGone);
      if (res?.status === 'delivered') {
        this.log.warn({ instanceId: d.i, executionId: d.x, taskId: d.s, failure: event.failure }, M.taskFailed(name ?? '?'));
        if (res.wake) await this.backend.forInstance(d.i).dispatch([res.wake]);
      }
    } catch (e) {
      this.log.error({ err: e, instanceId: d.i, taskId: d.s }, 'Could not fail the task of a dead-lettered activity job');
    }
  }

  /**
   * One episode: load (one round trip), replay, commit (one script), dispatch new work. With
   * `direct`, the episode consumes a result this worker holds (not yet in Redis) and runs from the
   * cached history in `preloaded`; it returns false when the commit was refused (the instance moved
   * on), having written nothing.
   */
  async runEpisode(data: EpisodeJobData, preloaded?: LoadedEpisode, direct?: DirectResult, handedWake?: string, finish?: EpisodeJobFinish): Promise<boolean> {
    const startedAt = performance.now();
    const { i: instanceId, x: executionId, v: version } = data;
    const cached = preloaded ? undefined : (this.backend.forInstance(data.i).firstEpisodeFrom(data) ?? this.backend.forInstance(data.i).wakeEpisodeFrom(data));
    if (!preloaded && !cached) this.stats.loads++;
    const loaded = preloaded ?? cached ?? (await this.backend.forInstance(instanceId).loadEpisode(instanceId));
    if (!loaded) return false;
    const st = loaded.state;
    if (st.executionId !== executionId || st.version !== version || isTerminalStatus(st.runtimeStatus)) {
      this.stats.staleEpisodes++;
      return false;
    }
    // A session kept from this worker's last commit goes on from there; otherwise the code replays.
    const kept = loaded.session;
    const last = kept ? kept.time : (loaded.history.findLast((e) => e.type === 'OrchestratorStarted')?.timestamp ?? 0);
    const now = Math.max(Date.now(), last);
    const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: now }];
    const newEvents = [...prefix, ...(direct ? [direct.event] : []), ...loaded.inbox.map((m) => m.event)];
    const session = kept ?? new OrchestrationSession(this.registry, this.sessionOptions);
    const obs = this.instr.episode({
      hub: this.backend.hub,
      instanceId,
      executionId,
      orchestrator: st.name,
      episode: st.episodes + 1,
      mode: kept ? 'resumed' : loaded.history.length === 0 ? 'started' : 'replayed',
      startedAt,
      state: st,
      loaded,
      session,
      prefix,
    });
    try {
      return await this.runLoadedEpisode(data, loaded, direct, session, kept, prefix, newEvents, now, obs, handedWake, finish);
    } catch (err) {
      obs.dropped('error', err);
      throw err;
    }
  }

  /** The rest of an episode, once its input is loaded: run the code, commit, dispatch. */
  private async runLoadedEpisode(
    data: EpisodeJobData,
    loaded: LoadedEpisode,
    direct: DirectResult | undefined,
    session: OrchestrationSession,
    kept: OrchestrationSession | undefined,
    prefix: HistoryEvent[],
    newEvents: HistoryEvent[],
    now: number,
    obs: EpisodeObserver,
    handedWake: string | undefined,
    finish: EpisodeJobFinish | undefined,
  ): Promise<boolean> {
    const { i: instanceId, x: executionId, v: version } = data;
    const st = loaded.state;
    const pastLength = kept ? kept.historyLength : loaded.history.length;
    let result = kept ? await session.resume(newEvents) : await session.run(loaded.history, newEvents);
    const maxEvents = this.opts.maxHistoryEvents ?? DEFAULT_MAX_HISTORY_EVENTS;
    if (maxEvents > 0 && (result.status === 'Running' || result.status === 'Completed')) {
      // What the commit would append: the new events, the action events and OrchestratorCompleted.
      const total = pastLength + newEvents.length + result.actionEvents.length + 1;
      if (total > maxEvents) result = failedResult(result, new HistoryLimitError(instanceId, total, maxEvents), now);
    }
    const episode = st.episodes + 1;
    // A child logger per episode only when something will be logged (it is not free on the hot path).
    const log = this.log.isLevelEnabled('debug') || this.log.isLevelEnabled('info') ? this.log.child({ instanceId, executionId, episode }) : this.log;
    // The one activity a chain step schedules is written leased when this worker will run it.
    const eager = this.eagerCandidate(result);
    const opts: CommitOptions = {};
    if (obs.trace) opts.trace = obs.trace;
    if (this.opts.extendedSessions !== false) opts.session = session;
    if (direct) {
      opts.direct = { seq: direct.seq, encoded: direct.encoded, event: direct.event };
      if (direct.ackJobId) opts.ackJobId = direct.ackJobId;
    }
    if (eager !== undefined) opts.lease = { jobId: activityJobId(instanceId, executionId, eager), until: now + this.eagerLeaseMs };
    // A wake-up handed to this worker: its outbox entry goes with the commit.
    if (handedWake && !opts.ackJobId) opts.ackJobId = handedWake;
    // Wake-ups of the next episode come here, where the session is kept.
    if (this.sticky) opts.stickyWorker = this.id;
    if (finish) opts.finish = finish;
    let commit;
    try {
      commit = await this.backend.forInstance(loaded.state.instanceId).commitEpisode(loaded, prefix, result, now, opts);
    } catch (err) {
      if (err instanceof StaleEpisodeError) {
        obs.dropped('stale');
        if (direct) return false;
        this.stats.staleEpisodes++;
        log.debug('Episode dropped: another worker committed first');
        return false;
      }
      if (!(err instanceof PayloadError)) throw err;
      // The code produced something that cannot be stored (an output, an activity input...):
      // retrying cannot help, so the instance fails with that error instead of looping.
      result = failedResult(result, err, now);
      delete opts.lease;
      commit = await this.backend.forInstance(loaded.state.instanceId).commitEpisode(loaded, prefix, result, now, opts);
    }
    if (commit.refused) {
      obs.dropped('refused');
      if (!loaded.fromCache || direct) return false;
      // The cache was behind (another worker's commit, an event raised meanwhile): load and run again.
      this.stats.cachedRefused++;
      this.backend.forInstance(instanceId).forgetCommitted(instanceId);
      return this.runEpisode({ i: instanceId, x: executionId, v: version }, undefined, undefined, handedWake, finish);
    }
    obs.committed(result);
    this.stats.episodes++;
    if (loaded.fromCache) this.stats.cachedEpisodes++;
    if (kept) this.stats.resumedEpisodes++;
    else if (loaded.history.length > 0) {
      this.stats.replayedEpisodes++;
      this.stats.replayedEvents += loaded.history.length;
    }
    direct?.onCommitted?.();
    this.logEpisode(log, loaded.inbox.length, result);
    const eagerEntry = opts.lease && commit.outbox.find(([id]) => id === opts.lease!.jobId);
    if (direct && eagerEntry && !this.closing) {
      // Run from an activity slot: the next step goes on in the same slot.
      await this.backend.forInstance(instanceId).dispatch(commit.outbox.filter((e) => e !== eagerEntry));
      this.stats.eagerActivities++;
      direct.next = eagerEntry;
      return true;
    }
    await this.dispatchOrRunEager(this.backend.forInstance(instanceId), commit.outbox, opts.lease?.jobId);
    return true;
  }

  /** The task id of the one activity this episode schedules, when this worker may run it itself. */
  private eagerCandidate(result: ExecutionResult): number | undefined {
    if (!this.activityWorker || this.closing || this.opts.eagerActivities === false) return undefined;
    let id: number | undefined;
    for (const a of result.actions) {
      if (a.type !== 'ScheduleTask') continue;
      if (id !== undefined) return undefined;
      id = a.id;
    }
    return id;
  }

  private get eagerLeaseMs(): number {
    return this.opts.eagerLeaseMs ?? EAGER_LEASE_MS;
  }

  private logEpisode(log: Logger, _inbox: number, result: ExecutionResult): void {
    if (!log.isLevelEnabled('info')) return;
    if (result.started) {
      log.info({ orchestrator: result.name }, M.triggered);
      log.info({ orchestrator: result.name }, M.executionStarted);
    } else {
      log.info({ orchestrator: result.name }, M.started);
    }
    let scheduled = 0;
    for (const a of result.actions) {
      if (a.type === 'ScheduleTask') {
        // A fan-out of thousands logs a summary rather than a line per task.
        if (scheduled++ < 20) log.info({ taskId: a.id }, M.taskScheduled(a.name));
      } else if (a.type === 'CreateTimer') log.info({ taskId: a.id, fireAt: new Date(a.fireAt).toISOString() }, M.timerCreated);
      else if (a.type === 'CreateSubOrchestration') log.info({ taskId: a.id, childInstanceId: a.instanceId }, M.subOrchestrationScheduled(a.name));
    }
    if (scheduled > 20) log.info({ more: scheduled - 20 }, `... and ${scheduled - 20} more activity tasks scheduled`);
    if (result.status === 'Running') log.info(M.awaiting);
    else if (result.status === 'Completed') log.info({ output: result.output }, M.executionCompleted);
    else if (result.status === 'Failed') log.warn({ failure: result.failure }, M.executionFailed);
    else if (result.status === 'ContinuedAsNew') log.info({ input: result.output }, M.continuedAsNew);
    else log.info({ reason: result.output }, M.executionTerminated);
  }

  // ---- activity side ----

  /**
   * `waited`: the job waited in this process for a slot (shared-concurrency.ts). `finishIn`: the
   * partition whose queue the job came from, when its BullMQ worker can complete the job and
   * deliver the result in one script (queue-worker.ts): then the result is returned for that.
   */
  private async processActivityJob(job: Job, waited = false, finishIn?: RedisBackend): Promise<void | DeliverOnFinish> {
    const bad = activityJobProblem(job.data);
    if (bad) {
      // When it still names a task of a real instance, that task fails (the code sees a
      // TaskFailedError) rather than waiting for a result that will never come.
      const d = job.data as Partial<ActivityJobData> | null;
      if (d && isInstanceId(d.i) && typeof d.x === 'string' && d.x.length > 0 && isSeq(d.s)) {
        await this.failTask({ i: d.i, x: d.x, s: d.s, n: d.n }, new MalformedJobError(ACTIVITY_QUEUE, job.id, bad));
      }
      this.deadLetter(job, ACTIVITY_QUEUE, bad);
    }
    // A job delivered again (its worker died, or shut down mid-attempt), or one that waited here for
    // a slot while its instance was terminated, first checks that its task still waits.
    const terminated = waited && this.terminatedLately.has((job.data as Partial<ActivityJobData> | null)?.i ?? '');
    const redelivered = terminated || job.attemptsMade > 0 || (job.stalledCounter ?? 0) > 0;
    const { next, deliver } = await this.executeActivity(job.data as ActivityJobData, job.attemptsMade + 1 + (job.stalledCounter ?? 0), undefined, redelivered, job.timestamp, finishIn);
    if (deliver) return deliver;
    // The chain's next step runs in this job's slot (BullMQ keeps renewing its lock meanwhile).
    if (next) await this.runEagerChain(next);
  }

  /**
   * Runs one activity and delivers its result (or failure) to the instance, then wakes it if
   * needed. `ackJobId`: the outbox entry of an eagerly run activity; `acked` says the result's
   * commit removed it already. `next`: the activity the result's episode scheduled, for this slot.
   * `finishIn`: the partition of the job's queue, when the result may go with the job's completion
   * (`deliver`, returned instead of delivering here; see processActivityJob).
   */
  private async executeActivity(
    d: ActivityJobData,
    attempt: number,
    ackJobId?: string,
    redelivered = false,
    scheduledAt?: number,
    finishIn?: RedisBackend,
  ): Promise<{ acked: boolean; next?: OutboxEntry; deliver?: DeliverOnFinish }> {
    let event: HistoryEvent;
    let kind: 'c' | 'f';
    let encoded: StoredEvent;
    let run: ActivityAttempt | undefined;
    const obs = this.instr.activity({ hub: this.backend.hub, instanceId: d.i, executionId: d.x, taskId: d.s, activity: d.n, attempt, scheduledAt, eager: ackJobId !== undefined, trace: d.t });
    try {
      const fn = this.registry.getActivity(d.n);
      // A large input was stored apart (claim check): the job holds a reference, read back here.
      const input = await this.backend.resolvePayload(d.i, decode(Buffer.from(d.p, 'base64')));
      run = await this.newAttempt(d, attempt, redelivered);
      if (!run) return { acked: false };
      const attemptRun = run;
      const end = await obs.run(() => attemptRun.run(fn, input));
      if (end.kind === 'cancelled') {
        obs.done('failed', end.error);
        // Shutdown: the job goes back to the queue (its next attempt runs elsewhere). Terminated, or
        // the task done: nothing to deliver.
        if (end.error.reason === 'worker-shutdown') throw new AttemptInterrupted(end.error.message);
        this.stats.activities++;
        this.log.info({ instanceId: d.i, executionId: d.x, taskId: d.s, reason: end.error.reason }, `Activity function ${d.n} attempt cancelled`);
        return { acked: false };
      }
      if (end.kind !== 'settled') throw end.error;
      event = { type: 'TaskCompleted', taskScheduledId: d.s, result: end.value, timestamp: Date.now() };
      encoded = this.backend.encodeForStorage(event, `Result of activity '${d.n}'`);
      kind = 'c';
      obs.done('completed');
    } catch (err) {
      if (err instanceof AttemptInterrupted) throw err;
      // Once: a result that could not be stored fails the task after the function completed.
      if (kind! !== 'c') obs.done('failed', err);
      event = { type: 'TaskFailed', taskScheduledId: d.s, failure: toFailureDetails(err, d.n), timestamp: Date.now() };
      encoded = { bytes: encodeEvent(event), claims: [] };
      kind = 'f';
    } finally {
      if (run) this.endAttempt(run, kind! === 'c');
    }
    this.stats.activities++;
    const logResult = () => {
      if (!this.log.isLevelEnabled(kind === 'c' ? 'info' : 'warn')) return;
      const log = this.log.child({ instanceId: d.i, executionId: d.x, taskId: d.s });
      if (kind === 'c') log.info(M.taskCompleted(d.n));
      else log.warn({ failure: (event as { failure?: unknown }).failure }, M.taskFailed(d.n));
    };
    const direct = await this.runDirect(d, encoded, logResult, ackJobId);
    if (direct) return { acked: true, ...direct };
    // A process that runs no episode here: the result goes with the job's completion, when the
    // job's queue is the instance's partition's (the composite's keys share its slot).
    if (finishIn && !this.canRunInline() && finishIn === this.backend.forInstance(d.i)) {
      return { acked: false, deliver: this.deliverOnFinish(finishIn, d, kind, event, encoded, logResult) };
    }
    const res = await this.backend
      .deliverEvent(d.i, d.x, kind, d.s, event, { dispatch: false, load: this.canRunInline(), encoded })
      .catch(ignoreGone);
    await this.afterDelivery(res, logResult);
    return { acked: false };
  }

  /**
   * What follows an activity result's delivery: its log line (before the wake is dispatched, so the
   * log reads in causal order), then the wake, run here or dispatched (undefined: the instance is gone).
   */
  private async afterDelivery(res: DeliverResult | undefined, logResult: () => void): Promise<void> {
    if (res?.status !== 'delivered') return;
    logResult();
    if (res.wake) await this.wake(res.wake, res.loaded);
  }

  /**
   * A result to deliver with its job's completion (queue-worker.ts), and what follows a
   * delivery: its log line, and the wake-up's dispatch when the instance is not kept by a live
   * orchestrator process (the sticky hand-off happens in the script). A delivery the script
   * refused as it would have thrown (the instance is gone, or has finished) completes the job
   * all the same, as before.
   */
  private deliverOnFinish(part: RedisBackend, d: ActivityJobData, kind: 'c' | 'f', event: HistoryEvent, encoded: StoredEvent, logResult: () => void): DeliverOnFinish {
    return new DeliverOnFinish(
      async (cmd) => {
        const { delivery, finished } = await part.deliverAndFinish({ instanceId: d.i, executionId: d.x, kind, seq: d.s, encoded }, cmd);
        this.stats.deliveredOnFinish++;
        if (delivery instanceof Error) {
          try {
            ignoreGone(delivery);
          } catch (err) {
            this.log.error({ err, instanceId: d.i, executionId: d.x, taskId: d.s }, `The result of activity function ${d.n} was not delivered`);
          }
        } else await this.afterDelivery(delivery, logResult);
        return finished;
      },
      async () => this.afterDelivery(await part.deliverEvent(d.i, d.x, kind, d.s, event, { dispatch: false, encoded }).catch(ignoreGone), logResult),
    );
  }

  /**
   * An attempt of the activity a job names, with its timeouts: the call's (in the job), else the
   * registration's, else this worker's default. Reads before it starts only when there is
   * something to read (one round trip): a job delivered again checks that its task still waits
   * (undefined: it does not, nothing runs), and a retry, a job delivered again or an attempt with a
   * heartbeat timeout reads the last heartbeat details of its task.
   */
  private async newAttempt(d: ActivityJobData, attempt: number, redelivered: boolean): Promise<ActivityAttempt | undefined> {
    const registered = this.registry.getActivityOptions(d.n);
    const fallback = this.opts.defaultStartToCloseTimeoutMs ?? DEFAULT_START_TO_CLOSE_TIMEOUT_MS;
    const startToClose = d.c ?? registered?.startToCloseTimeoutMs ?? (fallback > 0 ? fallback : Number.POSITIVE_INFINITY);
    const heartbeat = d.h ?? registered?.heartbeatTimeoutMs;
    const detailsField = `${d.x}|${d.r ?? d.s}`;
    let lastHeartbeatDetails: unknown;
    if (redelivered || d.r !== undefined || heartbeat !== undefined) {
      const read = await this.backend.forInstance(d.i).readAttemptStart(d.i, d.x, d.s, { checkPending: redelivered, detailsField });
      if (!read.pending) {
        this.log.info({ instanceId: d.i, executionId: d.x, taskId: d.s }, `Activity function ${d.n} not run again: its task has a result already`);
        return undefined;
      }
      lastHeartbeatDetails = read.details;
    }
    const run = new ActivityAttempt(this.backend.forInstance(d.i), this.log, {
      instanceId: d.i,
      executionId: d.x,
      taskId: d.s,
      name: d.n,
      attempt,
      startToCloseTimeoutMs: startToClose,
      heartbeatTimeoutMs: heartbeat,
      detailsField,
      lastHeartbeatDetails,
    });
    let set = this.attempts.get(d.i);
    if (!set) this.attempts.set(d.i, (set = new Set()));
    set.add(run);
    return run;
  }

  private endAttempt(run: ActivityAttempt, succeeded: boolean): void {
    run.settleRecords(succeeded);
    const set = this.attempts.get(run.instanceId);
    set?.delete(run);
    if (set?.size === 0) this.attempts.delete(run.instanceId);
  }

  /**
   * The sweep's pass over recorded attempt deadlines: an attempt whose deadline passed while its
   * worker did not handle it (it died, or its event loop is blocked) fails its task with
   * ActivityTimeoutError, as its own timer would have; retry policies apply. Its job, if BullMQ
   * delivers it again later, finds the task done and does not run.
   */
  private async sweepExpiredAttempts(part: RedisBackend): Promise<void> {
    try {
      const now = Date.now();
      for (const a of await part.claimExpiredActivities(now - EXPIRED_ATTEMPT_GRACE_MS)) {
        const type = a.startToCloseTimeoutMs > 0 && a.startedAt + a.startToCloseTimeoutMs <= a.deadline ? 'start-to-close' : 'heartbeat';
        const err = new ActivityTimeoutError(a.name, type, type === 'heartbeat' ? a.heartbeatTimeoutMs : a.startToCloseTimeoutMs, now - a.startedAt);
        this.log.warn({ instanceId: a.instanceId, executionId: a.executionId, taskId: a.taskId, attempt: a.attempt, timeoutType: type }, `Activity function ${a.name} attempt timed out (its worker did not report)`);
        await this.failTask({ i: a.instanceId, x: a.executionId, s: a.taskId, n: a.name }, err);
      }
    } catch (err) {
      this.log.error({ err }, 'Activity deadline sweep failed');
    }
  }

  /** The sweep's check of the schedules' BullMQ job schedulers (written after each schedule's record). */
  private async reconcileSchedules(): Promise<void> {
    try {
      const changed = await this.backend.schedules.reconcile();
      if (changed > 0) this.log.warn({ changed }, 'Schedule job schedulers put right');
    } catch (err) {
      this.log.error({ err }, 'Schedule check failed');
    }
  }

  /**
   * The shortest path for a result: when this worker's last commit of the instance left its code
   * waiting on this very task, replay from the cached history with the result and commit both in
   * one script (Temporal's sticky execution, Durable Functions' extended sessions). The script
   * refuses if anything else reached the instance since; the caller then delivers the result as
   * usual. Returns undefined unless the result is committed.
   */
  private async runDirect(d: ActivityJobData, stored: StoredEvent, logResult: () => void, ackJobId?: string): Promise<{ next?: OutboxEntry } | undefined> {
    // A result stored apart (claim check) takes the usual path, which stores its payload.
    if (!this.canRunInline() || stored.claims.length > 0) return undefined;
    const encoded = stored.bytes;
    const loaded = this.backend.forInstance(d.i).cachedEpisodeFor(d.i, d.x, d.s);
    if (!loaded) return undefined;
    const st = loaded.state;
    // The episode sees the result as a replay from Redis would: decoded from what is stored.
    const direct: DirectResult = { seq: d.s, event: decodeEvent(encoded), encoded, onCommitted: logResult };
    if (ackJobId) direct.ackJobId = ackJobId;
    try {
      const committed = await this.runEpisode({ i: d.i, x: d.x, v: st.version }, loaded, direct);
      if (!committed) {
        this.stats.directRefused++;
        this.backend.forInstance(d.i).forgetCommitted(d.i);
        return undefined;
      }
    } catch (err) {
      // Whether or not the commit took effect, delivering the result as usual is safe: a result
      // already committed is dropped as a duplicate.
      this.backend.forInstance(d.i).forgetCommitted(d.i);
      this.log.warn({ err, instanceId: d.i }, 'Direct episode failed; delivering the result instead');
      return undefined;
    }
    this.stats.inlineEpisodes++;
    this.stats.directEpisodes++;
    return direct.next ? { next: direct.next } : {};
  }

  /**
   * After a commit: when the episode scheduled exactly one activity and this process runs
   * activities with room to spare, run it here instead of a round trip through the activity queue
   * (Temporal's eager activity dispatch). Its outbox entry stays, leased, until the result is
   * delivered: if this process dies, the sweep queues it once the lease runs out. Everything else
   * is dispatched to BullMQ.
   */
  private async dispatchOrRunEager(part: RedisBackend, entries: OutboxEntry[], leasedJobId?: string): Promise<void> {
    const eager = leasedJobId === undefined ? undefined : entries.find(([id]) => id === leasedJobId);
    if (!eager || this.closing || this.eagerRunning >= (this.opts.activityConcurrency ?? 20)) {
      // A worker that runs activities too holds the slot until the jobs are queued: that holds
      // back new episodes while its eager slots are full (measured faster in W1 than not).
      if (this.activityWorker) await part.dispatch(entries);
      else this.dispatchSoon(part, entries);
      return;
    }
    await part.dispatch(entries.filter((e) => e !== eager));
    this.eagerRunning++;
    this.stats.eagerActivities++;
    const run = this.runEagerChain(eager).finally(() => {
      this.eagerRunning--;
      this.eager.delete(run);
    });
    this.eager.add(run);
  }

  /**
   * Queues outbox entries a commit wrote without holding the caller's job slot for that round
   * trip: the entries are durable in the outbox already, so a crash or a failed dispatch leaves
   * them to the sweep; close() waits for the dispatches under way.
   */
  private dispatchSoon(part: RedisBackend, entries: OutboxEntry[]): void {
    if (entries.length === 0) return;
    const p: Promise<void> = part
      .dispatch(entries)
      .catch((err: unknown) => this.log.warn({ err, entries: entries.length }, 'Dispatch failed; the outbox sweep will queue these entries'))
      .finally(() => this.dispatching.delete(p));
    this.dispatching.add(p);
  }

  /** Runs an eager activity, then each next step its results schedule, in the slot the caller holds. */
  private async runEagerChain(first: OutboxEntry): Promise<void> {
    for (let entry: OutboxEntry | undefined = first; entry; ) entry = await this.runEager(entry);
  }

  private async runEager([jobId, payload]: OutboxEntry): Promise<OutboxEntry | undefined> {
    // The commit wrote the entry leased; the lease is renewed while the activity runs.
    const leaseMs = this.eagerLeaseMs;
    const data = JSON.parse(payload.slice(1)) as ActivityJobData;
    const part = this.backend.forInstance(data.i);
    const renew = setInterval(() => part.leaseOutbox(jobId, leaseMs), leaseMs / 3);
    renew.unref();
    try {
      const { acked, next } = await this.executeActivity(data, 1, jobId);
      if (!acked) await part.ackOutbox([jobId]);
      return next;
    } catch (err) {
      this.log.warn({ err }, 'Eager activity could not be completed; queueing it instead');
      await part.dispatch([[jobId, payload]]).catch((e) => this.log.error({ err: e }, 'Queueing failed; the sweep will'));
      return undefined;
    } finally {
      clearInterval(renew);
    }
  }

  /**
   * Wakes the orchestrator after an activity result. When this process also runs orchestrators it
   * runs the episode right here instead of a round trip through the orchestrator queue (like
   * Temporal's eager dispatch); the wake stays in the outbox until the episode is committed, so a
   * crash in between leaves it to the sweep, which queues it as usual.
   */
  private canRunInline(): boolean {
    return !!this.orchestratorWorker && !this.closing && this.opts.inlineEpisodes !== false;
  }

  private async wake(wake: [jobId: string, payload: string], loaded?: LoadedEpisode): Promise<void> {
    const part = this.backend.forInstance(parseWake(wake[1]).i);
    if (!this.canRunInline()) {
      this.dispatchSoon(part, [wake]);
      return;
    }
    try {
      // `loaded` came back with the result's delivery, read in the same script: no second load.
      await this.runEpisode(parseWake(wake[1]), loaded);
      this.stats.inlineEpisodes++;
      await part.ackOutbox([wake[0]]);
    } catch (err) {
      this.log.warn({ err }, 'Inline episode failed; queueing it instead');
      await part.dispatch([wake]);
    }
  }

  /**
   * The sweep's stuck-instance pass: the backend looks at the next 100 unfinished instances (a
   * cursor kept between passes) and re-queues those whose wake-up was lost (idle with events that
   * let them progress, or scheduled for longer than the sweep period with no job anywhere), and
   * the pending tasks that nothing would run (no outbox entry, no job: lost with a Redis crash).
   */
  private async sweepStuckInstances(part: RedisBackend): Promise<void> {
    try {
      let sweeper = this.stuckSweepers.get(part);
      if (!sweeper) this.stuckSweepers.set(part, (sweeper = new StuckSweeper(part)));
      const repairs = await sweeper.pass({ graceMs: this.opts.sweepIntervalMs ?? 5000, limit: this.opts.sweepInstancesPerPass ?? 100 });
      for (const r of repairs) {
        this.instr.repaired(r.reason, r.reason === 'lost-task' ? r.tasks?.length ?? 1 : 1);
        if (r.reason === 'lost-task') {
          this.log.warn({ instanceId: r.instanceId, executionId: r.executionId, version: r.version, tasks: r.tasks }, 'Re-queued lost tasks');
        } else {
          this.log.warn({ instanceId: r.instanceId, executionId: r.executionId, version: r.version, reason: r.reason, wakeJobId: r.wakeJobId }, 'Re-queued a stuck instance');
        }
      }
    } catch (err) {
      this.log.error({ err }, 'Stuck-instance sweep failed');
    }
  }
}

/** A wake-up handed to this worker: its outbox entry (job id, payload) and its episode job's data. */
interface StickyWake {
  jobId: string;
  payload: string;
  data: EpisodeJobData;
}

/** A sticky stream entry (`w` the wake's outbox payload, `e` the inbox entry or ""), as deliverEvent writes it. */
function parseStickyEntry(fields: Buffer[]): StickyWake | undefined {
  let payload: string | undefined;
  let carried: Buffer | undefined;
  for (let k = 0; k + 1 < fields.length; k += 2) {
    const name = fields[k]!.toString('latin1');
    if (name === 'w') payload = fields[k + 1]!.toString('latin1');
    else if (name === 'e') carried = fields[k + 1];
  }
  if (!payload || payload[0] !== 'W') return undefined;
  const data = parseWake(payload);
  if (episodeJobProblem(data)) return undefined;
  if (carried && carried.length > 0) {
    // A first episode handed over by its start carries its ExecutionStarted, as its job would.
    if (data.v === 0 && carried[0] === 0x65 && carried[1] === 0x7c) data.s = carried.subarray(2).toString('base64');
    else data.e = carried.toString('base64');
  }
  return { jobId: wakeJobId(data.i, data.x, data.v), payload, data };
}

// ---- job data checks: a job is what durabull writes, or it is dead-lettered ----

const ID_RE = /^[A-Za-z0-9_.@-]{1,256}$/;
const isInstanceId = (v: unknown): v is string => typeof v === 'string' && ID_RE.test(v);
const isSeq = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A value for a message: JSON, cut short, 'missing' when undefined. */
function show(v: unknown): string {
  if (v === undefined) return 'missing';
  let t: string;
  try {
    t = JSON.stringify(v) ?? String(v);
  } catch {
    t = String(v);
  }
  return t.length > 60 ? `${t.slice(0, 57)}...` : t;
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** What is wrong with an episode (wake) job's data, or undefined. */
export function episodeJobProblem(d: unknown): string | undefined {
  if (!isObject(d)) return `data is ${d === null ? 'null' : Array.isArray(d) ? 'an array' : typeof d}, not an object {i, x, v}`;
  if (!isInstanceId(d.i)) return `'i' (instance id) is ${show(d.i)}, not a valid instance id`;
  if (typeof d.x !== 'string' || d.x.length === 0) return `'x' (execution id) is ${show(d.x)}, not a non-empty string`;
  if (!isSeq(d.v)) return `'v' (version) is ${show(d.v)}, not a non-negative integer`;
  if (d.s !== undefined && typeof d.s !== 'string') return `'s' (first event) is ${show(d.s)}, not a base64 string`;
  if (d.e !== undefined && typeof d.e !== 'string') return `'e' (inbox entry) is ${show(d.e)}, not a base64 string`;
  return undefined;
}

/** What is wrong with a timer job's data, or undefined. */
export function timerJobProblem(d: unknown): string | undefined {
  if (!isObject(d)) return `data is ${d === null ? 'null' : Array.isArray(d) ? 'an array' : typeof d}, not an object {i, x, s, f}`;
  if (!isInstanceId(d.i)) return `'i' (instance id) is ${show(d.i)}, not a valid instance id`;
  if (typeof d.x !== 'string' || d.x.length === 0) return `'x' (execution id) is ${show(d.x)}, not a non-empty string`;
  if (!isSeq(d.s)) return `'s' (timer id) is ${show(d.s)}, not a non-negative integer`;
  if (typeof d.f !== 'number' || !Number.isFinite(d.f)) return `'f' (fire time) is ${show(d.f)}, not a number`;
  return undefined;
}

/** What is wrong with an activity job's data, or undefined. */
export function activityJobProblem(d: unknown): string | undefined {
  if (!isObject(d)) return `data is ${d === null ? 'null' : Array.isArray(d) ? 'an array' : typeof d}, not an object {i, x, s, n, p}`;
  if (!isInstanceId(d.i)) return `'i' (instance id) is ${show(d.i)}, not a valid instance id`;
  if (typeof d.x !== 'string' || d.x.length === 0) return `'x' (execution id) is ${show(d.x)}, not a non-empty string`;
  if (!isSeq(d.s)) return `'s' (task id) is ${show(d.s)}, not a non-negative integer`;
  if (typeof d.n !== 'string' || d.n.length === 0) return `'n' (activity name) is ${show(d.n)}, not a non-empty string`;
  if (typeof d.p !== 'string') return `'p' (input) is ${show(d.p)}, not a base64 string`;
  for (const [k, what] of [['c', 'start-to-close timeout'], ['h', 'heartbeat timeout']] as const) {
    const v = d[k];
    if (v !== undefined && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= 1)) return `'${k}' (${what}) is ${show(v)}, not an integer >= 1`;
  }
  if (d.r !== undefined && !isSeq(d.r)) return `'r' (first attempt) is ${show(d.r)}, not a non-negative integer`;
  return undefined;
}

/**
 * The completion of orchestrator job `job` by its episode's commit (CommitOptions.finish): BullMQ's
 * moveToFinished built when the commit is sent, and the time it writes.
 */
function episodeJobFinish(worker: QueueWorker, job: Job, token: string): EpisodeJobFinish & { finishedOn: number } {
  const finish: EpisodeJobFinish & { finishedOn: number } = {
    finishedOn: 0,
    command: () => {
      const { finishedOn, ...cmd } = worker.finishCommand(job, token);
      finish.finishedOn = finishedOn;
      return cmd;
    },
  };
  return finish;
}
