/**
 * The replay check: replays recorded histories against (new) orchestrator code, without running
 * anything else, and reports where the code would take another path than the history records.
 * Pure: no Redis, no clock. `durabull replay-check` feeds it the histories of a task hub's running
 * instances; a test feeds it golden histories kept in the repository (`durabull history <id> --json`).
 */
import { NonDeterminismError, ValidationError } from './errors.js';
import { OrchestrationSession } from './executor/orchestration-executor.js';
import type { ExecutionStartedEvent, HistoryEvent } from './history/events.js';
import type { Registry } from './registry.js';
import { describeValue } from './validation.js';

/**
 * One history to replay: the events of one execution, as `getStatus(id, { showHistory: true })`
 * returns them, or the output of `durabull history <id> --json` (`{ instanceId, name, events }`).
 * A bare array of events works too (the instance and orchestrator are read from its ExecutionStarted).
 */
export interface ReplayHistory {
  instanceId?: string;
  /** The orchestrator's name; default: the one ExecutionStarted names. */
  name?: string;
  events: readonly HistoryEvent[];
}

export type ReplayDivergenceKind =
  /** At a step the history records, the code did something else (or nothing). */
  | 'non-determinism'
  /** At the point the history has reached, the code asks for a step the history does not have. */
  | 'extra-step'
  /** The code throws during the replay (its own error, a non-durable await...). */
  | 'failure'
  /** The replay ends in another state than the history: the code completes where the history still runs, or the other way round. */
  | 'outcome'
  /** The code has no orchestrator of the name the history records. */
  | 'missing-orchestrator'
  /** The history cannot be replayed at all (no ExecutionStarted, a second one, an unknown event). */
  | 'invalid-history';

/** One instance whose history the code does not replay as recorded. */
export interface ReplayDivergence {
  instanceId: string;
  orchestrator: string;
  kind: ReplayDivergenceKind;
  /** Where: the task's sequence number and the event's index in the history, when the divergence is at a step. */
  step?: { sequenceNumber?: number; historyIndex?: number };
  /** What the history has there. */
  history: string;
  /** What the new code does there. */
  code: string;
}

/** What the check found out about one `ctx.patched(patchId)` of the code. */
export interface PatchUsage {
  patchId: string;
  /** Instances whose replay took the old path: their history passed the patch before it existed. */
  predating: number;
  /** Instances whose replay took the new path (the history records the patch as applied). */
  applied: number;
  /**
   * No replayed instance takes the old path, so `if (ctx.patched(id))` can become the new path
   * alone, provided the histories checked are every instance that may still run (the check was
   * not cut short by a limit).
   */
  removable: boolean;
}

export interface ReplayReport {
  /** Histories replayed. */
  checked: number;
  /** Histories not replayed: the instance has not run an episode yet (it will run the new code from the start). */
  notStarted: string[];
  divergences: ReplayDivergence[];
  /** Every patch the code asked about during the replays. */
  patches: PatchUsage[];
  /** True when there is no divergence. */
  ok: boolean;
}

/** What the check needs of a registry: the orchestrators (activities are never run). */
export type ReplayRegistry = Pick<Registry, 'getOrchestrator' | 'orchestratorNames'>;

const STEP_EVENTS = new Set(['TaskScheduled', 'TimerCreated', 'SubOrchestrationInstanceCreated']);

/**
 * Replays histories one at a time and collects a {@link ReplayReport}. For many histories read in
 * batches (the CLI); {@link replayHistories} is the one-call form.
 */
export class ReplayChecker {
  private checked = 0;
  private readonly notStarted: string[] = [];
  private readonly divergences: ReplayDivergence[] = [];
  private readonly patchCounts = new Map<string, { predating: number; applied: number }>();
  private readonly names: Set<string>;

  constructor(private readonly registry: ReplayRegistry) {
    if (typeof registry !== 'object' || registry === null || typeof registry.getOrchestrator !== 'function' || typeof registry.orchestratorNames !== 'function') {
      throw new ValidationError(`ReplayChecker: registry must be a Registry (with getOrchestrator and orchestratorNames), got ${describeValue(registry)}`);
    }
    this.names = new Set(registry.orchestratorNames());
  }

