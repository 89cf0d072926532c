/**
 * A start applied twice: ioredis sends a command again after a reconnect when its reply was lost
 * with the old connection, and the script may have run the first time. The start carries its new
 * execution id, so the second run recognizes it: it creates nothing, and never restarts the
 * instance the first one created, even when that instance has finished meanwhile.
 */
import type { OrchestrationContext } from '@durabull/core';
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
