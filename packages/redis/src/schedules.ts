/**
 * Schedules: start an orchestration on a cron expression (in a time zone) or at a fixed interval.
 *
 * The timer is BullMQ's: each schedule has a job scheduler (`Queue.upsertJobScheduler`) on the
 * orchestrator queue, whose delayed job for the next tick a worker takes, as any job, and whose
 * next tick BullMQ adds when the job is taken (again by another worker if the first one died with
 * it: the stalled-job check). What counts is the schedule's record in Redis (`writeSchedule`); the
 * job scheduler is written after it, and put right by the workers' sweep and at the next tick when
 * a caller died in between.
 *
 * One instance per tick whatever the number of workers, also when a worker dies at the tick: the
 * instance id is derived from the schedule id and the tick (`<schedule id>@<tick>`), and the start
 * refuses an id that exists (`refuseExisting`), so a tick handled twice starts one instance. Which
 * ticks start anything is decided by one script per tick (`fireSchedule`), under the overlap
 * policy.
 */
import {
  InstanceAlreadyExistsError,
  ScheduleAlreadyExistsError,
  ScheduleNotFoundError,
  ValidationError,
  assertFunctionName,
  assertOptionalBoolean,
  assertOptionalInteger,
  assertOptions,
  assertScheduleId,
  describeValue,
  invalidArgument,
  parseTimeArgument,
} from '@durabull/core';
import { DelayedError, type Job, type JobsOptions, type RepeatOptions, UnrecoverableError } from 'bullmq';
import { CronExpressionParser } from 'cron-parser';
import { decode, encodePayload } from './codec.js';
import type { RedisBackend } from './redis-backend.js';

/**
 * What a tick does while the instance the schedule started last is still running: `skip` it
 * (the default, as Temporal's), `bufferOne` (start it once that one has finished; one tick waits
 * at most, later ones are skipped), or `allowAll` (start it anyway).
 */
export type OverlapPolicy = 'skip' | 'bufferOne' | 'allowAll';
const OVERLAP_POLICIES: readonly OverlapPolicy[] = ['skip', 'bufferOne', 'allowAll'];

/** Default of {@link ScheduleSpec.catchupWindowMs}: one hour. */
export const DEFAULT_CATCHUP_WINDOW_MS = 3_600_000;
/** The shortest interval of a schedule. */
export const MIN_SCHEDULE_INTERVAL_MS = 1000;
/** At most this many missed ticks are looked at when a late tick catches up (the latest ones). */
export const MAX_CATCHUP_TICKS = 1000;
/** How often a buffered tick checks whether the instance before it has finished. */
export const BUFFER_CHECK_MS = 1000;
/** BullMQ job names on the orchestrator queue: a schedule's tick, and a buffered tick's check. */
export const SCHEDULE_JOB = 'schedule';
export const SCHEDULE_BUFFER_JOB = 'schedule-buffer';

/** What a schedule does and when: the orchestrator and its input, and a cron expression or an interval. */
export interface ScheduleSpec {
  /** The orchestrator each tick starts. */
  orchestrator: string;
  /** Its input (the same for every tick). */
  input?: unknown;
  /**
   * A cron expression: five fields (minute hour day-of-month month day-of-week) or six with
   * seconds first; `@daily` and the like. Exactly one of `cron` and `intervalMs`.
   */
  cron?: string;
  /** The IANA time zone the cron expression is read in (`Europe/Paris`). Default `UTC`; cron only. */
  timeZone?: string;
  /**
   * A fixed interval in ms (>= 1000): ticks at multiples of it from `startAt`, or from the Unix
   * epoch (every hour on the hour).
   */
  intervalMs?: number;
  /** No tick before this time. */
  startAt?: Date;
  /** No tick after this time. */
  endAt?: Date;
  /** Default `skip`. */
  overlap?: OverlapPolicy;
  /**
   * Ticks missed while no worker ran (or while all were busy) are started when a worker takes the
   * late tick, as long as they are at most this late (ms, >= 1000): the latest of them, at most
   * 1000, each under the overlap policy. Default one hour.
   */
  catchupWindowMs?: number;
}

