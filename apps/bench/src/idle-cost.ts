/**
 * What an idle worker costs Redis per partition count: commands per second and connections of one
 * worker process that runs both kinds and has nothing to do (`npx tsx --conditions=source
 * apps/bench/src/idle-cost.ts [partitions...]`, on a redis-server of its own).
 */
import { Registry } from '@durabull/core';
import { startRedisServer } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import { Redis } from 'ioredis';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const counts = process.argv.slice(2).map(Number);
const dir = await mkdtemp(join(tmpdir(), 'durabull-idle-'));
const server = await startRedisServer({ dataDir: dir });
const admin = new Redis(server.url);
const registry = new Registry();
registry.addOrchestrator('Idle', function* () {
  return 0;
});
registry.addActivity('Nop', () => 0);
const seconds = 10;
for (const p of counts.length ? counts : [1, 12]) {
  const worker = await new DurabullWorker({ connection: server.url, hub: `idle-${p}`, partitions: p, registry, logger: false }).start();
  await new Promise((r) => setTimeout(r, 2000));
  const clients = String(await admin.call('CLIENT', 'LIST')).trim().split('\n').length - 1;
  await admin.config('RESETSTAT');
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const info = await admin.info('stats');
  const total = Number(/total_commands_processed:(\d+)/.exec(info)![1]) - 1;
  console.log(`partitions ${p}: ${(total / seconds).toFixed(1)} commands/s idle, ${clients} connections`);
  if (process.env.IDLE_STATS) {
    const cs = String(await admin.info('commandstats')).split('\n').filter((l) => l.startsWith('cmdstat_')).map((l) => l.replace(/,usec=.*$/, '').replace('cmdstat_', '')).join(' ');
    console.log(`  ${cs}`);
  }
  await worker.close();
}
await admin.quit();
await server.stop();
await rm(dir, { recursive: true, force: true });
