/**
 * The pure replay engine: (orchestrator code, past events, new events) -> (actions, events, status).
 * No Redis, no clock, no randomness that does not come from history.
 */
import type { OrchestratorAction, WaitSpec } from '../actions.js';
import { type CheckedPayloads, type PayloadCheck, RuntimeOrchestrationContext } from '../context/runtime-orchestration-context.js';
import { DurabullError, EntityOperationFailedError, NonDurableAwaitError, TaskFailedError } from '../errors.js';
import { type FailureDetails, toFailureDetails } from '../failure.js';
import type { ExecutionStartedEvent, HistoryEvent, TaskScheduledEvent } from '../history/events.js';
import type { Registry } from '../registry.js';
import { WhenAllTask, WhenAnyTask } from '../tasks/composite-task.js';
import { RetryableTask } from '../tasks/retryable-task.js';
import { type Task, ActivityTask, EntityCallTask, EntityLockTask, SubOrchestrationTask, TimerTask } from '../tasks/task.js';
import { entityStepName } from '../context/runtime-orchestration-context.js';
import { type Driver, startDriver } from './drivers.js';

export interface ExecutionResult {
  instanceId: string;
  executionId: string;
  name: string;
  /** Work the episode asks for that history does not hold yet (schedule, timers, completion). */
  actions: OrchestratorAction[];
  /** History events for those actions (TaskScheduled, TimerCreated, ExecutionCompleted), to append after the new events. */
  actionEvents: HistoryEvent[];
  /** ContinuedAsNew: `output` is the next execution's input, `carryOverEvents` its first events. */
  status: 'Running' | 'Completed' | 'Failed' | 'Terminated' | 'ContinuedAsNew';
  output?: unknown;
  carryOverEvents?: { name: string; input: unknown }[];
  failure?: FailureDetails;
  /** Set when the code called setCustomStatus during this replay. */
  customStatus?: { value: unknown };
  /** What the code is blocked on (status Running only). */
  wait?: WaitSpec;
  /** True when the ExecutionStarted event was among the new events (the first episode). */
  started: boolean;
  /**
   * With a payload check ({@link SessionOptions.checkPayload}): what it returned for the inputs of
   * the new activities and sub-orchestrations and for the continue-as-new input.
   */
  checkedPayloads?: CheckedPayloads;
  /**
   * Status Failed: the error behind `failure` as it was thrown (a NonDeterminismError keeps its
   * details: the history's step and the code's), for tools that look at a replay (the replay check).
   */
  error?: unknown;
}

export interface SessionOptions {
  /**
   * Checks each payload the code hands out (activity and sub-orchestration inputs, custom status,
   * continue-as-new input) at the call, where a PayloadError it throws reaches the code's own
   * try/catch. Without it payloads are checked only when the episode is stored.
   */
  checkPayload?: PayloadCheck;
  /**
   * Called at every `ctx.patched(patchId)` with what it returned: false while replaying history
   * written before the patch (the instance takes the old path). For the replay check, which reports
   * the patches no instance needs any more.
   */
  onPatched?: (patchId: string, applied: boolean) => void;
}

export class HistoryError extends DurabullError {}

/**
 * Replays `pastEvents` (isReplaying = true), then applies `newEvents`, and reports what the code
 * did. Throws only for a malformed history; everything the code does wrong becomes a Failed result.
 */
export function executeOrchestration(
  registry: Pick<Registry, 'getOrchestrator'>,
  pastEvents: readonly HistoryEvent[],
  newEvents: readonly HistoryEvent[],
  options: SessionOptions = {},
): Promise<ExecutionResult> {
  return new OrchestrationSession(registry, options).run(pastEvents, newEvents);
}

/**
 * One execution's code, kept between episodes (Temporal's sticky workflow cache, Durable Functions'
 * extended sessions). `run` replays a history like {@link executeOrchestration}; once the result is
 * committed and `accept` called, `resume` applies the next episode's new events to the code where
 * it stopped, instead of replaying the whole history again. The caller keeps a session only while
 * it knows the stored history is what the session has seen (the worker's cache checks that at
 * commit time) and drops it on any doubt: a fresh `run` always gives the same result.
 */
