/**
 * One process-wide concurrency shared by the BullMQ workers of every partition (one per
 * partition's queue). Each worker's own `concurrency` is what it may take: what it holds now plus
 * what the process has free, and at least 1 (its blocking fetch). A worker fetches one job at a
 * time, so a process holds at most `limit + partitions - 1` jobs: it no longer keeps jobs locked
 * that it cannot run while another process could (with the whole concurrency per worker it held up
 * to `partitions × limit`). A fan-out in one partition still gets the whole limit. The jobs over
 * the limit wait here, in order, for a slot.
 */
export interface ConcurrencyHolder {
  concurrency: number;
}

export class SharedConcurrency {
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly holders: ConcurrencyHolder[] = [];
  /** Jobs each holder has handed us (running or waiting for a slot). */
  private readonly held: number[] = [];
  private total = 0;

  constructor(readonly limit: number) {}

  /** Adds a worker; returns its index for {@link run}. */
  add(holder: ConcurrencyHolder): number {
    this.holders.push(holder);
    this.held.push(0);
    this.rebalance();
    return this.holders.length - 1;
  }

  /** Jobs held by the workers now (running or waiting for a slot). */
  get holding(): number {
    return this.total;
  }

  /** Runs one job of worker `index` once a slot of the process is free. */
  async run<T>(index: number, fn: () => Promise<T>): Promise<T> {
    this.held[index]!++;
    this.total++;
    this.rebalance();
    try {
      if (this.running >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
      else this.running++;
      try {
        return await fn();
      } finally {
        const next = this.waiting.shift();
        if (next) next();
        else this.running--;
      }
    } finally {
      this.held[index]!--;
      this.total--;
      this.rebalance();
    }
  }

  private rebalance(): void {
    const free = Math.max(0, this.limit - this.total);
    for (let i = 0; i < this.holders.length; i++) {
      const c = Math.max(1, this.held[i]! + free);
      if (this.holders[i]!.concurrency !== c) this.holders[i]!.concurrency = c;
    }
  }
}
