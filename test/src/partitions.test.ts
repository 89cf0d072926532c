/**
 * A task hub of several partitions: the partition function and tags, the partition map, messages
 * between instances of different partitions (delivered twice), and hub-wide reads.
 */
import { type EntityFunction, type OrchestrationContext, type OrchestratorFunction, Registry } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import {
  ACTIVITY_QUEUE,
  CLUSTER_SLOTS,
  DEFAULT_PARTITIONS,
  HubKeys,
  PartitionMismatchError,
  RedisBackend,
  TaskHub,
  checkHub,
  encode,
  hubMetaKey,
  keySlot,
  partitionOf,
  partitionTag,
  subStartJobId,
} from '@durabull/redis';
import { Queue } from 'bullmq';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { waitUntil } from './helpers/orchestration.js';
import { deleteKeysByPattern, redisUrl, uniqueHub } from './helpers/redis.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const P = 4;
const WAIT = { timeoutMs: 15_000 } as const;

/** The first `<prefix>-<k>` whose partition (of `count`) is `p`. */
function idIn(p: number, prefix: string, count = P): string {
  for (let k = 0; ; k++) if (partitionOf(`${prefix}-${k}`, count) === p) return `${prefix}-${k}`;
}

describe('partition function and tags (pure)', () => {
  it('partitionOf is FNV-1a of the UTF-8 bytes mod P: these values never change', () => {
    // Reference values of FNV-1a 32: "" -> 0x811c9dc5, "a" -> 0xe40c292c, "foobar" -> 0xbf9cf968.
    expect(partitionOf('', 1_000_000_007)).toBe(0x811c9dc5 % 1_000_000_007);
    expect(partitionOf('a', 1_000_000_007)).toBe(0xe40c292c % 1_000_000_007);
    expect(partitionOf('foobar', 1_000_000_007)).toBe(0xbf9cf968 % 1_000_000_007);
    expect(['order-1', 'order-2', 'user@example.com', 'ü'].map((id) => partitionOf(id, 12))).toEqual(
      ['order-1', 'order-2', 'user@example.com', 'ü'].map((id) => partitionOf(id, 12)),
    );
    expect(partitionOf('anything', 1)).toBe(0);
    // Spread: 12,000 ids over 12 partitions, each within 20% of even.
    const counts = new Array<number>(12).fill(0);
    for (let i = 0; i < 12_000; i++) counts[partitionOf(`inst-${i}`, 12)]!++;
    for (const c of counts) expect(Math.abs(c - 1000)).toBeLessThan(200);
  });

  it("a partition's tag has its slot in the partition's even share of the 16,384 slots; one partition keeps {<hub>:0}", () => {
    expect(partitionTag('orders', 0, 1)).toBe('orders:0');
    expect(new HubKeys('orders').state('x')).toBe('dbl:{orders:0}:i:x');
    for (const count of [2, 3, 4, 6, 12, 64]) {
      const tags = Array.from({ length: count }, (_, p) => partitionTag('orders', p, count));
      expect(new Set(tags).size).toBe(count);
      tags.forEach((tag, p) => {
        const slot = keySlot(tag);
        expect(slot).toBeGreaterThanOrEqual(Math.floor((p * CLUSTER_SLOTS) / count));
        expect(slot).toBeLessThan(Math.floor(((p + 1) * CLUSTER_SLOTS) / count));
        expect(tag === `orders:${p}` || tag.startsWith(`orders:${p}-`)).toBe(true);
        // Deterministic: the same tag every time, and every key of the partition carries it.
        expect(partitionTag('orders', p, count)).toBe(tag);
        expect(keySlot(new HubKeys('orders', p, count).outbox)).toBe(slot);
      });
    }
  });
});

