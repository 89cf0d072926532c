/**
 * The claim check on a real Redis: payloads over `claimCheckThresholdBytes` (default 64 KiB) are
 * stored under keys of their own (`dbl:{<hub>:0}:c:<id>:<token>`, listed in the set
 * `dbl:{<hub>:0}:c:<id>`), written in the script that writes the reference; history, state hash and
 * activity jobs hold small references; every reader resolves them; purge, continue-as-new and a
 * restart under the same id delete them; a refused transition stores none; a reference whose key is
 * gone gives PayloadMissingError and a `missing-payload` finding.
 */
import { type HistoryEvent, type OrchestrationContext, PayloadError, Registry, StaleEpisodeError, type TaskFailedError, executeOrchestration } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import {
  DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES,
  type InstanceReport,
  PayloadMissingError,
  PayloadRef,
  RedisBackend,
  checkInstance,
  decode,
} from '@durabull/redis';
import { DurabullWorker } from '@durabull/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { keysContaining, scanAll } from './helpers/redis.js';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { Gate, eventsOf, waitUntil } from './helpers/orchestration.js';
import { TEST_PARTITIONS } from './helpers/partitions.js';

const MB = 1 << 20;
const WAIT = { timeoutMs: 30_000, showHistory: true };

let th: TestHub | undefined;
const closers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  Gate.releaseAll();
  for (const c of closers.splice(0).reverse()) await c.close();
  await th?.cleanup();
  th = undefined;
});

/** A string of about `n` bytes that starts with `tag`. */
const big = (tag: string, n = MB) => `${tag}:${'x'.repeat(n - tag.length - 1)}`;
const codes = (r: InstanceReport) => r.findings.map((f) => f.code);

/** Every key of the hub whose name contains `id` (SCAN). */
const keysNaming = (id: string) => keysContaining(th!.redis, th!.keys.pattern, id);

/** The payload keys of an instance (SCAN over its claim prefix), with their sizes. */
async function payloadKeys(id: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const k of await scanAll(th!.redis, `${th!.keys.claims(id)}:*`)) out.set(k, await th!.redis.strlen(k));
  return out;
}

/** Sizes of the raw history stream entries (bytes of each entry's one field). */
async function streamEntrySizes(id: string): Promise<number[]> {
  const entries = (await th!.redis.xrangeBuffer(th!.keys.history(id), '-', '+')) as unknown as [Buffer, Buffer[]][];
  return entries.map(([, fields]) => fields[1]!.length);
}

/** Asserts that history and state of `id` hold references only: no entry or field near the payload sizes. */
async function expectReferencesOnly(id: string): Promise<void> {
  for (const size of await streamEntrySizes(id)) expect(size).toBeLessThan(4096);
  for (const field of ['input', 'output']) expect(await th!.redis.hstrlen(th!.keys.state(id), field)).toBeLessThan(64);
  expect(Number(await th!.redis.memory('USAGE', th!.keys.state(id)))).toBeLessThan(8192);
}

function* chain(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const a: string = yield ctx.callActivity('Grow', [input, 'a']);
  const b: string = yield ctx.callActivity('Grow', [a, 'b']);
  const ev: string = yield ctx.waitForExternalEvent('ev');
  return yield ctx.callActivity('Join', [b, ev]);
}

const activities = {
  Grow: async ([s, tag]: [string, string]) => `${tag}${s}`,
  Join: async ([a, b]: [string, string]) => `${a.slice(0, 20)}|${b.length}|${a.length}`.padEnd(a.length, '-'),
};

