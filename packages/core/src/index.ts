/**
 * @durabull/core: the pure replay engine of durabull.
 *
 * ```ts
 * const registry = new Registry()
 *   .addActivity('Hello', async (name: string) => `Hello ${name}!`)
 *   .addOrchestrator('Greet', function* (ctx, name: string) {
 *     return yield ctx.callActivity('Hello', name);
 *   });
 * const result = await executeOrchestration(registry, pastEvents, newEvents);
 * ```
 */

// History
export * from './history/events.js';
export { type FailureDetails, toFailureDetails, isFailureDetails } from './failure.js';

// Actions
export type {
  OrchestratorAction,
  ScheduleTaskAction,
  CreateTimerAction,
  CancelTimerAction,
  CreateSubOrchestrationAction,
  CompleteOrchestrationAction,
  SendEntityMessageAction,
  WaitSpec,
} from './actions.js';

// Orchestration API
export type { OrchestrationContext, EntityLock, EntityRef } from './context/orchestration-context.js';
export { Task, CompletableTask, ActivityTask, TimerTask, ExternalEventTask, SubOrchestrationTask, EntityCallTask, EntityLockTask, type TaskKind } from './tasks/task.js';

// Entities
export { EntityId, assertEntityName, assertEntityKey, assertOperationName, toEntityId } from './entities/entity-id.js';
export {
  EntityBatch,
  TypedEntityId,
  defineEntity,
  type EntityContext,
  type TypedEntityContext,
  type EntityFunction,
  type EntityOperation,
  type EntityOperations,
  type EntityDefinition,
  type EntitySignal,
  type EntityOperationOutcome,
  type EntityPayloadCheck,
  type EntityResolver,
  type OperationArgs,
  type OperationResult,
} from './entities/entity.js';
export { RetryableTask, type RetryOptions } from './tasks/retryable-task.js';
export { WhenAllTask, WhenAnyTask } from './tasks/composite-task.js';
export {
  Registry,
  assertFunctionName,
  assertInstanceId,
  defineActivity,
  defineOrchestrator,
  type ActivityDefinition,
  type OrchestratorDefinition,
  type InputOf,
  type OutputOf,
  type OrchestratorFunction,
  type ActivityFunction,
  type ActivityContext,
  type ActivityOptions,
} from './registry.js';

// Executor
export {
  executeOrchestration,
  HistoryError,
  OrchestrationSession,
  type ExecutionResult,
  type SessionOptions,
  entityActionEvent,
} from './executor/orchestration-executor.js';
export type { PayloadCheck, CheckedPayloads } from './context/runtime-orchestration-context.js';

// Replay check (before a deploy: do the running instances replay on the new code?)
export {
  replayHistories,
  ReplayChecker,
  type ReplayHistory,
  type ReplayReport,
  type ReplayDivergence,
  type ReplayDivergenceKind,
  type PatchUsage,
  type ReplayRegistry,
} from './replay-check.js';

// Argument checks
export {
  describeValue,
  invalidArgument,
  assertString,
  assertOptionalString,
  assertOptions,
  assertOptionalBoolean,
  assertOptionalInteger,
  assertOptionalNumber,
  assertFunction,
  assertDate,
  assertEventName,
  assertActivityOptions,
  assertScheduleId,
  parseTimeArgument,
  isInstanceId,
  functionNameOf,
} from './validation.js';

// Errors
export {
  DurabullError,
  NonDeterminismError,
  type NonDeterminismStep,
  type NonDeterminismDetails,
  TaskFailedError,
  NonRetriableError,
  FunctionNotFoundError,
  NonDurableAwaitError,
  ValidationError,
  PayloadError,
  InstanceAlreadyExistsError,
  InstanceNotFoundError,
  WaitTimeoutError,
  StaleEpisodeError,
  OrchestrationFailedError,
  MalformedJobError,
  PoisonJobError,
  HistoryLimitError,
  RedisAuthError,
  OrchestratorNotServedError,
  ActivityTimeoutError,
  ActivityCancelledError,
  type ActivityTimeoutType,
  ScheduleNotFoundError,
  ScheduleAlreadyExistsError,
  EntityNotFoundError,
  EntityOperationNotFoundError,
  EntityOperationFailedError,
  EntityLockError,
} from './errors.js';
