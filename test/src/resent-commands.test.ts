/**
 * Commands applied twice: ioredis sends a command again after a reconnect when its reply was lost
 * with the old connection, and the script may have run the first time. A start carries its new
 * execution id, so the second run recognizes it: it creates nothing, and never restarts the
 * instance the first one created, even when that instance has finished meanwhile. A raised event
 * carries an id, so the second delivery is dropped; so do terminate, suspend and resume. (Results are
 * dropped by their task id already.)
 */
import type { OrchestrationContext } from '@durabull/core';
import { InstanceFinishedError, InvalidInstanceStateError } from '@durabull/client';
import { InstanceAlreadyExistsError } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { Gate } from './helpers/orchestration.js';

let th: TestHub | undefined;
afterEach(async () => {
  Gate.releaseAll();
  await th?.cleanup();
  th = undefined;
});

describe('a start sent twice', () => {
  it('is applied once, whether the instance is still running or has finished', async () => {
    const gate = new Gate();
    th = await createTestHub({
      orchestrators: {
        Once: function* (ctx: OrchestrationContext, x: number): Generator<unknown, number, number> {
          return yield ctx.callActivity('Slow', x);
        },
      },
      activities: {
        Slow: async (x: number) => {
          await gate.pass();
          return x + 1;
        },
      },
    });
    const backend = th.client.backend;
    const first = await backend.startInstance('Once', 'twice', 1, { executionId: 'e1' });
    expect(first).toEqual({ executionId: 'e1', created: true });
    await gate.entered;
    // Running: the same start again is the same start, not a conflict.
    expect(await backend.startInstance('Once', 'twice', 1, { executionId: 'e1' })).toEqual({ executionId: 'e1', created: true });
    // Another start of a running instance still is one.
    await expect(backend.startInstance('Once', 'twice', 1, { executionId: 'e2' })).rejects.toThrow(InstanceAlreadyExistsError);
    gate.open();
    const done = await th.client.waitForCompletion('twice', { timeoutMs: 15_000, showHistory: true });
    expect(done.output).toBe(2);
    // Finished: the same start again must not restart it (a new start of a finished id would).
    expect(await backend.startInstance('Once', 'twice', 1, { executionId: 'e1' })).toEqual({ executionId: 'e1', created: true });
    const after = await th.client.getStatus('twice', { showHistory: true });
    expect(after).toMatchObject({ runtimeStatus: 'Completed', output: 2, executionId: 'e1' });
    expect(after!.history).toEqual(done.history);
  });
});

describe('a raised event sent twice', () => {
  it('is delivered once; another event with the same name and data is not a duplicate; purge leaves no id behind', async () => {
    th = await createTestHub({
      orchestrators: {
        Collect: function* (ctx: OrchestrationContext): Generator<unknown, string[], string> {
          const got: string[] = [];
          got.push(yield ctx.waitForExternalEvent<string>('item'));
          got.push(yield ctx.waitForExternalEvent<string>('item'));
          return got;
        },
      },
    });
    const backend = th.client.backend;
    const id = await th.client.startNew('Collect');
    const raise = (eventId: string) => {
      const event = { type: 'EventRaised' as const, name: 'item', input: 'same', timestamp: 1 };
      return backend.deliverEvent(id, '', 'e', undefined, event, { eventId });
    };
    expect((await raise('ev-1')).status).toBe('delivered');
    // The same command again (as ioredis resends it): dropped.
    expect((await raise('ev-1')).status).toBe('duplicate');
    // Another event that happens to carry the same name, data and time is one.
    expect((await raise('ev-2')).status).toBe('delivered');
    const done = await th.client.waitForCompletion(id, { timeoutMs: 15_000, showHistory: true });
    expect(done.output).toEqual(['same', 'same']);
    expect(done.history!.filter((e) => e.type === 'EventRaised')).toHaveLength(2);
    expect(await th.redis.exists(`${th.keys.inbox(id)}:r`)).toBe(1);
    await th.client.purge(id);
    expect(await th.redis.exists(`${th.keys.inbox(id)}:r`)).toBe(0);
  });
});

describe('terminate, suspend and resume sent twice', () => {
  it('succeed once and do nothing the second time', async () => {
    th = await createTestHub({
      orchestrators: {
        Wait: function* (ctx: OrchestrationContext): Generator<unknown, string, string> {
          return yield ctx.waitForExternalEvent<string>('go');
        },
      },
    });
    const backend = th.client.backend;
    const a = await th.client.startNew('Wait');
    await backend.setSuspended(a, 'suspend', 'hold', Date.now(), 'op-s');
    await backend.setSuspended(a, 'suspend', 'hold', Date.now(), 'op-s');
    // A second suspend of its own is refused, as before.
    await expect(backend.setSuspended(a, 'suspend', 'hold', Date.now(), 'op-s2')).rejects.toThrow(InvalidInstanceStateError);
    await backend.setSuspended(a, 'resume', 'go on', Date.now(), 'op-r');
    await backend.setSuspended(a, 'resume', 'go on', Date.now(), 'op-r');
    await th.client.raiseEvent(a, 'go', 'done');
    const st = await th.client.waitForCompletion(a, { timeoutMs: 15_000, showHistory: true });
    expect(st.output).toBe('done');
    expect(st.history!.filter((e) => e.type === 'ExecutionSuspended' || e.type === 'ExecutionResumed').map((e) => e.type)).toEqual([
      'ExecutionSuspended',
      'ExecutionResumed',
    ]);

    const b = await th.client.startNew('Wait');
    await backend.terminate(b, 'stop', Date.now(), false, 'op-t');
    await backend.terminate(b, 'stop', Date.now(), false, 'op-t');
    await expect(backend.terminate(b, 'stop', Date.now(), false, 'op-t2')).rejects.toThrow(InstanceFinishedError);
    const ended = await th.client.getStatus(b, { showHistory: true });
    expect(ended).toMatchObject({ runtimeStatus: 'Terminated', output: 'stop' });
    expect(ended!.history!.filter((e) => e.type === 'ExecutionTerminated')).toHaveLength(1);
  });
});
