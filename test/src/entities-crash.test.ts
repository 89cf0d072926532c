/**
 * Exactly-once effect on an entity's state under crashes: worker processes killed with SIGKILL in
 * the middle of batches, and the hub's Redis killed and restarted (AOF with `appendfsync always`,
 * so it loses nothing it acknowledged). A counter that receives N signals (from a client that
 * retries with the same signal ids, and from orchestrations) ends at exactly N.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { newEventId } from '@durabull/redis';
import { type RedisServer, startRedisServer } from '@durabull/testing';
import { afterAll, beforeAll, expect, it, describe } from 'vitest';
import { forkReadyWorker } from './helpers/processes.js';
import { uniqueHub } from './helpers/redis.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/entity-worker.ts', import.meta.url));

let server: RedisServer;
let dir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'durabull-entities-'));
  server = await startRedisServer({ dataDir: dir, appendonly: true, appendfsync: 'always' });
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): kills and restarts a redis-server of its own.
describe('entities: exactly-once state under crashes', () => {
  it('a counter that receives N signals ends at N across worker SIGKILLs and a Redis restart', { timeout: 240_000 }, async () => {
    const hub = uniqueHub();
    const env = { REDIS_URL: server.url, DURABULL_HUB: hub };
    const start = async () => {
      const c = await forkReadyWorker(FIXTURE, env);
      children.add(c);
      return c;
    };
    const workers = [await start(), await start()];
    const client = new DurabullClient({ connection: server.url, hub, logger: false, commandTimeoutMs: 2000 });
    const kill = async (i: number) => {
      workers[i]!.kill('SIGKILL');
      children.delete(workers[i]!);
      workers[i] = await start();
    };
    const operations = async () => (await client.getEntity('@Counter@total'))?.operations ?? 0;

    // Orchestrations: 3 x 150 signals, sent with their episodes' commits.
    const ids: string[] = [];
    for (let k = 0; k < 3; k++) ids.push(await client.startNew('Signaller', { input: { n: 150, per: 30 } }));
    // A client: 300 signals, each retried with its own id until Redis acknowledges it.
    const clientSignals = 300;
    const sending = (async () => {
      for (let i = 0; i < clientSignals; i++) {
        const signalId = newEventId();
        for (;;) {
          try {
            await client.signalEntity('@Counter@total', 'add', 1, { signalId });
            break;
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
    })();
    const total = 3 * 150 + clientSignals;

    await until('some operations', async () => (await operations()) >= 100);
    await kill(0);
    await until('more operations', async () => (await operations()) >= 300);
    // Redis crashes (SIGKILL) and comes back with everything it acknowledged.
    server.kill('SIGKILL');
    await server.restart();
    await until('more operations after the restart', async () => (await operations()) >= 450);
    await kill(1);
    await sending;
    for (const id of ids) expect((await client.waitForCompletion(id, { timeoutMs: 120_000 })).output).toBe(150);
    await until('every signal processed', async () => {
      const m = await client.getEntity('@Counter@total');
      return m !== undefined && m.pendingOperations === 0 && m.operations >= total;
    });
    const m = await client.getEntity('@Counter@total');
    expect(m?.state).toBe(total);
    expect(m?.operations).toBe(total);
    await client.close();
    for (const c of workers) c.kill('SIGTERM');
  });
});
