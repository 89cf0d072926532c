/**
 * Schedules on a real Redis, in one process: what a tick starts (one instance, whose id and state
 * name the schedule and the tick), the overlap policies (skip, buffer one, allow all), pause and
 * resume, trigger now, the catch-up of ticks missed while no worker ran, update, delete, list, and
 * delayed starts (`startNew(name, { startAt })`). Three worker processes and a SIGKILL:
 * schedules-processes.test.ts.
 */
import { ScheduleAlreadyExistsError, ScheduleNotFoundError } from '@durabull/client';
import type { OrchestrationContext } from '@durabull/core';
import { checkInstance, scheduleInstanceId } from '@durabull/redis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { waitUntil } from './helpers/orchestration.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.cleanup();
  th = undefined;
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

const functions = {
  orchestrators: {
    /** Returns its input at once. */
    Quick: function* (_ctx: OrchestrationContext, input: unknown) {
      return input;
    },
    /** Runs until it gets the event `go`. */
    UntilGo: function* (ctx: OrchestrationContext) {
      yield ctx.waitForExternalEvent('go');
      return 'went';
    },
  },
};

/** The instances a schedule started, oldest tick first. */
async function instancesOf(t: TestHub, scheduleId: string) {
  const { instances } = await t.client.list({ scheduleId, pageSize: 1000 });
  return instances.sort((a, b) => a.schedule!.tick.getTime() - b.schedule!.tick.getTime());
}

