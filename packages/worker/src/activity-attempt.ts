/**
 * One attempt of an activity: its context (`ActivityContext`), its timeouts, its heartbeats and its
 * cancellation.
 *
 * Timeouts are kept in the process by one timer, and in Redis by a deadline record that the
 * workers' sweep reads (so they hold when this process dies or hangs): the record is written at
 * the start of an attempt with a heartbeat timeout, and, for one without, only once it has run for
 * half its start-to-close timeout or one second, whichever is sooner. An attempt that ends before
 * (the common short activity) sends nothing to Redis for its timeouts.
 */
import { type ActivityContext, ActivityCancelledError, type ActivityFunction, ActivityTimeoutError, type ActivityTimeoutType } from '@durabull/core';
import { type RedisBackend, encodePayload, formatAttemptInfo } from '@durabull/redis';
import type { Logger } from 'pino';

/** How an attempt ended. */
export type AttemptEnd =
  | { kind: 'settled'; value: unknown }
  | { kind: 'threw'; error: unknown }
  | { kind: 'timeout'; error: ActivityTimeoutError }
  | { kind: 'cancelled'; error: ActivityCancelledError };

/** What an attempt runs under. */
export interface AttemptSettings {
  instanceId: string;
  executionId: string;
  taskId: number;
  name: string;
  attempt: number;
  /** Infinity for none. */
  startToCloseTimeoutMs: number;
  heartbeatTimeoutMs: number | undefined;
  /** Where its heartbeat details go: `<execution>|<task id of the first attempt>`. */
  detailsField: string;
  lastHeartbeatDetails: unknown;
}

