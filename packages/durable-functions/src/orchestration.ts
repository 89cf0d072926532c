/**
 * Orchestrators in v3's style: `function* (context) { yield context.df.callActivity(...) }`. The
 * handler runs inside a durabull generator orchestrator that schedules each task the handler yields
 * and yields its durabull task to the engine: replay, histories and everything else are
 * durabull's.
 */
import { randomUUID } from 'node:crypto';
import type { InvocationContext } from '@azure/functions';
import { AzureInvocationContext } from './azure.js';
import {
  type OrchestrationContext as CoreContext,
  type OrchestratorFunction,
  NonDurableAwaitError,
  assertDate,
  assertEventName,
  assertFunctionName,
  assertInstanceId,
  assertOperationName,
} from '@durabull/core';
import { CallHttpTask, type CallHttpOptions, httpRequestOf } from './call-http.js';
import { toCoreEntityId } from './entity-id.js';
import { NotSupportedError } from './errors.js';
import { deterministicGuid } from './guid.js';
import { type RetryOptions, assertRetryOptions } from './retry-options.js';
import { logHandler } from './state.js';
import {
  ActivityTask,
  DFTask,
  DFTimerTask,
  EntityCallTask,
  ExternalEventTask,
  RetryActivityTask,
  RetrySubOrchestratorTask,
  Scheduler,
  SubOrchestratorTask,
  type Task,
  type TimerTask,
  WhenAllTask,
  WhenAnyTask,
} from './tasks.js';

/** What an orchestrator gets: Azure's InvocationContext (`log`, `info`, ...) with the durable API at `df`. */
export interface OrchestrationContext extends InvocationContext {
  df: DurableOrchestrationContext;
}

/** An orchestrator: a generator function of the context. */
export type OrchestrationHandler = (context: OrchestrationContext) => Generator<Task, unknown, any>;

/** `context.df`: the durable API of an orchestrator, as v3 has it. */
export class DurableOrchestrationContext {
  readonly #ctx: CoreContext;
  readonly #scheduler: Scheduler;
  readonly #input: unknown;
  #customStatus: unknown;
  #guids = 0;

  constructor(ctx: CoreContext, input: unknown) {
    this.#ctx = ctx;
    this.#scheduler = new Scheduler(ctx);
    this.#input = input;
  }

  /** @internal */
  get scheduler(): Scheduler {
    return this.#scheduler;
  }

  /** The instance's id. */
  get instanceId(): string {
    return this.#ctx.instanceId;
  }
  /** The parent's instance id in a sub-orchestration; undefined otherwise. */
  get parentInstanceId(): string | undefined {
    return this.#ctx.parentInstanceId;
  }
  /** True while the code re-runs steps that history already records. */
  get isReplaying(): boolean {
    return this.#ctx.isReplaying;
  }
  /** The time of the current episode, from history: the same on every replay. */
  get currentUtcDateTime(): Date {
    return this.#ctx.currentUtcDateTime;
  }
  /** The last value given to setCustomStatus in this execution. */
  get customStatus(): unknown {
    return this.#customStatus;
  }

  /** Fan-out/fan-in: `yield context.df.Task.all(tasks)` (the results, in order) and `Task.any(tasks)` (the first task to complete). */
  readonly Task = {
    all: (tasks: Task[]): Task => new WhenAllTask(tasks),
    any: (tasks: Task[]): Task => new WhenAnyTask(tasks),
  };

  /** The orchestration's input. */
  getInput<T = unknown>(): T {
    return this.#input as T;
  }

  callActivity(name: string, input?: unknown): Task {
    assertFunctionName('activity', name, 'context.df.callActivity');
    return new ActivityTask(name, input);
  }

  callActivityWithRetry(name: string, retryOptions: RetryOptions, input?: unknown): Task {
    assertRetryOptions('context.df.callActivityWithRetry', retryOptions);
    assertFunctionName('activity', name, 'context.df.callActivityWithRetry');
    return new RetryActivityTask(name, retryOptions, input);
  }

  /**
   * Starts orchestrator `name` as a child. Without `instanceId` the child's id is
   * `<parent id>-<execution id>-<sequence number>` (v3: `<parent id>:<n>`; `:` is not allowed in
   * durabull ids).
   */
  callSubOrchestrator(name: string, input?: unknown, instanceId?: string): Task {
    assertFunctionName('orchestrator', name, 'context.df.callSubOrchestrator');
    if (instanceId !== undefined) assertInstanceId(instanceId, 'context.df.callSubOrchestrator');
    return new SubOrchestratorTask(name, input, instanceId);
  }

  callSubOrchestratorWithRetry(name: string, retryOptions: RetryOptions, input?: unknown, instanceId?: string): Task {
    assertRetryOptions('context.df.callSubOrchestratorWithRetry', retryOptions);
    assertFunctionName('orchestrator', name, 'context.df.callSubOrchestratorWithRetry');
    if (instanceId !== undefined) assertInstanceId(instanceId, 'context.df.callSubOrchestratorWithRetry');
    return new RetrySubOrchestratorTask(name, retryOptions, input, instanceId);
  }

