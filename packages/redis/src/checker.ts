/**
 * The history invariant checker ("nothing lost, nothing duplicated"): reads one instance, or every
 * instance of a task hub through its creation index, and reports what breaks the invariants of
 * docs/architecture.md as findings with stable codes ({@link FindingCode}).
 *
 * With `repair: true` it fixes what is safe to fix, through scripts that re-check what they were
 * told under the instance's own atomicity:
 *
 * - `stuck`: re-queued (`requeueInstance` script: version + 1, `scheduled` = 1, a wake in the
 *   outbox, dispatched at once);
 * - `index-mismatch`: the instance's index entries are rewritten from its state
 *   (`reindexInstance` script).
 *
 * Everything else is reported only: a duplicated or missing history event needs a human (and a
 * bug fix), not a guess.
 *
 * The same stuck test, bounded, runs in every worker's sweep: {@link StuckSweeper}, through
 * `RedisBackend.sweepStuck()`.
 *
 * Reads are consistent without locking anything: an instance's state, inbox, pending and wait
 * sets, outbox wake and index entries are read in one MULTI; its history is read after, and the
 * check is retried when the instance's `exec` or `version` moved meanwhile (every history change
 * moves one of them).
 */
import { ValidationError, type ExecutionCompletedEvent, type ExecutionStartedEvent, type ExecutionTerminatedEvent, type HistoryEvent, type RuntimeStatus, isTerminalStatus } from '@durabull/core';
import { PayloadRef, decode, decodeEvent } from './codec.js';
import { ACTIVITY_QUEUE, ORCHESTRATOR_QUEUE, assertInstanceId } from './keys.js';
import { type RedisBackend, type RequeueResult, activityJobId, subStartJobId, timerJobId } from './redis-backend.js';
import { TaskHub } from './task-hub.js';

/**
 * What a finding is about. Codes are stable (tools may match on them); messages are for people.
 *
 * | code | meaning |
 * | --- | --- |
 * | `missing-execution-started` | the first episode does not start with `ExecutionStarted`, or an instance without episodes has none at the head of its inbox |
 * | `duplicate-execution-started` | more than one `ExecutionStarted` in the history |
 * | `execution-mismatch` | the history's `ExecutionStarted` names another instance or execution than the state |
 * | `episode-unframed` | `OrchestratorStarted` / `OrchestratorCompleted` not balanced, or an event outside any episode (only `ExecutionTerminated` may be) |
 * | `event-after-terminal` | an event after `ExecutionCompleted` / `ExecutionTerminated` (other than the `OrchestratorCompleted` closing that episode) |
 * | `duplicate-schedule` | a task id scheduled twice (`TaskScheduled`, `TimerCreated`, `SubOrchestrationInstanceCreated` share the ids) |
 * | `duplicate-completion` | a task completed or failed twice (in history, or again in the inbox) |
 * | `completion-without-schedule` | a result (in history or inbox) for a task id that history does not schedule, or schedules as another kind |
 * | `pending-mismatch` | a pending task id that history does not schedule, or that already has its result |
 * | `status-mismatch` | the state's status disagrees with the history (Completed/Failed need `ExecutionCompleted` with that status, Terminated needs `ExecutionTerminated`, an unfinished instance has no terminal event), or is unknown |
 * | `work-for-finished` | a finished instance with pending tasks, inbox entries, a wait set, `scheduled` = 1, or a wake for its current version in the outbox or in BullMQ |
 * | `stuck` | an unfinished, unsuspended instance that nothing will ever run: idle (`scheduled` = 0) with inbox events that let its code progress and no wake in the outbox; or `scheduled` = 1 for longer than the grace period with no wake in the outbox and no orchestrator job for its version in BullMQ |
 * | `lost-task` | an unfinished, unsuspended instance, unchanged for longer than the grace period, with a pending task that nothing will ever run: an activity or timer with neither an outbox entry nor a live job in BullMQ, a sub-orchestration whose child does not exist and has no outbox entry to start it (at most 100 pending tasks are looked up per instance) |
 * | `index-mismatch` | a creation, name or status index entry missing, pointing to another status, or left by an instance that is gone |
 * | `missing-payload` | a reference to a payload stored apart (claim check), in history, inbox or state, whose key is missing, or that the instance's claim set does not list (purge would leave it behind) |
 */
export type FindingCode =
  | 'missing-execution-started'
  | 'duplicate-execution-started'
  | 'execution-mismatch'
  | 'episode-unframed'
  | 'event-after-terminal'
  | 'duplicate-schedule'
  | 'duplicate-completion'
  | 'completion-without-schedule'
  | 'pending-mismatch'
  | 'status-mismatch'
  | 'work-for-finished'
  | 'stuck'
  | 'lost-task'
  | 'index-mismatch'
  | 'missing-payload';

/** Every finding code, in the order checks run. */
export const FINDING_CODES: readonly FindingCode[] = [
  'missing-execution-started',
  'duplicate-execution-started',
  'execution-mismatch',
  'episode-unframed',
  'event-after-terminal',
  'duplicate-schedule',
  'duplicate-completion',
  'completion-without-schedule',
  'pending-mismatch',
  'status-mismatch',
  'work-for-finished',
  'stuck',
  'lost-task',
  'index-mismatch',
  'missing-payload',
];

/** One broken invariant of one instance (at most one finding per code and instance; the message lists the cases). */
export interface Finding {
  instanceId: string;
  code: FindingCode;
  message: string;
  /** With `repair: true`: what was done about it. Absent when it was not (or cannot safely be) repaired. */
  repaired?: string;
}

export interface InstanceReport {
  instanceId: string;
  /** False when the instance has no state (a `checkHub` finding may still name its index entries). */
  exists: boolean;
  status?: string;
  executionId?: string;
  version?: number;
  findings: Finding[];
  /** True when the instance kept changing during every read attempt and was not checked (it is busy, hence not stuck). */
  unsettled?: boolean;
}

export interface HubReport {
  hub: string;
  /** Creation index entries visited. */
  checked: number;
  findings: Finding[];
  /** The findings that were repaired (`repair: true`). */
  repaired: Finding[];
  /** Findings per code. */
  counts: Partial<Record<FindingCode, number>>;
  /** Instances skipped because they kept changing while read. */
  unsettled: string[];
  /** Set when `limit` stopped the walk: pass it as `cursor` to go on. */
  nextCursor?: string;
}

