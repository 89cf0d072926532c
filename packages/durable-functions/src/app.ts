/**
 * `df.app`: registering orchestrations, activities and entities into the durabull Registry that a
 * worker runs (`df.registry`), and `df.app.client.*`: HTTP functions with a durable client.
 */
import { randomUUID } from 'node:crypto';
import { type FunctionInput, type FunctionOutput, type HttpRequest, type HttpResponse, type HttpResponseInit, type InvocationContext, app as azureApp } from '@azure/functions';
import { AzureInvocationContext } from './azure.js';
import { type ActivityContext, type EntityContext as CoreEntityContext, ValidationError, assertFunction, describeValue } from '@durabull/core';
import { type DurableClient, getClient } from './client.js';
import { EntityId, toCoreEntityId } from './entity-id.js';
import { NotSupportedError } from './errors.js';
import { durableClient } from './input.js';
import { type OrchestrationHandler, orchestratorOf } from './orchestration.js';
import { type OutputBindingHandler, logHandler, shared } from './state.js';
import { RegisteredActivityTask, RegisteredOrchestrationTask, type Task } from './tasks.js';

/** Options of `df.app.orchestration(name, options)`: the handler (Azure's function options are accepted and unused). */
export interface OrchestrationOptions {
  handler: OrchestrationHandler;
  extraInputs?: FunctionInput[];
  extraOutputs?: FunctionOutput[];
}

/** An activity's function: `(input, context)`, with Azure's InvocationContext. */
export type ActivityHandler = (input: any, context: InvocationContext) => unknown;

/** Options of `df.app.activity(name, options)`. */
export interface ActivityOptions {
  handler: ActivityHandler;
  /** Not supported (durabull runs no Azure input bindings): a non-empty list throws NotSupportedError. */
  extraInputs?: FunctionInput[];
  /** Output bindings: values the activity sets with `context.extraOutputs.set(output, value)` go to the handler of the output's type ({@link outputBinding}). */
  extraOutputs?: FunctionOutput[];
}

/** The durable API of an entity function, as v3 has it at `context.df`. */
export interface DurableEntityContext<T> {
  readonly entityName: string;
  readonly entityKey: string;
  readonly entityId: EntityId;
  readonly operationName: string | undefined;
  /** True when the entity had no state before this operation. */
  readonly isNewlyConstructed: boolean;
  getState(initializer?: () => T): T | undefined;
  setState(state: T): void;
  getInput<TInput = T>(): TInput | undefined;
  return<TResult = T>(result: TResult): void;
  destructOnExit(): void;
  signalEntity(entity: EntityId, operationName: string, operationInput?: unknown): void;
}

/** What an entity function gets: Azure's InvocationContext with the entity API at `df`. */
export interface EntityContext<T> extends InvocationContext {
  df: DurableEntityContext<T>;
}
export type EntityHandler<T> = (context: EntityContext<T>) => void | Promise<void>;
export interface EntityOptions<T> {
  handler: EntityHandler<T>;
  extraInputs?: FunctionInput[];
  extraOutputs?: FunctionOutput[];
}

/** What `df.app.orchestration` returns: `yield child(input, instanceId)` calls it as a sub-orchestration. */
export type RegisteredOrchestration = (input?: unknown, instanceId?: string) => RegisteredOrchestrationTask;
/** What `df.app.activity` returns: `yield hello(input)` calls the activity. */
export type RegisteredActivity = (input?: unknown) => RegisteredActivityTask;

function optionsOf<H>(where: string, name: string, handlerOrOptions: unknown): { handler: H; extraInputs?: FunctionInput[]; extraOutputs?: FunctionOutput[] } {
  const options = typeof handlerOrOptions === 'function' ? { handler: handlerOrOptions } : handlerOrOptions;
  if (typeof options !== 'object' || options === null) throw new ValidationError(`${where}('${name}'): expected a handler function or an options object with one, got ${describeValue(handlerOrOptions)}`);
  assertFunction(`${where}('${name}')`, 'handler', (options as { handler?: unknown }).handler);
  return options as { handler: H; extraInputs?: FunctionInput[]; extraOutputs?: FunctionOutput[] };
}

