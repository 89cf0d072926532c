/**
 * `durabull replay-check` on a real Redis: instances started on one version of an orchestrator,
 * checked against the next versions' modules; and `durabull history --json` as a golden history
 * for `replayHistories`. Each test in a task hub of its own (only its keys are deleted).
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { type Registry, replayHistories } from '@durabull/core';
import { HubKeys, type RedisClient } from '@durabull/redis';
import { DurabullWorker } from '@durabull/worker';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { registry as v1 } from './__tests__/replay-v1.js';
import { registry as v2 } from './__tests__/replay-v2.js';
import { registry as v2Patched } from './__tests__/replay-v2-patched.js';
import { runCli } from './cli.js';
import { waitUntil as until } from '../../../test/src/helpers/orchestration.js';
import { deleteKeysByPattern, connectRedis, scanAll } from '../../../test/src/helpers/redis.js';

const module = (name: string) => fileURLToPath(new URL(`./__tests__/${name}.ts`, import.meta.url));

let url: string;
let redis: RedisClient;
let hub: string;
let client: DurabullClient;
const workers: DurabullWorker[] = [];

beforeAll(() => {
  url = inject('redisUrl') || process.env.REDIS_URL!;
  redis = connectRedis(url);
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(() => {
  hub = `rc-${randomBytes(4).toString('hex')}`;
  client = new DurabullClient({ connection: url, hub, logger: false });
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close()));
  await client.close();
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
});

async function worker(registry: Registry): Promise<DurabullWorker> {
  const w = await new DurabullWorker({ connection: url, hub, registry, logger: false }).start();
  workers.push(w);
  return w;
}

/** Starts `Order` instances and waits until each has reserved and waits for `Go`. */
async function startWaiting(ids: string[]): Promise<void> {
  for (const id of ids) await client.startNew('Order', { instanceId: id, input: id });
  for (const id of ids) await until(`${id} waits for Go`, async () => ((await client.getStatus(id))?.episodes ?? 0) >= 2);
}

/**
 * The hub's keys with their DUMP, but for those the running worker rewrites on its own (its
 * registry entry, the per-minute counters of the charts, BullMQ's keys).
 */
async function snapshot(): Promise<Map<string, string>> {
  const keys = new HubKeys(hub);
  const out = new Map<string, string>();
  for (const k of await scanAll(redis, keys.pattern)) {
    if (/^dbl:\{[^}]*\}:(workers|stats:|orchestrator:|activity:)/.test(k)) continue;
    out.set(k, (await redis.dumpBuffer(k))?.toString('hex') ?? '');
  }
  return out;
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['--redis', url, '--hub', hub, ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: {},
  });
  return { code, stdout, stderr };
}

interface JsonReport {
  instances: number;
  checked: number;
  ok: boolean;
  divergences: { instanceId: string; orchestrator: string; kind: string; history: string; code: string; step?: { sequenceNumber?: number } }[];
  patches: { patchId: string; predating: number; applied: number; removable: boolean }[];
}