export interface CheckOptions {
  /** Repair what is safe to repair (stuck instances, index entries). Default false. */
  repair?: boolean;
  /**
   * How long an instance may stay `scheduled` without an orchestrator job, from its `updatedAt`,
   * before it counts as stuck. Default 5000 ms (the sweep period).
   */
  graceMs?: number;
  /** The clock (ms), for tests. Default `Date.now()`. */
  now?: number;
}

export interface HubCheckOptions extends CheckOptions {
  /** At most this many creation index entries per call. Default: all of them. */
  limit?: number;
  /** From a previous report's `nextCursor`. */
  cursor?: string;
  /** Creation index entries read per page (ZRANGEBYLEX ... LIMIT), checked concurrently. Default 100. */
  pageSize?: number;
}

export const DEFAULT_STUCK_GRACE_MS = 5000;

/** Statuses an instance can be in. */
const STATUSES: readonly RuntimeStatus[] = ['Pending', 'Running', 'Completed', 'Failed', 'Terminated', 'ContinuedAsNew', 'Suspended'];
/** BullMQ job states in which a wake job will still run. */
const LIVE_JOB_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);
const STATE_FIELDS = ['status', 'exec', 'version', 'scheduled', 'wmode', 'wcov', 'need', 'createdAt', 'updatedAt', 'name'] as const;
/** State fields that hold payloads (msgpack), possibly references to payloads stored apart. */
const STATE_BLOBS = ['input', 'output', 'custom'] as const;

/** The wake job id of (instance, execution, version): the one `includes/addWake.lua` builds. */
export function wakeJobId(instanceId: string, executionId: string, version: number | string): string {
  return `w-${instanceId}-${executionId}-${version}`;
}

/** An index member: `<prefix>|<createdAt, 13 digits>|<id>` (no prefix: `<createdAt>|<id>`), as `includes/indexMember.lua` builds it. */
function indexMember(prefix: string, createdAt: string, id: string): string {
  const t = createdAt.padStart(13, '0');
  return prefix === '' ? `${t}|${id}` : `${prefix}|${t}|${id}`;
}

// ---------------------------------------------------------------------------------------------
// Findings of one instance

/** Collects findings, one per code, each listing its cases. */
class Findings {
  private readonly byCode = new Map<FindingCode, string[]>();
  constructor(readonly instanceId: string) {}

  add(code: FindingCode, detail: string): void {
    const list = this.byCode.get(code);
    if (list) list.push(detail);
    else this.byCode.set(code, [detail]);
  }

  has(code: FindingCode): boolean {
    return this.byCode.has(code);
  }

  list(): Finding[] {
    const out: Finding[] = [];
    for (const code of FINDING_CODES) {
      const details = this.byCode.get(code);
      if (!details) continue;
      const shown = details.slice(0, 5).join('; ');
      const message = details.length > 5 ? `${shown}; and ${details.length - 5} more` : shown;
      out.push({ instanceId: this.instanceId, code, message });
    }
    return out;
  }
}

/** An inbox entry's header: kind (`c` completed, `f` failed, `e` other event, `n` note) and task id. */
interface InboxHeader {
  kind: string;
  seq: string;
  raw: Buffer;
}

function parseInboxHeader(raw: Buffer): InboxHeader {
  const sep = raw.indexOf(0x7c); // '|'
  const header = raw.subarray(0, sep < 0 ? raw.length : sep).toString('latin1');
  return { kind: header[0] ?? '', seq: header.slice(1), raw };
}

function decodeInboxEvent(entry: InboxHeader): HistoryEvent | undefined {
  const sep = entry.raw.indexOf(0x7c);
  if (sep < 0) return undefined;
  try {
    return decodeEvent(entry.raw.subarray(sep + 1));
  } catch {
    return undefined;
  }
}

/** What a task id stands for: the event that scheduled it. */
export type ScheduleKind = 'activity' | 'timer' | 'sub-orchestration' | 'entity' | 'entity-signal';

function scheduleOf(e: HistoryEvent): { id: number; kind: ScheduleKind } | undefined {
  if (e.type === 'TaskScheduled') return { id: e.taskId, kind: 'activity' };
  // Entity traffic: a call or lock request waits for its response; a signal or unlock has none.
  if (e.type === 'EntityOperationCalled' || e.type === 'EntityLockRequested') return { id: e.taskId, kind: 'entity' };
  if (e.type === 'EntityOperationSignaled' || e.type === 'EntityUnlockSent') return { id: e.taskId, kind: 'entity-signal' };
  if (e.type === 'TimerCreated') return { id: e.taskId, kind: 'timer' };
  if (e.type === 'SubOrchestrationInstanceCreated') return { id: e.taskId, kind: 'sub-orchestration' };
  return undefined;
}

function resultOf(e: HistoryEvent): { id: number; kind: ScheduleKind } | undefined {
  if (e.type === 'TaskCompleted' || e.type === 'TaskFailed') return { id: e.taskScheduledId, kind: 'activity' };
  if (e.type === 'EntityOperationCompleted' || e.type === 'EntityOperationFailed' || e.type === 'EntityLockGranted') return { id: e.taskScheduledId, kind: 'entity' };
  if (e.type === 'TimerFired') return { id: e.timerId, kind: 'timer' };
  if (e.type === 'SubOrchestrationInstanceCompleted' || e.type === 'SubOrchestrationInstanceFailed') return { id: e.taskScheduledId, kind: 'sub-orchestration' };
  return undefined;
}

/** What a history tells about an execution, for the checks that also look at the state. */
export interface HistorySummary {
  /** OrchestratorStarted events. */
  episodes: number;
  /** Task id -> kind, for every schedule event. */
  scheduled: Map<number, ScheduleKind>;
  /** Task ids with a result. */
  completed: Set<number>;
  /** The first ExecutionCompleted / ExecutionTerminated, if any. */
  terminal?: ExecutionCompletedEvent | ExecutionTerminatedEvent;
  started?: ExecutionStartedEvent;
}

/**
 * Checks the events of one execution's history on their own (no Redis): framing of episodes,
 * `ExecutionStarted` first, nothing after a terminal event, each task id scheduled once and
 * completed at most once, and only after it was scheduled. Pure; exported for tools and tests.
 */
