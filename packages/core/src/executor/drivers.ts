import { NonDurableAwaitError } from '../errors.js';
import { Task } from '../tasks/task.js';

/**
 * Drives one style of orchestrator code. The executor starts it once per replay and settles it
 * after every event that may let the code move on.
 */
export interface Driver {
  readonly done: boolean;
  readonly failed: boolean;
  readonly output: unknown;
  readonly error: unknown;
  /** Lets the code run until it is blocked (async style: drains the microtask queue). */
  settle(): Promise<void> | void;
}

export function startDriver(invoke: () => unknown, orchestratorName: string): Driver {
  let ret: unknown;
  try {
    ret = invoke();
  } catch (err) {
    return new DoneDriver(true, undefined, err);
  }
  if (isGenerator(ret)) return new GeneratorDriver(ret, orchestratorName);
  if (isThenable(ret)) return new AsyncDriver(ret);
  return new DoneDriver(false, ret, undefined);
}

class DoneDriver implements Driver {
  readonly done = true;
  constructor(
    readonly failed: boolean,
    readonly output: unknown,
    readonly error: unknown,
  ) {}
  settle(): void {}
}

/** `function*` orchestrators: each `yield` hands a task to the driver, which resumes on completion. */
class GeneratorDriver implements Driver {
  done = false;
  failed = false;
  output: unknown;
  error: unknown;

  constructor(
    private readonly gen: Generator<unknown, unknown, unknown>,
    private readonly orchestratorName: string,
  ) {
    this.resume(false, undefined);
  }

  private resume(throwIt: boolean, value: unknown): void {
    for (;;) {
      let step: IteratorResult<unknown, unknown>;
      try {
        step = throwIt ? this.gen.throw(value) : this.gen.next(value);
      } catch (err) {
        this.finish(true, err);
        return;
      }
      if (step.done) {
        this.finish(false, step.value);
        return;
      }
      const yielded = step.value;
      if (!(yielded instanceof Task)) {
        const what = isThenable(yielded) ? 'a Promise' : typeof yielded;
        throwIt = true;
        value = new NonDurableAwaitError(
          `Orchestrator '${this.orchestratorName}' yielded ${what}, not a durable task. Yield only tasks from the context: ` +
            `ctx.callActivity(...) for work and I/O, ctx.createTimer(...) for delays, ctx.waitForExternalEvent(...), ctx.all/ctx.any.`,
        );
        continue;
      }
      if (yielded.isCompleted) {
        throwIt = yielded.isFaulted;
        value = yielded.isFaulted ? yielded.error : yielded.result;
        continue;
      }
      yielded.markAwaited();
      yielded.onComplete(() => this.resume(yielded.isFaulted, yielded.isFaulted ? yielded.error : yielded.result));
      return;
    }
  }

  private finish(failed: boolean, v: unknown): void {
    this.done = true;
    this.failed = failed;
    if (failed) this.error = v;
    else this.output = v;
  }

  settle(): void {}
}

/** `async` orchestrators: tasks are thenables; continuations run as microtasks, drained by `settle`. */
class AsyncDriver implements Driver {
  done = false;
  failed = false;
  output: unknown;
  error: unknown;

  constructor(promise: PromiseLike<unknown>) {
    promise.then(
      (v) => {
        this.done = true;
        this.output = v;
      },
      (e) => {
        this.done = true;
        this.failed = true;
        this.error = e;
      },
    );
  }

  settle(): Promise<void> {
    // A macrotask boundary: every microtask queued before it (the code's continuations) runs first.
    return new Promise((resolve) => setImmediate(resolve));
  }
}

function isGenerator(v: unknown): v is Generator<unknown, unknown, unknown> {
  return typeof v === 'object' && v !== null && typeof (v as Generator).next === 'function' && typeof (v as Generator).throw === 'function';
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
}