describe('claim check: large payloads stored apart', () => {
  it('a chain with 1 MB input, activity inputs and results, event data and output completes; history and state hold references', async () => {
    th = await createTestHub({ orchestrators: { Chain: chain }, activities });
    const input = big('in');
    const id = await th.client.startNew('Chain', { instanceId: 'big-chain', input });
    await waitUntil('the chain to wait for its event', async () => eventsOf((await th!.client.getStatus(id, { showHistory: true }))?.history, 'TaskCompleted').length === 2);
    await th.client.raiseEvent(id, 'ev', big('ev', 2 * MB));
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    const expected = `${`ba${input}`.slice(0, 20)}|${2 * MB}|${MB + 2}`.padEnd(MB + 2, '-');
    expect(st.output).toBe(expected);
    expect(st.input).toBe(input);

    // Every reader sees payloads, not references.
    const h = st.history!;
    expect(eventsOf(h, 'ExecutionStarted')[0]!.input).toBe(input);
    expect(eventsOf(h, 'TaskScheduled').map((e) => (e.input as string[])[0]!.length)).toEqual([MB, MB + 1, MB + 2]);
    expect(eventsOf(h, 'TaskCompleted').map((e) => (e.result as string).length)).toEqual([MB + 1, MB + 2, MB + 2]);
    expect(eventsOf(h, 'EventRaised')[0]!.input).toBe(big('ev', 2 * MB));
    expect(eventsOf(h, 'ExecutionCompleted')[0]!.result).toBe(expected);
    expect(await th.client.backend.getHistory(id)).toEqual(h);

    // Redis holds references in history and state, and the payloads under keys of their own.
    await expectReferencesOnly(id);
    const raw = await th.client.backend.getHistory(id, { resolve: false });
    expect(eventsOf(raw, 'ExecutionStarted')[0]!.input).toBeInstanceOf(PayloadRef);
    expect(eventsOf(raw, 'TaskCompleted')[0]!.result).toBeInstanceOf(PayloadRef);
    const payloads = await payloadKeys(id);
    // input, 3 activity inputs, 3 results, the event, the output: the state shares its input and output keys with history.
    expect(payloads.size).toBe(9);
    for (const size of payloads.values()) expect(size).toBeGreaterThan(MB);
    expect((await th.redis.smembers(th.keys.claims(id))).map((t) => th!.keys.claim(id, t)).sort()).toEqual([...payloads.keys()].sort());
    expect(codes(await checkInstance(th.client.backend, id))).toEqual([]);

    // Purge leaves nothing.
    await th.client.purge(id);
    await waitUntil('no key naming the instance', async () => (await keysNaming(id)).length === 0, 5000);
  });

  it('a fan-out of 1 MB inputs and results completes; activity jobs carry references', async () => {
    const gate = new Gate();
    th = await createTestHub({
      orchestrators: {
        Fan: function* (ctx: OrchestrationContext, n: number): Generator<unknown, number[], any> {
          const results: string[] = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Echo', big(`i${i}`))));
          return results.map((r) => r.length + Number(r.slice(1, r.indexOf(':'))));
        },
      },
      activities: {
        Echo: async (s: string) => {
          await gate.pass();
          return `${s}!`;
        },
      },
    });
    const id = await th.client.startNew('Fan', { instanceId: 'big-fan', input: 6 });
    await gate.entered;
    const exec = (await th.client.getStatus(id))!.executionId;
    const job = await th.client.backend.forInstance(id).activityQueue.getJob(`a-${id}-${exec}-3`);
    expect(job).toBeTruthy();
    const p = (job!.data as { p: string }).p;
    expect(p.length).toBeLessThan(100);
    expect(decode(Buffer.from(p, 'base64'))).toBeInstanceOf(PayloadRef);
    gate.open();
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toEqual([0, 1, 2, 3, 4, 5].map((i) => MB + 1 + i));
    await expectReferencesOnly(id);
    expect((await payloadKeys(id)).size).toBe(12);
    expect(codes(await checkInstance(th.client.backend, id))).toEqual([]);
    expect(await th.client.purgeInstances({ name: 'Fan' })).toBe(1);
    await waitUntil('no key naming the instance', async () => (await keysNaming(id)).length === 0, 5000);
  });

  it('small payloads stay inline: no payload key, the threshold is exclusive', async () => {
    const at = DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES;
    th = await createTestHub({ orchestrators: { Chain: chain }, activities });
    // A msgpack string of n - 3 characters (str16 header) encodes to n bytes: exactly the threshold.
    const id = await th.client.startNew('Chain', { instanceId: 'small-chain', input: 'y'.repeat(at - 3) });
    await th.client.raiseEvent(id, 'ev', 'small');
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect(await th.redis.hstrlen(th.keys.state(id), 'input')).toBe(at);
    // The activity inputs (an array of the string and a tag) are a few bytes over it.
    expect(eventsOf(await th.client.backend.getHistory(id, { resolve: false }), 'TaskScheduled').map((e) => e.input instanceof PayloadRef)).toEqual([
      true,
      true,
      true,
    ]);
    expect(eventsOf(await th.client.backend.getHistory(id, { resolve: false }), 'ExecutionStarted')[0]!.input).toBe('y'.repeat(at - 3));
  });

  it('turned off (claimCheckThresholdBytes: 0) everything is inline, as before', async () => {
    th = await createTestHub({ orchestrators: { Chain: chain }, activities }, { claimCheckThresholdBytes: 0 });
    const client = new DurabullClient({ connection: th.url, hub: th.hub, claimCheckThresholdBytes: 0 });
    closers.push(client);
    const input = big('in', 256 * 1024);
    const id = await client.startNew('Chain', { instanceId: 'inline-chain', input });
    await client.raiseEvent(id, 'ev', big('ev', 200 * 1024));
    const st = await client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect((st.output as string).length).toBe(256 * 1024 + 2);
    expect(await payloadKeys(id)).toEqual(new Map());
    expect(await th.redis.exists(th.keys.claims(id))).toBe(0);
    expect(await th.redis.hstrlen(th.keys.state(id), 'input')).toBeGreaterThan(256 * 1024);
    expect(Math.max(...(await streamEntrySizes(id)))).toBeGreaterThan(256 * 1024);
    expect(JSON.stringify(await client.backend.getHistory(id, { resolve: false }))).toBe(JSON.stringify(st.history));
  });

  it('references are read whatever the reader is set to: a worker with the claim check off runs an instance a client stored apart', async () => {
    th = await createTestHub({ orchestrators: { Chain: chain }, activities }, { claimCheckThresholdBytes: 0 });
    const input = big('in');
    const id = await th.client.startNew('Chain', { instanceId: 'mixed', input });
    await th.client.raiseEvent(id, 'ev', big('ev'));
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Completed');
    expect((st.output as string).length).toBe(MB + 2);
    // The client's input and event are stored apart; the worker wrote its own payloads inline.
    expect((await payloadKeys(id)).size).toBe(2);
    const off = new DurabullClient({ connection: th.url, hub: th.hub, claimCheckThresholdBytes: 0 });
    closers.push(off);
    expect((await off.getStatus(id))!.input).toBe(input);
    expect(codes(await checkInstance(off.backend, id))).toEqual([]);
  });

  it('a sub-orchestration gets its own copy of a large input; parent and child purge to nothing', async () => {
    th = await createTestHub({
      orchestrators: {
        Parent: function* (ctx: OrchestrationContext, s: string): Generator<unknown, number, any> {
          const r: string = yield ctx.callSubOrchestrator('Child', s, 'big-child');
          return r.length;
        },
        Child: function* (_ctx: OrchestrationContext, s: string): Generator<unknown, string, any> {
          return `${s}${s}`;
        },
      },
    });
    const id = await th.client.startNew('Parent', { instanceId: 'big-parent', input: big('p') });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toBe(2 * MB);
    expect((await th.client.getStatus('big-child'))!.input).toBe(big('p'));
    // Parent: input, the child's input (its event), the child's result, the output is small. Child: input, output.
    expect((await payloadKeys(id)).size).toBe(3);
    expect((await payloadKeys('big-child')).size).toBe(2);
    await th.client.purge(id);
    await th.client.purge('big-child');
    // Once the jobs still in flight at the purge have finished.
    await waitUntil('no key naming the instances', async () => (await keysNaming('big-')).length === 0, 5000);
  });

  it('terminate and suspend reasons, and a restart under the same id, which drops the old payloads', async () => {
    th = await createTestHub({
      orchestrators: {
        Wait: function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
          return yield ctx.waitForExternalEvent('never');
        },
      },
    });
    const c = th.client;
    const id = await c.startNew('Wait', { instanceId: 'reasons', input: big('in') });
    await waitUntil('Running', async () => (await c.getStatus(id))?.runtimeStatus === 'Running');
    await c.suspend(id, big('suspend'));
    await c.resume(id, big('resume'));
    await waitUntil('the episode after resume', async () => eventsOf((await c.getStatus(id, { showHistory: true }))?.history, 'ExecutionResumed').length === 1);
    await c.terminate(id, big('stop'));
    const st = (await c.getStatus(id, { showHistory: true }))!;
    expect(st.runtimeStatus).toBe('Terminated');
    expect(st.output).toBe(big('stop'));
    expect(eventsOf(st.history, 'ExecutionSuspended')[0]!.reason).toBe(big('suspend'));
    expect(eventsOf(st.history, 'ExecutionResumed')[0]!.reason).toBe(big('resume'));
    expect(eventsOf(st.history, 'ExecutionTerminated')[0]!.reason).toBe(big('stop'));
    await expectReferencesOnly(id);
    const before = await payloadKeys(id);
    expect(before.size).toBe(4);
    expect(codes(await checkInstance(c.backend, id))).toEqual([]);

    await c.restart(id);
    await waitUntil('restarted', async () => (await c.getStatus(id))?.runtimeStatus === 'Running');
    const after = await payloadKeys(id);
    expect(after.size).toBe(1);
    expect([...after.keys()].some((k) => before.has(k))).toBe(false);
    expect((await c.getStatus(id))!.input).toBe(big('in'));
    await c.terminate(id);
    await c.purge(id);
    await waitUntil('no key naming the instance', async () => (await keysNaming(id)).length === 0, 5000);
  });
});

