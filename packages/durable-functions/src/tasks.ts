/**
 * v3's tasks on durabull's. A v3 task is scheduled when the orchestrator first yields it (alone or
 * inside `Task.all` / `Task.any`), not when it is created, and a task that is never yielded is never
 * scheduled: so is a task here. Scheduling creates the durabull task (an activity, timer, event
 * wait...) that the driver then yields to durabull's engine; `isCompleted`, `isFaulted` and `result`
 * read it.
 */
import {
  type OrchestrationContext as CoreContext,
  type Task as CoreTask,
  type TimerTask as CoreTimerTask,
  EntityOperationFailedError,
  TaskFailedError,
  ValidationError,
} from '@durabull/core';
import type { EntityId as CoreEntityId } from '@durabull/core';
import { DurableError, taskFailure } from './errors.js';
import { type RetryOptions, assertRetryOptions as assertRetry, toCoreRetryOptions } from './retry-options.js';

/** A Durable Functions task: what orchestrator code yields. */
export interface Task {
  /** Whether the task has completed (successfully or not). */
  readonly isCompleted: boolean;
  /** Whether the task failed. */
  readonly isFaulted: boolean;
  /** The result once completed; the error (a DurableError for a failed call) once failed; otherwise undefined. */
  readonly result?: unknown;
}

/** A durable timer, which can be cancelled before it fires. */
export interface TimerTask extends Task {
  readonly isCanceled: boolean;
  cancel(): void;
}

/** Per replay of one execution: its durabull context, and which v3 task each durabull task belongs to. */
export class Scheduler {
  readonly owners = new WeakMap<CoreTask<unknown>, DFTask>();
  constructor(readonly ctx: CoreContext) {}
}

/** The base of every v3 task: scheduled (once) when first yielded. */
export abstract class DFTask implements Task {
  #core: CoreTask<unknown> | undefined;
  #scheduler: Scheduler | undefined;
  #error: unknown;
  #errorSet = false;

  get isCompleted(): boolean {
    return this.#core?.isCompleted ?? false;
  }
  get isFaulted(): boolean {
    return this.#core?.isFaulted ?? false;
  }
  get result(): unknown {
    const c = this.#core;
    if (!c?.isCompleted) return undefined;
    return c.isFaulted ? this.failure() : this.value(c, this.#scheduler!);
  }

  /** @internal Whether the task was scheduled (yielded at least once). */
  get scheduled(): boolean {
    return this.#core !== undefined;
  }

  /** @internal Schedules the task (the first time) and returns its durabull task. */
  schedule(s: Scheduler): CoreTask<unknown> {
    if (!this.#core) {
      const c = this.create(s);
      this.#core = c;
      this.#scheduler = s;
      s.owners.set(c, this);
    }
    return this.#core;
  }

  /** @internal The error the task failed with, as the code sees it (the same object every time). */
  failure(): unknown {
    if (!this.#errorSet) {
      this.#error = this.convert(this.#core!.error, this.#scheduler!);
      this.#errorSet = true;
    }
    return this.#error;
  }

  protected abstract create(s: Scheduler): CoreTask<unknown>;
  /** The value of a task that completed. */
  protected value(core: CoreTask<unknown>, _s: Scheduler): unknown {
    return core.result;
  }
  /** The error of a task that failed, in v3's terms. */
  protected convert(err: unknown, _s: Scheduler): unknown {
    return err;
  }
}

/** `context.df.callActivity(name, input)`, and what `df.app.activity(...)`'s function returns. */
export class ActivityTask extends DFTask {
  constructor(
    readonly name: string,
    readonly input: unknown,
  ) {
    super();
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.callActivity(this.name, this.input);
  }
  protected override convert(err: unknown): unknown {
    return err instanceof TaskFailedError ? taskFailure('activity', this.name, err) : err;
  }
}

/** `callActivityWithRetry`, or `.withRetry(options)` of a registered activity's task. */
export class RetryActivityTask extends ActivityTask {
  constructor(
    name: string,
    readonly retryOptions: RetryOptions,
    input: unknown,
  ) {
    super(name, input);
  }
  protected override create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.callActivityWithRetry(this.name, toCoreRetryOptions(this.retryOptions), this.input);
  }
}

/** `context.df.callSubOrchestrator(name, input, instanceId)`, and what `df.app.orchestration(...)`'s function returns. */
export class SubOrchestratorTask extends DFTask {
  constructor(
    readonly name: string,
    readonly input: unknown,
    readonly instanceId: string | undefined,
  ) {
    super();
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.callSubOrchestrator(this.name, this.input, this.instanceId);
  }
  protected override convert(err: unknown): unknown {
    return err instanceof TaskFailedError ? taskFailure('suborchestration', this.name, err) : err;
  }
}

/** `callSubOrchestratorWithRetry`, or `.withRetry(options)` of a registered orchestration's task. */
export class RetrySubOrchestratorTask extends SubOrchestratorTask {
  constructor(
    name: string,
    readonly retryOptions: RetryOptions,
    input: unknown,
    instanceId: string | undefined,
  ) {
    super(name, input, instanceId);
  }
  protected override create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.callSubOrchestratorWithRetry(this.name, toCoreRetryOptions(this.retryOptions), this.input, this.instanceId);
  }
}