export function checkHistoryEvents(instanceId: string, events: readonly HistoryEvent[]): { findings: Finding[]; summary: HistorySummary } {
  const findings = new Findings(instanceId);
  const summary = analyzeHistory(events, findings);
  return { findings: findings.list(), summary };
}

function analyzeHistory(events: readonly HistoryEvent[], findings: Findings): HistorySummary {
  const summary: HistorySummary = { episodes: 0, scheduled: new Map(), completed: new Set() };
  let inFrame = false;
  let terminalInFrame = false;
  let startedCount = 0;
  let afterTerminal = 0;
  let firstAfterTerminal = '';
  events.forEach((e, at) => {
    const where = `${e.type} at #${at}`;
    // 1. Nothing after a terminal event but the OrchestratorCompleted closing its episode.
    if (summary.terminal) {
      const closes = e.type === 'OrchestratorCompleted' && inFrame && terminalInFrame;
      if (!closes) {
        if (afterTerminal++ === 0) firstAfterTerminal = where;
      }
    }
    // 2. Episode framing.
    if (e.type === 'OrchestratorStarted') {
      if (inFrame) findings.add('episode-unframed', `${where} inside an episode that was not completed`);
      inFrame = true;
      summary.episodes++;
    } else if (e.type === 'OrchestratorCompleted') {
      if (!inFrame) findings.add('episode-unframed', `${where} without an OrchestratorStarted`);
      inFrame = false;
    } else if (!inFrame && e.type !== 'ExecutionTerminated') {
      findings.add('episode-unframed', `${where} outside any episode`);
    }
    // 3. The execution's start.
    if (e.type === 'ExecutionStarted') {
      startedCount++;
      if (startedCount === 1) {
        summary.started = e;
        if (at !== 1 || events[0]?.type !== 'OrchestratorStarted') findings.add('missing-execution-started', `ExecutionStarted is at #${at}, not first in the first episode`);
      } else {
        findings.add('duplicate-execution-started', `another ExecutionStarted at #${at} (execution ${e.executionId})`);
      }
    }
    // 4. Tasks: scheduled once, completed at most once, after their schedule.
    const sched = scheduleOf(e);
    if (sched) {
      const prev = summary.scheduled.get(sched.id);
      if (prev) findings.add('duplicate-schedule', `task ${sched.id} scheduled again (${where}; first as ${prev})`);
      else summary.scheduled.set(sched.id, sched.kind);
    }
    const res = resultOf(e);
    if (res) {
      const kind = summary.scheduled.get(res.id);
      if (!kind) findings.add('completion-without-schedule', `${where} for task ${res.id}, which history does not schedule before it`);
      else if (kind !== res.kind) findings.add('completion-without-schedule', `${where} for task ${res.id}, which history schedules as ${kind}`);
      else if (summary.completed.has(res.id)) findings.add('duplicate-completion', `task ${res.id} has a second result (${where})`);
      summary.completed.add(res.id);
    }
    // 5. The first terminal event.
    if (!summary.terminal && (e.type === 'ExecutionCompleted' || e.type === 'ExecutionTerminated')) {
      summary.terminal = e;
      terminalInFrame = inFrame;
    }
  });
  if (inFrame) findings.add('episode-unframed', 'the last episode has no OrchestratorCompleted');
  if (afterTerminal > 0) {
    const t = summary.terminal!;
    const what = t.type === 'ExecutionCompleted' ? `ExecutionCompleted (${t.status})` : 'ExecutionTerminated';
    findings.add('event-after-terminal', `${afterTerminal} event(s) after ${what}, the first ${firstAfterTerminal}`);
  }
  if (summary.episodes > 0 && startedCount === 0) findings.add('missing-execution-started', 'the history has episodes but no ExecutionStarted');
  return summary;
}

/** One consistent read of an instance: state fields, inbox, sets, outbox wake and index entries, then its history. */
interface Snapshot {
  state: Record<(typeof STATE_FIELDS)[number], string | null>;
  version: number;
  inbox: InboxHeader[];
  pending: string[];
  waitSet: string[];
  /** The outbox holds a wake for (exec, version). */
  wakeInOutbox: boolean;
  inCreationIndex: boolean;
  inNameIndex: boolean;
  /** The statuses under which the status index holds the instance. */
  indexedStatuses: string[];
  history: HistoryEvent[];
  /** References to payloads stored apart whose key is missing or unlisted: one description each. */
  missingPayloads: string[];
}

/** Where each reference to a payload stored apart is: history events, inbox events, state fields. */
function payloadRefs(history: readonly HistoryEvent[], inbox: readonly InboxHeader[], stateBlobs: (Buffer | null)[]): [where: string, ref: PayloadRef][] {
  const out: [string, PayloadRef][] = [];
  const scan = (holder: object, where: string) => {
    for (const [field, v] of Object.entries(holder)) if (v instanceof PayloadRef) out.push([`${where}.${field}`, v]);
  };
  history.forEach((e, at) => scan(e, `history[${at}] ${e.type}`));
  inbox.forEach((entry, at) => {
    const e = decodeInboxEvent(entry);
    if (e) scan(e, `inbox[${at}] ${e.type}`);
  });
  const fields: Record<string, unknown> = {};
  STATE_BLOBS.forEach((f, i) => {
    const b = stateBlobs[i];
    // A reference encodes in a few dozen bytes: larger fields are inline payloads, not decoded here.
    if (b && b.length > 0 && b.length < 64) fields[f] = decode(b);
  });
  scan(fields, 'state');
  return out;
}

/** The references among `refs` whose payload key is missing or not in the instance's claim set. */
async function missingPayloads(backend: RedisBackend, id: string, refs: [string, PayloadRef][]): Promise<string[]> {
  if (refs.length === 0) return [];
  const p = backend.redis.pipeline();
  for (const [, ref] of refs) {
    p.exists(backend.keys.claim(id, ref.token));
    p.sismember(backend.keys.claims(id), ref.token);
  }
  const res = (await p.exec()) ?? [];
  const out: string[] = [];
  refs.forEach(([where, ref], i) => {
    const key = backend.keys.claim(id, ref.token);
    if (res[2 * i]?.[1] !== 1) out.push(`${where} references payload '${key}' (${ref.bytes} bytes), which is missing`);
    else if (res[2 * i + 1]?.[1] !== 1) out.push(`${where} references payload '${key}', which the claim set does not list (purge would leave it)`);
  });
  return out;
}

