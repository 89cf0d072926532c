import type { EntityId } from '../entities/entity-id.js';
import type { OperationArgs, OperationResult, TypedEntityId } from '../entities/entity.js';
import type { ActivityDefinition, ActivityOptions, OrchestratorDefinition } from '../registry.js';
import type { RetryOptions } from '../tasks/retryable-task.js';
import type { Task, TimerTask } from '../tasks/task.js';

/**
 * The API orchestrator code sees. Everything that could differ between replays (time, ids, I/O)
 * comes from here, never from the platform.
 */
export interface OrchestrationContext {
  /** The instance's id. */
  readonly instanceId: string;
  /** The id of the current execution of the instance. */
  readonly executionId: string;
  /** The orchestrator's registered name. */
  readonly name: string;
  /** The parent's instance id when this instance is a sub-orchestration; undefined otherwise. */
  readonly parentInstanceId?: string | undefined;
  /** True while the code is re-executing steps that history already records. Use it to avoid repeating logs. */
  readonly isReplaying: boolean;
  /** The time of the current episode, from history: the same on every replay. */
  readonly currentUtcDateTime: Date;

  /**
   * Schedules an activity, by definition (typed input and output) or by name; the task completes
   * with its result or fails with a TaskFailedError. `options` sets this call's timeouts
   * (`startToCloseTimeoutMs`, `heartbeatTimeoutMs`), over those the activity was registered with.
   */
  callActivity<TIn, TOut>(activity: ActivityDefinition<TIn, TOut>, input: TIn, options?: ActivityOptions): Task<TOut>;
  callActivity<TOut = unknown>(name: string, input?: unknown, options?: ActivityOptions): Task<TOut>;
  /**
   * Like callActivity, retried by the policy; the task fails with the last error once it gives up.
   * A timed-out attempt (`ActivityTimeoutError`) is retried like any failure; each attempt reads
   * the heartbeat details of the one before (`ctx.lastHeartbeatDetails` in the activity).
   */
  callActivityWithRetry<TIn, TOut>(activity: ActivityDefinition<TIn, TOut>, retryOptions: RetryOptions, input: TIn, options?: ActivityOptions): Task<TOut>;
  callActivityWithRetry<TOut = unknown>(name: string, retryOptions: RetryOptions, input?: unknown, options?: ActivityOptions): Task<TOut>;
  /**
   * Starts orchestrator `name` as a child instance and completes with its output (or fails with its
   * error). `instanceId` defaults to a deterministic `<parent id>-<execution>-<seq>`.
   */
  callSubOrchestrator<TIn, TOut>(orchestrator: OrchestratorDefinition<TIn, TOut>, input: TIn, instanceId?: string): Task<TOut>;
  callSubOrchestrator<TOut = unknown>(name: string, input?: unknown, instanceId?: string): Task<TOut>;
  /** Like callSubOrchestrator, retried by the policy. */
  callSubOrchestratorWithRetry<TIn, TOut>(
    orchestrator: OrchestratorDefinition<TIn, TOut>,
    retryOptions: RetryOptions,
    input: TIn,
    instanceId?: string,
  ): Task<TOut>;
  callSubOrchestratorWithRetry<TOut = unknown>(name: string, retryOptions: RetryOptions, input?: unknown, instanceId?: string): Task<TOut>;
  /**
   * Ends this execution and starts a new one of the same instance with `input` and a fresh history
   * (eternal orchestrations). Return right after calling it. Raised events not yet consumed are
   * carried over unless `preserveUnprocessedEvents` is false.
   */
  continueAsNew(input?: unknown, options?: { preserveUnprocessedEvents?: boolean }): void;
  /**
   * Versioning: true when this execution runs the code path guarded by `patchId`. New executions
   * (and the part of a running one not yet in history) take the new path and record it; replays of
   * history written before the patch take the old path.
   */
  patched(patchId: string): boolean;
  /** A durable timer that fires at `fireAt` (compute it from `currentUtcDateTime`). */
  createTimer(fireAt: Date): TimerTask;
  /** Waits for an external event raised with `client.raiseEvent`; events raised before the wait are buffered in order. */
  waitForExternalEvent<T = unknown>(name: string): Task<T>;
  /** Completes when all tasks complete, with their results in order; fails with the first failure. */
  all<T>(tasks: readonly Task<T>[]): Task<T[]>;
  /**
   * Completes when the first task completes; its result is that task (`yield ctx.any([a, b])`
   * returns `a` or `b`, as in Durable Functions). In an async orchestrator `await` unwraps the
   * winner (tasks are thenables): `await ctx.any([a, b])` gives the winner's result, or throws its
   * error. Tell the winner with `a.isCompleted`, not with `===`.
   */
  any(tasks: readonly Task<unknown>[]): Task<Task<unknown>>;
  /** Sets a JSON-like value that clients see in `getStatus().customStatus`. */
  setCustomStatus(value: unknown): void;
  /** A UUID that is the same on every replay of this step. */
  newGuid(): string;

  /**
   * Calls an operation of an entity; the task completes with its result or fails with
   * EntityOperationFailedError (the operation threw, or the entity or operation is unknown).
   * Inside a critical section only the entities it holds may be called (else EntityLockError).
   */
  callEntity<TOps, K extends keyof TOps & string>(entity: TypedEntityId<TOps>, operationName: K, ...input: OperationArgs<TOps[K]>): Task<OperationResult<TOps[K]>>;
  callEntity<TOut = unknown>(entity: EntityRef, operationName: string, input?: unknown): Task<TOut>;
  /** Sends a one-way operation to an entity (with `scheduledTime`: delivered then). */
  signalEntity<TOps, K extends keyof TOps & string>(entity: TypedEntityId<TOps>, operationName: K, ...args: [...OperationArgs<TOps[K]>, options?: { scheduledTime?: Date }]): void;
  signalEntity(entity: EntityRef, operationName: string, input?: unknown, options?: { scheduledTime?: Date }): void;
  /**
   * Opens a critical section: the task completes once the orchestration holds every entity given
   * (taken in the order of their ids, so two orchestrations cannot deadlock). Until `release()`
   * (or the end of the orchestration) other callers of those entities wait, and this orchestration
   * may call only them.
   */
  lockEntities(...entities: EntityRef[]): Task<EntityLock>;
  /** Whether the code is inside a critical section, and the entities it holds. */
  isInCriticalSection(): { inSection: boolean; lockedEntities: string[] };
}

/** An entity given to the context: an EntityId (or typed id), `{ name, key }` or `'@name@key'`. */
export type EntityRef = EntityId | { name: string; key: string } | string;

/** A held critical section. */
export interface EntityLock {
  /** The held entities (`@name@key`), sorted. */
  readonly entities: readonly string[];
  /** Releases every held entity (sends the unlocks with the episode's commit). */
  release(): void;
}
