/**
 * Payload and history-event encoding: msgpack (msgpackr). Dates, BigInts, typed arrays and
 * `undefined` round-trip; functions, symbols, circular structures and nesting deeper than
 * {@link MAX_PAYLOAD_DEPTH} are refused up front with a PayloadError that names where they are, and
 * a payload that is certainly over the size limit is refused before it is encoded
 * ({@link measurePayload}).
 *
 * Claim check: a payload whose encoding is over a threshold is stored apart, under a key of its
 * own, and the event (or state field, or job) carries a {@link PayloadRef} in its place, encoded as
 * msgpack extension type 0x43. Every decoder knows the extension, so a reference decodes wherever
 * it is read, whatever the writer's threshold.
 */
import { randomBytes } from 'node:crypto';
import { PayloadError, type HistoryEvent } from '@durabull/core';
import { Packr, addExtension } from 'msgpackr';

const packr = new Packr({ useRecords: false });

export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;
/** Payloads whose encoding is larger than this are stored apart by default (claim check). */
export const DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES = 64 * 1024;

/**
 * A payload stored apart: `token` names it among the instance's payloads (the key is
 * `HubKeys.claim(instanceId, token)`), `bytes` is the size of its encoding.
 */
export class PayloadRef {
  constructor(
    readonly token: string,
    readonly bytes: number,
  ) {}
}

/** A payload to store apart, atomically with what references it. */
export interface Claim {
  token: string;
  /** The payload's own msgpack encoding. */
  blob: Buffer;
}

const PAYLOAD_REF_TYPE = 0x43;
let refsDecoded = 0;

addExtension({
  Class: PayloadRef,
  type: PAYLOAD_REF_TYPE,
  // `<token>:<bytes>` in ASCII: a script can find a token in raw entries with a plain substring search.
  pack: (ref: PayloadRef) => Buffer.from(`${ref.token}:${ref.bytes}`, 'latin1'),
  unpack: (buf: Uint8Array) => {
    refsDecoded++;
    const text = Buffer.from(buf.buffer, buf.byteOffset, buf.length).toString('latin1');
    const sep = text.indexOf(':');
    return new PayloadRef(text.slice(0, sep), Number(text.slice(sep + 1)));
  },
});

/**
 * How many references were decoded so far in this process: a reader compares it before and after
 * decoding to learn, at no cost, whether anything it decoded needs resolving.
 */
export function payloadRefsDecoded(): number {
  return refsDecoded;
}

function newPayloadRef(bytes: number): PayloadRef {
  return new PayloadRef(randomBytes(8).toString('hex'), bytes);
}

/**
 * Claim check of an already encoded payload: over `threshold` bytes, it is pushed to `claims` and a
 * reference takes its place. Returns what to store (the encoding, or the reference's) and the value
 * to put in an event (the payload, or the reference).
 */
export function claimPayload(buf: Buffer, value: unknown, threshold: number, claims: Claim[]): { buf: Buffer; value: unknown } {
  if (buf.length <= threshold) return { buf, value };
  const ref = newPayloadRef(buf.length);
  claims.push({ token: ref.token, blob: buf });
  return { buf: packr.pack(ref), value: ref };
}

export function encode(value: unknown): Buffer {
  return packr.pack(value);
}

export function decode<T = unknown>(buf: Buffer | Uint8Array): T {
  return packr.unpack(buf) as T;
}

/**
 * Encodes a user payload after checking that it can round-trip and fits the size limit. A payload
 * the walk of {@link measurePayload} finds over the limit is refused without being encoded.
 * `checked`: what {@link checkPayload} said of it (the walk is not repeated, its bytes are reused).
 */
export function encodePayload(value: unknown, what: string, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES, checked?: CheckedPayload): Buffer {
  if (checked?.bytes) return checked.bytes;
  if (!checked) measurePayload(value, what, maxBytes);
  const buf = packPayload(value, what);
  if (buf.length > maxBytes) throw tooLarge(what, buf.length, maxBytes);
  return buf;
}

/** msgpackr's encoding of a payload; whatever it throws becomes a PayloadError naming `what`. */
function packPayload(value: unknown, what: string): Buffer {
  try {
    return packr.pack(value);
  } catch (err) {
    throw new PayloadError(`${what} cannot be serialized: ${(err as Error).message}`);
  }
}

