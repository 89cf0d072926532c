/**
 * The errors of the durable-functions API, as v3 names them, and the one durabull adds for what it
 * does not support.
 */
import { DurabullError, type FailureDetails, type TaskFailedError } from '@durabull/core';

/**
 * Thrown into the orchestrator (at the `yield`) when an activity, sub-orchestration or entity call
 * it waits on failed: `instanceof DurableError` tells these apart from the orchestrator's own
 * errors, as v3 documents. `failure` holds the original error's name, message and stack, `cause`
 * the durabull error behind it (a `TaskFailedError`).
 */
export class DurableError extends DurabullError {
  /** The failed function's error as its worker saw it (set for task failures). */
  readonly failure?: FailureDetails;
  constructor(message: string | undefined, options?: { cause?: unknown; failure?: FailureDetails }) {
    super(message ?? '', options?.cause === undefined ? undefined : { cause: options.cause });
    if (options?.failure) this.failure = options.failure;
  }
}

/** The separator v3 puts between the errors of an AggregatedError's message. */
const SEPARATOR = '-----------------------------------';

/**
 * v3's error for several failures at once, with `errors`. v3 (3.x) declares it for
 * `context.df.Task.all()` but its `Task.all` fails with the first failure, as durabull's does: this
 * class is exported for code that refers to it, and nothing here throws it.
 */
export class AggregatedError extends DurabullError {
  readonly errors: Error[];
  constructor(errors: Error[]) {
    const parts = errors.map((e) => `Name: ${e.name}\nMessage: ${e.message}\nStackTrace: ${e.stack}`);
    super(`context.df.Task.all() encountered the below error messages:\n\n${parts.join(`\n${SEPARATOR}\n`)}`);
    this.errors = errors;
  }
}

/**
 * A part of the durable-functions or Azure Functions API that durabull does not run (an Azure
 * binding, a trigger other than HTTP, managed-identity tokens...). `feature` names it; the message
 * says what to use instead.
 */
export class NotSupportedError extends DurabullError {
  constructor(
    readonly feature: string,
    message: string,
  ) {
    super(message);
  }
}

/** The DurableError for a failed task, in v3's words (`Activity function 'X' failed: ...`). */
export function taskFailure(kind: 'activity' | 'suborchestration' | 'entity', name: string, err: TaskFailedError): DurableError {
  const f = err.failure;
  const message =
    kind === 'activity'
      ? `Activity function '${name}' failed: ${f.message}`
      : kind === 'suborchestration'
        ? `Sub orchestrator function '${name}' failed: ${f.message}`
        : `Entity operation ${name} failed: ${f.errorName}: ${f.message}`;
  return new DurableError(message, { cause: err, failure: f });
}

/** v3's test doubles (`new df.DummyOrchestrationContext()`): not provided; test orchestrations on a real worker instead. */
export class DummyOrchestrationContext {
  constructor() {
    throw new NotSupportedError(
      'DummyOrchestrationContext',
      'DummyOrchestrationContext is not supported: durabull has no replay-only test double; run the orchestration on a worker (a Redis and `new DurabullWorker({ registry: df.registry })`) and check its output and history',
    );
  }
}

/** v3's entity test double: not provided (see DummyOrchestrationContext). */
export class DummyEntityContext {
  constructor() {
    throw new NotSupportedError(
      'DummyEntityContext',
      'DummyEntityContext is not supported: run the entity on a worker and read its state with client.readEntityState',
    );
  }
}