describe('claim check and continue-as-new', () => {
  it('an eternal orchestration keeps only its current execution’s payloads', async () => {
    function* looper(ctx: OrchestrationContext, s: string): Generator<unknown, number, any> {
      const next: string = yield ctx.callActivity('Grow', [s, 'g']);
      const gen = next.indexOf(':');
      if (gen < 5) {
        ctx.continueAsNew(next);
        return 0;
      }
      return next.length;
    }
    th = await createTestHub({ orchestrators: { Looper: looper }, activities });
    const id = await th.client.startNew('Looper', { instanceId: 'eternal', input: big('') });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.output).toBe(MB + 5);
    // The last execution: its input, the activity's input and result, the output is small.
    expect((await payloadKeys(id)).size).toBe(3);
    expect(await th.redis.scard(th.keys.claims(id))).toBe(3);
    expect(codes(await checkInstance(th.client.backend, id))).toEqual([]);
  });

  it('status reads racing continue-as-new never see a payload the new execution deleted', async () => {
    function* looper(ctx: OrchestrationContext, s: string): Generator<unknown, number, any> {
      const next: string = yield ctx.callActivity('Grow', [s, 'g']);
      if (next.indexOf(':') < 40) {
        ctx.continueAsNew(next);
        return 0;
      }
      return next.length;
    }
    th = await createTestHub({ orchestrators: { Looper: looper }, activities });
    const id = await th.client.startNew('Looper', { instanceId: 'racing', input: big('', 100_000) });
    let reads = 0;
    let done = false;
    const poll = async () => {
      while (!done) {
        const st = await th!.client.getStatus(id, { showHistory: true });
        expect(typeof st!.input).toBe('string');
        await th!.client.list({ name: 'Looper' });
        reads++;
        if (st!.runtimeStatus === 'Completed') done = true;
      }
    };
    await Promise.all([poll(), poll(), poll()]);
    expect((await th.client.getStatus(id))!.output).toBe(100_040);
    expect(reads).toBeGreaterThan(10);
  });

  it('raised events carried into the next execution keep their payloads, from the inbox tail too', async () => {
    function* cont(ctx: OrchestrationContext, input: { gen: number; pad: string }): Generator<unknown, unknown, any> {
      if (input.gen === 0) {
        const first: string = yield ctx.waitForExternalEvent('first');
        ctx.continueAsNew({ gen: 1, pad: `${first}${input.pad.length}` });
        return undefined;
      }
      const a: string = yield ctx.waitForExternalEvent('a');
      const b: string = yield ctx.waitForExternalEvent('b');
      return [input.pad.slice(0, 12), a.length, b.length];
    }
    const registry = new Registry().addOrchestrator('Cont', cont);
    th = await createTestHub({ orchestrators: { Cont: cont } }, { startWorker: false });
    const worker = new DurabullWorker({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, registry, logger: false });
    closers.push(worker);
    const c = th.client;
    await worker.backend.open();
    const id = await c.startNew('Cont', { instanceId: 'carry', input: { gen: 0, pad: big('pad') } });
    // Episode 1 by hand: it waits for 'first'.
    let loaded = (await worker.backend.forInstance(id).loadEpisode(id))!;
    await worker.runEpisode({ i: id, x: loaded.state.executionId, v: loaded.state.version }, loaded);
    // 'first' and 'a' (large) arrive; the episode consumes both and continues as new: 'a' is carried over by the code.
    await c.raiseEvent(id, 'first', 'F');
    await c.raiseEvent(id, 'a', big('a'));
    loaded = (await worker.backend.forInstance(id).loadEpisode(id))!;
    // 'b' (large) arrives during the episode: in the inbox tail, carried over by the commit script.
    await c.raiseEvent(id, 'b', big('b', 2 * MB));
    const oldKeys = await payloadKeys(id);
    expect(oldKeys.size).toBe(3);
    await worker.runEpisode({ i: id, x: loaded.state.executionId, v: loaded.state.version }, loaded);
    const st = (await c.getStatus(id))!;
    expect(st.runtimeStatus).toBe('ContinuedAsNew');
    // The old input and the consumed 'a' are gone; 'b' stays (the tail); 'a' (stored again) and the next input are new... the next input is small.
    const keys = await payloadKeys(id);
    expect(keys.size).toBe(2);
    const kept = [...keys.keys()].filter((k) => oldKeys.has(k));
    expect(kept).toHaveLength(1);
    expect(keys.get(kept[0]!)).toBeGreaterThan(2 * MB);
    await worker.start();
    const done = await c.waitForCompletion(id, WAIT);
    expect(done.output).toEqual([`F${MB}`, MB, 2 * MB]);
    expect(codes(await checkInstance(c.backend, id))).toEqual([]);
  });
});

