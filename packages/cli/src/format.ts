/**
 * Human-readable output: status blocks, instance tables and the execution log of a history, in
 * the wording of Durable Functions' execution log (see @durabull/worker's LogMessages).
 */
import type { FailureDetails, HistoryEvent } from '@durabull/core';
import type { OrchestrationStatus, Schedule, WorkerInfo } from '@durabull/client';

/**
 * JSON for machine output: `Date`s as ISO strings, `BigInt`s as decimal strings, `undefined` left
 * out (payloads are msgpack, so they may hold values that JSON.stringify refuses).
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), indent) ?? 'null';
}

/** A payload on one line, cut to `max` characters (`…` marks the cut). `undefined` stays `undefined`. */
export function showValue(value: unknown, max = 80): string {
  if (value === undefined) return 'undefined';
  let text: string;
  try {
    text = toJson(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The first line of a failure: `TypeError: boom`. */
export function showFailure(failure: FailureDetails | undefined): string {
  if (!failure) return 'unknown error';
  const message = (failure.message ?? '').split('\n')[0];
  return `${failure.errorName}: ${message}`;
}

/** A time offset: `+12ms`, `+1.234s`, `+2m03.4s`, `+1h02m03s`; negative offsets get `-`. */
export function formatOffset(ms: number): string {
  const sign = ms < 0 ? '-' : '+';
  const a = Math.abs(Math.round(ms));
  if (a < 1000) return `${sign}${a}ms`;
  if (a < 60_000) return `${sign}${(a / 1000).toFixed(3)}s`;
  if (a < 3_600_000) {
    const m = Math.floor(a / 60_000);
    return `${sign}${m}m${((a - m * 60_000) / 1000).toFixed(1).padStart(4, '0')}s`;
  }
  const h = Math.floor(a / 3_600_000);
  const m = Math.floor((a - h * 3_600_000) / 60_000);
  const s = Math.floor((a % 60_000) / 1000);
  return `${sign}${h}h${String(m).padStart(2, '0')}m${String(s).padStart(2, '0')}s`;
}

/** Events that reach an episode from outside (its inbox) rather than being produced by its code. */
const RECEIVED = new Set<HistoryEvent['type']>([
  'ExecutionStarted',
  'TaskCompleted',
  'TaskFailed',
  'TimerFired',
  'EventRaised',
  'SubOrchestrationInstanceCompleted',
  'SubOrchestrationInstanceFailed',
  'ExecutionSuspended',
  'ExecutionResumed',
]);

/**
 * The history in the order things happened: a history stores each episode as `OrchestratorStarted`,
 * the events it received, then what its code did; the log shows the received events (an activity
 * completed, an event raised) before the episode they woke.
 */
export function inLogOrder(events: readonly HistoryEvent[]): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.type !== 'OrchestratorStarted') {
      out.push(e);
      continue;
    }
    let j = i + 1;
    while (j < events.length && RECEIVED.has(events[j]!.type)) out.push(events[j++]!);
    out.push(e);
    i = j - 1;
  }
  return out;
}

/**
 * The execution log of a history, one line per event, each prefixed with its time relative to the
 * start of the execution (`ExecutionStarted`, else `opts.startedAt`):
 *
 * ```text
 *   +0ms Execution started: Chaining (execution 2a9cfa2e6522) input=" x "
 *  +15ms Orchestration function started
 *  +15ms Activity function F1 task scheduled (task 0) input=" x "
 * ```
 */
export function historyLines(events: readonly HistoryEvent[], opts: { startedAt?: Date } = {}): string[] {
  const ordered = inLogOrder(events);
  // Before its first episode an instance's ExecutionStarted waits in its inbox, not in its history.
  const start = events.find((e) => e.type === 'ExecutionStarted')?.timestamp ?? opts.startedAt?.getTime() ?? ordered[0]?.timestamp ?? 0;
  const activities = new Map<number, string>();
  const subs = new Map<number, string>();
  const timers = new Set<number>();
  for (const e of events) {
    if (e.type === 'TaskScheduled') activities.set(e.taskId, e.name);
    else if (e.type === 'SubOrchestrationInstanceCreated') subs.set(e.taskId, e.name);
    else if (e.type === 'TimerCreated') timers.add(e.taskId);
  }
  const offsets = ordered.map((e) => formatOffset(e.timestamp - start));
  const width = Math.max(0, ...offsets.map((o) => o.length));
  return ordered.map((e, i) => `${offsets[i]!.padStart(width)} ${describeEvent(e, start, activities, subs)}`);
}

