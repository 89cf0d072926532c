/** Codes the Lua scripts return; `toError` is the one place that turns them into typed errors. */
import { DurabullError, InstanceAlreadyExistsError, InstanceNotFoundError, StaleEpisodeError, ValidationError } from '@durabull/core';

/** A worker, client or tool configured with another partition count than the task hub has. */
export class PartitionMismatchError extends ValidationError {
  constructor(
    readonly hub: string,
    readonly configured: number,
    readonly stored: number,
  ) {
    super(
      `Task hub '${hub}' has ${stored} partition${stored === 1 ? '' : 's'}, but this process is configured with partitions: ${configured}. ` +
        `The partition count is fixed when a hub is first used: configure ${stored} (or leave partitions unset to use the hub's).`,
    );
  }
}

export const ErrorCode = {
  InstanceExists: -1,
  Stale: -2,
  InstanceFinished: -3,
  StaleExecution: -4,
  InvalidState: -5,
  /** commitEpisode with a direct result: the instance moved on; nothing was written. */
  DirectRefused: -6,
  /** startInstance of a sub-orchestration whose parent was terminated recursively: not started. */
  ParentTerminated: -7,
  /** commitEpisode: the inbox entries the episode consumed are not in the inbox any more; nothing was written. */
  InboxChanged: -8,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An event was sent to an instance that has already finished. */
export class InstanceFinishedError extends DurabullError {
  constructor(
    readonly instanceId: string,
    readonly runtimeStatus: string,
  ) {
    super(`Instance '${instanceId}' has already finished (${runtimeStatus}); it takes no more events.`);
  }
}

/** The operation does not apply to the instance's current status (purge a running one, resume one not suspended...). */
export class InvalidInstanceStateError extends DurabullError {
  constructor(
    readonly instanceId: string,
    readonly runtimeStatus: string,
    readonly operation: string,
  ) {
    super(`Cannot ${operation} instance '${instanceId}': it is ${runtimeStatus}.`);
  }
}

/**
 * A reference to a payload stored apart (claim check) whose key is missing: deleted by hand, or
 * by a purge or continue-as-new that ran while it was being read.
 */
export class PayloadMissingError extends DurabullError {
  constructor(
    readonly instanceId: string,
    readonly key: string,
    readonly bytes: number,
  ) {
    super(`Instance '${instanceId}': the payload stored apart under '${key}' (${bytes} bytes) is missing; a reference to it remains.`);
  }
}

/**
 * Redis did not answer a command within the client's `commandTimeoutMs`: it is unreachable (the
 * connection is down and ioredis keeps the command for when it is back) or does not answer. The
 * outcome is unknown: the command may have been applied, and one that waits in ioredis' queue is
 * still sent, and applied, once Redis is back. Starts, events and operations are idempotent when
 * retried with the same ids (a start with the same `instanceId` either starts the instance or throws
 * InstanceAlreadyExistsError because the first one did).
 */
export class RedisUnavailableError extends DurabullError {
  constructor(
    /** The client call, e.g. `startNew`. */
    readonly operation: string,
    readonly timeoutMs: number,
    /** ioredis' connection status at that moment (`reconnecting`, `connecting`, `ready`...). */
    readonly connectionStatus: string,
    options?: { cause?: unknown },
  ) {
    super(
      `${operation}: Redis did not answer within ${timeoutMs} ms (connection ${connectionStatus}). The outcome is unknown: ` +
        'what was sent may still be applied once Redis is back.',
      options,
    );
  }
}

export function toError(code: number, ctx: { instanceId: string; status?: string; script: string; operation?: string }): Error {
  switch (code) {
    case -1:
      return ctx.script === 'startInstance'
        ? new InstanceAlreadyExistsError(ctx.instanceId, ctx.status ?? 'Running')
        : new InstanceNotFoundError(ctx.instanceId);
    case -2:
      return new StaleEpisodeError(ctx.instanceId);
    case -3:
      return new InstanceFinishedError(ctx.instanceId, ctx.status ?? 'finished');
    case -5:
      return new InvalidInstanceStateError(ctx.instanceId, ctx.status ?? 'unknown', ctx.operation ?? ctx.script);
    default:
      return new DurabullError(`Script ${ctx.script} returned unknown code ${code} for instance '${ctx.instanceId}'`);
  }
}
