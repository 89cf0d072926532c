/**
 * The typed API: definitions carry input and output types into ctx.callActivity,
 * ctx.callSubOrchestrator and client.startNew. The `@ts-expect-error` lines are checked by the
 * type-check that `npm test` runs first: if a wrong input type stopped being a compile error, the
 * type-check would fail on the unused directive.
 */
import { Registry, defineActivity, defineOrchestrator, type OutputOf } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';

const Greet = defineActivity('Greet', async (city: string) => `Hello ${city}`);
const Length = defineActivity('Length', (s: string) => s.length);
const Child = defineOrchestrator('Child', async (ctx, n: number) => n * 10);
const Typed = defineOrchestrator('Typed', async (ctx, input: { city: string }) => {
  const greeting = await ctx.callActivity(Greet, input.city);
  const len: number = await ctx.callActivity(Length, greeting);
  const tens: number = await ctx.callSubOrchestrator(Child, len);
  return { greeting, tens };
});

// Compile-time checks (never run).
function typeChecks(): void {
  void defineOrchestrator('Wrong', async (ctx) => {
    // @ts-expect-error Greet takes a string
    await ctx.callActivity(Greet, 42);
    // @ts-expect-error Child takes a number
    await ctx.callSubOrchestrator(Child, 'ten');
    // @ts-expect-error Length returns a number, not a string
    const s: string = await ctx.callActivity(Length, 'x');
    return s;
  });
  const out: OutputOf<typeof Typed> = { greeting: 'g', tens: 1 };
  void out;
}
void typeChecks;

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

describe('typed API', () => {
  it('runs definitions registered with Registry.add and checks inputs at compile time', async () => {
    const registry = new Registry().add(Greet, Length, Child, Typed);
    expect(registry.activityNames()).toEqual(['Greet', 'Length']);
    expect(registry.orchestratorNames()).toEqual(['Child', 'Typed']);
    th = await createTestHub({
      orchestrators: { Typed: Typed.fn, Child: Child.fn },
      activities: { Greet: Greet.fn, Length: Length.fn },
    });
    // @ts-expect-error Typed takes { city: string }
    await expect(th.client.startNew(Typed, { input: { town: 'x' }, instanceId: 'never' })).resolves.toBe('never');
    const id = await th.client.startNew(Typed, { input: { city: 'Oslo' } });
    const st = await th.client.waitForCompletion<OutputOf<typeof Typed>>(id, { timeoutMs: 20_000 });
    expect(st.output?.greeting).toBe('Hello Oslo');
    expect(st.output?.tens).toBe(100);
  });
});
