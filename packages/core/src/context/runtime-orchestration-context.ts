import { createHash } from 'node:crypto';
import type { CreateSubOrchestrationAction, CreateTimerAction, OrchestratorAction, ScheduleTaskAction, SendEntityMessageAction } from '../actions.js';
import { toEntityId } from '../entities/entity-id.js';
import { assertOperationName } from '../entities/entity-id.js';
import { EntityLockError, EntityOperationNotFoundError, NonDeterminismError, ValidationError } from '../errors.js';
import type { ActivityDefinition, ActivityOptions, OrchestratorDefinition } from '../registry.js';
import {
  assertActivityOptions,
  assertDate,
  assertEventName,
  assertInstanceId,
  assertOptionalBoolean,
  assertOptions,
  describeValue,
  functionNameOf,
  invalidArgument,
} from '../validation.js';
import { WhenAllTask, WhenAnyTask } from '../tasks/composite-task.js';
import { type RetryOptions, RetryableTask, assertRetryOptions } from '../tasks/retryable-task.js';
import { ActivityTask, EntityCallTask, EntityLockTask, ExternalEventTask, type SequencedTask, SubOrchestrationTask, type Task, TimerTask } from '../tasks/task.js';
import type { EntityLock, EntityRef, OrchestrationContext } from './orchestration-context.js';

type SequencedAction = ScheduleTaskAction | CreateTimerAction | CreateSubOrchestrationAction | SendEntityMessageAction;

/**
 * Checks a payload that orchestrator code hands out, at the call (an activity or sub-orchestration
 * input, a custom status, a continue-as-new input): throws PayloadError, which the code can catch,
 * when it cannot be stored; otherwise returns a token that the episode's result hands back
 * ({@link CheckedPayloads}) for the backend to reuse (its size, its encoding). `what` names the
 * payload in errors. It must give the same answer on every replay for the same value.
 */
export type PayloadCheck = (value: unknown, what: string) => unknown;

/** What the payload check returned for the payloads of an episode's new work. */
export interface CheckedPayloads {
  /** Inputs of the activities and sub-orchestrations the episode schedules, by task id. */
  inputs: Map<number, unknown>;
  /** The continue-as-new input. */
  next?: unknown;
}

/** Namespace for deterministic v5 GUIDs (the one Durable Functions uses for `newGuid`). */
const GUID_NAMESPACE = '9e952958-5e33-4daf-827f-2fa12937b875';

/**
 * The executor's side of the context: sequence numbers, pending actions, open tasks and buffered
 * events for one replay of one execution.
 */
export class RuntimeOrchestrationContext implements OrchestrationContext {
  isReplaying = true;
  currentUtcDateTime = new Date(0);
  customStatus: unknown = undefined;
  customStatusSet = false;

  private nextSeq = 0;
  private guidCounter = 0;
  /** Actions produced by the code and not yet matched by history, by sequence number. */
  readonly pendingActions = new Map<number, SequencedAction>();
  /** The critical section: the entities asked for (sorted), and whether the lock was granted. */
  private section: { entities: string[]; granted: boolean } | undefined;
  /** Sequenced tasks scheduled and not yet completed, by sequence number. */
  readonly openTasks = new Map<number, SequencedTask>();
  /** Tasks the code awaits directly (the driver's current task, or anything `then` was called on). */
  readonly roots = new Set<Task<unknown>>();
  private readonly eventWaiters = new Map<string, ExternalEventTask[]>();
  private readonly bufferedEvents = new Map<string, unknown[]>();
  /** Raised events in arrival order that no wait has consumed (for continue-as-new carry-over). */
  private readonly unconsumed: { name: string; input: unknown }[] = [];
  /** Patch ids recorded anywhere in this execution's history. */
  historyPatches = new Set<string>();
  /** Patch ids applied for the first time in this episode. */
  readonly newPatches: string[] = [];
  continueAsNewRequest: { input: unknown; preserveUnprocessedEvents: boolean; checked?: unknown } | undefined;
  /** What the payload check returned for inputs, by sequence number (cleared with the actions). */
  readonly checkedInputs = new Map<number, unknown>();
  /** The parent's instance id, for a sub-orchestration (from its ExecutionStarted event). */
  parentInstanceId: string | undefined;

  constructor(
    readonly instanceId: string,
    readonly executionId: string,
    readonly name: string,
    private readonly checkPayload?: PayloadCheck,
    private readonly onPatched?: (patchId: string, applied: boolean) => void,
  ) {}