  /** Replays one history; `where` names it in a ValidationError for a malformed argument. */
  async add(input: ReplayHistory | readonly HistoryEvent[], where = 'history'): Promise<ReplayDivergence | undefined> {
    const h = toHistory(input, where);
    const events = h.events;
    const startedAt = events.findIndex((e) => e.type === 'ExecutionStarted');
    const started = startedAt >= 0 ? (events[startedAt] as ExecutionStartedEvent) : undefined;
    const instanceId = h.instanceId ?? started?.instanceId ?? '?';
    const orchestrator = h.name ?? started?.name ?? '?';
    if (!started) {
      if (events.length === 0) {
        this.notStarted.push(instanceId);
        return undefined;
      }
      return this.diverge({ instanceId, orchestrator, kind: 'invalid-history', history: `${events.length} events without ExecutionStarted`, code: 'cannot replay it' });
    }
    this.checked++;
    if (!this.names.has(started.name)) {
      return this.diverge({
        instanceId,
        orchestrator,
        kind: 'missing-orchestrator',
        history: `an instance of orchestrator '${started.name}'`,
        code: `no orchestrator '${started.name}' (the code has ${[...this.names].map((n) => `'${n}'`).join(', ') || 'none'})`,
      });
    }
    const patches = new Map<string, boolean>();
    const session = new OrchestrationSession(this.registry, {
      onPatched: (id, applied) => {
        // An instance that took the old path once needs it, whatever it does later.
        if (patches.get(id) !== false) patches.set(id, applied);
      },
    });
    let result;
    try {
      result = await session.run(events, []);
    } catch (err) {
      return this.diverge({ instanceId, orchestrator, kind: 'invalid-history', history: errorText(err), code: 'cannot replay it' });
    }
    for (const [id, applied] of patches) {
      const c = this.patchCounts.get(id) ?? { predating: 0, applied: 0 };
      if (applied) c.applied++;
      else c.predating++;
      this.patchCounts.set(id, c);
    }
    const recorded = recordedOutcome(events);
    if (result.status === 'Failed') {
      const err = result.error;
      if (err instanceof NonDeterminismError) {
        const step: ReplayDivergence['step'] = { sequenceNumber: err.sequenceNumber };
        if (err.historyIndex !== undefined) step.historyIndex = err.historyIndex;
        const at = err.historyIndex !== undefined ? `history[${err.historyIndex}] ` : '';
        return this.diverge({
          instanceId,
          orchestrator,
          kind: 'non-determinism',
          step,
          history: `${at}${err.historyEventType ? `${err.historyEventType} ` : ''}#${err.sequenceNumber} ${err.expected}`,
          code: err.code ? `${err.actual} (#${err.code.sequenceNumber})` : err.actual,
        });
      }
      // A history that records a failure: the cause may be outside the code (a poison job, the
      // history limit), so the code failing on replay or not is no divergence by itself.
      if (recorded.status === 'Failed') return undefined;
      const f = result.failure;
      return this.diverge({
        instanceId,
        orchestrator,
        kind: 'failure',
        history: recorded.status === 'Running' ? 'the instance running' : `the instance ${recorded.status}`,
        code: `fails: ${f ? `${f.errorName}: ${f.message.split('\n')[0]}` : 'unknown error'}`,
      });
    }
    if (recorded.status === 'Failed' || recorded.status === 'Terminated') return undefined;
    const extra = result.actions.find((a) => a.type === 'ScheduleTask' || a.type === 'CreateTimer' || a.type === 'CreateSubOrchestration');
    if (extra && recorded.status === 'Running') {
      const what = extra.type === 'ScheduleTask' ? `activity '${extra.name}'` : extra.type === 'CreateSubOrchestration' ? `sub-orchestration '${extra.name}'` : 'a timer';
      return this.diverge({
        instanceId,
        orchestrator,
        kind: 'extra-step',
        step: { sequenceNumber: extra.id, historyIndex: events.length },
        history: `nothing more after history[${events.length - 1}] ${events[events.length - 1]!.type} (the end of its last episode)`,
        code: `${what} (#${extra.id})`,
      });
    }
    const replayed = result.status === 'Running' ? 'Running' : result.status;
    if (replayed !== recorded.status) {
      return this.diverge({
        instanceId,
        orchestrator,
        kind: 'outcome',
        step: { historyIndex: events.length - 1 },
        history: recorded.status === 'Running' ? 'the instance still running at its last event' : `the instance ${recorded.status}`,
        code: replayed === 'Running' ? 'still running (waiting for a task) at the end of the history' : `${replayed} during the replay`,
      });
    }
    return undefined;
  }

