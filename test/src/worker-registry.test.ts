/**
 * The worker registry on a real Redis: workers announce themselves in their task hub, a start of
 * an orchestrator that no live worker runs is refused before anything is written (client, restart,
 * sub-orchestrations), and the entry of a worker that died expires on its own.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import {
  FunctionNotFoundError,
  type OrchestrationContext,
  OrchestratorNotServedError,
  Registry,
  type TaskFailedError,
  ValidationError,
} from '@durabull/core';
import { DEFAULT_PARTITIONS, HubKeys, type WorkerEntry } from '@durabull/redis';
import { startRedisServer } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from './helpers/hub.js';
import { uniqueHub, scanAll } from './helpers/redis.js';
import { TEST_PARTITIONS } from './helpers/partitions.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/registry-worker.ts', import.meta.url));
const WORKER_VERSION = (JSON.parse(readFileSync(new URL('../../packages/worker/package.json', import.meta.url), 'utf8')) as { version: string }).version;

let th: TestHub | undefined;
const closeAfter: { close(): Promise<unknown> }[] = [];
let child: ChildProcess | undefined;
afterEach(async () => {
  child?.kill('SIGKILL');
  child = undefined;
  for (const c of closeAfter.splice(0).reverse()) await c.close();
  await th?.cleanup();
  th = undefined;
});

function* chaining(ctx: OrchestrationContext, x: string): Generator<unknown, string, any> {
  const a: string = yield ctx.callActivity('F1', x);
  return yield ctx.callActivity('F2', a);
}
const activities = { F1: async (x: string) => `${x}>F1`, F2: async (x: string) => `${x}>F2` };

/** Polls until `check` holds (never a fixed sleep). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Every key of the hub (SCAN) with its DUMP, except the values of the worker registry's keys, which
 * the workers' heartbeats rewrite on their own (their names are compared).
 */
async function snapshot(t: TestHub): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of await scanAll(t.redis, t.keys.pattern)) {
    if (k.startsWith(t.keys.statsPrefix)) continue; // the charts' counters, written by the worker on its own
    out.set(k, k.startsWith(t.keys.workers) ? 'registry' : ((await t.redis.dumpBuffer(k))?.toString('hex') ?? ''));
  }
  return out;
}