  private track<T extends Task<unknown>>(task: T): T {
    task.onAwaited = (t) => this.roots.add(t);
    return task;
  }

  callActivity<TOut = unknown>(activity: string | ActivityDefinition, input?: unknown, options?: ActivityOptions): ActivityTask<TOut> {
    const name = functionNameOf('activity', activity, 'ctx.callActivity', 'activity');
    assertActivityOptions('ctx.callActivity', 'options', options);
    return this.track(this.newActivity<TOut>(name, input, options));
  }

  createTimer(fireAt: Date): TimerTask {
    assertDate('ctx.createTimer', 'fireAt', fireAt);
    return this.track(this.newTimer(fireAt));
  }

  /** Runs the payload check (if any); it throws before the call takes a sequence number, on every replay alike. */
  private check(value: unknown, what: string): unknown {
    return this.checkPayload ? this.checkPayload(value, what) : undefined;
  }

  private newActivity<TOut>(name: string, input: unknown, options?: ActivityOptions, retryOf?: number): ActivityTask<TOut> {
    const checked = this.check(input, `Input of activity '${name}'`);
    const id = this.nextSeq++;
    if (checked !== undefined) this.checkedInputs.set(id, checked);
    const task = new ActivityTask<TOut>(id, name);
    const action: ScheduleTaskAction = { type: 'ScheduleTask', id, name, input };
    if (options?.startToCloseTimeoutMs !== undefined) action.startToCloseTimeoutMs = options.startToCloseTimeoutMs;
    if (options?.heartbeatTimeoutMs !== undefined) action.heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    if (retryOf !== undefined) action.retryOf = retryOf;
    this.pendingActions.set(id, action);
    this.openTasks.set(id, task as ActivityTask);
    return task;
  }

  private newTimer(fireAt: Date): TimerTask {
    const id = this.nextSeq++;
    const task = new TimerTask(id, fireAt);
    task.onCancel = (t) => this.cancelTimer(t);
    this.pendingActions.set(id, { type: 'CreateTimer', id, fireAt: fireAt.getTime() });
    this.openTasks.set(id, task);
    return task;
  }

  private newSubOrchestration<TOut>(name: string, input: unknown, instanceId: unknown): SubOrchestrationTask<TOut> {
    const id = this.nextSeq;
    // Deterministic default id: the same on every replay, distinct across executions (continue-as-new).
    const childId = instanceId ?? `${this.instanceId}-${this.executionId}-${id}`;
    if (typeof childId === 'string' && childId.length > 256 && instanceId === undefined) {
      throw new ValidationError(`The default sub-orchestration id '${childId.slice(0, 40)}...' is over 256 characters; pass an instanceId.`);
    }
    assertInstanceId(childId, 'ctx.callSubOrchestrator');
    const checked = this.check(input, `Input of sub-orchestration '${name}'`);
    this.nextSeq++;
    if (checked !== undefined) this.checkedInputs.set(id, checked);
    const task = new SubOrchestrationTask<TOut>(id, name, childId);
    this.pendingActions.set(id, { type: 'CreateSubOrchestration', id, name, instanceId: childId, input });
    this.openTasks.set(id, task as SubOrchestrationTask);
    return task;
  }

  callActivityWithRetry<TOut = unknown>(activity: string | ActivityDefinition, retryOptions: RetryOptions, input?: unknown, options?: ActivityOptions): Task<TOut> {
    const name = functionNameOf('activity', activity, 'ctx.callActivityWithRetry', 'activity');
    assertRetryOptions(retryOptions, 'ctx.callActivityWithRetry');
    assertActivityOptions('ctx.callActivityWithRetry', 'options', options);
    // Every attempt after the first names the first one: the attempts share their heartbeat details.
    let first: number | undefined;
    const attempt = () => {
      const t = this.newActivity<TOut>(name, input, options, first);
      first ??= t.id;
      return t;
    };
    return this.track(new RetryableTask<TOut>(retryOptions, () => this.currentUtcDateTime.getTime(), (d) => this.newTimer(d), attempt));
  }

  callSubOrchestrator<TOut = unknown>(orchestrator: string | OrchestratorDefinition, input?: unknown, instanceId?: string): Task<TOut> {
    return this.track(this.newSubOrchestration<TOut>(functionNameOf('orchestrator', orchestrator, 'ctx.callSubOrchestrator', 'orchestrator'), input, instanceId));
  }