describe('schedules', () => {
  it('starts one instance per tick, named after the schedule and the tick, which its state records; list filters by schedule', async () => {
    th = await createTestHub(functions);
    const s = await th.client.schedules.create({ scheduleId: 'every-second', orchestrator: 'Quick', input: { n: 1 }, intervalMs: 1000 });
    expect(s).toMatchObject({ scheduleId: 'every-second', orchestrator: 'Quick', input: { n: 1 }, intervalMs: 1000, overlap: 'skip', paused: false, revision: 1 });
    expect(s.nextRunAt!.getTime() % 1000).toBe(0);
    await th.client.startNew('Quick', { instanceId: 'not-scheduled' });
    await waitUntil('three ticks to start instances', async () => (await instancesOf(th!, 'every-second')).length >= 3);
    await th.client.schedules.pause('every-second');
    const started = await instancesOf(th, 'every-second');
    for (const st of started) {
      // Ticks are multiples of the interval (since the epoch), and the id is derived from the tick.
      expect(st.schedule!.tick.getTime() % 1000).toBe(0);
      expect(st.instanceId).toBe(scheduleInstanceId('every-second', st.schedule!.tick.getTime()));
      expect(st.instanceId).toMatch(/^every-second@\d{8}T\d{6}\.\d{3}Z$/);
      expect(st.name).toBe('Quick');
    }
    const done = await th.client.waitForCompletion(started[0]!.instanceId);
    expect(done.output).toEqual({ n: 1 });
    expect(done.schedule).toEqual(started[0]!.schedule);
    // Consecutive ticks: none skipped while the last instance finished at once.
    const ticks = started.map((st) => st.schedule!.tick.getTime());
    expect(ticks.slice(1).map((t, k) => t - ticks[k]!)).toEqual(ticks.slice(1).map(() => 1000));
    const info = await th.client.schedules.get('every-second');
    expect(info!.started).toBe(started.length);
    expect(info!.lastInstanceId).toBe(started.at(-1)!.instanceId);
    // Only the schedule's instances are listed for it.
    expect(started.map((st) => st.instanceId)).not.toContain('not-scheduled');
  });

  it('skip: a tick while the last instance runs starts nothing; the first tick after it finished does', { timeout: 60_000 }, async () => {
    th = await createTestHub(functions);
    await th.client.schedules.create({ scheduleId: 'skipper', orchestrator: 'UntilGo', intervalMs: 1000, overlap: 'skip' });
    await waitUntil('two ticks to be skipped', async () => (await th!.client.schedules.get('skipper'))!.skipped >= 2, 20_000);
    const [first, ...others] = await instancesOf(th, 'skipper');
    expect(others).toHaveLength(0);
    expect(first!.runtimeStatus).toBe('Running');
    await th.client.raiseEvent(first!.instanceId, 'go');
    await waitUntil('a second instance', async () => (await instancesOf(th!, 'skipper')).length >= 2, 20_000);
    await th.client.schedules.pause('skipper');
    const [a, b] = await instancesOf(th, 'skipper');
    // The skipped ticks between them started nothing.
    expect(b!.schedule!.tick.getTime() - a!.schedule!.tick.getTime()).toBeGreaterThanOrEqual(3000);
  });

  it('bufferOne: one tick waits for the last instance and starts once it has finished; the others are skipped', { timeout: 60_000 }, async () => {
    th = await createTestHub(functions);
    await th.client.schedules.create({ scheduleId: 'buffered', orchestrator: 'UntilGo', intervalMs: 1000, overlap: 'bufferOne' });
    await waitUntil('a tick buffered and one skipped', async () => {
      const s = (await th!.client.schedules.get('buffered'))!;
      return s.bufferedTick !== undefined && s.skipped >= 1;
    }, 20_000);
    const s = (await th.client.schedules.get('buffered'))!;
    const [first, ...others] = await instancesOf(th, 'buffered');
    expect(others).toHaveLength(0);
    // The tick right after the first one is the one that waits.
    expect(s.bufferedTick!.getTime()).toBe(first!.schedule!.tick.getTime() + 1000);
    await th.client.raiseEvent(first!.instanceId, 'go');
    await waitUntil('the buffered tick to start', async () => (await instancesOf(th!, 'buffered')).length >= 2, 20_000);
    await th.client.schedules.pause('buffered');
    const [, second] = await instancesOf(th, 'buffered');
    expect(second!.schedule!.tick.getTime()).toBe(s.bufferedTick!.getTime());
    expect(second!.instanceId).toBe(scheduleInstanceId('buffered', s.bufferedTick!.getTime()));
  });

  it('a paused schedule starts nothing while another ticks, and has no job scheduler; resumed, it starts again', { timeout: 60_000 }, async () => {
    th = await createTestHub(functions);
    const { orchestratorQueue } = th.client.backend.partitions[0]!;
    await th.client.schedules.create({ scheduleId: 'paused', orchestrator: 'Quick', intervalMs: 1000, paused: true });
    await th.client.schedules.create({ scheduleId: 'control', orchestrator: 'Quick', intervalMs: 1000 });
    expect(await orchestratorQueue.getJobScheduler('paused')).toBeUndefined();
    expect((await th.client.schedules.get('paused'))!.nextRunAt).toBeUndefined();
    await waitUntil('the control schedule to start three instances', async () => (await instancesOf(th!, 'control')).length >= 3, 20_000);
    expect(await instancesOf(th, 'paused')).toHaveLength(0);

    // Pausing a running schedule removes its job scheduler; the paused one resumes.
    await th.client.schedules.pause('control');
    expect(await orchestratorQueue.getJobScheduler('control')).toBeUndefined();
    await th.client.schedules.resume('paused');
    await waitUntil('the resumed schedule to start an instance', async () => (await instancesOf(th!, 'paused')).length >= 1, 20_000);
    expect((await th.client.schedules.get('paused'))!.paused).toBe(false);
  });

  it('trigger starts an instance now (also while paused) under the overlap policy, or the one given', async () => {
    th = await createTestHub(functions);
    await th.client.schedules.create({ scheduleId: 'manual', orchestrator: 'UntilGo', cron: '0 0 1 1 *', paused: true });
    const a = await th.client.schedules.trigger('manual');
    expect(a.outcome).toBe('started');
    const st = await th.client.getStatus(a.instanceId!);
    expect(st!.schedule!.scheduleId).toBe('manual');
    // The first one runs: skipped under the schedule's policy, started with allowAll.
    await sleep(5);
    expect((await th.client.schedules.trigger('manual')).outcome).toBe('skipped');
    const c = await th.client.schedules.trigger('manual', { overlap: 'allowAll' });
    expect(c.outcome).toBe('started');
    expect(c.instanceId).not.toBe(a.instanceId);
    expect((await instancesOf(th, 'manual')).map((s) => s.instanceId).sort()).toEqual([a.instanceId, c.instanceId].sort());
  });

  it('catches up the ticks missed while no worker ran, within the catch-up window', { timeout: 60_000 }, async () => {
    th = await createTestHub(functions, { startWorker: false });
    const { orchestratorQueue } = th.client.backend.partitions[0]!;
    await th.client.schedules.create({ scheduleId: 'all-missed', orchestrator: 'Quick', intervalMs: 1000, overlap: 'allowAll', allowUnknownName: true });
    await th.client.schedules.create({ scheduleId: 'window', orchestrator: 'Quick', intervalMs: 1000, overlap: 'allowAll', catchupWindowMs: 1000, allowUnknownName: true });
    const firstTick = (await orchestratorQueue.getJobScheduler('all-missed'))!.next!;
    // No worker for three and a half ticks at least.
    await waitUntil('three ticks to pass', () => Date.now() > firstTick + 3500, 10_000);
    await th.startWorker();
    await waitUntil('the missed ticks to be caught up', async () => (await instancesOf(th!, 'all-missed')).length >= 4, 20_000);
    await th.client.schedules.pause('all-missed');
    await th.client.schedules.pause('window');
    const ticks = (await instancesOf(th, 'all-missed')).map((s) => s.schedule!.tick.getTime());
    // From the first tick on, every one: none lost while no worker ran.
    expect(ticks[0]).toBe(firstTick);
    expect(ticks.slice(1).map((t, k) => t - ticks[k]!)).toEqual(ticks.slice(1).map(() => 1000));
    // With a window of one second, the ticks missed for longer were skipped.
    const w = (await th.client.schedules.get('window'))!;
    expect(w.skipped).toBeGreaterThanOrEqual(2);
    const wTicks = (await instancesOf(th, 'window')).map((s) => s.schedule!.tick.getTime());
    expect(wTicks[0]).toBeGreaterThan(firstTick);
  });

  it('update changes what the next ticks start; delete removes the schedule and its job scheduler but not its instances', async () => {
    th = await createTestHub(functions);
    const { orchestratorQueue } = th.client.backend.partitions[0]!;
    await th.client.schedules.create({ scheduleId: 'changing', orchestrator: 'Quick', input: 'v1', intervalMs: 1000 });
    await expect(th.client.schedules.create({ scheduleId: 'changing', orchestrator: 'Quick', intervalMs: 2000 })).rejects.toBeInstanceOf(ScheduleAlreadyExistsError);
    const updated = await th.client.schedules.update('changing', { input: 'v2', cron: '*/1 * * * * *', timeZone: 'Europe/Paris' });
    expect(updated).toMatchObject({ input: 'v2', cron: '*/1 * * * * *', timeZone: 'Europe/Paris', revision: 2 });
    expect(updated.intervalMs).toBeUndefined();
    await waitUntil('an instance with the new input', async () => {
      for (const st of await instancesOf(th!, 'changing')) if (st.input === 'v2') return true;
      return false;
    });
    await th.client.schedules.delete('changing');
    expect(await th.client.schedules.get('changing')).toBeUndefined();
    expect(await orchestratorQueue.getJobScheduler('changing')).toBeUndefined();
    expect((await instancesOf(th, 'changing')).length).toBeGreaterThan(0);
    await expect(th.client.schedules.pause('changing')).rejects.toBeInstanceOf(ScheduleNotFoundError);
    await expect(th.client.schedules.update('changing', { input: 1 })).rejects.toBeInstanceOf(ScheduleNotFoundError);
  });

  it('lists schedules in id order, a page at a time', async () => {
    th = await createTestHub(functions);
    for (const id of ['c', 'a', 'b']) await th.client.schedules.create({ scheduleId: id, orchestrator: 'Quick', cron: '0 3 * * *', paused: true });
    const p1 = await th.client.schedules.list({ pageSize: 2 });
    expect(p1.schedules.map((s) => s.scheduleId)).toEqual(['a', 'b']);
    const p2 = await th.client.schedules.list({ pageSize: 2, cursor: p1.nextCursor! });
    expect(p2.schedules.map((s) => s.scheduleId)).toEqual(['c']);
    expect(p2.nextCursor).toBeUndefined();
  });
});

