/**
 * Durable entities against a real Redis: operations in order, batching, rollback of a throwing
 * operation, calls and signals from orchestrations (recorded in history, accepted by the checker),
 * critical sections without deadlock, typed errors for unknown names and operations, scheduled
 * signals, listing and purge.
 */
import {
  EntityId,
  EntityLockError,
  EntityNotFoundError,
  EntityOperationFailedError,
  EntityOperationNotFoundError,
  type EntityFunction,
  type OrchestratorFunction,
  defineEntity,
} from '@durabull/core';
import { StuckSweeper, checkInstance } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const Counter: EntityFunction<number> = (ctx) => {
  const v = ctx.getState(() => 0)!;
  switch (ctx.operationName) {
    case 'add':
      ctx.setState(v + ctx.getInput<number>());
      break;
    case 'get':
      ctx.return(v);
      break;
    case 'delete':
      ctx.destructOnExit();
      break;
    default:
      throw new Error(`Counter: no operation '${ctx.operationName}'`);
  }
};

/** A list that records what it is sent, in the order it runs the operations. */
const Log: EntityFunction<string[]> = (ctx) => {
  const list = ctx.getState(() => [])!;
  if (ctx.operationName === 'append') ctx.setState([...list, ctx.getInput<string>()]);
  else if (ctx.operationName === 'get') ctx.return(list);
  else if (ctx.operationName === 'appendThenFail') {
    list.push(ctx.getInput<string>());
    ctx.setState(list);
    throw new Error('refused after changing the state');
  }
};

const Account = defineEntity('Account', {
  initialState: () => 100,
  operations: {
    deposit: (ctx, amount: number) => {
      ctx.state += amount;
      return ctx.state;
    },
    withdraw: (ctx, amount: number) => {
      if (amount > ctx.state) throw new Error(`insufficient funds: ${ctx.state} < ${amount}`);
      ctx.state -= amount;
      return ctx.state;
    },
    balance: (ctx) => ctx.state,
  },
});

