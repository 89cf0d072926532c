import { describe, expect, it } from 'vitest';
import { counterDelta, fmt, mean, percentile, perSecond, ratio, summarize } from './stats.js';

describe('bench stats helpers', () => {
  it('percentile uses the nearest rank', () => {
    const xs = Array.from({ length: 50 }, (_, i) => 50 - i); // 50..1, unsorted on purpose
    expect(percentile(xs, 50)).toBe(25);
    expect(percentile(xs, 99)).toBe(50); // with 50 samples p99 is the largest
    expect(percentile(xs, 100)).toBe(50);
    expect(percentile([7], 1)).toBe(7);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 0)).toThrow(RangeError);
  });

  it('percentile does not reorder its input', () => {
    const xs = [3, 1, 2];
    percentile(xs, 50);
    expect(xs).toEqual([3, 1, 2]);
  });

  it('summarize, mean, rates and ratios', () => {
    expect(summarize([1, 2, 3, 4, 100])).toMatchObject({ n: 5, min: 1, p50: 3, p99: 100, max: 100, mean: 22 });
    expect(mean([])).toBeNaN();
    expect(perSecond(1000, 500)).toBe(2000);
    expect(ratio(1, 4)).toBe(0.25);
    expect(ratio(1, 0)).toBeNaN();
    expect(ratio(undefined, 1)).toBeNaN();
  });

  it('counterDelta keeps only what changed, counting new keys from 0', () => {
    expect(counterDelta({ get: 5, set: 2 }, { get: 9, set: 2, evalsha: 3 })).toEqual({ get: 4, evalsha: 3 });
  });

  it('fmt picks digits by magnitude and prints n/a for missing numbers', () => {
    expect(fmt(1234.5)).toBe('1,235');
    expect(fmt(12.345)).toBe('12.3');
    expect(fmt(1.2345)).toBe('1.23');
    expect(fmt(Number.NaN)).toBe('n/a');
  });
});
