/**
 * Small, pure helpers for the benchmark's figures: percentiles, rates, ratios and formatting.
 */

/**
 * The p-th percentile (0 < p <= 100) of `samples` by the nearest-rank method: the smallest sample
 * such that at least p% of the samples are at or below it. With 50 samples, p99 is the largest one.
 * NaN for no samples.
 */
export function percentile(samples: readonly number[], p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile: p must be in (0, 100], got ${p}`);
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  let s = 0;
  for (const x of samples) s += x;
  return s / samples.length;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function summarize(samples: readonly number[]): Summary {
  return {
    n: samples.length,
    min: samples.length ? Math.min(...samples) : Number.NaN,
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    max: samples.length ? Math.max(...samples) : Number.NaN,
    mean: mean(samples),
  };
}

/** Events per second over `ms` milliseconds. */
export function perSecond(count: number, ms: number): number {
  return ms > 0 ? (count * 1000) / ms : Number.NaN;
}

/** a / b, NaN when either is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return Number.NaN;
  return a / b;
}

/** Rounds to `digits` decimals (for the JSON output); keeps NaN/undefined as null-able NaN. */
export function round(x: number, digits = 2): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** A number for humans: 1234.5 -> "1,235", 12.345 -> "12.3", 0.1234 -> "0.123". */
export function fmt(x: number | undefined, digits?: number): string {
  if (x === undefined || !Number.isFinite(x)) return 'n/a';
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : Math.abs(x) >= 1 ? 2 : 3);
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

/** "0.42x" */
export function fmtRatio(x: number | undefined): string {
  return x === undefined || !Number.isFinite(x) ? 'n/a' : `${x.toFixed(2)}x`;
}

export function mb(bytes: number | undefined): number {
  return bytes === undefined ? Number.NaN : bytes / (1024 * 1024);
}

/** Sum of the values of `b - a` per key, for counters read twice (keys missing in `a` count from 0). */
export function counterDelta(before: Readonly<Record<string, number>>, after: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/**
 * The pace of a run between `lo` and `hi` (shares) of its work, in units per millisecond, from
 * samples `[time ms, units done so far]` sorted by time, the first at the start and the last at
 * the end: the times at which the work crossed the two marks are interpolated between samples.
 * NaN when the samples cannot tell (fewer than two, or no work done).
 *
 * @throws {RangeError} unless 0 <= lo < hi <= 1.
 */
export function steadyRate(samples: readonly (readonly [number, number])[], lo = 0.1, hi = 0.9): number {
  if (!(lo >= 0 && lo < hi && hi <= 1)) throw new RangeError(`steadyRate: need 0 <= lo < hi <= 1, got lo ${lo}, hi ${hi}`);
  if (samples.length < 2) return Number.NaN;
  const u0 = samples[0]![1];
  const total = samples.at(-1)![1] - u0;
  if (!(total > 0)) return Number.NaN;
  const crossing = (share: number): number => {
    const target = u0 + share * total;
    for (let i = 1; i < samples.length; i++) {
      const [ta, ua] = samples[i - 1]!;
      const [tb, ub] = samples[i]!;
      if (ub >= target && ub > ua) return ta + ((target - ua) / (ub - ua)) * (tb - ta);
      if (ub >= target) return tb;
    }
    return samples.at(-1)![0];
  };
  const span = crossing(hi) - crossing(lo);
  return span > 0 ? ((hi - lo) * total) / span : Number.NaN;
}
