/**
 * Argument checks of durabull's public entry points (client, registry, typed API, orchestration
 * context, worker and server), in one place. A wrong argument throws ValidationError naming where
 * it was passed, the argument and the value received, e.g.
 * `startNew: name must be a string, got number 42`, before anything is changed. Payloads (inputs,
 * results, event data) are checked by the backend's codec and throw PayloadError.
 */
import { ValidationError } from './errors.js';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$/;
const INSTANCE_ID_RE = /^[A-Za-z0-9_.@-]{1,256}$/;
const EVENT_NAME_RE = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** A short, safe description of a value for an error message: `number 42`, `string "x"`, `undefined`, `an array of length 2`... */
export function describeValue(v: unknown): string {
  switch (typeof v) {
    case 'undefined':
      return 'undefined';
    case 'string':
      return `string ${clip(JSON.stringify(v))}`;
    case 'number':
    case 'boolean':
      return `${typeof v} ${String(v)}`;
    case 'bigint':
      return `bigint ${String(v)}n`;
    case 'symbol':
      return `symbol ${clip(String(v))}`;
    case 'function':
      return `function ${clip(v.name || '(anonymous)')}`;
    default:
      break;
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (v instanceof Date) return `Date ${Number.isNaN(v.getTime()) ? 'Invalid Date' : v.toISOString()}`;
  let proto: unknown;
  try {
    proto = Object.getPrototypeOf(v);
  } catch {
    return 'an object';
  }
  if (proto === Object.prototype || proto === null) {
    let keys: string[];
    try {
      keys = Object.keys(v as object);
    } catch {
      return 'an object';
    }
    const shown = keys.slice(0, 5).map((k) => clip(k, 20));
    return keys.length === 0 ? 'object {}' : `object { ${shown.join(', ')}${keys.length > 5 ? ', ...' : ''} }`;
  }
  const ctor = (proto as { constructor?: { name?: unknown } } | undefined)?.constructor?.name;
  return typeof ctor === 'string' && ctor ? `an instance of ${clip(ctor, 40)}` : 'an object';
}

function clip(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

/** The error for argument `arg` of `where` that is not `expected`: `<where>: <arg> must be <expected>, got <value>`. */
export function invalidArgument(where: string, arg: string, expected: string, value: unknown): ValidationError {
  return new ValidationError(`${where ? `${where}: ` : ''}${arg} must be ${expected}, got ${describeValue(value)}`);
}

export function assertString(where: string, arg: string, v: unknown): asserts v is string {
  if (typeof v !== 'string') throw invalidArgument(where, arg, 'a string', v);
}

export function assertOptionalString(where: string, arg: string, v: unknown): asserts v is string | undefined {
  if (v !== undefined && typeof v !== 'string') throw invalidArgument(where, arg, 'a string', v);
}

/** An options (or filter, query) argument: undefined or an object that is not an array. */
export function assertOptions(where: string, arg: string, v: unknown): asserts v is Record<string, unknown> | undefined {
  if (v !== undefined && (typeof v !== 'object' || v === null || Array.isArray(v))) throw invalidArgument(where, arg, 'an object', v);
}

export function assertOptionalBoolean(where: string, arg: string, v: unknown): asserts v is boolean | undefined {
  if (v !== undefined && typeof v !== 'boolean') throw invalidArgument(where, arg, 'true or false', v);
}

export function assertFunction(where: string, arg: string, v: unknown): asserts v is (...args: never[]) => unknown {
  if (typeof v !== 'function') throw invalidArgument(where, arg, 'a function', v);
}

/** undefined, or an integer from `min` to `max` (inclusive). */
export function assertOptionalInteger(where: string, arg: string, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): asserts v is number | undefined {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw invalidArgument(where, arg, `an integer ${range}`, v);
  }
}

/** undefined, or a number above `min` (`inclusive`: at least `min`); Infinity is allowed. */
export function assertOptionalNumber(where: string, arg: string, v: unknown, min: number, inclusive = false): asserts v is number | undefined {
  if (v === undefined) return;
  if (typeof v !== 'number' || Number.isNaN(v) || (inclusive ? v < min : v <= min)) {
    throw invalidArgument(where, arg, `a number ${inclusive ? '>=' : '>'} ${min}`, v);
  }
}

/** A Date that holds a time (not `new Date('nonsense')`). */
export function assertDate(where: string, arg: string, v: unknown): asserts v is Date {
  if (!(v instanceof Date) || Number.isNaN(v.getTime())) throw invalidArgument(where, arg, 'a valid Date', v);
}

/** True for a valid instance id (see {@link assertInstanceId}). */
export function isInstanceId(id: unknown): id is string {
  return typeof id === 'string' && INSTANCE_ID_RE.test(id) && id !== '.' && id !== '..';
}

/**
 * Instance ids: 1 to 256 of letters, digits, `_`, `.`, `@`, `-`, except `.` and `..`. Anything else
 * (`:`, `{`, `}`, spaces, control characters) could escape the key layout or a BullMQ job id, and
 * `.` and `..` are path segments that no URL can address. `where` names the caller in the message
 * for a value that is not a string.
 */
export function assertInstanceId(id: unknown, where = '', arg = 'instanceId'): asserts id is string {
  if (isInstanceId(id)) return;
  if (typeof id !== 'string') throw invalidArgument(where, arg, 'a string', id);
  if (id === '.' || id === '..') {
    throw new ValidationError(`Invalid instance id ${JSON.stringify(id)}: '.' and '..' are refused, since no URL can address them (they are path segments).`);
  }
  const shown = id.length > 300 ? `${id.slice(0, 300)}...` : id;
  throw new ValidationError(`Invalid instance id ${JSON.stringify(shown)}: use 1 to 256 letters, digits, '_', '.', '@' or '-'.`);
}

/** Checks an orchestrator or activity name: letters, digits, `_`, `.`, `-`; at most 128 characters. */
export function assertFunctionName(kind: string, name: unknown, where = ''): asserts name is string {
  if (typeof name === 'string' && NAME_RE.test(name)) return;
  if (typeof name !== 'string') throw invalidArgument(where, 'name', `a string (the ${kind} name)`, name);
  throw new ValidationError(
    `Invalid ${kind} name ${JSON.stringify(clip(name, 200))}: use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or '_'.`,
  );
}

/** Checks an external event's name: 1 to 128 letters, digits, `_`, `.`, `:`, `@`, `-`. */
export function assertEventName(name: unknown, where = ''): asserts name is string {
  if (typeof name === 'string' && EVENT_NAME_RE.test(name)) return;
  if (typeof name !== 'string') throw invalidArgument(where, 'eventName', 'a string', name);
  throw new ValidationError(`Invalid event name ${JSON.stringify(clip(name, 200))}: use 1 to 128 letters, digits, '_', '.', ':', '@' or '-'.`);
}

/**
 * The name of an orchestrator or activity given by name or by definition (`defineActivity`,
 * `defineOrchestrator`), checked.
 */
export function functionNameOf(kind: 'orchestrator' | 'activity', f: unknown, where: string, arg = 'name'): string {
  if (typeof f === 'string') {
    assertFunctionName(kind, f, where);
    return f;
  }
  const def = f as { kind?: unknown; name?: unknown } | null;
  if (typeof f === 'object' && def !== null && def.kind === kind && typeof def.name === 'string') {
    assertFunctionName(kind, def.name, where);
    return def.name;
  }
  const from = kind === 'activity' ? 'defineActivity()' : 'defineOrchestrator()';
  throw invalidArgument(where, arg, `a string (the ${kind} name) or a definition from ${from}`, f);
}

/**
 * The timeouts of an activity (at registration, or per call): `startToCloseTimeoutMs` and
 * `heartbeatTimeoutMs`, each undefined or an integer number of ms >= 1. `arg` names the options
 * argument in errors (`ctx.callActivity: options.heartbeatTimeoutMs must be an integer >= 1, got number -5`).
 */
export function assertActivityOptions(where: string, arg: string, o: unknown): asserts o is { startToCloseTimeoutMs?: number; heartbeatTimeoutMs?: number } | undefined {
  assertOptions(where, arg, o);
  if (o === undefined) return;
  const { startToCloseTimeoutMs, heartbeatTimeoutMs } = o as Record<string, unknown>;
  assertOptionalInteger(where, `${arg}.startToCloseTimeoutMs`, startToCloseTimeoutMs, 1);
  assertOptionalInteger(where, `${arg}.heartbeatTimeoutMs`, heartbeatTimeoutMs, 1);
}

const SCHEDULE_ID_RE = /^[A-Za-z0-9_.-]{1,200}$/;

/**
 * Schedule ids: 1 to 200 of letters, digits, `_`, `.`, `-` (not `.` or `..`). The id of an
 * instance a schedule starts is `<schedule id>@<tick>`, so it stays a valid instance id.
 */
export function assertScheduleId(id: unknown, where = '', arg = 'scheduleId'): asserts id is string {
  if (typeof id === 'string' && SCHEDULE_ID_RE.test(id) && id !== '.' && id !== '..') return;
  if (typeof id !== 'string') throw invalidArgument(where, arg, 'a string (the schedule id)', id);
  throw new ValidationError(
    `${where ? `${where}: ` : ''}Invalid schedule id ${JSON.stringify(clip(id, 220))}: use 1 to 200 letters, digits, '_', '.' or '-' (not '.' or '..').`,
  );
}

const ISO_TIME_RE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2}))?$/;

/**
 * A point in time given as a `Date`, an ISO 8601 string with a time zone offset
 * (`2024-06-01T09:00:00Z`, `2024-06-01T11:00:00+02:00`; a date alone is midnight UTC) or epoch
 * milliseconds; anything else throws ValidationError naming `arg`.
 */
export function parseTimeArgument(where: string, arg: string, v: unknown): Date {
  let t = Number.NaN;
  if (v instanceof Date) t = v.getTime();
  else if (typeof v === 'number') t = Number.isFinite(v) ? v : Number.NaN;
  else if (typeof v === 'string' && ISO_TIME_RE.test(v)) t = Date.parse(v);
  if (Number.isNaN(t) || Math.abs(t) > 8.64e15) {
    throw invalidArgument(where, arg, 'a valid Date, an ISO 8601 time with an offset (2024-06-01T09:00:00Z) or epoch milliseconds', v);
  }
  return new Date(t);
}
