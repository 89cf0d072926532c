/**
 * Prometheus metrics of durabull, with prom-client: what workers do (episodes, activities, their
 * latencies, sweep repairs, the Redis round trip) and what a task hub holds (instances by status,
 * queue depths, the outbox), read from Redis when scraped. Label values are bounded: hub,
 * orchestrator and activity names, outcomes, statuses; never instance ids.
 */
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type HubGauges, type HubStatsRecorder, QUEUE_NAMES, QUEUE_STATES, type RedisBackend, STATUSES, type TaskHub, readHubGauges } from '@durabull/redis';
import { Gauge, type Metric, Registry } from 'prom-client';
import { CellCounter, CellHistogram, type CounterCell, type HistogramCell } from './metric-cells.js';
import {
  type ActivityObserver,
  type ActivityStart,
  type EpisodeObserver,
  type EpisodeStart,
  type RepairKind,
  type TimerFired,
  type WorkerInstrumentation,
  outcomeOf,
} from './instrumentation.js';

/** Seconds: from a millisecond to five minutes (activity run time, schedule-to-start, episodes). */
const SHORT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds: from 10 ms to a day (an instance from start to end). */
const LONG_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 86_400];

/** A label value of an activity attempt: 1, 2, 3 or 4+ (bounded). */
const attemptLabel = (n: number) => (n >= 4 ? '4+' : String(n));

/**
 * durabull's metrics in a prom-client registry of their own (`registry`). One object can serve
 * several workers of a process (the `hub` label tells hubs apart); add the hub gauges of a backend
 * with {@link watchHub}; merge into the application's registry with {@link registerIn}.
 *
 * ```ts
 * const worker = new DurabullWorker({ registry, metricsPort: 9464 });           // GET :9464/metrics
 * // or, into the application's own registry (prom-client's `register` here):
 * worker.metrics!.registerIn(register);
 * ```
 */
export class DurabullMetrics {
  /** The registry that holds these metrics. */
  readonly registry: Registry;
  readonly episodes: CellCounter<'hub' | 'orchestrator' | 'outcome' | 'mode'>;
  readonly episodeDuration: CellHistogram<'hub' | 'orchestrator'>;
  readonly activities: CellCounter<'hub' | 'activity' | 'outcome' | 'attempt'>;
  readonly activityDuration: CellHistogram<'hub' | 'activity' | 'outcome'>;
  readonly scheduleToStart: CellHistogram<'hub' | 'activity'>;
  readonly instanceDuration: CellHistogram<'hub' | 'orchestrator' | 'status'>;
  readonly timersFired: CellCounter<'hub'>;
  readonly sweepRepairs: CellCounter<'hub' | 'kind'>;
  readonly redisRoundTrip: CellHistogram<'hub'>;
  readonly instances: Gauge<'hub' | 'status'>;
  readonly queueJobs: Gauge<'hub' | 'queue' | 'state'>;
  readonly outboxEntries: Gauge<'hub'>;
  readonly outboxOldestAge: Gauge<'hub'>;
  private readonly hubs = new Map<string, RedisBackend | TaskHub>();
  private reading: Promise<void> | undefined;

  constructor() {
    const registers = [(this.registry = new Registry())];
    // The metrics the worker's hot path feeds are cells (./metric-cells.ts): an observation costs no label hashing.
    this.episodes = new CellCounter(
      'durabull_episodes_total',
      'Orchestrator episodes, by outcome (running, completed, failed, continued_as_new, terminated; stale, refused, error: not committed) and mode (started, replayed, resumed)',
      ['hub', 'orchestrator', 'outcome', 'mode'],
      registers,
    );
    this.episodeDuration = new CellHistogram('durabull_episode_duration_seconds', 'Time of a committed episode: load, replay or resume, commit', ['hub', 'orchestrator'], SHORT_BUCKETS, registers);
    this.activities = new CellCounter(
      'durabull_activities_total',
      'Activity attempts, by outcome (completed, failed) and attempt (1, 2, 3, 4+: a job run again after its worker died)',
      ['hub', 'activity', 'outcome', 'attempt'],
      registers,
    );
    this.activityDuration = new CellHistogram('durabull_activity_duration_seconds', "Run time of an activity attempt (the function's own time)", ['hub', 'activity', 'outcome'], SHORT_BUCKETS, registers);
    this.scheduleToStart = new CellHistogram(
      'durabull_activity_schedule_to_start_seconds',
      'From an activity job queued to its attempt starting (0 for an activity run in place)',
      ['hub', 'activity'],
      SHORT_BUCKETS,
      registers,
    );
    this.instanceDuration = new CellHistogram('durabull_instance_duration_seconds', 'An execution from its start to its end (completed or failed)', ['hub', 'orchestrator', 'status'], LONG_BUCKETS, registers);
    this.timersFired = new CellCounter('durabull_timers_fired_total', 'Durable timers fired', ['hub'], registers);
    this.sweepRepairs = new CellCounter(
      'durabull_sweep_repairs_total',
      'What the sweep repaired: outbox entries queued (outbox), stuck instances re-queued (idle, lost-wake), lost tasks queued again (lost-task)',
      ['hub', 'kind'],
      registers,
    );
    this.redisRoundTrip = new CellHistogram(
      'durabull_redis_roundtrip_seconds',
      'Round trip of a Redis PING (every stats interval) and of the pipelined read of the hub gauges',
      ['hub'],
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    );
    // The hub gauges are read from Redis when scraped: one read for all four.
    const collect = () => this.readHubs();
    this.instances = new Gauge({ name: 'durabull_instances', help: 'Instances of the hub by runtime status', labelNames: ['hub', 'status'], registers, collect });
    this.queueJobs = new Gauge({ name: 'durabull_queue_jobs', help: 'Jobs of the hub queues (orchestrator, activity) by state (waiting, active, delayed, failed)', labelNames: ['hub', 'queue', 'state'], registers, collect });
    this.outboxEntries = new Gauge({ name: 'durabull_outbox_entries', help: 'Outbox entries not yet queued in BullMQ', labelNames: ['hub'], registers, collect });
    this.outboxOldestAge = new Gauge({ name: 'durabull_outbox_oldest_age_seconds', help: 'How long the oldest outbox entry (not leased) has waited', labelNames: ['hub'], registers, collect });
  }

