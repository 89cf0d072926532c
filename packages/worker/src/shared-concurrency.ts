/**
 * One process-wide concurrency shared by the BullMQ workers of every partition (one per
 * partition's queue). Each worker's own `concurrency` says what it may take: while the process has
 * free slots, what it holds plus what is free (a fan-out in one partition gets them all); once
 * every slot is taken, what it holds plus one job to wait for a slot, unless one of its jobs waits
 * already. The jobs that wait get the slots in the order they came, whatever their partition, so a
 * partition with a steady backlog cannot starve another one; a process holds at most
 * `limit + partitions` jobs (with the whole concurrency per worker it held up to
 * `partitions × limit`), and leaves the rest to the other processes of the fleet.
 *
 * Not exactly: while slots are free, every worker is offered what it holds plus all the free slots
 * at once, and a job counts here only once it reaches {@link SharedConcurrency.run}. A worker whose
 * fetched job is still in BullMQ's loop can fetch again for a free slot another worker's job then
 * takes, and both its jobs wait: the process holds one more (test/src/partitions.test.ts saw 10 for
 * 9 in about one run of ten, and allows it). A reservation would close that: a fetch made for a
 * free slot reserves it, and only that worker's next job may take it.
 */
export interface ConcurrencyHolder {
  concurrency: number;
}

/** How long a raised concurrency waits before it wakes a worker's loop (ms): see {@link SharedConcurrency.wakeSoon}. */
const WAKE_AFTER_MS = 20;

type LoopQueue = { add(p: Promise<unknown>): void; numTotal(): number };

export class SharedConcurrency {
  private readonly holders: ConcurrencyHolder[] = [];
  /** Per worker: jobs running, and jobs waiting for a slot. */
  private readonly running: number[] = [];
  private readonly waiting: number[] = [];
  private runningTotal = 0;
  private waitingTotal = 0;
  private readonly queue: { index: number; start: () => void }[] = [];
  private readonly wakes: (NodeJS.Timeout | undefined)[] = [];

  constructor(readonly limit: number) {}

  /** Adds a worker; returns its index for {@link run}. */
  add(holder: ConcurrencyHolder): number {
    this.holders.push(holder);
    this.running.push(0);
    this.waiting.push(0);
    this.wakes.push(undefined);
    this.rebalance();
    return this.holders.length - 1;
  }

  /**
   * Runs one job of worker `index` once a slot of the process is free; `fn` learns whether the job
   * waited for one (what it was fetched for may have changed meanwhile: a terminate, say).
   */
  async run<T>(index: number, fn: (waited: boolean) => Promise<T>): Promise<T> {
    const waited = this.runningTotal >= this.limit;
    if (waited) {
      this.waiting[index]!++;
      this.waitingTotal++;
      this.rebalance();
      await new Promise<void>((start) => this.queue.push({ index, start }));
    } else {
      this.running[index]!++;
      this.runningTotal++;
      this.rebalance();
    }
    try {
      return await fn(waited);
    } finally {
      this.running[index]!--;
      this.runningTotal--;
      const next = this.queue.shift();
      if (next) {
        // The slot goes to the job that has waited longest.
        this.waiting[next.index]!--;
        this.waitingTotal--;
        this.running[next.index]!++;
        this.runningTotal++;
        next.start();
      }
      this.rebalance();
    }
  }

  private rebalance(): void {
    const free = this.limit - this.runningTotal - this.waitingTotal;
    for (let i = 0; i < this.holders.length; i++) {
      const held = this.running[i]! + this.waiting[i]!;
      const c = Math.max(1, held + (free > 0 ? free : this.waiting[i] === 0 ? 1 : 0));
      const before = this.holders[i]!.concurrency;
      if (before === c) continue;
      this.holders[i]!.concurrency = c;
      if (c > before) this.wakeSoon(i);
    }
  }

  /**
   * BullMQ's worker loop (bullmq 6.x) reads its concurrency only when one of its fetches or jobs
   * settles: raised while every job it holds runs for long, it would not fetch again. A settled
   * promise added to the loop's queue (`mainLoopQueue`, an AsyncFifoQueue) wakes it; the loop reads
   * its value as "no job" and looks again. Not at once: a slot freed by a finished job is mostly
   * taken within a few ms by its worker's next job (fetched with the finish) or a waiting one, and
   * waking every partition's loop for it would cost a fetch each. Without that field (another
   * BullMQ) nothing is done.
   */
  private wakeSoon(i: number): void {
    if (this.wakes[i]) return;
    const t = setTimeout(() => {
      this.wakes[i] = undefined;
      const holder = this.holders[i]!;
      const q = (holder as { mainLoopQueue?: LoopQueue | null }).mainLoopQueue;
      if (q && typeof q.add === 'function' && q.numTotal() < holder.concurrency) q.add(Promise.resolve(undefined));
    }, WAKE_AFTER_MS);
    t.unref();
    this.wakes[i] = t;
  }
}
