/**
 * History events of an orchestration, named after the Durable Task Framework's vocabulary so that
 * people who read Durable Functions histories can read ours.
 *
 * An execution's history is append-only. `timestamp` is epoch milliseconds (compact in msgpack).
 */
import type { FailureDetails } from '../failure.js';

export const EventType = {
  ExecutionStarted: 'ExecutionStarted',
  ExecutionCompleted: 'ExecutionCompleted',
  ExecutionTerminated: 'ExecutionTerminated',
  OrchestratorStarted: 'OrchestratorStarted',
  OrchestratorCompleted: 'OrchestratorCompleted',
  TaskScheduled: 'TaskScheduled',
  TaskCompleted: 'TaskCompleted',
  TaskFailed: 'TaskFailed',
  TimerCreated: 'TimerCreated',
  TimerFired: 'TimerFired',
  EventRaised: 'EventRaised',
  SubOrchestrationInstanceCreated: 'SubOrchestrationInstanceCreated',
  SubOrchestrationInstanceCompleted: 'SubOrchestrationInstanceCompleted',
  SubOrchestrationInstanceFailed: 'SubOrchestrationInstanceFailed',
  ExecutionSuspended: 'ExecutionSuspended',
  ExecutionResumed: 'ExecutionResumed',
  PatchApplied: 'PatchApplied',
  EntityOperationCalled: 'EntityOperationCalled',
  EntityOperationSignaled: 'EntityOperationSignaled',
  EntityLockRequested: 'EntityLockRequested',
  EntityUnlockSent: 'EntityUnlockSent',
  EntityOperationCompleted: 'EntityOperationCompleted',
  EntityOperationFailed: 'EntityOperationFailed',
  EntityLockGranted: 'EntityLockGranted',
} as const;
export type EventType = (typeof EventType)[keyof typeof EventType];

/** Terminal and non-terminal runtime statuses of an instance (Durable Functions' names). */
export const RuntimeStatus = {
  Pending: 'Pending',
  Running: 'Running',
  Completed: 'Completed',
  Failed: 'Failed',
  Terminated: 'Terminated',
  ContinuedAsNew: 'ContinuedAsNew',
  Suspended: 'Suspended',
} as const;
export type RuntimeStatus = (typeof RuntimeStatus)[keyof typeof RuntimeStatus];

export const TERMINAL_STATUSES: readonly RuntimeStatus[] = ['Completed', 'Failed', 'Terminated'];
export function isTerminalStatus(status: string | undefined): boolean {
  return status === 'Completed' || status === 'Failed' || status === 'Terminated';
}

interface EventBase {
  timestamp: number;
}

export interface ParentInstance {
  instanceId: string;
  executionId: string;
  /** The parent's sequence number of the sub-orchestration task. */
  taskId: number;
  name: string;
}

export interface ExecutionStartedEvent extends EventBase {
  type: 'ExecutionStarted';
  name: string;
  instanceId: string;
  executionId: string;
  input?: unknown;
  /** Set for a sub-orchestration. */
  parent?: ParentInstance;
  /**
   * The trace context of the span that started the execution (`startNew`, or the parent's episode
   * for a sub-orchestration), as W3C `traceparent` / `tracestate` entries: every episode of the
   * execution is a child of it, whichever process runs it. Absent when nothing was traced.
   */
  trace?: Record<string, string>;
  /** A delayed start (`startNew(name, { startAt })`): when it was to start, epoch ms (Durable Functions' `ScheduledStartTime`). */
  scheduledStartTime?: number;
}
export interface ExecutionCompletedEvent extends EventBase {
  type: 'ExecutionCompleted';
  /** `ContinuedAsNew`: the execution ended by `ctx.continueAsNew`; `result` is the next execution's input. */
  status: 'Completed' | 'Failed' | 'ContinuedAsNew';
  result?: unknown;
  failure?: FailureDetails;
}
export interface ExecutionTerminatedEvent extends EventBase {
  type: 'ExecutionTerminated';
  reason?: unknown;
}
export interface OrchestratorStartedEvent extends EventBase {
  type: 'OrchestratorStarted';
  /**
   * On the first episode of an execution whose start was not traced, when its worker traces: that
   * episode's span, which the execution's later episodes are children of.
   */
  trace?: Record<string, string>;
}
export interface OrchestratorCompletedEvent extends EventBase {
  type: 'OrchestratorCompleted';
}
export interface TaskScheduledEvent extends EventBase {
  type: 'TaskScheduled';
  taskId: number;
  name: string;
  input?: unknown;
  /** The call's start-to-close timeout (ms), when it gave one. */
  startToCloseTimeoutMs?: number;
  /** The call's heartbeat timeout (ms), when it gave one. */
  heartbeatTimeoutMs?: number;
  /** A retry of a retry policy: the task id of its first attempt. */
  retryOf?: number;
}
export interface TaskCompletedEvent extends EventBase {
  type: 'TaskCompleted';
  taskScheduledId: number;
  result?: unknown;
}
export interface TaskFailedEvent extends EventBase {
  type: 'TaskFailed';
  taskScheduledId: number;
  failure: FailureDetails;
}
export interface TimerCreatedEvent extends EventBase {
  type: 'TimerCreated';
  taskId: number;
  fireAt: number;
}
export interface TimerFiredEvent extends EventBase {
  type: 'TimerFired';
  timerId: number;
  fireAt: number;
}
export interface EventRaisedEvent extends EventBase {
  type: 'EventRaised';
  name: string;
  input?: unknown;
}