async function readSnapshot(backend: RedisBackend, id: string): Promise<Snapshot | 'gone' | 'unsettled'> {
  const k = backend.keys;
  for (let attempt = 0; attempt < 5; attempt++) {
    const head = await backend.redis.hmget(k.state(id), 'status', 'exec', 'version', 'createdAt', 'name');
    if (!head[0]) return 'gone';
    const [, exec, version, createdAt, name] = head as [string, string, string, string, string];
    const m = backend.redis.multi();
    m.hmget(k.state(id), ...STATE_FIELDS);
    m.lrangeBuffer(k.inbox(id), 0, -1);
    m.smembers(k.pending(id));
    m.smembers(k.wait(id));
    m.hexists(k.outbox, wakeJobId(id, exec, version));
    m.zscore(k.instances, indexMember('', createdAt ?? '', id));
    m.zscore(k.nameIndex, indexMember(name ?? '', createdAt ?? '', id));
    for (const s of STATUSES) m.zscore(k.statusIndex, indexMember(s, createdAt ?? '', id));
    m.hmgetBuffer(k.state(id), ...STATE_BLOBS);
    const res = await m.exec();
    if (!res) continue;
    for (const [err] of res) if (err) throw err;
    const values = res.map(([, v]) => v);
    const fields = values[0] as (string | null)[];
    const state = Object.fromEntries(STATE_FIELDS.map((f, i) => [f, fields[i] ?? null])) as Snapshot['state'];
    if (!state.status) return 'gone';
    // The index members were built from what the head read saw: it must still be that execution and version.
    if (state.exec !== exec || state.version !== version || state.createdAt !== createdAt || state.name !== name) continue;
    // References stay references: their payloads are only looked up (EXISTS), never read.
    const history = await backend.getHistory(id, { resolve: false });
    const inbox = (values[1] as Buffer[]).map(parseInboxHeader);
    const missing = await missingPayloads(backend, id, payloadRefs(history, inbox, values[7 + STATUSES.length] as (Buffer | null)[]));
    const after = await backend.redis.hmget(k.state(id), 'exec', 'version');
    if (after[0] !== exec || after[1] !== version) continue;
    return {
      state,
      version: Number(version),
      inbox,
      pending: values[2] as string[],
      waitSet: values[3] as string[],
      wakeInOutbox: values[4] === 1,
      inCreationIndex: values[5] !== null,
      inNameIndex: values[6] !== null,
      indexedStatuses: STATUSES.filter((_, i) => values[7 + i] !== null),
      history,
      missingPayloads: missing,
    };
  }
  return 'unsettled';
}

/**
 * Whether inbox events let a blocked instance's code progress: the test `deliverEvent` and
 * `commitEpisode` apply (and `requeueInstance` repeats atomically), given the stored wait spec.
 */
function inboxLetsProgress(s: Snapshot): boolean {
  const { wmode, wcov } = s.state;
  const need = Number(s.state.need ?? 0);
  const waitSet = new Set(s.waitSet);
  for (const entry of s.inbox) {
    if (entry.kind === 'e') return true;
    if (entry.kind !== 'c' && entry.kind !== 'f') continue;
    if (!wmode || wmode === 'u') return true;
    const counted = wcov === '1' || waitSet.has(entry.seq);
    if (counted && (entry.kind === 'f' || need <= 0)) return true;
  }
  return false;
}

/**
 * For an instance marked `scheduled` whose wake is not in the outbox: true when BullMQ holds no
 * live job for its current version and the instance has not moved since (re-read after the job
 * lookup, so a job that just finished and committed is not mistaken for a lost one).
 */
async function wakeJobIsLost(backend: RedisBackend, id: string, exec: string, version: number): Promise<boolean> {
  const jobId = wakeJobId(id, exec, version);
  if ((await backend.redis.hexists(backend.keys.outbox, jobId)) === 1) return false;
  const jobState = await backend.orchestratorQueue.getJobState(jobId);
  if (LIVE_JOB_STATES.has(jobState)) return false;
  const now = await backend.redis.hmget(backend.keys.state(id), 'exec', 'version', 'scheduled');
  return now[0] === exec && Number(now[1]) === version && now[2] === '1';
}

/** Pending activity tasks looked up in BullMQ per instance, at most. */
const LOST_TASK_LOOKUPS = 100;

/**
 * The pending activity tasks of an instance that nothing will run: no outbox entry (its own, or a
 * batch of its execution not yet expanded), no live job in BullMQ, and still pending once those
 * were looked at (re-read, so that a result delivered meanwhile is not taken for a loss).
 */
/**
 * The pending tasks among `tasks` that nothing will ever run: an activity or timer with neither an
 * outbox entry nor a live job in BullMQ, a sub-orchestration whose child does not exist and has no
 * outbox entry that would start it. Re-read at the end: only tasks still pending at the same version.
 */
async function lostTasksOf(
  backend: RedisBackend,
  id: string,
  exec: string,
  version: number,
  tasks: { seq: number; kind: ScheduleKind }[],
  children: ReadonlyMap<number, string>,
): Promise<{ seq: number; kind: ScheduleKind }[]> {
  const k = backend.keys;
  const [, batches] = await backend.redis.hscan(k.outbox, '0', 'MATCH', `b-${id}-${exec}-*`, 'COUNT', 1000);
  if (batches.length > 0) return [];
  const lost: { seq: number; kind: ScheduleKind }[] = [];
  // A call to an entity cannot be lost: its request went to the entity's inbox with the episode's
  // commit, and the entity's response waits in the outbox until it is delivered.
  for (const t of tasks.filter((x) => x.kind !== 'entity' && x.kind !== 'entity-signal').slice(0, LOST_TASK_LOOKUPS)) {
    const jobId = t.kind === 'activity' ? activityJobId(id, exec, t.seq) : t.kind === 'timer' ? timerJobId(id, exec, t.seq) : subStartJobId(id, exec, t.seq);
    if ((await backend.redis.hexists(k.outbox, jobId)) === 1) continue;
    if (t.kind === 'activity' && LIVE_JOB_STATES.has(await backend.activityQueue.getJobState(jobId))) continue;
    if (t.kind === 'timer' && LIVE_JOB_STATES.has(await backend.orchestratorQueue.getJobState(jobId))) continue;
    if (t.kind === 'sub-orchestration') {
      const child = children.get(t.seq);
      // The child may be in another partition of the hub.
      if (child === undefined || (await backend.route(child).redis.exists(backend.route(child).keys.state(child))) === 1) continue;
    }
    lost.push(t);
  }
  if (lost.length === 0) return [];
  const m = backend.redis
    .multi()
    .hmget(k.state(id), 'exec', 'version')
    .smismember(
      k.pending(id),
      ...lost.map((t) => String(t.seq)),
    );
  const res = await m.exec();
  const [ex, v] = res![0]![1] as (string | null)[];
  if (ex !== exec || Number(v) !== version) return [];
  const still = res![1]![1] as number[];
  return lost.filter((_, i) => still[i] === 1);
}

