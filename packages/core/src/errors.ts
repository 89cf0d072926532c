/**
 * The error hierarchy of durabull. Every error has a stable `name` and carries its context as typed
 * fields. `instanceof` works across duplicate copies of the package (and vm realms): each instance
 * carries a `Symbol.for` brand for every class in its chain.
 */
import type { FailureDetails } from './failure.js';

const brandOf = (className: string) => Symbol.for(`durabull.error:${className}`);

export class DurabullError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    Object.setPrototypeOf(this, new.target.prototype);
    for (let c: unknown = new.target; typeof c === 'function' && c !== Error; c = Object.getPrototypeOf(c)) {
      Object.defineProperty(this, brandOf((c as { name: string }).name), { value: true, enumerable: false });
    }
  }

  static override [Symbol.hasInstance](obj: unknown): boolean {
    if (typeof obj !== 'object' || obj === null) return false;
    return (obj as Record<symbol, unknown>)[brandOf(this.name)] === true;
  }
}

/** One step at the first divergence, as history recorded it or as the code took it. */
export interface NonDeterminismStep {
  kind: 'activity' | 'timer' | 'sub-orchestration' | 'entity';
  /** The activity or orchestrator name (none for a timer). */
  name?: string | undefined;
  sequenceNumber: number;
}

/** Where in history the divergence is: the event's index in the execution's history and its type. */
export interface NonDeterminismDetails {
  historyIndex?: number | undefined;
  historyEventType?: string | undefined;
  /** What history recorded at the sequence number. */
  recorded?: NonDeterminismStep | undefined;
  /** What the code did at the sequence number; undefined when it scheduled nothing there. */
  code?: NonDeterminismStep | undefined;
}

/**
 * The orchestrator's code took a different path than its history records. Shows, side by side, the
 * first divergence: the history event (index, type, sequence number, kind and name) and what the
 * code did at that sequence number, e.g.
 * `history[7] TaskScheduled #2 activity 'F2'  vs  code: activity 'F3' (#2)`.
 */
export class NonDeterminismError extends DurabullError {
  /** Index of the diverging event in the execution's history (as `getStatus(..., { showHistory })` lists it). */
  readonly historyIndex: number | undefined;
  /** Type of the diverging history event (`TaskScheduled`, `TimerCreated`, `SubOrchestrationInstanceCreated`). */
  readonly historyEventType: string | undefined;
  readonly recorded: NonDeterminismStep | undefined;
  readonly code: NonDeterminismStep | undefined;
  constructor(
    readonly sequenceNumber: number,
    readonly expected: string,
    readonly actual: string,
    details: NonDeterminismDetails = {},
  ) {
    const where = details.historyIndex !== undefined ? `history[${details.historyIndex}] ` : 'history: ';
    const evType = details.historyEventType ? `${details.historyEventType} ` : '';
    const codeSide = details.code ? `${actual} (#${details.code.sequenceNumber})` : actual;
    super(
      `Non-deterministic orchestrator: ${where}${evType}#${sequenceNumber} ${expected}  vs  code: ${codeSide}. ` +
        `At sequence number ${sequenceNumber} the history records ${expected}, ` +
        `but the code did ${actual}. Orchestrator code must take the same path on every replay; ` +
        `use ctx.currentUtcDateTime, ctx.newGuid() and activities instead of the clock, randomness or I/O.`,
    );
    this.historyIndex = details.historyIndex;
    this.historyEventType = details.historyEventType;
    this.recorded = details.recorded;
    this.code = details.code;
  }
}

/**
 * Thrown into the orchestrator (at the `yield`/`await`) when an activity it called failed.
 * `failure` holds the original error's name, message and stack as the activity worker saw them.
 */
export class TaskFailedError extends DurabullError {
  readonly failure: FailureDetails;
  /** Attempts made, with a retry policy. */
  attempts = 1;
  constructor(
    readonly taskName: string,
    readonly taskId: number,
    failure: FailureDetails,
    kind = 'Activity',
  ) {
    super(`${kind} '${taskName}' (task ${taskId}) failed: ${failure.errorName}: ${failure.message}`);
    this.failure = failure;
  }
  /** The original error's name (`TypeError`, ...). */
  get causeName(): string {
    return this.failure.errorName;
  }
  /** The original error's stack, as captured by the worker that ran the activity. */
  get causeStack(): string | undefined {
    return this.failure.stack;
  }
}

/**
 * Throw it from an activity (or orchestrator) to say that retrying cannot help: retry policies stop
 * at once. Any error with `nonRetriable = true` counts the same.
 */
export class NonRetriableError extends DurabullError {
  readonly nonRetriable = true;
}

