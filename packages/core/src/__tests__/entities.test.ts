/**
 * Entities in the pure engine: the batch runner (order, rollback, signals, typed operations) and
 * the orchestration side (history events, replay, non-determinism, critical sections).
 */
import { describe, expect, it } from 'vitest';
import {
  EntityBatch,
  EntityId,
  EntityLockError,
  EntityOperationFailedError,
  NonDeterminismError,
  Registry,
  ValidationError,
  defineEntity,
  newOrchestratorStartedEvent,
} from '../index.js';
import { EpisodeRunner, at, registryOf, startEvents } from './helpers.js';

const Counter = defineEntity('Counter', {
  initialState: () => 0,
  operations: {
    add: (ctx, n: number) => {
      ctx.state += n;
      return ctx.state;
    },
    fail: (ctx, n: number) => {
      ctx.state += n;
      throw new Error('no');
    },
    ping: (ctx): void => ctx.signalEntity('@Counter@other', 'add', 1),
  },
});

describe('EntityBatch', () => {
  it('runs operations in order, rolls back a throwing one with its signals, and goes on', async () => {
    const b = new EntityBatch(new Registry().add(Counter), Counter.id('c'), { exists: false });
    expect(await b.run('add', 2)).toMatchObject({ ok: true, result: 2 });
    const failed = await b.run('fail', 100);
    expect(failed).toMatchObject({ ok: false, failure: { errorName: 'Error', message: 'no' } });
    expect(b.state).toEqual({ exists: true, value: 2 });
    expect(await b.run('add', 3)).toMatchObject({ ok: true, result: 5 });
    const pinged = await b.run('ping', undefined);
    expect(pinged.signals.map((s) => [s.entity.toString(), s.operation, s.input])).toEqual([['@Counter@other', 'add', 1]]);
    expect(await b.run('nope', 1)).toMatchObject({ ok: false, failure: { errorName: 'EntityOperationNotFoundError' } });
  });

  it('rolls back a mutated object state and deletes the state on destructOnExit', async () => {
    const registry = new Registry().addEntity('Bag', (ctx) => {
      const s = ctx.getState(() => ({ items: [] as string[] }))!;
      if (ctx.operationName === 'put') {
        s.items.push(ctx.getInput<string>());
        ctx.setState(s);
      } else if (ctx.operationName === 'putThenFail') {
        s.items.push('x');
        throw new Error('after the change');
      } else if (ctx.operationName === 'clear') ctx.destructOnExit();
    });
    const b = new EntityBatch(registry, new EntityId('Bag', 'b'), { exists: false });
    await b.run('put', 'a');
    await b.run('putThenFail', undefined);
    expect(b.state).toEqual({ exists: true, value: { items: ['a'] } });
    await b.run('clear', undefined);
    expect(b.state).toEqual({ exists: false });
  });

  it('fails every operation of an entity the registry does not have with EntityNotFoundError', async () => {
    const b = new EntityBatch(new Registry(), new EntityId('Nobody', 'k'), { exists: false });
    expect(await b.run('add', 1)).toMatchObject({ ok: false, failure: { errorName: 'EntityNotFoundError' } });
  });
});

describe('entities in orchestrations', () => {
  it('records calls, signals, lock requests and unlocks, and replays them', async () => {
    const registry = registryOf('T', async (ctx) => {
      ctx.signalEntity(Counter.id('log'), 'add', 1);
      const lock = await ctx.lockEntities(Counter.id('b'), Counter.id('a'));
      const r = await ctx.callEntity(Counter.id('a'), 'add', 5);
      lock.release();
      return r;
    });
    const run = new EpisodeRunner(registry);
    const first = await run.run(startEvents('T'));
    expect(first.actionEvents.map((e) => e.type)).toEqual(['EntityOperationSignaled', 'EntityLockRequested']);
    expect(first.actions[1]).toMatchObject({ type: 'SendEntityMessage', kind: 'lock', entity: '@Counter@a', lockSet: ['@Counter@a', '@Counter@b'] });
    const second = await run.run([newOrchestratorStartedEvent(at(1)), { type: 'EntityLockGranted', taskScheduledId: 1, timestamp: at(1) }]);
    expect(second.actions).toEqual([{ type: 'SendEntityMessage', id: 2, kind: 'call', entity: '@Counter@a', operation: 'add', input: 5 }]);
    const third = await run.run([newOrchestratorStartedEvent(at(2)), { type: 'EntityOperationCompleted', taskScheduledId: 2, result: 5, timestamp: at(2) }]);
    expect(third.status).toBe('Completed');
    expect(third.output).toBe(5);
    expect(third.actionEvents.filter((e) => e.type === 'EntityUnlockSent').map((e) => (e as { entityId: string }).entityId)).toEqual(['@Counter@a', '@Counter@b']);
  });

  it('fails the call with EntityOperationFailedError, and a changed call is a NonDeterminismError on replay', async () => {
    let op = 'add';
    const registry = registryOf('T', async (ctx) => {
      try {
        await ctx.callEntity(Counter.id('a'), op, 1);
      } catch (err) {
        return `${(err as Error).name}: ${err instanceof EntityOperationFailedError} ${(err as EntityOperationFailedError).failure.message}`;
      }
      return 'ok';
    });
    const run = new EpisodeRunner(registry);
    await run.run(startEvents('T'));
    const failed = await run.run([newOrchestratorStartedEvent(at(1)), { type: 'EntityOperationFailed', taskScheduledId: 0, failure: { errorName: 'Error', message: 'no' }, timestamp: at(1) }]);
    expect(failed.output).toBe('EntityOperationFailedError: true no');
    op = 'fail';
    const replayed = await new EpisodeRunner(registry).run([...run.history]);
    expect(replayed.status).toBe('Failed');
    expect(replayed.failure?.errorName).toBe(NonDeterminismError.name);
  });

  it('refuses calls outside the held entities, a second lock, and bad ids at the call', async () => {
    const registry = registryOf('T', async (ctx) => {
      const out: string[] = [];
      const lock = await ctx.lockEntities('@Counter@a');
      for (const f of [() => ctx.callEntity('@Counter@b', 'add', 1), () => ctx.lockEntities('@Counter@c'), () => ctx.callEntity('Counter:a', 'add'), () => ctx.lockEntities()]) {
        try {
          f();
        } catch (err) {
          out.push(`${(err as Error).name}:${err instanceof EntityLockError || err instanceof ValidationError}`);
        }
      }
      lock.release();
      return out;
    });
    const run = new EpisodeRunner(registry);
    await run.run(startEvents('T'));
    const done = await run.run([newOrchestratorStartedEvent(at(1)), { type: 'EntityLockGranted', taskScheduledId: 0, timestamp: at(1) }]);
    expect(done.output).toEqual(['EntityLockError:true', 'EntityLockError:true', 'ValidationError:true', 'ValidationError:true']);
  });

  it('checks definitions', () => {
    expect(() => defineEntity('bad name', { operations: {} })).toThrow(ValidationError);
    expect(() => defineEntity('E', { operations: { 'bad op': () => 1 } })).toThrow(/operation name/);
    expect(() => new EntityId('E', 'has space')).toThrow(/Invalid entity key/);
    expect(EntityId.parse('@E@k@x').key).toBe('k@x');
    expect(() => new Registry().add(Counter).add(Counter)).toThrow(/already registered/);
  });
});
