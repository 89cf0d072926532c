import { type RetryOptions as CoreRetryOptions, ValidationError, describeValue } from '@durabull/core';

/**
 * v3's retry policy: `new df.RetryOptions(firstRetryIntervalInMilliseconds, maxNumberOfAttempts)`,
 * then the mutable `backoffCoefficient`, `maxRetryIntervalInMilliseconds` and
 * `retryTimeoutInMilliseconds`. The values are read when the task is scheduled (at its first
 * `yield`), so changes made before that count.
 */
export class RetryOptions {
  /** Growth of the delay between retries (>= 1). Default 1. */
  backoffCoefficient: number = undefined as unknown as number;
  /** Longest delay between two attempts, in ms. Default: no limit. */
  maxRetryIntervalInMilliseconds: number = undefined as unknown as number;
  /** No retry starts later than this many ms after the first attempt. Default: no limit. */
  retryTimeoutInMilliseconds: number = undefined as unknown as number;

  /**
   * @param firstRetryIntervalInMilliseconds delay before the first retry, in ms (> 0)
   * @param maxNumberOfAttempts attempts in all, the first included (an integer >= 1)
   * @throws ValidationError for anything else (v3 throws a TypeError or RangeError)
   */
  constructor(
    readonly firstRetryIntervalInMilliseconds: number,
    readonly maxNumberOfAttempts: number,
  ) {
    if (typeof firstRetryIntervalInMilliseconds !== 'number' || Number.isNaN(firstRetryIntervalInMilliseconds)) {
      throw new ValidationError(`new RetryOptions: firstRetryIntervalInMilliseconds must be a number, got ${describeValue(firstRetryIntervalInMilliseconds)}`);
    }
    if (firstRetryIntervalInMilliseconds <= 0) {
      throw new ValidationError(`new RetryOptions: firstRetryIntervalInMilliseconds value must be greater than 0, got ${firstRetryIntervalInMilliseconds}`);
    }
    if (!Number.isInteger(maxNumberOfAttempts) || maxNumberOfAttempts < 1) {
      throw new ValidationError(`new RetryOptions: maxNumberOfAttempts must be an integer >= 1, got ${describeValue(maxNumberOfAttempts)}`);
    }
  }
}

/** v3 accepts any object with the RetryOptions fields (its check asks "are you missing properties?"). */
export function assertRetryOptions(where: string, v: unknown): asserts v is RetryOptions {
  const o = v as Partial<RetryOptions> | null;
  if (v instanceof RetryOptions) return;
  if (typeof o === 'object' && o !== null && typeof o.firstRetryIntervalInMilliseconds === 'number' && typeof o.maxNumberOfAttempts === 'number') return;
  throw new ValidationError(`${where}: retryOptions: Expected object of type RetryOptions but got ${describeValue(v)}; are you missing properties?`);
}

/** The policy durabull runs, read from v3's fields now. */
export function toCoreRetryOptions(o: RetryOptions): CoreRetryOptions {
  const r: CoreRetryOptions = { maxNumberOfAttempts: o.maxNumberOfAttempts, firstRetryIntervalMs: o.firstRetryIntervalInMilliseconds };
  if (o.backoffCoefficient !== undefined && o.backoffCoefficient !== null) r.backoffCoefficient = o.backoffCoefficient;
  if (o.maxRetryIntervalInMilliseconds !== undefined && o.maxRetryIntervalInMilliseconds !== null) r.maxRetryIntervalMs = o.maxRetryIntervalInMilliseconds;
  if (o.retryTimeoutInMilliseconds !== undefined && o.retryTimeoutInMilliseconds !== null) r.retryTimeoutMs = o.retryTimeoutInMilliseconds;
  return r;
}
