/**
 * The demo's orchestrators and activities: the two patterns of Durable Functions.
 *
 * Chaining:     x = F1(input); y = F2(x); z = F3(y); return F4(z)
 * FanOutFanIn:  items = F1(); results = all(items.map(F2)); return F3(sum(results))
 *               (here named ListWorkItems, ProcessWorkItem and ReportSum)
 */
import { type OrchestrationContext, Registry, TaskFailedError } from '@durabull/core';

export const registry = new Registry()
  // Chaining: each step transforms the previous step's output.
  .addActivity('F1', async (name: string) => name.trim())
  .addActivity('F2', async (name: string) => `Hello ${name}`)
  .addActivity('F3', async (greeting: string) => greeting.toUpperCase())
  .addActivity('F4', async (greeting: string) => `${greeting}!`)
  .addOrchestrator('Chaining', function* (ctx: OrchestrationContext, input: string) {
    try {
      const x: string = yield ctx.callActivity('F1', input);
      const y: string = yield ctx.callActivity('F2', x);
      const z: string = yield ctx.callActivity('F3', y);
      return yield ctx.callActivity('F4', z);
    } catch (err) {
      // Error handling and compensation around any step.
      if (err instanceof TaskFailedError) return `failed at ${err.taskName}: ${err.failure.message}`;
      throw err;
    }
  })
  // Fan-out/fan-in: F1 lists the work, F2 runs on every item in parallel, F3 gets the sum.
  .addActivity('ListWorkItems', async (count: number) => Array.from({ length: count }, (_, i) => i + 1))
  .addActivity('ProcessWorkItem', async (item: number) => item * item)
  .addActivity('ReportSum', async (sum: number) => `sum of squares = ${sum}`)
  .addOrchestrator('FanOutFanIn', function* (ctx: OrchestrationContext, count: number) {
    const items: number[] = yield ctx.callActivity('ListWorkItems', count);
    const results: number[] = yield ctx.all(items.map((item) => ctx.callActivity<number>('ProcessWorkItem', item)));
    const sum = results.reduce((a, b) => a + b, 0);
    return yield ctx.callActivity('ReportSum', sum);
  });