export class OrchestrationSession {
  private ctx: RuntimeOrchestrationContext | undefined;
  private replay: Replay | undefined;
  /** Events of the execution's history the code has seen: what `run`/`resume` applied, plus the committed action events. */
  private length = 0;
  private last: ExecutionResult | undefined;
  private accepted = false;

  constructor(
    private readonly registry: Pick<Registry, 'getOrchestrator'>,
    private readonly options: SessionOptions = {},
  ) {}

  /** True when `resume` may be called: the last result was Running and has been accepted. */
  get resumable(): boolean {
    return this.accepted;
  }

  /** The time of the last episode the code saw (its OrchestratorStarted), in ms. */
  get time(): number {
    return this.ctx?.currentUtcDateTime.getTime() ?? 0;
  }

  /** The number of history events the code has seen (with the accepted episode's action events). */
  get historyLength(): number {
    return this.length;
  }

  /** The ExecutionStarted event the code started from (once `run` has been called). */
  get startedEvent(): ExecutionStartedEvent | undefined {
    return this.replay?.startedEvent;
  }

  /** A fresh replay of `pastEvents`, then `newEvents`. */
  async run(pastEvents: readonly HistoryEvent[], newEvents: readonly HistoryEvent[]): Promise<ExecutionResult> {
    const all = [...pastEvents, ...newEvents];
    const startedIdx = all.findIndex((e) => e.type === 'ExecutionStarted');
    if (startedIdx < 0) throw new HistoryError('The history has no ExecutionStarted event');
    const startedEvent = all[startedIdx] as ExecutionStartedEvent;
    this.ctx = new RuntimeOrchestrationContext(startedEvent.instanceId, startedEvent.executionId, startedEvent.name, this.options.checkPayload, this.options.onPatched);
    this.ctx.parentInstanceId = startedEvent.parent?.instanceId;
    this.replay = new Replay(this.ctx, this.registry, startedEvent);
    this.length = 0;
    return this.advance(all, pastEvents.length, startedIdx >= pastEvents.length);
  }

  /** Applies the next episode's new events to the code where the accepted episode left it. */
  async resume(newEvents: readonly HistoryEvent[]): Promise<ExecutionResult> {
    if (!this.accepted) throw new DurabullError('OrchestrationSession.resume: the last result was not accepted (or not Running)');
    return this.advance(newEvents, 0, false);
  }

  /**
   * The last result was committed: its actions are history now (as a replay would match them).
   * Only a Running result leaves a session that can be resumed.
   */
  accept(): void {
    const last = this.last;
    this.accepted = false;
    if (!last || last.status !== 'Running' || !this.ctx) return;
    this.ctx.recordNewActions();
    this.length += last.actionEvents.length + 1; // and OrchestratorCompleted
    this.accepted = true;
  }