describe('the start check', () => {
  it('refuses a name no live worker runs: a typed error listing the served names, and the hub keys are unchanged', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining, Other: chaining }, activities });
    const before = await snapshot(th);
    expect([...before.keys()]).toContain(th.keys.workers);
    const err = await th.client.startNew('NoSuchOrchestrator', { instanceId: 'nope-1', input: { a: 1 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchestratorNotServedError);
    expect(err).toBeInstanceOf(FunctionNotFoundError);
    const e = err as OrchestratorNotServedError;
    expect(e.functionName).toBe('NoSuchOrchestrator');
    expect(e.hub).toBe(th.hub);
    expect(e.served).toEqual(['Chaining', 'Other']);
    expect(e.message).toContain(`No live worker of task hub '${th.hub}' runs an orchestrator named 'NoSuchOrchestrator'`);
    expect(e.message).toContain("Served orchestrators: 'Chaining', 'Other'");
    expect(await snapshot(th)).toEqual(before);
    expect(await th.client.getStatus('nope-1')).toBeUndefined();
    // A served name goes through.
    const ok = await th.client.startNew('Chaining', { input: 'x' });
    expect((await th.client.waitForCompletion(ok, { timeoutMs: 20_000 })).output).toBe('x>F1>F2');
  });

  it('accepts the same start with allowUnknownName (the worker then fails it as unknown)', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities });
    const id = await th.client.startNew('NoSuchOrchestrator', { instanceId: 'opt-out', allowUnknownName: true });
    expect(id).toBe('opt-out');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.runtimeStatus).toBe('Failed');
    expect(st.failure?.errorName).toBe('FunctionNotFoundError');
  });

  it('accepts any name while the hub has no live worker (none started, or the last one closed): it stays Pending', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities }, { startWorker: false });
    // Reads the registry at every start (the default reuses what it read for 2 s).
    const client = new DurabullClient({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, servedNamesCacheMs: 0 });
    closeAfter.push(client);
    expect(await client.listWorkers()).toEqual([]);
    await client.startNew('NoSuchOrchestrator', { instanceId: 'early-1' });
    expect((await client.getStatus('early-1'))?.runtimeStatus).toBe('Pending');

    const w = await th.startWorker();
    await expect(client.startNew('NoSuchOrchestrator', { instanceId: 'early-2' })).rejects.toThrow(OrchestratorNotServedError);
    await w.close();
    // close() removed the worker's entry: no live worker again.
    expect(await client.listWorkers()).toEqual([]);
    await client.startNew('NoSuchOrchestrator', { instanceId: 'early-3' });
    expect((await client.getStatus('early-3'))?.runtimeStatus).toBe('Pending');
  });

  it('accepts any name while the live workers run activities only', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities }, { orchestrators: false });
    const [w] = await th.client.listWorkers();
    expect(w).toMatchObject({ kinds: ['activity'], orchestratorNames: [], activityNames: ['F1', 'F2'] });
    await th.client.startNew('Chaining', { instanceId: 'acts-1' });
    await th.client.startNew('NoSuchOrchestrator', { instanceId: 'acts-2' });
    expect((await th.client.getStatus('acts-2'))?.runtimeStatus).toBe('Pending');
  });

  it('reads the names again once before refusing: a worker that just started with a new name is not refused', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities });
    // The served names are kept for an hour: only the read again on a miss can see the new worker.
    const client = new DurabullClient({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, servedNamesCacheMs: 3_600_000 });
    closeAfter.push(client);
    await client.startNew('Chaining', { input: 'a' });
    await expect(client.startNew('Fresh', { instanceId: 'fresh-0' })).rejects.toThrow(OrchestratorNotServedError);
    // A new version of the workers: one that also runs 'Fresh' starts, the old one leaves.
    const registry = new Registry()
      .addOrchestrator('Chaining', chaining)
      .addOrchestrator('Fresh', function* () {
        return 'fresh';
      });
    for (const [name, fn] of Object.entries(activities)) registry.addActivity(name, fn);
    await th.startWorker({ registry });
    await th.workers[0]!.close();
    const id = await client.startNew('Fresh', { instanceId: 'fresh-1' });
    expect((await client.waitForCompletion(id, { timeoutMs: 20_000 })).output).toBe('fresh');
  });

  it('costs at most one registry read per start: concurrent starts share one, served names are reused, a miss reads once', async () => {
    // A redis-server of its own, so that MONITOR sees this test's commands only (and is on before any).
    const dir = await mkdtemp(join(tmpdir(), 'durabull-registry-'));
    const srv = await startRedisServer({ dataDir: dir });
    closeAfter.push({ close: () => srv.stop().then(() => rm(dir, { recursive: true, force: true })) });
    const monitorConn = new Redis(srv.url);
    const monitor = await monitorConn.monitor();
    closeAfter.push({ close: async () => (monitor.disconnect(), monitorConn.disconnect()) });
    const hub = uniqueHub('reg');
    // Starts read the registry of partition 0.
    const keys = new HubKeys(hub, 0, DEFAULT_PARTITIONS);
    let reads = 0;
    const seen = new Set<string>();
    // A registry read GETs each worker's entry (in the readWorkers script; MONITOR shows commands run by scripts).
    monitor.on('monitor', (_time: string, args: string[]) => {
      const cmd = args[0]?.toLowerCase();
      if (cmd === 'get' && args[1]?.startsWith(`${keys.workers}:`)) reads++;
      if (cmd === 'echo') seen.add(args[1]!);
    });
    const pinger = new Redis(srv.url);
    closeAfter.push({ close: async () => pinger.disconnect() });
    let n = 0;
    /** Waits until the monitor has shown everything sent before this call. */
    const settle = async () => {
      const m = `marker-${n++}`;
      await pinger.echo(m);
      await until('the monitor caught up', async () => seen.has(m));
    };
    await settle();
    const registry = new Registry().addOrchestrator('Chaining', chaining);
    const worker = await new DurabullWorker({ connection: srv.url, hub, registry, logger: false }).start();
    closeAfter.push(worker);
    const client = new DurabullClient({ connection: srv.url, hub, servedNamesCacheMs: 3_600_000 });
    closeAfter.push(client);
    await settle();
    expect(reads).toBe(0);
    await Promise.all(Array.from({ length: 50 }, (_, i) => client.startNew('Chaining', { instanceId: `c-${i}`, input: 'x' })));
    await settle();
    expect(reads).toBe(1);
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.startNew('Chaining', { instanceId: `d-${i}`, input: 'x' })));
    await settle();
    expect(reads).toBe(1);
    await expect(client.startNew('Missing', { instanceId: 'm-1' })).rejects.toThrow(OrchestratorNotServedError);
    await settle();
    expect(reads).toBe(2);
    expect(await client.getStatus('m-1')).toBeUndefined();
  });

  it('checks a restart too: an instance of a name no live worker runs any more restarts only with allowUnknownName', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities });
    const id = await th.client.startNew('Chaining', { instanceId: 'old-1', input: 'x' });
    await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    await th.workers[0]!.close();
    await th.startWorker({ registry: new Registry().addOrchestrator('Newer', function* () {}) });
    const client = new DurabullClient({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub });
    closeAfter.push(client);
    const err = await client.restart('old-1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchestratorNotServedError);
    expect((err as OrchestratorNotServedError).served).toEqual(['Newer']);
    expect((await client.getStatus('old-1'))?.runtimeStatus).toBe('Completed');
    await client.restart('old-1', { newInstanceId: 'old-2', allowUnknownName: true });
    expect((await client.getStatus('old-2'))?.name).toBe('Chaining');
  });

  it('a sub-orchestration of a name no live worker runs fails the parent task with the typed error, which the code catches', async () => {
    th = await createTestHub({
      orchestrators: {
        Parent: function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
          try {
            yield ctx.callSubOrchestrator('NoSuchChild', 1, 'child-1');
            return 'started';
          } catch (err) {
            return (err as TaskFailedError).failure;
          }
        },
      },
    });
    const id = await th.client.startNew('Parent');
    const st = await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    expect(st.runtimeStatus).toBe('Completed');
    expect(st.output).toMatchObject({ errorName: 'OrchestratorNotServedError', functionName: 'NoSuchChild' });
    expect((st.output as { message: string }).message).toContain("Served orchestrators: 'Parent'");
    expect(await th.client.getStatus('child-1')).toBeUndefined();
  });
});

