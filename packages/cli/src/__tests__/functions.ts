/**
 * Functions for the CLI tests, exported as a Registry (`export const registry`): what
 * `durabull worker --module` and `durabull dev --module` load, and what the in-process worker of
 * cli.test.ts runs.
 */
import { type OrchestrationContext, Registry } from '@durabull/core';

export const registry = new Registry()
  .addActivity('Greet', async (name: string) => `Hello ${name}`)
  .addActivity('Shout', async (text: string) => `${text.toUpperCase()}!`)
  .addActivity('Boom', async () => {
    throw new TypeError('boom');
  })
  // Chaining: Greet, then Shout.
  .addOrchestrator('Hello', function* (ctx: OrchestrationContext, name: string) {
    ctx.setCustomStatus('greeting');
    const greeting: string = yield ctx.callActivity('Greet', name);
    return yield ctx.callActivity('Shout', greeting);
  })
  // Waits for the `Approval` event, then returns its data.
  .addOrchestrator('Approve', function* (ctx: OrchestrationContext) {
    const data: unknown = yield ctx.waitForExternalEvent('Approval');
    return { approved: data };
  })
  // An activity fails and the orchestrator does not catch it.
  .addOrchestrator('Fails', function* (ctx: OrchestrationContext) {
    return yield ctx.callActivity('Boom');
  });
