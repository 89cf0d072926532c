/**
 * Durable entities: a counter aggregated from a fan-out of signals, and a bank transfer between
 * two accounts under a critical section.
 *
 *   Aggregator: for each of N items, signal Counter.add(item)   (one-way, committed with the episode)
 *   Transfer:   lock(from, to); from.withdraw(amount); to.deposit(amount); release
 *
 * The counter runs its waiting operations in batches (one load, one commit each). The transfers
 * take their locks in one global order, so two transfers in opposite directions cannot deadlock,
 * and a withdrawal that would overdraw fails (its account rolled back) and the transfer reports it.
 */
import { Registry, defineEntity, defineOrchestrator, EntityOperationFailedError } from '@durabull/core';
import { type InstanceReport, type SampleOptions, sleep, withHarness } from './harness.js';

/** A counter in the typed style: `add` and `get`, state 0 to start with. */
export const Counter = defineEntity('Counter', {
  initialState: () => 0,
  operations: {
    add: (ctx, n: number) => {
      ctx.state += n;
    },
    get: (ctx) => ctx.state,
  },
});

/** An account: a balance that never goes below 0. */
export const Account = defineEntity('Account', {
  initialState: () => 100,
  operations: {
    deposit: (ctx, amount: number) => {
      ctx.state += amount;
      return ctx.state;
    },
    withdraw: (ctx, amount: number) => {
      if (amount > ctx.state) throw new Error(`insufficient funds: balance ${ctx.state}, asked ${amount}`);
      ctx.state -= amount;
      return ctx.state;
    },
    balance: (ctx) => ctx.state,
  },
});

/** Fans out one signal per item to the counter, then reads it once every signal ran. */
export const Aggregator = defineOrchestrator('Aggregator', async (ctx, input: { counter: string; items: number[] }) => {
  for (const n of input.items) ctx.signalEntity(Counter.id(input.counter), 'add', n);
  return input.items.length;
});

export interface TransferInput {
  from: string;
  to: string;
  amount: number;
}

/** Moves `amount` between two accounts inside a critical section. */
export const Transfer = defineOrchestrator('Transfer', async (ctx, t: TransferInput) => {
  const lock = await ctx.lockEntities(Account.id(t.from), Account.id(t.to));
  try {
    await ctx.callEntity(Account.id(t.from), 'withdraw', t.amount);
    await ctx.callEntity(Account.id(t.to), 'deposit', t.amount);
    return { ok: true as const };
  } catch (err) {
    if (!(err instanceof EntityOperationFailedError)) throw err;
    return { ok: false as const, reason: err.failure.message };
  } finally {
    lock.release();
  }
});

export const registry = new Registry().add(Counter, Account, Aggregator, Transfer);

export interface EntitiesResult {
  counter: { items: number; expected: number; state: number; operations: number; batches: number };
  transfers: InstanceReport<{ ok: boolean; reason?: string }>[];
  balances: Record<string, number>;
}

export async function run(opts: SampleOptions & { items?: number }): Promise<EntitiesResult> {
  const n = opts.items ?? 200;
  return withHarness(opts, registry, async (h) => {
    const counter = h.id('total');
    const items = Array.from({ length: n }, (_, i) => i + 1);
    h.log(`Aggregator: ${n} signals to Counter '${counter}'`);
    await h.finish(await h.client.startNew(Aggregator, { input: { counter, items }, instanceId: h.id('aggregate') }));
    const expected = (n * (n + 1)) / 2;
    let meta = await h.client.getEntity(Counter.id(counter));
    for (let i = 0; i < 400 && meta?.state !== expected; i++) {
      await sleep(25);
      meta = await h.client.getEntity(Counter.id(counter));
    }
    h.log(`Counter '${counter}': ${meta?.state} after ${meta?.operations} operations in ${meta?.batches} batches`);

    const alice = h.id('alice');
    const bob = h.id('bob');
    h.log(`Transfers between '${alice}' and '${bob}' (100 each), in opposite directions at once, then one that overdraws`);
    const ids = await Promise.all([
      h.client.startNew(Transfer, { input: { from: alice, to: bob, amount: 30 }, instanceId: h.id('t1') }),
      h.client.startNew(Transfer, { input: { from: bob, to: alice, amount: 50 }, instanceId: h.id('t2') }),
    ]);
    const transfers = [];
    for (const id of ids) transfers.push(await h.finish<{ ok: boolean; reason?: string }>(id));
    transfers.push(await h.finish<{ ok: boolean; reason?: string }>(await h.client.startNew(Transfer, { input: { from: alice, to: bob, amount: 500 }, instanceId: h.id('t3') })));
    const balances: Record<string, number> = {};
    for (const who of [alice, bob]) balances[who] = (await h.client.readEntityState<number>(Account.id(who))).entityState!;
    h.log(`Balances: ${JSON.stringify(balances)}; transfers ${transfers.map((t) => JSON.stringify(t.output)).join(', ')}`);
    return {
      counter: { items: n, expected, state: meta?.state as number, operations: meta?.operations ?? 0, batches: meta?.batches ?? 0 },
      transfers,
      balances,
    };
  });
}
