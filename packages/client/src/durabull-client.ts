/**
 * The client: start, query and wait for orchestrations from any service that can reach Redis.
 * It needs no worker code and no registry.
 */
import { randomUUID } from 'node:crypto';
import {
  EntityOperationNotFoundError,
  type EntityRef,
  type OperationArgs,
  type TypedEntityId,
  assertOperationName,
  toEntityId,
  type FailureDetails,
  type HistoryEvent,
  InstanceNotFoundError,
  type OrchestratorDefinition,
  type RuntimeStatus,
  ValidationError,
  WaitTimeoutError,
  assertDate,
  assertEventName,
  assertOptionalBoolean,
  assertOptionalInteger,
  assertOptionalNumber,
  assertOptionalString,
  assertOptions,
  describeValue,
  functionNameOf,
  invalidArgument,
  isTerminalStatus,
  parseTimeArgument,
  assertScheduleId,
} from '@durabull/core';
import {
  type EntityListPage,
  type EntityMetadata,
  type EntityStateResponse,
  type ConnectionLike,
  type ConnectionLogger,
  type InstanceState,
  InvalidInstanceStateError,
  type ListQuery,
  type ParentLink,
  type FireResult,
  type OverlapPolicy,
  TaskHub,
  type HubOptions,
  assertPartitionCount,
  type Schedule,
  type ScheduleLink,
  type SchedulePage,
  type ScheduleSpec,
  RedisUnavailableError,
  type WorkerInfo,
  assertConnection,
  assertInstanceId,
  closeConnection,
  duplicateClient,
  createRedisClient,
  ignoreGone,
  isRedisClient,
  type RedisClient,
  newEventId,
} from '@durabull/redis';
import { SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import { pino } from 'pino';

/** Default of {@link ClientOptions.commandTimeoutMs}. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 10_000;

export interface ClientOptions {
  /** Redis connection: a URL (`redis-cluster://host:port,...` for a Redis Cluster), ioredis options, `{ clusterNodes }`, or an ioredis `Redis` or `Cluster`. Default `redis://127.0.0.1:6379`. */
  connection?: ConnectionLike;
  /** Task hub name. Default `default`. */
  hub?: string;
  /**
   * The hub's partition count (1 to 1024), checked against the hub's own at the first call
   * (PartitionMismatchError when they differ). Default: the hub's.
   */
  partitions?: number;
  /** Largest encoded payload. Default 16 MiB. */
  maxPayloadBytes?: number;
  /**
   * Claim check: inputs, event data and reasons this client writes whose encoding is larger than
   * this are stored apart under a key of their own, with a reference in history. Default 64 KiB;
   * 0 turns it off. Payloads stored apart are read back whatever this is.
   */
  claimCheckThresholdBytes?: number;
  /**
   * How long a Redis command of this client may go without a reply (ioredis' `commandTimeout`).
   * While Redis is unreachable, commands wait in ioredis' queue for the reconnect; after this
   * long the call rejects with {@link RedisUnavailableError}, whose outcome is unknown: the command
   * may still be applied once Redis is back. Default 10 s. Not applied to a connection given as an
   * ioredis client (set `commandTimeout` on it).
   */
  commandTimeoutMs?: number;
  /**
   * A pino logger (or another with pino's `debug`, `info`, `warn` and `error`, such as Fastify's)
   * for connection problems: a lost Redis connection is logged once (warn, with the address and the
   * reason) and once more when it is back (info). `false` for none. Default: pino at info on
   * stdout, as the worker's.
   */
  logger?: ConnectionLogger | false;
  /**
   * How long the orchestrator names the hub's live workers run are reused by the start check
   * before they are read again (a name missing from them is always read again before a refusal).
   * Default 2000 ms.
   */
  servedNamesCacheMs?: number;
  /**
   * A start checked against the live workers (the default, not with `allowUnknownName`) hands its
   * first episode to one of the workers that run the orchestrator, picked at random among those that
   * read the wake-ups handed to them (sticky episodes), instead of queueing it on the orchestrator
   * queue: no queue job to add, fetch and complete. If that worker dies before it runs the episode,
   * the sweep queues it. Not for a delayed start or an input stored apart. Default true.
   */
  stickyStarts?: boolean;
}

/** Filter of {@link DurabullClient.purgeInstances}: at least one field, or `all: true`. */
export interface PurgeFilter extends Omit<ListQuery, 'cursor' | 'pageSize'> {
  /** Purge every finished instance of the hub when no other filter is given. */
  all?: boolean;
}