/**
 * A payload checked as {@link encodePayload} checks it: the bounds of its encoding, and the
 * encoding itself when the bounds alone could not tell whether it fits (then `min` = `max` = its size).
 */
export interface CheckedPayload extends PayloadSize {
  bytes?: Buffer;
}

/**
 * Checks a payload for storage at the moment it is handed over (the orchestration context's
 * payload check): the walk of {@link measurePayload}, and an encoding only when its bounds do not
 * decide. Throws PayloadError. The same value and limit give the same answer every time.
 */
export function checkPayload(value: unknown, what: string, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): CheckedPayload {
  const size: CheckedPayload = measurePayload(value, what, maxBytes);
  if (size.max <= maxBytes) return size;
  const bytes = packPayload(value, what);
  if (bytes.length > maxBytes) throw tooLarge(what, bytes.length, maxBytes);
  return { min: bytes.length, max: bytes.length, bytes };
}

export function encodeEvent(event: HistoryEvent): Buffer {
  return packr.pack(event);
}

/**
 * Encodes an event that carries a user payload, with the checks of `encodePayload` on that payload
 * but one encoding in the common case: the payload is encoded alone only when the whole event is
 * over the limit (then the payload may be too), to measure it.
 */
export function encodeCheckedEvent(event: HistoryEvent, payload: unknown, what: string, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): Buffer {
  measurePayload(payload, what, maxBytes);
  let blob: Buffer;
  try {
    blob = packr.pack(event);
  } catch (err) {
    throw new PayloadError(`${what} cannot be serialized: ${(err as Error).message}`);
  }
  if (blob.length > maxBytes) encodePayload(payload, what, maxBytes);
  return blob;
}

/** The field of an event that holds a user payload (input, result, reason), if it has one. */
export function payloadField(event: HistoryEvent): 'input' | 'result' | 'reason' | undefined {
  switch (event.type) {
    case 'ExecutionStarted':
    case 'TaskScheduled':
    case 'EventRaised':
    case 'SubOrchestrationInstanceCreated':
      return 'input';
    case 'ExecutionCompleted':
    case 'TaskCompleted':
    case 'SubOrchestrationInstanceCompleted':
      return 'result';
    case 'ExecutionTerminated':
    case 'ExecutionSuspended':
    case 'ExecutionResumed':
      return 'reason';
    default:
      return undefined;
  }
}

/**
 * Encodes an event for storage. With `what`, its payload gets the checks of `encodePayload` (named
 * `what` in errors), unless `checked` says they were made already ({@link checkPayload}). A payload
 * whose encoding is over `threshold` bytes is pushed to `claims` and the event carries a reference
 * instead (`ref`). One encoding in the common case: the payload is encoded alone only when it is
 * certainly stored apart, or when the whole event is over the threshold or the limit.
 */
export function encodeStoredEvent(
  event: HistoryEvent,
  what: string | undefined,
  maxBytes: number,
  threshold: number,
  claims: Claim[],
  checked?: CheckedPayload,
): { bytes: Buffer; ref?: PayloadRef } {
  const field = payloadField(event);
  const payload = field ? (event as unknown as Record<string, unknown>)[field] : undefined;
  const size = checked ?? (what !== undefined ? measurePayload(payload, what, maxBytes) : undefined);
  const limit = what === undefined ? Number.POSITIVE_INFINITY : maxBytes;
  if (field !== undefined && !(payload instanceof PayloadRef) && size && size.min > threshold) {
    // Stored apart whatever its exact size: encoded alone, once (or not at all: the check's bytes).
    const buf = checked?.bytes ?? (what === undefined ? packr.pack(payload) : packPayload(payload, what));
    if (buf.length > limit) throw tooLarge(what!, buf.length, maxBytes);
    return storeApart(event, field, buf, claims);
  }
  let bytes: Buffer;
  try {
    bytes = packr.pack(event);
  } catch (err) {
    if (what === undefined) throw err;
    throw new PayloadError(`${what} cannot be serialized: ${(err as Error).message}`);
  }
  if (field === undefined || payload instanceof PayloadRef || (bytes.length <= threshold && bytes.length <= limit)) return { bytes };
  // The payload may be over the limit or the threshold: measure it alone.
  const buf = checked?.bytes ?? packr.pack(payload);
  if (buf.length > limit) throw tooLarge(what!, buf.length, maxBytes);
  if (buf.length <= threshold) return { bytes };
  return storeApart(event, field, buf, claims);
}