describe('partition map', () => {
  it('is fixed by the first user; another count is refused with PartitionMismatchError, which writes nothing', async () => {
    const hub = uniqueHub();
    const a = new TaskHub({ connection: redisUrl(), hub, partitions: 3 });
    const b = new TaskHub({ connection: redisUrl(), hub, partitions: 5 });
    const c = new TaskHub({ connection: redisUrl(), hub });
    try {
      expect((await a.open()).length).toBe(3);
      // A read stores nothing; the first write (here store(), as a worker's start or a start does) fixes it.
      expect(await a.redis.exists(hubMetaKey(hub))).toBe(0);
      await a.store();
      const err = await b.open().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PartitionMismatchError);
      expect((err as Error).message).toMatch(/has 3 partitions.*partitions: 5/);
      expect((await c.open()).length).toBe(3);
      expect(await a.redis.hget(hubMetaKey(hub), 'partitions')).toBe('3');
      const client = new DurabullClient({ connection: redisUrl(), hub, partitions: 2 });
      await expect(client.startNew('X', { instanceId: 'x', allowUnknownName: true })).rejects.toBeInstanceOf(PartitionMismatchError);
      await client.close();
      expect(await c.getState('x')).toBeUndefined();
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
      const r = new RedisBackend({ connection: redisUrl(), hub });
      await deleteKeysByPattern(r.redis, r.keys.pattern);
      await r.close();
    }
  });

  it('a process that read a new hub before its first write follows the count that write stored', async () => {
    const hub = uniqueHub();
    const early = new TaskHub({ connection: redisUrl(), hub });
    const writer = new TaskHub({ connection: redisUrl(), hub, partitions: 3 });
    try {
      expect((await early.open()).length).toBe(DEFAULT_PARTITIONS); // the default, not stored: nobody wrote yet
      await writer.startInstance('X', 'x-1', 1);
      expect((await early.open()).length).toBe(3);
      expect((await early.getState('x-1'))?.name).toBe('X');
    } finally {
      await Promise.all([early.close(), writer.close()]);
      const r = new RedisBackend({ connection: redisUrl(), hub });
      await deleteKeysByPattern(r.redis, r.keys.pattern);
      await r.close();
    }
  });

  it('a hub with data and no partition map has one partition', async () => {
    const hub = uniqueHub();
    const old = new RedisBackend({ connection: redisUrl(), hub });
    await old.startInstance('Old', 'old-1', 1);
    const adopt = new TaskHub({ connection: redisUrl(), hub });
    const wrong = new TaskHub({ connection: redisUrl(), hub, partitions: 12 });
    try {
      expect((await adopt.open()).length).toBe(1);
      expect((await adopt.getState('old-1'))?.name).toBe('Old');
      await expect(wrong.open()).rejects.toBeInstanceOf(PartitionMismatchError);
    } finally {
      await Promise.all([adopt.close(), wrong.close()]);
      await deleteKeysByPattern(old.redis, old.keys.pattern);
      await old.close();
    }
  });

  it('the partitions option is validated', async () => {
    expect(() => new TaskHub({ partitions: 0 })).toThrow(/partitions must be an integer from 1 to 1024, got 0/);
    expect(() => new DurabullClient({ partitions: 1.5 })).toThrow(/partitions/);
  });
});