  /** Applies `events` (the first `replaying` of them as replay) and builds the result. */
  private async advance(events: readonly HistoryEvent[], replaying: number, started: boolean): Promise<ExecutionResult> {
    const ctx = this.ctx!;
    const run = this.replay!;
    this.accepted = false;
    this.last = undefined;
    const base = this.length;
    for (const e of events) if (e.type === 'PatchApplied') ctx.historyPatches.add(e.patchId);

    const result: ExecutionResult = {
      instanceId: ctx.instanceId,
      executionId: ctx.executionId,
      name: ctx.name,
      actions: [],
      actionEvents: [],
      status: 'Running',
      started,
    };

    let next = 0; // the first event not applied
    try {
      for (; next < events.length && !run.finished; next++) {
        ctx.isReplaying = next < replaying;
        await run.apply(events[next]!, base + next);
      }
      ctx.isReplaying = false;
      // Also when the driver is done: a generator or plain function that threw is done, and only this turns its error
      // into the failure (its driver settles synchronously, so afterSettle never runs for it).
      if (!run.terminated && !run.failure) run.checkBlockedOnDurableTask();
      // The code finished before the history did: every step the rest of history records must be one the code took,
      // or an orchestrator changed to return early would complete silently with a different result.
      if (!run.terminated && !run.failure) run.matchRemainingSteps(events.slice(next), base + next);
    } catch (err) {
      run.failWith(err);
    }
    this.length = base + events.length;
    this.last = result;

    // The episode's time, even when the replay stopped before the last OrchestratorStarted (a failure or completion
    // during replay): the events below are appended after the new events and must not carry an older time.
    const now = episodeTime(events) ?? ctx.currentUtcDateTime.getTime();
    if (ctx.customStatusSet) result.customStatus = { value: ctx.customStatus };
    if (run.terminated) {
      result.status = 'Terminated';
      result.output = run.terminateReason;
      result.actions.push({ type: 'CompleteOrchestration', status: 'Terminated', result: run.terminateReason });
      return result;
    }
    if (run.failure) {
      result.status = 'Failed';
      result.failure = run.failure;
      if (run.error !== undefined) result.error = run.error;
      // A failed orchestration releases the entities it holds (the code's other new work is dropped).
      ctx.releaseSection();
      for (const action of ctx.newActions()) {
        if (action.type === 'SendEntityMessage' && action.kind === 'unlock') {
          result.actions.push(action);
          result.actionEvents.push(entityActionEvent(action, now)!);
        }
      }
      result.actions.push({ type: 'CompleteOrchestration', status: 'Failed', failure: run.failure });
      result.actionEvents.push({ type: 'ExecutionCompleted', status: 'Failed', failure: run.failure, timestamp: now });
      return result;
    }
    for (const patchId of ctx.newPatches) result.actionEvents.push({ type: 'PatchApplied', patchId, timestamp: now });
    const can = ctx.continueAsNewRequest;
    // An orchestration that ends (or continues as new) inside a critical section releases it.
    if (can || run.driver?.done) ctx.releaseSection();
    if (can) {
      for (const action of ctx.newActions()) {
        if (action.type === 'SendEntityMessage') {
          result.actions.push(action);
          result.actionEvents.push(entityActionEvent(action, now)!);
        }
      }
      // The execution ends here; work it started and did not await is dropped with it.
      // Unprocessed = buffered and never waited for, plus the raised events after the one that let the code call
      // continueAsNew: the replay stops there, so they were never delivered, yet their inbox entries are consumed.
      const carryOverEvents = can.preserveUnprocessedEvents ? ctx.unconsumedEvents() : [];
      if (can.preserveUnprocessedEvents) {
        for (const e of events.slice(next)) {
          if (e.type === 'EventRaised') carryOverEvents.push({ name: e.name, input: e.input });
        }
      }
      result.status = 'ContinuedAsNew';
      result.output = can.input;
      if (can.checked !== undefined) result.checkedPayloads = { inputs: new Map(), next: can.checked };
      result.carryOverEvents = carryOverEvents;
      result.actions.push({ type: 'CompleteOrchestration', status: 'ContinuedAsNew', result: can.input, carryOverEvents });
      result.actionEvents.push({ type: 'ExecutionCompleted', status: 'ContinuedAsNew', result: can.input, timestamp: now });
      return result;
    }
    // New work first (even when the code also completed: fire-and-forget activities still run).
    const checkedInputs = this.options.checkPayload ? new Map<number, unknown>() : undefined;
    for (const action of ctx.newActions()) {
      result.actions.push(action);
      if (checkedInputs && (action.type === 'ScheduleTask' || action.type === 'CreateSubOrchestration') && ctx.checkedInputs.has(action.id)) {
        checkedInputs.set(action.id, ctx.checkedInputs.get(action.id));
      }
      if (action.type === 'ScheduleTask') {
        const scheduled: TaskScheduledEvent = { type: 'TaskScheduled', taskId: action.id, name: action.name, input: action.input, timestamp: now };
        // Only what the call gave: a plain call stores no more than before.
        if (action.startToCloseTimeoutMs !== undefined) scheduled.startToCloseTimeoutMs = action.startToCloseTimeoutMs;
        if (action.heartbeatTimeoutMs !== undefined) scheduled.heartbeatTimeoutMs = action.heartbeatTimeoutMs;
        if (action.retryOf !== undefined) scheduled.retryOf = action.retryOf;
        result.actionEvents.push(scheduled);
      } else if (action.type === 'CreateTimer') {
        result.actionEvents.push({ type: 'TimerCreated', taskId: action.id, fireAt: action.fireAt, timestamp: now });
      } else if (action.type === 'SendEntityMessage') {
        if (checkedInputs && ctx.checkedInputs.has(action.id)) checkedInputs.set(action.id, ctx.checkedInputs.get(action.id));
        result.actionEvents.push(entityActionEvent(action, now)!);
      } else if (action.type === 'CreateSubOrchestration') {
        result.actionEvents.push({
          type: 'SubOrchestrationInstanceCreated',
          taskId: action.id,
          name: action.name,
          instanceId: action.instanceId,
          input: action.input,
          timestamp: now,
        });
      }
    }
    if (checkedInputs) result.checkedPayloads = { inputs: checkedInputs };
    if (run.driver?.done) {
      result.status = 'Completed';
      result.output = run.driver.output;
      result.actions.push({ type: 'CompleteOrchestration', status: 'Completed', result: run.driver.output });
      result.actionEvents.push({ type: 'ExecutionCompleted', status: 'Completed', result: run.driver.output, timestamp: now });
      return result;
    }
    result.wait = computeWait(ctx);
    return result;
  }
}

