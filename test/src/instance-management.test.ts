/**
 * Instance management on a real Redis: terminate, suspend/resume, purge, purgeInstances, restart
 * and list (paging 10,000 instances, filters, validation). Every test runs in a task hub of its own.
 */
import {
  InstanceAlreadyExistsError,
  InstanceFinishedError,
  InstanceNotFoundError,
  InvalidInstanceStateError,
  type OrchestrationStatus,
  type RuntimeStatus,
  ValidationError,
} from '@durabull/client';
import type { HistoryEvent, OrchestrationContext } from '@durabull/core';
import { afterEach, describe, expect, it } from 'vitest';
import { keysContaining } from './helpers/redis.js';
import { type TestHub, createTestHub } from './helpers/hub.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/** Polls `read` until `ok` holds; fails with `what` and the last value after `timeoutMs`. */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}; last value: ${JSON.stringify(v)}`);
    await sleep(20);
  }
}

async function statusOf(id: string): Promise<OrchestrationStatus> {
  const st = await th!.client.getStatus(id, { showHistory: true });
  if (!st) throw new Error(`no instance ${id}`);
  return st;
}

/** Waits until the instance exists, its first episode has been committed and it is blocked (Running). */
async function untilRunning(id: string): Promise<OrchestrationStatus> {
  const st = await until(
    `${id} to be Running`,
    () => th!.client.getStatus(id, { showHistory: true }),
    (s) => s?.runtimeStatus === 'Running' && s.episodes >= 1,
  );
  return st!;
}

const types = (h: HistoryEvent[] | undefined) => (h ?? []).map((e) => e.type);

/** Every key of the hub whose name contains `id` (SCAN, not KEYS). */
const keysNaming = (id: string) => keysContaining(th!.redis, th!.keys.pattern, id);

/** Members of the creation, status and name indexes that belong to instance `id`. */
async function indexEntriesOf(id: string): Promise<string[]> {
  const k = th!.client.backend.forInstance(id).keys;
  const out: string[] = [];
  for (const key of [k.instances, k.statusIndex, k.nameIndex]) {
    const members = await th!.redis.zrangebylex(key, '-', '+');
    out.push(...members.filter((m) => m.slice(m.lastIndexOf('|') + 1) === id).map((m) => `${key} ${m}`));
  }
  return out;
}

/** Outbox entries (hash fields and index members) that name instance `id`. */
async function outboxEntriesOf(id: string): Promise<string[]> {
  const k = th!.keys;
  const fields = await th!.redis.hkeys(k.outbox);
  const indexed = await th!.redis.zrange(k.outboxIndex, 0, -1);
  return [...fields, ...indexed].filter((f) => f.includes(`-${id}-`));
}

/** All pages of a list query, checking that only the last page lacks a cursor. */
async function listAll(
  query: Parameters<TestHub['client']['list']>[0] = {},
): Promise<{ instances: OrchestrationStatus[]; pages: number[] }> {
  const instances: OrchestrationStatus[] = [];
  const pages: number[] = [];
  let cursor: string | undefined;
  do {
    const page = await th!.client.list({ ...query, ...(cursor ? { cursor } : {}) });
    instances.push(...page.instances);
    pages.push(page.instances.length);
    cursor = page.nextCursor;
    if (pages.length > 100) throw new Error('too many pages');
  } while (cursor);
  return { instances, pages };
}

const ids = (list: OrchestrationStatus[]) => list.map((s) => s.instanceId);

// ---- orchestrators used below ----

function* waitForGo(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const go: string = yield ctx.waitForExternalEvent('go');
  return `${input}:${go}`;
}

function* callSlow(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  return yield ctx.callActivity('Slow', input);
}

function* eventThenEcho(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const a: string = yield ctx.waitForExternalEvent('a');
  const b: string = yield ctx.callActivity('Echo', `${input}+${a}`);
  return `${b}!`;
}

function* slowThenEcho(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const a: string = yield ctx.callActivity('Slow', input);
  return yield ctx.callActivity('Echo', a);
}

function* quick(_ctx: OrchestrationContext, input: unknown): Generator<unknown, unknown, any> {
  return input;
}

function* boom(): Generator<unknown, never, any> {
  throw new RangeError('boom');
}

const echo = async (x: string) => `${x}>echo`;

