/**
 * The client: start, query and wait for orchestrations from any service that can reach Redis.
 * It needs no worker code and no registry.
 */
import { randomUUID } from 'node:crypto';
import {
  type FailureDetails,
  type HistoryEvent,
  InstanceNotFoundError,
  type OrchestratorDefinition,
  type RuntimeStatus,
  ValidationError,
  WaitTimeoutError,
  isTerminalStatus,
} from '@durabull/core';
import {
  type ConnectionLike,
  type InstanceState,
  InvalidInstanceStateError,
  type ListQuery,
  type ParentLink,
  RedisBackend,
  type WorkerInfo,
  assertInstanceId,
  createRedisClient,
  ignoreGone,
  newEventId,
} from '@durabull/redis';
import { Redis } from 'ioredis';

export interface ClientOptions {
  /** Redis connection (URL, ioredis options or client). Default `redis://127.0.0.1:6379`. */
  connection?: ConnectionLike;
  /** Task hub name. Default `default`. */
  hub?: string;
  /** Largest encoded payload. Default 16 MiB. */
  maxPayloadBytes?: number;
  /**
   * Claim check: inputs, event data and reasons this client writes whose encoding is larger than
   * this are stored apart under a key of their own, with a reference in history. Default 64 KiB;
   * 0 turns it off. Payloads stored apart are read back whatever this is.
   */
  claimCheckThresholdBytes?: number;
  /**
   * How long the orchestrator names the hub's live workers run are reused by the start check
   * before they are read again (a name missing from them is always read again before a refusal).
   * Default 2000 ms.
   */
  servedNamesCacheMs?: number;
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
  /** The execution's history, with `showHistory`. */
  history?: HistoryEvent[];
}

export class DurabullClient {
  readonly backend: RedisBackend;
  private subscriber: Redis | undefined;
  private subscribed: Promise<unknown> | undefined;
  private readonly waiters = new Map<string, Set<() => void>>();

  constructor(private readonly opts: ClientOptions = {}) {
    const backendOpts: ConstructorParameters<typeof RedisBackend>[0] = {};
    if (opts.connection !== undefined) backendOpts.connection = opts.connection;
    if (opts.hub !== undefined) backendOpts.hub = opts.hub;
    if (opts.maxPayloadBytes !== undefined) backendOpts.maxPayloadBytes = opts.maxPayloadBytes;
    if (opts.claimCheckThresholdBytes !== undefined) backendOpts.claimCheckThresholdBytes = opts.claimCheckThresholdBytes;
    if (opts.servedNamesCacheMs !== undefined) backendOpts.servedNamesCacheMs = opts.servedNamesCacheMs;
    this.backend = new RedisBackend(backendOpts);
  }

  /**
   * Starts a new instance of orchestrator `name` and returns its id. Throws
   * InstanceAlreadyExistsError if an instance with that id exists and has not finished, and
   * ValidationError / PayloadError for a bad id, name or input, and OrchestratorNotServedError when
   * live workers of the hub run orchestrators but none runs this one (unless `allowUnknownName`);
   * in every error case nothing is written.
   */
  async startNew<TIn, TOut>(orchestrator: OrchestratorDefinition<TIn, TOut>, options: StartOptions<TIn> & { input: TIn }): Promise<string>;
  async startNew<TIn = unknown>(name: string, options?: StartOptions<TIn>): Promise<string>;
  async startNew(orchestrator: string | OrchestratorDefinition, options: StartOptions<unknown> = {}): Promise<string> {
    const name = typeof orchestrator === 'string' ? orchestrator : orchestrator?.name;
    const instanceId = options.instanceId ?? randomUUID();
    await this.backend.startInstance(name, instanceId, options.input, { checkServed: options.allowUnknownName !== true });
    return instanceId;
  }

  /**
   * The live workers of the hub, oldest first: who they are, what they run, their last heartbeat and
   * stats. A worker that died drops out once its entry expires (`heartbeatExpiryMs`).
   */
  listWorkers(): Promise<WorkerInfo[]> {
    return this.backend.workerRegistry.list();
  }

  /**
   * Sends an external event to a running instance; `ctx.waitForExternalEvent(name)` receives it.
   * Events that arrive before the code waits are buffered in order. Throws InstanceNotFoundError
   * for a missing instance and InstanceFinishedError for a finished one.
   */
  async raiseEvent(instanceId: string, eventName: string, data?: unknown): Promise<void> {
    assertInstanceId(instanceId);
    if (typeof eventName !== 'string' || !/^[A-Za-z0-9_.:@-]{1,128}$/.test(eventName)) {
      throw new ValidationError(`Invalid event name ${JSON.stringify(eventName)}: use 1 to 128 letters, digits, '_', '.', ':', '@' or '-'.`);
    }
    const event: HistoryEvent = { type: 'EventRaised', name: eventName, input: data, timestamp: Date.now() };
    const encoded = this.backend.encodeForStorage(event, `Data of event '${eventName}'`);
    // The id makes the delivery idempotent: a command ioredis sends again after a reconnect (its
    // reply lost with the old connection) does not raise the event twice.
    await this.backend.deliverEvent(instanceId, '', 'e', undefined, event, { encoded, eventId: newEventId() });
  }

