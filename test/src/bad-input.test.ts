/**
 * Bad input on a real Redis: wrong argument types at every entry point of the client and the
 * worker, ids that no URL can address, a 50 MB input, input nested 100,000 deep, and payloads the
 * orchestrator hands out that cannot be stored. Each gives a typed error that names the argument
 * and the value, and changes nothing else.
 */
import {
  type OrchestrationContext,
  PayloadError,
  defineActivity,
  Registry,
  type TaskFailedError,
  ValidationError,
} from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import { DurabullWorker } from '@durabull/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { REPLAY_EVERY_EPISODE, type TestHub, createTestHub } from './helpers/hub.js';
import { scanAll } from './helpers/redis.js';

let th: TestHub | undefined;
const extra: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of extra.splice(0)) await c.close();
  await th?.cleanup();
  th = undefined;
});

/** Every key of the hub, sorted (BullMQ's included), but the charts' counters that the worker writes on its own. */
const keysOf = async (t: TestHub) => (await scanAll(t.redis, t.keys.pattern)).filter((k) => !k.startsWith(t.keys.statsPrefix)).sort();

/** `depth` arrays nested around 1. */
function nest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}

async function errorOf(p: Promise<unknown> | (() => unknown)): Promise<Error> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected an error');
}

const echo = { Echo: async (x: unknown) => x };