/** The event with a reference in place of its payload, whose encoding `buf` goes to `claims`. */
function storeApart(event: HistoryEvent, field: string, buf: Buffer, claims: Claim[]): { bytes: Buffer; ref: PayloadRef } {
  const ref = newPayloadRef(buf.length);
  claims.push({ token: ref.token, blob: buf });
  return { bytes: packr.pack({ ...event, [field]: ref }), ref };
}

function tooLarge(what: string, size: number, maxBytes: number, atLeast = false): PayloadError {
  return new PayloadError(`${what} is ${atLeast ? 'at least ' : ''}${size} bytes once encoded, over the limit of ${maxBytes} bytes.`);
}

export function decodeEvent(buf: Buffer | Uint8Array): HistoryEvent {
  return packr.unpack(buf) as HistoryEvent;
}

/**
 * Deepest nesting of arrays, objects, Maps and Sets in a payload. msgpackr encodes and decodes by
 * recursion: on Node's default stack it fails from about 700 nested Sets, 1,300 objects or 1,400
 * arrays (a RangeError); this limit keeps every payload it accepts well within that, wherever it is
 * encoded or decoded.
 */
export const MAX_PAYLOAD_DEPTH = 500;

/** Bounds of the size of a payload's encoding, in bytes: `min` <= size <= `max` (`max` may be Infinity). */
export interface PayloadSize {
  min: number;
  max: number;
}

/** Refuses functions, symbols, cycles and nesting deeper than {@link MAX_PAYLOAD_DEPTH} anywhere in `value`, naming where (`path`). */
export function assertSerializable(value: unknown, path: string): void {
  measurePayload(value, path, Number.POSITIVE_INFINITY);
}

/** A container being walked: its children are visited one at a time (the walk keeps no recursion). */
interface Frame {
  readonly obj: object;
  /** 0: array, 1: object (own keys), 2: Map (keys and values, flattened), 3: Set. */
  readonly kind: 0 | 1 | 2 | 3;
  /** Children of an array, a Map (k0, v0, k1, v1...) or a Set. */
  readonly items: ArrayLike<unknown> | undefined;
  /** Keys of an object. */
  readonly keys: string[] | undefined;
  readonly n: number;
  i: number;
  /** False under an object msgpackr does not encode as its own keys (an Error, an object with toJSON...): only checked, not sized. */
  readonly counted: boolean;
  readonly parent: Frame | undefined;
  /** The index of this container among its parent's children. */
  readonly at: number;
}

const strHeader = (bytes: number) => (bytes < 0x20 ? 1 : bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5);
const lenHeader = (n: number) => (n < 0x10 ? 1 : n < 0x10000 ? 3 : 5);
const binHeader = (bytes: number) => (bytes < 0x100 ? 2 : bytes < 0x10000 ? 3 : 5);
/** Strings at least this long are measured exactly (UTF-8 byte length); shorter ones are bounded by their length. */
const MEASURED_STRING = 1024;

/** msgpack's size of a number: exact for 32-bit integers, 5 to 9 bytes otherwise. */
function numberSize(v: number): [number, number] {
  if (v >>> 0 === v) {
    const n = v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5;
    return [n, n];
  }
  if (v >> 0 === v) {
    const n = v >= -0x20 ? 1 : v >= -0x80 ? 2 : v >= -0x8000 ? 3 : 5;
    return [n, n];
  }
  return [5, 9];
}

/**
 * Walks a payload once, without recursion and without encoding it: refuses what cannot be stored
 * (functions, symbols, circular references, nesting deeper than {@link MAX_PAYLOAD_DEPTH}, BigInts
 * outside 64 bits, objects of more than 65,535 keys) with a PayloadError that names where, and
 * bounds the size of its msgpack encoding. The bounds are sound: a payload is refused as too large
 * only when even the smallest encoding of what the walk has seen so far is over `maxBytes`, and the
 * walk stops there (a 50 MB string is refused at once, an object graph that repeats a shared part
 * is not walked to its end). Strings count 1 to 3 bytes per character, measured exactly (UTF-8
 * length) only when that decides whether the payload fits; numbers that are not 32-bit integers
 * 5 to 9 bytes.
 */