/** A schedule as stored, with its state. */
export interface Schedule extends ScheduleSpec {
  scheduleId: string;
  overlap: OverlapPolicy;
  catchupWindowMs: number;
  paused: boolean;
  createdAt: Date;
  updatedAt: Date;
  /** Bumped by every change of the spec. */
  revision: number;
  /** The next tick, computed from the spec (none while paused, or after `endAt`). */
  nextRunAt?: Date;
  /** The tick of the instance it started last, and that instance. */
  lastTick?: Date;
  lastInstanceId?: string;
  /** A tick waiting for the last instance to finish (`bufferOne`). */
  bufferedTick?: Date;
  /** Ticks that started an instance, and ticks skipped (overlap, pause, missed beyond the catch-up window). */
  started: number;
  skipped: number;
}

/** What a tick did. */
export interface FireResult {
  outcome: 'started' | 'buffered' | 'skipped';
  /** The instance it started, or will start once the one before it has finished (`buffered`). */
  instanceId?: string;
}

/** A page of {@link ScheduleStore.list}. */
export interface SchedulePage {
  schedules: Schedule[];
  nextCursor?: string;
}

type Arg = string | Buffer | number;
type ScheduleScripts = {
  writeSchedule(...args: Arg[]): Promise<[number, number?, string?]>;
  fireSchedule(...args: Arg[]): Promise<[number]>;
};

/** Job options of the jobs the schedulers add: retried like every durabull job, not kept once done. */
const SCHEDULE_JOB_OPTS: JobsOptions = { removeOnComplete: true, removeOnFail: { count: 1000 }, attempts: 20, backoff: { type: 'exponential', delay: 200 } };

/** The id of the instance a schedule starts for a tick: `<schedule id>@<tick as ISO 8601 basic, UTC, ms>`. */
export function scheduleInstanceId(scheduleId: string, tick: number): string {
  const iso = new Date(tick).toISOString(); // 2024-06-10T00:00:00.000Z
  return `${scheduleId}@${iso.replace(/[-:]/g, '')}`; // 20240610T000000.000Z
}

/** A spec with its times as Dates and every field checked; the input encoded. */
interface CheckedSpec extends ScheduleSpec {
  overlap: OverlapPolicy;
  catchupWindowMs: number;
}

/** The fields of create/update (and of the HTTP API and CLI), checked: ValidationError naming the field. */
export function checkScheduleSpec(where: string, arg: string, spec: unknown, now = Date.now()): CheckedSpec {
  assertOptions(where, arg, spec);
  if (spec === undefined) throw invalidArgument(where, arg, 'an object', spec);
  const o = spec as Record<string, unknown>;
  if (typeof o.orchestrator !== 'string') throw invalidArgument(where, `${arg}.orchestrator`, 'a string (the orchestrator name)', o.orchestrator);
  assertFunctionName('orchestrator', o.orchestrator, where);
  const out: CheckedSpec = { orchestrator: o.orchestrator, overlap: 'skip', catchupWindowMs: DEFAULT_CATCHUP_WINDOW_MS };
  if (o.input !== undefined) out.input = o.input;
  if (o.cron !== undefined && o.intervalMs !== undefined) {
    throw new ValidationError(`${where}: give ${arg}.cron or ${arg}.intervalMs, not both`);
  }
  if (o.cron === undefined && o.intervalMs === undefined) {
    throw new ValidationError(`${where}: ${arg} needs a cron expression (${arg}.cron) or an interval (${arg}.intervalMs)`);
  }
  if (o.timeZone !== undefined) {
    if (o.cron === undefined) throw new ValidationError(`${where}: ${arg}.timeZone applies to a cron expression only; an interval is the same in every time zone`);
    out.timeZone = checkTimeZone(where, `${arg}.timeZone`, o.timeZone);
  }
  if (o.cron !== undefined) {
    out.cron = checkCron(where, `${arg}.cron`, o.cron, out.timeZone ?? 'UTC', now);
  } else {
    const every = o.intervalMs;
    if (typeof every !== 'number' || !Number.isInteger(every) || every < MIN_SCHEDULE_INTERVAL_MS) {
      throw invalidArgument(where, `${arg}.intervalMs`, `an integer number of ms >= ${MIN_SCHEDULE_INTERVAL_MS} (one second)`, every);
    }
    out.intervalMs = every;
  }
  if (o.startAt !== undefined && o.startAt !== null) out.startAt = parseTimeArgument(where, `${arg}.startAt`, o.startAt);
  if (o.endAt !== undefined && o.endAt !== null) out.endAt = parseTimeArgument(where, `${arg}.endAt`, o.endAt);
  if (out.startAt && out.endAt && out.endAt.getTime() <= out.startAt.getTime()) {
    throw new ValidationError(`${where}: ${arg}.endAt (${out.endAt.toISOString()}) must be after ${arg}.startAt (${out.startAt.toISOString()})`);
  }
  if (o.overlap !== undefined) {
    if (!OVERLAP_POLICIES.includes(o.overlap as OverlapPolicy)) throw invalidArgument(where, `${arg}.overlap`, `one of ${OVERLAP_POLICIES.map((p) => `'${p}'`).join(', ')}`, o.overlap);
    out.overlap = o.overlap as OverlapPolicy;
  }
  if (o.catchupWindowMs !== undefined) {
    assertOptionalInteger(where, `${arg}.catchupWindowMs`, o.catchupWindowMs, 1000);
    out.catchupWindowMs = o.catchupWindowMs as number;
  }
  return out;
}

