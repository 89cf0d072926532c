import { describe, expect, it } from 'vitest';
import { counterDelta, fmt, mean, percentile, perSecond, ratio, steadyRate, summarize } from './stats.js';

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

describe('steadyRate', () => {
  it('is the pace between the 10% and 90% marks, interpolated between samples', () => {
    // A slow start (10 units in the first 100 ms), then 10 units per 10 ms, then a slow tail.
    const samples: [number, number][] = [
      [0, 0],
      [100, 10],
      [180, 90],
      [300, 100],
    ];
    // 10% = 10 units at t=100, 90% = 90 units at t=180: 80 units in 80 ms.
    expect(steadyRate(samples)).toBeCloseTo(1, 9);
    // Marks inside a segment are interpolated: 20% (20 units) at t=110, 80% (80) at t=170.
    expect(steadyRate(samples, 0.2, 0.8)).toBeCloseTo(1, 9);
    // The whole run's average pace is lower: what the ramp-up and tail cost.
    expect(100 / 300).toBeLessThan(steadyRate(samples));
  });

  it('counts from the first sample, not from zero', () => {
    expect(steadyRate([[1000, 500], [1100, 600]])).toBeCloseTo(1, 9);
  });

  it('is NaN without work or samples, and refuses marks out of order', () => {
    expect(steadyRate([[0, 5], [10, 5]])).toBeNaN();
    expect(steadyRate([[0, 0]])).toBeNaN();
    expect(() => steadyRate([[0, 0], [1, 1]], 0.9, 0.1)).toThrow(/lo 0.9, hi 0.1/);
  });
});