describe('terminate', () => {
  it('terminates an instance blocked on an event: Terminated, reason as output, ExecutionTerminated in history', async () => {
    th = await createTestHub({ orchestrators: { WaitForGo: waitForGo } });
    const c = th.client;
    const id = await c.startNew('WaitForGo', { instanceId: 'term-event', input: 'in' });
    const running = await untilRunning(id);
    expect(types(running.history)).toEqual(['OrchestratorStarted', 'ExecutionStarted', 'OrchestratorCompleted']);

    const waiting = c.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    const reason = { by: 'ops', why: 'stuck' };
    await c.terminate(id, reason);

    const st = await waiting;
    expect(st.runtimeStatus).toBe('Terminated');
    expect(st.output).toEqual(reason);
    expect(st.failure).toBeUndefined();
    expect(st.completedAt).toBeInstanceOf(Date);
    expect(st.executionId).toBe(running.executionId);
    expect(st.episodes).toBe(1);
    expect(types(st.history)).toEqual(['OrchestratorStarted', 'ExecutionStarted', 'OrchestratorCompleted', 'ExecutionTerminated']);
    expect(st.history!.at(-1)).toMatchObject({ type: 'ExecutionTerminated', reason });

    // The status index moved it; its inbox, pending and wait keys are gone.
    expect(ids((await c.list({ status: 'Terminated' })).instances)).toEqual([id]);
    expect((await c.list({ status: 'Running' })).instances).toEqual([]);
    const [, , inbox, pending, wait] = th.keys.instanceKeys(id);
    expect(await th.redis.exists(inbox, pending, wait)).toBe(0);

    // A finished instance takes no more events and cannot be terminated again; nothing changes.
    await expect(c.raiseEvent(id, 'go', 'late')).rejects.toBeInstanceOf(InstanceFinishedError);
    const again = await c.terminate(id, 'again').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(InstanceFinishedError);
    expect((again as InstanceFinishedError).runtimeStatus).toBe('Terminated');
    const after = await statusOf(id);
    expect(after.output).toEqual(reason);
    expect(after.history).toEqual(st.history);
  });

  it('terminates an instance while its activity runs; the late result changes nothing', async () => {
    const started = gate();
    const release = gate();
    let calls = 0;
    th = await createTestHub({
      orchestrators: { CallSlow: callSlow },
      activities: {
        Slow: async (x: string) => {
          calls++;
          started.open();
          await release.promise;
          return `${x}>slow`;
        },
      },
    });
    const c = th.client;
    const worker = th.workers[0]!;
    const id = await c.startNew('CallSlow', { instanceId: 'term-activity', input: 'in' });
    await started.promise;
    await c.terminate(id, 'took too long');

    const st = await c.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Terminated');
    expect(st.output).toBe('took too long');
    expect(types(st.history)).toEqual([
      'OrchestratorStarted', 'ExecutionStarted', 'TaskScheduled', 'OrchestratorCompleted', 'ExecutionTerminated',
    ]);
    const stateBefore = await th.redis.hgetall(th.keys.state(id));

    // The activity finishes after the termination: its result is dropped.
    release.open();
    await until('the activity result to be handled', async () => worker.stats.activities, (n) => n === 1);
    await sleep(300);
    const after = await statusOf(id);
    expect(after.runtimeStatus).toBe('Terminated');
    expect(after.output).toBe('took too long');
    expect(after.history).toEqual(st.history);
    expect(await th.redis.hgetall(th.keys.state(id))).toEqual(stateBefore);
    expect(await th.redis.llen(th.keys.inbox(id))).toBe(0);
    expect(worker.stats.episodes).toBe(1);
    // The activity job completed normally (the dropped result is not a job failure), so it ran once.
    expect(calls).toBe(1);
    expect(await worker.backend.forInstance(id).activityQueue.getJobCountByTypes('failed', 'wait', 'delayed', 'active')).toBe(0);
  });

  it('refuses to terminate a finished instance (InstanceFinishedError) and a missing one (InstanceNotFoundError)', async () => {
    th = await createTestHub({ orchestrators: { Quick: quick } });
    const c = th.client;
    const id = await c.startNew('Quick', { instanceId: 'term-done', input: 42 });
    const done = await c.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    expect(done.runtimeStatus).toBe('Completed');

    const err = await c.terminate(id, 'too late').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InstanceFinishedError);
    expect((err as InstanceFinishedError).instanceId).toBe(id);
    expect((err as InstanceFinishedError).runtimeStatus).toBe('Completed');
    const after = await statusOf(id);
    expect(after.runtimeStatus).toBe('Completed');
    expect(after.output).toBe(42);
    expect(after.history).toEqual(done.history);

    const missing = await c.terminate('no-such-instance', 'x').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(InstanceNotFoundError);
    expect((missing as InstanceNotFoundError).instanceId).toBe('no-such-instance');
    expect(await c.getStatus('no-such-instance')).toBeUndefined();
    await expect(c.terminate('bad id!', 'x')).rejects.toBeInstanceOf(ValidationError);
  });

  it('terminates running sub-orchestrations too with { recursive: true }', async () => {
    th = await createTestHub({
      orchestrators: {
        WaitForGo: waitForGo,
        Parent: function* (ctx) {
          return yield ctx.callSubOrchestrator('WaitForGo', 'child', 'term-child');
        },
      },
    });
    const c = th.client;
    await c.startNew('Parent', { instanceId: 'term-parent' });
    await untilRunning('term-child');
    await untilRunning('term-parent');
    await c.terminate('term-parent', 'shutdown', { recursive: true });
    const [parent, child] = await Promise.all([
      c.waitForCompletion('term-parent', { timeoutMs: 10_000 }),
      c.waitForCompletion('term-child', { timeoutMs: 10_000 }),
    ]);
    expect(parent.runtimeStatus).toBe('Terminated');
    expect(parent.output).toBe('shutdown');
    expect(child.runtimeStatus).toBe('Terminated');
    expect(child.output).toBe('shutdown');
  });
});