async function waitFor<T>(read: () => Promise<T>, done: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() > until) throw new Error(`Timed out waiting for ${what}; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('entities', () => {
  it('a counter receives signals from a client, batched, and reads back its last committed state', async () => {
    th = await createTestHub({ entities: { Counter } });
    const id = new EntityId('Counter', 'c1');
    const n = 300;
    await Promise.all(Array.from({ length: n }, () => th!.client.signalEntity(id, 'add', 1)));
    const st = await waitFor(() => th!.client.readEntityState<number>(id), (s) => s.entityState === n, 'the counter to reach n');
    expect(st).toEqual({ entityExists: true, entityState: n });
    const meta = await th.client.getEntity(id);
    expect(meta?.operations).toBe(n);
    // Many waiting operations ran in one batch each time: fewer batches than operations.
    expect(meta!.batches).toBeLessThan(n);
    expect(th.workers[0]!.stats.entityOperations).toBe(n);
  });

  it('a signal sent again with the same id is delivered once', async () => {
    th = await createTestHub({ entities: { Counter } });
    const id = new EntityId('Counter', 'dup');
    await th.client.signalEntity(id, 'add', 5, { signalId: 's-1' });
    await th.client.signalEntity(id, 'add', 5, { signalId: 's-1' });
    await th.client.signalEntity(id, 'add', 1, { signalId: 's-2' });
    const st = await waitFor(() => th!.client.getEntity(id), (m) => m?.operations === 2, 'two operations');
    expect(st?.state).toBe(6);
  });

  it('keeps the order of each sender: an orchestration and a client interleaved', async () => {
    const Sender: OrchestratorFunction = function* (ctx, n: number) {
      for (let i = 0; i < n; i++) {
        ctx.signalEntity('@Log@order', 'append', `o${i}`);
        if (i % 5 === 4) yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 1));
      }
      return n;
    };
    th = await createTestHub({ entities: { Log }, orchestrators: { Sender } });
    const id = await th.client.startNew('Sender', { input: 40 });
    for (let i = 0; i < 40; i++) await th.client.signalEntity('@Log@order', 'append', `c${i}`);
    await th.client.waitForCompletion(id, { timeoutMs: 30_000 });
    const st = await waitFor(() => th!.client.readEntityState<string[]>('@Log@order'), (s) => (s.entityState?.length ?? 0) === 80, '80 entries');
    const list = st.entityState!;
    expect(list.filter((e) => e.startsWith('o'))).toEqual(Array.from({ length: 40 }, (_, i) => `o${i}`));
    expect(list.filter((e) => e.startsWith('c'))).toEqual(Array.from({ length: 40 }, (_, i) => `c${i}`));
  });

  it('rolls back a throwing operation, fails the call with it, and goes on with the next operations', async () => {
    const Caller: OrchestratorFunction = async (ctx) => {
      await ctx.callEntity('@Log@rb', 'append', 'a');
      let error: unknown;
      try {
        await ctx.callEntity('@Log@rb', 'appendThenFail', 'b');
      } catch (err) {
        error = err;
      }
      await ctx.callEntity('@Log@rb', 'append', 'c');
      const list = await ctx.callEntity<string[]>('@Log@rb', 'get');
      const e = error as EntityOperationFailedError;
      return { list, failed: e instanceof EntityOperationFailedError, message: e.failure.message, entityId: e.entityId, op: e.operationName };
    };
    th = await createTestHub({ entities: { Log }, orchestrators: { Caller } });
    const id = await th.client.startNew('Caller');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 30_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toEqual({ list: ['a', 'c'], failed: true, message: 'refused after changing the state', entityId: '@Log@rb', op: 'appendThenFail' });
    const types = st.history!.map((e) => e.type);
    expect(types.filter((t) => t === 'EntityOperationCalled')).toHaveLength(4);
    expect(types.filter((t) => t === 'EntityOperationCompleted')).toHaveLength(3);
    expect(types.filter((t) => t === 'EntityOperationFailed')).toHaveLength(1);
    // The checker takes entity traffic for what it is: no findings.
    const report = await checkInstance(th.workers[0]!.backend, id);
    expect(report.findings).toEqual([]);
  });

  it('the checker and the stuck sweep take orchestrations waiting on entities (a call, a lock) for what they are', async () => {
    const Holder: OrchestratorFunction = async (ctx) => {
      const lock = await ctx.lockEntities('@Counter@w');
      await ctx.callEntity('@Counter@w', 'add', 1);
      await ctx.waitForExternalEvent('go');
      lock.release();
      return 'held';
    };
    const Caller: OrchestratorFunction = async (ctx) => {
      await ctx.callEntity('@Counter@w', 'add', 10);
      return ctx.callEntity('@Counter@w', 'get');
    };
    th = await createTestHub({ entities: { Counter }, orchestrators: { Holder, Caller } });
    const holder = await th.client.startNew('Holder', { instanceId: 'holder' });
    await waitFor(() => th!.client.readEntityState<number>('@Counter@w'), (s) => s.entityState === 1, 'the holder\'s call');
    const caller = await th.client.startNew('Caller', { instanceId: 'caller' });
    // The caller's operation waits, parked, while the holder holds the entity.
    await waitFor(() => th!.client.getEntity('@Counter@w'), (m) => m?.pendingOperations === 1, 'the parked call');
    const backend = th.workers[0]!.backend;
    for (const id of [holder, caller]) expect((await checkInstance(backend, id, { graceMs: 0 })).findings).toEqual([]);
    for (const part of backend.partitions) expect(await new StuckSweeper(part).pass({ graceMs: 0 })).toEqual([]);
    expect((await th.client.getEntity('@Counter@w'))?.lockedBy).toMatch(/^holder\|/);
    await th.client.raiseEvent(holder, 'go');
    expect((await th.client.waitForCompletion(caller, { timeoutMs: 30_000 })).output).toBe(11);
    expect((await th.client.waitForCompletion(holder, { timeoutMs: 30_000 })).output).toBe('held');
  });

  it('two orchestrations locking the same two entities in opposite orders both finish, and the total never changes', async () => {
    const Transfer: OrchestratorFunction = async (ctx, input: { from: string; to: string; amount: number; rounds: number }) => {
      for (let r = 0; r < input.rounds; r++) {
        // Opposite orders in the two orchestrations: the locks are taken in one global order anyway.
        const lock = await ctx.lockEntities(Account.id(input.from), Account.id(input.to));
        const inside = ctx.isInCriticalSection();
        await ctx.callEntity(Account.id(input.from), 'withdraw', input.amount);
        await ctx.callEntity(Account.id(input.to), 'deposit', input.amount);
        lock.release();
        if (!inside.inSection || inside.lockedEntities.length !== 2) throw new Error('not in the critical section');
      }
      return 'done';
    };
    const Auditor: OrchestratorFunction = async (ctx) => {
      const totals: number[] = [];
      for (let r = 0; r < 10; r++) {
        const lock = await ctx.lockEntities(Account.id('a'), Account.id('b'));
        const [a, b] = await ctx.all([ctx.callEntity(Account.id('a'), 'balance'), ctx.callEntity(Account.id('b'), 'balance')]);
        lock.release();
        totals.push(a! + b!);
      }
      return totals;
    };
    th = await createTestHub({ entities: { Account }, orchestrators: { Transfer, Auditor } });
    const one = await th.client.startNew('Transfer', { input: { from: 'a', to: 'b', amount: 3, rounds: 10 } });
    const two = await th.client.startNew('Transfer', { input: { from: 'b', to: 'a', amount: 5, rounds: 10 } });
    const audit = await th.client.startNew('Auditor');
    for (const id of [one, two]) expect((await th.client.waitForCompletion(id, { timeoutMs: 60_000 })).output).toBe('done');
    const totals = (await th.client.waitForCompletion(audit, { timeoutMs: 60_000 })).output as number[];
    expect(totals).toEqual(Array(10).fill(200));
    expect((await th.client.readEntityState(Account.id('a'))).entityState).toBe(100 - 30 + 50);
    expect((await th.client.readEntityState(Account.id('b'))).entityState).toBe(100 + 30 - 50);
    // The last unlock reaches the entity after its sender finished (a message, processed by the entity's next batch).
    await waitFor(() => th!.client.getEntity(Account.id('a')), (m) => m?.lockedBy === undefined, 'the last unlock');
  });

  it('inside a critical section, a call to an entity it does not hold is an EntityLockError at the call', async () => {
    const Bad: OrchestratorFunction = async (ctx) => {
      const lock = await ctx.lockEntities('@Counter@x');
      let caught = '';
      try {
        ctx.callEntity('@Counter@y', 'add', 1);
      } catch (err) {
        caught = `${(err as Error).name}: ${err instanceof EntityLockError}`;
      }
      await ctx.callEntity('@Counter@x', 'add', 1);
      lock.release();
      await ctx.callEntity('@Counter@y', 'add', 1);
      return caught;
    };
    th = await createTestHub({ entities: { Counter }, orchestrators: { Bad } });
    const id = await th.client.startNew('Bad');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 30_000 });
    expect(st.output).toBe('EntityLockError: true');
    expect((await th.client.readEntityState('@Counter@x')).entityState).toBe(1);
    expect((await th.client.readEntityState('@Counter@y')).entityState).toBe(1);
  });

  it('an orchestration that ends holding locks releases them, so later callers go on', async () => {
    const Holder: OrchestratorFunction = async (ctx) => {
      await ctx.lockEntities('@Counter@held');
      await ctx.callEntity('@Counter@held', 'add', 1);
      throw new Error('failing inside the critical section');
    };
    th = await createTestHub({ entities: { Counter }, orchestrators: { Holder } });
    const id = await th.client.startNew('Holder');
    expect((await th.client.waitForCompletion(id, { timeoutMs: 30_000 })).runtimeStatus).toBe('Failed');
    await th.client.signalEntity('@Counter@held', 'add', 10);
    const st = await waitFor(() => th!.client.readEntityState<number>('@Counter@held'), (s) => s.entityState === 11, 'the signal after the release');
    expect(st.entityState).toBe(11);
  });

  it('unknown entity names and operations are typed errors at the caller', async () => {
    const Caller: OrchestratorFunction = async (ctx) => {
      const out: string[] = [];
      try {
        await ctx.callEntity('@Nobody@k', 'add', 1);
      } catch (err) {
        out.push(`${(err as Error).name}/${(err as EntityOperationFailedError).failure.errorName}`);
      }
      try {
        // A typed id knows its operations: refused at the call, before anything is sent.
        ctx.callEntity(Account.id('t') as never, 'steal' as never);
      } catch (err) {
        out.push(`${(err as Error).name}: ${err instanceof EntityOperationNotFoundError}`);
      }
      try {
        await ctx.callEntity('@Account@t', 'steal');
      } catch (err) {
        out.push(`${(err as Error).name}/${(err as EntityOperationFailedError).failure.errorName}`);
      }
      return out;
    };
    th = await createTestHub({ entities: { Account }, orchestrators: { Caller } });
    await expect(th.client.signalEntity('@Nobody@k', 'add', 1)).rejects.toThrow(EntityNotFoundError);
    await expect(th.client.signalEntity('@Account@k', 'steal', 1)).rejects.toThrow(EntityOperationNotFoundError);
    await expect(th.client.signalEntity(Account.id('k'), 'steal', 1)).rejects.toThrow(EntityOperationNotFoundError);
    await expect(th.client.signalEntity('Account:k', 'deposit', 1)).rejects.toThrow(/entity id '@<name>@<key>'/);
    expect(await th.client.listEntities({ name: 'Nobody' })).toEqual({ entities: [] });
    const id = await th.client.startNew('Caller');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 30_000 });
    expect(st.output).toEqual([
      'EntityOperationFailedError/EntityNotFoundError',
      'EntityOperationNotFoundError: true',
      'EntityOperationFailedError/EntityOperationNotFoundError',
    ]);
  });

  it('runs a scheduled signal at its time, not before', async () => {
    th = await createTestHub({ entities: { Counter } });
    const at = new Date(Date.now() + 1500);
    await th.client.signalEntity('@Counter@later', 'add', 7, { scheduledTime: at });
    await th.client.signalEntity('@Counter@later', 'add', 1);
    const first = await waitFor(() => th!.client.getEntity('@Counter@later'), (m) => m?.state === 1, 'the immediate signal');
    expect(first!.pendingOperations).toBe(Date.now() < at.getTime() ? 1 : first!.pendingOperations);
    const st = await waitFor(() => th!.client.readEntityState<number>('@Counter@later'), (s) => s.entityState === 8, 'the scheduled signal');
    expect(Date.now()).toBeGreaterThanOrEqual(at.getTime());
    expect(st.entityState).toBe(8);
  });

  it('lists entities by name, paged, and purges the empty ones', async () => {
    th = await createTestHub({ entities: { Counter, Log } });
    for (let i = 0; i < 5; i++) await th.client.signalEntity(new EntityId('Counter', `k${i}`), 'add', i + 1);
    await th.client.signalEntity('@Log@one', 'append', 'x');
    await waitFor(() => th!.client.readEntityState('@Counter@k4'), (s) => s.entityState === 5, 'the counters');
    const p1 = await th.client.listEntities({ name: 'Counter', pageSize: 3, withState: true });
    expect(p1.entities.map((e) => e.id)).toEqual(['@Counter@k0', '@Counter@k1', '@Counter@k2']);
    expect(p1.entities.map((e) => e.state)).toEqual([1, 2, 3]);
    const p2 = await th.client.listEntities({ name: 'Counter', pageSize: 3, cursor: p1.nextCursor! });
    expect(p2.entities.map((e) => e.id)).toEqual(['@Counter@k3', '@Counter@k4']);
    expect(p2.nextCursor).toBeUndefined();
    // An entity with state is not purged; one deleted by its operation is.
    expect(await th.client.purgeEntity('@Counter@k0')).toBe(false);
    await th.client.signalEntity('@Counter@k0', 'delete');
    await waitFor(() => th!.client.readEntityState('@Counter@k0'), (s) => !s.entityExists, 'the delete');
    const cleaned = await th.client.cleanEntityStorage({ removeEmptyEntities: true });
    expect(cleaned.emptyEntitiesRemoved).toBe(1);
    expect(await th.client.getEntity('@Counter@k0')).toBeUndefined();
    expect((await th.client.listEntities()).entities.map((e) => e.id)).toEqual(['@Counter@k1', '@Counter@k2', '@Counter@k3', '@Counter@k4', '@Log@one']);
    await expect(th.client.listEntities({ pageSize: 0 })).rejects.toThrow(/pageSize/);
  });
});