/** An IANA time zone name that this runtime knows (`Intl`) and the cron parser can use. */
function checkTimeZone(where: string, arg: string, tz: unknown): string {
  if (typeof tz !== 'string' || tz.length === 0 || tz.length > 64) throw invalidArgument(where, arg, 'an IANA time zone name such as "Europe/Paris"', tz);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ValidationError(`${where}: ${arg} ${JSON.stringify(tz)} is not a time zone this runtime knows; use an IANA name such as "Europe/Paris" or "UTC"`);
  }
  return tz;
}

function checkCron(where: string, arg: string, cron: unknown, tz: string, now: number): string {
  if (typeof cron !== 'string' || cron.trim().length === 0 || cron.length > 256) {
    throw invalidArgument(where, arg, 'a cron expression such as "0 3 * * *"', cron);
  }
  try {
    CronExpressionParser.parse(cron, { tz, currentDate: new Date(now) }).next();
  } catch (err) {
    throw new ValidationError(`${where}: ${arg} ${JSON.stringify(cron)} is not a valid cron expression: ${(err as Error).message}`);
  }
  return cron;
}

/** The ticks of `spec` after `after` (exclusive) and at or before `until`, the latest `max` of them, oldest first. */
export function ticksBetween(spec: ScheduleSpec, after: number, until: number, max = MAX_CATCHUP_TICKS): number[] {
  return countTicks(spec, after, until, max).latest;
}

/**
 * How many ticks of `spec` fall after `after` and at or before `until` (for a cron expression,
 * counted up to `max`: a long outage is not walked tick by tick), and the latest `max` of them,
 * oldest first.
 */
function countTicks(spec: ScheduleSpec, after: number, until: number, max: number): { count: number; latest: number[] } {
  if (until <= after) return { count: 0, latest: [] };
  if (spec.intervalMs !== undefined) {
    const every = spec.intervalMs;
    const anchor = spec.startAt?.getTime() ?? 0;
    const last = anchor + Math.floor((until - anchor) / every) * every;
    const first = anchor + (Math.floor((after - anchor) / every) + 1) * every;
    const count = last < first ? 0 : (last - first) / every + 1;
    const latest: number[] = [];
    for (let t = last; t >= first && latest.length < max; t -= every) latest.push(t);
    return { count, latest: latest.reverse() };
  }
  // Backwards from `until`: the latest ticks, however long ago `after` is.
  const it = CronExpressionParser.parse(spec.cron!, { tz: spec.timeZone ?? 'UTC', currentDate: new Date(until + 1) });
  const latest: number[] = [];
  while (latest.length < max) {
    let t: number;
    try {
      t = it.prev().getTime();
    } catch {
      break; // no earlier occurrence
    }
    if (t <= after) break;
    latest.push(t);
  }
  return { count: latest.length, latest: latest.reverse() };
}