describe('suspend and resume', () => {
  it('makes no progress while suspended, even when the awaited event arrives; resumes and completes', async () => {
    th = await createTestHub({ orchestrators: { EventThenEcho: eventThenEcho }, activities: { Echo: echo } });
    const c = th.client;
    const worker = th.workers[0]!;
    const id = await c.startNew('EventThenEcho', { instanceId: 'susp-event', input: 'in' });
    const running = await untilRunning(id);

    // Resuming an instance that is not suspended is refused.
    const notSuspended = await c.resume(id, 'nothing to resume').catch((e: unknown) => e);
    expect(notSuspended).toBeInstanceOf(InvalidInstanceStateError);
    expect((notSuspended as InvalidInstanceStateError).runtimeStatus).toBe('Running');
    expect((notSuspended as InvalidInstanceStateError).operation).toBe('resume');

    await c.suspend(id, 'maintenance');
    expect((await statusOf(id)).runtimeStatus).toBe('Suspended');
    expect(ids((await c.list({ status: 'Suspended' })).instances)).toEqual([id]);
    expect((await c.list({ status: 'Running' })).instances).toEqual([]);
    await expect(c.suspend(id, 'twice')).rejects.toBeInstanceOf(InvalidInstanceStateError);

    const episodesBefore = worker.stats.episodes;
    await c.raiseEvent(id, 'a', 'A');
    await sleep(300);
    const suspended = await statusOf(id);
    expect(suspended.runtimeStatus).toBe('Suspended');
    expect(suspended.episodes).toBe(running.episodes);
    expect(suspended.history).toEqual(running.history);
    expect(worker.stats.episodes).toBe(episodesBefore);
    // The event waits in the inbox, behind the suspension marker.
    expect(await th.redis.llen(th.keys.inbox(id))).toBe(2);

    await c.resume(id, 'done');
    const st = await c.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('in+A>echo!');
    expect(types(st.history)).toEqual([
      'OrchestratorStarted', 'ExecutionStarted', 'OrchestratorCompleted',
      'OrchestratorStarted', 'ExecutionSuspended', 'EventRaised', 'ExecutionResumed', 'TaskScheduled', 'OrchestratorCompleted',
      'OrchestratorStarted', 'TaskCompleted', 'ExecutionCompleted', 'OrchestratorCompleted',
    ]);
    expect(st.history!.find((e) => e.type === 'ExecutionSuspended')).toMatchObject({ reason: 'maintenance' });
    expect(st.history!.find((e) => e.type === 'ExecutionResumed')).toMatchObject({ reason: 'done' });

    // A finished instance can be neither suspended nor resumed.
    for (const op of ['suspend', 'resume'] as const) {
      const err = await c[op](id).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidInstanceStateError);
      expect((err as InvalidInstanceStateError).runtimeStatus).toBe('Completed');
      expect((err as InvalidInstanceStateError).operation).toBe(op);
    }
    await expect(c.suspend('no-such-instance')).rejects.toBeInstanceOf(InstanceNotFoundError);
    await expect(c.resume('no-such-instance')).rejects.toBeInstanceOf(InstanceNotFoundError);
    expect((await statusOf(id)).history).toEqual(st.history);
  });

  it('holds an activity result that arrives while suspended until it is resumed', async () => {
    const started = gate();
    const release = gate();
    th = await createTestHub({
      orchestrators: { SlowThenEcho: slowThenEcho },
      activities: {
        Slow: async (x: string) => {
          started.open();
          await release.promise;
          return `${x}>slow`;
        },
        Echo: echo,
      },
    });
    const c = th.client;
    const worker = th.workers[0]!;
    const id = await c.startNew('SlowThenEcho', { instanceId: 'susp-activity', input: 'in' });
    await started.promise;
    const before = await untilRunning(id);
    await c.suspend(id);

    release.open();
    await until('the activity result to be delivered', async () => worker.stats.activities, (n) => n === 1);
    await sleep(300);
    const suspended = await statusOf(id);
    expect(suspended.runtimeStatus).toBe('Suspended');
    expect(suspended.episodes).toBe(before.episodes);
    expect(suspended.history).toEqual(before.history);
    expect(worker.stats.activities).toBe(1);

    await c.resume(id);
    const st = await c.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('in>slow>echo');
    expect(types(st.history)).toEqual([
      'OrchestratorStarted', 'ExecutionStarted', 'TaskScheduled', 'OrchestratorCompleted',
      'OrchestratorStarted', 'ExecutionSuspended', 'TaskCompleted', 'ExecutionResumed', 'TaskScheduled', 'OrchestratorCompleted',
      'OrchestratorStarted', 'TaskCompleted', 'ExecutionCompleted', 'OrchestratorCompleted',
    ]);
  });

  it('suspends a Pending instance before any worker ran it, and resumes it to Pending', async () => {
    th = await createTestHub({ orchestrators: { Quick: quick } }, { startWorker: false });
    const c = th.client;
    const id = await c.startNew('Quick', { instanceId: 'susp-pending', input: 'p' });
    expect((await statusOf(id)).runtimeStatus).toBe('Pending');
    await c.suspend(id, 'not yet');
    expect((await statusOf(id)).runtimeStatus).toBe('Suspended');

    // A worker takes the queued first episode and skips it: the suspension made it stale.
    const worker = await th.startWorker();
    await until('the queued episode to be skipped', async () => worker.stats.staleEpisodes, (n) => n === 1);
    await sleep(200);
    const suspended = await statusOf(id);
    expect(suspended.runtimeStatus).toBe('Suspended');
    expect(suspended.episodes).toBe(0);
    expect(suspended.history).toEqual([]);
    expect(worker.stats.episodes).toBe(0);
    await worker.close();

    await c.resume(id, 'go');
    const resumed = await statusOf(id);
    expect(resumed.runtimeStatus).toBe('Pending');
    expect(ids((await c.list({ status: 'Pending' })).instances)).toEqual([id]);
    expect((await c.list({ status: 'Suspended' })).instances).toEqual([]);

    await th.startWorker();
    const st = await c.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('p');
    expect(st.episodes).toBe(1);
    expect(types(st.history)).toEqual([
      'OrchestratorStarted', 'ExecutionStarted', 'ExecutionSuspended', 'ExecutionResumed', 'ExecutionCompleted', 'OrchestratorCompleted',
    ]);
  });
});

