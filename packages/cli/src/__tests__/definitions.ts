/**
 * Functions for the CLI tests as typed definitions only (no Registry export): `durabull worker
 * --module` must collect them into a Registry.
 */
import { defineActivity, defineOrchestrator } from '@durabull/core';

export const Double = defineActivity('Double', async (n: number) => n * 2);
export const AddOne = defineActivity('AddOne', async (n: number) => n + 1);

export const Compute = defineOrchestrator('Compute', async (ctx, n: number) => {
  const doubled = await ctx.callActivity(Double, n);
  return ctx.callActivity(AddOne, doubled);
});
