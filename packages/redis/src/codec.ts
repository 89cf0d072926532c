/**
 * Payload and history-event encoding: msgpack (msgpackr). Dates, BigInts, typed arrays and
 * `undefined` round-trip; functions, symbols and circular structures are refused up front with a
 * PayloadError that names where they are.
 */
import { PayloadError, type HistoryEvent } from '@durabull/core';
import { Packr } from 'msgpackr';

const packr = new Packr({ useRecords: false });

export const DEFAULT_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024;

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