describe('client arguments', () => {
  it('every method names the argument and the value it got, before any Redis command', async () => {
    // No Redis at all: a command would fail with a connection error, not a ValidationError.
    const c = new DurabullClient({ connection: { host: '127.0.0.1', port: 1, lazyConnect: true, enableOfflineQueue: false }, hub: 'offline' }) as any;
    // Never connected: dropped without a QUIT (which would make it connect).
    extra.push({ close: async () => c.backend.redis.disconnect() });
    const cases: [() => Promise<unknown>, string][] = [
      [() => c.startNew(42), 'startNew: name must be a string (the orchestrator name) or a definition from defineOrchestrator(), got number 42'],
      [() => c.startNew({ kind: 'activity', name: 'F1' }), 'startNew: name must be a string (the orchestrator name) or a definition from defineOrchestrator(), got object { kind, name }'],
      [() => c.startNew('Chaining', 'fast'), 'startNew: options must be an object, got string "fast"'],
      [() => c.startNew('Chaining', { instanceId: 7 }), 'startNew: options.instanceId must be a string, got number 7'],
      [() => c.raiseEvent(undefined, 'go'), 'raiseEvent: instanceId must be a string, got undefined'],
      [() => c.raiseEvent('i', 42), 'raiseEvent: eventName must be a string, got number 42'],
      [() => c.terminate('i', 'why', { recursive: 'yes' }), 'terminate: options.recursive must be true or false, got string "yes"'],
      [() => c.suspend(null), 'suspend: instanceId must be a string, got null'],
      [() => c.resume(1), 'resume: instanceId must be a string, got number 1'],
      [() => c.purge({}), 'purge: instanceId must be a string, got object {}'],
      [() => c.purgeInstances({ status: 5 }), 'purgeInstances: filter.status must be a status or an array of statuses, got number 5'],
      [() => c.purgeInstances({ createdFrom: '2025-01-01' }), 'purgeInstances: filter.createdFrom must be a valid Date, got string "2025-01-01"'],
      [() => c.list('Running'), 'list: query must be an object, got string "Running"'],
      [() => c.list({ pageSize: '10' }), 'list: query.pageSize must be an integer from 1 to 1000, got string "10"'],
      [() => c.getStatus(42), 'getStatus: instanceId must be a string, got number 42'],
      [() => c.getStatus('i', { showHistory: 1 }), 'getStatus: options.showHistory must be true or false, got number 1'],
      [() => c.waitForCompletion('i', { timeoutMs: '100' }), 'waitForCompletion: options.timeoutMs must be a number > 0, got string "100"'],
      [() => c.restart('i', { newInstanceId: 3 }), 'restart: options.newInstanceId must be a string, got number 3'],
    ];
    for (const [call, message] of cases) {
      const err = await errorOf(call);
      expect(err, message).toBeInstanceOf(ValidationError);
      expect(err.message).toBe(message);
    }
  });

  it('the constructors of the client and the worker check their options, and take every valid one', async () => {
    const C = DurabullClient as any;
    const W = DurabullWorker as any;
    const registry = new Registry();
    const cases: [() => unknown, string][] = [
      [() => new C('redis://127.0.0.1:6379'), 'DurabullClient: options must be an object, got string "redis://127.0.0.1:6379"'],
      [() => new C({ connection: 6379 }), 'DurabullClient: options.connection must be a Redis URL, ioredis options or an ioredis client, got number 6379'],
      [() => new C({ hub: 5 }), 'DurabullClient: options.hub must be a string, got number 5'],
      [() => new C({ maxPayloadBytes: '1MB' }), 'DurabullClient: options.maxPayloadBytes must be a number > 0, got string "1MB"'],
      [() => new W(), 'DurabullWorker: options must be an object with a registry, got undefined'],
      [() => new W({ registry: {} }), 'DurabullWorker: options.registry must be a Registry, got object {}'],
      [() => new W({ registry, orchestratorConcurrency: 0 }), 'DurabullWorker: options.orchestratorConcurrency must be an integer >= 1, got number 0'],
      [() => new W({ registry, inlineEpisodes: 'no' }), 'DurabullWorker: options.inlineEpisodes must be true or false, got string "no"'],
      [() => new W({ registry, lockDurationMs: -5 }), 'DurabullWorker: options.lockDurationMs must be a number > 0, got number -5'],
      [() => new W({ registry, logger: true }), 'DurabullWorker: options.logger must be a pino logger or false, got boolean true'],
    ];
    for (const [call, message] of cases) {
      const err = await errorOf(call);
      expect(err, message).toBeInstanceOf(ValidationError);
      expect(err.message).toBe(message);
    }
    // Every option a worker takes, each with a valid value, is accepted.
    const lazy = { host: '127.0.0.1', port: 6379, lazyConnect: true };
    const worker = new DurabullWorker({
      connection: lazy,
      hub: 'valid-options',
      registry,
      orchestrators: true,
      activities: false,
      orchestratorConcurrency: 3,
      activityConcurrency: 4,
      logger: false,
      lockDurationMs: 2000,
      stalledIntervalMs: 1000,
      sweepIntervalMs: 0,
      maxPayloadBytes: 1024,
      claimCheckThresholdBytes: Number.POSITIVE_INFINITY,
      inlineEpisodes: false,
      eagerActivities: false,
      eagerLeaseMs: 500,
      extendedSessions: false,
      cachedInstances: 0,
      cachedHistoryEvents: 10,
      maxEpisodeAttempts: 2,
      maxStalledCount: 0,
      maxHistoryEvents: 0,
    });
    extra.push(worker);
    const client = new DurabullClient({ connection: lazy, hub: 'valid-options', maxPayloadBytes: 2048, claimCheckThresholdBytes: 0 });
    extra.push(client);
  });

  it('startNew(42) and friends change nothing in the hub', async () => {
    th = await createTestHub({ orchestrators: { Echo: function* (ctx, x) { return yield ctx.callActivity('Echo', x); } }, activities: echo });
    const before = await keysOf(th);
    const c = th.client as any;
    for (const call of [() => c.startNew(42), () => c.startNew('Echo', { instanceId: 7 }), () => c.raiseEvent(1, 'go', 'x'), () => c.terminate('x', 1, 'all')]) {
      expect(await errorOf(call)).toBeInstanceOf(ValidationError);
    }
    expect(await keysOf(th)).toEqual(before);
  });
});

describe("instance ids '.' and '..'", () => {
  it('are refused by every client call and by callSubOrchestrator, before anything is written', async () => {
    th = await createTestHub({
      orchestrators: {
        Echo: function* (ctx, x) {
          return yield ctx.callActivity('Echo', x);
        },
        Parent: function* (ctx) {
          try {
            return yield ctx.callSubOrchestrator('Echo', 1, '..');
          } catch (err) {
            return `${(err as Error).name}: ${(err as Error).message}`;
          }
        },
      },
      activities: echo,
    });
    const before = await keysOf(th);
    const c = th.client;
    for (const id of ['.', '..']) {
      const message = `Invalid instance id ${JSON.stringify(id)}: '.' and '..' are refused, since no URL can address them (they are path segments).`;
      for (const call of [
        () => c.startNew('Echo', { instanceId: id, input: 1 }),
        () => c.raiseEvent(id, 'go', 1),
        () => c.terminate(id),
        () => c.getStatus(id),
        () => c.restart('x', { newInstanceId: id }),
      ]) {
        const err = await errorOf(call);
        expect(err).toBeInstanceOf(ValidationError);
        expect(err.message).toBe(message);
      }
    }
    expect(await keysOf(th)).toEqual(before);
    // Ids with dots that are not path segments are fine.
    await c.startNew('Echo', { instanceId: '...', input: 'three dots' });
    expect((await c.waitForCompletion('...', { timeoutMs: 20_000 })).output).toBe('three dots');
    const parent = await c.startNew('Parent');
    const st = await c.waitForCompletion(parent, { timeoutMs: 20_000 });
    expect(st.output).toMatch(/^ValidationError: Invalid instance id "\.\.": '\.' and '\.\.' are refused/);
  });
});

