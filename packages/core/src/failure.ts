/**
 * Serializable description of an error, as it travels through history: an activity's error, an
 * orchestrator's uncaught error. Mirrors Durable Task's `FailureDetails`.
 */
export interface FailureDetails {
  /** The original error's `name` (`TypeError`, `PaymentDeclinedError`...). */
  errorName: string;
  message: string;
  stack?: string;
  /** The function the failure came from (activity or orchestrator name), when known. */
  functionName?: string;
  /** Set when the error must not be retried. */
  nonRetriable?: boolean;
  /** The failure this one wraps, for nested failures (an activity failure rethrown by the orchestrator). */
  inner?: FailureDetails;
}

/** Builds FailureDetails from anything that was thrown. */
export function toFailureDetails(err: unknown, functionName?: string): FailureDetails {
  if (err instanceof Error) {
    const details: FailureDetails = { errorName: err.name || 'Error', message: err.message };
    if (err.stack) details.stack = err.stack;
    if (functionName) details.functionName = functionName;
    if ((err as { nonRetriable?: unknown }).nonRetriable === true) details.nonRetriable = true;
    const inner = (err as { failure?: unknown }).failure;
    if (isFailureDetails(inner)) details.inner = inner;
    return details;
  }
  const details: FailureDetails = { errorName: 'Error', message: typeof err === 'string' ? err : safeString(err) };
  if (functionName) details.functionName = functionName;
  return details;
}

export function isFailureDetails(v: unknown): v is FailureDetails {
  return typeof v === 'object' && v !== null && typeof (v as FailureDetails).errorName === 'string' && typeof (v as FailureDetails).message === 'string';
}

function safeString(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
