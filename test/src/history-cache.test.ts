/**
 * The worker's history cache must replay exactly what Redis holds: orchestrator code that mutates
 * its input or a result it received must not change what the next episode replays (each episode
 * gets fresh copies of the payloads, as a replay from Redis would).
 */
import type { OrchestrationContext } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

function* mutating(ctx: OrchestrationContext, input: { seen: string[] }): Generator<unknown, unknown, unknown> {
  input.seen.push('start');
  const a = (yield ctx.callActivity('List', 'x')) as string[];
  a.push('mutated');
  const b = (yield ctx.callActivity('Len', a)) as number;
  const raised = (yield ctx.waitForExternalEvent('go')) as { n: number[] };
  raised.n.push(0);
  const c = (yield ctx.callActivity('Len', input.seen)) as number;
  return { a, b, c, seen: input.seen, raised };
}

describe('history cache', () => {
  it('gives each episode fresh payloads, whatever the code did to those of the last one', async () => {
    th = await createTestHub({
      orchestrators: { Mutating: mutating },
      activities: { List: async (x: string) => [x], Len: async (xs: unknown[]) => xs.length },
    });
    const id = await th.client.startNew('Mutating', { input: { seen: [] } });
    const worker = th.workers[0]!;
    // Wait until the code waits for the event, then send it.
    for (let i = 0; i < 500 && (await th.client.getStatus(id, { showHistory: true }))!.history!.filter((e) => e.type === 'TaskCompleted').length < 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await th.client.raiseEvent(id, 'go', { n: [1] });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    // What a replay from Redis gives: every episode starts from the stored input and results.
    expect(st.output).toEqual({ a: ['x', 'mutated'], b: 2, c: 1, seen: ['start'], raised: { n: [1, 0] } });
    expect(worker.stats.episodes).toBe(5);
  });
});