/** Heartbeats reach Redis at most once per this share of the heartbeat timeout (Temporal's throttle)... */
const HEARTBEAT_THROTTLE_SHARE = 0.8;
/** ...and at most once per 30 s without one (or with a long one). */
const MAX_HEARTBEAT_THROTTLE_MS = 30_000;
/** An attempt without a heartbeat timeout records its deadline once it has run this long (or half its timeout). */
const RECORD_AFTER_MS = 1000;
/** Node's longest timer. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class ActivityAttempt implements ActivityContext {
  readonly instanceId: string;
  readonly executionId: string;
  readonly taskId: number;
  readonly name: string;
  readonly attempt: number;
  readonly startToCloseTimeoutMs: number;
  readonly heartbeatTimeoutMs: number | undefined;
  readonly lastHeartbeatDetails: unknown;
  readonly startedAt = Date.now();
  private readonly detailsField: string;
  private controller: AbortController | undefined;
  private reason: Error | undefined;
  private lastBeat: number;
  private timer: NodeJS.Timeout | undefined;
  private finish: ((end: AttemptEnd) => void) | undefined;
  private done = false;
  /** When the deadline is to be recorded in Redis (Infinity: never, or done). */
  private recordAt: number;
  /** The record as written (for its removal), once written. */
  private recorded: string | undefined;
  /** Details given to `heartbeat` and not yet sent. */
  private unsent: Buffer | undefined;
  /** A heartbeat call not yet sent (with or without details). */
  private dirty = false;
  private lastSent = 0;
  private sending: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  /** Details were written to Redis: removed once the task succeeds. */
  private wroteDetails = false;

  constructor(
    private readonly backend: RedisBackend,
    private readonly log: Logger,
    s: AttemptSettings,
  ) {
    this.instanceId = s.instanceId;
    this.executionId = s.executionId;
    this.taskId = s.taskId;
    this.name = s.name;
    this.attempt = s.attempt;
    this.startToCloseTimeoutMs = s.startToCloseTimeoutMs;
    this.heartbeatTimeoutMs = s.heartbeatTimeoutMs;
    this.lastHeartbeatDetails = s.lastHeartbeatDetails;
    this.detailsField = s.detailsField;
    this.lastBeat = this.startedAt;
    const t = s.startToCloseTimeoutMs;
    this.recordAt =
      s.heartbeatTimeoutMs !== undefined ? this.startedAt : Number.isFinite(t) ? this.startedAt + Math.min(RECORD_AFTER_MS, Math.floor(t / 2)) : Number.POSITIVE_INFINITY;
  }

  /** Created on first use: most activities never read it. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  heartbeat(details?: unknown): void {
    if (this.done) return;
    this.lastBeat = Date.now();
    // Encoded at the call, so that details that cannot be stored throw PayloadError here.
    if (details !== undefined) this.unsent = encodePayload(details, `Heartbeat details of activity '${this.name}'`, this.backend.maxPayloadBytes);
    this.dirty = true;
    this.sendSoon();
  }

  /**
   * Runs the activity's code and resolves with how the attempt ended: its code settled, its
   * timeout ran out, or it was cancelled (the code may go on; what it does then is dropped).
   */
  run(fn: ActivityFunction, input: unknown): Promise<AttemptEnd> {
    return new Promise<AttemptEnd>((resolve) => {
      this.finish = resolve;
      this.arm();
      let result: unknown;
      try {
        result = fn(input, this);
      } catch (error) {
        this.end({ kind: 'threw', error });
        return;
      }
      if (result instanceof Promise || (typeof result === 'object' && result !== null && typeof (result as PromiseLike<unknown>).then === 'function')) {
        Promise.resolve(result).then(
          (value) => this.end({ kind: 'settled', value }),
          (error: unknown) => this.end({ kind: 'threw', error }),
        );
      } else {
        this.end({ kind: 'settled', value: result });
      }
    });
  }

  /** Cancels the attempt (terminate, task done, shutdown): aborts its signal and ends it at once. */
  cancel(reason: ActivityCancelledError['reason']): void {
    if (this.done) return;
    const error = new ActivityCancelledError(this.name, reason);
    this.abortWith(error);
    this.end({ kind: 'cancelled', error });
  }

  /**
   * After the attempt: its deadline record goes; a failed attempt's last details are sent (the
   * next attempt reads them), a successful one's are removed. Not awaited: the result's delivery,
   * sent after on the same connection, follows them.
   */
  settleRecords(succeeded: boolean): void {
    const quiet = (p: Promise<unknown>) => void p.catch((err: unknown) => this.log.debug({ err, instanceId: this.instanceId, taskId: this.taskId }, 'Activity attempt record not updated'));
    if (!succeeded && this.unsent) quiet(this.send(false));
    // The task is done: its details (this attempt's, or an earlier one's) are no longer needed.
    else if (succeeded && (this.wroteDetails || this.lastHeartbeatDetails !== undefined)) {
      quiet(this.backend.redis.hdel(this.backend.keys.heartbeats(this.instanceId), this.detailsField));
    }
    if (this.recorded) quiet(this.backend.endActivityAttempt(this.instanceId, this.executionId, this.taskId, this.recorded));
  }

  // ---- internals ----

  private end(end: AttemptEnd): void {
    if (this.done) return;
    this.done = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.timer = this.flushTimer = undefined;
    this.finish?.(end);
  }

  private abortWith(error: Error): void {
    this.reason = error;
    this.controller?.abort(error);
  }

  private timeout(type: ActivityTimeoutType, now: number): void {
    const ms = type === 'heartbeat' ? this.heartbeatTimeoutMs! : this.startToCloseTimeoutMs;
    const error = new ActivityTimeoutError(this.name, type, ms, now - this.startedAt);
    this.abortWith(error);
    this.end({ kind: 'timeout', error });
  }

  /** The deadline as Redis keeps it: the sooner of the start-to-close and the heartbeat deadlines. */
  private deadline(): number {
    const stc = this.startedAt + this.startToCloseTimeoutMs;
    return this.heartbeatTimeoutMs === undefined ? stc : Math.min(stc, this.lastBeat + this.heartbeatTimeoutMs);
  }

  /** One timer for whatever comes first: a timeout, or the time to record the deadline. */
  private arm(): void {
    if (this.done) return;
    if (this.timer) clearTimeout(this.timer);
    const now = Date.now();
    const next = Math.min(this.deadline(), this.recordAt);
    if (next <= now) {
      this.onTimer();
      return;
    }
    if (!Number.isFinite(next)) return;
    this.timer = setTimeout(() => this.onTimer(), Math.min(next - now, MAX_TIMER_MS));
    this.timer.unref();
  }

  private onTimer(): void {
    this.timer = undefined;
    if (this.done) return;
    const now = Date.now();
    if (now >= this.startedAt + this.startToCloseTimeoutMs) return this.timeout('start-to-close', now);
    if (this.heartbeatTimeoutMs !== undefined && now >= this.lastBeat + this.heartbeatTimeoutMs) return this.timeout('heartbeat', now);
    if (now >= this.recordAt) {
      this.recordAt = Number.POSITIVE_INFINITY;
      // The deadline alone: it does not count against the heartbeats' throttle.
      if (this.sending || this.flushTimer) this.dirty = true;
      else this.sending = this.send(true, false).finally(() => this.afterSend());
    }
    this.arm();
  }

  /** Sends now when the throttle allows, else once it does (the last call's details then). */
  private sendSoon(): void {
    if (this.sending || this.flushTimer) return;
    const throttle =
      this.heartbeatTimeoutMs === undefined
        ? MAX_HEARTBEAT_THROTTLE_MS
        : Math.max(10, Math.min(MAX_HEARTBEAT_THROTTLE_MS, Math.floor(this.heartbeatTimeoutMs * HEARTBEAT_THROTTLE_SHARE)));
    const wait = this.lastSent + throttle - Date.now();
    if (wait > 0) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        if (this.dirty && !this.done) this.sendSoon();
      }, wait);
      this.flushTimer.unref();
      return;
    }
    this.sending = this.send(true).finally(() => this.afterSend());
  }

  private afterSend(): void {
    this.sending = undefined;
    if (this.dirty && !this.done) this.sendSoon();
  }

  /**
   * One heartbeat script: the details not yet sent, and the deadline (while the attempt runs).
   * `beat`: it carries a heartbeat call (throttled), not only the deadline.
   */
  private async send(withDeadline: boolean, beat = true): Promise<void> {
    if (beat) {
      this.dirty = false;
      this.lastSent = Date.now();
    }
    const details = this.unsent;
    this.unsent = undefined;
    // The attempt's record carries what the sweep needs to name the timeout.
    const record =
      withDeadline && Number.isFinite(this.deadline())
        ? {
            at: this.deadline(),
            info: formatAttemptInfo({
              attempt: this.attempt,
              startedAt: this.startedAt,
              startToCloseTimeoutMs: Number.isFinite(this.startToCloseTimeoutMs) ? this.startToCloseTimeoutMs : 0,
              heartbeatTimeoutMs: this.heartbeatTimeoutMs ?? 0,
              name: this.name,
            }),
          }
        : undefined;
    // Set before the reply: a success that ends the attempt meanwhile removes them after this write.
    if (details) this.wroteDetails = true;
    try {
      const reply = await this.backend.heartbeatActivity(this.instanceId, this.executionId, this.taskId, {
        ...(details ? { details: { field: this.detailsField, bytes: details } } : {}),
        ...(record ? { deadline: record } : {}),
      });
      if (reply === 'ok') {
        if (record) {
          this.recorded = record.info;
          // Ended meanwhile: the record goes at once.
          if (this.done) void this.backend.endActivityAttempt(this.instanceId, this.executionId, this.taskId, record.info).catch(() => undefined);
        }
        return;
      }
      // The task does not wait for this attempt any more: stop it (nothing it returns is kept).
      this.cancel(reply === 'terminated' ? 'terminated' : 'task-done');
    } catch (err) {
      // Redis unreachable: the attempt goes on (its timeouts are kept here meanwhile); the next heartbeat sends again.
      if (details && !this.unsent) this.unsent = details;
      this.dirty = true;
      this.log.warn({ err, instanceId: this.instanceId, taskId: this.taskId }, 'Activity heartbeat not recorded; retrying at the next interval');
    }
  }
}
