/**
 * The payload walk (codec.ts, no Redis): it refuses what cannot be stored at any depth with a
 * PayloadError (never a RangeError of the JavaScript stack), its size bounds hold for what msgpackr
 * writes, and a payload certainly over the limit is refused before it is encoded, the walk
 * stopping as soon as the limit is passed.
 */
import { type HistoryEvent, PayloadError } from '@durabull/core';
import { describe, expect, it } from 'vitest';
import { type Claim, MAX_PAYLOAD_DEPTH, checkPayload, decode, encode, encodePayload, encodeStoredEvent, measurePayload } from '../codec.js';

/** `depth` nested containers made by `wrap` around 1. */
function nest(depth: number, wrap: (v: unknown) => unknown): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = wrap(v);
  return v;
}
const wraps: Record<string, (v: unknown) => unknown> = {
  array: (v) => [v],
  object: (v) => ({ a: v }),
  Map: (v) => new Map([['k', v]]),
  Set: (v) => new Set([v]),
};

/** A small deterministic generator (mulberry32), so that a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('payload depth', () => {
  for (const [kind, wrap] of Object.entries(wraps)) {
    it(`refuses ${kind}s nested 2,000 and 100,000 deep with a PayloadError naming the limit; ${MAX_PAYLOAD_DEPTH} deep round-trips`, () => {
      for (const depth of [MAX_PAYLOAD_DEPTH + 1, 2_000, 100_000]) {
        const err = (() => {
          try {
            encodePayload(nest(depth, wrap), 'Orchestration input');
          } catch (e) {
            return e;
          }
          return undefined;
        })();
        expect(err, `${kind} ${depth}`).toBeInstanceOf(PayloadError);
        expect((err as Error).message).toMatch(new RegExp(`^Orchestration input.* is nested deeper than ${MAX_PAYLOAD_DEPTH} levels, which cannot be serialized`));
        // The path is shortened, not 100,000 segments long.
        expect((err as Error).message.length).toBeLessThan(600);
      }
      const buf = encodePayload(nest(MAX_PAYLOAD_DEPTH, wrap), 'Orchestration input');
      // Decoded (a Map as an object, a Set as an array) to the same depth.
      let back = decode(buf);
      let depth = 0;
      while (typeof back === 'object' && back !== null) {
        back = Array.isArray(back) ? back[0] : Object.values(back)[0];
        depth++;
      }
      expect([depth, back]).toEqual([MAX_PAYLOAD_DEPTH, 1]);
    });
  }

  it('names where a function sits 100,000 levels deep, and finds a cycle that deep too', () => {
    let v: unknown = { fn: () => 1 };
    for (let i = 0; i < 400; i++) v = [v];
    expect(() => encodePayload(v, 'Input')).toThrow(/^Input\[0\]\[0\].*\[0\]\.fn is a function, which cannot be serialized\.$/);
    const ring: Record<string, unknown> = {};
    let at = ring;
    for (let i = 0; i < 300; i++) at = (at.next = {}) as Record<string, unknown>;
    at.next = ring;
    expect(() => encodePayload(ring, 'Input')).toThrow(/^Input\.next\.next.*\.next is a circular reference/);
  });
});

describe('payload size', () => {
  it("the walk's bounds hold what msgpackr writes, for every kind of value", () => {
    const r = rng(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const chars = ['a', 'é', '€', '😀', '\ud800', ' '];
    const str = (deep: boolean) => {
      const len = pick(deep ? [0, 1, 31, 32, 255, 256, 1023] : [0, 1, 31, 32, 255, 256, 1023, 1024, 3000, 70_000]);
      const c = pick(chars);
      let s = '';
      for (let i = 0; i < len; i++) s += r() < 0.8 ? 'x' : c;
      return s;
    };
    const nums = [0, 1, 127, 128, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, 1.5, Number.NaN, Infinity, -0, 1e300];
    const value = (d: number): unknown => {
      switch (Math.floor(r() * (d > 2 ? 8 : 15))) {
        case 0: return str(d > 0);
        case 1: return pick(nums);
        case 2: return null;
        case 3: return undefined;
        case 4: return r() < 0.5;
        case 5: return BigInt(Math.floor(r() * 1000)) * pick([1n, 10n ** 15n, -(10n ** 15n)]);
        case 6: return new Date(pick([Date.UTC(2026, 0, 1), Date.UTC(2026, 0, 1, 0, 0, 0, 5), 1e16, -1e12]));
        case 7: return Buffer.alloc(Math.floor(r() * 300));
        case 8: return Array.from({ length: pick([0, 3, 15, 16, 20]) }, () => value(d + 1));
        case 9: return Object.fromEntries(Array.from({ length: pick([0, 2, 15, 16, 17]) }, (_, i) => [str(true).slice(0, 40) + i, value(d + 1)]));
        case 10: return new Map(Array.from({ length: Math.floor(r() * 20) }, (_, i) => [i % 2 ? str(true) : pick(nums), value(d + 1)] as const));
        case 11: return new Set(Array.from({ length: Math.floor(r() * 20) }, () => value(d + 1)));
        case 12: return new Float64Array(Math.floor(r() * 10));
        case 13: return Object.assign(Object.create(null) as object, { a: value(d + 1) });
        default: return new (class Point { x = value(d + 1); y = 2; })();
      }
    };
    for (let i = 0; i < 1500; i++) {
      const v = value(0);
      const size = encode(v).length;
      const { min, max } = measurePayload(v, 'x');
      expect(min, `case ${i}`).toBeLessThanOrEqual(size);
      expect(size, `case ${i}`).toBeLessThanOrEqual(max);
    }
  });

  it('refuses a 50 MB string or Buffer at once, without encoding it', () => {
    const big = 'x'.repeat(50 * 1024 * 1024);
    let read = false;
    // The walk stops at the string: what follows it is never read, by the walk or by an encoder.
    const input = [big, { get after() { read = true; return 1; } }];
    expect(() => encodePayload(input, 'Orchestration input')).toThrow(
      /^Orchestration input is at least 52428806 bytes once encoded, over the limit of 16777216 bytes\.$/,
    );
    expect(read).toBe(false);
    expect(() => encodePayload(Buffer.alloc(50 * 1024 * 1024), 'Data')).toThrow(/^Data is at least 52428805 bytes once encoded/);
  });

  it('stops walking a shared structure that would repeat past the limit (2^60 paths)', () => {
    let v: unknown = { leaf: 'x'.repeat(100) };
    for (let i = 0; i < 60; i++) v = { a: v, b: v };
    expect(() => encodePayload(v, 'Input', 1_000_000)).toThrow(/^Input is at least \d+ bytes once encoded, over the limit of 1000000 bytes\.$/);
  });

  it('encodes only when the bounds cannot decide, and then refuses with the exact size', () => {
    // 300 characters fit in 1,000 bytes whatever they are: no encoding needed.
    expect(checkPayload('a'.repeat(300), 'x', 1000)).toEqual({ min: 303, max: 903 });
    // 500 characters of two bytes each may or may not fit: encoded (1003 bytes), over the limit.
    expect(() => checkPayload('é'.repeat(500), 'x', 1000)).toThrow(/^x is 1003 bytes once encoded, over the limit of 1000 bytes\.$/);
    const fits = checkPayload('é'.repeat(400), 'x', 1000);
    expect(fits.bytes).toEqual(encode('é'.repeat(400)));
  });

  it("what the check had to encode is what the commit stores apart, without encoding it again", () => {
    // 100,000 short strings: 300,000 to 700,000 bytes by the bounds, so checking against 500,000 encodes.
    const input = Array.from({ length: 100_000 }, () => 'ab');
    const checked = checkPayload(input, "Input of activity 'F'", 500_000);
    expect(checked.bytes).toEqual(encode(input));
    const claims: Claim[] = [];
    const event: HistoryEvent = { type: 'TaskScheduled', taskId: 0, name: 'F', input, timestamp: 1 };
    const { ref } = encodeStoredEvent(event, "Input of activity 'F'", 500_000, 64 * 1024, claims, checked);
    expect(claims).toHaveLength(1);
    expect(claims[0]!.blob).toBe(checked.bytes);
    expect(ref!.bytes).toBe(checked.bytes!.length);
  });

  it('turns a getter that throws, a BigInt beyond 64 bits and an object of 70,000 keys into PayloadErrors', () => {
    const getter = { ok: 1, get broken(): number { throw new Error('no access'); } };
    expect(() => encodePayload({ x: getter }, 'Input')).toThrow(/^Input\.x\.broken cannot be serialized: no access$/);
    expect(() => encodePayload({ n: 2n ** 70n }, 'Input')).toThrow(/^Input\.n is a BigInt outside the 64-bit range/);
    const wide = Object.fromEntries(Array.from({ length: 70_000 }, (_, i) => [`k${i}`, i]));
    expect(() => encodePayload(wide, 'Input')).toThrow(/^Input has 70000 keys, which cannot be serialized: an object may have at most 65,535 keys/);
    expect(() => encodePayload(new Map([[() => 1, 'v']]), 'Input')).toThrow(/^Input\.keys\(\)\[0\] is a function/);
  });
});
