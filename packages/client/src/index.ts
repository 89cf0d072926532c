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
  type SignalEntityOptions,
} from './durabull-client.js';
export { type EntityStateResponse, type EntityMetadata, type EntityListPage } from '@durabull/redis';
export { InstanceFinishedError, InvalidInstanceStateError, RedisUnavailableError, type ListQuery, type WorkerInfo, type WorkerKind } from '@durabull/redis';
export {
  InstanceAlreadyExistsError,
  InstanceNotFoundError,
  WaitTimeoutError,
  ValidationError,
  PayloadError,
  OrchestratorNotServedError,
  FunctionNotFoundError,
  EntityId,
  EntityNotFoundError,
  EntityOperationNotFoundError,
  type RuntimeStatus,
} from '@durabull/core';
