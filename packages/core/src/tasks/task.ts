/**
 * Durable tasks: what orchestrator code yields (generator style) or awaits (async style).
 *
 * A task completes only when history says so. Completion callbacks run synchronously, so the
 * executor controls exactly when orchestrator code moves on. Tasks are thenables, so `await` works;
 * `then` marks the task as awaited, which tells the executor what the code is blocked on.
 */
export type TaskKind = 'activity' | 'timer' | 'event' | 'suborchestration' | 'retry' | 'all' | 'any' | 'entity' | 'lock';

type Listener = () => void;

export abstract class Task<T = unknown> implements PromiseLike<T> {
  abstract readonly kind: TaskKind;
  protected _state: 'pending' | 'completed' | 'failed' = 'pending';
  protected _result: T | undefined;
  protected _error: unknown;
  private _listeners: Listener[] = [];
  /** Set when some code (a driver, a composite, `then`) waits on this task. */
  awaited = false;
  /** @internal hook that the context uses to learn when an open task gets awaited. */
  onAwaited?: (task: Task<unknown>) => void;

  get isCompleted(): boolean {
    return this._state !== 'pending';
  }
  get isFaulted(): boolean {
    return this._state === 'failed';
  }
  /** The result, once completed successfully. */
  get result(): T | undefined {
    return this._result;
  }
  /** The error, once failed. */
  get error(): unknown {
    return this._error;
  }

  /** @internal Runs `fn` once when the task completes (at once if it already has). */
  onComplete(fn: Listener): void {
    if (this._state !== 'pending') fn();
    else this._listeners.push(fn);
  }

  protected settle(state: 'completed' | 'failed', value: unknown): void {
    if (this._state !== 'pending') return;
    this._state = state;
    if (state === 'completed') this._result = value as T;
    else this._error = value;
    const listeners = this._listeners;
    this._listeners = [];
    for (const l of listeners) l();
  }

  /** Set once the code itself waits on this task (a driver or `then`), not only a composite that holds it. */
  private rooted = false;

  /**
   * @internal marks the task as awaited by a driver or `then`. A task a composite already waits on
   * (`awaited` set by ctx.all / ctx.any) becomes one the code waits on too: the loser of a
   * `ctx.any` that the code yields or awaits on its own afterwards.
   */
  markAwaited(): void {
    this.awaited = true;
    if (!this.rooted) {
      this.rooted = true;
      this.onAwaited?.(this);
    }
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    this.markAwaited();
    return new Promise<void>((resolve) => this.onComplete(resolve)).then((): R1 | R2 | PromiseLike<R1 | R2> => {
      if (this._state === 'failed') {
        if (onrejected) return onrejected(this._error);
        throw this._error;
      }
      return onfulfilled ? onfulfilled(this._result as T) : (this._result as unknown as R1);
    });
  }
}

/** A task completed from outside, by a history event. */
export abstract class CompletableTask<T = unknown> extends Task<T> {
  complete(result: T): void {
    this.settle('completed', result);
  }
  fail(error: unknown): void {
    this.settle('failed', error);
  }
}

/** An activity call: `ctx.callActivity(name, input)`. `id` is its sequence number. */
export class ActivityTask<T = unknown> extends CompletableTask<T> {
  readonly kind = 'activity' as const;
  constructor(
    readonly id: number,
    readonly name: string,
  ) {
    super();
  }
}

/** A durable timer: `ctx.createTimer(fireAt)`. */
export class TimerTask extends CompletableTask<void> {
  readonly kind = 'timer' as const;
  private _cancelled = false;
  /** @internal set by the context: what cancelling means for the runtime. */
  onCancel?: (timer: TimerTask) => void;
  constructor(
    readonly id: number,
    readonly fireAt: Date,
  ) {
    super();
  }
  /** True once `cancel()` was called before the timer fired. */
  get isCancelled(): boolean {
    return this._cancelled;
  }
  /**
   * Cancels a timer that has not fired (the loser of a race): it will never complete, and its
   * delayed job is removed. Does nothing once the timer has fired.
   */
  cancel(): void {
    if (this.isCompleted || this._cancelled) return;
    this._cancelled = true;
    this.onCancel?.(this);
  }
}

/** An external event wait: `ctx.waitForExternalEvent(name)`. */
export class ExternalEventTask<T = unknown> extends CompletableTask<T> {
  readonly kind = 'event' as const;
  constructor(readonly name: string) {
    super();
  }
}

/** A sub-orchestration call: `ctx.callSubOrchestrator(name, input, instanceId)`. */
export class SubOrchestrationTask<T = unknown> extends CompletableTask<T> {
  readonly kind = 'suborchestration' as const;
  constructor(
    readonly id: number,
    readonly name: string,
    readonly instanceId: string,
  ) {
    super();
  }
}

/** An entity operation call: `ctx.callEntity(entity, operation, input)`. */
export class EntityCallTask<T = unknown> extends CompletableTask<T> {
  readonly kind = 'entity' as const;
  constructor(
    readonly id: number,
    readonly entityId: string,
    readonly operation: string,
  ) {
    super();
  }
}

/** A critical section's lock request: `ctx.lockEntities(...entities)`; completes once every entity is held. */
export class EntityLockTask<T = unknown> extends CompletableTask<T> {
  readonly kind = 'lock' as const;
  constructor(
    readonly id: number,
    readonly entityIds: readonly string[],
  ) {
    super();
  }
}

/** Tasks that complete from history events and carry a sequence number. */
export type SequencedTask = ActivityTask | TimerTask | SubOrchestrationTask | EntityCallTask | EntityLockTask;