describe('listing workers', () => {
  it('lists every live worker: who it is, what it runs, its stats as of its last heartbeat; close() removes it', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities }, { heartbeatIntervalMs: 50, heartbeatExpiryMs: 10_000 });
    const acts = await th.startWorker({ orchestrators: false });
    const both = th.workers[0]!;
    const id = await th.client.startNew('Chaining', { input: 'x' });
    await th.client.waitForCompletion(id, { timeoutMs: 20_000 });
    // The stats ride on the heartbeat: wait for one sent after the instance finished.
    await until('the stats are in the registry', async () => {
      const all = await th!.client.listWorkers();
      return all.reduce((a, w) => a + w.activitiesDone, 0) === 2 && all.some((w) => w.episodesDone === 3);
    });
    const workers = await th.client.listWorkers();
    expect(workers.map((w) => w.id).sort()).toEqual([both.id, acts.id].sort());
    const w = workers.find((x) => x.id === both.id)!;
    expect(w).toMatchObject({
      host: hostname(),
      pid: process.pid,
      version: WORKER_VERSION,
      kinds: ['orchestrator', 'activity'],
      orchestratorNames: ['Chaining'],
      activityNames: ['F1', 'F2'],
      heartbeatIntervalMs: 50,
      heartbeatExpiryMs: 10_000,
      jobsRunning: 0,
      episodesDone: 3,
    });
    expect(w.id).toMatch(new RegExp(`-${process.pid}-[0-9a-f]{8}$`));
    expect(w.expiresAt.getTime() - w.lastHeartbeatAt.getTime()).toBe(10_000);
    expect(w.startedAt.getTime()).toBeLessThanOrEqual(Date.now());
    expect(workers.find((x) => x.id === acts.id)).toMatchObject({ kinds: ['activity'], orchestratorNames: [], activityNames: ['F1', 'F2'] });
    // Entries expire on their own, and the index lives no longer than its longest-lived entry.
    const ttl = await th.redis.pttl(th.keys.worker(both.id));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(10_000);
    expect(await th.redis.pttl(th.keys.workers)).toBeGreaterThan(0);

    await acts.close();
    expect((await th.client.listWorkers()).map((x) => x.id)).toEqual([both.id]);
    expect(await th.redis.exists(th.keys.worker(acts.id))).toBe(0);
    expect(await th.redis.sismember(th.keys.workers, acts.id)).toBe(0);
  });

  it('refuses bad heartbeat and cache options at construction, naming the option and the value', () => {
    const registry = new Registry();
    const make = (o: object) => () => new DurabullWorker({ registry, logger: false, ...o });
    expect(make({ heartbeatIntervalMs: 0 })).toThrow(ValidationError);
    expect(make({ heartbeatIntervalMs: 0 })).toThrow('heartbeatIntervalMs must be an integer number of ms >= 1, got 0');
    expect(make({ heartbeatIntervalMs: '5' })).toThrow('heartbeatIntervalMs must be an integer number of ms >= 1, got 5');
    expect(make({ heartbeatIntervalMs: 1000, heartbeatExpiryMs: 1000 })).toThrow('heartbeatExpiryMs must be an integer number of ms greater than heartbeatIntervalMs (1000), got 1000');
    expect(make({ heartbeatExpiryMs: 2.5 })).toThrow(ValidationError);
    expect(() => new DurabullClient({ servedNamesCacheMs: -1 })).toThrow('servedNamesCacheMs must be a number of ms >= 0, got -1');
    expect(() => new DurabullClient({ stickyStarts: 'yes' as unknown as boolean })).toThrow('stickyStarts must be a boolean, got yes');
  });

  it('a SIGKILLed worker drops out of the list within its heartbeat expiry, and its entry is gone', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities }, { startWorker: false });
    const expiryMs = 1500;
    child = fork(FIXTURE, [], {
      execArgv: ['--import', 'tsx', '--conditions=source'],
      env: { ...process.env, REDIS_URL: th.url, DURABULL_HUB: th.hub, HEARTBEAT_INTERVAL_MS: '200', HEARTBEAT_EXPIRY_MS: String(expiryMs) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const proc = child;
    const workerId = await new Promise<string>((resolve, reject) => {
      proc.once('message', (m: { id: string }) => resolve(m.id));
      proc.once('exit', (code) => reject(new Error(`registry worker exited before it was ready (code ${code})`)));
    });
    const [listed] = await th.client.listWorkers();
    expect(listed).toMatchObject({ id: workerId, pid: proc.pid, orchestratorNames: ['Remote'], heartbeatExpiryMs: expiryMs });
    // While it lives, only its orchestrator may be started.
    await expect(th.client.startNew('Chaining', { instanceId: 'k-1' })).rejects.toThrow(OrchestratorNotServedError);

    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
    child = undefined;
    // Nothing renews the entry now: it has at most its expiry to live (-2: gone already).
    const left = await th.redis.pttl(th.keys.worker(workerId));
    expect(left).toBeLessThanOrEqual(expiryMs);
    await until('the killed worker is no longer listed', async () => !(await th!.client.listWorkers()).some((w) => w.id === workerId));
    // The read that no longer lists it removed its id; its entry may outlive that read by the
    // millisecond in which the entry's PTTL read 0.
    expect(await th.redis.sismember(th.keys.workers, workerId)).toBe(0);
    await until('its entry is gone', async () => (await th!.redis.exists(th!.keys.worker(workerId))) === 0);
    // No live worker any more: starts are accepted again.
    await th.client.startNew('Chaining', { instanceId: 'k-2' });
    expect((await th.client.getStatus('k-2'))?.runtimeStatus).toBe('Pending');
  });

  it('an expired entry does not count, and the next heartbeat removes its id from the index', async () => {
    th = await createTestHub({ orchestrators: { Chaining: chaining }, activities }, { heartbeatIntervalMs: 50, heartbeatExpiryMs: 10_000 });
    const ghost: WorkerEntry = {
      id: 'ghost-1',
      host: 'gone',
      pid: 1,
      version: '0.0.0',
      kinds: ['orchestrator'],
      orchestratorNames: ['GhostOnly'],
      activityNames: [],
      startedAt: Date.now(),
      heartbeatIntervalMs: 10,
      heartbeatExpiryMs: 30,
      jobsRunning: 0,
      episodesDone: 0,
      activitiesDone: 0,
    };
    await th.client.backend.workerRegistry.heartbeat(ghost);
    await until('the ghost entry expired', async () => (await th!.redis.exists(th!.keys.worker('ghost-1'))) === 0);
    // Its id stays in the index until a heartbeat (or a read) removes it; meanwhile it counts for nothing.
    await until('a heartbeat removed the ghost from the index', async () => (await th!.redis.sismember(th!.keys.workers, 'ghost-1')) === 0);
    await th.client.backend.workerRegistry.heartbeat({ ...ghost, id: 'ghost-2' });
    await until('the second ghost expired', async () => (await th!.redis.exists(th!.keys.worker('ghost-2'))) === 0);
    const err = await th.client.startNew('GhostOnly').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OrchestratorNotServedError);
    expect((err as OrchestratorNotServedError).served).toEqual(['Chaining']);
    expect((await th.client.listWorkers()).map((w) => w.id)).toEqual([th.workers[0]!.id]);
  });
});