/** What the repair of lost tasks queued again. */
function describeRequeued(lost: readonly { kind: ScheduleKind }[], queued: number): string {
  const n = (kind: ScheduleKind) => lost.filter((t) => t.kind === kind).length;
  const parts: string[] = [];
  if (n('activity')) parts.push(`${n('activity')} activity job${n('activity') === 1 ? '' : 's'}`);
  if (n('timer')) parts.push(`${n('timer')} timer job${n('timer') === 1 ? '' : 's'}`);
  if (n('sub-orchestration')) parts.push(`${n('sub-orchestration')} sub-orchestration start${n('sub-orchestration') === 1 ? '' : 's'}`);
  const what = `${parts.join(', ')} queued again`;
  return queued === lost.length ? what : `${what} (${queued} found in history)`;
}

/** "activity task 0", "timers 2, 3", "sub-orchestration 4 (child 'x')"... */
function describeLost(lost: readonly { seq: number; kind: ScheduleKind }[], children: ReadonlyMap<number, string>): string {
  const parts: string[] = [];
  const of = (kind: ScheduleKind) => lost.filter((t) => t.kind === kind).map((t) => t.seq);
  const list = (ids: number[]) => `${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''}`;
  const acts = of('activity');
  if (acts.length) parts.push(`activity task${acts.length === 1 ? '' : 's'} ${list(acts)} pending with no outbox entry and no job in BullMQ`);
  const timers = of('timer');
  if (timers.length) parts.push(`timer${timers.length === 1 ? '' : 's'} ${list(timers)} pending with no outbox entry and no job in BullMQ`);
  const subs = of('sub-orchestration');
  if (subs.length) {
    const named = subs.slice(0, 5).map((s) => `${s} (child '${children.get(s)}')`);
    parts.push(`sub-orchestration${subs.length === 1 ? '' : 's'} ${named.join(', ')}${subs.length > 5 ? ', ...' : ''} pending, never started, with no outbox entry to start ${subs.length === 1 ? 'it' : 'them'}`);
  }
  return parts.join('; ');
}

/**
 * Checks one instance: its history on its own ({@link checkHistoryEvents}), then against its state,
 * inbox, pending set, outbox, BullMQ and indexes. With `repair`, re-queues it when stuck and fixes
 * its index entries. An unknown instance yields `exists: false` and no findings.
 */
export async function checkInstance(hub: RedisBackend | TaskHub, instanceId: string, opts: CheckOptions = {}): Promise<InstanceReport> {
  const backend = hub instanceof TaskHub ? await hub.at(instanceId) : hub;
  assertInstanceId(instanceId);
  return checkOne(backend, instanceId, opts);
}