describe('claim check: refused transitions store nothing', () => {
  it('over maxPayloadBytes: refused start, event, activity result and output leave no payload key', async () => {
    th = await createTestHub(
      {
        orchestrators: {
          Flow: function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
            let caught = '';
            try {
              yield ctx.callActivity('Huge');
            } catch (err) {
              caught = (err as TaskFailedError).causeName ?? '';
            }
            yield ctx.waitForExternalEvent('go');
            return `${caught}:${'z'.repeat(3 * MB)}`;
          },
        },
        activities: { Huge: async () => big('r', 3 * MB) },
      },
      { maxPayloadBytes: 2 * MB },
    );
    const small = new DurabullClient({ connection: th.url, hub: th.hub, maxPayloadBytes: 2 * MB });
    closers.push(small);
    await expect(small.startNew('Flow', { instanceId: 'refused-start', input: big('in', 3 * MB) })).rejects.toThrow(PayloadError);
    expect(await keysNaming('refused-start')).toEqual([]);

    const id = await small.startNew('Flow', { instanceId: 'refused', input: big('in') });
    await waitUntil('the activity to fail', async () => eventsOf((await small.getStatus(id, { showHistory: true }))?.history, 'TaskFailed').length === 1);
    await expect(small.raiseEvent(id, 'go', big('go', 3 * MB))).rejects.toThrow(PayloadError);
    expect((await payloadKeys(id)).size).toBe(1);
    await small.raiseEvent(id, 'go', 'ok');
    const st = await small.waitForCompletion(id, WAIT);
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('PayloadError');
    // Only the input (the activity had no input; its result and the output were refused).
    expect((await payloadKeys(id)).size).toBe(1);
    expect(codes(await checkInstance(small.backend, id))).toEqual([]);
  });

  it('over maxHistoryEvents: the episode that fails schedules nothing and stores none of its payloads', async () => {
    th = await createTestHub(
      {
        orchestrators: {
          Wide: function* (ctx: OrchestrationContext, s: string): Generator<unknown, unknown, any> {
            return yield ctx.all(Array.from({ length: 30 }, (_, i) => ctx.callActivity('Grow', [s, String(i)])));
          },
        },
        activities,
      },
      { maxHistoryEvents: 20 },
    );
    const id = await th.client.startNew('Wide', { instanceId: 'too-long', input: big('in') });
    const st = await th.client.waitForCompletion(id, WAIT);
    expect(st.failure?.errorName).toBe('HistoryLimitError');
    expect((await payloadKeys(id)).size).toBe(1);
  });

  it('a stale commit, a duplicate result and an event for a finished instance store nothing', async () => {
    const bigOut = big('out');
    function* quick(): Generator<unknown, string, any> {
      return bigOut;
    }
    th = await createTestHub({ orchestrators: { Quick: quick } }, { startWorker: false });
    const id = await th.client.startNew('Quick', { instanceId: 'stale' });
    const backend = th.client.backend.forInstance(id);
    const loaded = (await backend.loadEpisode(id))!;
    const prefix: HistoryEvent[] = [{ type: 'OrchestratorStarted', timestamp: Date.now() }];
    const result = await executeOrchestration(new Registry().addOrchestrator('Quick', quick), loaded.history, [...prefix, ...loaded.inbox.map((m) => m.event)]);
    expect(result.status).toBe('Completed');
    await th.client.terminate(id, 'moved on');
    await expect(backend.commitEpisode(loaded, prefix, result)).rejects.toBeInstanceOf(StaleEpisodeError);
    expect(await keysNaming(`${th.keys.claims(id)}`)).toEqual([]);
    await expect(th.client.raiseEvent(id, 'late', big('late'))).rejects.toThrow(/has already finished/);
    expect(await keysNaming(`${th.keys.claims(id)}`)).toEqual([]);

    // A task result delivered twice (at-least-once activities): the second is dropped with its payload.
    const id2 = await th.client.startNew('Quick', { instanceId: 'dup' });
    const backend2 = th.client.backend.forInstance(id2);
    const x = (await th.client.getStatus(id2))!.executionId;
    await th.redis.sadd(th.keys.pending(id2), '0');
    const completed: HistoryEvent = { type: 'TaskCompleted', taskScheduledId: 0, result: big('r'), timestamp: Date.now() };
    expect((await backend2.deliverEvent(id2, x, 'c', 0, completed, { dispatch: false })).status).toBe('delivered');
    expect((await backend2.deliverEvent(id2, x, 'c', 0, completed, { dispatch: false })).status).toBe('duplicate');
    expect((await payloadKeys(id2)).size).toBe(1);
  });
});

