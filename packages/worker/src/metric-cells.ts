/**
 * Counters and histograms for the worker's hot path, registered in a prom-client Registry and
 * written in its text format like prom-client's own. The difference: a series is a cell object the
 * caller keeps (looked up once per label values), so an observation is an increment and a bucket
 * search, where prom-client's `inc` / `observe` validate and hash the labels on every call (about
 * 1 µs each, several per activity).
 */
import type { Registry } from 'prom-client';

type Labels<L extends string> = Record<L, string>;

/** One series of a {@link CellCounter}. */
export class CounterCell {
  value = 0;
  constructor(readonly labels: Record<string, string>) {}
  inc(n = 1): void {
    this.value += n;
  }
}

/** One series of a {@link CellHistogram}: per-bucket counts (not cumulative), sum and count. */
export class HistogramCell {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

abstract class CellMetric<L extends string, C> {
  protected readonly cells = new Map<string, C>();
  abstract readonly type: 'counter' | 'histogram';
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    registers: readonly Registry[],
  ) {
    // prom-client's Registry takes any metric with a name and `get()`.
    for (const r of registers) r.registerMetric(this as never);
  }

  protected abstract make(labels: Labels<L>): C;

  /** The series of these label values (made on first use, then the same object). */
  labels(labels: Labels<L>): C {
    let key = '';
    for (const n of this.labelNames) key += `${labels[n]}\u0000`;
    let c = this.cells.get(key);
    if (!c) {
      const copy = {} as Labels<L>;
      for (const n of this.labelNames) copy[n] = labels[n];
      c = this.make(copy);
      this.cells.set(key, c);
    }
    return c;
  }

  reset(): void {
    this.cells.clear();
  }

  protected abstract values(): MetricValue[];

  /** What prom-client's Registry reads (the shape of prom-client's own metrics). */
  async get(): Promise<{ name: string; help: string; type: string; values: MetricValue[]; aggregator: string }> {
    return { name: this.name, help: this.help, type: this.type, values: this.values(), aggregator: this.aggregator };
  }
}

/** A counter whose series are {@link CounterCell}s. */
export class CellCounter<L extends string> extends CellMetric<L, CounterCell> {
  readonly type = 'counter' as const;
  protected make(labels: Labels<L>): CounterCell {
    return new CounterCell(labels);
  }
  protected values(): MetricValue[] {
    return [...this.cells.values()].map((c) => ({ value: c.value, labels: c.labels }));
  }
}

/** A histogram whose series are {@link HistogramCell}s. */
export class CellHistogram<L extends string> extends CellMetric<L, HistogramCell> {
  readonly type = 'histogram' as const;
  constructor(
    name: string,
    help: string,
    labelNames: readonly L[],
    readonly buckets: readonly number[],
    registers: readonly Registry[],
  ) {
    super(name, help, labelNames, registers);
  }
  protected make(labels: Labels<L>): HistogramCell {
    return new HistogramCell(labels, this.buckets);
  }
  protected values(): MetricValue[] {
    const out: MetricValue[] = [];
    for (const c of this.cells.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += c.counts[i]!;
        out.push({ value: acc, labels: { ...c.labels, le }, metricName: `${this.name}_bucket` });
      });
      out.push({ value: c.count, labels: { ...c.labels, le: '+Inf' }, metricName: `${this.name}_bucket` });
      out.push({ value: c.sum, labels: c.labels, metricName: `${this.name}_sum` });
      out.push({ value: c.count, labels: c.labels, metricName: `${this.name}_count` });
    }
    return out;
  }
}