/** No orchestrator or activity of that name is registered. Lists the registered names. */
export class FunctionNotFoundError extends DurabullError {
  constructor(
    readonly kind: 'orchestrator' | 'activity',
    readonly functionName: string,
    readonly registered: readonly string[],
  ) {
    super(
      `No ${kind} named '${functionName}' is registered. Registered ${kind === 'activity' ? 'activities' : 'orchestrators'}: ` +
        (registered.length ? registered.map((n) => `'${n}'`).join(', ') : '(none)'),
    );
  }
}

/** The orchestrator awaited or yielded something that is not a durable task. */
export class NonDurableAwaitError extends DurabullError {}

/** An argument is not valid (an instance id, a name, a payload...). Nothing was changed. */
export class ValidationError extends DurabullError {}

/** A payload could not be serialized (a function, a symbol...) or is over the size limit. */
export class PayloadError extends ValidationError {}

/** `startNew` with the id of an instance that exists and is not finished. */
export class InstanceAlreadyExistsError extends DurabullError {
  constructor(
    readonly instanceId: string,
    readonly runtimeStatus: string,
  ) {
    super(`Instance '${instanceId}' already exists and is ${runtimeStatus}; an instance id can be reused only once the instance has finished.`);
  }
}

/** No instance with that id exists in the task hub. */
export class InstanceNotFoundError extends DurabullError {
  constructor(readonly instanceId: string) {
    super(`No instance '${instanceId}' exists in this task hub.`);
  }
}

/** `waitForCompletion` ran out of time; the instance goes on. */
export class WaitTimeoutError extends DurabullError {
  constructor(
    readonly instanceId: string,
    readonly timeoutMs: number,
    readonly runtimeStatus: string,
  ) {
    super(`Instance '${instanceId}' did not finish within ${timeoutMs} ms (it is ${runtimeStatus}).`);
  }
}

/** A commit lost its optimistic-concurrency check: another worker moved the instance on. */
export class StaleEpisodeError extends DurabullError {
  constructor(readonly instanceId: string) {
    super(`Instance '${instanceId}' was changed by another worker during this episode; its commit was dropped.`);
  }
}

/** Rebuilds an Error from FailureDetails (for client-side reporting). */
export class OrchestrationFailedError extends DurabullError {
  constructor(
    readonly instanceId: string,
    readonly failure: FailureDetails | undefined,
  ) {
    super(`Instance '${instanceId}' failed: ${failure ? `${failure.errorName}: ${failure.message}` : 'unknown error'}`);
  }
}

/**
 * A job whose data is not what durabull writes (garbage added to a queue by hand, a job from an
 * incompatible version). It is dead-lettered at once (BullMQ's failed set, never retried); when it
 * names a real activity task, that task fails with this error.
 */
export class MalformedJobError extends DurabullError {
  constructor(
    readonly queue: string,
    readonly jobId: string | undefined,
    readonly reason: string,
  ) {
    super(`Malformed ${queue} job '${jobId ?? '?'}': ${reason}. It was dead-lettered (BullMQ failed set) and will not be retried.`);
  }
}

/**
 * A job that failed for infrastructure reasons on every attempt, or whose worker kept dying: a
 * poison message. The instance (an episode) or the task (an activity) fails with it instead of
 * looping; the job stays in BullMQ's failed set.
 */
