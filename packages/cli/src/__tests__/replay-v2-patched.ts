/**
 * The second version done right: the rename behind `ctx.patched`, so that instances started on the
 * first version keep their path.
 */
import { Registry } from '@durabull/core';

export const registry = new Registry()
  .addActivity('Reserve', async (order: string) => `reserved ${order}`)
  .addActivity('ReserveStock', async (order: string) => `reserved ${order}`)
  .addActivity('Ship', async (r: string) => `shipped ${r}`)
  .addOrchestrator('Order', function* (ctx, order: string) {
    const reserved: string = yield ctx.callActivity(ctx.patched('reserve-stock') ? 'ReserveStock' : 'Reserve', order);
    yield ctx.waitForExternalEvent('Go');
    return yield ctx.callActivity('Ship', reserved);
  });