describe('large and deep inputs', () => {
  it('a 50 MB input or event is refused with PayloadError and writes nothing', async () => {
    th = await createTestHub({ orchestrators: { Waits: function* (ctx) { return yield ctx.waitForExternalEvent('go'); } } });
    const id = await th.client.startNew('Waits', { instanceId: 'waiting' });
    for (let i = 0; i < 200 && (await th.client.getStatus(id))?.episodes !== 1; i++) await new Promise((r) => setTimeout(r, 25));
    const before = await keysOf(th);
    const inbox = await th.redis.llen(th.keys.inbox(id));
    const big = 'x'.repeat(50 * 1024 * 1024);
    const start = await errorOf(th.client.startNew('Waits', { instanceId: 'huge', input: big }));
    expect(start).toBeInstanceOf(PayloadError);
    expect(start.message).toBe('Orchestration input is at least 52428805 bytes once encoded, over the limit of 16777216 bytes.');
    const event = await errorOf(th.client.raiseEvent(id, 'go', { big }));
    expect(event).toBeInstanceOf(PayloadError);
    expect(event.message).toBe("Data of event 'go' is at least 52428810 bytes once encoded, over the limit of 16777216 bytes.");
    const buffer = await errorOf(th.client.startNew('Waits', { instanceId: 'huge', input: Buffer.alloc(50 * 1024 * 1024) }));
    expect(buffer.message).toMatch(/^Orchestration input is at least 52428805 bytes once encoded/);
    expect(await keysOf(th)).toEqual(before);
    expect(await th.redis.llen(th.keys.inbox(id))).toBe(inbox);
    expect(await th.client.getStatus('huge')).toBeUndefined();
  });

  it('an input nested 2,000 or 100,000 deep is refused with PayloadError naming the depth, and writes nothing', async () => {
    th = await createTestHub({ orchestrators: { Echo: function* (ctx, x) { return yield ctx.callActivity('Echo', x); } }, activities: echo });
    const before = await keysOf(th);
    for (const depth of [2_000, 100_000]) {
      const err = await errorOf(th.client.startNew('Echo', { instanceId: `deep-${depth}`, input: { data: nest(depth) } }));
      expect(err).toBeInstanceOf(PayloadError);
      expect(err.message).toMatch(/^Orchestration input\.data\[0\]\[0\].*\[0\] is nested deeper than 500 levels, which cannot be serialized/);
    }
    expect(await keysOf(th)).toEqual(before);
    // 500 levels are stored and come back.
    await th.client.startNew('Echo', { instanceId: 'deep-500', input: nest(500) });
    expect((await th.client.waitForCompletion('deep-500', { timeoutMs: 20_000 })).output).toEqual(nest(500));
  });
});

