/**
 * `durabull worker --metrics-port`: the worker serves its Prometheus metrics while it runs.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { HubKeys, type RedisClient } from '@durabull/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runCli } from './cli.js';
import { deleteKeysByPattern, connectRedis } from '../../../test/src/helpers/redis.js';

const MODULE = fileURLToPath(new URL('./__tests__/replay-v1.ts', import.meta.url));
const BIN = fileURLToPath(new URL('../bin/durabull.js', import.meta.url));
let url: string;
let redis: RedisClient;
const hub = `cm-${randomBytes(4).toString('hex')}`;

beforeAll(() => {
  url = inject('redisUrl') || process.env.REDIS_URL!;
  redis = connectRedis(url);
});
afterAll(async () => {
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
  await redis.quit();
});

describe('durabull worker --metrics-port', () => {
  it('serves GET /metrics while the worker runs', async () => {
    // As users run it: bin/durabull.js in a process of its own.
    const child = spawn(process.execPath, [BIN, '--redis', url, '--hub', hub, '--json', 'worker', '--module', MODULE, '--metrics-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 30_000;
      while (!stdout.includes('worker-started')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the worker did not start: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const started = JSON.parse(stdout.split('\n')[0]!) as { metricsPort: number };
      expect(started.metricsPort).toBeGreaterThan(0);
      const client = new DurabullClient({ connection: url, hub, logger: false });
      try {
        await client.startNew('Order', { instanceId: 'm-1', input: 'm' });
        await client.raiseEvent('m-1', 'Go');
        await client.waitForCompletion('m-1', { timeoutMs: 15_000 });
      } finally {
        await client.close();
      }
      const text = await (await fetch(`http://127.0.0.1:${started.metricsPort}/metrics`)).text();
      expect(text).toMatch(new RegExp(`^durabull_activities_total\\{hub="${hub}",activity="Reserve",outcome="completed",attempt="1"\\} 1$`, 'm'));
      expect(text).toContain(`durabull_instances{hub="${hub}",status="Completed"} 1`);
      expect((await fetch(`http://127.0.0.1:${started.metricsPort}/other`)).status).toBe(404);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // A bad port is a usage error, before anything starts.
    let err = '';
    expect(await runCli(['--redis', url, '--hub', hub, 'worker', '--module', MODULE, '--metrics-port', '70000'], { stdout: { write: () => true }, stderr: { write: (s: string) => (err += s) }, env: {} })).toBe(2);
    expect(err).toMatch(/--metrics-port/);
  }, 60_000);
});