describe('durabull replay-check', () => {
  it('reports the v1 instances that v2 code (an activity renamed) cannot replay, not the new ones; passes it behind ctx.patched; reports a removed orchestrator', async () => {
    const first = await worker(v1);
    await startWaiting(['old-1', 'old-2']);
    await first.close();
    // The patched version is deployed: a new instance takes the new path (and records the patch).
    await worker(v2Patched);
    await startWaiting(['new-1']);
    const before = await snapshot();

    const careless = await cli(['--json', 'replay-check', '--module', module('replay-v2')]);
    expect(careless.code).toBe(1);
    const r1 = JSON.parse(careless.stdout) as JsonReport;
    expect(r1).toMatchObject({ instances: 3, checked: 3, ok: false });
    expect(r1.divergences.map((d) => d.instanceId).sort()).toEqual(['old-1', 'old-2']);
    for (const d of r1.divergences) {
      expect(d).toMatchObject({ orchestrator: 'Order', kind: 'non-determinism', step: { sequenceNumber: 0 }, code: "activity 'ReserveStock' (#0)" });
      expect(d.history).toMatch(/TaskScheduled #0 activity 'Reserve'$/);
    }
    expect(careless.stderr).toBe('error: 2 instances would not replay on the new code\n');

    // The human report names the step, the history's side and the code's.
    const human = await cli(['replay-check', '--module', module('replay-v2')]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/^old-1 {2}Order {2}non-determinism at step #0 \(history\[\d+\]\)\n {4}history: history\[\d+\] TaskScheduled #0 activity 'Reserve'\n {4}code: {4}activity 'ReserveStock' \(#0\)$/m);
    expect(human.stdout).toMatch(/Replayed 3 of 3 instances of task hub 'rc-[0-9a-f]+' against .*replay-v2\.ts in \d+\.\d s: 2 divergences\.\n$/);

    const careful = await cli(['--json', 'replay-check', '--module', module('replay-v2-patched')]);
    expect(careful.code).toBe(0);
    const r2 = JSON.parse(careful.stdout) as JsonReport;
    expect(r2).toMatchObject({ checked: 3, ok: true, divergences: [] });
    expect(r2.patches).toEqual([{ patchId: 'reserve-stock', predating: 2, applied: 1, removable: false }]);

    const removed = await cli(['--json', 'replay-check', '--module', module('replay-v3')]);
    expect(removed.code).toBe(1);
    const r3 = JSON.parse(removed.stdout) as JsonReport;
    expect(r3.divergences.map((d) => [d.instanceId, d.kind]).sort()).toEqual([
      ['new-1', 'missing-orchestrator'],
      ['old-1', 'missing-orchestrator'],
      ['old-2', 'missing-orchestrator'],
    ]);
    expect((await cli(['replay-check', '--module', module('replay-v3')])).stdout).toContain("Orchestrator 'Order' is not in the new code, and 3 instances of it would fail.");

    // --limit checks fewer and never calls a patch removable; --status picks other instances.
    const limited = JSON.parse((await cli(['--json', 'replay-check', '--module', module('replay-v2-patched'), '--limit', '1'])).stdout) as JsonReport;
    expect(limited).toMatchObject({ instances: 1, checked: 1, partial: true });
    const completed = JSON.parse((await cli(['--json', 'replay-check', '--module', module('replay-v2'), '--status', 'Completed'])).stdout) as JsonReport;
    expect(completed).toMatchObject({ instances: 0, ok: true });
    // Nothing was written by any of the checks.
    expect(await snapshot()).toEqual(before);

    // Once the old instances have finished, nothing needs the old path.
    for (const id of ['old-1', 'old-2']) await client.raiseEvent(id, 'Go');
    for (const id of ['old-1', 'old-2']) expect((await client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe(`shipped reserved ${id}`);
    const after = JSON.parse((await cli(['--json', 'replay-check', '--module', module('replay-v2-patched')])).stdout) as JsonReport;
    expect(after.patches).toEqual([{ patchId: 'reserve-stock', predating: 0, applied: 1, removable: true }]);
    expect((await cli(['replay-check', '--module', module('replay-v2-patched')])).stdout).toContain(
      "Patch 'reserve-stock': no instance takes the old path any more (1 applied it); ctx.patched('reserve-stock') can give way to the new path.",
    );
  });

  it('takes the output of `durabull history --json` as a golden history for replayHistories', async () => {
    await worker(v1);
    await startWaiting(['golden-1']);
    const out = await cli(['--json', 'history', 'golden-1']);
    expect(out.code).toBe(0);
    const golden: unknown = JSON.parse(out.stdout);
    expect(await replayHistories(v1, [golden as never])).toMatchObject({ checked: 1, ok: true });
    const report = await replayHistories(v2, [golden as never]);
    expect(report.divergences).toEqual([expect.objectContaining({ instanceId: 'golden-1', kind: 'non-determinism', code: "activity 'ReserveStock' (#0)" })]);
    expect((await replayHistories(v2Patched, [golden as never])).ok).toBe(true);
  });

  it('refuses bad options before connecting', async () => {
    const bad = await cli(['replay-check', '--module', module('replay-v2'), '--limit', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit/);
    const status = await cli(['replay-check', '--module', module('replay-v2'), '--status', 'Sleeping']);
    expect(status.code).toBe(2);
    expect(status.stderr).toContain('unknown status "Sleeping"');
    const missing = await cli(['replay-check', '--module', '/nonexistent/functions.ts']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--module: no such file');
  });
});