describe('payloads the orchestrator hands out', () => {
  /** Tries each payload the backend cannot store; the orchestrator catches every PayloadError at the call. */
  function* careful(ctx: OrchestrationContext): Generator<unknown, string[], any> {
    const caught: string[] = [];
    const note = (err: unknown) => caught.push(`${(err as Error).name}: ${(err as Error).message}`);
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    for (const bad of [{ fn: () => 1 }, cyclic, nest(2_000), 'x'.repeat(5_000)]) {
      try {
        yield ctx.callActivity('Echo', bad);
      } catch (err) {
        note(err);
      }
    }
    try {
      yield ctx.callSubOrchestrator('Careful', { when: Symbol('now') });
    } catch (err) {
      note(err);
    }
    try {
      ctx.setCustomStatus({ callback: () => 1 });
    } catch (err) {
      note(err);
    }
    caught.push(yield ctx.callActivity('Echo', 'fine'));
    caught.push(yield ctx.callActivity('Echo', 'again'));
    return caught;
  }

  it('a PayloadError at callActivity, callSubOrchestrator and setCustomStatus reaches the code’s try/catch, on every replay alike', async () => {
    // Every episode replays from the start: the refused calls must be refused again, in the same way.
    th = await createTestHub({ orchestrators: { Careful: careful }, activities: echo }, { ...REPLAY_EVERY_EPISODE, maxPayloadBytes: 4000 });
    const id = await th.client.startNew('Careful');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    const out = st.output as string[];
    expect(out).toHaveLength(8);
    expect(out[0]).toBe("PayloadError: Input of activity 'Echo'.fn is a function, which cannot be serialized.");
    expect(out[1]).toBe("PayloadError: Input of activity 'Echo'.self is a circular reference, which cannot be serialized.");
    expect(out[2]).toMatch(/^PayloadError: Input of activity 'Echo'\[0\]\[0\].* is nested deeper than 500 levels, which cannot be serialized/);
    expect(out[3]).toBe("PayloadError: Input of activity 'Echo' is at least 5003 bytes once encoded, over the limit of 4000 bytes.");
    expect(out[4]).toBe("PayloadError: Input of sub-orchestration 'Careful'.when is a symbol, which cannot be serialized.");
    expect(out[5]).toBe('PayloadError: Custom status.callback is a function, which cannot be serialized.');
    expect(out.slice(6)).toEqual(['fine', 'again']);
    // The refused calls scheduled nothing and took no task id.
    const scheduled = st.history!.filter((e) => e.type === 'TaskScheduled' || e.type === 'SubOrchestrationInstanceCreated');
    expect(scheduled.map((e) => [e.type, (e as { taskId: number }).taskId])).toEqual([
      ['TaskScheduled', 0],
      ['TaskScheduled', 1],
    ]);
    expect(st.episodes).toBe(3);
  });

  it('an input the check at the call had to encode is stored from that encoding and reaches the activity intact', async () => {
    // 100,000 short strings may or may not fit 500,000 bytes (300,000 to 700,000 by the walk's
    // bounds): the check encodes them at the call; the commit stores that encoding apart (claim check).
    const input = Array.from({ length: 100_000 }, (_, i) => (i % 2 ? 'ab' : 'é'));
    th = await createTestHub(
      { orchestrators: { Pass: function* (ctx, x) { return (yield ctx.callActivity('Count', x)) as number; } }, activities: { Count: async (x: string[]) => x.join('').length } },
      { maxPayloadBytes: 500_000 },
    );
    const id = await th.client.startNew('Pass', { input });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000, showHistory: true });
    expect(st.output).toBe(150_000);
    const scheduled = st.history!.find((e) => e.type === 'TaskScheduled') as { input: unknown } | undefined;
    expect(scheduled?.input).toEqual(input);
  });

  it('a PayloadError at continueAsNew reaches the code; the next execution starts with what it passed instead', async () => {
    function* again(ctx: OrchestrationContext, input: unknown): Generator<unknown, unknown, any> {
      if (typeof input === 'string') return input;
      try {
        ctx.continueAsNew({ fn: () => 1 });
      } catch (err) {
        ctx.continueAsNew(`caught ${(err as Error).name}: ${(err as Error).message}`);
      }
      return undefined;
    }
    th = await createTestHub({ orchestrators: { Again: again } });
    const id = await th.client.startNew('Again', { input: 0 });
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.output).toBe("caught PayloadError: Input of the next execution of 'Again'.fn is a function, which cannot be serialized.");
  });

  it('an activity result nested 100,000 deep fails its task (catchable); an output that deep fails the instance, both with PayloadError', async () => {
    th = await createTestHub({
      orchestrators: {
        DeepResult: function* (ctx) {
          try {
            return yield ctx.callActivity('Deep');
          } catch (err) {
            const e = err as TaskFailedError;
            return `${e.causeName}: ${e.failure.message}`;
          }
        },
        DeepOutput: function* () {
          return nest(100_000);
        },
      },
      activities: { Deep: async () => nest(100_000) },
    });
    const a = await th.client.startNew('DeepResult');
    const b = await th.client.startNew('DeepOutput');
    const sa = await th.client.waitForCompletion(a, { timeoutMs: 20_000 });
    const sb = await th.client.waitForCompletion(b, { timeoutMs: 20_000 });
    expect(sa.output).toMatch(/^PayloadError: Result of activity 'Deep'\[0\].* is nested deeper than 500 levels, which cannot be serialized/);
    expect(sb.runtimeStatus).toBe('Failed');
    expect(sb.failure?.errorName).toBe('PayloadError');
    expect(sb.failure?.message).toMatch(/^Output of orchestrator 'DeepOutput'\[0\].* is nested deeper than 500 levels/);
    expect(sb.episodes).toBe(1);
  });
});

