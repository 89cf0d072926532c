import { Task } from './task.js';

/**
 * `ctx.all(tasks)`: completes with every child's result, in order, once all have completed. Fails
 * as soon as one child fails, with that child's error, like `Promise.all` and Durable Functions'
 * `Task.all`; the other children keep running and their results are recorded but not used.
 * An empty list completes at once with `[]`.
 */
export class WhenAllTask<T = unknown> extends Task<T[]> {
  readonly kind = 'all' as const;
  private remaining: number;
  constructor(readonly children: readonly Task<T>[]) {
    super();
    this.remaining = children.length;
    if (children.length === 0) {
      this.settle('completed', []);
      return;
    }
    for (const child of children) {
      child.awaited = true;
      child.onComplete(() => this.onChildCompleted(child));
    }
  }
  private onChildCompleted(child: Task<T>): void {
    if (this.isCompleted) return;
    if (child.isFaulted) {
      this.settle('failed', child.error);
      return;
    }
    this.remaining--;
    if (this.remaining === 0) this.settle('completed', this.children.map((c) => c.result as T));
  }
  /** Children that have not completed yet. */
  get pendingChildren(): Task<T>[] {
    return this.children.filter((c) => !c.isCompleted);
  }
}

/**
 * `ctx.any(tasks)`: completes with the first child to complete (successfully or not); its result
 * is that child Task, as in Durable Functions' `Task.any`. An empty list is an error.
 */
export class WhenAnyTask extends Task<Task<unknown>> {
  readonly kind = 'any' as const;
  constructor(readonly children: readonly Task<unknown>[]) {
    super();
    if (children.length === 0) throw new TypeError('ctx.any() needs at least one task');
    for (const child of children) {
      child.awaited = true;
      child.onComplete(() => {
        if (!this.isCompleted) this.settle('completed', child);
      });
    }
  }
}