/** The first tick of `spec` after `now` (undefined when there is none before `endAt`). */
export function nextTick(spec: ScheduleSpec, now: number): number | undefined {
  const from = Math.max(now, (spec.startAt?.getTime() ?? Number.NEGATIVE_INFINITY) - 1);
  let t: number | undefined;
  if (spec.intervalMs !== undefined) {
    const every = spec.intervalMs;
    const anchor = spec.startAt?.getTime() ?? 0;
    t = anchor + (Math.floor((from - anchor) / every) + 1) * every;
  } else {
    try {
      t = CronExpressionParser.parse(spec.cron!, { tz: spec.timeZone ?? 'UTC', currentDate: new Date(from) }).next().getTime();
    } catch {
      return undefined;
    }
  }
  return spec.endAt && t > spec.endAt.getTime() ? undefined : t;
}

/** A stored schedule with its input still encoded (what a tick passes on to the start). */
interface StoredSchedule extends Schedule {
  inputBuf: Buffer;
}

/** The hash of a schedule: its spec as written, then its state. */
function parseSchedule(scheduleId: string, h: Record<string, Buffer>, now: number): StoredSchedule | undefined {
  if (!h.name) return undefined;
  const str = (k: string) => h[k]?.toString('utf8');
  const num = (k: string) => (h[k] === undefined ? undefined : Number(str(k)));
  const inputBuf = h.input ?? Buffer.alloc(0);
  const s: StoredSchedule = {
    scheduleId,
    orchestrator: str('name')!,
    input: inputBuf.length > 0 ? decode(inputBuf) : undefined,
    overlap: (str('overlap') ?? 'skip') as OverlapPolicy,
    catchupWindowMs: num('catchup') ?? DEFAULT_CATCHUP_WINDOW_MS,
    paused: str('paused') === '1',
    createdAt: new Date(num('createdAt') ?? 0),
    updatedAt: new Date(num('updatedAt') ?? 0),
    revision: num('rev') ?? 0,
    started: num('started') ?? 0,
    skipped: num('skipped') ?? 0,
    inputBuf,
  };
  if (h.cron) s.cron = str('cron')!;
  if (h.tz) s.timeZone = str('tz')!;
  if (h.every) s.intervalMs = num('every')!;
  if (h.startAt) s.startAt = new Date(num('startAt')!);
  if (h.endAt) s.endAt = new Date(num('endAt')!);
  if (h.last) s.lastInstanceId = str('last')!;
  if (h.lastTick) s.lastTick = new Date(num('lastTick')!);
  if (h.buf) s.bufferedTick = new Date(num('buf')!);
  if (!s.paused) {
    const next = nextTick(s, now);
    if (next !== undefined) s.nextRunAt = new Date(next);
  }
  return s;
}

/** The spec as the hash's field/value pairs. */
function specFields(spec: CheckedSpec, maxPayloadBytes: number): Arg[] {
  const f: Arg[] = ['name', spec.orchestrator, 'input', encodePayload(spec.input, `Input of the schedule's orchestrator '${spec.orchestrator}'`, maxPayloadBytes)];
  if (spec.cron !== undefined) f.push('cron', spec.cron);
  if (spec.timeZone !== undefined) f.push('tz', spec.timeZone);
  if (spec.intervalMs !== undefined) f.push('every', spec.intervalMs);
  if (spec.startAt) f.push('startAt', spec.startAt.getTime());
  if (spec.endAt) f.push('endAt', spec.endAt.getTime());
  f.push('overlap', spec.overlap, 'catchup', spec.catchupWindowMs);
  return f;
}

/** The public view of a stored schedule. */
function toSchedule(s: StoredSchedule): Schedule {
  const { inputBuf: _, ...rest } = s;
  return rest;
}

/** The schedules of one task hub partition (`RedisBackend.schedules`). */
export class ScheduleStore {
  constructor(private readonly backend: RedisBackend) {}

  /** Run before a schedule is first written (the router stores the hub's partition map). */
  beforeWrite: (() => Promise<void>) | undefined;

  private get scripts(): ScheduleScripts {
    return this.backend.redis as unknown as ScheduleScripts;
  }