describe('delayed start', () => {
  it('keeps an instance Pending until its startAt, then runs it', async () => {
    th = await createTestHub(functions);
    const startAt = new Date(Date.now() + 1500);
    const id = await th.client.startNew('Quick', { input: 'later', startAt });
    const pending = await th.client.getStatus(id, { showHistory: true });
    expect(pending!.runtimeStatus).toBe('Pending');
    expect(pending!.scheduledStartTime).toEqual(startAt);
    expect(pending!.history).toEqual([]);
    const done = await th.client.waitForCompletion(id, { showHistory: true });
    expect(done.output).toBe('later');
    const started = done.history!.find((e) => e.type === 'ExecutionStarted');
    expect(started).toMatchObject({ scheduledStartTime: startAt.getTime() });
    // The first episode ran no earlier than asked.
    expect(done.history![0]!.timestamp).toBeGreaterThanOrEqual(startAt.getTime());
  });

  it('keeps the delay when the start reaches BullMQ through the outbox sweep (its client died before queueing it)', async () => {
    th = await createTestHub(functions, { sweepIntervalMs: 300 });
    const backend = th.client.backend.forInstance('swept-later');
    // The client "dies" after the start's script, before it queues the first episode.
    const add = backend.orchestratorQueue.add.bind(backend.orchestratorQueue);
    backend.orchestratorQueue.add = (() => Promise.reject(new Error('client died'))) as never;
    const startAt = Date.now() + 2500;
    await expect(th.client.startNew('Quick', { instanceId: 'swept-later', input: 'x', startAt })).rejects.toThrow('client died');
    backend.orchestratorQueue.add = add;
    const done = await th.client.waitForCompletion('swept-later', { showHistory: true });
    expect(done.output).toBe('x');
    expect(done.history![0]!.timestamp).toBeGreaterThanOrEqual(startAt);
  });

  it("keeps the delay when a delayed start's lost wake is re-queued by the checker", async () => {
    th = await createTestHub(functions);
    const startAt = Date.now() + 2500;
    await th.client.startNew('Quick', { instanceId: 'lost-wake', input: 'y', startAt });
    const backend = th.client.backend.forInstance('lost-wake');
    const wakes = async () => (await backend.orchestratorQueue.getDelayed()).filter((j) => j.id?.startsWith('w-lost-wake-'));
    const [job] = await wakes();
    expect(job).toBeDefined();
    // The delayed wake is lost (as in a Redis that lost the job's keys).
    await job!.remove();
    const report = await checkInstance(backend, 'lost-wake', { repair: true, graceMs: 0 });
    expect(report.findings.map((f) => f.code)).toEqual(['stuck']);
    // Re-queued as a delayed job again, not run at once.
    const [requeued] = await wakes();
    expect(requeued).toBeDefined();
    expect(requeued!.id).not.toBe(job!.id);
    expect((await th.client.getStatus('lost-wake'))?.runtimeStatus).toBe('Pending');
    const done = await th.client.waitForCompletion('lost-wake', { showHistory: true });
    expect(done.output).toBe('y');
    expect(done.history![0]!.timestamp).toBeGreaterThanOrEqual(startAt);
  });
});