const kv = (key: string, value: unknown): string => (value === undefined ? '' : ` ${key}=${showValue(value, 60)}`);

function describeEvent(e: HistoryEvent, start: number, activities: Map<number, string>, subs: Map<number, string>): string {
  switch (e.type) {
    case 'ExecutionStarted': {
      const parent = e.parent ? ` as sub-orchestration of '${e.parent.instanceId}' (task ${e.parent.taskId})` : '';
      return `Execution started: ${e.name} (execution ${e.executionId})${parent}${kv('input', e.input)}`;
    }
    case 'OrchestratorStarted':
      return 'Orchestration function started';
    case 'OrchestratorCompleted':
      return 'Orchestration function completed';
    case 'TaskScheduled':
      return `Activity function ${e.name} task scheduled (task ${e.taskId})${kv('input', e.input)}`;
    case 'TaskCompleted':
      return `Activity function ${activities.get(e.taskScheduledId) ?? '?'} task completed (task ${e.taskScheduledId})${kv('result', e.result)}`;
    case 'TaskFailed':
      return `Activity function ${activities.get(e.taskScheduledId) ?? '?'} task failed (task ${e.taskScheduledId}): ${showFailure(e.failure)}`;
    case 'TimerCreated':
      return `Timer created (task ${e.taskId}) to fire at ${new Date(e.fireAt).toISOString()} (${formatOffset(e.fireAt - start)})`;
    case 'TimerFired':
      return `Timer fired (task ${e.timerId})`;
    case 'EventRaised':
      return `External event ${e.name} raised${kv('data', e.input)}`;
    case 'SubOrchestrationInstanceCreated':
      return `Sub-orchestration ${e.name} scheduled (task ${e.taskId}, instance '${e.instanceId}')${kv('input', e.input)}`;
    case 'SubOrchestrationInstanceCompleted':
      return `Sub-orchestration ${subs.get(e.taskScheduledId) ?? '?'} completed (task ${e.taskScheduledId})${kv('result', e.result)}`;
    case 'SubOrchestrationInstanceFailed':
      return `Sub-orchestration ${subs.get(e.taskScheduledId) ?? '?'} failed (task ${e.taskScheduledId}): ${showFailure(e.failure)}`;
    case 'ExecutionCompleted':
      if (e.status === 'Failed') return `Execution failed: ${showFailure(e.failure)}`;
      if (e.status === 'ContinuedAsNew') return `Execution continued as new${kv('input', e.result)}`;
      return `Execution completed${kv('output', e.result)}`;
    case 'ExecutionTerminated':
      return `Execution terminated${kv('reason', e.reason)}`;
    case 'ExecutionSuspended':
      return `Execution suspended${kv('reason', e.reason)}`;
    case 'ExecutionResumed':
      return `Execution resumed${kv('reason', e.reason)}`;
    case 'PatchApplied':
      return `Patch ${e.patchId} applied`;
    default:
      return (e as { type: string }).type;
  }
}