  /** Reads the hub gauges of `backend`'s hub (instances, queues, outbox) whenever the metrics are scraped. */
  watchHub(backend: RedisBackend | TaskHub): this {
    this.hubs.set(backend.hub, backend);
    return this;
  }

  /** Stops reading the gauges of a hub (its backend is closing). */
  unwatchHub(backend: RedisBackend | TaskHub): void {
    if (this.hubs.get(backend.hub) === backend) this.hubs.delete(backend.hub);
  }

  /** Registers every metric in `registry` too (the application's), so that its `/metrics` shows them. */
  registerIn(registry: Registry): void {
    for (const m of this.registry.getMetricsAsArray()) registry.registerMetric(m as unknown as Metric);
  }

  /** The metrics in Prometheus' text format. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** The hooks of one worker (its hub), feeding these metrics and, with `stats`, the dashboard's charts. */
  instrument(hub: string, stats?: HubStatsRecorder): WorkerInstrumentation {
    return new MeasuringInstrumentation(hub, this, stats);
  }

  /**
   * Serves `GET /metrics` on `port` (0: any free port), for Prometheus to scrape. Resolves once
   * listening; close the returned server to stop.
   */
  async listen(port: number, host = '0.0.0.0'): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || (req.url ?? '').split('?', 1)[0] !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('Not found: GET /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err instanceof Error ? err.message : String(err)}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return server;
  }

  /** The address a server from {@link listen} listens on. */
  static address(server: Server): AddressInfo {
    return server.address() as AddressInfo;
  }

  /** One read of every watched hub per scrape (the four gauges share it). */
  private readHubs(): Promise<void> {
    this.reading ??= (async () => {
      try {
        await Promise.all([...this.hubs].map(async ([hub, backend]) => this.setHub(hub, await readHubGauges(backend))));
      } finally {
        // The next scrape reads again; the gauges of this one share this read.
        setImmediate(() => (this.reading = undefined));
      }
    })();
    return this.reading.catch(() => undefined);
  }

  /** Sets the hub gauges from one read (also used by the server). */
  setHub(hub: string, g: HubGauges): void {
    for (const st of STATUSES) this.instances.set({ hub, status: st }, g.statuses[st]);
    for (const q of QUEUE_NAMES) for (const s of QUEUE_STATES) this.queueJobs.set({ hub, queue: q, state: s }, g.queues[q][s]);
    this.outboxEntries.set({ hub }, g.outbox.size);
    this.outboxOldestAge.set({ hub }, g.outbox.oldestAgeMs / 1000);
    this.redisRoundTrip.labels({ hub }).observe(g.roundTripMs / 1000);
  }
}

const OUTCOMES = ['running', 'completed', 'failed', 'continued_as_new', 'terminated', 'stale', 'refused', 'error'] as const;
const MODES = ['started', 'replayed', 'resumed'] as const;

/** The series of one orchestrator (looked up once per episode). */
interface OrchestratorCells {
  /** By outcome and mode: OUTCOMES index * 3 + MODES index. */
  episodes: (CounterCell | undefined)[];
  duration: HistogramCell;
  completed?: HistogramCell;
  failed?: HistogramCell;
}