  callSubOrchestratorWithRetry<TOut = unknown>(
    orchestrator: string | OrchestratorDefinition,
    retryOptions: RetryOptions,
    input?: unknown,
    instanceId?: string,
  ): Task<TOut> {
    const name = functionNameOf('orchestrator', orchestrator, 'ctx.callSubOrchestratorWithRetry', 'orchestrator');
    assertRetryOptions(retryOptions, 'ctx.callSubOrchestratorWithRetry');
    return this.track(
      new RetryableTask<TOut>(
        retryOptions,
        () => this.currentUtcDateTime.getTime(),
        (d) => this.newTimer(d),
        () => this.newSubOrchestration<TOut>(name, input, instanceId),
      ),
    );
  }

  continueAsNew(input?: unknown, options: { preserveUnprocessedEvents?: boolean } = {}): void {
    assertOptions('ctx.continueAsNew', 'options', options);
    const preserve = options?.preserveUnprocessedEvents;
    assertOptionalBoolean('ctx.continueAsNew', 'options.preserveUnprocessedEvents', preserve);
    const checked = this.check(input, `Input of the next execution of '${this.name}'`);
    this.continueAsNewRequest = { input, preserveUnprocessedEvents: preserve ?? true };
    if (checked !== undefined) this.continueAsNewRequest.checked = checked;
  }

  patched(patchId: string): boolean {
    if (typeof patchId !== 'string' || patchId.length === 0) throw invalidArgument('ctx.patched', 'patchId', 'a non-empty string', patchId);
    if (this.historyPatches.has(patchId)) {
      this.onPatched?.(patchId, true);
      return true;
    }
    // Replaying a part of history that was written without the patch: keep the old path.
    if (this.isReplaying) {
      this.onPatched?.(patchId, false);
      return false;
    }
    this.historyPatches.add(patchId);
    this.newPatches.push(patchId);
    this.onPatched?.(patchId, true);
    return true;
  }

  waitForExternalEvent<T = unknown>(name: string): Task<T> {
    assertEventName(name, 'ctx.waitForExternalEvent');
    const task = this.track(new ExternalEventTask<T>(name));
    const buffered = this.bufferedEvents.get(name);
    if (buffered && buffered.length > 0) {
      const idx = this.unconsumed.findIndex((e) => e.name === name);
      if (idx >= 0) this.unconsumed.splice(idx, 1);
      task.complete(buffered.shift() as T);
      if (buffered.length === 0) this.bufferedEvents.delete(name);
    } else {
      const list = this.eventWaiters.get(name) ?? [];
      list.push(task as ExternalEventTask);
      this.eventWaiters.set(name, list);
    }
    return task;
  }

  all<T>(tasks: readonly Task<T>[]): Task<T[]> {
    assertTasks(tasks, 'ctx.all');
    return this.track(new WhenAllTask<T>(tasks));
  }

  any(tasks: readonly Task<unknown>[]): Task<Task<unknown>> {
    assertTasks(tasks, 'ctx.any');
    if (tasks.length === 0) throw invalidArgument('ctx.any', 'tasks', 'an array of at least one durable task', tasks);
    return this.track(new WhenAnyTask(tasks));
  }

  setCustomStatus(value: unknown): void {
    this.check(value, 'Custom status');
    this.customStatus = value;
    this.customStatusSet = true;
  }

  newGuid(): string {
    const name = `${this.instanceId}_${this.currentUtcDateTime.toISOString()}_${this.guidCounter++}`;
    return uuidV5(name, GUID_NAMESPACE);
  }

  callEntity<TOut = unknown>(entity: EntityRef, operationName: string, input?: unknown): Task<TOut> {
    const id = toEntityId(entity, 'ctx.callEntity', 'entity').toString();
    assertOperationName(operationName, 'ctx.callEntity');
    assertKnownOperation(entity, operationName);
    if (this.section && !this.section.entities.includes(id)) {
      throw new EntityLockError(
        `ctx.callEntity: inside a critical section only the entities it holds may be called; '${id}' is not one of ${this.section.entities.map((e) => `'${e}'`).join(', ')}`,
      );
    }
    const checked = this.check(input, `Input of operation '${operationName}' of entity '${id}'`);
    const seq = this.nextSeq++;
    if (checked !== undefined) this.checkedInputs.set(seq, checked);
    const task = new EntityCallTask<TOut>(seq, id, operationName);
    this.pendingActions.set(seq, { type: 'SendEntityMessage', id: seq, kind: 'call', entity: id, operation: operationName, input });
    this.openTasks.set(seq, task as EntityCallTask);
    return this.track(task);
  }