describe('a hub of 4 partitions', () => {
  function* Child(ctx: OrchestrationContext, x: number): Generator<unknown, number, number> {
    return (yield ctx.callActivity('Double', x)) + 1;
  }
  function* Parent(ctx: OrchestrationContext, input: { child: string; x: number }): Generator<unknown, number, number> {
    return yield ctx.callSubOrchestrator('Child', input.x, input.child);
  }
  function* Waiter(ctx: OrchestrationContext): Generator<unknown, string, string> {
    return yield ctx.waitForExternalEvent('go');
  }
  function* Holder(ctx: OrchestrationContext, input: { child: string }): Generator<unknown, string, string> {
    return yield ctx.callSubOrchestrator('Waiter', undefined, input.child);
  }
  const functions = {
    orchestrators: { Parent, Child, Waiter, Holder },
    activities: { Double: (x: number) => 2 * x },
  };

  it('one worker serves every partition, and registers in each', async () => {
    th = await createTestHub(functions, { partitions: P });
    const ids = Array.from({ length: P }, (_, p) => idIn(p, 'child'));
    for (const id of ids) await th.client.startNew('Child', { instanceId: id, input: 5 });
    for (const id of ids) expect((await th.client.waitForCompletion(id, WAIT)).output).toBe(11);
    const parts = th.client.backend.partitions;
    expect(parts.length).toBe(P);
    for (const part of parts) expect((await part.partitionRegistry.list()).map((w) => w.id)).toEqual([th.workers[0]!.id]);
  });

  it('a sub-orchestration in another partition: start and notification delivered twice change nothing', async () => {
    th = await createTestHub(functions, { partitions: P });
    const parent = idIn(1, 'parent');
    const child = idIn(3, 'kid');
    await th.client.startNew('Parent', { instanceId: parent, input: { child, x: 20 } });
    const done = await th.client.waitForCompletion(parent, { ...WAIT, showHistory: true });
    expect(done.runtimeStatus).toBe('Completed');
    expect(done.output).toBe(41);
    const hub = th.client.backend;
    const parentPart = hub.forInstance(parent);
    const childPart = hub.forInstance(child);
    expect(parentPart).not.toBe(childPart);
    const created = done.history!.find((e) => e.type === 'SubOrchestrationInstanceCreated')!;
    const taskId = (created as { taskId: number }).taskId;
    const before = await hub.getState(child);
    const parentBefore = await hub.getState(parent);
    // The child's start again, as the sweep would send it, and the parent's notification again.
    const start = { i: child, n: 'Child', p: encode(20).toString('base64'), pi: parent, px: done.executionId, ps: taskId };
    await parentPart.dispatch([[subStartJobId(parent, done.executionId, taskId), `S${JSON.stringify(start)}`]], { awaitCleanup: true });
    await childPart.dispatch([[`p-${child}`, `P${child}`]], { awaitCleanup: true });
    const after = await hub.getState(child);
    expect(after?.executionId).toBe(before?.executionId);
    expect(after?.version).toBe(before?.version);
    const history = await hub.getHistory(parent);
    expect(history.filter((e) => e.type === 'SubOrchestrationInstanceCompleted').length).toBe(1);
    expect((await hub.getState(parent))?.version).toBe(parentBefore?.version);
    // Nothing left in either outbox, and every invariant holds across the partitions.
    for (const part of hub.partitions) expect(await part.redis.hlen(part.keys.outbox)).toBe(0);
    expect((await checkHub(hub)).findings).toEqual([]);
  });

  it('a recursive terminate reaches a child in another partition, and a start sent after it does not create one', async () => {
    th = await createTestHub(functions, { partitions: P });
    const parent = idIn(0, 'holder');
    const child = idIn(2, 'waiter');
    await th.client.startNew('Holder', { instanceId: parent, input: { child } });
    for (let i = 0; i < 500 && (await th.client.getStatus(child))?.runtimeStatus !== 'Running'; i++) await new Promise((r) => setTimeout(r, 20));
    await th.client.terminate(parent, 'stop', { recursive: true });
    expect((await th.client.waitForCompletion(child, WAIT)).runtimeStatus).toBe('Terminated');
    expect((await th.client.getStatus(parent))?.runtimeStatus).toBe('Terminated');
    // A start of another child of the terminated execution, delivered late (still in the outbox):
    // refused by the tombstone the parent's state carries, read in the parent's partition.
    const late = idIn(3, 'late');
    const state = (await th.client.getStatus(parent))!;
    const start = { i: late, n: 'Waiter', p: encode(undefined).toString('base64'), pi: parent, px: state.executionId, ps: 99 };
    await th.client.backend.forInstance(parent).dispatch([[subStartJobId(parent, state.executionId, 99), `S${JSON.stringify(start)}`]], { awaitCleanup: true });
    expect(await th.client.getStatus(late)).toBeUndefined();
  });

  it('list pages through every partition in creation order; the checker and purge by filter cover them all', async () => {
    th = await createTestHub(functions, { partitions: P });
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) {
      const id = `l-${i}`;
      ids.push(id);
      await th.client.startNew('Child', { instanceId: id, input: i });
      await new Promise((r) => setTimeout(r, 2)); // distinct creation times: the order is known
    }
    expect(new Set(ids.map((id) => partitionOf(id, P))).size).toBe(P);
    for (const id of ids) await th.client.waitForCompletion(id, WAIT);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await th.client.list({ pageSize: 5, ...(cursor ? { cursor } : {}) });
      expect(page.instances.length).toBeLessThanOrEqual(5);
      seen.push(...page.instances.map((s) => s.instanceId));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual(ids);
    const byStatus = await th.client.list({ status: 'Completed', pageSize: 1000 });
    expect(byStatus.instances.map((s) => s.instanceId).sort()).toEqual([...ids].sort());
    // The checker, a page at a time across partitions.
    let checked = 0;
    let c: string | undefined;
    do {
      const report = await checkHub(th.client.backend, { limit: 7, ...(c ? { cursor: c } : {}) });
      expect(report.findings).toEqual([]);
      checked += report.checked;
      c = report.nextCursor;
    } while (c);
    expect(checked).toBe(24);
    expect(await th.client.purgeInstances({ status: 'Completed' })).toBe(24);
    expect((await th.client.list({ pageSize: 1000 })).instances).toEqual([]);
  });

  it('an entity in another partition: calls and signals arrive once, in order, also when their messages are delivered twice', async () => {
    const Log: EntityFunction<string[]> = (ctx) => {
      const list = ctx.getState(() => [])!;
      if (ctx.operationName === 'append') ctx.setState([...list, ctx.getInput<string>()]);
      else ctx.return(list);
    };
    const Sender: OrchestratorFunction = async function (ctx, input: { entity: string }) {
      ctx.signalEntity(input.entity, 'append', 's1');
      ctx.signalEntity(input.entity, 'append', 's2');
      await ctx.callEntity(input.entity, 'append', 'c3');
      return ctx.callEntity(input.entity, 'get');
    };
    th = await createTestHub({ entities: { log: Log }, orchestrators: { Sender } }, { partitions: P });
    const sender = idIn(0, 'sender');
    let entity = '';
    for (let k = 0; !entity; k++) if (partitionOf(`@log@k${k}`, P) === 2) entity = `@log@k${k}`;
    await th.client.startNew('Sender', { instanceId: sender, input: { entity } });
    const done = await th.client.waitForCompletion(sender, WAIT);
    expect(done.failure).toBeUndefined();
    expect(done.output).toEqual(['s1', 's2', 'c3']);
    // The first message again, as the sweep would deliver it: the entity's duplicate filter drops it.
    const hub = th.client.backend;
    const senderPart = hub.forInstance(sender);
    const history = await hub.getHistory(sender, { resolve: false });
    expect(history.length).toBeGreaterThan(0);
    const [jobId, payload] = senderPart.entities.remoteMessageFor(sender, done.executionId, { type: 'SendEntityMessage', kind: 'signal', id: 0, entity, operation: 'append', input: 's1' } as never, Date.now());
    await senderPart.dispatch([[jobId, payload]], { awaitCleanup: true });
    expect((await th.client.readEntityState<string[]>(entity)).entityState).toEqual(['s1', 's2', 'c3']);
    for (const part of hub.partitions) expect(await part.redis.hlen(part.keys.outbox)).toBe(0);
  });
});

