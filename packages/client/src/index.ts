/**
 * @durabull/client: start, query and wait for orchestrations from any service.
 *
 * ```ts
 * const client = new DurabullClient({ connection: 'redis://127.0.0.1:6379' });
 * const id = await client.startNew('Chaining', { input: 'Tokyo' });
 * const status = await client.waitForCompletion(id, { timeoutMs: 30_000 });
 * ```
 */
export {
  DurabullClient,
  DEFAULT_COMMAND_TIMEOUT_MS,
  type ClientOptions,
  type PurgeFilter,
  type StartOptions,
  type OrchestrationStatus,
  type ScheduleClient,
  type CreateScheduleOptions,
  type UpdateScheduleOptions,
  type SignalEntityOptions,
} from './durabull-client.js';
export {
  InstanceFinishedError,
  InvalidInstanceStateError,
  RedisUnavailableError,
  PartitionMismatchError,
  type ListQuery,
  type WorkerInfo,
  type WorkerKind,
  type Schedule,
  type SchedulePage,
  type ScheduleSpec,
  type ScheduleLink,
  type OverlapPolicy,
  type FireResult,
  type EntityStateResponse,
  type EntityMetadata,
  type EntityListPage,
} from '@durabull/redis';
export {
  InstanceAlreadyExistsError,
  InstanceNotFoundError,
  WaitTimeoutError,
  ValidationError,
  PayloadError,
  OrchestratorNotServedError,
  FunctionNotFoundError,
  ScheduleNotFoundError,
  ScheduleAlreadyExistsError,
  ActivityTimeoutError,
  ActivityCancelledError,
  EntityId,
  EntityNotFoundError,
  EntityOperationNotFoundError,
  type RuntimeStatus,
} from '@durabull/core';
