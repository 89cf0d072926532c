/**
 * Actions: what an episode of orchestrator code asks the runtime to do. The backend turns them
 * into queued work; the matching history events make them part of the replay.
 */
import type { FailureDetails } from './failure.js';

export interface ScheduleTaskAction {
  type: 'ScheduleTask';
  id: number;
  name: string;
  input?: unknown;
  /** The call's start-to-close timeout (ms), when it gave one. */
  startToCloseTimeoutMs?: number;
  /** The call's heartbeat timeout (ms), when it gave one. */
  heartbeatTimeoutMs?: number;
  /** A retry of a retry policy: the task id of its first attempt (heartbeat details are kept per first attempt). */
  retryOf?: number;
}
export interface CreateTimerAction {
  type: 'CreateTimer';
  id: number;
  fireAt: number;
}
/** A timer the code cancelled: the backend forgets it and removes its delayed job. */
export interface CancelTimerAction {
  type: 'CancelTimer';
  id: number;
}
export interface CreateSubOrchestrationAction {
  type: 'CreateSubOrchestration';
  id: number;
  name: string;
  instanceId: string;
  input?: unknown;
}
export interface CompleteOrchestrationAction {
  type: 'CompleteOrchestration';
  status: 'Completed' | 'Failed' | 'Terminated' | 'ContinuedAsNew';
  /** The output; for ContinuedAsNew, the next execution's input. */
  result?: unknown;
  failure?: FailureDetails;
  /** ContinuedAsNew: raised events not yet consumed, to deliver to the next execution in order. */
  carryOverEvents?: { name: string; input: unknown }[];
}
/**
 * A message to an entity, sent with the episode's commit: an operation call (its result completes
 * task `id`), a one-way signal, a lock request for a critical section (granted to task `id`), or
 * the release of one held entity.
 */
export interface SendEntityMessageAction {
  type: 'SendEntityMessage';
  id: number;
  kind: 'call' | 'signal' | 'lock' | 'unlock';
  /** The target entity (`@name@key`); for a lock request, the first of `lockSet`. */
  entity: string;
  operation?: string;
  input?: unknown;
  /** A signal's delivery time (ms). */
  scheduledTime?: number;
  /** A lock request: every entity of the critical section, sorted (the order locks are taken in). */
  lockSet?: string[];
}
export type OrchestratorAction =
  | SendEntityMessageAction
  | ScheduleTaskAction
  | CreateTimerAction
  | CancelTimerAction
  | CreateSubOrchestrationAction
  | CompleteOrchestrationAction;

/**
 * What the code is blocked on when an episode ends, so that the backend wakes the orchestrator only
 * when it can make progress (the fan-in counter):
 * - `all`: every task in `ids` must complete (a failure wakes at once);
 * - `any`: the first of `ids` to complete wakes;
 * - `unknown`: the runtime cannot tell; wake on every event (correct first).
 * `coversAllOpen` says that `ids` is exactly the set of open sequenced tasks, so the backend need not
 * store the id set.
 */
export type WaitSpec =
  | { kind: 'all' | 'any'; ids: number[]; coversAllOpen: boolean }
  | { kind: 'unknown' };
