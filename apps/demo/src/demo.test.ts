/**
 * `npm run demo` end to end, as a user runs it: a child process on the test Redis (its own hub),
 * checked for the Chaining log in Durable Functions order and both results.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HubKeys, createRedisClient, isClusterUrl } from '@durabull/redis';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { deleteKeysByPattern } from '../../../test/src/helpers/redis.js';

const run = promisify(execFile);
const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const url = inject('redisUrl') || process.env.REDIS_URL!;
const hub = `demo-test-${Math.random().toString(16).slice(2, 10)}`;

afterAll(async () => {
  const redis = createRedisClient(url);
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
  await redis.quit();
});

describe('demo', () => {
  it('prints the Chaining execution log in order and both results', async () => {
    // On a Redis Cluster run the demo gets only REDIS_CLUSTER_NODES, as a user sets it.
    const { REDIS_URL: _, REDIS_CLUSTER_NODES: __, ...env } = process.env;
    const redisEnv = isClusterUrl(url) ? { REDIS_CLUSTER_NODES: url.slice('redis-cluster://'.length) } : { REDIS_URL: url };
    const { stdout } = await run(process.execPath, ['--import', 'tsx', '--conditions=source', main], {
      env: { ...env, ...redisEnv, DURABULL_HUB: hub, DEMO_ITEMS: '10' },
      timeout: 60_000,
    });
    expect(stdout).toContain(`(Redis ${url}`);
    const chaining = stdout.slice(stdout.indexOf('== Chaining'), stdout.indexOf('== FanOutFanIn'));
    const expected = [
      'Orchestration function triggered',
      'Execution started',
      'Activity function F1 task scheduled',
      'Orchestration function completed',
      'Activity function F1 task completed',
      'Orchestration function started',
      'Activity function F2 task scheduled',
      'Activity function F2 task completed',
      'Activity function F3 task scheduled',
      'Activity function F4 task completed',
      'Orchestration function started',
      'Execution completed',
    ];
    let at = 0;
    for (const line of expected) {
      const found = chaining.indexOf(line, at);
      expect(found, `"${line}" after position ${at}`).toBeGreaterThanOrEqual(0);
      at = found + line.length;
    }
    expect(stdout).toContain('Chaining result: "HELLO DURABLE FUNCTIONS ON REDIS!" (Completed, 5 episodes)');
    expect(stdout).toContain('FanOutFanIn result: "sum of squares = 385" (Completed, 4 episodes)');
  });
});
