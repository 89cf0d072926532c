/**
 * `npm run demo`: runs Chaining and FanOutFanIn end to end on a real Redis with both kinds of
 * worker in this process, printing the execution log and both results. Uses REDIS_CLUSTER_NODES (a
 * Redis Cluster: host:port,...) or REDIS_URL (default redis://127.0.0.1:6379); when nothing answers there, starts a local redis-server (AOF on, data in
 * .redis-data/) and stops it at the end.
 */
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { ensureRedis } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import { pino } from 'pino';
import pretty from 'pino-pretty';
import { registry } from './functions.js';

const dataDir = fileURLToPath(new URL('../../../.redis-data/demo', import.meta.url));
const items = Number(process.env.DEMO_ITEMS ?? 10);

async function main(): Promise<void> {
  let redis;
  try {
    redis = await ensureRedis({ dataDir, log: (line) => console.log(line) });
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
    return;
  }
  const logger = pino(
    { base: undefined },
    pretty({ sync: true, singleLine: true, colorize: process.stdout.isTTY, ignore: 'executionId', translateTime: 'HH:MM:ss.l' }),
  );
  const hub = process.env.DURABULL_HUB ?? 'demo';
  const worker = await new DurabullWorker({ connection: redis.url, hub, registry, logger }).start();
  const client = new DurabullClient({ connection: redis.url, hub });
  try {
    console.log(`\n== Chaining: F1 -> F2 -> F3 -> F4 (Redis ${redis.url}${redis.started ? ', started for this demo' : ''})`);
    const chainId = await client.startNew('Chaining', { input: '  durable functions on redis ', instanceId: `chaining-${Date.now().toString(36)}` });
    const chain = await client.waitForCompletion(chainId, { timeoutMs: 30_000 });
    console.log(`Chaining result: ${JSON.stringify(chain.output)} (${chain.runtimeStatus}, ${chain.episodes} episodes)`);

    console.log(`\n== FanOutFanIn: ${items} work items in parallel, then their sum`);
    const fanId = await client.startNew('FanOutFanIn', { input: items, instanceId: `fanout-${Date.now().toString(36)}` });
    const fan = await client.waitForCompletion(fanId, { timeoutMs: 60_000 });
    console.log(`FanOutFanIn result: ${JSON.stringify(fan.output)} (${fan.runtimeStatus}, ${fan.episodes} episodes)`);
    if (chain.runtimeStatus !== 'Completed' || fan.runtimeStatus !== 'Completed') process.exitCode = 1;
  } finally {
    await client.close();
    await worker.close();
    await redis.stop();
  }
}

await main();
