/**
 * Security properties, each on a redis-server of its own (never the shared test Redis):
 *
 * 1. a Redis ACL user confined to one hub's keys runs everything (worker, client, HTTP server, CLI),
 *    and a user confined to another key pattern gets NOPERM on this hub's keys;
 * 2. every key durabull and BullMQ write for a hub is under `dbl:{<hub>:`, and invalid instance ids
 *    are refused before anything is written;
 * 3. `__proto__` / `constructor.prototype` keys in payloads round-trip without polluting Object.prototype;
 * 4. TLS: worker, client and server through ioredis `tls` options to a redis-server with `--tls-port`.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { runCli } from '@durabull/cli';
import { DurabullClient } from '@durabull/client';
import { type OrchestrationContext, Registry, ValidationError } from '@durabull/core';
import { DEFAULT_PARTITIONS, HubKeys, partitionOf } from '@durabull/redis';
import { createServer } from '@durabull/server';
import { type RedisServer, findRedisServer, getFreePort, startRedisServer } from '@durabull/testing';
import { DurabullWorker } from '@durabull/worker';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it, describe } from 'vitest';

const T = 20_000;

function* chain(ctx: OrchestrationContext, input: string): Generator<unknown, string, any> {
  const x = yield ctx.callActivity('Step', `${input}>1`);
  const y = yield ctx.callActivity('Step', `${x}>2`);
  return yield ctx.callActivity('Step', `${y}>3`);
}

function* fanOut(ctx: OrchestrationContext, n: number): Generator<unknown, number, any> {
  const r: number[] = yield ctx.all(Array.from({ length: n }, (_, i) => ctx.callActivity('Square', i)));
  return r.reduce((a, b) => a + b, 0);
}

const baseRegistry = () =>
  new Registry()
    .addOrchestrator('Chain', chain)
    .addOrchestrator('FanOut', fanOut)
    .addActivity('Step', async (s: string) => s)
    .addActivity('Square', async (i: number) => i * i);

async function tempDir(tag: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `durabull-sec-${tag}-`));
}

async function allKeys(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** The command rules of the ACL users below (what durabull + BullMQ need, found by trying). */
const ACL_COMMANDS = ['+@read', '+@write', '+@scripting', '+@pubsub', '+@connection', '+@transaction', '-@dangerous', '+info'];

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): ACL users on a redis-server of its own.
describe('Redis ACL: a user confined to one hub', () => {
  const hub = 'apphub';
  let srv: RedisServer;
  let dir: string;
  let admin: Redis;
  let appUrl: string;
  let otherUrl: string;

  beforeAll(async () => {
    dir = await tempDir('acl');
    srv = await startRedisServer({ dataDir: dir });
    admin = new Redis(srv.url);
    // Keys and pub/sub channels under the hub's prefix only; the data, scripting, pub/sub, connection and
    // transaction categories without the @dangerous commands (FLUSHALL, KEYS, CONFIG, ...), plus INFO, which is
    // @dangerous but needed: BullMQ reads the server version from it (without INFO, worker.start() never resolves
    // and ioredis skips its ready check).
    await admin.call('ACL', 'SETUSER', 'app', 'reset', 'on', '>secret', `~dbl:{${hub}:*`, 'resetchannels', `&dbl:{${hub}:*`, ...ACL_COMMANDS);
    await admin.call('ACL', 'SETUSER', 'other', 'reset', 'on', '>other', '~dbl:{otherhub:*', 'resetchannels', '&dbl:{otherhub:*', ...ACL_COMMANDS);
    appUrl = srv.url.replace('redis://', 'redis://app:secret@');
    otherUrl = srv.url.replace('redis://', 'redis://other:other@');
  });
  afterAll(async () => {
    admin?.disconnect();
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('worker, client, HTTP server and CLI all work as that user; another user gets NOPERM', async () => {
    const w = await new DurabullWorker({ connection: appUrl, hub, registry: baseRegistry(), logger: false }).start();
    const c = new DurabullClient({ connection: appUrl, hub });
    const app = createServer({ connection: appUrl, hub });
    const intruder = new Redis(otherUrl);
    const intruderClient = new DurabullClient({ connection: otherUrl, hub });
    try {
      const chainId = await c.startNew('Chain', { input: 'x', instanceId: 'acl-chain' });
      const fanId = await c.startNew('FanOut', { input: 20, instanceId: 'acl-fan' });
      expect((await c.waitForCompletion(chainId, { timeoutMs: T })).output).toBe('x>1>2>3');
      expect((await c.waitForCompletion(fanId, { timeoutMs: T })).output).toBe(Array.from({ length: 20 }, (_, i) => i * i).reduce((a, b) => a + b, 0));

      const r = await app.inject({ method: 'GET', url: `/instances/${fanId}` });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ instanceId: fanId, runtimeStatus: 'Completed', output: 2470 });

      // Payloads over the claim-check threshold go under keys of the hub too, and read back through the server.
      const large = 'L'.repeat(200_000);
      const bigId = await c.startNew('Chain', { input: large, instanceId: 'acl-big' });
      expect((await c.waitForCompletion(bigId, { timeoutMs: T })).output).toBe(`${large}>1>2>3`);
      expect(await admin.scard(new HubKeys(hub, partitionOf(bigId, DEFAULT_PARTITIONS), DEFAULT_PARTITIONS).claims(bigId))).toBe(8);
      const rb = await app.inject({ method: 'GET', url: `/instances/${bigId}?showHistory=true` });
      expect(rb.statusCode).toBe(200);
      expect(rb.json()).toMatchObject({ input: large, output: `${large}>1>2>3` });
      await c.purge(bigId);
      expect(await admin.exists(new HubKeys(hub, partitionOf(bigId, DEFAULT_PARTITIONS), DEFAULT_PARTITIONS).claims(bigId))).toBe(0);

      let stdout = '';
      let stderr = '';
      const code = await runCli(['--redis', appUrl, '--hub', hub, 'status', chainId], {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
        env: {},
        cwd: dir,
      });
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(stdout).toContain('Completed');

      // The hub's keys really are there, and only the app user can touch them.
      const stateKey = new HubKeys(hub, partitionOf(chainId, DEFAULT_PARTITIONS), DEFAULT_PARTITIONS).state(chainId);
      expect(await admin.exists(stateKey)).toBe(1);
      await expect(intruder.hgetall(stateKey)).rejects.toThrow(/NOPERM/);
      await expect(intruder.del(stateKey)).rejects.toThrow(/NOPERM/);
      await expect(intruderClient.getStatus(chainId)).rejects.toThrow(/NOPERM/);
      await expect(intruderClient.startNew('Chain', { input: 'y' })).rejects.toThrow(/NOPERM/);
      // ... and the app user cannot reach outside its hub either.
      const appRaw = new Redis(appUrl);
      try {
        await expect(appRaw.set('dbl:{otherhub:0}:x', '1')).rejects.toThrow(/NOPERM/);
        await expect(appRaw.set('elsewhere', '1')).rejects.toThrow(/NOPERM/);
        await expect(appRaw.flushall()).rejects.toThrow(/NOPERM/);
        await expect(appRaw.call('CONFIG', 'GET', 'dir')).rejects.toThrow(/NOPERM/);
        await expect(appRaw.call('KEYS', '*')).rejects.toThrow(/NOPERM/);
      } finally {
        appRaw.disconnect();
      }
      expect(await admin.exists(stateKey)).toBe(1);

      // The same rules without +info are not enough: BullMQ's INFO is refused on its first command
      // (a delayed start's job goes through BullMQ; a plain start's is added by the start's script).
      await admin.call('ACL', 'SETUSER', 'noinfo', 'reset', 'on', '>noinfo', `~dbl:{${hub}:*`, 'resetchannels', `&dbl:{${hub}:*`, ...ACL_COMMANDS.filter((r) => r !== '+info'));
      const noInfo = new DurabullClient({ connection: srv.url.replace('redis://', 'redis://noinfo:noinfo@'), hub });
      try {
        await expect(noInfo.startNew('Chain', { input: 'z', startAt: new Date(Date.now() + 60_000) })).rejects.toThrow(/NOPERM .*'info'/);
      } finally {
        await noInfo.close();
      }
    } finally {
      await app.close();
      await intruderClient.close();
      intruder.disconnect();
      await c.close();
      await w.close();
    }
  }, 60_000);
});

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): scans every key of a redis-server of its own.
describe('key confinement and instance id rules', () => {
  const hub = 'confined';
  let srv: RedisServer;
  let dir: string;
  let admin: Redis;

  beforeAll(async () => {
    dir = await tempDir('keys');
    srv = await startRedisServer({ dataDir: dir });
    admin = new Redis(srv.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('chaining, fan-out, sub-orchestrations, timers, events, terminate and purge write only under dbl:{<hub>:', async () => {
    const registry = baseRegistry()
      .addOrchestrator('Parent', function* (ctx: OrchestrationContext, n: number): Generator<unknown, number, any> {
        const a: number = yield ctx.callSubOrchestrator('FanOut', n, `${ctx.instanceId}.child@1`);
        const b: string = yield ctx.callSubOrchestrator('Chain', 'sub', `${ctx.instanceId}.child@2`);
        return a + b.length;
      })
      .addOrchestrator('TimerEvent', function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
        yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + 200));
        return yield ctx.waitForExternalEvent('go');
      })
      .addOrchestrator('Forever', function* (ctx: OrchestrationContext): Generator<unknown, unknown, any> {
        return yield ctx.waitForExternalEvent('never');
      });
    const w = await new DurabullWorker({ connection: srv.url, hub, registry, logger: false }).start();
    const c = new DurabullClient({ connection: srv.url, hub });
    try {
      const ids = { chain: 'a.b@c-d_e', fan: 'fan.1@x-y_z', parent: 'P_1.x@y-z', timer: 't.1@e-v_t', forever: 'f.o@r-e_v', large: 'l.a@r-g_e' };
      await c.startNew('Chain', { input: 'in', instanceId: ids.chain });
      // Payloads over the claim-check threshold, stored under keys of their own.
      await c.startNew('Chain', { input: 'L'.repeat(100_000), instanceId: ids.large });
      expect((await c.waitForCompletion(ids.large, { timeoutMs: T })).output).toBe(`${'L'.repeat(100_000)}>1>2>3`);
      await c.startNew('FanOut', { input: 10, instanceId: ids.fan });
      await c.startNew('Parent', { input: 5, instanceId: ids.parent });
      await c.startNew('TimerEvent', { instanceId: ids.timer });
      await c.startNew('Forever', { instanceId: ids.forever });
      expect((await c.waitForCompletion(ids.chain, { timeoutMs: T })).output).toBe('in>1>2>3');
      expect((await c.waitForCompletion(ids.fan, { timeoutMs: T })).output).toBe(285);
      expect((await c.waitForCompletion(ids.parent, { timeoutMs: T })).output).toBe(30 + 'sub>1>2>3'.length);
      await new Promise((r) => setTimeout(r, 400));
      await c.raiseEvent(ids.timer, 'go', { ok: true });
      expect((await c.waitForCompletion(ids.timer, { timeoutMs: T })).output).toEqual({ ok: true });
      await c.terminate(ids.forever, 'stop');
      expect((await c.waitForCompletion(ids.forever, { timeoutMs: T })).runtimeStatus).toBe('Terminated');
      await c.purge(ids.chain);
      expect(await c.getStatus(ids.chain)).toBeUndefined();

      const keys = await allKeys(admin);
      expect(keys.length).toBeGreaterThan(10);
      expect(keys.filter((k) => !k.startsWith(`dbl:{${hub}:`))).toEqual([]);
      // Instance keys carry the odd-but-allowed ids verbatim.
      const keysOf = (id: string) => new HubKeys(hub, partitionOf(id, DEFAULT_PARTITIONS), DEFAULT_PARTITIONS);
      expect(keys).toContain(keysOf(ids.fan).state(ids.fan));
      expect(keys).toContain(keysOf(`${ids.parent}.child@1`).state(`${ids.parent}.child@1`));
      expect(keys.filter((k) => k.startsWith(`${keysOf(ids.large).claims(ids.large)}:`))).toHaveLength(8);
      expect(keys.some((k) => k.includes(ids.chain))).toBe(false);
    } finally {
      await c.close();
      await w.close();
    }

    // Ids that could break out of the hash tag or the key layout are refused before any write.
    const before = await allKeys(admin);
    const c2 = new DurabullClient({ connection: srv.url, hub });
    try {
      for (const bad of ['a{b', 'a}b', 'a:b', 'x{y}', 'a\nb', 'a b', '']) {
        await expect(c2.startNew('Chain', { input: 'x', instanceId: bad })).rejects.toBeInstanceOf(ValidationError);
        await expect(c2.raiseEvent(bad, 'go', 1)).rejects.toBeInstanceOf(ValidationError);
        await expect(c2.terminate(bad)).rejects.toBeInstanceOf(ValidationError);
      }
    } finally {
      await c2.close();
    }
    expect(await allKeys(admin)).toEqual(before);
  }, 60_000);
});

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): a redis-server of its own.
describe('prototype pollution through payloads', () => {
  const hub = 'proto';
  let srv: RedisServer;
  let dir: string;
  beforeAll(async () => {
    dir = await tempDir('proto');
    srv = await startRedisServer({ dataDir: dir });
  });
  afterAll(async () => {
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const evil = (tag: string): unknown =>
    JSON.parse(`{"__proto__":{"polluted":"${tag}"},"constructor":{"prototype":{"polluted":"${tag}-ctor"}},"nested":{"__proto__":{"polluted":"${tag}-nested"}},"ok":1}`);

  it('__proto__ and constructor.prototype keys in input, activity result and event data do not pollute Object.prototype', async () => {
    expect(Object.hasOwn(evil('t') as object, '__proto__')).toBe(true); // a real own property, as JSON.parse makes it
    const registry = new Registry()
      .addOrchestrator('Evil', function* (ctx: OrchestrationContext, input: unknown): Generator<unknown, unknown, any> {
        const result = yield ctx.callActivity('EvilActivity', input);
        const event = yield ctx.waitForExternalEvent('evil');
        return { input, result, event };
      })
      .addActivity('EvilActivity', async (input: unknown) => ({ got: input, own: evil('activity') }));
    const w = await new DurabullWorker({ connection: srv.url, hub, registry, logger: false }).start();
    const c = new DurabullClient({ connection: srv.url, hub });
    try {
      const id = await c.startNew('Evil', { input: evil('input'), instanceId: 'evil' });
      await expect.poll(async () => (await c.getStatus(id))?.runtimeStatus, { timeout: T }).toBe('Running');
      await new Promise((r) => setTimeout(r, 300));
      await c.raiseEvent(id, 'evil', evil('event'));
      const done = await c.waitForCompletion<any>(id, { timeoutMs: T });
      expect(done.runtimeStatus).toBe('Completed');
      const status = await c.getStatus(id, { showHistory: true });
      expect(status?.runtimeStatus).toBe('Completed');

      expect(({} as any).polluted).toBeUndefined();
      expect((Object.prototype as any).polluted).toBeUndefined();
      for (const o of [done.output, status?.output, status?.input]) {
        // Decoded objects are plain objects with Object.prototype, whatever keys they carried.
        expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
        expect((o as any).polluted).toBeUndefined();
      }
      const out = done.output;
      expect(out.input.ok).toBe(1);
      expect(out.result.own.ok).toBe(1);
      expect(out.event.ok).toBe(1);
      expect(out.input.constructor).toEqual({ prototype: { polluted: 'input-ctor' } });
      // msgpackr's guard: a `__proto__` key is decoded as an own `__proto_` key (renamed, value kept), never
      // assigned through the `__proto__` setter.
      expect(Object.hasOwn(out.input, '__proto__')).toBe(false);
      expect(out.input.__proto_).toEqual({ polluted: 'input' });
      expect(out.input.nested.__proto_).toEqual({ polluted: 'input-nested' });
      expect(out.result.own.__proto_).toEqual({ polluted: 'activity' });
      expect(out.result.got.__proto_).toEqual({ polluted: 'input' });
      expect(out.event.__proto_).toEqual({ polluted: 'event' });
      for (const o of [out.input, out.result.own, out.event, out.input.nested]) {
        expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
        expect(o.polluted).toBeUndefined();
      }
    } finally {
      await c.close();
      await w.close();
    }
    expect(({} as any).polluted).toBeUndefined();
  }, 60_000);
});

/**
 * TLS. The redis-server installed here (7.0.15) is built with TLS (it accepts `--tls-port`), which
 * {@link tlsSupported} checks; certificates are made with the `openssl` CLI in a temporary directory.
 */
function tlsSupported(): boolean {
  const bin = findRedisServer();
  if (bin === undefined) return false;
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
  } catch {
    return false;
  }
  // A build without TLS refuses `--tls-port` as an unknown option; one with TLS complains about the missing certificate.
  try {
    execFileSync(bin, ['--port', '0', '--tls-port', '1', '--loglevel', 'warning'], { stdio: 'pipe', timeout: 5000 });
  } catch (e) {
    const out = String((e as { stdout?: Buffer }).stdout ?? '') + String((e as { stderr?: Buffer }).stderr ?? '');
    return /tls-cert-file|TLS/.test(out) && !/Bad directive|wrong number of arguments/i.test(out);
  }
  return false;
}

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): a TLS redis-server of its own.
describe('TLS', () => {
  let dir: string;
  let proc: ChildProcess;
  let port: number;
  let ca: Buffer;

  beforeAll(async () => {
    if (!tlsSupported()) throw new Error('redis-server here has no TLS support or openssl is missing');
    dir = await tempDir('tls');
    const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=durabull-test-ca');
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    await import('node:fs/promises').then((fs) => fs.writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n'));
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '1', '-extfile', 'san.ext');
    ca = await readFile(join(dir, 'ca.crt'));
    port = await getFreePort();
    proc = spawn(
      findRedisServer()!,
      [
        '--port', '0',
        '--tls-port', String(port),
        '--bind', '127.0.0.1',
        '--tls-cert-file', join(dir, 'server.crt'),
        '--tls-key-file', join(dir, 'server.key'),
        '--tls-ca-cert-file', join(dir, 'ca.crt'),
        '--tls-auth-clients', 'no',
        '--dir', dir,
        '--save', '',
        '--appendonly', 'no',
      ],
      { stdio: 'ignore' },
    );
    // Wait for a PING over TLS.
    const deadline = Date.now() + 10_000;
    for (;;) {
      const r = new Redis({ host: '127.0.0.1', port, tls: { ca }, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => {});
      try {
        await r.connect();
        if ((await r.ping()) === 'PONG') break;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((res) => setTimeout(res, 100));
      } finally {
        r.disconnect();
      }
    }
  });
  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((res) => proc.once('exit', res));
      proc.kill('SIGTERM');
      await exited;
    }
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('worker, client and server reach a TLS-only redis-server through ioredis `tls` options, the CLI through rediss://', async () => {
    const connection = { host: '127.0.0.1', port, tls: { ca } };
    const hub = 'tlshub';
    const w = await new DurabullWorker({ connection, hub, registry: baseRegistry(), logger: false }).start();
    const c = new DurabullClient({ connection, hub });
    const app = createServer({ connection, hub });
    try {
      const id = await c.startNew('Chain', { input: 'tls', instanceId: 'tls-chain' });
      expect((await c.waitForCompletion(id, { timeoutMs: T })).output).toBe('tls>1>2>3');
      const fan = await c.startNew('FanOut', { input: 5, instanceId: 'tls-fan' });
      expect((await c.waitForCompletion(fan, { timeoutMs: T })).output).toBe(30);
      const r = await app.inject({ method: 'GET', url: `/instances/${id}` });
      expect(r.statusCode).toBe(200);
      expect(r.json()).toMatchObject({ runtimeStatus: 'Completed', output: 'tls>1>2>3' });
    } finally {
      await app.close();
      await c.close();
      await w.close();
    }
    // The CLI takes a `rediss://` URL; the private CA reaches Node through NODE_EXTRA_CA_CERTS (read at process
    // start, hence a child process: the CLI's main.ts through tsx).
    const main = fileURLToPath(new URL('../../packages/cli/src/main.ts', import.meta.url));
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', tsx, '--conditions=source', main, '--redis', `rediss://127.0.0.1:${port}`, '--hub', hub, 'status', 'tls-chain'],
      { cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt') }, timeout: 30_000 },
    );
    expect(stdout).toContain('Completed');
    // Plain TCP to the TLS port gets nowhere: the connection really is TLS.
    const plain = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    plain.on('error', () => {});
    await expect(plain.connect().then(() => plain.ping())).rejects.toThrow();
    plain.disconnect();
  }, 60_000);
});