  signalEntity(entity: EntityRef, operationName: string, ...rest: unknown[]): void {
    const id = toEntityId(entity, 'ctx.signalEntity', 'entity').toString();
    assertOperationName(operationName, 'ctx.signalEntity');
    assertKnownOperation(entity, operationName);
    const [input, options] = rest as [unknown, { scheduledTime?: Date } | undefined];
    assertOptions('ctx.signalEntity', 'options', options);
    const at = options?.scheduledTime;
    if (at !== undefined) assertDate('ctx.signalEntity', 'options.scheduledTime', at);
    const checked = this.check(input, `Input of operation '${operationName}' of entity '${id}'`);
    const seq = this.nextSeq++;
    if (checked !== undefined) this.checkedInputs.set(seq, checked);
    const action: SendEntityMessageAction = { type: 'SendEntityMessage', id: seq, kind: 'signal', entity: id, operation: operationName, input };
    if (at) action.scheduledTime = at.getTime();
    this.pendingActions.set(seq, action);
  }

  lockEntities(...entities: EntityRef[]): Task<EntityLock> {
    if (entities.length === 0) throw invalidArgument('ctx.lockEntities', 'entities', 'at least one entity', entities);
    const ids = [...new Set(entities.map((e, i) => toEntityId(e, 'ctx.lockEntities', `entities[${i}]`).toString()))].sort();
    if (this.section) {
      throw new EntityLockError(`ctx.lockEntities: the orchestration is already in a critical section (over ${this.section.entities.map((e) => `'${e}'`).join(', ')}); release it first`);
    }
    const seq = this.nextSeq++;
    const section = { entities: ids, granted: false };
    this.section = section;
    const task = new EntityLockTask<EntityLock>(seq, ids);
    this.pendingActions.set(seq, { type: 'SendEntityMessage', id: seq, kind: 'lock', entity: ids[0]!, lockSet: ids });
    this.openTasks.set(seq, task as EntityLockTask);
    return this.track(task);
  }

  isInCriticalSection(): { inSection: boolean; lockedEntities: string[] } {
    const s = this.section;
    return s?.granted ? { inSection: true, lockedEntities: [...s.entities] } : { inSection: false, lockedEntities: [] };
  }

  /** The lock of task `seq` was granted: the code holds its entities until it releases them. */
  grantLock(task: EntityLockTask): void {
    const section = this.section;
    if (section) section.granted = true;
    const lock: EntityLock = {
      entities: task.entityIds,
      release: () => {
        if (this.section !== section || !section) return;
        this.releaseSection();
      },
    };
    task.complete(lock);
  }

  /** Sends the unlocks of a granted critical section (at `release()`, or when the orchestration ends in it). */
  releaseSection(): void {
    const section = this.section;
    if (!section?.granted) return;
    this.section = undefined;
    for (const entity of section.entities) {
      const seq = this.nextSeq++;
      this.pendingActions.set(seq, { type: 'SendEntityMessage', id: seq, kind: 'unlock', entity });
    }
  }

  // ---- executor side ----

  /**
   * History says the action with this sequence number was scheduled: it must be what the code asked for.
   * `at` locates the history event (its index in the execution's history and its type) for the error.
   */
  matchScheduled(
    id: number,
    type: 'ScheduleTask' | 'CreateTimer' | 'CreateSubOrchestration' | 'SendEntityMessage',
    name: string | undefined,
    at: { historyIndex?: number; eventType?: string } = {},
  ): void {
    const action = this.pendingActions.get(id);
    const expected = describeStep(type, name);
    const details = {
      historyIndex: at.historyIndex,
      historyEventType: at.eventType,
      recorded: { kind: stepKind(type), name, sequenceNumber: id },
    };
    if (!action) {
      throw new NonDeterminismError(id, expected, 'nothing (the code scheduled no task with this sequence number)', details);
    }
    const actualName = actionName(action);
    if (action.type !== type || actualName !== name) {
      throw new NonDeterminismError(id, expected, describeStep(action.type, actualName), {
        ...details,
        code: { kind: stepKind(action.type), name: actualName, sequenceNumber: action.id },
      });
    }
    this.pendingActions.delete(id);
    this.checkedInputs.delete(id);
  }

