/**
 * @durabull/durable-functions: the `durable-functions` package's API (v3, the Node.js v4
 * programming model) on durabull. Use it in place of `durable-functions` with an npm alias,
 * `"durable-functions": "npm:@durabull/durable-functions@<version>"`, or by changing the import:
 *
 * ```ts
 * import * as df from 'durable-functions';
 * df.app.orchestration('hello', function* (context) {
 *   return yield context.df.callActivity('sayHello', context.df.getInput());
 * });
 * df.app.activity('sayHello', { handler: (name: string) => `Hello ${name}` });
 * export const registry = df.registry; // what `durabull worker --module` and DurabullWorker run
 * ```
 *
 * What differs from v3, and what is not supported: docs/durable-functions.md.
 */
import type { Registry } from '@durabull/core';
import { addHttpBuiltins } from './call-http.js';
import { shared } from './state.js';
import './http-host.js';

export * as app from './app.js';
export * as input from './input.js';
export * as trigger from './trigger.js';
export { outputBinding, type ActivityHandler, type ActivityOptions, type EntityHandler, type EntityOptions, type EntityContext, type DurableEntityContext, type OrchestrationOptions, type RegisteredActivity, type RegisteredOrchestration, type HttpDurableClientOptions } from './app.js';
export {
  DurableClient,
  DurableOrchestrationStatus,
  OrchestrationRuntimeStatus,
  PurgeHistoryResult,
  getClient,
  type DurableClientOptions,
  type GetStatusOptions,
  type HttpManagementPayload,
  type OrchestrationFilter,
  type StartNewOptions,
  type TaskHubOptions,
  type WaitForCompletionOptions,
} from './client.js';
export { DurableHttpRequest, DurableHttpResponse, ManagedIdentityTokenSource, type CallHttpOptions, type TokenSource, HTTP_ACTIVITY, HTTP_POLLING_ORCHESTRATOR } from './call-http.js';
export { EntityId, EntityStateResponse } from './entity-id.js';
export { AggregatedError, DummyEntityContext, DummyOrchestrationContext, DurableError, NotSupportedError } from './errors.js';
export { httpFunctions, type HttpFunctionsOptions } from './http-host.js';
export { DurableOrchestrationContext, type OrchestrationContext, type OrchestrationHandler } from './orchestration.js';
export { RetryOptions } from './retry-options.js';
export { closeClient, configure, type DurableFunctionsOptions, type OutputBindingHandler } from './state.js';
export type { Task, TimerTask, RegisteredActivityTask, RegisteredOrchestrationTask } from './tasks.js';
export type { DurableClientInput } from './input.js';

addHttpBuiltins(shared().registry);

/**
 * The durabull Registry that `df.app.orchestration`, `df.app.activity` and `df.app.entity` fill (with
 * the built-in functions of `callHttp`): give it to a worker, `new DurabullWorker({ registry })`, or
 * export it from the module of `durabull worker --module` (`export { registry } from 'durable-functions'`).
 * Register every function before the worker starts: a worker announces the names it runs when it starts.
 */
export const registry: Registry = shared().registry;