describe('purge', () => {
  it('deletes every key and index entry of a finished instance and nothing of another one', async () => {
    th = await createTestHub({
      orchestrators: {
        Work: function* (ctx: OrchestrationContext, input: string) {
          const a: string = yield ctx.callActivity('Echo', input);
          yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 20));
          const b: string = yield ctx.waitForExternalEvent('b');
          return `${a}|${b}`;
        },
      },
      activities: { Echo: echo },
    });
    const c = th.client;
    const victim = 'purge-victim';
    const other = 'purge-keeper';
    // The victim's event data (and so its output) is over the claim-check threshold: stored under keys of its own.
    const eventData = (id: string) => (id === victim ? 'B'.repeat(100_000) : 'B');
    for (const id of [victim, other]) {
      await c.startNew('Work', { instanceId: id, input: id });
      await c.raiseEvent(id, 'b', eventData(id));
    }
    for (const id of [victim, other]) expect((await c.waitForCompletion(id, { timeoutMs: 10_000 })).output).toBe(`${id}>echo|${eventData(id)}`);
    const otherBefore = await statusOf(other);
    const otherIndex = await indexEntriesOf(other);
    expect(otherIndex).toHaveLength(3);
    const payloadKeys = (await keysNaming(victim)).filter((k) => k.startsWith(`${th!.keys.claims(victim)}:`));
    expect(payloadKeys).toHaveLength(2);
    expect(await keysNaming(victim)).toEqual(expect.arrayContaining([th.keys.state(victim), th.keys.history(victim), th.keys.claims(victim), ...payloadKeys]));
    expect(await indexEntriesOf(victim)).toHaveLength(3);

    await c.purge(victim);

    // The instance's own keys, its payloads stored apart, its index entries and outbox entries are gone at once.
    expect(await th.redis.exists(...th.keys.instanceKeys(victim), th.keys.claims(victim), ...payloadKeys)).toBe(0);
    expect(await indexEntriesOf(victim)).toEqual([]);
    expect(await outboxEntriesOf(victim)).toEqual([]);
    expect(await c.getStatus(victim)).toBeUndefined();
    expect(await c.backend.getHistory(victim)).toEqual([]);
    expect(ids((await c.list()).instances)).toEqual([other]);
    // No key of the hub names the instance once the jobs still in flight at the purge have finished.
    await until(`no key naming ${victim}`, () => keysNaming(victim), (keys) => keys.length === 0, 5000);

    // The other instance is untouched.
    expect(await statusOf(other)).toEqual(otherBefore);
    expect(await indexEntriesOf(other)).toEqual(otherIndex);

    const again = await c.purge(victim).catch((e: unknown) => e);
    expect(again).toBeInstanceOf(InstanceNotFoundError);
  });

  it('removes the delayed timer job of a timer that lost a race', async () => {
    th = await createTestHub({
      orchestrators: {
        Approval: function* (ctx: OrchestrationContext) {
          const deadline = ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 3_600_000));
          const approval = ctx.waitForExternalEvent('approve');
          const winner = yield ctx.any([approval, deadline]);
          return winner === approval ? `approved by ${approval.result}` : 'expired';
        },
      },
    });
    const c = th.client;
    const id = 'purge-race';
    await c.startNew('Approval', { instanceId: id });
    const running = await untilRunning(id);
    const timerJob = `t-${id}-${running.executionId}-0`;
    await until('the timer job to be delayed', () => c.backend.forInstance(id).orchestratorQueue.getJobState(timerJob), (s) => s === 'delayed');
    await c.raiseEvent(id, 'approve', 'alice');
    expect((await c.waitForCompletion(id, { timeoutMs: 10_000 })).output).toBe('approved by alice');
    expect(await c.backend.forInstance(id).orchestratorQueue.getJobState(timerJob)).toBe('delayed');

    await c.purge(id);
    expect(await c.backend.forInstance(id).orchestratorQueue.getJobState(timerJob)).toBe('unknown');
    expect(await th.redis.exists(...th.keys.instanceKeys(id))).toBe(0);
    expect(await indexEntriesOf(id)).toEqual([]);
    await until(`no key naming ${id}`, () => keysNaming(id), (keys) => keys.length === 0, 5000);
  });

  it('refuses to purge an instance that has not finished and changes nothing', async () => {
    th = await createTestHub({ orchestrators: { WaitForGo: waitForGo } });
    const c = th.client;
    const id = await c.startNew('WaitForGo', { instanceId: 'purge-running', input: 'r' });
    await untilRunning(id);
    const snapshot = async () => ({
      state: await th!.redis.hgetall(th!.keys.state(id)),
      history: await th!.redis.xrange(th!.keys.history(id), '-', '+'),
      index: await indexEntriesOf(id),
    });
    const before = await snapshot();
    expect(before.index).toHaveLength(3);

    const err = await c.purge(id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInstanceStateError);
    expect((err as InvalidInstanceStateError).runtimeStatus).toBe('Running');
    expect((err as InvalidInstanceStateError).operation).toBe('purge');
    expect(await snapshot()).toEqual(before);

    await c.suspend(id);
    const suspended = await snapshot();
    const err2 = await c.purge(id).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(InvalidInstanceStateError);
    expect((err2 as InvalidInstanceStateError).runtimeStatus).toBe('Suspended');
    expect(await snapshot()).toEqual(suspended);

    await c.resume(id);
    await c.raiseEvent(id, 'go', 'now');
    const st = await c.waitForCompletion(id, { timeoutMs: 10_000 });
    expect(st.output).toBe('r:now');
    await c.purge(id);
    expect(await c.getStatus(id)).toBeUndefined();
    await expect(c.purge('no-such-instance')).rejects.toBeInstanceOf(InstanceNotFoundError);
  });

  it('drops the late result of an activity of a purged instance without retrying the activity', async () => {
    const started = gate();
    const release = gate();
    let calls = 0;
    let returned = 0;
    th = await createTestHub({
      orchestrators: { CallSlow: callSlow },
      activities: {
        Slow: async (x: string) => {
          calls++;
          started.open();
          await release.promise;
          returned++;
          return x;
        },
      },
    });
    const c = th.client;
    const worker = th.workers[0]!;
    const id = await c.startNew('CallSlow', { instanceId: 'purge-late', input: 'x' });
    await started.promise;
    await c.terminate(id, 'stop');
    await c.purge(id);
    release.open();
    await until('the activity to return', async () => returned, (n) => n >= 1);
    // Long enough for BullMQ's first retry (backoff 200 ms), had the job failed.
    await sleep(600);
    expect(calls).toBe(1);
    expect(worker.stats.activities).toBe(1);
    expect(await c.getStatus(id)).toBeUndefined();
    expect(await worker.backend.forInstance(id).activityQueue.getJobCountByTypes('failed', 'wait', 'delayed', 'active')).toBe(0);
    await until(`no key naming ${id}`, () => keysNaming(id), (keys) => keys.length === 0, 5000);
  });

  it('purgeInstances purges only the finished instances that match the filter and returns the count', async () => {
    th = await createTestHub({ orchestrators: { Quick: quick, Boom: boom, WaitForGo: waitForGo } });
    const c = th.client;
    const oldCompleted = ['old-c0', 'old-c1', 'old-c2'];
    for (const id of oldCompleted) await c.startNew('Quick', { instanceId: id, input: id });
    await c.startNew('Boom', { instanceId: 'old-failed' });
    await c.startNew('WaitForGo', { instanceId: 'old-terminated', input: 't' });
    await c.startNew('WaitForGo', { instanceId: 'old-running', input: 'r' });
    for (const id of [...oldCompleted, 'old-failed']) await c.waitForCompletion(id, { timeoutMs: 10_000 });
    await untilRunning('old-terminated');
    await c.terminate('old-terminated', 'bye');
    await untilRunning('old-running');
    const old = [...oldCompleted, 'old-failed', 'old-terminated', 'old-running'];
    const createdTo = new Date(Math.max(...(await Promise.all(old.map(statusOf))).map((s) => s.createdAt.getTime())));
    while (Date.now() <= createdTo.getTime()) await sleep(2);
    const newCompleted = ['new-c0', 'new-c1'];
    for (const id of newCompleted) await c.startNew('Quick', { instanceId: id, input: id });
    for (const id of newCompleted) await c.waitForCompletion(id, { timeoutMs: 10_000 });
    const remaining = async () => ids((await c.list()).instances).sort();

    expect(await c.purgeInstances({ status: 'Completed', createdTo })).toBe(3);
    expect(await remaining()).toEqual(['new-c0', 'new-c1', 'old-failed', 'old-running', 'old-terminated']);
    for (const id of oldCompleted) expect(await indexEntriesOf(id)).toEqual([]);

    expect(await c.purgeInstances({ status: 'Running' })).toBe(0);
    expect(await c.purgeInstances({ status: 'Completed', createdTo })).toBe(0);
    // Default statuses: Completed, Failed and Terminated.
    expect(await c.purgeInstances({ createdTo })).toBe(2);
    expect(await remaining()).toEqual(['new-c0', 'new-c1', 'old-running']);
    expect(await c.purgeInstances({ name: 'Quick' })).toBe(2);
    expect(await remaining()).toEqual(['old-running']);
    expect(await c.purgeInstances({ all: true })).toBe(0);
    expect((await statusOf('old-running')).runtimeStatus).toBe('Running');
    await expect(c.purgeInstances({ status: 'Done' as RuntimeStatus })).rejects.toBeInstanceOf(ValidationError);
  });

  it('purgeInstances refuses an empty filter and purges nothing; { all: true } purges every finished instance', async () => {
    th = await createTestHub({ orchestrators: { Quick: quick, WaitForGo: waitForGo } });
    const c = th.client;
    for (const id of ['e-c0', 'e-c1']) await c.startNew('Quick', { instanceId: id, input: id });
    for (const id of ['e-c0', 'e-c1']) await c.waitForCompletion(id, { timeoutMs: 10_000 });
    await c.startNew('WaitForGo', { instanceId: 'e-running', input: 'r' });
    await untilRunning('e-running');
    const remaining = async () => ids((await c.list()).instances).sort();

    const empty: [string, unknown, RegExp][] = [
      ['{}', {}, /^purgeInstances needs a filter: one of status, name, scheduleId, createdFrom, createdTo, or \{ all: true \}/],
      ['all undefined', { status: undefined, name: undefined }, /^purgeInstances needs a filter/],
      ['{ all: false }', { all: false }, /^purgeInstances needs a filter/],
      ['status: []', { status: [] }, /^purgeInstances: filter\.status is an empty list/],
      ['no filter at all', undefined, /^purgeInstances: filter must be an object/],
      ['null', null, /^purgeInstances: filter must be an object .*, got null$/],
      ["name: ''", { name: '' }, /Invalid orchestrator name ""/],
      ['an invalid date', { createdTo: new Date('not a date') }, /^purgeInstances: filter\.createdTo must be a valid Date/],
      ['all: "yes"', { all: 'yes' }, /^purgeInstances: filter\.all must be true or false, got string "yes"$/],
    ];
    for (const [what, filter, message] of empty) {
      const err = await c.purgeInstances(filter as never).catch((e: unknown) => e);
      expect(err, what).toBeInstanceOf(ValidationError);
      expect((err as Error).message, what).toMatch(message);
    }
    expect(await remaining()).toEqual(['e-c0', 'e-c1', 'e-running']);

    expect(await c.purgeInstances({ all: true })).toBe(2);
    expect(await remaining()).toEqual(['e-running']);
  });
});