export class PoisonJobError extends DurabullError {
  constructor(
    readonly kind: 'episode' | 'activity',
    readonly attempts: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** An episode would grow the execution's history beyond the worker's `maxHistoryEvents`. */
export class HistoryLimitError extends DurabullError {
  constructor(
    readonly instanceId: string,
    readonly events: number,
    readonly limit: number,
  ) {
    super(
      `Instance '${instanceId}': this episode would grow its history to ${events} events, over the limit of ${limit} (maxHistoryEvents). ` +
        `Use ctx.continueAsNew(...) to start a fresh history for long-running orchestrations, or raise the limit.`,
    );
  }
}

/** Redis refused the connection's credentials (a wrong or missing password, an unknown user). */
export class RedisAuthError extends DurabullError {
  constructor(readonly reply: string) {
    super(`Redis refused the credentials: ${reply.replace(/\.$/, '')}. Check the password (and user) in the connection URL or options.`);
  }
}

/**
 * A start of an orchestrator that no live worker of the task hub runs (`startNew`, `restart`, a
 * sub-orchestration's start, the HTTP API's `POST /orchestrations/:name`); nothing was written.
 * `served` lists the orchestrator names the hub's live workers run. A start with
 * `allowUnknownName: true`, or while no live worker runs orchestrators, is not checked.
 */
export class OrchestratorNotServedError extends FunctionNotFoundError {
  constructor(
    orchestratorName: string,
    readonly hub: string,
    readonly served: readonly string[],
  ) {
    super('orchestrator', orchestratorName, served);
    this.message =
      `No live worker of task hub '${hub}' runs an orchestrator named '${orchestratorName}'; nothing was started. Served orchestrators: ` +
      (served.length ? served.map((n) => `'${n}'`).join(', ') : '(none)') +
      '. To start it before a worker that runs it is deployed, pass { allowUnknownName: true }.';
  }
}

/** Which limit of an activity attempt ran out: its whole run, or the time between two heartbeats. */
export type ActivityTimeoutType = 'start-to-close' | 'heartbeat';

/**
 * An activity attempt ran out of time: longer than its start-to-close timeout, or longer than its
 * heartbeat timeout without a heartbeat. The attempt's task fails with it (the orchestrator sees a
 * TaskFailedError whose `failure.errorName` is `ActivityTimeoutError`), and retry policies apply to
 * it as to any failure. A result the attempt produces later is dropped.
 */
export class ActivityTimeoutError extends DurabullError {
  constructor(
    readonly activityName: string,
    readonly timeoutType: ActivityTimeoutType,
    /** The timeout that ran out, in ms. */
    readonly timeoutMs: number,
    /** How long the attempt had run when it was timed out, in ms. */
    readonly elapsedMs: number,
  ) {
    super(
      timeoutType === 'heartbeat'
        ? `Activity '${activityName}' timed out: no heartbeat for ${timeoutMs} ms (heartbeat timeout), after running ${elapsedMs} ms`
        : `Activity '${activityName}' timed out: still running after ${elapsedMs} ms (start-to-close timeout ${timeoutMs} ms)`,
    );
  }
}

/**
 * No entity of that name is registered where it was looked up: in the worker that ran the
 * entity (a `callEntity` task fails with it), or in any live worker of the hub (the client's
 * `signalEntity` throws it before anything is written).
 */
export class EntityNotFoundError extends DurabullError {
  constructor(
    readonly entityName: string,
    readonly registered: readonly string[],
    readonly hub?: string,
  ) {
    super(
      (hub ? `No live worker of task hub '${hub}' runs an entity named '${entityName}'; nothing was sent.` : `No entity named '${entityName}' is registered.`) +
        ' Registered entities: ' +
        (registered.length ? registered.map((n) => `'${n}'`).join(', ') : '(none)'),
    );
  }
}

/**
 * Why an activity's `ctx.signal` was aborted without a timeout: its instance was terminated, the
 * task no longer waits for this attempt (it timed out elsewhere, or its execution ended), or the
 * worker is shutting down past its grace period. It is the signal's `reason`.
 */
export class ActivityCancelledError extends DurabullError {
  constructor(
    readonly activityName: string,
    readonly reason: 'terminated' | 'task-done' | 'worker-shutdown',
  ) {
    super(
      reason === 'terminated'
        ? `Activity '${activityName}' was cancelled: its instance was terminated`
        : reason === 'task-done'
          ? `Activity '${activityName}' was cancelled: its task no longer waits for this attempt (it timed out, or its execution ended)`
          : `Activity '${activityName}' was cancelled: the worker is shutting down (its grace period is over); the attempt runs again elsewhere`,
    );
  }
}

/** No schedule with that id exists in the task hub. */
export class ScheduleNotFoundError extends DurabullError {
  constructor(readonly scheduleId: string) {
    super(`No schedule '${scheduleId}' exists in this task hub.`);
  }
}

/** `schedules.create` with the id of a schedule that exists; nothing was changed. */
export class ScheduleAlreadyExistsError extends DurabullError {
  constructor(readonly scheduleId: string) {
    super(`Schedule '${scheduleId}' already exists; change it with schedules.update, or delete it first.`);
  }
}
/** A typed entity (defineEntity) has no operation of that name. */
export class EntityOperationNotFoundError extends DurabullError {
  constructor(
    readonly entityName: string,
    readonly operationName: string,
    readonly operations: readonly string[],
  ) {
    super(`Entity '${entityName}' has no operation '${operationName}'. Its operations: ${operations.length ? operations.map((n) => `'${n}'`).join(', ') : '(none)'}`);
  }
}

/**
 * Thrown into the orchestrator when an entity operation it called failed (the operation threw, or
 * the entity or operation does not exist: `failure.errorName` says which). The entity's state was
 * rolled back to before the operation.
 */
export class EntityOperationFailedError extends TaskFailedError {
  constructor(
    readonly entityId: string,
    readonly operationName: string,
    taskId: number,
    failure: FailureDetails,
  ) {
    super(`${entityId}:${operationName}`, taskId, failure, 'Entity operation');
  }
}

/**
 * Inside a critical section (`ctx.lockEntities`), the orchestration called an entity it does not
 * hold, or asked for locks again. Thrown at the call; nothing is sent.
 */
export class EntityLockError extends DurabullError {}
