/**
 * Non-determinism diagnosis end to end: run v1 code, deploy a worker with changed code, and check the
 * instance fails with a status that shows history's step next to the code's, at the first divergence.
 */
import { type OrchestrationContext, Registry } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const activities = {
  F1: async (x: string) => `${x}>F1`,
  F2: async (x: string) => `${x}>F2`,
  F3: async (x: string) => `${x}>F3`,
  F4: async (x: string) => `${x}>F4`,
};

function* v1(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const a = yield ctx.callActivity('F1', input);
  const b = yield ctx.callActivity('F2', a);
  yield ctx.waitForExternalEvent('go');
  return yield ctx.callActivity('F4', b);
}

/** v2 calls F3 where v1 called F2: a non-deterministic change for instances already past that point. */
function* v2(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const a = yield ctx.callActivity('F1', input);
  const b = yield ctx.callActivity('F3', a);
  yield ctx.waitForExternalEvent('go');
  return yield ctx.callActivity('F4', b);
}

async function until<T>(f: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('non-determinism diagnosis on a real Redis', () => {
  it('a changed activity name fails the instance with history[i] ... vs code: ... in its status', async () => {
    th = await createTestHub({ orchestrators: { Flow: v1 }, activities });
    const id = await th.client.startNew('Flow', { input: 'in', instanceId: 'nd-1' });
    // v1 runs F1 and F2 and waits for 'go'.
    const history = await until(async () => {
      const st = await th!.client.getStatus(id, { showHistory: true });
      return st?.history?.some((e) => e.type === 'TaskCompleted' && e.taskScheduledId === 1) ? st.history : undefined;
    });
    const idx = history.findIndex((e) => e.type === 'TaskScheduled' && e.taskId === 1);
    expect(idx).toBeGreaterThan(0);

    // Deploy v2: the old worker goes away, a new one with the changed code takes over.
    await th.workers[0]!.close();
    const registry = new Registry().addOrchestrator('Flow', v2);
    for (const [n, f] of Object.entries(activities)) registry.addActivity(n, f);
    await th.startWorker({ registry });
    await th.client.raiseEvent(id, 'go');

    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('NonDeterminismError');
    expect(st.failure?.message).toContain(`history[${idx}] TaskScheduled #1 activity 'F2'  vs  code: activity 'F3' (#1)`);
    // The history index in the message is the index in the history the status shows.
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(after?.history?.[idx]).toMatchObject({ type: 'TaskScheduled', taskId: 1, name: 'F2' });
  });

  it('a timer inserted before an activity: history[i] TaskScheduled vs code: a timer', async () => {
    function* v2Timer(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
      const a = yield ctx.callActivity('F1', input);
      yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 10));
      const b = yield ctx.callActivity('F2', a);
      yield ctx.waitForExternalEvent('go');
      return yield ctx.callActivity('F4', b);
    }
    th = await createTestHub({ orchestrators: { Flow: v1 }, activities });
    const id = await th.client.startNew('Flow', { input: 'in', instanceId: 'nd-2' });
    const history = await until(async () => {
      const st = await th!.client.getStatus(id, { showHistory: true });
      return st?.history?.some((e) => e.type === 'TaskCompleted' && e.taskScheduledId === 1) ? st.history : undefined;
    });
    const idx = history.findIndex((e) => e.type === 'TaskScheduled' && e.taskId === 1);
    await th.workers[0]!.close();
    const registry = new Registry().addOrchestrator('Flow', v2Timer);
    for (const [n, f] of Object.entries(activities)) registry.addActivity(n, f);
    await th.startWorker({ registry });
    await th.client.raiseEvent(id, 'go');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.message).toContain(`history[${idx}] TaskScheduled #1 activity 'F2'  vs  code: a timer (#1)`);
  });
});