/** `context.df.callEntity(entityId, operationName, input)`. */
export class EntityCallTask extends DFTask {
  constructor(
    readonly entity: CoreEntityId,
    readonly operationName: string,
    readonly input: unknown,
  ) {
    super();
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.callEntity(this.entity, this.operationName, this.input);
  }
  protected override convert(err: unknown): unknown {
    return err instanceof EntityOperationFailedError ? taskFailure('entity', `'${this.operationName}' of entity '${this.entity.toString()}'`, err) : err;
  }
}

/** `context.df.waitForExternalEvent(name)`. */
export class ExternalEventTask extends DFTask {
  constructor(readonly name: string) {
    super();
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.waitForExternalEvent(this.name);
  }
}

/** `context.df.createTimer(fireAt)`: `cancel()` before it fires, `isCanceled`. */
export class DFTimerTask extends DFTask implements TimerTask {
  #canceled = false;
  #timer: CoreTimerTask | undefined;
  constructor(readonly fireAt: Date) {
    super();
  }
  get isCanceled(): boolean {
    return this.#canceled;
  }
  /**
   * Cancels the timer: it never completes, and its delayed job is removed (a timer not scheduled
   * yet never is). Throws on a timer that has fired, as v3 does.
   */
  cancel(): void {
    if (this.isCompleted) throw new DurableError('Cannot cancel a completed task.');
    this.#canceled = true;
    this.#timer?.cancel();
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    const t = s.ctx.createTimer(this.fireAt);
    this.#timer = t;
    if (this.#canceled) t.cancel();
    return t;
  }
}

/** Checks the argument of Task.all / Task.any as v3 does (a non-empty array of tasks from this API). */
function children(tasks: unknown, fn: string): DFTask[] {
  if (!Array.isArray(tasks)) {
    throw new ValidationError(`${fn}: tasks must be an array of tasks (Task.${fn.endsWith('all') ? 'all' : 'any'} received a non-valid input)`);
  }
  if (tasks.length === 0) {
    throw new ValidationError(`${fn}: When constructing a CompoundTask (such as Task.all() or Task.any()), you must specify at least one Task.`);
  }
  tasks.forEach((t, i) => {
    if (!(t instanceof DFTask)) {
      throw new ValidationError(`${fn}: tasks[${i}] is not a task of the durable-functions API (context.df.callActivity(...), createTimer(...), ...)`);
    }
  });
  return tasks as DFTask[];
}

/** `context.df.Task.all(tasks)`: the children's results in order; fails with the first failure. */
export class WhenAllTask extends DFTask {
  readonly children: readonly DFTask[];
  constructor(tasks: unknown) {
    super();
    this.children = children(tasks, 'context.df.Task.all');
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.all(this.children.map((c) => c.schedule(s)));
  }
  protected override value(): unknown {
    return this.children.map((c) => c.result);
  }
  protected override convert(err: unknown, s: Scheduler): unknown {
    // The first child that failed, with its own (converted) error: the same object as its `result`.
    for (const c of this.children) {
      const core = c.schedule(s);
      if (core.isFaulted && core.error === err) return c.failure();
    }
    return err;
  }
}

/** `context.df.Task.any(tasks)`: completes with the first child to complete, whose task is its result. */
export class WhenAnyTask extends DFTask {
  readonly children: readonly DFTask[];
  constructor(tasks: unknown) {
    super();
    this.children = children(tasks, 'context.df.Task.any');
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    return s.ctx.any(this.children.map((c) => c.schedule(s)));
  }
  protected override value(core: CoreTask<unknown>, s: Scheduler): unknown {
    return s.owners.get(core.result as CoreTask<unknown>);
  }
}

/** What a registered activity's function (`const hello = df.app.activity(...)`) returns: `yield hello(input)`, or `.withRetry(options)`. */
export class RegisteredActivityTask extends ActivityTask {
  /** The same call with a retry policy; only before the task was yielded (v3 throws afterwards too). */
  readonly withRetry = (retryOptions: RetryOptions): Task => {
    if (this.scheduled) {
      throw new DurableError(
        `Invalid use of \`.withRetry\`: attempted to create a retriable task from an already scheduled task. ` +
          `A task to call activity ${this.name} has already been scheduled. Make sure to only invoke \`.withRetry\` on tasks that have not previously been yielded.`,
      );
    }
    assertRetry(`${this.name}(...).withRetry`, retryOptions);
    return new RetryActivityTask(this.name, retryOptions, this.input);
  };
}

/** What a registered orchestration's function returns: `yield child(input, instanceId)`, or `.withRetry(options)`. */
export class RegisteredOrchestrationTask extends SubOrchestratorTask {
  readonly withRetry = (retryOptions: RetryOptions): Task => {
    if (this.scheduled) {
      throw new DurableError(
        `Invalid use of \`.withRetry\`: attempted to create a retriable task from an already scheduled task. ` +
          `A task to call subOrchestrator ${this.name} has already been scheduled. Make sure to only invoke \`.withRetry\` on tasks that have not previously been yielded.`,
      );
    }
    assertRetry(`${this.name}(...).withRetry`, retryOptions);
    return new RetrySubOrchestratorTask(this.name, retryOptions, this.input, this.instanceId);
  };
}