  /**
   * Creates a schedule and its BullMQ job scheduler (none while `paused`). Throws
   * ScheduleAlreadyExistsError for an id in use, ValidationError for a bad spec, and
   * OrchestratorNotServedError (unless `allowUnknownName`) like `startNew`; nothing is written then.
   */
  async create(scheduleId: string, spec: ScheduleSpec, opts: { paused?: boolean; allowUnknownName?: boolean; now?: number } = {}): Promise<Schedule> {
    assertScheduleId(scheduleId, 'schedules.create');
    const now = opts.now ?? Date.now();
    const checked = checkScheduleSpec('schedules.create', 'options', spec, now);
    assertOptionalBoolean('schedules.create', 'options.paused', opts.paused);
    const fields = specFields(checked, this.backend.maxPayloadBytes);
    if (opts.paused) fields.push('paused', 1);
    if (opts.allowUnknownName !== true) await this.backend.workerRegistry.assertServed(checked.orchestrator);
    await this.beforeWrite?.();
    const res = await this.scripts.writeSchedule(this.backend.keys.schedule(scheduleId), this.backend.keys.schedules, 'create', scheduleId, now, ...fields);
    if (res[0] === -1) throw new ScheduleAlreadyExistsError(scheduleId);
    if (!opts.paused) await this.upsertScheduler(scheduleId, checked, res[1]!, now);
    return (await this.get(scheduleId)) ?? this.notFound(scheduleId);
  }

  /**
   * Changes a schedule: `changes` is merged onto its spec (a `cron` or `intervalMs` replaces the
   * other; `startAt` / `endAt` null removes them). The instances it started are left alone.
   */
  async update(scheduleId: string, changes: Partial<ScheduleSpec> & { startAt?: Date | null; endAt?: Date | null }, opts: { now?: number } = {}): Promise<Schedule> {
    assertScheduleId(scheduleId, 'schedules.update');
    assertOptions('schedules.update', 'changes', changes);
    const now = opts.now ?? Date.now();
    const cur = await this.read(scheduleId, now);
    if (!cur) this.notFound(scheduleId);
    const merged: Record<string, unknown> = {
      orchestrator: cur.orchestrator,
      input: cur.input,
      cron: cur.cron,
      timeZone: cur.timeZone,
      intervalMs: cur.intervalMs,
      startAt: cur.startAt,
      endAt: cur.endAt,
      overlap: cur.overlap,
      catchupWindowMs: cur.catchupWindowMs,
    };
    const c = (changes ?? {}) as Record<string, unknown>;
    if (c.cron !== undefined || c.intervalMs !== undefined) {
      merged.cron = undefined;
      merged.intervalMs = undefined;
      merged.timeZone = undefined;
    }
    for (const [k, v] of Object.entries(c)) if (v !== undefined && k in merged) merged[k] = v;
    if ('input' in c) merged.input = c.input;
    const checked = checkScheduleSpec('schedules.update', 'changes', merged, now);
    const res = await this.scripts.writeSchedule(
      this.backend.keys.schedule(scheduleId),
      this.backend.keys.schedules,
      'update',
      scheduleId,
      now,
      ...specFields(checked, this.backend.maxPayloadBytes),
    );
    if (res[0] === -2) this.notFound(scheduleId);
    if (res[2] !== '1') await this.upsertScheduler(scheduleId, checked, res[1]!, now);
    return (await this.get(scheduleId)) ?? this.notFound(scheduleId);
  }

  /** Pauses a schedule: its job scheduler is removed, and a tick already taken starts nothing. */
  async pause(scheduleId: string): Promise<void> {
    assertScheduleId(scheduleId, 'schedules.pause');
    const res = await this.scripts.writeSchedule(this.backend.keys.schedule(scheduleId), this.backend.keys.schedules, 'pause', scheduleId, Date.now());
    if (res[0] === -2) this.notFound(scheduleId);
    await this.backend.orchestratorQueue.removeJobScheduler(scheduleId);
  }

  /** Resumes a paused schedule from its next tick (the ticks of the pause are not caught up). */
  async resume(scheduleId: string): Promise<void> {
    assertScheduleId(scheduleId, 'schedules.resume');
    const now = Date.now();
    const res = await this.scripts.writeSchedule(this.backend.keys.schedule(scheduleId), this.backend.keys.schedules, 'resume', scheduleId, now);
    if (res[0] === -2) this.notFound(scheduleId);
    const cur = await this.read(scheduleId, now);
    if (cur && !cur.paused) await this.upsertScheduler(scheduleId, cur, cur.revision, now);
  }

