/**
 * `npm run sample -- <name>` (or `all`): runs one Durable Functions pattern end to end on a real
 * Redis, with both kinds of worker in this process, and prints what happened and the result.
 * Uses REDIS_CLUSTER_NODES (a Redis Cluster: host:port,...) or REDIS_URL (default redis://127.0.0.1:6379); when nothing answers there, starts a local
 * redis-server (AOF on, data in .redis-data/samples) and stops it at the end.
 * Each sample works in a task hub of its own, `samples-<name>`.
 */
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { ensureRedis } from '@durabull/testing';
import { compactHistory } from './harness.js';
import { isSampleName, samples, type SampleName } from './samples.js';

const dataDir = fileURLToPath(new URL('../../../.redis-data/samples', import.meta.url));
const names = Object.keys(samples) as SampleName[];

function usage(): string {
  return [
    'Usage: npm run sample -- <name>|all',
    '',
    ...names.map((n) => `  ${n.padEnd(20)} ${samples[n].description}`),
    `  ${'all'.padEnd(20)} every sample, one after the other`,
  ].join('\n');
}

/** The result with every `history` (an array of event lines) folded into one line. */
function forDisplay(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(forDisplay);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [k, k === 'history' && Array.isArray(v) ? compactHistory(v as string[]) : forDisplay(v)]),
  );
}

async function main(): Promise<void> {
  const arg = process.argv[2];
  if (!arg || arg === '-h' || arg === '--help') {
    console.log(usage());
    if (!arg) process.exitCode = 1;
    return;
  }
  const chosen: SampleName[] = arg === 'all' ? names : isSampleName(arg) ? [arg] : [];
  if (chosen.length === 0) {
    console.error(`Unknown sample '${arg}'.\n\n${usage()}`);
    process.exitCode = 1;
    return;
  }
  let redis;
  try {
    redis = await ensureRedis({ dataDir, log: (line) => console.log(line) });
  } catch (err) {
    console.error((err as Error).message);
    process.exitCode = 1;
    return;
  }
  try {
    for (const name of chosen) {
      console.log(`\n== ${name}: ${samples[name].description}`);
      const started = Date.now();
      const result = await samples[name].run({ redisUrl: redis.url, hub: `samples-${name}`, log: (line) => console.log(`  ${line}`) });
      console.log(`-- result (${Date.now() - started} ms):`);
      console.log(inspect(forDisplay(result), { depth: 6, colors: process.stdout.isTTY, breakLength: 120 }));
    }
  } catch (err) {
    console.error(err);
    process.exitCode = 1;
  } finally {
    await redis.stop();
  }
}

await main();