async function checkOne(backend: RedisBackend, id: string, opts: CheckOptions, indexedAt?: string): Promise<InstanceReport> {
  const now = opts.now ?? Date.now();
  const graceMs = opts.graceMs ?? DEFAULT_STUCK_GRACE_MS;
  const f = new Findings(id);
  const snap = await readSnapshot(backend, id);
  if (snap === 'unsettled') return { instanceId: id, exists: true, findings: [], unsettled: true };
  if (snap === 'gone') {
    const report: InstanceReport = { instanceId: id, exists: false, findings: [] };
    if (indexedAt !== undefined) {
      f.add('index-mismatch', `the creation index holds '${indexMember('', indexedAt, id)}' but the instance does not exist`);
      report.findings = f.list();
      if (opts.repair) await repairIndex(backend, report.findings, indexedAt);
    }
    return report;
  }
  const st = snap.state;
  const status = st.status!;
  const exec = st.exec ?? '';
  const finished = isTerminalStatus(status);

  // History on its own.
  const summary = analyzeHistory(snap.history, f);

  // The execution the history belongs to.
  if (summary.started && (summary.started.executionId !== exec || summary.started.instanceId !== id)) {
    f.add('execution-mismatch', `ExecutionStarted names ${summary.started.instanceId}/${summary.started.executionId}, the state ${id}/${exec}`);
  }
  if (summary.episodes === 0 && !finished) {
    // Not run yet (Pending, or a new execution after continue-as-new): the inbox starts it.
    const first = snap.inbox[0];
    const event = first && first.kind === 'e' ? decodeInboxEvent(first) : undefined;
    if (event?.type !== 'ExecutionStarted') f.add('missing-execution-started', 'no episode has run and the inbox does not begin with ExecutionStarted');
    else if (event.executionId !== exec) f.add('execution-mismatch', `the inbox's ExecutionStarted is for execution ${event.executionId}, the state's is ${exec}`);
  }

  // Status against history.
  const t = summary.terminal;
  const ended = t ? (t.type === 'ExecutionTerminated' ? 'ExecutionTerminated' : `ExecutionCompleted (${t.status})`) : 'no terminal event';
  if (!STATUSES.includes(status as RuntimeStatus)) f.add('status-mismatch', `unknown status ${JSON.stringify(status)}`);
  else if (status === 'Completed' || status === 'Failed') {
    if (t?.type !== 'ExecutionCompleted' || t.status !== status) f.add('status-mismatch', `status ${status}, history has ${ended}`);
  } else if (status === 'Terminated') {
    if (t?.type !== 'ExecutionTerminated') f.add('status-mismatch', `status Terminated, history has ${ended}`);
  } else if (t) {
    f.add('status-mismatch', `status ${status}, yet history has ${ended}`);
  }

  // Results in the inbox: for scheduled tasks, and only once.
  const inboxResults = new Set<string>();
  for (const entry of snap.inbox) {
    if (entry.kind !== 'c' && entry.kind !== 'f') continue;
    const seq = Number(entry.seq);
    if (!summary.scheduled.has(seq)) f.add('completion-without-schedule', `inbox result for task ${entry.seq}, which history does not schedule`);
    else if (summary.completed.has(seq) || inboxResults.has(entry.seq)) f.add('duplicate-completion', `task ${entry.seq} has another result in the inbox`);
    inboxResults.add(entry.seq);
  }

  const scheduledFlag = st.scheduled === '1';
  let lostTasks: { seq: number; kind: ScheduleKind }[] = [];
  const children = new Map<number, string>();
  if (finished) {
    // Nothing may be left to do for a finished instance.
    if (snap.pending.length) f.add('work-for-finished', `${snap.pending.length} pending task(s) (${snap.pending.slice(0, 5).join(', ')})`);
    if (snap.inbox.length) f.add('work-for-finished', `${snap.inbox.length} inbox entr${snap.inbox.length === 1 ? 'y' : 'ies'}`);
    if (snap.waitSet.length) f.add('work-for-finished', `a wait set of ${snap.waitSet.length}`);
    if (scheduledFlag) f.add('work-for-finished', 'scheduled = 1');
    // A wake for the version a finished instance is at is never written (older ones may still be on their way, and are skipped as stale).
    const jobId = wakeJobId(id, exec, snap.version);
    if (snap.wakeInOutbox) f.add('work-for-finished', `wake ${jobId} in the outbox`);
    else {
      const jobState = await backend.orchestratorQueue.getJobState(jobId);
      if (LIVE_JOB_STATES.has(jobState)) f.add('work-for-finished', `wake job ${jobId} is ${jobState} in BullMQ`);
    }
  } else {
    // Pending tasks: scheduled by history, without a result yet.
    for (const p of snap.pending) {
      const seq = Number(p);
      if (!summary.scheduled.has(seq)) f.add('pending-mismatch', `task ${p} is pending but history does not schedule it`);
      else if (summary.completed.has(seq) || inboxResults.has(p)) f.add('pending-mismatch', `task ${p} is pending but already has its result`);
    }
    // Stuck: nothing will ever run it. (Suspended instances wait for resume, on purpose.)
    if (status !== 'Suspended') {
      if (!scheduledFlag) {
        if (!snap.wakeInOutbox && inboxLetsProgress(snap)) {
          f.add('stuck', `idle (scheduled = 0) with ${snap.inbox.length} inbox entr${snap.inbox.length === 1 ? 'y' : 'ies'} that let it progress, and no wake queued`);
        }
      } else if (!snap.wakeInOutbox && now - Number(st.updatedAt ?? 0) >= graceMs && (await wakeJobIsLost(backend, id, exec, snap.version))) {
        f.add('stuck', `scheduled = 1 since ${new Date(Number(st.updatedAt ?? 0)).toISOString()} but no wake ${wakeJobId(id, exec, snap.version)} in the outbox or BullMQ`);
      }
      const open: { seq: number; kind: ScheduleKind }[] = [];
      for (const p of snap.pending) {
        const kind = summary.scheduled.get(Number(p));
        if (kind) open.push({ seq: Number(p), kind });
      }
      if (open.length > 0 && now - Number(st.updatedAt ?? 0) >= graceMs) {
        for (const e of snap.history) if (e.type === 'SubOrchestrationInstanceCreated') children.set(e.taskId, e.instanceId);
        lostTasks = await lostTasksOf(backend, id, exec, snap.version, open, children);
        if (lostTasks.length > 0) f.add('lost-task', describeLost(lostTasks, children));
      }
    }
  }

  // Index entries.
  const createdAt = st.createdAt ?? '';
  if (!snap.inCreationIndex) f.add('index-mismatch', 'missing from the creation index');
  if (!snap.inNameIndex) f.add('index-mismatch', `missing from the name index (${st.name})`);
  if (!snap.indexedStatuses.includes(status)) f.add('index-mismatch', `missing from the status index under ${status}`);
  const others = snap.indexedStatuses.filter((s) => s !== status);
  if (others.length) f.add('index-mismatch', `the status index also lists it as ${others.join(', ')}`);
  if (indexedAt !== undefined && Number(indexedAt) !== Number(createdAt)) {
    f.add('index-mismatch', `a creation index entry has creation time ${indexedAt}, the instance's is ${createdAt}`);
  }

  // Payloads stored apart: every reference has its key.
  for (const m of snap.missingPayloads) f.add('missing-payload', m);

  const findings = f.list();
  if (opts.repair) {
    const stuck = findings.find((x) => x.code === 'stuck');
    if (stuck) {
      const r = await backend.requeueInstance(id, { executionId: exec, version: snap.version, scheduled: scheduledFlag }, now);
      if (r.status === 'requeued') stuck.repaired = `re-queued with wake ${r.wakeJobId}`;
      else stuck.message += ` (not re-queued: ${r.status}${r.reason ? `, ${r.reason}` : ''})`;
    }
    const lost = findings.find((x) => x.code === 'lost-task');
    if (lost) {
      // Queued again from what history scheduled; a job that turns up twice runs twice, and its
      // second result is dropped (activities are at least once).
      const n = await backend.requeueTasks(id, exec, snap.history, lostTasks.map((t) => t.seq));
      lost.repaired = describeRequeued(lostTasks, n);
    }
    await repairIndex(backend, findings, indexedAt);
  }
  return { instanceId: id, exists: true, status, executionId: exec, version: snap.version, findings };
}

async function repairIndex(backend: RedisBackend, findings: Finding[], indexedAt: string | undefined): Promise<void> {
  const idx = findings.find((x) => x.code === 'index-mismatch');
  if (!idx) return;
  const changed = await backend.reindexInstance(idx.instanceId, indexedAt);
  idx.repaired = `index entries rewritten from the state (${changed} changed)`;
}