describe('time: timeouts, delayed starts and schedules', () => {
  it('negative or non-integer timeouts are refused where they are given, naming the field', async () => {
    const fn = async () => 1;
    const cases: [() => unknown, string][] = [
      [() => new Registry().addActivity('A', fn, { startToCloseTimeoutMs: -5 }), "addActivity('A'): options.startToCloseTimeoutMs must be an integer >= 1, got number -5"],
      [() => new Registry().addActivity('A', fn, { heartbeatTimeoutMs: 1.5 }), "addActivity('A'): options.heartbeatTimeoutMs must be an integer >= 1, got number 1.5"],
      [() => new Registry().addActivity('A', fn, 'fast' as never), "addActivity('A'): options must be an object, got string \"fast\""],
      [() => defineActivityWith({ heartbeatTimeoutMs: 0 }), "defineActivity('A'): options.heartbeatTimeoutMs must be an integer >= 1, got number 0"],
      [
        () => new DurabullWorker({ registry: new Registry(), defaultStartToCloseTimeoutMs: -1 }),
        'DurabullWorker: options.defaultStartToCloseTimeoutMs must be an integer >= 0, got number -1',
      ],
      [() => new DurabullWorker({ registry: new Registry(), shutdownGraceMs: 2.5 }), 'DurabullWorker: options.shutdownGraceMs must be an integer >= 0, got number 2.5'],
    ];
    for (const [call, message] of cases) {
      const err = await errorOf(call);
      expect(err, message).toBeInstanceOf(ValidationError);
      expect(err.message).toBe(message);
    }
  });

  it('a timeout the orchestrator passes that is not valid throws at the call, which the code can catch, and schedules nothing', async () => {
    th = await createTestHub({
      orchestrators: {
        BadTimeout: function* (ctx: OrchestrationContext) {
          const out: string[] = [];
          for (const options of [{ startToCloseTimeoutMs: -1 }, { heartbeatTimeoutMs: 2.5 }, 'soon']) {
            try {
              ctx.callActivity('Echo', 1, options as never);
            } catch (err) {
              out.push(`${(err as Error).name}: ${(err as Error).message}`);
            }
          }
          try {
            ctx.callActivityWithRetry('Echo', { maxNumberOfAttempts: 2, firstRetryIntervalMs: 10 }, 1, { startToCloseTimeoutMs: 0 });
          } catch (err) {
            out.push(`${(err as Error).name}: ${(err as Error).message}`);
          }
          return out;
        },
      },
      activities: echo,
    });
    const id = await th.client.startNew('BadTimeout');
    const st = await th.client.waitForCompletion(id, { showHistory: true });
    expect(st.output).toEqual([
      'ValidationError: ctx.callActivity: options.startToCloseTimeoutMs must be an integer >= 1, got number -1',
      'ValidationError: ctx.callActivity: options.heartbeatTimeoutMs must be an integer >= 1, got number 2.5',
      'ValidationError: ctx.callActivity: options must be an object, got string "soon"',
      'ValidationError: ctx.callActivityWithRetry: options.startToCloseTimeoutMs must be an integer >= 1, got number 0',
    ]);
    expect(st.history!.filter((e) => e.type === 'TaskScheduled')).toHaveLength(0);
  });

  it('startAt in an unparseable form is refused and starts nothing', async () => {
    th = await createTestHub({ orchestrators: { Quick: function* () { return 1; } } });
    const before = await keysOf(th);
    const cases: [unknown, string][] = [
      ['tomorrow', 'startNew: options.startAt must be a valid Date, an ISO 8601 time with an offset (2024-06-01T09:00:00Z) or epoch milliseconds, got string "tomorrow"'],
      ['2024-06-01T09:00:00', 'startNew: options.startAt must be a valid Date, an ISO 8601 time with an offset (2024-06-01T09:00:00Z) or epoch milliseconds, got string "2024-06-01T09:00:00"'],
      [new Date('nope'), 'startNew: options.startAt must be a valid Date, an ISO 8601 time with an offset (2024-06-01T09:00:00Z) or epoch milliseconds, got Date Invalid Date'],
      [Number.NaN, 'startNew: options.startAt must be a valid Date, an ISO 8601 time with an offset (2024-06-01T09:00:00Z) or epoch milliseconds, got number NaN'],
    ];
    for (const [startAt, message] of cases) {
      const err = await errorOf(th.client.startNew('Quick', { instanceId: 'later', startAt: startAt as never }));
      expect(err, message).toBeInstanceOf(ValidationError);
      expect(err.message).toBe(message);
    }
    expect(await th.client.getStatus('later')).toBeUndefined();
    expect(await keysOf(th)).toEqual(before);
  });

  it('an invalid cron expression, unknown time zone, interval under one second and the like are refused, naming the field, and write nothing', async () => {
    th = await createTestHub({ orchestrators: { Quick: function* () { return 1; } } });
    const before = await keysOf(th);
    const base = { scheduleId: 'nightly', orchestrator: 'Quick' };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ ...base, cron: '61 * * * *' }, /^schedules\.create: options\.cron "61 \* \* \* \*" is not a valid cron expression: /],
      [{ ...base, cron: 'every night' }, /^schedules\.create: options\.cron "every night" is not a valid cron expression/],
      [{ ...base, cron: '0 3 * * *', timeZone: 'Mars/Olympus_Mons' }, /^schedules\.create: options\.timeZone "Mars\/Olympus_Mons" is not a time zone this runtime knows/],
      [{ ...base, intervalMs: 999 }, /^schedules\.create: options\.intervalMs must be an integer number of ms >= 1000 \(one second\), got number 999$/],
      [{ ...base, intervalMs: 1500.5 }, /^schedules\.create: options\.intervalMs must be an integer number of ms >= 1000 \(one second\), got number 1500\.5$/],
      [{ ...base }, /^schedules\.create: options needs a cron expression \(options\.cron\) or an interval \(options\.intervalMs\)$/],
      [{ ...base, cron: '0 3 * * *', intervalMs: 60_000 }, /^schedules\.create: give options\.cron or options\.intervalMs, not both$/],
      [{ ...base, intervalMs: 60_000, timeZone: 'Europe/Paris' }, /^schedules\.create: options\.timeZone applies to a cron expression only/],
      [{ ...base, cron: '0 3 * * *', startAt: 'next monday' }, /^schedules\.create: options\.startAt must be a valid Date, an ISO 8601 time with an offset .*, got string "next monday"$/],
      [{ ...base, cron: '0 3 * * *', startAt: '2030-01-02T00:00:00Z', endAt: '2030-01-01T00:00:00Z' }, /^schedules\.create: options\.endAt \(2030-01-01T00:00:00\.000Z\) must be after options\.startAt/],
      [{ ...base, cron: '0 3 * * *', overlap: 'queue' }, /^schedules\.create: options\.overlap must be one of 'skip', 'bufferOne', 'allowAll', got string "queue"$/],
      [{ ...base, cron: '0 3 * * *', catchupWindowMs: -1 }, /^schedules\.create: options\.catchupWindowMs must be an integer >= 1000, got number -1$/],
      [{ ...base, scheduleId: 'a:b', cron: '0 3 * * *' }, /^schedules\.create: Invalid schedule id "a:b"/],
      [{ ...base, orchestrator: 42, cron: '0 3 * * *' }, /^schedules\.create: options\.orchestrator must be a string \(the orchestrator name\) or a definition from defineOrchestrator\(\), got number 42$/],
    ];
    for (const [options, message] of cases) {
      const err = await errorOf(th.client.schedules.create(options as never));
      expect(err, String(message)).toBeInstanceOf(ValidationError);
      expect(err.message).toMatch(message);
    }
    // An update is checked the same way and changes nothing.
    await th.client.schedules.create({ ...base, cron: '0 3 * * *', paused: true });
    const created = await th.client.schedules.get('nightly');
    const err = await errorOf(th.client.schedules.update('nightly', { intervalMs: 10 }));
    expect(err).toBeInstanceOf(ValidationError);
    expect(err.message).toBe('schedules.update: changes.intervalMs must be an integer number of ms >= 1000 (one second), got number 10');
    expect(await th.client.schedules.get('nightly')).toEqual(created);
    await th.client.schedules.delete('nightly');
    expect(await keysOf(th)).toEqual(before);
  });
});

function defineActivityWith(options: Record<string, unknown>): unknown {
  return defineActivity('A', async () => 1, options as never);
}
