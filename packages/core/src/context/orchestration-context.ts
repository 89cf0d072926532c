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
  /** True while the code is re-executing steps that history already records. Use it to avoid repeating logs. */
  readonly isReplaying: boolean;
  /** The time of the current episode, from history: the same on every replay. */
  readonly currentUtcDateTime: Date;

  /** Schedules an activity; the task completes with its result or fails with a TaskFailedError. */
  callActivity<TOut = unknown>(name: string, input?: unknown): Task<TOut>;
  /** A durable timer that fires at `fireAt` (compute it from `currentUtcDateTime`). */
  createTimer(fireAt: Date): TimerTask;
  /** Waits for an external event raised with `client.raiseEvent`; events raised before the wait are buffered in order. */
  waitForExternalEvent<T = unknown>(name: string): Task<T>;
  /** Completes when all tasks complete, with their results in order; fails with the first failure. */
  all<T>(tasks: readonly Task<T>[]): Task<T[]>;
  /** Completes when the first task completes; its result is that task. */
  any(tasks: readonly Task<unknown>[]): Task<Task<unknown>>;
  /** Sets a JSON-like value that clients see in `getStatus().customStatus`. */
  setCustomStatus(value: unknown): void;
  /** A UUID that is the same on every replay of this step. */
  newGuid(): string;
}
