import { type HistoryEvent, PayloadError } from '@durabull/core';
import { describe, expect, it } from 'vitest';
import { type Claim, PayloadRef, claimPayload, decode, decodeEvent, encode, encodeStoredEvent, payloadField, payloadRefsDecoded } from '../codec.js';

const completed = (result: unknown): HistoryEvent => ({ type: 'TaskCompleted', taskScheduledId: 3, result, timestamp: 1 });

describe('claim check encoding', () => {
  it('keeps a payload at or under the threshold inline, in one encoding', () => {
    const claims: Claim[] = [];
    // 'a'.repeat(95) is a str8 of 97 bytes; the event is larger, but the payload alone is not over 97.
    const { bytes, ref } = encodeStoredEvent(completed('a'.repeat(95)), 'Result', 1000, 97, claims);
    expect(ref).toBeUndefined();
    expect(claims).toEqual([]);
    expect(decodeEvent(bytes)).toEqual(completed('a'.repeat(95)));
  });

  it('stores a payload over the threshold apart: the event carries a reference, the claim the payload’s own encoding', () => {
    const claims: Claim[] = [];
    const payload = { rows: Array.from({ length: 100 }, (_, i) => i), note: 'x'.repeat(200) };
    const { bytes, ref } = encodeStoredEvent(completed(payload), 'Result', 1_000_000, 64, claims);
    expect(ref).toBeInstanceOf(PayloadRef);
    expect(claims).toHaveLength(1);
    expect(claims[0]!.token).toBe(ref!.token);
    expect(claims[0]!.token).toMatch(/^[0-9a-f]{16}$/);
    expect(claims[0]!.blob).toEqual(encode(payload));
    expect(ref!.bytes).toBe(encode(payload).length);
    expect(bytes.length).toBeLessThan(100);
    const back = decodeEvent(bytes) as Extract<HistoryEvent, { type: 'TaskCompleted' }>;
    expect(back.result).toEqual(ref);
    expect(back.taskScheduledId).toBe(3);
    // The token is in the encoding verbatim: the commit script finds carried references by substring.
    expect(bytes.includes(Buffer.from(ref!.token, 'latin1'))).toBe(true);
  });

  it('still refuses a payload over maxPayloadBytes, and what cannot be serialized', () => {
    const claims: Claim[] = [];
    expect(() => encodeStoredEvent(completed('z'.repeat(5000)), "Result of activity 'X'", 1000, 64, claims)).toThrow(PayloadError);
    // Certainly over the limit (5,000 characters take at least 5,000 bytes): refused before any encoding.
    expect(() => encodeStoredEvent(completed('z'.repeat(5000)), "Result of activity 'X'", 1000, 64, claims)).toThrow(
      /^Result of activity 'X' is at least 5003 bytes once encoded, over the limit of 1000 bytes\.$/,
    );
    // 900 characters of two bytes each may or may not fit: encoded, then refused with its size.
    expect(() => encodeStoredEvent(completed('é'.repeat(900)), "Result of activity 'X'", 1000, 64, claims)).toThrow(
      /^Result of activity 'X' is 1803 bytes once encoded, over the limit of 1000 bytes\.$/,
    );
    expect(() => encodeStoredEvent(completed({ f: () => 1 }), 'Result', 1000, 64, claims)).toThrow(/Result\.f is a function/);
    expect(claims).toEqual([]);
  });

  it('stores nothing apart when off (an infinite threshold), and leaves events without a payload alone', () => {
    const claims: Claim[] = [];
    expect(encodeStoredEvent(completed('q'.repeat(100_000)), 'Result', 1_000_000, Number.POSITIVE_INFINITY, claims).ref).toBeUndefined();
    const fired: HistoryEvent = { type: 'TimerFired', timerId: 1, fireAt: 2, timestamp: 3 };
    expect(payloadField(fired)).toBeUndefined();
    expect(decodeEvent(encodeStoredEvent(fired, undefined, 10, 0, claims).bytes)).toEqual(fired);
    expect(claims).toEqual([]);
  });

  it('names the payload field of each event type that has one', () => {
    expect(payloadField({ type: 'ExecutionStarted', name: 'o', instanceId: 'i', executionId: 'x', timestamp: 1 })).toBe('input');
    expect(payloadField({ type: 'TaskScheduled', taskId: 1, name: 'a', timestamp: 1 })).toBe('input');
    expect(payloadField({ type: 'EventRaised', name: 'e', timestamp: 1 })).toBe('input');
    expect(payloadField({ type: 'ExecutionCompleted', status: 'Completed', timestamp: 1 })).toBe('result');
    expect(payloadField({ type: 'SubOrchestrationInstanceCompleted', taskScheduledId: 1, timestamp: 1 })).toBe('result');
    expect(payloadField({ type: 'ExecutionTerminated', timestamp: 1 })).toBe('reason');
    expect(payloadField({ type: 'ExecutionSuspended', timestamp: 1 })).toBe('reason');
  });

  it('claimPayload shares one reference between a state field and an event', () => {
    const claims: Claim[] = [];
    const input = 'i'.repeat(300);
    const small = claimPayload(encode('s'), 's', 64, claims);
    expect(small.value).toBe('s');
    expect(claims).toEqual([]);
    const large = claimPayload(encode(input), input, 64, claims);
    expect(large.value).toBeInstanceOf(PayloadRef);
    expect(decode(large.buf)).toEqual(large.value);
    expect(claims.map((c) => c.token)).toEqual([(large.value as PayloadRef).token]);
  });

  it('counts decoded references, so readers skip resolving when there are none', () => {
    const before = payloadRefsDecoded();
    decode(encode({ a: 1, b: 'x' }));
    expect(payloadRefsDecoded()).toBe(before);
    decode(encode({ a: new PayloadRef('00112233445566ff', 12) }));
    expect(payloadRefsDecoded()).toBe(before + 1);
  });
});
