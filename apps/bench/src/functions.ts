/**
 * The benchmark's orchestrators and activities (shared by the in-process workers and the worker
 * processes of W4). Activities do no work of their own, so every figure is the runtime's overhead.
 */
import { type OrchestrationContext, Registry, type Task } from '@durabull/core';

export const INC = 'Inc';
export const ECHO = 'Echo';
/** W1, W3, W4: four activities in a row, each returns its input + 1. */
export const CHAIN = 'BenchChain';
export const CHAIN_STEPS = 4;
/** W3: `steps` activities in a row. */
export const SEQUENCE = 'BenchSequence';
/** W2: fan out `n` activities (each returns its input), await them all, return the sum. */
export const FAN_OUT = 'BenchFanOut';
/** Replay check: one activity, then waits for the `Go` event (a running instance with a history), then one more. */
export const GATED = 'BenchGated';

export interface SequenceInput {
  steps: number;
  x: number;
}

export const registry = new Registry()
  .addActivity(INC, async (x: number) => x + 1)
  .addActivity(ECHO, async (x: number) => x)
  .addOrchestrator(CHAIN, function* (ctx: OrchestrationContext, x: number): Generator<unknown, number, number> {
    for (let i = 0; i < CHAIN_STEPS; i++) x = yield ctx.callActivity<number>(INC, x);
    return x;
  })
  .addOrchestrator(SEQUENCE, function* (ctx: OrchestrationContext, input: SequenceInput): Generator<unknown, number, number> {
    let x = input.x;
    for (let i = 0; i < input.steps; i++) x = yield ctx.callActivity<number>(INC, x);
    return x;
  })
  .addOrchestrator(GATED, function* (ctx: OrchestrationContext, x: number): Generator<unknown, number, number> {
    x = yield ctx.callActivity<number>(INC, x);
    yield ctx.waitForExternalEvent('Go');
    return yield ctx.callActivity<number>(INC, x);
  })
  .addOrchestrator(FAN_OUT, async (ctx: OrchestrationContext, n: number) => {
    const tasks: Task<number>[] = [];
    for (let i = 0; i < n; i++) tasks.push(ctx.callActivity<number>(ECHO, i));
    const values = await ctx.all(tasks);
    let sum = 0;
    for (const v of values) sum += v;
    return sum;
  });

/** Sum of 0..n-1: what FAN_OUT returns. */
export function fanOutSum(n: number): number {
  return (n * (n - 1)) / 2;
}
