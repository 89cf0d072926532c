import { TaskFailedError, ValidationError } from '../errors.js';
import { describeValue } from '../validation.js';
import { CompletableTask, type Task, type TimerTask } from './task.js';

/**
 * How `callActivityWithRetry` / `callSubOrchestratorWithRetry` retry. Delays grow as
 * `firstRetryIntervalMs * backoffCoefficient^(attempt - 1)`, capped by `maxRetryIntervalMs`.
 * Each attempt and each wait is an ordinary task and timer in history.
 */
export interface RetryOptions {
  /** Attempts in all, the first included (>= 1). */
  maxNumberOfAttempts: number;
  /** Delay before the first retry, in ms (> 0). */
  firstRetryIntervalMs: number;
  /** Growth of the delay between retries (>= 1). Default 1. */
  backoffCoefficient?: number;
  /** Longest delay between two attempts, in ms. Default: no limit. */
  maxRetryIntervalMs?: number;
  /** No retry starts later than this many ms after the first attempt. Default: no limit. */
  retryTimeoutMs?: number;
  /** Decides per failure whether to retry; return false to stop. Runs in the orchestrator: keep it deterministic. */
  handle?: (error: TaskFailedError) => boolean;
}

export function assertRetryOptions(o: RetryOptions, where = ''): void {
  const at = where ? `${where}: ` : '';
  const bad = (field: string, expected: string, value: unknown) =>
    new ValidationError(`${at}Invalid retry options: ${field} must be ${expected}, got ${describeValue(value)}`);
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ValidationError(`${at}Invalid retry options: expected an object, got ${describeValue(o)}`);
  if (!Number.isInteger(o.maxNumberOfAttempts) || o.maxNumberOfAttempts < 1) throw bad('maxNumberOfAttempts', 'an integer >= 1', o.maxNumberOfAttempts);
  if (!(typeof o.firstRetryIntervalMs === 'number' && o.firstRetryIntervalMs > 0)) throw bad('firstRetryIntervalMs', 'a number > 0', o.firstRetryIntervalMs);
  if (o.backoffCoefficient !== undefined && !(typeof o.backoffCoefficient === 'number' && o.backoffCoefficient >= 1)) {
    throw bad('backoffCoefficient', 'a number >= 1', o.backoffCoefficient);
  }
  if (o.maxRetryIntervalMs !== undefined && !(typeof o.maxRetryIntervalMs === 'number' && o.maxRetryIntervalMs > 0)) {
    throw bad('maxRetryIntervalMs', 'a number > 0', o.maxRetryIntervalMs);
  }
  if (o.retryTimeoutMs !== undefined && !(typeof o.retryTimeoutMs === 'number' && o.retryTimeoutMs > 0)) throw bad('retryTimeoutMs', 'a number > 0', o.retryTimeoutMs);
  if (o.handle !== undefined && typeof o.handle !== 'function') throw bad('handle', 'a function', o.handle);
}

/**
 * A task that runs attempts until one succeeds or the policy gives up; it then fails with the last
 * attempt's error (its `attempts` field says how many ran). An error whose failure is marked
 * non-retriable (thrown as NonRetriableError) stops at once.
 */
export class RetryableTask<T = unknown> extends CompletableTask<T> {
  readonly kind = 'retry' as const;
  attempt = 0;
  /** The attempt or the retry timer currently running. */
  current!: Task<unknown>;
  private readonly startedAt: number;

  constructor(
    private readonly options: RetryOptions,
    private readonly now: () => number,
    private readonly createTimer: (fireAt: Date) => TimerTask,
    private readonly startAttempt: () => Task<T>,
  ) {
    super();
    this.startedAt = now();
    this.next();
  }

  private next(): void {
    this.attempt++;
    const t = this.startAttempt();
    this.current = t;
    t.awaited = true;
    t.onComplete(() => this.onAttemptDone(t));
  }

  private onAttemptDone(t: Task<T>): void {
    if (!t.isFaulted) {
      this.complete(t.result as T);
      return;
    }
    const err = t.error;
    if (err instanceof TaskFailedError) err.attempts = this.attempt;
    const o = this.options;
    const delay = Math.min(
      o.firstRetryIntervalMs * Math.pow(o.backoffCoefficient ?? 1, this.attempt - 1),
      o.maxRetryIntervalMs ?? Number.POSITIVE_INFINITY,
    );
    const now = this.now();
    const retry =
      this.attempt < o.maxNumberOfAttempts &&
      !(err instanceof TaskFailedError && err.failure.nonRetriable) &&
      (o.retryTimeoutMs === undefined || now + delay - this.startedAt <= o.retryTimeoutMs) &&
      (!o.handle || !(err instanceof TaskFailedError) || o.handle(err));
    if (!retry) {
      this.fail(err);
      return;
    }
    const timer = this.createTimer(new Date(now + delay));
    this.current = timer;
    timer.awaited = true;
    timer.onComplete(() => this.next());
  }
}
