/**
 * A BullMQ worker that can complete a job in the script that does the job's work
 * (@durabull/redis's job-composites.ts): an activity's result delivery (processes that run no
 * episodes) or an episode's commit (processes that run no activities), instead of that script
 * before BullMQ's moveToFinished: one round trip per job less.
 *
 * An activity's processor asks for it by returning a {@link DeliverOnFinish}; `handleCompleted`
 * (BullMQ's hook after a job's processor resolved) then builds moveToFinished's keys and arguments
 * with BullMQ's own queue backend, as BullMQ's `Job.moveToCompleted` does, runs the composite, and
 * takes the next job its moveToFinished fetched, as BullMQ's own `handleCompleted` does. An
 * episode's processor builds them itself ({@link QueueWorker.finishCommand}) for the commit, and
 * returns a {@link FinishedInScript} with moveToFinished's reply once the commit completed the job.
 * Anything else a processor returns takes BullMQ's path. This relies on BullMQ 6.x internals (the queue
 * backend's `moveToCompletedArgs` and `moveToFinishedKeys`, the worker's `updateDelays`, ioredis'
 * `scriptsSet`); {@link QueueWorker.enableFinish} checks them, and without them the
 * processor is never asked to defer (test/src/activity-finish.test.ts fails if they change).
 */
import type { BullFinish } from '@durabull/redis';
import { Worker, raw2NextJobData, type Job } from 'bullmq';

/**
 * An activity result to deliver with its job's completion. `finish` runs the composite and
 * returns moveToFinished's raw reply; `deliverOnly` delivers without completing (the worker's
 * connection is closing: BullMQ would not complete the job, its next attempt finds the result).
 */
export class DeliverOnFinish {
  constructor(
    readonly finish: (cmd: BullFinish) => Promise<unknown>,
    readonly deliverOnly: () => Promise<void>,
  ) {}
}

interface QueueBackendInternals {
  closing?: boolean;
  client?: Promise<unknown>;
  version?: string;
  moveToFinishedKeys?: unknown[];
  moveToCompletedArgs?: (job: Job, returnValue: string, removeOnComplete: unknown, token: string, fetchNext: boolean) => BullFinish['args'];
  finishedErrors?: (o: { code: number; jobId?: string; command: string; state?: string }) => Error;
}

/** What an episode's processor returns when its commit completed the job: moveToFinished's raw reply. */
export class FinishedInScript {
  constructor(
    readonly reply: unknown,
    /** The completion time the script wrote (moveToFinished's timestamp argument). */
    readonly finishedOn: number,
  ) {}
}

export class QueueWorker extends Worker {
  /** BullMQ's moveToFinished Lua, once {@link enableFinish} found what the composite needs. */
  private finishLua: string | undefined;

  /** Whether a processor may complete its job in its own script ({@link DeliverOnFinish}, {@link finishCommand}). */
  get canFinishWithDelivery(): boolean {
    return this.finishLua !== undefined;
  }

  /**
   * BullMQ's moveToFinished for `job` (taken with `token`), built now, for a script that completes
   * the job itself; the processor then returns a {@link FinishedInScript}. It fetches the next job
   * as BullMQ's own completion would (while the worker's loop has room and it is not closing).
   */
  finishCommand(job: Job, token: string): BullFinish & { finishedOn: number } {
    const loop = (this as unknown as { mainLoopQueue?: { numTotal(): number } | null }).mainLoopQueue;
    return this.moveToFinishedCommand(job, token, !this.queueBackend().closing && (!loop || loop.numTotal() <= this.concurrency));
  }

  /**
   * BullMQ's moveToFinished for `job`, with the keys and arguments its queue backend builds (as
   * `Job.moveToCompleted` does), and the completion time it writes; it fetches the next job when
   * `fetchNext` and the worker is neither closing nor paused.
   */
  private moveToFinishedCommand(job: Job, token: string, fetchNext: boolean): BullFinish & { finishedOn: number } {
    const qb = this.queueBackend();
    const keyCount = qb.moveToFinishedKeys!.length;
    const args = qb.moveToCompletedArgs!(job, 'null', job.opts.removeOnComplete, token, fetchNext && !(this.closing || this.paused));
    return { lua: this.finishLua!, keyCount, args, finishedOn: Number(args[keyCount + 1]) };
  }

  /**
   * After `waitUntilReady`: reads BullMQ's moveToFinished Lua off the worker's connection and checks
   * the queue backend's methods; says whether the composite can be used.
   */
  async enableFinish(): Promise<boolean> {
    const qb = this.queueBackend();
    if (typeof qb.moveToCompletedArgs !== 'function' || typeof qb.finishedErrors !== 'function' || !Array.isArray(qb.moveToFinishedKeys) || typeof qb.version !== 'string') return false;
    if (typeof (this as unknown as { updateDelays?: unknown }).updateDelays !== 'function') return false;
    const client = (await qb.client) as { scriptsSet?: Record<string, { lua?: unknown } | undefined> };
    const lua = client.scriptsSet?.[`moveToFinished:${qb.version}`]?.lua;
    if (typeof lua !== 'string') return false;
    this.finishLua = lua;
    return true;
  }

  protected override async handleCompleted(result: unknown, job: Job, token: string, fetchNextCallback: () => boolean = () => true, span?: unknown): Promise<Job> {
    if (result instanceof FinishedInScript) return this.afterFinish(result.reply, job, result.finishedOn, token);
    if (!(result instanceof DeliverOnFinish) || this.finishLua === undefined) {
      return super.handleCompleted(result, job, token, fetchNextCallback, span as Parameters<Worker['handleCompleted']>[4]);
    }
    const qb = this.queueBackend();
    if (qb.closing) {
      // BullMQ would not complete the job now: its result is delivered all the same.
      await result.deliverOnly();
      return undefined as unknown as Job;
    }
    const { finishedOn, ...cmd } = this.moveToFinishedCommand(job, token, fetchNextCallback());
    return this.afterFinish(await result.finish(cmd), job, finishedOn, token);
  }

  /** What BullMQ's handleCompleted does after its moveToFinished: the job's fields, `completed`, the next job. */
  private async afterFinish(finished: unknown, job: Job, finishedOn: number, token: string): Promise<Job> {
    const qb = this.queueBackend();
    if (typeof finished === 'number' && finished < 0) {
      throw qb.finishedErrors!({ code: finished, jobId: job.id, command: 'moveToFinished', state: 'active' });
    }
    job.finishedOn = finishedOn;
    job.attemptsMade += 1;
    this.emit('completed', job, undefined, 'active');
    if (Array.isArray(finished)) {
      const [jobData, jobId, rateLimitDelay, delayUntil] = raw2NextJobData(finished);
      (this as unknown as { updateDelays(r?: number, d?: number): void }).updateDelays(rateLimitDelay as number | undefined, delayUntil as number | undefined);
      return this.nextJobFromJobData(jobData as Parameters<Worker['nextJobFromJobData']>[0], jobId as string | undefined, token);
    }
    return undefined as unknown as Job;
  }

  private queueBackend(): QueueBackendInternals {
    return (this as unknown as { backend: QueueBackendInternals }).backend;
  }
}
