/**
 * `durabull worker --module` runs the functions that `df.app.*` registered: the module imports the
 * Durable Functions sample files and exports `registry` from 'durable-functions'.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { HubKeys } from '@durabull/redis';
import { afterAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/orchestration.js';
import { deleteKeysByPattern, redisUrl, uniqueHub, connectRedis } from '../helpers/redis.js';

const BIN = fileURLToPath(new URL('../../../packages/cli/bin/durabull.js', import.meta.url));
const MODULE = fileURLToPath(new URL('../../../apps/samples/src/durable-functions/worker.ts', import.meta.url));

const hub = uniqueHub('dfw');
const redis = connectRedis();
const client = new DurabullClient({ connection: redisUrl(), hub, logger: false });
let worker: ChildProcess | undefined;

afterAll(async () => {
  if (worker && worker.exitCode === null) worker.kill('SIGKILL');
  await client.close();
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
  await redis.quit();
});

describe('durabull worker --module with df.app functions', () => {
  it('lists the registered functions and runs helloSequence', async () => {
    let out = '';
    const w = spawn(process.execPath, [BIN, '--redis', redisUrl(), '--hub', hub, 'worker', '--module', MODULE], { stdio: ['ignore', 'pipe', 'pipe'] });
    worker = w;
    w.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    w.stderr!.on('data', (b: Buffer) => (out += b.toString()));
    await waitUntil(`the worker started (output: ${out.slice(-400)})`, () => out.includes('Stop with Ctrl-C or SIGTERM'), 60_000);
    expect(out).toContain('(export registry)');
    expect(out).toMatch(/orchestrators: .*backupSiteContent.*counterOrchestration.*helloSequence.*smsPhoneVerification.*weatherMonitor/);
    const id = await client.startNew('helloSequence', { instanceId: `hello-${hub}` });
    const status = await client.waitForCompletion(id, { timeoutMs: 30_000 });
    expect(status.output).toEqual(['Hello Tokyo', 'Hello Seattle', 'Hello Cairo']);
    w.kill('SIGTERM');
    await new Promise((r) => w.once('exit', r));
    expect(w.exitCode).toBe(0);
  }, 90_000);
});