export function measurePayload(value: unknown, what: string, maxBytes = Number.POSITIVE_INFINITY): PayloadSize {
  // Scalars need no walk.
  switch (typeof value) {
    case 'number': {
      const [min, max] = numberSize(value);
      return { min, max };
    }
    case 'boolean':
      return { min: 1, max: 1 };
    case 'undefined':
      return { min: 1, max: 3 };
    case 'object':
      if (value === null) return { min: 1, max: 1 };
      break;
    default:
      break;
  }
  return new PayloadWalk(what, maxBytes).run(value);
}

/** One walk of {@link measurePayload}: the running bounds and the containers being walked. */
class PayloadWalk {
  private min = 0;
  private max = 0;
  private readonly stack: Frame[] = [];
  /** The containers on the stack, for cycles; a scan of the stack while it is shallow. */
  private ancestors: Set<object> | undefined;
  /** The container and the index of the child being visited (for the path in messages). */
  private frame: Frame | undefined;
  private at = 0;

  constructor(
    private readonly what: string,
    private readonly maxBytes: number,
  ) {}

  run(value: unknown): PayloadSize {
    const stack = this.stack;
    try {
      this.visit(value, true);
      this.checkLimit();
      while (stack.length > 0) {
        const f = stack[stack.length - 1]!;
        if (f.i >= f.n) {
          stack.pop();
          this.ancestors?.delete(f.obj);
          continue;
        }
        this.frame = f;
        const at = (this.at = f.i++);
        if (f.keys) {
          const key = f.keys[at]!;
          if (f.counted) this.addString(key);
          this.visit((f.obj as Record<string, unknown>)[key], f.counted);
        } else {
          this.visit(f.items![at], f.counted);
        }
        this.checkLimit();
      }
    } catch (err) {
      if (err instanceof PayloadError) throw err;
      // A getter or a Proxy that threw while the walk read the payload.
      throw new PayloadError(`${this.path()} cannot be serialized: ${(err as Error)?.message ?? String(err)}`);
    }
    return { min: this.min, max: this.max };
  }

  private checkLimit(): void {
    if (this.min > this.maxBytes) throw tooLarge(this.what, this.min, this.maxBytes, true);
  }

  /** The path of the value being visited, shortened in the middle when deep. */
  private path(): string {
    const segments: string[] = [];
    for (let f = this.frame, i = this.at; f; i = f.at, f = f.parent) segments.push(segment(f, i));
    segments.reverse();
    if (segments.reduce((n, s) => n + s.length, 0) <= 240) return this.what + segments.join('');
    let head = '';
    let k = 0;
    while (k < segments.length && head.length < 80) head += segments[k++];
    let tail = '';
    let j = segments.length - 1;
    while (j >= k && tail.length < 120) tail = segments[j--] + tail;
    return this.what + head + (j >= k ? `...(${j - k + 1} more)...` : '') + tail;
  }

  private fail(problem: string): never {
    throw new PayloadError(`${this.path()} ${problem}`);
  }

  private addString(s: string): void {
    const len = s.length;
    const lo = strHeader(len) + len;
    const hi = strHeader(3 * len) + 3 * len;
    // Measured only when that decides whether the payload fits.
    if (len >= MEASURED_STRING && this.min + lo <= this.maxBytes && this.max + hi > this.maxBytes) {
      const bytes = Buffer.byteLength(s, 'utf8');
      this.min += strHeader(bytes) + bytes;
      this.max += strHeader(bytes) + bytes;
      return;
    }
    this.min += lo;
    this.max += hi;
  }

