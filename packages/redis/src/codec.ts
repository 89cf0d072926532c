/**
 * Payload and history-event encoding: msgpack (msgpackr). Dates, BigInts, typed arrays and
 * `undefined` round-trip; functions, symbols and circular structures are refused up front with a
 * PayloadError that names where they are.
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

/** Encodes a user payload after checking that it can round-trip and fits the size limit. */
export function encodePayload(value: unknown, what: string, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): Buffer {
  assertSerializable(value, what);
  let buf: Buffer;
  try {
    buf = packr.pack(value);
  } catch (err) {
    throw new PayloadError(`${what} cannot be serialized: ${(err as Error).message}`);
  }
  if (buf.length > maxBytes) throw tooLarge(what, buf.length, maxBytes);
  return buf;
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
  assertSerializable(payload, what);
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
 * `what` in errors). A payload whose encoding is over `threshold` bytes is pushed to `claims` and the
 * event carries a reference instead (`ref`). One encoding in the common case: the payload is
 * encoded alone only when the whole event is over the threshold or the limit.
 */
export function encodeStoredEvent(
  event: HistoryEvent,
  what: string | undefined,
  maxBytes: number,
  threshold: number,
  claims: Claim[],
): { bytes: Buffer; ref?: PayloadRef } {
  const field = payloadField(event);
  const payload = field ? (event as unknown as Record<string, unknown>)[field] : undefined;
  if (what !== undefined) assertSerializable(payload, what);
  let bytes: Buffer;
  try {
    bytes = packr.pack(event);
  } catch (err) {
    if (what === undefined) throw err;
    throw new PayloadError(`${what} cannot be serialized: ${(err as Error).message}`);
  }
  const limit = what === undefined ? Number.POSITIVE_INFINITY : maxBytes;
  if (field === undefined || payload instanceof PayloadRef || (bytes.length <= threshold && bytes.length <= limit)) return { bytes };
  // The payload may be over the limit or the threshold: measure it alone.
  const buf = packr.pack(payload);
  if (buf.length > limit) throw tooLarge(what!, buf.length, maxBytes);
  if (buf.length <= threshold) return { bytes };
  const ref = newPayloadRef(buf.length);
  claims.push({ token: ref.token, blob: buf });
  return { bytes: packr.pack({ ...event, [field]: ref }), ref };
}

function tooLarge(what: string, size: number, maxBytes: number): PayloadError {
  return new PayloadError(`${what} is ${size} bytes once encoded, over the limit of ${maxBytes} bytes.`);
}

export function decodeEvent(buf: Buffer | Uint8Array): HistoryEvent {
  return packr.unpack(buf) as HistoryEvent;
}

/** Refuses functions, symbols and cycles anywhere in `value`, naming where (`path`). */
export function assertSerializable(value: unknown, path: string): void {
  const seen = new Set<object>();
  const walk = (v: unknown, p: string): void => {
    switch (typeof v) {
      case 'function':
        throw new PayloadError(`${p} is a function, which cannot be serialized.`);
      case 'symbol':
        throw new PayloadError(`${p} is a symbol, which cannot be serialized.`);
      case 'object': {
        if (v === null || ArrayBuffer.isView(v) || v instanceof Date) return;
        if (seen.has(v)) throw new PayloadError(`${p} is a circular reference, which cannot be serialized.`);
        seen.add(v);
        if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${p}[${i}]`));
        else if (v instanceof Map) for (const [k, x] of v) walk(x, `${p}.get(${String(k)})`);
        else if (v instanceof Set) for (const x of v) walk(x, `${p} (set element)`);
        else for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k], `${p}.${k}`);
        seen.delete(v);
        return;
      }
      default:
        return;
    }
  };
  walk(value, path);
}