  /** Deletes a schedule and its job scheduler; the instances it started are left alone. */
  async delete(scheduleId: string): Promise<void> {
    assertScheduleId(scheduleId, 'schedules.delete');
    const res = await this.scripts.writeSchedule(this.backend.keys.schedule(scheduleId), this.backend.keys.schedules, 'delete', scheduleId, Date.now());
    if (res[0] === -2) this.notFound(scheduleId);
    await this.backend.orchestratorQueue.removeJobScheduler(scheduleId);
  }

  /** The schedule, or undefined. */
  async get(scheduleId: string): Promise<Schedule | undefined> {
    assertScheduleId(scheduleId, 'schedules.get');
    const s = await this.read(scheduleId, Date.now());
    return s && toSchedule(s);
  }

  /** Schedules in id order, a page at a time (`pageSize` default 100, at most 1000). */
  async list(query: { pageSize?: number; cursor?: string } = {}): Promise<SchedulePage> {
    assertOptions('schedules.list', 'query', query);
    assertOptionalInteger('schedules.list', 'query.pageSize', query.pageSize, 1, 1000);
    if (query.cursor !== undefined) assertScheduleId(query.cursor, 'schedules.list', 'query.cursor');
    const size = query.pageSize ?? 100;
    const { redis, keys } = this.backend;
    const ids = await redis.zrangebylex(keys.schedules, query.cursor ? `(${query.cursor}` : '-', '+', 'LIMIT', 0, size + 1);
    const take = ids.slice(0, size);
    const p = redis.pipeline();
    for (const id of take) p.hgetallBuffer(keys.schedule(id));
    const res = take.length > 0 ? ((await p.exec()) ?? []) : [];
    const now = Date.now();
    const schedules: Schedule[] = [];
    res.forEach(([err, h], i) => {
      if (err) throw err;
      const s = parseSchedule(take[i]!, h as Record<string, Buffer>, now);
      if (s) schedules.push(toSchedule(s));
    });
    const page: SchedulePage = { schedules };
    if (ids.length > size) page.nextCursor = take.at(-1)!;
    return page;
  }

  /**
   * Starts the schedule's orchestrator now, as a tick at this moment would (its instance id is
   * derived from this time), under the overlap policy (`overlap` for this one only); also while
   * the schedule is paused.
   */
  async trigger(scheduleId: string, opts: { overlap?: OverlapPolicy } = {}): Promise<FireResult> {
    assertScheduleId(scheduleId, 'schedules.trigger');
    assertOptions('schedules.trigger', 'options', opts);
    if (opts.overlap !== undefined && !OVERLAP_POLICIES.includes(opts.overlap)) {
      throw invalidArgument('schedules.trigger', 'options.overlap', `one of ${OVERLAP_POLICIES.map((p) => `'${p}'`).join(', ')}`, opts.overlap);
    }
    const now = Date.now();
    const s = await this.read(scheduleId, now);
    if (!s) this.notFound(scheduleId);
    const { result } = await this.fire(s, now, 'trigger', opts.overlap);
    return result;
  }

  // ---- the workers' side ----