  /** Visits one value (the child `at` of `frame`); a container is pushed, to be walked after. */
  private visit(v: unknown, counted: boolean): void {
    switch (typeof v) {
      case 'string':
        if (counted) this.addString(v);
        return;
      case 'number':
        if (counted) {
          const [lo, hi] = numberSize(v);
          this.min += lo;
          this.max += hi;
        }
        return;
      case 'boolean':
        if (counted) this.add(1, 1);
        return;
      case 'undefined':
        if (counted) this.add(1, 3);
        return;
      case 'bigint':
        if (v >= -0x8000000000000000n && v < 0x10000000000000000n) {
          if (counted) this.add(9, 9);
          return;
        }
        return this.fail('is a BigInt outside the 64-bit range, which cannot be serialized.');
      case 'function':
        return this.fail('is a function, which cannot be serialized.');
      case 'symbol':
        return this.fail('is a symbol, which cannot be serialized.');
      default:
        break;
    }
    if (v === null) {
      if (counted) this.add(1, 1);
      return;
    }
    const obj = v as object;
    if (obj instanceof PayloadRef) {
      if (counted) this.add(3, 64);
      return;
    }
    if (ArrayBuffer.isView(obj) || obj instanceof ArrayBuffer) {
      if (counted) this.add(binHeader(obj.byteLength) + obj.byteLength, 7 + obj.byteLength);
      return;
    }
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto === Date.prototype) {
      if (counted) this.add(3, 15);
      return;
    }
    const stack = this.stack;
    if (this.isAncestor(obj)) return this.fail('is a circular reference, which cannot be serialized.');
    if (stack.length >= MAX_PAYLOAD_DEPTH) {
      return this.fail(
        `is nested deeper than ${MAX_PAYLOAD_DEPTH} levels, which cannot be serialized: payloads may nest at most ${MAX_PAYLOAD_DEPTH} arrays, objects, Maps or Sets.`,
      );
    }
    let kind: Frame['kind'];
    let items: ArrayLike<unknown> | undefined;
    let keys: string[] | undefined;
    let n: number;
    let sized = counted;
    if (Array.isArray(obj)) {
      kind = 0;
      items = obj;
      n = obj.length;
      if (counted) this.add(lenHeader(n), 5);
    } else if (proto === Map.prototype) {
      kind = 2;
      const flat: unknown[] = [];
      for (const [k, x] of obj as Map<unknown, unknown>) flat.push(k, x);
      items = flat;
      n = flat.length;
      if (counted) this.add(lenHeader(n / 2), 5);
    } else if (proto === Set.prototype) {
      kind = 3;
      items = Array.from(obj as Set<unknown>);
      n = items.length;
      if (counted) this.add(lenHeader(n), 8);
    } else {
      kind = 1;
      keys = Object.keys(obj);
      n = keys.length;
      const plain = proto === Object.prototype || proto === null;
      // msgpackr writes these as their own keys; an Error, a RegExp, a Set or Map of a subclass, or
      // an object with toJSON it writes otherwise: they are checked but bounded by [1, Infinity].
      if (!plain && (obj instanceof Error || obj instanceof RegExp || obj instanceof Set || obj instanceof Map || typeof (obj as { toJSON?: unknown }).toJSON === 'function')) {
        sized = false;
        if (counted) this.add(1, Number.POSITIVE_INFINITY);
      } else {
        if (n > 0xffff) return this.fail(`has ${n} keys, which cannot be serialized: an object may have at most 65,535 keys (use a Map or an array).`);
        if (counted) this.add(n < 0x10 ? 1 : 3, 5);
      }
    }
    // Every child takes at least one byte (a key and its value two): a container too large for the
    // limit is refused before its children are walked.
    const least = this.min + (kind === 1 ? 2 * n : n);
    if (sized && least > this.maxBytes) throw tooLarge(this.what, least, this.maxBytes, true);
    stack.push({ obj, kind, items, keys, n, i: 0, counted: sized, parent: this.frame, at: this.at });
    if (this.ancestors) this.ancestors.add(obj);
    else if (stack.length > SCANNED_DEPTH) this.ancestors = new Set(stack.map((f) => f.obj));
  }

  private add(lo: number, hi: number): void {
    this.min += lo;
    this.max += hi;
  }

  private isAncestor(obj: object): boolean {
    if (this.ancestors) return this.ancestors.has(obj);
    for (const f of this.stack) if (f.obj === obj) return true;
    return false;
  }
}

/** Up to this depth the walk finds cycles by scanning its stack; deeper, with a Set. */
const SCANNED_DEPTH = 16;

/** The path segment of child `i` of a container: `[2]`, `.name`, `.get(key)`, `.keys()[0]`, `.values()[1]`. */
function segment(f: Frame, i: number): string {
  switch (f.kind) {
    case 0:
      return `[${i}]`;
    case 1:
      return `.${f.keys![i]!}`;
    case 2: {
      const key = f.items![i - (i % 2)];
      let shown: string;
      try {
        shown = typeof key === 'string' ? JSON.stringify(key) : String(key);
      } catch {
        shown = '?';
      }
      if (shown.length > 40) shown = `${shown.slice(0, 37)}...`;
      return i % 2 === 0 ? `.keys()[${i / 2}]` : `.get(${shown})`;
    }
    default:
      return `.values()[${i}]`;
  }
}