/**
 * Checks every instance of the backend's hub, walking the creation index `idx:all` a page at a
 * time with ZRANGEBYLEX (never a key scan), so it finds index entries of gone instances too. An
 * instance missing from the creation index is not visited: `checkInstance` finds that one.
 */
export async function checkHub(hub: RedisBackend | TaskHub, opts: HubCheckOptions = {}): Promise<HubReport> {
  if (hub instanceof TaskHub) {
    const parts = await hub.open();
    return parts.length === 1 ? checkPartition(parts[0]!, opts) : checkPartitions(parts, opts);
  }
  return checkPartition(hub, opts);
}

/**
 * {@link checkHub} over several partitions, one after another; the cursor names the partition and
 * the place in its creation index.
 */
async function checkPartitions(parts: readonly RedisBackend[], opts: HubCheckOptions): Promise<HubReport> {
  let at = { p: 0, c: undefined as string | undefined };
  if (opts.cursor) {
    try {
      const c = JSON.parse(Buffer.from(opts.cursor, 'base64url').toString('utf8')) as { p: number; c?: string };
      if (!Number.isInteger(c.p) || c.p < 0 || c.p >= parts.length) throw new Error('partition');
      at = { p: c.p, c: c.c };
    } catch {
      throw new ValidationError('Invalid check cursor: pass the nextCursor of the previous report.');
    }
  }
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const report: HubReport = { hub: parts[0]!.keys.hub, checked: 0, findings: [], repaired: [], counts: {}, unsettled: [] };
  for (let p = at.p; p < parts.length; p++) {
    const left = limit - report.checked;
    if (left <= 0) {
      // A cursor only when more follows: the first of the partitions left that holds an instance.
      for (let q = p; q < parts.length; q++) {
        if ((await parts[q]!.redis.zcard(parts[q]!.keys.instances)) > 0) {
          report.nextCursor = Buffer.from(JSON.stringify({ p: q })).toString('base64url');
          break;
        }
      }
      break;
    }
    const { cursor: _c, ...rest } = opts;
    const r = await checkPartition(parts[p]!, { ...rest, limit: left, ...(p === at.p && at.c ? { cursor: at.c } : {}) });
    report.checked += r.checked;
    report.findings.push(...r.findings);
    report.repaired.push(...r.repaired);
    report.unsettled.push(...r.unsettled);
    for (const [code, n] of Object.entries(r.counts)) report.counts[code as FindingCode] = (report.counts[code as FindingCode] ?? 0) + n;
    if (r.nextCursor) {
      report.nextCursor = Buffer.from(JSON.stringify({ p, c: r.nextCursor })).toString('base64url');
      break;
    }
  }
  return report;
}

async function checkPartition(backend: RedisBackend, opts: HubCheckOptions = {}): Promise<HubReport> {
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  const pageSize = Math.max(1, Math.min(opts.pageSize ?? 100, 1000));
  const report: HubReport = { hub: backend.keys.hub, checked: 0, findings: [], repaired: [], counts: {}, unsettled: [] };
  let after = opts.cursor ? Buffer.from(opts.cursor, 'base64url').toString('utf8') : undefined;
  for (;;) {
    const want = Math.min(pageSize, limit - report.checked);
    if (want <= 0) break;
    const members = await backend.redis.zrangebylex(backend.keys.instances, after ? `(${after}` : '-', '+', 'LIMIT', 0, want);
    if (members.length === 0) {
      after = undefined;
      break;
    }
    const reports = await Promise.all(
      members.map((m) => {
        const sep = m.indexOf('|');
        return checkOne(backend, m.slice(sep + 1), opts, m.slice(0, sep));
      }),
    );
    for (const r of reports) {
      if (r.unsettled) report.unsettled.push(r.instanceId);
      for (const finding of r.findings) {
        report.findings.push(finding);
        if (finding.repaired) report.repaired.push(finding);
        report.counts[finding.code] = (report.counts[finding.code] ?? 0) + 1;
      }
    }
    report.checked += members.length;
    after = members.at(-1);
    if (members.length < want) {
      after = undefined;
      break;
    }
  }
  if (after !== undefined && report.checked >= limit) {
    // More may follow: one cheap look tells.
    const more = await backend.redis.zrangebylex(backend.keys.instances, `(${after}`, '+', 'LIMIT', 0, 1);
    if (more.length) report.nextCursor = Buffer.from(after, 'utf8').toString('base64url');
  }
  return report;
}

// ---------------------------------------------------------------------------------------------
// The worker's bounded stuck-instance pass

export interface StuckSweepOptions {
  /** Instances looked at per pass. Default 100. */
  limit?: number;
  /** As {@link CheckOptions.graceMs}. Default 5000 ms. */
  graceMs?: number;
  now?: number;
}

/** An instance the sweep re-queued. */
export interface StuckRepair {
  instanceId: string;
  executionId: string;
  /** The version it was stuck at (the wake is for the next one). */
  version: number;
  /**
   * `idle`: inbox events that should have woken it; `lost-wake`: scheduled, but no job anywhere;
   * `lost-task`: pending tasks that nothing would run (no outbox entry, no job), queued again.
   */
  reason: 'idle' | 'lost-wake' | 'lost-task';
  /** The wake queued (`idle`, `lost-wake`). */
  wakeJobId?: string;
  /** The tasks queued again (`lost-task`): task ids and kinds. */
  tasks?: { seq: number; kind: ScheduleKind }[];
}

/** Statuses the sweep walks: the ones in which an instance waits for an episode. */
const SWEPT_STATUSES = ['Running', 'Pending', 'ContinuedAsNew'] as const;

/**
 * The stuck-instance pass of the worker's sweep, bounded: each pass looks at the next `limit`
 * instances of the status index (Running, then Pending, then ContinuedAsNew; the cursor is kept
 * between passes and starts over after the last), and re-queues the stuck ones with the
 * `requeueInstance` script. Per pass: one ZRANGEBYLEX per status touched, one `scanStuck` script
 * that reads the instances and returns only the candidates, then only for those: a script call (idle with inbox entries: the script
 * decides whether they let the code progress, without sending the inbox over the wire) or an
 * outbox and BullMQ lookup (scheduled for longer than the grace period).
 */
export class StuckSweeper {
  private scan = 0;
  private after: string | undefined;
  /** Sub-orchestration task id -> child id, per `<instance>|<execution>`, from histories read before (bounded). */
  private readonly children = new Map<string, Map<number, string>>();

