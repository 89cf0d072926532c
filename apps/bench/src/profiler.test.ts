import { describe, expect, it } from 'vitest';
import { type CpuProfile, categoryOf, startProfile, stopProfile, summarizeProfile } from './profiler.js';

const frame = (functionName: string, url = '', lineNumber = 0) => ({ functionName, url, lineNumber });

describe('CPU profile summary', () => {
  it('files functions under the library they come from', () => {
    expect(categoryOf(frame('moveToActive', 'file:///r/node_modules/bullmq/dist/esm/classes/worker.js'))).toBe('bullmq');
    expect(categoryOf(frame('sendCommand', 'file:///r/node_modules/ioredis/built/Redis.js'))).toBe('ioredis');
    expect(categoryOf(frame('parse', 'file:///r/node_modules/redis-parser/lib/parser.js'))).toBe('ioredis');
    expect(categoryOf(frame('commitEpisode', 'file:///r/packages/redis/src/redis-backend.ts'))).toBe('durabull redis');
    expect(categoryOf(frame('run', 'file:///r/packages/core/src/executor/session.ts'))).toBe('durabull core');
    expect(categoryOf(frame('writeGeneric', 'node:internal/stream_base_commons'))).toBe('node');
    expect(categoryOf(frame('(garbage collector)'))).toBe('GC');
    expect(categoryOf(frame('(program)'))).toBe('V8 / native');
    expect(categoryOf(frame('writeBuffer'))).toBe('socket writes');
    expect(categoryOf(frame('runMicrotasks'))).toBe('V8 / native');
    expect(categoryOf(frame('pack', 'file:///r/node_modules/msgpackr/pack.js'))).toBe('msgpack');
    expect(categoryOf(frame('x', 'file:///r/node_modules/pino/lib/x.js'))).toBe('other dependencies');
  });

  it('sums self time per category and function, leaving idle out', () => {
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)') },
        { id: 2, callFrame: frame('(idle)') },
        { id: 3, callFrame: frame('moveToActive', 'file:///r/node_modules/bullmq/dist/esm/classes/worker.js', 9) },
        { id: 4, callFrame: frame('(garbage collector)') },
      ],
      // Each sample stands for the time until the next one (µs).
      samples: [3, 3, 2, 4, 3],
      timeDeltas: [0, 1000, 1000, 5000, 2000],
    };
    const s = summarizeProfile(profile);
    // bullmq: 1 ms + 1 ms + the last sample (its own delta, 2 ms); GC: 2 ms; idle's 5 ms left out.
    expect(s.byCategory).toEqual({ bullmq: 4, GC: 2 });
    expect(s.totalMs).toBe(6);
    expect(s.top[0]).toEqual(['moveToActive (node_modules/bullmq/dist/esm/classes/worker.js:10)', 4]);
  });

  it('profiles this process between start and stop', async () => {
    await startProfile(100);
    await expect(startProfile()).rejects.toThrow(/running already/);
    const until = performance.now() + 50;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    const s = await stopProfile();
    expect(x).toBeGreaterThan(0);
    expect(s.totalMs).toBeGreaterThan(10);
    await expect(stopProfile()).rejects.toThrow(/no profile is running/);
  });
});
