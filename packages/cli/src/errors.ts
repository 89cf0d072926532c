/**
 * What the CLI does with an error: one line on stderr and an exit code. Expected errors (a missing
 * instance, a wrong status, bad input) never print a stack trace.
 */
import { DurabullError, InstanceNotFoundError, OrchestratorNotServedError, ValidationError } from '@durabull/core';
import { RedisServerNotFoundError } from '@durabull/testing';

/** Exit codes of the `durabull` command. */
export const ExitCode = {
  /** The command did what it was asked. */
  Ok: 0,
  /** The command ran and failed: missing instance, wrong status, timeout, Redis unreachable, a failed orchestration. */
  Failure: 1,
  /** The command line is wrong: unknown command or option, missing argument, invalid JSON, id, name or number. */
  Usage: 2,
  /** Stopped by SIGINT while waiting. */
  Interrupted: 130,
} as const;
/** One of the {@link ExitCode} values. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error the CLI reports as one `error: <message>` line and the given exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.Failure,
    /** Extra lines printed after the message (for example the stack of an error in the user's module). */
    readonly detail?: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The command line is wrong (exit code 2); nothing was done. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.Usage);
  }
}

/** How an error is shown: the `error:` line, optional further lines, and the exit code. */
export interface ErrorReport {
  message: string;
  detail?: string;
  exitCode: number;
}

/**
 * Turns any error into what the CLI prints. `hub` completes the message of a missing instance, the
 * most common mistake being the wrong task hub.
 */
export function reportError(err: unknown, ctx: { hub?: string; debug?: boolean } = {}): ErrorReport {
  if (err instanceof CliError) return { message: err.message, exitCode: err.exitCode, ...(err.detail ? { detail: err.detail } : {}) };
  if (err instanceof InstanceNotFoundError) {
    const where = ctx.hub ? `task hub '${ctx.hub}'` : 'this task hub';
    return { message: `No instance '${err.instanceId}' exists in ${where}.`, exitCode: ExitCode.Failure };
  }
  if (err instanceof OrchestratorNotServedError) {
    const served = err.served.length ? err.served.map((n) => `'${n}'`).join(', ') : '(none)';
    return {
      message: `No live worker of task hub '${err.hub}' runs an orchestrator named '${err.functionName}'; nothing was started. Served orchestrators: ${served}. To start it anyway (it waits, Pending, for such a worker), add --allow-unknown-name.`,
      exitCode: ExitCode.Failure,
    };
  }
  // An invalid id, name, payload or page size: the arguments were wrong, nothing was written.
  if (err instanceof ValidationError) return { message: err.message, exitCode: ExitCode.Usage };
  if (err instanceof DurabullError || err instanceof RedisServerNotFoundError) return { message: err.message, exitCode: ExitCode.Failure };
  const e = err instanceof Error ? err : new Error(String(err));
  const report: ErrorReport = { message: `${e.name}: ${e.message}`, exitCode: ExitCode.Failure };
  report.detail = ctx.debug ? e.stack : '(unexpected error; set DURABULL_DEBUG=1 to see its stack)';
  return report;
}