  /** Takes an open task out of the open set, for a completion event. */
  takeOpenTask(id: number): SequencedTask | undefined {
    const task = this.openTasks.get(id);
    if (task) this.openTasks.delete(id);
    return task;
  }

  deliverEvent(name: string, input: unknown): boolean {
    const waiters = this.eventWaiters.get(name);
    const waiter = waiters?.shift();
    if (waiters && waiters.length === 0) this.eventWaiters.delete(name);
    if (waiter) {
      waiter.complete(input);
      return waiter.awaited;
    }
    const list = this.bufferedEvents.get(name) ?? [];
    list.push(input);
    this.bufferedEvents.set(name, list);
    this.unconsumed.push({ name, input });
    return false;
  }

  /** Raised events buffered and never consumed, in arrival order. */
  unconsumedEvents(): { name: string; input: unknown }[] {
    return [...this.unconsumed];
  }

  /** Timers cancelled for the first time in this episode. */
  readonly cancelledTimers: number[] = [];

  private cancelTimer(t: TimerTask): void {
    this.openTasks.delete(t.id);
    // Created and cancelled before history recorded it: it is never scheduled (the same on replay).
    if (this.pendingActions.delete(t.id)) return;
    // Cancelled while replaying: an earlier episode already asked for it.
    if (!this.isReplaying) this.cancelledTimers.push(t.id);
  }

  /**
   * The episode's new actions were committed: they are history now, as a replay would have matched
   * them (for a session that goes on from here instead of replaying).
   */
  recordNewActions(): void {
    this.pendingActions.clear();
    this.checkedInputs.clear();
    this.cancelledTimers.length = 0;
    this.newPatches.length = 0;
    // customStatusSet stays: a replay would set it again (the commit writes the status it reports).
  }

  /** New actions, in sequence order, then timer cancellations. */
  newActions(): OrchestratorAction[] {
    const actions: OrchestratorAction[] = [...this.pendingActions.values()].sort((a, b) => a.id - b.id);
    for (const id of this.cancelledTimers) actions.push({ type: 'CancelTimer', id });
    return actions;
  }
}

/** What a step is called in history matching: the entity message's kind, target and operation for entity traffic. */
export function entityStepName(kind: string, entity: string, operation?: string): string {
  return operation === undefined ? `${kind} ${entity}` : `${kind} ${entity} '${operation}'`;
}

function actionName(action: SequencedAction): string | undefined {
  if (action.type === 'CreateTimer') return undefined;
  if (action.type === 'SendEntityMessage') return entityStepName(action.kind, action.kind === 'lock' ? action.lockSet!.join(',') : action.entity, action.operation);
  return action.name;
}

/** A typed entity id knows its operations: an unknown one is refused at the call (as a replay would again). */
function assertKnownOperation(entity: unknown, operation: string): void {
  const ops = (entity as { operations?: unknown } | null)?.operations;
  if (Array.isArray(ops) && !ops.includes(operation)) {
    throw new EntityOperationNotFoundError((entity as { name: string }).name, operation, ops as string[]);
  }
}

function stepKind(type: string): 'activity' | 'timer' | 'sub-orchestration' | 'entity' {
  return type === 'ScheduleTask' ? 'activity' : type === 'CreateSubOrchestration' ? 'sub-orchestration' : type === 'SendEntityMessage' ? 'entity' : 'timer';
}

function describeStep(type: string, name: string | undefined): string {
  if (type === 'SendEntityMessage') return `entity message ${name}`;
  if (type === 'ScheduleTask') return `activity '${name}'`;
  if (type === 'CreateSubOrchestration') return `sub-orchestration '${name}'`;
  return type === 'CreateTimer' ? 'a timer' : type;
}

function assertTasks(tasks: readonly unknown[], fn: string): void {
  if (!Array.isArray(tasks)) throw invalidArgument(fn, 'tasks', 'an array of durable tasks', tasks);
  tasks.forEach((t, i) => {
    if (!(t && typeof t === 'object' && 'kind' in t && typeof (t as Task).onComplete === 'function')) {
      throw new ValidationError(`${fn}: tasks[${i}] must be a durable task (from ctx.callActivity, ctx.createTimer, ...), got ${describeValue(t)}`);
    }
  });
}

function uuidV5(name: string, namespace: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(name, 'utf8').digest();
  const b = hash.subarray(0, 16);
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