describe('restart', () => {
  it('restarts a failed instance under its id with a new execution and the same input', async () => {
    let calls = 0;
    th = await createTestHub({
      orchestrators: {
        Flaky: function* (ctx: OrchestrationContext, input: { n: number }) {
          return yield ctx.callActivity('FlakyAct', input);
        },
      },
      activities: {
        FlakyAct: async (input: { n: number }) => {
          if (++calls === 1) throw new Error('first call fails');
          return `ok ${input.n}`;
        },
      },
    });
    const c = th.client;
    const input = { n: 7 };
    const id = await c.startNew('Flaky', { instanceId: 'restart-me', input });
    const failed = await c.waitForCompletion(id, { timeoutMs: 10_000 });
    expect(failed.runtimeStatus).toBe('Failed');

    expect(await c.restart(id)).toBe(id);
    const st = await c.waitForCompletion(id, { timeoutMs: 10_000, showHistory: true });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toBe('ok 7');
    expect(st.input).toEqual(input);
    expect(st.name).toBe('Flaky');
    expect(st.failure).toBeUndefined();
    expect(st.executionId).not.toBe(failed.executionId);
    // A fresh history: one ExecutionStarted, of the new execution; nothing of the failed one.
    const started = st.history!.filter((e) => e.type === 'ExecutionStarted');
    expect(started).toHaveLength(1);
    expect(started[0]).toMatchObject({ executionId: st.executionId, input });
    expect(types(st.history)).not.toContain('TaskFailed');
    expect(await indexEntriesOf(id)).toHaveLength(3);
    expect(ids((await c.list()).instances)).toEqual([id]);

    // A completed instance restarts too.
    expect(await c.restart(id)).toBe(id);
    const third = await c.waitForCompletion(id, { timeoutMs: 10_000 });
    expect(third.output).toBe('ok 7');
    expect(new Set([failed.executionId, st.executionId, third.executionId]).size).toBe(3);
    expect(calls).toBe(3);
  });

  it('restarts under a new instance id; refuses to restart a running instance under its own id', async () => {
    th = await createTestHub({ orchestrators: { Quick: quick, WaitForGo: waitForGo } });
    const c = th.client;
    const id = await c.startNew('Quick', { instanceId: 'orig', input: { v: 1 } });
    const orig = await c.waitForCompletion(id, { timeoutMs: 10_000 });

    expect(await c.restart(id, { newInstanceId: 'copy' })).toBe('copy');
    const copy = await c.waitForCompletion('copy', { timeoutMs: 10_000 });
    expect(copy).toMatchObject({ instanceId: 'copy', name: 'Quick', runtimeStatus: 'Completed', input: { v: 1 }, output: { v: 1 } });
    expect(copy.executionId).not.toBe(orig.executionId);
    const origAfter = await c.getStatus(id);
    expect(origAfter).toMatchObject({ runtimeStatus: 'Completed', executionId: orig.executionId, output: { v: 1 } });

    const running = await c.startNew('WaitForGo', { instanceId: 'busy', input: 'b' });
    const before = await untilRunning(running);
    const err = await c.restart(running).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidInstanceStateError);
    expect((err as InvalidInstanceStateError).runtimeStatus).toBe('Running');
    expect((err as InvalidInstanceStateError).operation).toBe('restart');
    const after = await statusOf(running);
    expect(after.executionId).toBe(before.executionId);
    expect(after.history).toEqual(before.history);

    // A copy of a running instance under a new id is a second instance; the original goes on.
    expect(await c.restart(running, { newInstanceId: 'busy-copy' })).toBe('busy-copy');
    await untilRunning('busy-copy');
    // The target id must not be taken by an unfinished instance.
    await expect(c.restart(id, { newInstanceId: 'busy' })).rejects.toBeInstanceOf(InstanceAlreadyExistsError);
    await expect(c.restart('no-such-instance')).rejects.toBeInstanceOf(InstanceNotFoundError);
    await c.raiseEvent('busy', 'go', 'one');
    await c.raiseEvent('busy-copy', 'go', 'two');
    expect((await c.waitForCompletion('busy', { timeoutMs: 10_000 })).output).toBe('b:one');
    expect((await c.waitForCompletion('busy-copy', { timeoutMs: 10_000 })).output).toBe('b:two');
  });
});