/** Refuses bindings durabull does not run. */
function checkBindings(where: string, name: string, options: { extraInputs?: FunctionInput[]; extraOutputs?: FunctionOutput[]; return?: unknown }, allowOutputs: boolean): void {
  const inputs = (options.extraInputs ?? []).filter((i) => i.type !== 'durableClient' && i.type !== 'orchestrationClient');
  if (inputs.length > 0) {
    throw new NotSupportedError(
      `${inputs[0]!.type} input binding`,
      `${where}('${name}'): extraInputs of type ${inputs.map((i) => `'${i.type}'`).join(', ')} are not supported: durabull runs no Azure Functions input bindings; read the data in the function instead`,
    );
  }
  if (!allowOutputs && (options.extraOutputs ?? []).length > 0) {
    throw new NotSupportedError('output binding', `${where}('${name}'): extraOutputs are not supported here (only activities and HTTP functions hand outputs to df.outputBinding handlers)`);
  }
  if (options.return !== undefined) {
    throw new NotSupportedError('return binding', `${where}('${name}'): a return output binding is not supported: the function's value is its result`);
  }
}

/** Registers an orchestrator (a generator function of `context`). Returns a function that calls it as a sub-orchestration. */
export function orchestration(functionName: string, handlerOrOptions: OrchestrationHandler | OrchestrationOptions): RegisteredOrchestration {
  const options = optionsOf<OrchestrationHandler>('df.app.orchestration', functionName, handlerOrOptions);
  checkBindings('df.app.orchestration', functionName, options, false);
  shared().registry.addOrchestrator(functionName, orchestratorOf(functionName, options.handler));
  return (input?: unknown, instanceId?: string) => new RegisteredOrchestrationTask(functionName, input, instanceId);
}

/** Registers an activity. Returns a function that calls it from an orchestrator (`yield hello(input)`). */
export function activity(functionName: string, options: ActivityOptions): RegisteredActivity {
  const o = optionsOf<ActivityHandler>('df.app.activity', functionName, options);
  checkBindings('df.app.activity', functionName, o, true);
  const outputs = o.extraOutputs ?? [];
  shared().registry.addActivity(functionName, async (input: unknown, actx: ActivityContext) => {
    const context = new AzureInvocationContext({
      invocationId: randomUUID(),
      functionName,
      logHandler: logHandler({ functionName, instanceId: actx.instanceId, taskId: actx.taskId }),
      options: { trigger: { type: 'activityTrigger', name: 'input' }, extraInputs: o.extraInputs ?? [], extraOutputs: outputs },
      retryContext: { retryCount: actx.attempt - 1, maxRetryCount: -1 },
    });
    const result = await o.handler(input, context);
    await deliverOutputs(`Activity '${functionName}'`, outputs, context, input);
    return result;
  });
  return (input?: unknown) => new RegisteredActivityTask(functionName, input);
}

/** Registers an entity function (`context.df.operationName`, `getState`, `setState`, `return`...). Its name is case-insensitive (stored lower-case). */
export function entity<T = unknown>(functionName: string, handlerOrOptions: EntityHandler<T> | EntityOptions<T>): void {
  const o = optionsOf<EntityHandler<T>>('df.app.entity', functionName, handlerOrOptions);
  checkBindings('df.app.entity', functionName, o, false);
  const name = functionName.toLowerCase();
  shared().registry.addEntity(name, async (ectx: CoreEntityContext<T>) => {
    const isNew = !ectx.hasState;
    const context = new AzureInvocationContext({
      invocationId: randomUUID(),
      functionName,
      logHandler: logHandler({ functionName, entityId: ectx.entityId.toString(), operationName: ectx.operationName }),
      options: { trigger: { type: 'entityTrigger', name: 'context' }, extraInputs: [], extraOutputs: [] },
    }) as EntityContext<T>;
    context.df = {
      entityName: ectx.entityName,
      entityKey: ectx.entityKey,
      entityId: new EntityId(ectx.entityName, ectx.entityKey),
      operationName: ectx.operationName,
      isNewlyConstructed: isNew,
      getState: (initializer) => ectx.getState(initializer),
      setState: (state) => ectx.setState(state),
      getInput: <TInput>() => ectx.getInput<TInput>(),
      return: (result) => ectx.return(result),
      destructOnExit: () => ectx.destructOnExit(),
      signalEntity: (target, operationName, operationInput) => ectx.signalEntity(toCoreEntityId(target, 'context.df.signalEntity'), operationName, operationInput),
    };
    // v3: only context.df.return gives the caller a result, not the function's own value.
    await o.handler(context);
  });
}