  /** A durable HTTP call (an activity; polling a 202's Location on durable timers unless `enablePolling` is false). */
  callHttp(options: CallHttpOptions): Task {
    return new CallHttpTask(httpRequestOf(options));
  }

  callEntity(entityId: { name: string; key: string }, operationName: string, operationInput?: unknown): Task {
    const id = toCoreEntityId(entityId, 'context.df.callEntity');
    assertOperationName(operationName, 'context.df.callEntity');
    return new EntityCallTask(id, operationName, operationInput);
  }

  /** Sends a one-way operation to an entity, with the episode's commit. Not a task: do not yield it. */
  signalEntity(entityId: { name: string; key: string }, operationName: string, operationInput?: unknown): void {
    this.#ctx.signalEntity(toCoreEntityId(entityId, 'context.df.signalEntity'), operationName, operationInput);
  }

  /**
   * Ends this execution and starts a new one with `input` and a fresh history; return right after.
   * Raised events the execution did not consume are dropped, as in v3.
   */
  continueAsNew(input: unknown): void {
    this.#ctx.continueAsNew(input, { preserveUnprocessedEvents: false });
  }

  createTimer(fireAt: Date): TimerTask {
    assertDate('context.df.createTimer', 'fireAt', fireAt);
    return new DFTimerTask(fireAt);
  }

  /**
   * A GUID that is the same on every replay: v3's algorithm (a version 5 UUID of
   * `<instanceId>_<currentUtcDateTime in ms>_<counter>`), so it gives v3's values.
   */
  newGuid(instanceId: string): string {
    return deterministicGuid(`${instanceId}_${this.#ctx.currentUtcDateTime.valueOf()}_${this.#guids++}`);
  }

  setCustomStatus(customStatusObject: unknown): void {
    this.#ctx.setCustomStatus(customStatusObject);
    this.#customStatus = customStatusObject;
  }

  waitForExternalEvent(name: string): Task {
    assertEventName(name, 'context.df.waitForExternalEvent');
    return new ExternalEventTask(name);
  }
}

function isGenerator(v: unknown): v is Generator<unknown, unknown, unknown> {
  return typeof v === 'object' && v !== null && typeof (v as Generator).next === 'function' && typeof (v as Generator).throw === 'function';
}

/** v3's words for a yield of something that is not a task (the orchestration fails with them). */
function notATask(v: unknown): NonDurableAwaitError {
  let msg = `Durable Functions programming constraint violation: Orchestration yielded data of type ${typeof v}.`;
  msg +=
    v === undefined
      ? ' This is likely a result of yielding a "fire-and-forget API" such as signalEntity or continueAsNew. These APIs should not be yielded as they are not blocking operations. ' +
        'Please remove the yield statement preceding those invocations. If you are not calling those APIs, please'
      : ' Only Task types can be yielded. Please';
  msg += ' check your yield statements to make sure you only yield Task types resulting from calling Durable Functions APIs.';
  return new NonDurableAwaitError(msg);
}

/**
 * The durabull orchestrator that runs a v3 handler: builds `context` (an InvocationContext with
 * `df`), then for each task the handler yields, schedules it and yields its durabull task, and
 * hands the result (or the error) back to the handler.
 */
export function orchestratorOf(name: string, handler: OrchestrationHandler): OrchestratorFunction {
  return function* (ctx: CoreContext, input: unknown): Generator<unknown, unknown, unknown> {
    const df = new DurableOrchestrationContext(ctx, input);
    const context = new AzureInvocationContext({
      invocationId: randomUUID(),
      functionName: name,
      logHandler: logHandler(() => ({ functionName: name, instanceId: ctx.instanceId, isReplaying: ctx.isReplaying })),
      options: { trigger: { type: 'orchestrationTrigger', name: 'context' }, extraInputs: [], extraOutputs: [] },
    }) as OrchestrationContext;
    context.df = df;
    const it: unknown = handler(context);
    if (!isGenerator(it)) {
      if (typeof (it as PromiseLike<unknown> | undefined)?.then === 'function') {
        throw new NotSupportedError(
          'async orchestrator',
          `df.app.orchestration('${name}'): the handler returned a Promise. durable-functions orchestrators are generator functions: write function* (context) { ... yield context.df.callActivity(...) }`,
        );
      }
      return it; // a plain function: its value is the output
    }
    let step = it.next();
    while (!step.done) {
      const yielded = step.value;
      if (!(yielded instanceof DFTask)) throw notATask(yielded);
      let core;
      try {
        core = yielded.schedule(df.scheduler);
      } catch (err) {
        step = it.throw(err); // a bad argument or payload: where the code yielded, as v3 throws at its call
        continue;
      }
      try {
        yield core;
      } catch {
        step = it.throw(yielded.failure());
        continue;
      }
      step = it.next(yielded.result);
    }
    return step.value;
  };
}