describe('a process serving several partitions', () => {
  it('holds no more jobs than its concurrency and one fetch per partition, and leaves the rest to another process', async () => {
    const parts = 6;
    const C = 3;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const running = { a: 0, b: 0 };
    const ran = { a: 0, b: 0 };
    const hold = (who: 'a' | 'b') => async (n: number) => {
      running[who]++;
      ran[who]++;
      try {
        await released;
        return n * 2;
      } finally {
        running[who]--;
      }
    };
    const One: OrchestratorFunction = function* (ctx: OrchestrationContext, n: number) {
      return yield ctx.callActivity('Hold', n);
    };
    // Activities through the queue only (none run in place), C at once.
    th = await createTestHub({ orchestrators: { One }, activities: { Hold: hold('a') } }, { partitions: parts, activityConcurrency: C, eagerActivities: false });
    // Three instances in each partition: 18 activity jobs; with the whole concurrency in each
    // partition's BullMQ worker, this process would hold all 18 while running 3, and at most 9 now.
    const ids = Array.from({ length: parts }, (_, p) => [0, 1, 2].map((k) => idIn(p, `hold-${p}-${k}`, parts))).flat();
    await Promise.all(ids.map((id, n) => th!.client.startNew('One', { input: n, instanceId: id })));
    const queues = Array.from({ length: parts }, (_, p) => new Queue(ACTIVITY_QUEUE, { connection: th!.redis, prefix: new HubKeys(th!.hub, p, parts).queuePrefix }));
    try {
      const counts = async () => {
        const c = await Promise.all(queues.map((q) => q.getJobCounts('active', 'waiting')));
        return { active: c.reduce((s, x) => s + (x.active ?? 0), 0), waiting: c.reduce((s, x) => s + (x.waiting ?? 0), 0) };
      };
      await waitUntil('the 18 activity jobs are queued and 3 run', async () => {
        const c = await counts();
        return running.a === C && c.active + c.waiting === ids.length;
      });
      // Give the BullMQ workers time to take what they would take.
      await new Promise((r) => setTimeout(r, 300));
      const held = (await counts()).active;
      expect(running.a).toBe(C);
      expect(held).toBeGreaterThanOrEqual(C);
      // The slots, and one job per partition waiting for one; one more when two partitions' loops
      // raced for the last free slots (shared-concurrency.ts: a fetched job counts from its run).
      expect(held).toBeLessThanOrEqual(C + parts + 1);
      // A second process (activities only) takes jobs the first holds no lock on.
      await th.startWorker({ registry: new Registry().addActivity('Hold', hold('b')), orchestrators: false });
      await waitUntil('the second process runs 3 activities', () => running.b === C);
      release();
      const done = await Promise.all(ids.map((id) => th!.client.waitForCompletion(id, WAIT)));
      expect(done.map((d) => d.output)).toEqual(ids.map((_, n) => n * 2));
      expect(ran.a + ran.b).toBe(ids.length);
    } finally {
      release();
      await Promise.all(queues.map((q) => q.close()));
    }
  });

  it('a fan-out in one partition gets the whole concurrency of the process', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let running = 0;
    let most = 0;
    const Fan: OrchestratorFunction = function* (ctx: OrchestrationContext, n: number) {
      const xs = (yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Slow', i)))) as number[];
      return xs.reduce((a, b) => a + b, 0);
    };
    const Slow = async (i: number) => {
      most = Math.max(most, ++running);
      try {
        await released;
        return i;
      } finally {
        running--;
      }
    };
    th = await createTestHub({ orchestrators: { Fan }, activities: { Slow } }, { partitions: 6, activityConcurrency: 5, eagerActivities: false });
    const id = await th.client.startNew('Fan', { input: 12 });
    try {
      await waitUntil('5 activities of the fan-out run at once', () => running === 5);
    } finally {
      release();
    }
    expect((await th.client.waitForCompletion(id, WAIT)).output).toBe(66);
    expect(most).toBe(5);
  });

  it("a partition's jobs get a slot while another partition has a steady backlog", async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let worked = 0;
    let workedWhenQuickRan = -1;
    const Backlog: OrchestratorFunction = function* (ctx: OrchestrationContext, n: number) {
      const xs = (yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Work', i)))) as number[];
      return xs.length;
    };
    const BlockAndQuick: OrchestratorFunction = function* (ctx: OrchestrationContext) {
      return yield ctx.all([ctx.callActivity('Block'), ctx.callActivity('Quick')]);
    };
    const activities = {
      Work: async (i: number) => {
        await new Promise((r) => setTimeout(r, 2));
        worked++;
        return i;
      },
      Block: async () => {
        await released;
        return 'b';
      },
      Quick: async () => {
        workedWhenQuickRan = worked;
        return 'q';
      },
    };
    th = await createTestHub({ orchestrators: { Backlog, BlockAndQuick }, activities }, { partitions: 6, activityConcurrency: 2, eagerActivities: false });
    const backlog = idIn(0, 'backlog', 6);
    const blocked = idIn(3, 'blocked', 6);
    await th.client.startNew('Backlog', { instanceId: backlog, input: 200 });
    await waitUntil('the backlog runs', () => worked > 0);
    await th.client.startNew('BlockAndQuick', { instanceId: blocked });
    try {
      // One slot holds Block; Quick waits for the other, which the backlog's jobs keep taking in turn.
      await waitUntil('Quick ran', () => workedWhenQuickRan >= 0);
    } finally {
      release();
    }
    expect(workedWhenQuickRan).toBeLessThan(100);
    expect((await th.client.waitForCompletion(blocked, WAIT)).output).toEqual(['b', 'q']);
    expect((await th.client.waitForCompletion(backlog, WAIT)).output).toBe(200);
  });
});
