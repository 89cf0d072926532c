/**
 * Limits on a real Redis: `maxHistoryEvents` fails an instance before its history grows past the
 * limit (nothing of the episode's new work is written), and oversized payloads (input, event data,
 * activity result, activity input, output) give a clear PayloadError and change nothing else.
 */
import { type OrchestrationContext, PayloadError, TaskFailedError } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import { type InstanceReport, checkInstance } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { scanAll } from './helpers/redis.js';

let th: TestHub | undefined;
const extra: DurabullClient[] = [];
afterEach(async () => {
  for (const c of extra.splice(0)) await c.close();
  await th?.cleanup();
  th = undefined;
});

const codes = (r: InstanceReport) => r.findings.map((f) => f.code);

describe('maxHistoryEvents', () => {
  it('a loop of activities fails with HistoryLimitError before the history passes the limit', async () => {
    let ran = 0;
    function* loop(ctx: OrchestrationContext): Generator<unknown, number, any> {
      for (let i = 0; ; i++) yield ctx.callActivity('Step', i);
    }
    th = await createTestHub({ orchestrators: { Loop: loop }, activities: { Step: async () => ++ran } }, { maxHistoryEvents: 20 });
    const id = await th.client.startNew('Loop', { instanceId: 'long-loop' });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('HistoryLimitError');
    expect(st.failure?.message).toMatch(/^Instance 'long-loop': this episode would grow its history to 2\d events, over the limit of 20 \(maxHistoryEvents\)/);
    const h = st.history!;
    // The failing episode wrote no new work: its last events are the result that woke it, then the failure.
    expect(h.slice(-4).map((e) => e.type)).toEqual(['OrchestratorStarted', 'TaskCompleted', 'ExecutionCompleted', 'OrchestratorCompleted']);
    // Up to the failing episode the history stays within the limit; that episode records only what woke it and the failure.
    expect(h.length - 4).toBeLessThanOrEqual(20);
    expect(await th.redis.scard(th.keys.pending(id))).toBe(0);
    expect(codes(await checkInstance(th.workers[0]!.backend, id))).toEqual([]);
  });

  it('a fan-out that would pass the limit in one episode schedules nothing', async () => {
    let ran = 0;
    function* fan(ctx: OrchestrationContext): Generator<unknown, number, any> {
      const r: number[] = yield ctx.all(Array.from({ length: 30 }, (_, i) => ctx.callActivity('Sq', i)));
      return r.length;
    }
    th = await createTestHub({ orchestrators: { Fan: fan }, activities: { Sq: async (i: number) => (ran++, i * i) } }, { maxHistoryEvents: 20 });
    const id = await th.client.startNew('Fan', { instanceId: 'wide' });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.message).toContain('would grow its history to 33 events, over the limit of 20');
    expect(st.history!.some((e) => e.type === 'TaskScheduled')).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(ran).toBe(0);
    expect(codes(await checkInstance(th.workers[0]!.backend, id))).toEqual([]);
  });

  it('continue-as-new keeps a long-running orchestration under the limit', async () => {
    function* counter(ctx: OrchestrationContext, n: number): Generator<unknown, number, any> {
      const next: number = yield ctx.callActivity('Inc', n);
      if (next >= 12) return next;
      ctx.continueAsNew(next);
      return next;
    }
    th = await createTestHub({ orchestrators: { Counter: counter }, activities: { Inc: async (n: number) => n + 1 } }, { maxHistoryEvents: 12 });
    const id = await th.client.startNew('Counter', { input: 0 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe(12);
  });
});

describe('oversized payloads', () => {
  const big = 'x'.repeat(5000);

  it('an oversized input or event data is refused by the client with PayloadError; nothing changes', async () => {
    function* waits(ctx: OrchestrationContext): Generator<unknown, unknown, any> {
      return yield ctx.waitForExternalEvent('go');
    }
    th = await createTestHub({ orchestrators: { Waits: waits } });
    const small = new DurabullClient({ connection: th.url, hub: th.hub, maxPayloadBytes: 1000 });
    extra.push(small);

    await expect(small.startNew('Waits', { instanceId: 'too-big', input: big })).rejects.toThrow(PayloadError);
    await expect(small.startNew('Waits', { instanceId: 'too-big', input: big })).rejects.toThrow(
      /^Orchestration input is at least 5003 bytes once encoded, over the limit of 1000 bytes\.$/,
    );
    expect(await small.getStatus('too-big')).toBeUndefined();
    expect(await scanAll(th.redis, `${th.keys.state('too-big')}*`)).toEqual([]);

    const id = await small.startNew('Waits', { instanceId: 'waiting', input: 'ok' });
    for (let i = 0; i < 200 && (await th.client.getStatus(id))?.episodes !== 1; i++) await new Promise((r) => setTimeout(r, 25));
    const before = await th.client.getStatus(id, { showHistory: true });
    const versionBefore = await th.redis.hget(th.keys.state(id), 'version');
    const inboxBefore = await th.redis.llen(th.keys.inbox(id));
    await expect(small.raiseEvent(id, 'go', big)).rejects.toThrow(/^Data of event 'go' is at least 5003 bytes once encoded, over the limit of 1000 bytes\.$/);
    expect(await th.redis.llen(th.keys.inbox(id))).toBe(inboxBefore);
    const after = await th.client.getStatus(id, { showHistory: true });
    expect(await th.redis.hget(th.keys.state(id), 'version')).toBe(versionBefore);
    expect(after?.history).toEqual(before?.history);
    await small.raiseEvent(id, 'go', 'fine');
    expect((await th.client.waitForCompletion(id, { timeoutMs: 10_000 })).output).toBe('fine');
  });

  it('an oversized activity result becomes TaskFailed (PayloadError) that the code can catch', async () => {
    function* flow(ctx: OrchestrationContext): Generator<unknown, string, any> {
      try {
        return yield ctx.callActivity('Big');
      } catch (err) {
        const e = err as TaskFailedError;
        return `${e.causeName}: ${e.failure.message}`;
      }
    }
    th = await createTestHub({ orchestrators: { Flow: flow }, activities: { Big: async () => big } }, { maxPayloadBytes: 1000 });
    const id = await th.client.startNew('Flow');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    expect(st.output).toMatch(/^PayloadError: Result of activity 'Big' is at least 5003 bytes once encoded, over the limit of 1000 bytes\.$/);
    expect(st.history!.some((e) => e.type === 'TaskCompleted')).toBe(false);
  });

  it('an oversized activity input or output fails the instance with PayloadError and schedules nothing', async () => {
    let ran = 0;
    th = await createTestHub(
      {
        orchestrators: {
          BigInput: function* (ctx) {
            return yield ctx.callActivity('Echo', big);
          },
          BigOutput: function* () {
            return big;
          },
        },
        activities: { Echo: async (x: unknown) => (ran++, x) },
      },
      { maxPayloadBytes: 1000 },
    );
    const a = await th.client.startNew('BigInput');
    const b = await th.client.startNew('BigOutput');
    const sa = await th.client.waitForCompletion(a, { timeoutMs: 10_000, showHistory: true });
    const sb = await th.client.waitForCompletion(b, { timeoutMs: 10_000 });
    expect(sa.runtimeStatus).toBe('Failed');
    expect(sa.failure).toMatchObject({ errorName: 'PayloadError' });
    expect(sa.failure?.message).toMatch(/^Input of activity 'Echo' is at least 5003 bytes once encoded, over the limit of 1000 bytes\.$/);
    expect(sa.history!.some((e) => e.type === 'TaskScheduled')).toBe(false);
    expect(sb.runtimeStatus).toBe('Failed');
    expect(sb.failure?.message).toMatch(/^Output of orchestrator 'BigOutput' is at least 5003 bytes once encoded, over the limit of 1000 bytes\.$/);
    expect(sb.output).toBeUndefined();
    expect(ran).toBe(0);
  });
});