  /**
   * A tick's job (a worker took it from the orchestrator queue): starts the instances of the tick
   * and of the ticks missed since (within the catch-up window), each under the overlap policy.
   */
  async onTickJob(job: Job): Promise<void> {
    const d = job.data as { s?: unknown; r?: unknown } | null;
    const scheduleId = d?.s;
    const tick = tickOfJob(job);
    if (typeof scheduleId !== 'string' || tick === undefined) throw new UnrecoverableError(`Malformed schedule job '${job.id}': data ${describeValue(d)}`);
    const now = Date.now();
    const s = await this.read(scheduleId, now);
    if (!s) {
      // Deleted (or never written): its job scheduler goes too.
      await this.backend.orchestratorQueue.removeJobScheduler(scheduleId);
      return;
    }
    if (s.paused) await this.backend.orchestratorQueue.removeJobScheduler(scheduleId);
    // The spec changed and the job scheduler was not rewritten (its writer died): rewrite it now.
    else if (d?.r !== s.revision) await this.upsertScheduler(scheduleId, s, s.revision, now);
    // The job's tick, and the ticks BullMQ skipped since because the job ran late, within the
    // catch-up window (only those are walked: a long outage of a per-second cron is not).
    const windowStart = Math.max(tick, now - s.catchupWindowMs - 1);
    const before = countTicks(s, tick, windowStart, MAX_CATCHUP_TICKS).count;
    const inWindow = ticksBetween(s, windowStart, now);
    const ticks = (tick >= now - s.catchupWindowMs ? [tick, ...inWindow] : inWindow).filter(
      (t) => (!s.startAt || t >= s.startAt.getTime()) && (!s.endAt || t <= s.endAt.getTime()),
    );
    const missed = before + (tick >= now - s.catchupWindowMs ? 0 : 1);
    if (missed > 0) await this.backend.redis.hincrby(this.backend.keys.schedule(scheduleId), 'skipped', missed);
    for (const t of ticks) await this.fire(s, t, 'tick');
  }

  /**
   * A buffered tick's check: starts it once the instance before it has finished, else checks
   * again in {@link BUFFER_CHECK_MS} (the job is moved back to delayed).
   */
  async onBufferJob(job: Job, token: string | undefined): Promise<void> {
    const d = job.data as { s?: unknown; t?: unknown } | null;
    if (typeof d?.s !== 'string' || typeof d.t !== 'number') throw new UnrecoverableError(`Malformed schedule buffer job '${job.id}': data ${describeValue(d)}`);
    const s = await this.read(d.s, Date.now());
    if (!s) return;
    const { code } = await this.fire(s, d.t, 'buffer');
    if (code === 3) {
      await job.moveToDelayed(Date.now() + BUFFER_CHECK_MS, token);
      throw new DelayedError();
    }
  }

  /**
   * The sweep's check of the job schedulers against the schedules (two reads when all agree): a
   * schedule that should tick and has no job scheduler gets one, a job scheduler of a paused,
   * ended or deleted schedule is removed. Returns how many it changed.
   */
  async reconcile(now = Date.now()): Promise<number> {
    const { redis, keys, orchestratorQueue } = this.backend;
    const res = await redis.pipeline().zrange(keys.schedules, 0, 9999).zrange(orchestratorQueue.keys.repeat!, 0, -1).exec();
    if (!res) return 0;
    for (const [err] of res) if (err) throw err;
    const ids = res[0]![1] as string[];
    const schedulers = new Set(res[1]![1] as string[]);
    if (ids.length === 0 && schedulers.size === 0) return 0;
    const p = redis.pipeline();
    for (const id of ids) p.hgetallBuffer(keys.schedule(id));
    const states = ids.length > 0 ? ((await p.exec()) ?? []) : [];
    const active = new Set<string>();
    let changed = 0;
    for (let i = 0; i < ids.length; i++) {
      const [err, h] = states[i] ?? [];
      if (err || !h) continue;
      const s = parseSchedule(ids[i]!, h as Record<string, Buffer>, now);
      if (!s || s.paused || s.nextRunAt === undefined) continue;
      active.add(s.scheduleId);
      if (!schedulers.has(s.scheduleId)) {
        await this.upsertScheduler(s.scheduleId, s, s.revision, now);
        changed++;
      }
    }
    for (const id of schedulers) {
      if (!active.has(id)) {
        await orchestratorQueue.removeJobScheduler(id);
        changed++;
      }
    }
    return changed;
  }

  // ---- internals ----

  private notFound(scheduleId: string): never {
    throw new ScheduleNotFoundError(scheduleId);
  }

  private async read(scheduleId: string, now: number): Promise<StoredSchedule | undefined> {
    const h = await this.backend.redis.hgetallBuffer(this.backend.keys.schedule(scheduleId));
    return parseSchedule(scheduleId, h, now);
  }

