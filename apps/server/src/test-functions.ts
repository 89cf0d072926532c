/**
 * Orchestrators and activities the server's tests run (server.test.ts, browser.test.ts).
 */
import type { ActivityFunction, OrchestrationContext, OrchestratorFunction } from '@durabull/core';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Activities: F1 to F3 take a little while (so the timeline has bars with a length), Boom fails. */
export const activities: Record<string, ActivityFunction> = {
  F1: async (x: string) => (await sleep(60), `${x}>F1`),
  F2: async (x: string) => (await sleep(120), `${x}>F2`),
  F3: async (x: string) => (await sleep(80), `${x}>F3`),
  Boom: () => {
    throw new TypeError('boom');
  },
};

/** Orchestrators, by name. */
export const orchestrators: Record<string, OrchestratorFunction> = {
  /** F1 -> F2 -> F3, then waits for the `Approval` event and returns both. */
  Approval: async (ctx: OrchestrationContext, input: string) => {
    let x = input;
    for (const f of ['F1', 'F2', 'F3']) x = await ctx.callActivity<string>(f, x);
    ctx.setCustomStatus({ waitingFor: 'Approval', steps: x });
    const approval = await ctx.waitForExternalEvent('Approval');
    return { steps: x, approval };
  },
  /** One activity, done. */
  Quick: async (ctx: OrchestrationContext, input: unknown) => ({ echo: input, f1: await ctx.callActivity('F1', 'q') }),
  /** Fails: an activity throws and the code does not catch it. */
  Failing: async (ctx: OrchestrationContext) => ctx.callActivity('Boom'),
};
