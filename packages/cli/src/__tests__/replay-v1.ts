/**
 * The replay-check tests' first version of an orchestrator: reserve, wait for `Go`, ship.
 */
import { Registry } from '@durabull/core';

export const registry = new Registry()
  .addActivity('Reserve', async (order: string) => `reserved ${order}`)
  .addActivity('Ship', async (r: string) => `shipped ${r}`)
  .addOrchestrator('Order', function* (ctx, order: string) {
    const reserved: string = yield ctx.callActivity('Reserve', order);
    yield ctx.waitForExternalEvent('Go');
    return yield ctx.callActivity('Ship', reserved);
  });