  constructor(private readonly backend: RedisBackend) {}

  async pass(opts: StuckSweepOptions = {}): Promise<StuckRepair[]> {
    const limit = opts.limit ?? 100;
    const graceMs = opts.graceMs ?? DEFAULT_STUCK_GRACE_MS;
    const now = opts.now ?? Date.now();
    const { redis, keys } = this.backend;
    const ids: string[] = [];
    // 1. The next ids, from the cursor on.
    for (let statuses = 0; ids.length < limit && statuses <= SWEPT_STATUSES.length; ) {
      const status = SWEPT_STATUSES[this.scan]!;
      const want = limit - ids.length;
      const members = await redis.zrangebylex(keys.statusIndex, this.after ? `(${this.after}` : `[${status}|`, `(${status}}`, 'LIMIT', 0, want);
      for (const m of members) ids.push(m.slice(m.lastIndexOf('|') + 1));
      if (members.length < want) {
        this.scan = (this.scan + 1) % SWEPT_STATUSES.length;
        this.after = undefined;
        statuses++;
        if (this.scan === 0) break; // a full round: the next pass starts over
      } else {
        this.after = members.at(-1);
      }
    }
    if (ids.length === 0) return [];
    // 2. Of those, the ones to look at further, with their state: one script (scanStuck).
    type Candidate = [id: string, exec: string, version: string, scheduled: string, updatedAt: string, inboxLength: number, pending: string[]];
    const candidates = (await (redis as unknown as { scanStuck(...a: (string | number)[]): Promise<Candidate[]> }).scanStuck(keys.statusIndex, keys.keyBase, now, graceMs, LOST_TASK_LOOKUPS, ...ids)) ?? [];
    const repairs: StuckRepair[] = [];
    // 3. Candidates.
    await Promise.all(
      candidates.map(async ([id, exec, v, scheduled, updatedAt, inboxLength, pending]) => {
        const version = Number(v);
        if (pending.length > 0 && now - Number(updatedAt || 0) >= graceMs) {
          const { tasks, history } = await this.lostTasks(id, exec, version, pending.map(Number));
          if (tasks.length > 0) {
            await this.backend.requeueTasks(id, exec, history ?? (await this.backend.getHistory(id, { resolve: false })), tasks.map((t) => t.seq));
            repairs.push({ instanceId: id, executionId: exec, version, reason: 'lost-task', tasks });
          }
        }
        let reason: StuckRepair['reason'];
        if (scheduled !== '1') {
          if (!inboxLength) return;
          reason = 'idle';
        } else {
          if (now - Number(updatedAt || 0) < graceMs) return;
          if (!(await wakeJobIsLost(this.backend, id, exec, version))) return;
          reason = 'lost-wake';
        }
        const r = await this.backend.requeueInstance(id, { executionId: exec, version, scheduled: scheduled === '1' }, now);
        if (r.status === 'requeued') repairs.push({ instanceId: id, executionId: exec, version, reason, wakeJobId: r.wakeJobId! });
      }),
    );
    return repairs;
  }

  /**
   * Of `seqs` (pending tasks of an instance unchanged for the grace period), those that nothing
   * will run. First without history: a task whose activity job BullMQ holds is being run; the
   * others are looked up in the outbox and as timer jobs. Only an instance with tasks left after
   * that has its history read (the kinds, and the children of sub-orchestrations, kept for the
   * next passes), and then {@link lostTasksOf} decides as the checker does, re-reading the state
   * at the end.
   */
  private async lostTasks(
    id: string,
    exec: string,
    version: number,
    seqs: number[],
  ): Promise<{ tasks: { seq: number; kind: ScheduleKind }[]; history?: HistoryEvent[] }> {
    const none = { tasks: [] };
    const { redis, keys } = this.backend;
    const activityJobs = keys.jobPrefix(ACTIVITY_QUEUE);
    const timerJobs = keys.jobPrefix(ORCHESTRATOR_QUEUE);
    const p1 = redis.pipeline();
    for (const seq of seqs) p1.exists(activityJobs + activityJobId(id, exec, seq));
    const held = (await p1.exec()) ?? [];
    let open = seqs.filter((_, j) => held[j]?.[1] !== 1);
    if (open.length === 0) return none;
    const p2 = redis.pipeline();
    for (const seq of open) {
      p2.hexists(keys.outbox, activityJobId(id, exec, seq));
      p2.hexists(keys.outbox, timerJobId(id, exec, seq));
      p2.hexists(keys.outbox, subStartJobId(id, exec, seq));
      p2.exists(timerJobs + timerJobId(id, exec, seq));
    }
    const found = (await p2.exec()) ?? [];
    open = open.filter((_, j) => [0, 1, 2, 3].every((k) => found[4 * j + k]?.[1] === 0));
    if (open.length === 0) return none;
    const key = `${id}|${exec}`;
    let children = this.children.get(key);
    const kinds = new Map<number, ScheduleKind>();
    let history: HistoryEvent[] | undefined;
    if (!children || open.some((seq) => !children!.has(seq))) {
      // Read the history: the tasks' kinds, and the children of sub-orchestrations.
      children = new Map();
      history = await this.backend.getHistory(id, { resolve: false });
      for (const e of history) {
        const sch = scheduleOf(e);
        if (sch) kinds.set(sch.id, sch.kind);
        if (e.type === 'SubOrchestrationInstanceCreated') children.set(e.taskId, e.instanceId);
        // Entity calls are never lost (see lostTasksOf); remembered as such, so the next passes need not read the history.
        if (sch?.kind === 'entity') children.set(sch.id, '');
      }
      if (this.children.size >= 10_000) this.children.delete(this.children.keys().next().value!);
      this.children.set(key, children);
    }
    const tasks = open
      .filter((seq) => children!.get(seq) !== '')
      .map((seq) => ({ seq, kind: children!.has(seq) ? ('sub-orchestration' as const) : kinds.get(seq) }))
      .filter((t): t is { seq: number; kind: ScheduleKind } => t.kind !== undefined);
    if (tasks.length === 0) return none;
    return { tasks: await lostTasksOf(this.backend, id, exec, version, tasks, children), history };
  }
}

export type { RequeueResult };
