/**
 * A version that no longer has the `Order` orchestrator (renamed `PlaceOrder`).
 */
import { Registry } from '@durabull/core';

export const registry = new Registry()
  .addActivity('ReserveStock', async (order: string) => `reserved ${order}`)
  .addActivity('Ship', async (r: string) => `shipped ${r}`)
  .addOrchestrator('PlaceOrder', function* (ctx, order: string) {
    const reserved: string = yield ctx.callActivity('ReserveStock', order);
    return yield ctx.callActivity('Ship', reserved);
  });