export interface SubOrchestrationInstanceCreatedEvent extends EventBase {
  type: 'SubOrchestrationInstanceCreated';
  taskId: number;
  name: string;
  instanceId: string;
  input?: unknown;
}
export interface SubOrchestrationInstanceCompletedEvent extends EventBase {
  type: 'SubOrchestrationInstanceCompleted';
  taskScheduledId: number;
  result?: unknown;
}
export interface SubOrchestrationInstanceFailedEvent extends EventBase {
  type: 'SubOrchestrationInstanceFailed';
  taskScheduledId: number;
  failure: FailureDetails;
}
export interface ExecutionSuspendedEvent extends EventBase {
  type: 'ExecutionSuspended';
  reason?: unknown;
}
export interface ExecutionResumedEvent extends EventBase {
  type: 'ExecutionResumed';
  reason?: unknown;
}
/** `ctx.patched(id)` returned true for the first time in this execution: new code path. */
export interface PatchAppliedEvent extends EventBase {
  type: 'PatchApplied';
  patchId: string;
}

/** `ctx.callEntity`: the request was sent (with the episode's commit); its result completes task `taskId`. */
export interface EntityOperationCalledEvent extends EventBase {
  type: 'EntityOperationCalled';
  taskId: number;
  /** `@name@key` */
  entityId: string;
  operation: string;
  input?: unknown;
}
/** `ctx.signalEntity`: a one-way operation was sent (no result comes back). */
export interface EntityOperationSignaledEvent extends EventBase {
  type: 'EntityOperationSignaled';
  taskId: number;
  entityId: string;
  operation: string;
  input?: unknown;
  scheduledTime?: number;
}
/** `ctx.lockEntities`: a lock request for the critical section over `entityIds` (sorted) was sent. */
export interface EntityLockRequestedEvent extends EventBase {
  type: 'EntityLockRequested';
  taskId: number;
  entityIds: string[];
}
/** A held entity was released (the lock's `release()`, or the orchestration ended holding it). */
export interface EntityUnlockSentEvent extends EventBase {
  type: 'EntityUnlockSent';
  taskId: number;
  entityId: string;
}
export interface EntityOperationCompletedEvent extends EventBase {
  type: 'EntityOperationCompleted';
  taskScheduledId: number;
  result?: unknown;
}
export interface EntityOperationFailedEvent extends EventBase {
  type: 'EntityOperationFailed';
  taskScheduledId: number;
  failure: FailureDetails;
}
/** Every entity of the critical section requested by task `taskScheduledId` is held by the orchestration. */
export interface EntityLockGrantedEvent extends EventBase {
  type: 'EntityLockGranted';
  taskScheduledId: number;
}