export interface StartOptions<TIn = unknown> {
  input?: TIn;
  /** The instance id; a random UUID when omitted. Letters, digits, `_`, `.`, `@`, `-`; at most 256. */
  instanceId?: string;
  /**
   * Start it even when no live worker of the hub runs this orchestrator (for example before the
   * workers are deployed): it waits, Pending, for one. Default false: such a start throws
   * OrchestratorNotServedError and writes nothing.
   */
  allowUnknownName?: boolean;
  /**
   * A delayed start (Durable Functions' scheduled start time): the instance is created now and
   * stays Pending until then; its first episode is a delayed job. A `Date`, an ISO 8601 time with
   * an offset (`2024-06-01T09:00:00Z`) or epoch ms; a time in the past starts it at once.
   */
  startAt?: Date | string | number;
}

export interface OrchestrationStatus<TOut = unknown> {
  instanceId: string;
  name: string;
  runtimeStatus: RuntimeStatus;
  executionId: string;
  input: unknown;
  /** The output once Completed (for Terminated: the reason; for ContinuedAsNew: undefined). */
  output: TOut | undefined;
  customStatus: unknown;
  /** Set when the instance failed: the error's name, message and stack. */
  failure?: FailureDetails;
  createdAt: Date;
  lastUpdatedAt: Date;
  completedAt?: Date;
  /** Orchestrator episodes run so far. */
  episodes: number;
  /** Set for a sub-orchestration. */
  parent?: ParentLink;
  /** A delayed start (`startAt`): when it was to start. */
  scheduledStartTime?: Date;
  /** Set for an instance a schedule started: the schedule's id and the tick. */
  schedule?: ScheduleLink;
  /** The execution's history, with `showHistory`. */
  history?: HistoryEvent[];
}

/** {@link DurabullClient.schedules}'s `create`: a schedule's id and spec, and whether it starts paused. */
export interface CreateScheduleOptions<TIn = unknown> extends Omit<ScheduleSpec, 'orchestrator' | 'input' | 'startAt' | 'endAt'> {
  scheduleId: string;
  /** The orchestrator each tick starts, by name or definition. */
  orchestrator: string | OrchestratorDefinition<TIn>;
  input?: TIn;
  /** No tick before this time (a Date, an ISO 8601 time with an offset, or epoch ms). */
  startAt?: Date | string | number;
  /** No tick after this time. */
  endAt?: Date | string | number;
  /** Create it paused (no tick until `resume`). Default false. */
  paused?: boolean;
  /** Create it even when no live worker of the hub runs the orchestrator. Default false. */
  allowUnknownName?: boolean;
}

/** {@link DurabullClient.schedules}'s `update`: the fields to change (`startAt` / `endAt` null removes them). */
export interface UpdateScheduleOptions extends Partial<Omit<ScheduleSpec, 'orchestrator' | 'startAt' | 'endAt'>> {
  orchestrator?: string | OrchestratorDefinition;
  startAt?: Date | string | number | null;
  endAt?: Date | string | number | null;
}

/**
 * Schedules of a task hub (`client.schedules`): start an orchestration on a cron expression or at
 * a fixed interval, one instance per tick (`<schedule id>@<tick>`) whatever the number of workers.
 * Temporal's Schedules; in Durable Functions, an orchestration started from a timer trigger.
 */
export interface ScheduleClient {
  /** Creates a schedule. Throws ScheduleAlreadyExistsError, ValidationError (naming the field), OrchestratorNotServedError; nothing is written then. */
  create<TIn>(options: CreateScheduleOptions<TIn>): Promise<Schedule>;
  /** Changes a schedule's spec; ticks to come follow the new one. Throws ScheduleNotFoundError. */
  update(scheduleId: string, changes: UpdateScheduleOptions): Promise<Schedule>;
  /** No tick until `resume` (the ticks in between are not caught up). */
  pause(scheduleId: string): Promise<void>;
  resume(scheduleId: string): Promise<void>;
  /** Starts the orchestrator now (also while paused), under the overlap policy (or `overlap` for this once). */
  trigger(scheduleId: string, options?: { overlap?: OverlapPolicy }): Promise<FireResult>;
  /** Deletes the schedule; the instances it started stay. */
  delete(scheduleId: string): Promise<void>;
  /** The schedule, or undefined. */
  get(scheduleId: string): Promise<Schedule | undefined>;
  /** Schedules in id order, a page at a time. */
  list(query?: { pageSize?: number; cursor?: string }): Promise<SchedulePage>;
}

export class DurabullClient {
  /** The task hub: its partitions, and the routing of an instance to its partition. */
  readonly backend: TaskHub;
  private subscriber: RedisClient | undefined;
  private subscribed: Promise<unknown> | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();
  /** {@link ClientOptions.commandTimeoutMs}. */
  readonly commandTimeoutMs: number;

