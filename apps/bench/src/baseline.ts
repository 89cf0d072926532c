/**
 * The plain-BullMQ baseline: the same work as durabull's orchestrations, written the way one would
 * with BullMQ alone. A chain is one job per step whose handler adds the next step's job; a fan-out
 * is a FlowProducer parent with N children (see w2.ts).
 */
import { type Job, type JobsOptions, Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { CompletionTracker } from './harness.js';

/**
 * The job options durabull gives its activity and wake jobs (packages/redis/src/redis-backend.ts:
 * ACTIVITY_JOB_OPTS, WAKE_JOB_OPTS), so both sides pay for the same retention and retry bookkeeping:
 * completed jobs are removed at once, failed ones kept (last 5,000), 20 attempts with backoff.
 */
export const JOB_OPTS: JobsOptions = {
  removeOnComplete: true,
  removeOnFail: { count: 5000 },
  attempts: 20,
  backoff: { type: 'exponential', delay: 200 },
};

/** One step of a chain: chain `c`, step `s` of `n`, value `v`. */
export interface ChainJob {
  c: string;
  s: number;
  n: number;
  v: number;
}

/** How the waiting side learns that a chain finished. */
export type ChainNotify =
  /** the in-process worker's `completed` event (no Redis command) */
  | 'local'
  /** QueueEvents on the queue's event stream (what a separate client would use) */
  | 'queue-events'
  /** the last step's handler PUBLISHes the chain id (like durabull's commit publishes a finished instance) */
  | 'publish';

/** Job id of step `s` of `n`: the last step is `<c>-end`, so a listener knows it without the job data. */
export function chainJobId(c: string, s: number, n: number): string {
  return s === n - 1 ? `${c}-end` : `${c}-${s}`;
}

export function doneChannel(prefix: string, queue: string): string {
  return `${prefix}:${queue}:bench-done`;
}

/** The chain step handler: returns v + 1 and adds the next step's job (or publishes `<chain>|<result>` at the end). */
export function chainProcessor(queue: Queue, publisher?: { conn: Redis; channel: string }) {
  return async (job: Job<ChainJob>): Promise<number> => {
    const d = job.data;
    const out = d.v + 1;
    const next = d.s + 1;
    if (next < d.n) {
      await queue.add('step', { c: d.c, s: next, n: d.n, v: out }, { ...JOB_OPTS, jobId: chainJobId(d.c, next, d.n) });
    } else if (publisher) {
      await publisher.conn.publish(publisher.channel, `${d.c}|${out}`);
    }
    return out;
  };
}

/** A chain queue with (optionally) an in-process worker, and a tracker of finished chains. */
export class BaselineChains {
  readonly conn: Redis;
  readonly queue: Queue;
  readonly done = new CompletionTracker();
  private worker: Worker | undefined;
  private events: QueueEvents | undefined;
  private eventsConn: Redis | undefined;
  private sub: Redis | undefined;

  constructor(
    private readonly url: string,
    readonly prefix: string,
    readonly name: string,
    private readonly concurrency: number,
    private readonly notify: ChainNotify,
    private readonly withWorker = true,
  ) {
    this.conn = new Redis(url, { maxRetriesPerRequest: null });
    this.queue = new Queue(name, { connection: this.conn, prefix });
  }

  async start(): Promise<this> {
    const ready: Promise<unknown>[] = [this.queue.waitUntilReady()];
    if (this.withWorker) {
      const publisher = this.notify === 'publish' ? { conn: this.conn, channel: doneChannel(this.prefix, this.name) } : undefined;
      this.worker = new Worker(this.name, chainProcessor(this.queue, publisher), {
        connection: this.conn,
        prefix: this.prefix,
        concurrency: this.concurrency,
      });
      this.worker.on('error', (err) => console.error(`baseline worker ${this.name}: ${err.message}`));
      if (this.notify === 'local') {
        this.worker.on('completed', (job: Job<ChainJob>, result: unknown) => {
          if (job.data.s === job.data.n - 1) this.done.mark(job.data.c, result);
        });
      }
      ready.push(this.worker.waitUntilReady());
    }
    if (this.notify === 'queue-events') {
      this.eventsConn = new Redis(this.url, { maxRetriesPerRequest: null });
      this.events = new QueueEvents(this.name, { connection: this.eventsConn, prefix: this.prefix });
      this.events.on('completed', ({ jobId, returnvalue }) => {
        if (jobId.endsWith('-end')) this.done.mark(jobId.slice(0, -4), returnvalue);
      });
      ready.push(this.events.waitUntilReady());
    }
    if (this.notify === 'publish') {
      this.sub = new Redis(this.url, { maxRetriesPerRequest: null });
      this.sub.on('message', (_channel: string, msg: string) => {
        const sep = msg.lastIndexOf('|');
        this.done.mark(msg.slice(0, sep), Number(msg.slice(sep + 1)));
      });
      ready.push(this.sub.subscribe(doneChannel(this.prefix, this.name)));
    }
    await Promise.all(ready);
    return this;
  }

  /** Adds the first step of chain `c` (n steps, starting value v). */
  begin(c: string, v: number, n: number): Promise<unknown> {
    return this.queue.add('step', { c, s: 0, n, v }, { ...JOB_OPTS, jobId: chainJobId(c, 0, n) });
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.events?.close();
    await this.queue.close();
    await this.sub?.quit().catch(() => undefined);
    await this.eventsConn?.quit().catch(() => undefined);
    await this.conn.quit().catch(() => undefined);
  }
}