/** The series of one activity (looked up once per attempt). */
interface ActivityCells {
  /** By outcome (0 completed, 1 failed) and attempt (1 to 4+): outcome * 4 + attempt - 1. */
  attempts: (CounterCell | undefined)[];
  completed: HistogramCell;
  failed?: HistogramCell;
  scheduleToStart: HistogramCell;
}

/**
 * Metrics and the charts' counters of one worker. The series of each orchestrator and activity are
 * looked up once, then kept: an observation is an increment.
 */
class MeasuringInstrumentation implements WorkerInstrumentation {
  private readonly orchestrators = new Map<string, OrchestratorCells>();
  private readonly activityCells = new Map<string, ActivityCells>();
  private timers: CounterCell | undefined;

  constructor(
    private readonly hub: string,
    private readonly m: DurabullMetrics,
    private readonly stats: HubStatsRecorder | undefined,
  ) {}

  private orchestrator(name: string): OrchestratorCells {
    let c = this.orchestrators.get(name);
    if (!c) {
      c = { episodes: [], duration: this.m.episodeDuration.labels({ hub: this.hub, orchestrator: name }) };
      this.orchestrators.set(name, c);
    }
    return c;
  }

  private activityOf(name: string): ActivityCells {
    let c = this.activityCells.get(name);
    if (!c) {
      const { hub, m } = this;
      c = {
        attempts: [],
        completed: m.activityDuration.labels({ hub, activity: name, outcome: 'completed' }),
        scheduleToStart: m.scheduleToStart.labels({ hub, activity: name }),
      };
      this.activityCells.set(name, c);
    }
    return c;
  }

  private countEpisode(e: EpisodeStart, cells: OrchestratorCells, outcome: (typeof OUTCOMES)[number]): void {
    const i = OUTCOMES.indexOf(outcome) * MODES.length + MODES.indexOf(e.mode);
    (cells.episodes[i] ??= this.m.episodes.labels({ hub: this.hub, orchestrator: e.orchestrator, outcome, mode: e.mode })).inc();
  }

  episode(e: EpisodeStart): EpisodeObserver {
    let ended = false;
    const cells = this.orchestrator(e.orchestrator);
    const { stats } = this;
    return {
      committed: (result) => {
        if (ended) return;
        ended = true;
        this.countEpisode(e, cells, outcomeOf(result));
        const ms = performance.now() - e.startedAt;
        cells.duration.observe(ms / 1000);
        const now = Date.now();
        stats?.count('episodes', now);
        stats?.latency('episode', ms, now);
        if (result.status === 'Completed' || result.status === 'Failed') {
          const total = now - e.state.createdAt.getTime();
          const done = result.status === 'Completed';
          const status = done ? 'completed' : 'failed';
          (done ? (cells.completed ??= this.m.instanceDuration.labels({ hub: this.hub, orchestrator: e.orchestrator, status })) : (cells.failed ??= this.m.instanceDuration.labels({ hub: this.hub, orchestrator: e.orchestrator, status }))).observe(total / 1000);
          stats?.count(done ? 'instancesCompleted' : 'instancesFailed', now);
          stats?.latency('instance', total, now);
        }
      },
      dropped: (outcome) => {
        if (ended) return;
        ended = true;
        this.countEpisode(e, cells, outcome);
      },
    };
  }

  activity(a: ActivityStart): ActivityObserver {
    const { stats } = this;
    const cells = this.activityOf(a.activity);
    const started = performance.now();
    const now = Date.now();
    const waited = a.eager ? 0 : a.scheduledAt === undefined ? undefined : Math.max(0, now - a.scheduledAt);
    if (waited !== undefined) {
      cells.scheduleToStart.observe(waited / 1000);
      stats?.latency('scheduleToStart', waited, now);
    }
    let ended = false;
    return {
      run: (fn) => fn(),
      done: (outcome) => {
        if (ended) return;
        ended = true;
        const ms = performance.now() - started;
        const attempt = Math.min(a.attempt, 4);
        const failed = outcome === 'failed';
        const i = (failed ? 4 : 0) + attempt - 1;
        (cells.attempts[i] ??= this.m.activities.labels({ hub: this.hub, activity: a.activity, outcome, attempt: attemptLabel(attempt) })).inc();
        (failed ? (cells.failed ??= this.m.activityDuration.labels({ hub: this.hub, activity: a.activity, outcome })) : cells.completed).observe(ms / 1000);
        const at = now + ms;
        stats?.count('activities', at);
        if (failed) stats?.count('activitiesFailed', at);
        stats?.latency('activity', ms, at);
      },
    };
  }

  timerFired(_t: TimerFired): void {
    (this.timers ??= this.m.timersFired.labels({ hub: this.hub })).inc();
  }

  repaired(kind: RepairKind, count: number): void {
    if (count > 0) this.m.sweepRepairs.labels({ hub: this.hub, kind }).inc(count);
  }
}