  constructor(private readonly opts: ClientOptions = {}) {
    assertOptions('DurabullClient', 'options', opts);
    const c = opts.connection as unknown;
    if (c !== undefined && typeof c !== 'string' && (typeof c !== 'object' || c === null || Array.isArray(c))) {
      throw invalidArgument('DurabullClient', 'options.connection', 'a Redis URL, ioredis options or an ioredis client', c);
    }
    assertConnection(c, 'DurabullClient: options.connection');
    assertOptionalString('DurabullClient', 'options.hub', opts.hub);
    assertOptionalNumber('DurabullClient', 'options.maxPayloadBytes', opts.maxPayloadBytes, 0);
    assertOptionalNumber('DurabullClient', 'options.claimCheckThresholdBytes', opts.claimCheckThresholdBytes, 0, true);
    if (opts.partitions !== undefined) assertPartitionCount(opts.partitions, 'DurabullClient: options.partitions');
    const backendOpts: HubOptions = {};
    if (opts.partitions !== undefined) backendOpts.partitions = opts.partitions;
    if (opts.connection !== undefined) backendOpts.connection = opts.connection;
    if (opts.hub !== undefined) backendOpts.hub = opts.hub;
    if (opts.maxPayloadBytes !== undefined) backendOpts.maxPayloadBytes = opts.maxPayloadBytes;
    if (opts.claimCheckThresholdBytes !== undefined) backendOpts.claimCheckThresholdBytes = opts.claimCheckThresholdBytes;
    this.commandTimeoutMs = opts.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    backendOpts.commandTimeoutMs = this.commandTimeoutMs;
    backendOpts.logger = opts.logger === false ? pino({ enabled: false }) : (opts.logger ?? pino({ name: 'durabull' }));
    backendOpts.component = 'client';
    if (opts.servedNamesCacheMs !== undefined) backendOpts.servedNamesCacheMs = opts.servedNamesCacheMs;
    if (opts.stickyStarts !== undefined) backendOpts.stickyStarts = opts.stickyStarts;
    this.backend = new TaskHub(backendOpts);
  }