describe('list', () => {
  it('pages through 10,000 instances in creation order, every id once, and filters by name and creation time', async () => {
    th = await createTestHub({}, { startWorker: false });
    const c = th.client;
    const N = 10_000;
    const all = Array.from({ length: N }, (_, i) => `inst-${String(i).padStart(5, '0')}`);
    const nameOf = (i: number) => (i % 2 === 0 ? 'Even' : 'Odd');
    for (let b = 0; b < N; b += 500) {
      await Promise.all(all.slice(b, b + 500).map((instanceId, j) => c.startNew(nameOf(b + j), { instanceId, input: b + j })));
    }

    const full = await listAll({ pageSize: 1000 });
    expect(full.pages).toEqual(Array(10).fill(1000));
    expect(ids(full.instances)).toEqual(all);
    const createdAt = full.instances.map((s) => s.createdAt.getTime());
    for (let i = 1; i < N; i++) expect(createdAt[i]! >= createdAt[i - 1]!).toBe(true);
    expect(full.instances.every((s) => s.runtimeStatus === 'Pending')).toBe(true);
    expect(full.instances[1234]).toMatchObject({ instanceId: 'inst-01234', name: 'Even', input: 1234, episodes: 0 });

    const pending = await listAll({ status: 'Pending', pageSize: 1000 });
    expect(pending.pages).toEqual(Array(10).fill(1000));
    expect(ids(pending.instances)).toEqual(all);

    const odd = await listAll({ name: 'Odd', pageSize: 1000 });
    expect(odd.pages).toEqual(Array(5).fill(1000));
    expect(ids(odd.instances)).toEqual(all.filter((_, i) => i % 2 === 1));
    // Status and name: the status index is read and names filtered, so pages may be short.
    const evenPending = await listAll({ status: 'Pending', name: 'Even', pageSize: 1000 });
    expect(ids(evenPending.instances)).toEqual(all.filter((_, i) => i % 2 === 0));
    expect((await c.list({ name: 'Nobody' })).instances).toEqual([]);
    expect((await c.list({ status: 'Running' })).nextCursor).toBeUndefined();

    // Creation-time windows (both ends inclusive), alone and with a name.
    const from = new Date(createdAt[2500]!);
    const to = new Date(createdAt[7499]!);
    const inWindow = (i: number) => createdAt[i]! >= from.getTime() && createdAt[i]! <= to.getTime();
    const window = await listAll({ createdFrom: from, createdTo: to, pageSize: 1000 });
    expect(ids(window.instances)).toEqual(all.filter((_, i) => inWindow(i)));
    expect(ids((await listAll({ createdFrom: from, pageSize: 1000 })).instances)).toEqual(all.filter((_, i) => createdAt[i]! >= from.getTime()));
    expect(ids((await listAll({ createdTo: to, name: 'Odd', pageSize: 1000 })).instances)).toEqual(
      all.filter((_, i) => i % 2 === 1 && createdAt[i]! <= to.getTime()),
    );
    expect((await c.list({ createdFrom: new Date(createdAt[N - 1]! + 1) })).instances).toEqual([]);
    expect((await c.list({ createdTo: new Date(createdAt[0]! - 1) })).instances).toEqual([]);

    // The default page size is 100.
    const first = await c.list();
    expect(ids(first.instances)).toEqual(all.slice(0, 100));
    expect(ids((await c.list({ cursor: first.nextCursor! })).instances)).toEqual(all.slice(100, 200));
  }, 60_000);

  it('rejects an invalid page size, status, name or cursor with ValidationError', async () => {
    th = await createTestHub({ orchestrators: { Quick: quick } }, { startWorker: false });
    const c = th.client;
    for (let i = 0; i < 3; i++) await c.startNew('Quick', { instanceId: `v-${i}` });
    for (const pageSize of [0, -1, 1001, 2.5, Number.NaN]) {
      await expect(c.list({ pageSize }), `pageSize ${pageSize}`).rejects.toBeInstanceOf(ValidationError);
    }
    await expect(c.list({ status: 'Done' as RuntimeStatus })).rejects.toBeInstanceOf(ValidationError);
    await expect(c.list({ status: ['Pending', 'Nope' as RuntimeStatus] })).rejects.toBeInstanceOf(ValidationError);
    await expect(c.list({ name: 'bad name!' })).rejects.toBeInstanceOf(ValidationError);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    for (const cursor of ['not-a-cursor', b64({ scan: 1, after: '' }), b64({ scan: -1, after: '' }), b64({ scan: 0 }), b64([1, 2])]) {
      await expect(c.list({ cursor }), `cursor ${cursor}`).rejects.toBeInstanceOf(ValidationError);
    }
    // A cursor of a two-status query does not fit a query with one scan.
    const twoStatuses = await c.list({ status: ['Running', 'Pending'], pageSize: 1 });
    expect(ids(twoStatuses.instances)).toEqual(['v-0']);
    await expect(c.list({ cursor: twoStatuses.nextCursor! })).rejects.toBeInstanceOf(ValidationError);
    const page = await c.list({ pageSize: 2 });
    expect(ids(page.instances)).toEqual(['v-0', 'v-1']);
    expect(ids((await c.list({ pageSize: 2, cursor: page.nextCursor! })).instances)).toEqual(['v-2']);
  });

  it('filters by status as instances move: Pending, Running, Completed, Failed, Suspended, Terminated', async () => {
    th = await createTestHub({ orchestrators: { Quick: quick, Boom: boom, WaitForGo: waitForGo } });
    const c = th.client;
    // Ids sort like their creation order, so ties on the creation millisecond keep that order too.
    const plan: [string, string][] = [
      ['s00-q', 'Quick'], ['s01-w', 'WaitForGo'], ['s02-b', 'Boom'], ['s03-q', 'Quick'], ['s04-w', 'WaitForGo'],
      ['s05-q', 'Quick'], ['s06-b', 'Boom'], ['s07-w', 'WaitForGo'], ['s08-q', 'Quick'], ['s09-w', 'WaitForGo'],
    ];
    for (const [id, name] of plan) await c.startNew(name, { instanceId: id, input: id });
    const of = (name: string) => plan.filter(([, n]) => n === name).map(([id]) => id);
    for (const id of [...of('Quick'), ...of('Boom')]) await c.waitForCompletion(id, { timeoutMs: 10_000 });
    for (const id of of('WaitForGo')) await untilRunning(id);
    await c.suspend('s07-w');
    await c.terminate('s09-w', 'stop');

    const byStatus = async (status: RuntimeStatus | RuntimeStatus[]) => ids((await listAll({ status })).instances);
    expect(await byStatus('Completed')).toEqual(['s00-q', 's03-q', 's05-q', 's08-q']);
    expect(await byStatus('Failed')).toEqual(['s02-b', 's06-b']);
    expect(await byStatus('Running')).toEqual(['s01-w', 's04-w']);
    expect(await byStatus('Suspended')).toEqual(['s07-w']);
    expect(await byStatus('Terminated')).toEqual(['s09-w']);
    expect(await byStatus('Pending')).toEqual([]);
    // Several statuses: one status after the other, in the order given, each in creation order.
    expect(await byStatus(['Terminated', 'Failed', 'Running'])).toEqual(['s09-w', 's02-b', 's06-b', 's01-w', 's04-w']);
    const paged = await listAll({ status: ['Completed', 'Failed', 'Running'], pageSize: 3 });
    expect(ids(paged.instances)).toEqual(['s00-q', 's03-q', 's05-q', 's08-q', 's02-b', 's06-b', 's01-w', 's04-w']);

    const waiters = (await listAll({ name: 'WaitForGo', pageSize: 2 })).instances;
    expect(waiters.map((s) => [s.instanceId, s.runtimeStatus])).toEqual([
      ['s01-w', 'Running'], ['s04-w', 'Running'], ['s07-w', 'Suspended'], ['s09-w', 'Terminated'],
    ]);
    expect(ids((await listAll({ name: 'WaitForGo', status: 'Running' })).instances)).toEqual(['s01-w', 's04-w']);
    expect(ids((await listAll({ name: 'Quick', status: ['Failed', 'Running'] })).instances)).toEqual([]);
    expect(ids((await listAll({ pageSize: 4 })).instances)).toEqual(plan.map(([id]) => id));

    // Moving on moves the instance between status indexes.
    await c.raiseEvent('s01-w', 'go', 'x');
    await c.waitForCompletion('s01-w', { timeoutMs: 10_000 });
    expect(await byStatus('Running')).toEqual(['s04-w']);
    expect(await byStatus('Completed')).toEqual(['s00-q', 's01-w', 's03-q', 's05-q', 's08-q']);
  });
});