class Replay {
  driver: Driver | undefined;
  failure: FailureDetails | undefined;
  /** The error behind `failure`, as thrown. */
  error: unknown;
  terminated = false;
  terminateReason: unknown;

  constructor(
    private readonly ctx: RuntimeOrchestrationContext,
    private readonly registry: Pick<Registry, 'getOrchestrator'>,
    readonly startedEvent: ExecutionStartedEvent,
  ) {}

  get finished(): boolean {
    return this.terminated || this.failure !== undefined || this.driver?.done === true || this.ctx.continueAsNewRequest !== undefined;
  }

  failWith(err: unknown): void {
    this.failure = toFailureDetails(err, this.ctx.name);
    this.error = err;
  }

  /** `index`: the event's position in the execution's history (past events, then new ones). */
  async apply(event: HistoryEvent, index: number): Promise<void> {
    const ctx = this.ctx;
    switch (event.type) {
      case 'OrchestratorStarted':
        ctx.currentUtcDateTime = new Date(event.timestamp);
        return;
      case 'ExecutionStarted': {
        if (event !== this.startedEvent) throw new HistoryError('The history has more than one ExecutionStarted event');
        if (ctx.currentUtcDateTime.getTime() === 0) ctx.currentUtcDateTime = new Date(event.timestamp);
        const fn = this.registry.getOrchestrator(event.name);
        this.driver = startDriver(() => fn(ctx, event.input), event.name);
        return this.settle();
      }
      case 'TaskScheduled':
        ctx.matchScheduled(event.taskId, 'ScheduleTask', event.name, { historyIndex: index, eventType: event.type });
        return;
      case 'TimerCreated':
        ctx.matchScheduled(event.taskId, 'CreateTimer', undefined, { historyIndex: index, eventType: event.type });
        return;
      case 'TaskCompleted': {
        const task = ctx.takeOpenTask(event.taskScheduledId);
        if (!(task instanceof ActivityTask)) return; // a duplicate or unknown completion changes nothing
        task.complete(event.result);
        return this.settleIf(task);
      }
      case 'TaskFailed': {
        const task = ctx.takeOpenTask(event.taskScheduledId);
        if (!(task instanceof ActivityTask)) return;
        task.fail(new TaskFailedError(task.name, task.id, event.failure));
        return this.settleIf(task);
      }
      case 'SubOrchestrationInstanceCreated':
        ctx.matchScheduled(event.taskId, 'CreateSubOrchestration', event.name, { historyIndex: index, eventType: event.type });
        return;
      case 'SubOrchestrationInstanceCompleted': {
        const task = ctx.takeOpenTask(event.taskScheduledId);
        if (!(task instanceof SubOrchestrationTask)) return;
        task.complete(event.result);
        return this.settleIf(task);
      }
      case 'SubOrchestrationInstanceFailed': {
        const task = ctx.takeOpenTask(event.taskScheduledId);
        if (!(task instanceof SubOrchestrationTask)) return;
        task.fail(new TaskFailedError(task.name, task.id, event.failure, 'Sub-orchestration'));
        return this.settleIf(task);
      }
      case 'EntityOperationCalled':
        ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('call', event.entityId, event.operation), { historyIndex: index, eventType: event.type });
        return;
      case 'EntityOperationSignaled':
        ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('signal', event.entityId, event.operation), { historyIndex: index, eventType: event.type });
        return;
      case 'EntityLockRequested':
        ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('lock', event.entityIds.join(',')), { historyIndex: index, eventType: event.type });
        return;
      case 'EntityUnlockSent':
        ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('unlock', event.entityId), { historyIndex: index, eventType: event.type });
        return;
      case 'EntityOperationCompleted': {
        const task = ctx.takeOpenTask(event.taskScheduledId);
        if (!(task instanceof EntityCallTask)) return;
        task.complete(event.result);
        return this.settleIf(task);
      }
      case 'EntityOperationFailed': {
        const task = ctx.takeOpenTask(event.taskScheduledId);
        if (!(task instanceof EntityCallTask)) return;
        task.fail(new EntityOperationFailedError(task.entityId, task.operation, task.id, event.failure));
        return this.settleIf(task);
      }
      case 'EntityLockGranted': {
        const task = ctx.takeOpenTask(event.taskScheduledId);
        if (!(task instanceof EntityLockTask)) return;
        ctx.grantLock(task);
        return this.settleIf(task);
      }
      case 'PatchApplied':
      case 'ExecutionSuspended':
      case 'ExecutionResumed':
        return;
      case 'TimerFired': {
        const task = ctx.takeOpenTask(event.timerId);
        if (!(task instanceof TimerTask)) return;
        task.complete(undefined);
        return this.settleIf(task);
      }
      case 'EventRaised':
        ctx.deliverEvent(event.name, event.input);
        return this.settle();
      case 'ExecutionTerminated':
        this.terminated = true;
        this.terminateReason = event.reason;
        return;
      case 'OrchestratorCompleted':
      case 'ExecutionCompleted':
        return;
      default: {
        const unknown: { type?: unknown } = event;
        throw new HistoryError(`Unknown history event type ${JSON.stringify(unknown.type)}`);
      }
    }
  }

  /** Settles the code only when the completed task is something it waits on (directly or through a composite). */
  private settleIf(task: Task<unknown>): Promise<void> | void {
    if (task.awaited) return this.settle();
  }

  private settle(): Promise<void> | void {
    const d = this.driver;
    if (!d || d.done) return;
    const p = d.settle();
    if (p) return p.then(() => this.afterSettle());
  }

  private afterSettle(): void {
    if (this.driver?.done && this.driver.failed) this.failWith(this.driver.error);
    else if (!this.finished) this.checkBlockedOnDurableTask();
  }

  /** After the code finished early: the steps the remaining events record must match what the code scheduled. */
  matchRemainingSteps(events: readonly HistoryEvent[], firstIndex: number): void {
    for (const [i, event] of events.entries()) {
      const at = { historyIndex: firstIndex + i, eventType: event.type };
      if (event.type === 'TaskScheduled') this.ctx.matchScheduled(event.taskId, 'ScheduleTask', event.name, at);
      else if (event.type === 'SubOrchestrationInstanceCreated') this.ctx.matchScheduled(event.taskId, 'CreateSubOrchestration', event.name, at);
      else if (event.type === 'TimerCreated') this.ctx.matchScheduled(event.taskId, 'CreateTimer', undefined, at);
      else if (event.type === 'EntityOperationCalled') this.ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('call', event.entityId, event.operation), at);
      else if (event.type === 'EntityOperationSignaled') this.ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('signal', event.entityId, event.operation), at);
      else if (event.type === 'EntityLockRequested') this.ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('lock', event.entityIds.join(',')), at);
      else if (event.type === 'EntityUnlockSent') this.ctx.matchScheduled(event.taskId, 'SendEntityMessage', entityStepName('unlock', event.entityId), at);
    }
  }

  /** An async orchestrator that is not done must be waiting on a durable task; otherwise it awaits something foreign. */
  checkBlockedOnDurableTask(): void {
    const d = this.driver;
    if (!d) return;
    if (d.done) {
      if (d.failed) this.failWith(d.error);
      return;
    }
    for (const t of this.ctx.roots) if (!t.isCompleted) return;
    throw new NonDurableAwaitError(
      `Orchestrator '${this.ctx.name}' is awaiting something that is not a durable task (a plain Promise, fetch, setTimeout...). ` +
        `Orchestrators may only await tasks from the context: ctx.callActivity(...) for work and I/O, ctx.createTimer(...) for delays, ` +
        `ctx.waitForExternalEvent(...), ctx.all(...) / ctx.any(...).`,
    );
  }
}