  /** Runs one client call; a command that timed out (ioredis' `commandTimeout`) becomes RedisUnavailableError. */
  private async io<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    try {
      // The partition map, read once (PartitionMismatchError when this client's count is not the hub's).
      await this.backend.open();
      return await fn();
    } catch (err) {
      if (err instanceof Error && err.message === 'Command timed out') {
        throw new RedisUnavailableError(operation, this.commandTimeoutMs, this.backend.redis.status, { cause: err });
      }
      throw err;
    }
  }

  /**
   * Starts a new instance of orchestrator `name` and returns its id. Throws
   * InstanceAlreadyExistsError if an instance with that id exists and has not finished, and
   * ValidationError / PayloadError for a bad id, name, option or input, and OrchestratorNotServedError
   * when live workers of the hub run orchestrators but none runs this one (unless `allowUnknownName`);
   * in every error case nothing is written.
   */
  async startNew<TIn, TOut>(orchestrator: OrchestratorDefinition<TIn, TOut>, options: StartOptions<TIn> & { input: TIn }): Promise<string>;
  async startNew<TIn = unknown>(name: string, options?: StartOptions<TIn>): Promise<string>;
  async startNew(orchestrator: string | OrchestratorDefinition, options: StartOptions<unknown> = {}): Promise<string> {
    const name = functionNameOf('orchestrator', orchestrator, 'startNew');
    assertOptions('startNew', 'options', options);
    if (options.instanceId !== undefined) assertInstanceId(options.instanceId, 'startNew', 'options.instanceId');
    assertOptionalBoolean('startNew', 'options.allowUnknownName', options.allowUnknownName);
    const startAt = options.startAt === undefined ? undefined : parseTimeArgument('startNew', 'options.startAt', options.startAt).getTime();
    const instanceId = options.instanceId ?? randomUUID();
    await this.traced('startNew', name, instanceId, (t) =>
      this.io('startNew', () =>
        this.backend.startInstance(name, instanceId, options.input, { checkServed: options.allowUnknownName !== true, ...(startAt !== undefined ? { startAt } : {}), ...t }),
      ),
    );
    return instanceId;
  }

  /** The task hub's schedules: create, update, pause, resume, trigger, delete, get, list. */
  get schedules(): ScheduleClient {
    this._schedules ??= this.scheduleClient();
    return this._schedules;
  }

  private _schedules: ScheduleClient | undefined;

  private scheduleClient(): ScheduleClient {
    const store = () => this.backend.schedules;
    const times = (where: string, o: Record<string, unknown>, out: Record<string, unknown>) => {
      for (const k of ['startAt', 'endAt'] as const) {
        const v = o[k];
        if (v === null) out[k] = null;
        else if (v !== undefined) out[k] = parseTimeArgument(where, `${where === 'schedules.create' ? 'options' : 'changes'}.${k}`, v);
      }
    };
    return {
      create: async (options) => {
        assertOptions('schedules.create', 'options', options);
        if (options === undefined) throw invalidArgument('schedules.create', 'options', 'an object with a scheduleId, an orchestrator and a cron or intervalMs', options);
        const { scheduleId, orchestrator, paused, allowUnknownName, ...rest } = options as CreateScheduleOptions & Record<string, unknown>;
        assertScheduleId(scheduleId, 'schedules.create', 'options.scheduleId');
        const spec: Record<string, unknown> = { ...rest, orchestrator: functionNameOf('orchestrator', orchestrator, 'schedules.create', 'options.orchestrator') };
        times('schedules.create', rest, spec);
        assertOptionalBoolean('schedules.create', 'options.allowUnknownName', allowUnknownName);
        assertOptionalBoolean('schedules.create', 'options.paused', paused);
        return this.io('schedules.create', () =>
          store().create(scheduleId, spec as unknown as ScheduleSpec, { ...(paused !== undefined ? { paused } : {}), ...(allowUnknownName !== undefined ? { allowUnknownName } : {}) }),
        );
      },
      update: async (scheduleId, changes) => {
        assertScheduleId(scheduleId, 'schedules.update');
        assertOptions('schedules.update', 'changes', changes);
        const c: Record<string, unknown> = { ...(changes ?? {}) };
        if (c.orchestrator !== undefined) c.orchestrator = functionNameOf('orchestrator', c.orchestrator, 'schedules.update', 'changes.orchestrator');
        times('schedules.update', { ...(changes ?? {}) }, c);
        return this.io('schedules.update', () => store().update(scheduleId, c as Parameters<ReturnType<typeof store>['update']>[1]));
      },
      pause: async (scheduleId) => this.io('schedules.pause', () => store().pause(scheduleId)),
      resume: async (scheduleId) => this.io('schedules.resume', () => store().resume(scheduleId)),
      trigger: async (scheduleId, options = {}) => this.io('schedules.trigger', () => store().trigger(scheduleId, options)),
      delete: async (scheduleId) => this.io('schedules.delete', () => store().delete(scheduleId)),
      get: async (scheduleId) => this.io('schedules.get', () => store().get(scheduleId)),
      list: async (query = {}) => this.io('schedules.list', () => store().list(query)),
    };
  }

  /**
   * Runs a start inside a span (`startNew <name>`, a child of the caller's active span), whose
   * context goes into the new execution's ExecutionStarted event: every episode of it is a child
   * of this span, in whichever worker it runs. A no-op without an OpenTelemetry SDK.
   */
  private async traced<T>(op: string, name: string, instanceId: string, fn: (t: { trace?: Record<string, string> }) => Promise<T>): Promise<T> {
    const span = trace.getTracer('@durabull/client').startSpan(
      `${op} ${name}`,
      { kind: SpanKind.PRODUCER, attributes: { 'durabull.hub': this.backend.hub, 'durabull.orchestrator': name, 'durabull.instance_id': instanceId } },
      context.active(),
    );
    const carrier: Record<string, string> = {};
    propagation.inject(trace.setSpan(context.active(), span), carrier);
    try {
      return await fn(Object.keys(carrier).length > 0 ? { trace: carrier } : {});
    } catch (err) {
      if (err instanceof Error) span.recordException(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * The live workers of the hub, oldest first: who they are, what they run, their last heartbeat and
   * stats. A worker that died drops out once its entry expires (`heartbeatExpiryMs`).
   */
  listWorkers(): Promise<WorkerInfo[]> {
    return this.io('listWorkers', () => this.backend.workerRegistry.list());
  }

  /**
   * Sends an external event to a running instance; `ctx.waitForExternalEvent(name)` receives it.
   * Events that arrive before the code waits are buffered in order. Throws InstanceNotFoundError
   * for a missing instance and InstanceFinishedError for a finished one.
   */
  async raiseEvent(instanceId: string, eventName: string, data?: unknown): Promise<void> {
    assertInstanceId(instanceId, 'raiseEvent');
    assertEventName(eventName, 'raiseEvent');
    const event: HistoryEvent = { type: 'EventRaised', name: eventName, input: data, timestamp: Date.now() };
    const encoded = this.backend.encodeForStorage(event, `Data of event '${eventName}'`);
    // The id makes the delivery idempotent: a command ioredis sends again after a reconnect (its
    // reply lost with the old connection) does not raise the event twice.
    await this.io('raiseEvent', () => this.backend.deliverEvent(instanceId, '', 'e', undefined, event, { encoded, eventId: newEventId() }));
  }

  /**
   * Terminates a running instance at once; its status becomes Terminated with `reason` as output.
   * With `recursive`, its running sub-orchestrations are terminated too. Throws
   * InstanceNotFoundError or InstanceFinishedError.
   */
  async terminate(instanceId: string, reason?: unknown, options: { recursive?: boolean } = {}): Promise<void> {
    assertInstanceId(instanceId, 'terminate');
    assertOptions('terminate', 'options', options);
    assertOptionalBoolean('terminate', 'options.recursive', options.recursive);
    await this.io('terminate', () => this.backend.terminate(instanceId, reason, Date.now(), options.recursive === true));
    if (!options.recursive) return;
    // Read once the instance is final: every child it started is in its history by now, and one
    // whose start is still queued will not start (the terminate recorded `recursive`).
    for (const child of await this.io('terminate', () => this.runningChildren(instanceId))) {
      await this.terminate(child, reason, options).catch(ignoreGone);
    }
  }

  private async runningChildren(instanceId: string): Promise<string[]> {
    const history = await this.backend.getHistory(instanceId, { resolve: false });
    const open = new Map<number, string>();
    for (const e of history) {
      if (e.type === 'SubOrchestrationInstanceCreated') open.set(e.taskId, e.instanceId);
      else if (e.type === 'SubOrchestrationInstanceCompleted' || e.type === 'SubOrchestrationInstanceFailed') open.delete(e.taskScheduledId);
    }
    return [...open.values()];
  }

  /** Suspends a Pending or Running instance: it makes no progress until resumed; events still arrive. */
  async suspend(instanceId: string, reason?: unknown): Promise<void> {
    assertInstanceId(instanceId, 'suspend');
    return this.io('suspend', () => this.backend.setSuspended(instanceId, 'suspend', reason));
  }

  /** Resumes a suspended instance. */
  async resume(instanceId: string, reason?: unknown): Promise<void> {
    assertInstanceId(instanceId, 'resume');
    return this.io('resume', () => this.backend.setSuspended(instanceId, 'resume', reason));
  }

  /**
   * Deletes a finished instance: state, history, index entries and its timer jobs. Throws
   * InvalidInstanceStateError for one that has not finished, InstanceNotFoundError for a missing one.
   */
  async purge(instanceId: string): Promise<void> {
    assertInstanceId(instanceId, 'purge');
    return this.io('purge', () => this.backend.purge(instanceId));
  }

  /**
   * Purges every finished instance that matches the filter (status defaults to every final
   * status); returns how many. The filter needs at least one of `status`, `name`, `createdFrom`,
   * `createdTo`, or `all: true` to purge every finished instance: an empty filter (`{}`,
   * `{ status: [] }`) throws ValidationError and purges nothing.
   */
  async purgeInstances(filter: PurgeFilter): Promise<number> {
    if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) {
      throw new ValidationError(`purgeInstances: filter must be an object such as { status: 'Completed' } or { all: true }, got ${describeValue(filter)}`);
    }
    const { all, ...query } = filter;
    if (all !== undefined && typeof all !== 'boolean') throw new ValidationError(`purgeInstances: filter.all must be true or false, got ${describeValue(all)}`);
    if (Array.isArray(query.status) && query.status.length === 0) {
      throw new ValidationError('purgeInstances: filter.status is an empty list; give one or more statuses, or leave it out');
    }
    const given = (['status', 'name', 'scheduleId', 'createdFrom', 'createdTo'] as const).filter((k) => query[k] !== undefined);
    if (given.length === 0 && all !== true) {
      throw new ValidationError(
        'purgeInstances needs a filter: one of status, name, scheduleId, createdFrom, createdTo, or { all: true } to purge every finished instance; nothing was purged',
      );
    }
    assertListQuery('purgeInstances', 'filter', query);
    const status = query.status ?? ['Completed', 'Failed', 'Terminated'];
    return this.io('purgeInstances', async () => {
      let purged = 0;
      let cursor: string | undefined;
      do {
        const page = await this.backend.list({ ...query, status, pageSize: 500, ...(cursor ? { cursor } : {}) });
        for (const s of page.instances) {
          if (!isTerminalStatus(s.runtimeStatus)) continue;
          await this.backend.purge(s.instanceId).catch((err: unknown) => {
            if (!(err instanceof InstanceNotFoundError)) throw err;
          });
          purged++;
        }
        cursor = page.nextCursor;
      } while (cursor);
      return purged;
    });
  }

  /**
   * Starts a finished instance again with its original input: under the same id (a new execution),
   * or under `newInstanceId`. Returns the id. Checked like `startNew` (`allowUnknownName`).
   */
  async restart(instanceId: string, options: { newInstanceId?: string; allowUnknownName?: boolean } = {}): Promise<string> {
    assertInstanceId(instanceId, 'restart');
    assertOptions('restart', 'options', options);
    if (options.newInstanceId !== undefined) assertInstanceId(options.newInstanceId, 'restart', 'options.newInstanceId');
    assertOptionalBoolean('restart', 'options.allowUnknownName', options.allowUnknownName);
    return this.io('restart', async () => {
      const state = await this.backend.getState(instanceId);
      if (!state) throw new InstanceNotFoundError(instanceId);
      const target = options.newInstanceId ?? instanceId;
      if (target === instanceId && !isTerminalStatus(state.runtimeStatus)) {
        throw new InvalidInstanceStateError(instanceId, state.runtimeStatus, 'restart');
      }
      await this.traced('restart', state.name, target, (t) => this.backend.startInstance(state.name, target, state.input, { checkServed: options.allowUnknownName !== true, ...t }));
      return target;
    });
  }

  /** Lists instances in creation order, filtered, a page at a time (`nextCursor`). */
  async list(query: ListQuery = {}): Promise<{ instances: OrchestrationStatus[]; nextCursor?: string }> {
    assertListQuery('list', 'query', query);
    const page = await this.io('list', () => this.backend.list(query));
    const out: { instances: OrchestrationStatus[]; nextCursor?: string } = { instances: page.instances.map(toStatus) };
    if (page.nextCursor) out.nextCursor = page.nextCursor;
    return out;
  }

  /** The instance's status, or undefined when no such instance exists. */
  async getStatus(instanceId: string, options: { showHistory?: boolean } = {}): Promise<OrchestrationStatus | undefined> {
    assertInstanceId(instanceId, 'getStatus');
    assertOptions('getStatus', 'options', options);
    assertOptionalBoolean('getStatus', 'options.showHistory', options.showHistory);
    return this.io('getStatus', async () => {
      const state = await this.backend.getState(instanceId);
      if (!state) return undefined;
      const status = toStatus(state);
      if (options.showHistory) status.history = await this.backend.getHistory(instanceId);
      return status;
    });
  }

  /**
   * Waits until the instance reaches Completed, Failed or Terminated and returns its status.
   * Throws WaitTimeoutError after `timeoutMs` (default 60 s), also while Redis is unreachable
   * (the wait reads again until then); the instance goes on.
   */
  async waitForCompletion<TOut = unknown>(
    instanceId: string,
    options: { timeoutMs?: number; showHistory?: boolean } = {},
  ): Promise<OrchestrationStatus<TOut>> {
    assertInstanceId(instanceId, 'waitForCompletion');
    assertOptions('waitForCompletion', 'options', options);
    assertOptionalNumber('waitForCompletion', 'options.timeoutMs', options.timeoutMs, 0);
    assertOptionalBoolean('waitForCompletion', 'options.showHistory', options.showHistory);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const deadline = Date.now() + timeoutMs;
    let last: OrchestrationStatus | undefined;
    let unanswered: RedisUnavailableError | undefined;
    const timedOut = () =>
      new WaitTimeoutError(
        instanceId,
        timeoutMs,
        last?.runtimeStatus ?? (unanswered || this.backend.redis.status !== 'ready' ? `unknown: Redis did not answer, connection ${this.backend.redis.status}` : 'not found'),
      );
    // The subscription is the fast path, not a condition: the poll below works without it.
    if ((await within(this.subscribe().catch(() => undefined), deadline - Date.now())) === TIMED_OUT) throw timedOut();
    for (;;) {
      // Register before reading, so a completion between the read and the wait is not missed.
      let wake!: () => void;
      const signal = new Promise<void>((resolve) => (wake = resolve));
      const set = this.waiters.get(instanceId) ?? new Set();
      set.add(wake);
      this.waiters.set(instanceId, set);
      try {
        // Never past the deadline, even while Redis does not answer.
        const read = await within(
          this.getStatus(instanceId, options).then(
            (status) => ({ status }),
            (err: unknown) => ({ err }),
          ),
          deadline - Date.now(),
        );
        if (read === TIMED_OUT) throw timedOut();
        if ('err' in read) {
          if (!(read.err instanceof RedisUnavailableError)) throw read.err;
          unanswered = read.err;
        } else {
          unanswered = undefined;
          last = read.status;
          if (last && isTerminalStatus(last.runtimeStatus)) return last as OrchestrationStatus<TOut>;
        }
        const left = deadline - Date.now();
        if (left <= 0) throw timedOut();
        // The poll interval is a safety net (a lost pub/sub message); the message is the fast path.
        await Promise.race([signal, sleep(Math.min(left, 1000))]);
      } finally {
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(instanceId);
      }
    }
  }

  private subscribe(): Promise<unknown> {
    if (!this.subscriber) {
      const c = this.opts.connection;
      const sub = isRedisClient(c) ? duplicateClient(c) : createRedisClient(c, { commandTimeout: this.commandTimeoutMs });
      this.backend.connections.watch(sub);
      this.subscriber = sub;
      sub.on('message', (_channel: string, id: string) => {
        const set = this.waiters.get(id);
        if (set) for (const w of set) w();
      });
    }
    // SUBSCRIBE again after a failure (ioredis resubscribes by itself after a reconnect).
    // Every partition's channel on one connection: an instance's id is published on its partition's.
    const sub = this.subscriber;
    this.subscribed ??= this.backend.open().then((parts) => sub.subscribe(...parts.map((p) => p.keys.doneChannel))).catch((err: unknown) => {
      this.subscribed = undefined;
      throw err;
    });
    return this.subscribed;
  }

  // ---- entities ----

  /**
   * Sends a one-way operation to an entity (Durable Functions' `signalEntity`); with
   * `options.scheduledTime`, the entity runs it at that time. The signal's id (random unless
   * `options.signalId` is given) makes a resent command deliver nothing twice. Throws
   * EntityNotFoundError (or EntityOperationNotFoundError for a typed entity) when live workers of the
   * hub run entities and none runs this one, before anything is written.
   */
  async signalEntity<TOps, K extends keyof TOps & string>(entity: TypedEntityId<TOps>, operationName: K, ...args: [...OperationArgs<TOps[K]>, options?: SignalEntityOptions]): Promise<void>;
  async signalEntity(entity: EntityRef, operationName: string, input?: unknown, options?: SignalEntityOptions): Promise<void>;
  async signalEntity(entity: EntityRef, operationName: string, ...rest: unknown[]): Promise<void> {
    const id = toEntityId(entity, 'signalEntity', 'entity');
    assertOperationName(operationName, 'signalEntity');
    const [input, options = {}] = rest as [unknown, SignalEntityOptions | undefined];
    assertOptions('signalEntity', 'options', options);
    if (options.scheduledTime !== undefined) assertDate('signalEntity', 'options.scheduledTime', options.scheduledTime);
    assertOptionalString('signalEntity', 'options.signalId', options.signalId);
    const ops = (entity as { operations?: unknown }).operations;
    if (Array.isArray(ops) && !ops.includes(operationName)) {
      throw new EntityOperationNotFoundError(id.name, operationName, ops as string[]);
    }
    this.backend.checkPayload(input, `Input of operation '${operationName}' of entity '${id.toString()}'`);
    await this.io('signalEntity', () => this.backend.workerRegistry.assertEntityServed(id.name, operationName));
    const signalOpts: { scheduledTime?: number; signalId: string } = { signalId: options.signalId ?? newEventId() };
    if (options.scheduledTime) signalOpts.scheduledTime = options.scheduledTime.getTime();
    await this.io('signalEntity', () => this.backend.entities.signal(id, operationName, input, signalOpts));
  }

  /**
   * The entity's last committed state, without running it (Durable Functions' `readEntityState`):
   * `{ entityExists: false }` when it has none (never created, or deleted).
   */
  async readEntityState<T = unknown>(entity: EntityRef): Promise<EntityStateResponse<T>> {
    const id = toEntityId(entity, 'readEntityState', 'entity');
    return this.io('readEntityState', () => this.backend.entities.readState<T>(id));
  }

  /** One entity's metadata and state (pending operations, lock holder), or undefined when it does not exist. */
  async getEntity(entity: EntityRef): Promise<EntityMetadata | undefined> {
    const id = toEntityId(entity, 'getEntity', 'entity');
    return this.io('getEntity', () => this.backend.entities.describe(id));
  }

  /** Entities in id order (`@name@key`), optionally of one name, paged (Durable Functions' `listEntities`). */
  async listEntities(query: { name?: string; pageSize?: number; cursor?: string; withState?: boolean } = {}): Promise<EntityListPage> {
    assertOptions('listEntities', 'query', query);
    if (query.name !== undefined) toEntityId({ name: query.name, key: 'k' }, 'listEntities', 'query');
    assertOptionalInteger('listEntities', 'query.pageSize', query.pageSize, 1, 1000);
    assertOptionalString('listEntities', 'query.cursor', query.cursor);
    assertOptionalBoolean('listEntities', 'query.withState', query.withState);
    return this.io('listEntities', () => this.backend.entities.list(query));
  }

  /**
   * Deletes an entity that is empty: no state (never set, or deleted with `destructOnExit`), no
   * operation waiting, no lock. Returns true when it was deleted, false when it is not empty or
   * does not exist.
   */
  async purgeEntity(entity: EntityRef): Promise<boolean> {
    const id = toEntityId(entity, 'purgeEntity', 'entity');
    return (await this.io('purgeEntity', () => this.backend.entities.purge(id))) === 1;
  }

  /**
   * Durable Functions' `cleanEntityStorage`: deletes every empty entity (`removeEmptyEntities`) and
   * has every locked entity look whether its holder has ended (`releaseOrphanedLocks`: its next
   * batch releases such a lock). Walks the entity index page by page; never scans keys.
   */
  async cleanEntityStorage(options: { removeEmptyEntities?: boolean; releaseOrphanedLocks?: boolean } = {}): Promise<{ emptyEntitiesRemoved: number; orphanedLocksChecked: number }> {
    assertOptions('cleanEntityStorage', 'options', options);
    assertOptionalBoolean('cleanEntityStorage', 'options.removeEmptyEntities', options.removeEmptyEntities);
    assertOptionalBoolean('cleanEntityStorage', 'options.releaseOrphanedLocks', options.releaseOrphanedLocks);
    let emptyEntitiesRemoved = 0;
    let orphanedLocksChecked = 0;
    let cursor: string | undefined;
    do {
      const page: EntityListPage = await this.io('cleanEntityStorage', () => this.backend.entities.list(cursor === undefined ? { pageSize: 500 } : { pageSize: 500, cursor }));
      for (const e of page.entities) {
        if (options.removeEmptyEntities !== false && !e.hasState && e.pendingOperations === 0 && !e.lockedBy) {
          if ((await this.io('cleanEntityStorage', () => this.backend.entities.purge(e.entityId))) === 1) emptyEntitiesRemoved++;
        } else if (options.releaseOrphanedLocks !== false && e.lockedBy) {
          await this.io('cleanEntityStorage', () => this.backend.entities.wake(e.entityId));
          orphanedLocksChecked++;
        }
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    return { emptyEntitiesRemoved, orphanedLocksChecked };
  }

  /** Closes the client's connections (at once while Redis is unreachable). */
  async close(): Promise<void> {
    if (this.subscriber) await closeConnection(this.subscriber);
    await this.backend.close();
  }
}

/** Options of `signalEntity`. */
export interface SignalEntityOptions {
  /** Deliver the operation at this time (Durable Functions' scheduled signals). */
  scheduledTime?: Date;
  /** The signal's id: a signal sent again with the same id (within an hour) is delivered once. */
  signalId?: string;
}

/** The filters of `list` and `purgeInstances` (values are checked further by the backend). */
function assertListQuery(where: string, arg: string, q: unknown): void {
  assertOptions(where, arg, q);
  if (q === undefined) return;
  const { status, name, scheduleId, createdFrom, createdTo, pageSize, cursor } = q as Record<string, unknown>;
  if (status !== undefined && typeof status !== 'string' && !(Array.isArray(status) && status.every((s) => typeof s === 'string'))) {
    throw invalidArgument(where, `${arg}.status`, 'a status or an array of statuses', status);
  }
  assertOptionalString(where, `${arg}.name`, name);
  if (scheduleId !== undefined) assertScheduleId(scheduleId, where, `${arg}.scheduleId`);
  if (createdFrom !== undefined) assertDate(where, `${arg}.createdFrom`, createdFrom);
  if (createdTo !== undefined) assertDate(where, `${arg}.createdTo`, createdTo);
  assertOptionalInteger(where, `${arg}.pageSize`, pageSize, 1, 1000);
  assertOptionalString(where, `${arg}.cursor`, cursor);
}

function toStatus(s: InstanceState): OrchestrationStatus {
  const status: OrchestrationStatus = {
    instanceId: s.instanceId,
    name: s.name,
    runtimeStatus: s.runtimeStatus,
    executionId: s.executionId,
    input: s.input,
    output: s.output,
    customStatus: s.customStatus,
    createdAt: s.createdAt,
    lastUpdatedAt: s.lastUpdatedAt,
    episodes: s.episodes,
  };
  if (s.failure) status.failure = s.failure;
  if (s.completedAt) status.completedAt = s.completedAt;
  if (s.parent) status.parent = s.parent;
  if (s.scheduledStartTime) status.scheduledStartTime = s.scheduledStartTime;
  if (s.schedule) status.schedule = s.schedule;
  return status;
}

const TIMED_OUT = Symbol('timed out');

/** Node's longest timer (a longer delay fires at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** `promise`, or TIMED_OUT once `ms` have passed (what `promise` does later is ignored). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  if (ms <= 0) return TIMED_OUT;
  const deadline = Date.now() + ms;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<typeof TIMED_OUT>((resolve) => {
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) resolve(TIMED_OUT);
      else timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
