/**
 * The second version, deployed without care: the first activity is renamed, which running
 * instances started on the first version cannot replay.
 */
import { Registry } from '@durabull/core';

export const registry = new Registry()
  .addActivity('ReserveStock', async (order: string) => `reserved ${order}`)
  .addActivity('Ship', async (r: string) => `shipped ${r}`)
  .addOrchestrator('Order', function* (ctx, order: string) {
    const reserved: string = yield ctx.callActivity('ReserveStock', order);
    yield ctx.waitForExternalEvent('Go');
    return yield ctx.callActivity('Ship', reserved);
  });