/** A status as aligned `label  value` lines. Payloads are cut to 500 characters (`--json` shows them whole). */
export function statusLines(s: OrchestrationStatus): string[] {
  const rows: [string, string][] = [
    ['Instance', s.instanceId],
    ['Orchestrator', s.name],
    ['Status', s.runtimeStatus],
    ['Execution', s.executionId],
    ['Created', s.createdAt.toISOString()],
    ['Last updated', s.lastUpdatedAt.toISOString()],
  ];
  if (s.completedAt) rows.push(['Completed', `${s.completedAt.toISOString()} (after ${formatOffset(s.completedAt.getTime() - s.createdAt.getTime()).slice(1)})`]);
  rows.push(['Episodes', String(s.episodes)]);
  if (s.parent) rows.push(['Parent', `'${s.parent.instanceId}' (execution ${s.parent.executionId}, task ${s.parent.taskId})`]);
  if (s.schedule) rows.push(['Schedule', `'${s.schedule.scheduleId}', tick ${s.schedule.tick.toISOString()}`]);
  if (s.scheduledStartTime) rows.push(['Scheduled start', s.scheduledStartTime.toISOString()]);
  if (s.input !== undefined) rows.push(['Input', showValue(s.input, 500)]);
  if (s.runtimeStatus === 'Terminated') rows.push(['Reason', showValue(s.output, 500)]);
  else if (s.runtimeStatus === 'Completed') rows.push(['Output', showValue(s.output, 500)]);
  if (s.customStatus !== undefined) rows.push(['Custom status', showValue(s.customStatus, 500)]);
  if (s.failure) {
    rows.push(['Failure', showFailure(s.failure)]);
    for (let inner = s.failure.inner; inner; inner = inner.inner) rows.push(['Caused by', showFailure(inner)]);
  }
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}`);
}

/** Instances as a table with a header row. */
export function listLines(instances: readonly OrchestrationStatus[]): string[] {
  const rows = [
    ['INSTANCE', 'NAME', 'STATUS', 'CREATED', 'LAST UPDATED'],
    ...instances.map((s) => [s.instanceId, s.name, s.runtimeStatus, s.createdAt.toISOString(), s.lastUpdatedAt.toISOString()]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
}

/** Live workers as a table with a header row: what each runs, its last heartbeat (before `now`) and stats. */
export function workerLines(workers: readonly WorkerInfo[], now: number): string[] {
  const names = (list: readonly string[]) => (list.length ? list.join(',') : '-');
  const rows = [
    ['WORKER', 'VERSION', 'KINDS', 'HEARTBEAT', 'RUNNING', 'EPISODES', 'ACTIVITIES', 'ORCHESTRATOR NAMES', 'ACTIVITY NAMES'],
    ...workers.map((w) => [
      w.id,
      w.version,
      w.kinds.join(','),
      `${formatOffset(Math.max(0, now - w.lastHeartbeatAt.getTime())).slice(1)} ago`,
      String(w.jobsRunning),
      String(w.episodesDone),
      String(w.activitiesDone),
      names(w.orchestratorNames),
      names(w.activityNames),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
}

/** When a schedule ticks: `cron 0 3 * * * (Europe/Paris)`, `every 60000 ms`. */
function when(s: Schedule): string {
  return s.cron !== undefined ? `cron ${s.cron} (${s.timeZone ?? 'UTC'})` : `every ${s.intervalMs} ms`;
}

/** Schedules as a table with a header row. */
export function scheduleLines(schedules: readonly Schedule[]): string[] {
  const rows = [
    ['SCHEDULE', 'ORCHESTRATOR', 'WHEN', 'OVERLAP', 'STATE', 'NEXT RUN', 'STARTED', 'SKIPPED'],
    ...schedules.map((s) => [
      s.scheduleId,
      s.orchestrator,
      when(s),
      s.overlap,
      s.paused ? 'paused' : 'active',
      s.nextRunAt?.toISOString() ?? '-',
      String(s.started),
      String(s.skipped),
    ]),
  ];
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  '));
}

/** One schedule, field by field. */
export function scheduleDetailLines(s: Schedule): string[] {
  const rows: [string, string][] = [
    ['Schedule', s.scheduleId],
    ['Orchestrator', s.orchestrator],
    ['When', when(s)],
    ['Overlap', s.overlap],
    ['Catch-up window', `${s.catchupWindowMs} ms`],
    ['State', s.paused ? 'paused' : 'active'],
  ];
  if (s.input !== undefined) rows.push(['Input', showValue(s.input, 500)]);
  if (s.startAt) rows.push(['Start at', s.startAt.toISOString()]);
  if (s.endAt) rows.push(['End at', s.endAt.toISOString()]);
  rows.push(['Next run', s.nextRunAt?.toISOString() ?? '-']);
  if (s.lastInstanceId) rows.push(['Last run', `${s.lastTick?.toISOString()} (instance '${s.lastInstanceId}')`]);
  if (s.bufferedTick) rows.push(['Buffered tick', s.bufferedTick.toISOString()]);
  rows.push(['Started / skipped', `${s.started} / ${s.skipped}`], ['Revision', String(s.revision)]);
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  return rows.map(([k, v]) => `${k.padEnd(width)}${v}`);
}
