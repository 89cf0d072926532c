/** The execution log tells the same story as Durable Functions', once per step (never again on replay). */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { OrchestrationContext } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { captureLog } from './helpers/log.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

describe('execution log', () => {
  it('logs chaining in the Durable Functions order, with instance id and episode', async () => {
    const { logger, lines } = captureLog();
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
      { logger },
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

/** The ```text blocks of the docs/api.md section with this heading. */
async function docBlocks(heading: string): Promise<string[][]> {
  const doc = await readFile(fileURLToPath(new URL('../../docs/api.md', import.meta.url)), 'utf8');
  const start = doc.indexOf(`\n### ${heading}\n`);
  expect(start, `docs/api.md has a section "${heading}"`).toBeGreaterThanOrEqual(0);
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```text\n([\s\S]*?)```/g)].map((m) => m[1]!.trimEnd().split('\n'));
}

describe('execution log and stored history', () => {
  it('the log prints a result before the episode it wakes; history stores it after that episode’s OrchestratorStarted, as docs/api.md says', async () => {
    const { logger, lines } = captureLog();
    // The orchestrator of the docs' example.
    th = await createTestHub(
      {
        orchestrators: {
          Approve: function* (ctx: OrchestrationContext, order: string) {
            const reserved = yield ctx.callActivity('Reserve', order);
            const approval = yield ctx.waitForExternalEvent('Approval');
            return yield ctx.callActivity('Ship', { reserved, approval });
          },
        },
        activities: { Reserve: async (order: string) => `${order} reserved`, Ship: async (x: unknown) => x },
      },
      { logger },
    );
    const id = await th.client.startNew('Approve', { input: 'order-1', instanceId: 'ordered' });
    // The event only once Reserve's result has had its episode, so each episode has one waking event.
    for (let i = 0; i < 1000 && (await th.client.getStatus(id))?.episodes !== 2; i++) await new Promise((r) => setTimeout(r, 10));
    await th.client.raiseEvent(id, 'Approval', { by: 'alice' });
    const status = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(status.output).toEqual({ reserved: 'order-1 reserved', approval: { by: 'alice' } });

    const log = lines.filter((l) => l.instanceId === 'ordered').map((l) => ({ msg: l.msg, episode: l.episode }));
    const episodes: string[] = [];
    for (const e of status.history!) {
      if (e.type === 'OrchestratorStarted') episodes.push(`episode ${episodes.length + 1}:`);
      episodes[episodes.length - 1] += ` ${e.type}`;
    }

    const [docLog, docHistory] = await docBlocks('The execution log and the stored history');
    expect(log).toEqual(
      docLog!.map((line) => {
        const m = /^(.*?)\s+episode (\d+)$/.exec(line);
        return { msg: (m ? m[1]! : line).trim(), episode: m ? Number(m[2]) : undefined };
      }),
    );
    expect(episodes).toEqual(docHistory);
    // The log's order: Reserve's result, then the episode it wakes; history's: that episode's OrchestratorStarted first.
    expect(log.findIndex((l) => l.msg === 'Activity function Reserve task completed')).toBeLessThan(log.findIndex((l) => l.episode === 2));
    expect(episodes[1]).toBe('episode 2: OrchestratorStarted TaskCompleted OrchestratorCompleted');
  });
});