/** Events of entity traffic that take a sequence number (sent by the orchestration). */
export type EntityRequestEvent = EntityOperationCalledEvent | EntityOperationSignaledEvent | EntityLockRequestedEvent | EntityUnlockSentEvent;
/** Events of entity traffic that answer a request (delivered to the orchestration). */
export type EntityResponseEvent = EntityOperationCompletedEvent | EntityOperationFailedEvent | EntityLockGrantedEvent;

export type HistoryEvent =
  | EntityRequestEvent
  | EntityResponseEvent
  | ExecutionStartedEvent
  | ExecutionCompletedEvent
  | ExecutionTerminatedEvent
  | OrchestratorStartedEvent
  | OrchestratorCompletedEvent
  | TaskScheduledEvent
  | TaskCompletedEvent
  | TaskFailedEvent
  | TimerCreatedEvent
  | TimerFiredEvent
  | EventRaisedEvent
  | SubOrchestrationInstanceCreatedEvent
  | SubOrchestrationInstanceCompletedEvent
  | SubOrchestrationInstanceFailedEvent
  | ExecutionSuspendedEvent
  | ExecutionResumedEvent
  | PatchAppliedEvent;

// History-event factories: used by the runtime and by tests that build histories by hand.

export function newExecutionStartedEvent(
  name: string,
  instanceId: string,
  input?: unknown,
  opts: { executionId?: string; timestamp?: number } = {},
): ExecutionStartedEvent {
  return {
    type: 'ExecutionStarted',
    name,
    instanceId,
    executionId: opts.executionId ?? 'e0',
    input,
    timestamp: opts.timestamp ?? 0,
  };
}
export function newOrchestratorStartedEvent(timestamp = 0): OrchestratorStartedEvent {
  return { type: 'OrchestratorStarted', timestamp };
}
export function newOrchestratorCompletedEvent(timestamp = 0): OrchestratorCompletedEvent {
  return { type: 'OrchestratorCompleted', timestamp };
}
export function newTaskScheduledEvent(taskId: number, name: string, input?: unknown, timestamp = 0): TaskScheduledEvent {
  return { type: 'TaskScheduled', taskId, name, input, timestamp };
}
export function newTaskCompletedEvent(taskScheduledId: number, result?: unknown, timestamp = 0): TaskCompletedEvent {
  return { type: 'TaskCompleted', taskScheduledId, result, timestamp };
}
export function newTaskFailedEvent(taskScheduledId: number, failure: FailureDetails, timestamp = 0): TaskFailedEvent {
  return { type: 'TaskFailed', taskScheduledId, failure, timestamp };
}
export function newTimerCreatedEvent(taskId: number, fireAt: number, timestamp = 0): TimerCreatedEvent {
  return { type: 'TimerCreated', taskId, fireAt, timestamp };
}
export function newTimerFiredEvent(timerId: number, fireAt: number, timestamp = 0): TimerFiredEvent {
  return { type: 'TimerFired', timerId, fireAt, timestamp };
}
export function newEventRaisedEvent(name: string, input?: unknown, timestamp = 0): EventRaisedEvent {
  return { type: 'EventRaised', name, input, timestamp };
}
export function newExecutionTerminatedEvent(reason?: unknown, timestamp = 0): ExecutionTerminatedEvent {
  return { type: 'ExecutionTerminated', reason, timestamp };
}
export function newSubOrchestrationCreatedEvent(taskId: number, name: string, instanceId: string, input?: unknown, timestamp = 0): SubOrchestrationInstanceCreatedEvent {
  return { type: 'SubOrchestrationInstanceCreated', taskId, name, instanceId, input, timestamp };
}
export function newSubOrchestrationCompletedEvent(taskScheduledId: number, result?: unknown, timestamp = 0): SubOrchestrationInstanceCompletedEvent {
  return { type: 'SubOrchestrationInstanceCompleted', taskScheduledId, result, timestamp };
}
export function newSubOrchestrationFailedEvent(taskScheduledId: number, failure: FailureDetails, timestamp = 0): SubOrchestrationInstanceFailedEvent {
  return { type: 'SubOrchestrationInstanceFailed', taskScheduledId, failure, timestamp };
}
export function newPatchAppliedEvent(patchId: string, timestamp = 0): PatchAppliedEvent {
  return { type: 'PatchApplied', patchId, timestamp };
}