describe('claim check: a reference whose payload is gone', () => {
  it('getStatus throws PayloadMissingError, the checker reports missing-payload, purge still leaves nothing', async () => {
    th = await createTestHub({ orchestrators: { Chain: chain }, activities });
    const id = await th.client.startNew('Chain', { instanceId: 'lost', input: 'small' });
    await th.client.raiseEvent(id, 'ev', big('ev'));
    await th.client.waitForCompletion(id, WAIT);
    // The event data and the last activity's input are stored apart; the event's goes.
    expect(await th.redis.scard(th.keys.claims(id))).toBe(2);
    const raised = eventsOf(await th.client.backend.getHistory(id, { resolve: false }), 'EventRaised')[0]!;
    const token = (raised.input as PayloadRef).token;
    await th.redis.del(th.keys.claim(id, token));

    const err = await th.client.getStatus(id, { showHistory: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadMissingError);
    expect((err as PayloadMissingError).key).toBe(th.keys.claim(id, token));
    expect((err as Error).message).toMatch(/^Instance 'lost': the payload stored apart under 'dbl:\{t-[0-9a-f]+:[0-9-]+\}:c:lost:[0-9a-f]{16}' \(\d+ bytes\) is missing; a reference to it remains\.$/);
    // The status without history needs only the state's payloads, which are small here.
    expect((await th.client.getStatus(id))!.runtimeStatus).toBe('Completed');
    const report = await checkInstance(th.client.backend, id);
    expect(codes(report)).toEqual(['missing-payload']);
    expect(report.findings[0]!.message).toMatch(/^history\[\d+\] EventRaised\.input references payload '.*' \(\d+ bytes\), which is missing$/);

    // A payload key the claim set does not list would outlive a purge: reported too.
    const [other] = (await th.redis.smembers(th.keys.claims(id))).filter((t) => t !== token);
    await th.redis.srem(th.keys.claims(id), other!);
    const again = await checkInstance(th.client.backend, id);
    expect(again.findings[0]!.message).toMatch(/which is missing; history\[\d+\] TaskScheduled\.input references payload '.*', which the claim set does not list \(purge would leave it\)$/);
    await th.redis.sadd(th.keys.claims(id), other!);

    await th.client.purge(id);
    await waitUntil('no key naming the instance', async () => (await keysNaming(id)).length === 0, 5000);
  });

  it('an activity whose input is gone fails its task with PayloadMissingError; the episode that reads it fails the instance at once', async () => {
    th = await createTestHub(
      {
        orchestrators: {
          Try: function* (ctx: OrchestrationContext, s: string): Generator<unknown, string, any> {
            try {
              return yield ctx.callActivity('Grow', [s, 'a']);
            } catch (err) {
              return `${(err as TaskFailedError).causeName}: ${(err as TaskFailedError).failure.message}`;
            }
          },
        },
        activities,
      },
      { activities: false },
    );
    const id = await th.client.startNew('Try', { instanceId: 'lost-input', input: big('in') });
    await waitUntil('the activity to be scheduled', async () => (await th!.client.getStatus(id))?.runtimeStatus === 'Running');
    const scheduled = eventsOf(await th.client.backend.getHistory(id, { resolve: false }), 'TaskScheduled')[0]!;
    const ref = scheduled.input as PayloadRef;
    expect(ref).toBeInstanceOf(PayloadRef);
    await th.redis.del(th.keys.claim(id, ref.token));
    await th.startWorker({ orchestrators: false, activities: true });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 30_000 });
    // Its history still references the deleted input, so no episode can replay it: failed at once, not after 10 attempts.
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('PoisonJobError');
    expect(st.failure?.message).toMatch(/^episode failed 1 times: PayloadMissingError: Instance 'lost-input': the payload stored apart under .* is missing/);
    // The activity's own failure is in the history.
    await expect(th.client.getStatus(id, { showHistory: true })).rejects.toBeInstanceOf(PayloadMissingError);
    const failed = eventsOf(await th.client.backend.getHistory(id, { resolve: false }), 'TaskFailed')[0]!;
    expect(failed.failure.errorName).toBe('PayloadMissingError');
  });
});

describe('claim check options', () => {
  it('refuses a negative or non-numeric threshold', () => {
    expect(() => new RedisBackend({ hub: 'x', claimCheckThresholdBytes: -1, connection: { lazyConnect: true } })).toThrow(/claimCheckThresholdBytes must be a number of bytes >= 0/);
    expect(() => new RedisBackend({ hub: 'x', claimCheckThresholdBytes: Number.NaN, connection: { lazyConnect: true } })).toThrow(/claimCheckThresholdBytes/);
  });
});