/**
 * Handles the values set on `context.extraOutputs` for outputs of `type` (Azure's binding type:
 * `'blob'`, `'queue'`, `'twilioSms'`, ...): durabull runs no Azure bindings, so an application
 * that keeps them says what they do. Called once per output set, after the function returned,
 * with the output's binding expressions resolved (`{field}` of the trigger data, `%Setting%`);
 * an output set without a handler fails the function with NotSupportedError.
 */
export function outputBinding(type: string, handler: OutputBindingHandler): void {
  if (typeof type !== 'string' || type === '') throw new ValidationError(`df.outputBinding: type must be a binding type ('blob', 'twilioSms', ...), got ${describeValue(type)}`);
  assertFunction(`df.outputBinding('${type}')`, 'handler', handler);
  shared().outputBindings.set(type, handler);
}

/**
 * An output with Azure's binding expressions resolved: `{name}` from the function's trigger data
 * (an activity's input object, an HTTP function's route parameters and query) and `%Setting%` from
 * the environment, in its string properties (`path: 'backups/{backupPath}'`).
 */
export function resolveBindingExpressions(output: FunctionOutput, data: unknown): FunctionOutput {
  const fields = typeof data === 'object' && data !== null ? (data as Record<string, unknown>) : {};
  const resolved: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(output)) {
    resolved[k] =
      typeof v !== 'string' || k === 'type' || k === 'name'
        ? v
        : v
            .replace(/%([A-Za-z0-9_.:-]+)%/g, (m, setting: string) => process.env[setting] ?? m)
            .replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (m, field: string) => (fields[field] === undefined || fields[field] === null ? m : String(fields[field])));
  }
  return resolved as FunctionOutput;
}

/** Hands the outputs the function set to their handlers (binding expressions resolved from `data`). */
export async function deliverOutputs(what: string, outputs: readonly FunctionOutput[], context: InvocationContext, data?: unknown): Promise<void> {
  for (const output of outputs) {
    const value = context.extraOutputs.get(output);
    if (value === undefined) continue;
    const handler = shared().outputBindings.get(output.type);
    if (!handler) {
      throw new NotSupportedError(
        `${output.type} output binding`,
        `${what} set its '${output.type}' output binding '${output.name}', which durabull does not run: handle it with df.outputBinding('${output.type}', (value, output, context) => ...) or write to the service from the function`,
      );
    }
    await handler(value, resolveBindingExpressions(output, data), context);
  }
}

/** An HTTP function with a durable client (v3's `df.app.client.http`): `handler(request, client, context)`. */
export interface HttpDurableClientOptions {
  route?: string;
  methods?: ('GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD' | 'OPTIONS' | 'TRACE' | 'CONNECT')[];
  authLevel?: 'anonymous' | 'function' | 'admin';
  extraInputs?: FunctionInput[];
  extraOutputs?: FunctionOutput[];
  handler: (request: HttpRequest, client: DurableClient, context: InvocationContext) => HttpResponseInit | HttpResponse | Promise<HttpResponseInit | HttpResponse>;
}

function unsupportedTrigger(kind: string): (name: string) => never {
  return (name: string) => {
    throw new NotSupportedError(
      `${kind} trigger`,
      `df.app.client.${kind}('${name}'): durabull serves only HTTP functions (df.app.client.http, app.http); start orchestrations from ${kind} events with a durable client of your own (df.getClient()), or on a timer with client.schedules`,
    );
  };
}

/** `df.app.client`: functions that receive a durable client. Only `http` is served; the other triggers throw NotSupportedError. */
export const client = {
  http(functionName: string, options: HttpDurableClientOptions): void {
    const o = optionsOf<HttpDurableClientOptions['handler']>('df.app.client.http', functionName, options);
    const { handler, ...rest } = options;
    azureApp.http(functionName, {
      ...rest,
      extraInputs: [durableClient(), ...(o.extraInputs ?? [])],
      handler: (request: HttpRequest, context: InvocationContext) => handler(request, getClient(context), context),
    });
  },
  timer: unsupportedTrigger('timer'),
  storageBlob: unsupportedTrigger('storageBlob'),
  storageQueue: unsupportedTrigger('storageQueue'),
  serviceBusQueue: unsupportedTrigger('serviceBusQueue'),
  serviceBusTopic: unsupportedTrigger('serviceBusTopic'),
  eventHub: unsupportedTrigger('eventHub'),
  eventGrid: unsupportedTrigger('eventGrid'),
  cosmosDB: unsupportedTrigger('cosmosDB'),
  generic: unsupportedTrigger('generic'),
};

export type { Task };
