/** The execution log tells the same story as Durable Functions', once per step (never again on replay). */
import { Writable } from 'node:stream';
import type { OrchestrationContext } from '@durabull/core';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

describe('execution log', () => {
  it('logs chaining in the Durable Functions order, with instance id and episode', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
        cb();
      },
    });
    th = await createTestHub(
      {
        orchestrators: {
          Chaining: function* (ctx: OrchestrationContext, x: number) {
            const a = yield ctx.callActivity('F1', x);
            const b = yield ctx.callActivity('F2', a);
            const c = yield ctx.callActivity('F3', b);
            return yield ctx.callActivity('F4', c);
          },
        },
        activities: {
          F1: async (x: number) => x + 1,
          F2: async (x: number) => x * 2,
          F3: async (x: number) => x - 3,
          F4: async (x: number) => `result ${x}`,
        },
      },
      { logger: pino({ level: 'info' }, sink) },
    );
    const id = await th.client.startNew('Chaining', { input: 1, instanceId: 'logged' });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toBe('result 1');
    const mine = lines.filter((l) => l.instanceId === 'logged');
    expect(mine.map((l) => l.msg)).toEqual([
      'Orchestration function triggered',
      'Execution started',
      'Activity function F1 task scheduled',
      'Orchestration function completed',
      'Activity function F1 task completed',
      'Orchestration function started',
      'Activity function F2 task scheduled',
      'Orchestration function completed',
      'Activity function F2 task completed',
      'Orchestration function started',
      'Activity function F3 task scheduled',
      'Orchestration function completed',
      'Activity function F3 task completed',
      'Orchestration function started',
      'Activity function F4 task scheduled',
      'Orchestration function completed',
      'Activity function F4 task completed',
      'Orchestration function started',
      'Execution completed',
    ]);
    const episodes = mine.filter((l) => l.msg === 'Orchestration function started').map((l) => l.episode);
    expect(episodes).toEqual([2, 3, 4, 5]);
    expect(mine.at(-1)).toMatchObject({ output: 'result 1', episode: 5 });
  });
});