  /** The report so far. */
  report(): ReplayReport {
    const patches: PatchUsage[] = [...this.patchCounts]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([patchId, c]) => ({ patchId, predating: c.predating, applied: c.applied, removable: c.predating === 0 }));
    return { checked: this.checked, notStarted: [...this.notStarted], divergences: [...this.divergences], patches, ok: this.divergences.length === 0 };
  }

  private diverge(d: ReplayDivergence): ReplayDivergence {
    this.divergences.push(d);
    return d;
  }
}

/**
 * Replays each history against the orchestrators of `registry` (nothing is written and no activity
 * runs) and reports every instance whose history the code does not replay as recorded: a step that
 * differs (`non-determinism`), a step the code adds where the history has reached
 * (`extra-step`), code that throws (`failure`) or ends otherwise (`outcome`), an orchestrator the
 * code no longer has (`missing-orchestrator`); and, for each `ctx.patched` id the code asked about,
 * how many instances still take the old path (none: the patch can be removed).
 *
 * ```ts
 * const report = await replayHistories(registry, [JSON.parse(readFileSync('golden/order-1.json', 'utf8'))]);
 * expect(report.divergences).toEqual([]);
 * ```
 */
export async function replayHistories(registry: ReplayRegistry, histories: readonly (ReplayHistory | readonly HistoryEvent[])[]): Promise<ReplayReport> {
  const checker = new ReplayChecker(registry);
  if (!Array.isArray(histories)) throw new ValidationError(`replayHistories: histories must be an array of histories, got ${describeValue(histories)}`);
  for (const [i, h] of histories.entries()) await checker.add(h, `replayHistories: histories[${i}]`);
  return checker.report();
}

function toHistory(input: unknown, where: string): ReplayHistory {
  const events = Array.isArray(input) ? input : typeof input === 'object' && input !== null ? (input as { events?: unknown }).events : undefined;
  if (!Array.isArray(events)) {
    throw new ValidationError(`${where} must be an array of history events or an object with an 'events' array (as \`durabull history <id> --json\` prints), got ${describeValue(input)}`);
  }
  events.forEach((e: unknown, i) => {
    if (typeof e !== 'object' || e === null || typeof (e as { type?: unknown }).type !== 'string') {
      throw new ValidationError(`${where}: events[${i}] must be a history event (an object with a 'type'), got ${describeValue(e)}`);
    }
  });
  if (Array.isArray(input)) return { events: input as HistoryEvent[] };
  const o = input as { instanceId?: unknown; name?: unknown };
  const h: ReplayHistory = { events: events as HistoryEvent[] };
  if (typeof o.instanceId === 'string') h.instanceId = o.instanceId;
  if (typeof o.name === 'string') h.name = o.name;
  return h;
}

/** How the history ends: Running unless it records the end of the execution. */
function recordedOutcome(events: readonly HistoryEvent[]): { status: 'Running' | 'Completed' | 'Failed' | 'ContinuedAsNew' | 'Terminated' } {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.type === 'ExecutionTerminated') return { status: 'Terminated' };
    if (e.type === 'ExecutionCompleted') return { status: e.status };
    if (STEP_EVENTS.has(e.type)) break;
  }
  return { status: 'Running' };
}

function errorText(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}