  /**
   * Terminates a running instance at once; its status becomes Terminated with `reason` as output.
   * With `recursive`, its running sub-orchestrations are terminated too. Throws
   * InstanceNotFoundError or InstanceFinishedError.
   */
  async terminate(instanceId: string, reason?: unknown, options: { recursive?: boolean } = {}): Promise<void> {
    await this.backend.terminate(instanceId, reason, Date.now(), options.recursive === true);
    if (!options.recursive) return;
    // Read once the instance is final: every child it started is in its history by now, and one
    // whose start is still queued will not start (the terminate recorded `recursive`).
    for (const child of await this.runningChildren(instanceId)) {
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
  suspend(instanceId: string, reason?: unknown): Promise<void> {
    return this.backend.setSuspended(instanceId, 'suspend', reason);
  }

  /** Resumes a suspended instance. */
  resume(instanceId: string, reason?: unknown): Promise<void> {
    return this.backend.setSuspended(instanceId, 'resume', reason);
  }

  /**
   * Deletes a finished instance: state, history, index entries and its timer jobs. Throws
   * InvalidInstanceStateError for one that has not finished, InstanceNotFoundError for a missing one.
   */
  purge(instanceId: string): Promise<void> {
    return this.backend.purge(instanceId);
  }

  /** Purges every finished instance that matches the filter (status defaults to every final status); returns how many. */
  async purgeInstances(filter: Omit<ListQuery, 'cursor' | 'pageSize'> = {}): Promise<number> {
    const status = filter.status ?? ['Completed', 'Failed', 'Terminated'];
    let purged = 0;
    let cursor: string | undefined;
    do {
      const page = await this.backend.list({ ...filter, status, pageSize: 500, ...(cursor ? { cursor } : {}) });
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
  }

  /**
   * Starts a finished instance again with its original input: under the same id (a new execution),
   * or under `newInstanceId`. Returns the id. Checked like `startNew` (`allowUnknownName`).
   */
  async restart(instanceId: string, options: { newInstanceId?: string; allowUnknownName?: boolean } = {}): Promise<string> {
    const state = await this.backend.getState(instanceId);
    if (!state) throw new InstanceNotFoundError(instanceId);
    const target = options.newInstanceId ?? instanceId;
    if (target === instanceId && !isTerminalStatus(state.runtimeStatus)) {
      throw new InvalidInstanceStateError(instanceId, state.runtimeStatus, 'restart');
    }
    await this.backend.startInstance(state.name, target, state.input, { checkServed: options.allowUnknownName !== true });
    return target;
  }

  /** Lists instances in creation order, filtered, a page at a time (`nextCursor`). */
  async list(query: ListQuery = {}): Promise<{ instances: OrchestrationStatus[]; nextCursor?: string }> {
    const page = await this.backend.list(query);
    const out: { instances: OrchestrationStatus[]; nextCursor?: string } = { instances: page.instances.map(toStatus) };
    if (page.nextCursor) out.nextCursor = page.nextCursor;
    return out;
  }

  /** The instance's status, or undefined when no such instance exists. */
  async getStatus(instanceId: string, options: { showHistory?: boolean } = {}): Promise<OrchestrationStatus | undefined> {
    const state = await this.backend.getState(instanceId);
    if (!state) return undefined;
    const status = toStatus(state);
    if (options.showHistory) status.history = await this.backend.getHistory(instanceId);
    return status;
  }

  /**
   * Waits until the instance reaches Completed, Failed or Terminated and returns its status.
   * Throws WaitTimeoutError after `timeoutMs` (default 60 s); the instance goes on.
   */
  async waitForCompletion<TOut = unknown>(
    instanceId: string,
    options: { timeoutMs?: number; showHistory?: boolean } = {},
  ): Promise<OrchestrationStatus<TOut>> {
    assertInstanceId(instanceId);
    const timeoutMs = options.timeoutMs ?? 60_000;
    if (!(timeoutMs > 0)) throw new ValidationError(`waitForCompletion: timeoutMs must be a positive number, got ${timeoutMs}`);
    const deadline = Date.now() + timeoutMs;
    await this.subscribe();
    let last: OrchestrationStatus | undefined;
    for (;;) {
      // Register before reading, so a completion between the read and the wait is not missed.
      let wake!: () => void;
      const signal = new Promise<void>((resolve) => (wake = resolve));
      const set = this.waiters.get(instanceId) ?? new Set();
      set.add(wake);
      this.waiters.set(instanceId, set);
      try {
        last = await this.getStatus(instanceId, options);
        if (last && isTerminalStatus(last.runtimeStatus)) return last as OrchestrationStatus<TOut>;
        const left = deadline - Date.now();
        if (left <= 0) throw new WaitTimeoutError(instanceId, timeoutMs, last?.runtimeStatus ?? 'not found');
        // The poll interval is a safety net (a lost pub/sub message); the message is the fast path.
        await Promise.race([signal, sleep(Math.min(left, 1000))]);
      } finally {
        set.delete(wake);
        if (set.size === 0) this.waiters.delete(instanceId);
      }
    }
  }

  private subscribe(): Promise<unknown> {
    if (!this.subscribed) {
      const c = this.opts.connection;
      const sub = c instanceof Redis ? c.duplicate() : createRedisClient(c);
      this.subscriber = sub;
      sub.on('message', (_channel: string, id: string) => {
        const set = this.waiters.get(id);
        if (set) for (const w of set) w();
      });
      this.subscribed = sub.subscribe(this.backend.keys.doneChannel);
    }
    return this.subscribed;
  }

  async close(): Promise<void> {
    await this.subscriber?.quit().catch(() => undefined);
    await this.backend.close();
  }
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
  return status;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
