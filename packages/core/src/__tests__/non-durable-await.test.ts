/**
 * Exactly what NonDurableAwaitError catches and what it does not, case by case, and that the table
 * in docs/api.md ("What `NonDurableAwaitError` detects") says the same: every row of the table is
 * run here, and every case here is a row of the table.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type ExecutionResult,
  type OrchestrationContext,
  type OrchestratorFunction,
  executeOrchestration,
  newOrchestratorStartedEvent,
  newTaskCompletedEvent,
} from '../index.js';
import { EpisodeRunner, at, registryOf, startEvents } from './helpers.js';

type Outcome = 'NonDurableAwaitError' | 'Accepted' | 'Not detected';

/** Set by a case's code once it gets past the await under test. */
let passed = false;
const pass = () => {
  passed = true;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const x = 7;
const helper = async (ctx: OrchestrationContext) => {
  const a = await ctx.callActivity('F1');
  return a;
};

/** The table's first column (its first code span) -> an orchestrator doing just that, then `pass()`. */
const CASES: Record<string, OrchestratorFunction> = {
  'yield 42': function* (ctx) {
    yield 42;
    pass();
    return yield ctx.callActivity('F9');
  },
  'yield Promise.resolve(x)': function* (ctx) {
    yield Promise.resolve(x);
    pass();
    return yield ctx.callActivity('F9');
  },
  'await 42': async (ctx) => {
    await 42;
    pass();
    return ctx.callActivity('F9');
  },
  'await Promise.resolve(x)': async (ctx) => {
    await Promise.resolve(x);
    pass();
    return ctx.callActivity('F9');
  },
  'await new Promise((r) => process.nextTick(r))': async (ctx) => {
    await new Promise((r) => process.nextTick(r));
    pass();
    return ctx.callActivity('F9');
  },
  'await helper(ctx)': async (ctx) => {
    await helper(ctx);
    pass();
    return ctx.callActivity('F9');
  },
  "await Promise.all([ctx.callActivity('F1'), ctx.callActivity('F2')])": async (ctx) => {
    await Promise.all([ctx.callActivity('F1'), ctx.callActivity('F2')]);
    pass();
    return ctx.callActivity('F9');
  },
  'await sleep(1000)': async (ctx) => {
    await sleep(1000);
    pass();
    return ctx.callActivity('F9');
  },
  'await new Promise(() => {})': async (ctx) => {
    await new Promise(() => {});
    pass();
    return ctx.callActivity('F9');
  },
  "ctx.callActivity('F1'); await sleep(1000)": async (ctx) => {
    ctx.callActivity('F1');
    await sleep(1000);
    pass();
    return ctx.callActivity('F9');
  },
  "await Promise.all([ctx.callActivity('F1'), sleep(1000)])": async (ctx) => {
    await Promise.all([ctx.callActivity('F1'), sleep(1000)]);
    pass();
    return ctx.callActivity('F9');
  },
  "await Promise.race([ctx.callActivity('F1'), sleep(1000)])": async (ctx) => {
    await Promise.race([ctx.callActivity('F1'), sleep(1000)]);
    pass();
    return ctx.callActivity('F9');
  },
};

const isNonDurable = (r: ExecutionResult) => r.status === 'Failed' && r.failure?.errorName === 'NonDurableAwaitError';
const drain = () => new Promise<void>((r) => setImmediate(r));

/**
 * Runs a case the way the backend would: the first episode; then (when the code is neither past the
 * await nor failed) the plain timers fire between episodes, as they would in a live worker; then
 * the episode that the scheduled activities' results wake.
 */
async function outcomeOf(fn: OrchestratorFunction): Promise<{ outcome: Outcome | string; first: ExecutionResult }> {
  vi.clearAllTimers(); // an earlier case's code left waiting on a timer must not get past its await here
  passed = false;
  const runner = new EpisodeRunner(registryOf('Case', fn));
  const first = await runner.run(startEvents('Case'));
  if (isNonDurable(first)) return { outcome: 'NonDurableAwaitError', first };
  if (first.status === 'Failed') return { outcome: `Failed with ${first.failure?.errorName}`, first };
  if (passed) return { outcome: 'Accepted', first };
  // Between episodes: the plain timers fire. Code that goes on now runs outside any episode.
  vi.advanceTimersByTime(1000);
  await drain();
  if (passed) return { outcome: 'Not detected', first };
  // Still waiting for its tasks: the episode their results wake (a fresh replay, as after a restart).
  const results = first.actions.flatMap((a) => (a.type === 'ScheduleTask' ? [newTaskCompletedEvent(a.id, `r${a.id}`, at(1))] : []));
  const second = await runner.run([newOrchestratorStartedEvent(at(1)), ...results]);
  if (isNonDurable(second)) return { outcome: 'NonDurableAwaitError', first };
  if (passed && second.status === 'Running') return { outcome: 'Accepted', first };
  return { outcome: `${second.status} ${second.failure?.errorName ?? ''}`, first };
}

/** The rows of the docs/api.md table: first code span of the first column -> outcome. */
async function documentedOutcomes(): Promise<Map<string, Outcome>> {
  const doc = await readFile(fileURLToPath(new URL('../../../../docs/api.md', import.meta.url)), 'utf8');
  const start = doc.indexOf('\n### What `NonDurableAwaitError` detects\n');
  expect(start, 'docs/api.md has the section').toBeGreaterThanOrEqual(0);
  const section = doc.slice(start, doc.indexOf('\n### ', start + 1));
  const rows = new Map<string, Outcome>();
  for (const m of section.matchAll(/^\| `([^`]+)`[^|]*\| (`NonDurableAwaitError`|Accepted|Not detected)/gm)) {
    rows.set(m[1]!, (m[2] === '`NonDurableAwaitError`' ? 'NonDurableAwaitError' : m[2]) as Outcome);
  }
  return rows;
}

describe('what NonDurableAwaitError detects', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }); // the executor's setImmediate stays real
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('each case has the outcome docs/api.md gives it, and the table has no other row', async () => {
    const documented = await documentedOutcomes();
    expect([...documented.keys()].sort()).toEqual(Object.keys(CASES).sort());
    const observed: Record<string, string> = {};
    for (const [code, fn] of Object.entries(CASES)) observed[code] = (await outcomeOf(fn)).outcome;
    expect(observed).toEqual(Object.fromEntries(documented));
  });

  it('the outcomes themselves: settled at once is accepted, pending at the check fails, awaited next to an open task is missed', async () => {
    const outcome = async (code: string) => (await outcomeOf(CASES[code]!)).outcome;
    expect(await outcome('await Promise.resolve(x)')).toBe('Accepted');
    expect(await outcome('await new Promise((r) => process.nextTick(r))')).toBe('Accepted');
    expect(await outcome('await sleep(1000)')).toBe('NonDurableAwaitError');
    expect(await outcome("ctx.callActivity('F1'); await sleep(1000)")).toBe('NonDurableAwaitError');
    expect(await outcome("await Promise.all([ctx.callActivity('F1'), sleep(1000)])")).toBe('NonDurableAwaitError');
    expect(await outcome("await Promise.race([ctx.callActivity('F1'), sleep(1000)])")).toBe('Not detected');
    expect(await outcome('yield Promise.resolve(x)')).toBe('NonDurableAwaitError');
  });

  it('Promise.all over tasks leaves a wait the backend cannot count (each result wakes an episode); ctx.all waits for all', async () => {
    const { first: promiseAll } = await outcomeOf(CASES["await Promise.all([ctx.callActivity('F1'), ctx.callActivity('F2')])"]!);
    expect(promiseAll.wait).toEqual({ kind: 'unknown' });
    const ctxAll = await executeOrchestration(
      registryOf('All', async (ctx) => ctx.all([ctx.callActivity('F1'), ctx.callActivity('F2')])),
      [],
      startEvents('All'),
    );
    expect(ctxAll.wait).toMatchObject({ kind: 'all', ids: [0, 1] });
  });
});