/** The timestamp of the last OrchestratorStarted event, if any. */
function episodeTime(events: readonly HistoryEvent[]): number | undefined {
  for (let i = events.length - 1; i >= 0; i--) {
    const e = events[i]!;
    if (e.type === 'OrchestratorStarted') return e.timestamp;
  }
  return undefined;
}

function seqId(t: Task<unknown>): number | undefined {
  if (t instanceof RetryableTask) return seqId(t.current);
  return t instanceof ActivityTask || t instanceof TimerTask || t instanceof SubOrchestrationTask || t instanceof EntityCallTask || t instanceof EntityLockTask
    ? t.id
    : undefined;
}

/** The history event that records an entity message the code sent. */
export function entityActionEvent(action: OrchestratorAction, timestamp: number): HistoryEvent | undefined {
  if (action.type !== 'SendEntityMessage') return undefined;
  switch (action.kind) {
    case 'call':
      return { type: 'EntityOperationCalled', taskId: action.id, entityId: action.entity, operation: action.operation!, input: action.input, timestamp };
    case 'signal': {
      const e: HistoryEvent = { type: 'EntityOperationSignaled', taskId: action.id, entityId: action.entity, operation: action.operation!, input: action.input, timestamp };
      if (action.scheduledTime !== undefined) e.scheduledTime = action.scheduledTime;
      return e;
    }
    case 'lock':
      return { type: 'EntityLockRequested', taskId: action.id, entityIds: action.lockSet!, timestamp };
    case 'unlock':
      return { type: 'EntityUnlockSent', taskId: action.id, entityId: action.entity, timestamp };
  }
}

/** Derives what the blocked code waits on, for the backend's wake counter. */
function computeWait(ctx: RuntimeOrchestrationContext): WaitSpec {
  const open = [...ctx.roots].filter((t) => !t.isCompleted);
  if (open.length !== 1) return { kind: 'unknown' };
  const root = open[0]!;
  let kind: 'all' | 'any';
  let ids: number[];
  if (root instanceof WhenAllTask || root instanceof WhenAnyTask) {
    kind = root instanceof WhenAllTask ? 'all' : 'any';
    ids = [];
    for (const child of root.children) {
      if (child.isCompleted) continue;
      if (child.kind === 'event') continue; // raised events always wake
      const id = seqId(child);
      if (id === undefined) return { kind: 'unknown' }; // nested composite
      ids.push(id);
    }
  } else {
    kind = 'any';
    const id = seqId(root);
    ids = id === undefined ? [] : [id];
  }
  const coversAllOpen = ids.length === ctx.openTasks.size && ids.every((id) => ctx.openTasks.has(id));
  return { kind, ids, coversAllOpen };
}
