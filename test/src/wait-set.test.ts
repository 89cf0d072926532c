/**
 * What a blocked instance waits on, as the commit records it and each delivery counts it down
 * (commitEpisode, deliverEvent): `need`, the results still needed, falls by one per awaited result
 * and the last one wakes the code; the wait set holds the awaited tasks while other tasks are open,
 * and is deleted by the next commit that waits on every open task.
 */
import { type OrchestrationContext } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { Gate, waitUntil } from './helpers/orchestration.js';

const hubs: TestHub[] = [];
const gates = new Map<string, Gate>();
afterEach(async () => {
  Gate.releaseAll();
  gates.clear();
  await Promise.all(hubs.splice(0).map((h) => h.cleanup()));
});

const gate = (name: string) => {
  let g = gates.get(name);
  if (!g) gates.set(name, (g = new Gate()));
  return g;
};

/** Starts `slow`, then waits on `a`, `b`, `c` (all), then on `slow`. */
function* subset(ctx: OrchestrationContext): Generator<unknown, string, string | string[]> {
  const slow = ctx.callActivity('Step', 'slow');
  const all = (yield ctx.all(['a', 'b', 'c'].map((x) => ctx.callActivity('Step', x)))) as string[];
  const last = (yield slow) as string;
  return `${all.join('')}${last}`;
}

describe('the wait of a blocked instance', () => {
  it('counts awaited results down in `need`, wakes on the last, and drops the wait set once the code waits on every open task', async () => {
    const th = await createTestHub({
      orchestrators: { Subset: subset },
      activities: {
        Step: async (x: string) => {
          await gate(x).pass();
          return x.toUpperCase();
        },
      },
    });
    hubs.push(th);
    const id = await th.client.startNew('Subset', {});
    const state = th.keys.state(id);
    const waitSet = th.keys.wait(id);
    await Promise.all(['slow', 'a', 'b', 'c'].map((x) => gate(x).entered));
    await waitUntil('the first episode committed', async () => (await th.redis.hget(state, 'episodes')) === '1');
    // Three of the four open tasks are awaited: a wait set, and three results needed.
    expect(await th.redis.hmget(state, 'wmode', 'wcov', 'need')).toEqual(['a', '0', '3']);
    expect((await th.redis.smembers(waitSet)).sort()).toEqual(['1', '2', '3']);
    gate('a').open();
    await waitUntil('need is 2', async () => (await th.redis.hget(state, 'need')) === '2');
    gate('b').open();
    await waitUntil('need is 1', async () => (await th.redis.hget(state, 'need')) === '1');
    // Not woken: still the first episode's commit.
    expect(await th.redis.hget(state, 'episodes')).toBe('1');
    gate('c').open();
    // The last awaited result wakes the code; it now waits on `slow`, the only open task: no wait set.
    await waitUntil('the second episode committed', async () => (await th.redis.hget(state, 'episodes')) === '2');
    expect(await th.redis.hmget(state, 'wmode', 'wcov', 'need')).toEqual(['y', '1', '1']);
    expect(await th.redis.exists(waitSet)).toBe(0);
    gate('slow').open();
    expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe('ABCSLOW');
  });
});