  /**
   * Writes the schedule's BullMQ job scheduler. An interval's ticks are multiples of it from
   * `startAt` (or the epoch): the first one is given as BullMQ's `startDate`, and BullMQ adds the
   * interval from there on (a tick that is already set stays when only the input changed).
   */
  private async upsertScheduler(scheduleId: string, spec: ScheduleSpec, revision: number, now: number): Promise<void> {
    let repeat: Omit<RepeatOptions, 'key'>;
    if (spec.cron !== undefined) {
      repeat = { pattern: spec.cron, tz: spec.timeZone ?? 'UTC' };
      if (spec.startAt) repeat.startDate = spec.startAt.getTime();
    } else {
      const every = spec.intervalMs!;
      const anchor = spec.startAt?.getTime() ?? 0;
      // A tick far enough ahead that BullMQ's own clock has not passed it (it would start from "now" instead).
      const from = Math.max(now + 250, anchor);
      repeat = { every, startDate: anchor + Math.ceil((from - anchor) / every) * every };
    }
    if (spec.endAt) repeat.endDate = spec.endAt.getTime();
    await this.backend.orchestratorQueue.upsertJobScheduler(scheduleId, repeat, { name: SCHEDULE_JOB, data: { s: scheduleId, r: revision }, opts: SCHEDULE_JOB_OPTS });
  }

  /** One tick: the script decides, then the start (or the buffered tick's check) follows. */
  private async fire(s: StoredSchedule, tick: number, mode: 'tick' | 'trigger' | 'buffer', overlap?: OverlapPolicy): Promise<{ code: number; result: FireResult }> {
    const { keys } = this.backend;
    const instanceId = scheduleInstanceId(s.scheduleId, tick);
    let code: number;
    for (let attempt = 1; ; attempt++) {
      if (keys.count === 1) {
        [code] = await this.scripts.fireSchedule(keys.schedule(s.scheduleId), keys.statePrefix, mode, tick, instanceId, overlap ?? '');
        break;
      }
      // Several partitions: the tick's instance and the last one may be in others, read there.
      const last = (await this.backend.redis.hget(keys.schedule(s.scheduleId), 'last')) ?? '';
      const tickPart = this.backend.route(instanceId);
      const lastPart = last ? this.backend.route(last) : undefined;
      const [exists, lastStatus] = await Promise.all([
        tickPart.redis.exists(tickPart.keys.state(instanceId)),
        lastPart ? lastPart.redis.hget(lastPart.keys.state(last), 'status') : Promise.resolve(null),
      ]);
      [code] = await this.scripts.fireSchedule(keys.schedule(s.scheduleId), keys.statePrefix, mode, tick, instanceId, overlap ?? '', '1', exists ? '1' : '0', last, lastStatus ?? '');
      // The last instance changed between the reads and the script (another tick started one): again.
      if (code !== -4 || attempt >= 10) break;
    }
    if (code === 1) {
      try {
        await this.backend.route(instanceId).startInstance(s.orchestrator, instanceId, s.input, { inputBuf: s.inputBuf, schedule: { scheduleId: s.scheduleId, tick }, refuseExisting: true });
      } catch (err) {
        // Started already: the same tick handled again (its first worker died after the start).
        if (!(err instanceof InstanceAlreadyExistsError)) throw err;
      }
      return { code, result: { outcome: 'started', instanceId } };
    }
    if (code === 2) {
      await this.backend.orchestratorQueue.add(
        SCHEDULE_BUFFER_JOB,
        { s: s.scheduleId, t: tick },
        { jobId: `sb-${s.scheduleId}-${tick}`, delay: BUFFER_CHECK_MS, ...SCHEDULE_JOB_OPTS },
      );
      return { code, result: { outcome: 'buffered', instanceId } };
    }
    if (code === 4) return { code, result: { outcome: 'started', instanceId } };
    return { code, result: { outcome: 'skipped' } };
  }
}

/** The tick of a job scheduler's job: its `prevMillis`, which its id (`repeat:<id>:<ms>`) also ends with. */
function tickOfJob(job: Job): number | undefined {
  const prev = (job.opts as { prevMillis?: unknown }).prevMillis;
  if (typeof prev === 'number' && Number.isFinite(prev)) return prev;
  const t = Number(job.id?.slice(job.id.lastIndexOf(':') + 1));
  return Number.isFinite(t) && t > 0 ? t : undefined;
}

