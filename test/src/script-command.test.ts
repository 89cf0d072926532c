/**
 * The scripts' wire encoding (packages/redis/src/script-command.ts): the same bytes as ioredis' own
 * for any mix of text and Buffer arguments, and the EVALSHA/EVAL handling kept, including a script
 * cache flushed under a connection (on a redis-server of this test's own: SCRIPT FLUSH would touch
 * every other test's scripts on the shared one).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeCommand, useFastEncoding, defineScripts } from '@durabull/redis';
import { type RedisServer, startRedisServer } from '@durabull/testing';
import { Command, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestHub } from './helpers/hub.js';
import { doubleThrice } from './helpers/orchestration.js';

/** ioredis' own encoding of a command (its arguments converted as it converts them). */
function ioredisBytes(name: string, args: (string | number | Buffer)[]): Buffer {
  const w = new Command(name, args).toWritable({});
  return typeof w === 'string' ? Buffer.from(w, 'utf8') : w;
}

function ourBytes(name: string, args: (string | number | Buffer)[]): Buffer {
  const w = encodeCommand(name, args.map((a) => (typeof a === 'number' ? String(a) : a)));
  return typeof w === 'string' ? Buffer.from(w, 'utf8') : w;
}

describe('encodeCommand', () => {
  it('writes the bytes ioredis writes, for text, numbers, empty and binary Buffers, multi-byte text', () => {
    const cases: (string | number | Buffer)[][] = [
      [],
      ['k1', 'v'],
      ['', Buffer.alloc(0), ''],
      [Buffer.from([0, 13, 10, 255, 128])],
      ['dbl:{hub:0}:i:ä€𝄞', 42, -1.5, Buffer.from('\r\n$3\r\n'), 'tail'],
      [Buffer.from([1]), Buffer.from([2, 3]), 'x', Buffer.alloc(0), Buffer.from([4])],
    ];
    // And random mixes, seeded so a failure repeats.
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let c = 0; c < 200; c++) {
      const args: (string | number | Buffer)[] = [];
      for (let i = rnd(40); i > 0; i--) {
        const k = rnd(4);
        if (k === 0) args.push(Buffer.from(Array.from({ length: rnd(50) }, () => rnd(256))));
        else if (k === 1) args.push(rnd(100000));
        else if (k === 2) args.push(String.fromCodePoint(...Array.from({ length: rnd(12) }, () => 32 + rnd(0x2000))));
        else args.push(`key:${rnd(1000)}`);
      }
      cases.push(args);
    }
    for (const args of cases) {
      for (const name of ['evalsha', 'eval']) expect(ourBytes(name, args).equals(ioredisBytes(name, args))).toBe(true);
    }
    // Text only stays a string (ioredis writes it as is); a Buffer makes it a Buffer.
    expect(typeof encodeCommand('get', ['k'])).toBe('string');
    expect(Buffer.isBuffer(encodeCommand('set', ['k', Buffer.from([1])]))).toBe(true);
  });
});

describe('useFastEncoding on a connection', () => {
  let srv: RedisServer;
  let dir: string;
  let redis: Redis;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dbl-script-cmd-'));
    srv = await startRedisServer({ dataDir: dir });
    redis = new Redis(srv.url, { lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    redis?.disconnect();
    await srv?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs a script with Buffer arguments, again after SCRIPT FLUSH, in a pipeline too', async () => {
    redis.defineCommand('echoArgs', { numberOfKeys: 1, lua: "return {KEYS[1], ARGV[1], ARGV[2], tostring(#ARGV)}" });
    expect(useFastEncoding(redis, 'echoArgs')).toBe(true);
    expect(useFastEncoding(redis, 'echoArgs')).toBe(true); // already: unchanged
    expect(useFastEncoding(redis, 'noSuchScript')).toBe(false);
    const call = () => (redis as unknown as { echoArgsBuffer(...a: unknown[]): Promise<Buffer[]> }).echoArgsBuffer('k', Buffer.from([0, 255, 13, 10]), 'é');
    const expected = [Buffer.from('k'), Buffer.from([0, 255, 13, 10]), Buffer.from('é'), Buffer.from('2')];
    expect(await call()).toEqual(expected); // sent as EVAL: the first use on this connection
    expect(await call()).toEqual(expected); // EVALSHA
    await redis.script('FLUSH');
    expect(await call()).toEqual(expected); // NOSCRIPT, then sent again as EVAL
    const res = await (redis.pipeline() as unknown as { echoArgs(...a: unknown[]): { exec(): Promise<[Error | null, unknown][]> } }).echoArgs('p', 'a', Buffer.from('b')).exec();
    expect(res[0]).toEqual([null, ['p', 'a', 'b', '2']]);
  });

  it('is what defineScripts gives every script of the backend', () => {
    const other = new Redis(srv.url, { lazyConnect: true });
    try {
      defineScripts(other);
      const set = (other as unknown as { scriptsSet: Record<string, { Command: typeof Command }> }).scriptsSet;
      const names = Object.keys(set);
      expect(names).toContain('commitEpisode');
      for (const n of names) expect(Object.getPrototypeOf(set[n]!.Command)).not.toBe(Command);
    } finally {
      other.disconnect();
    }
  });
});

describe('a worker', () => {
  it("gives BullMQ's scripts on its queue connection the encoding, and chains run through them", async () => {
    const th = await createTestHub({ orchestrators: { Chain: doubleThrice }, activities: { Double: async (x: number) => x * 2 } }, { startWorker: false });
    try {
      await th.startWorker({ activities: false });
      const acts = await th.startWorker({ orchestrators: false });
      const set = (acts.backend.queueConnection as unknown as { scriptsSet: Record<string, { Command: typeof Command }> }).scriptsSet;
      const bull = Object.keys(set).filter((n) => /^moveTo(Active|Finished):/.test(n));
      expect(bull).toHaveLength(2);
      for (const n of bull) expect(Object.getPrototypeOf(set[n]!.Command)).not.toBe(Command);
      const ids = await Promise.all([1, 2, 3].map((x) => th.client.startNew('Chain', { input: x })));
      for (const [k, id] of ids.entries()) expect((await th.client.waitForCompletion(id, { timeoutMs: 15_000 })).output).toBe((k + 1) * 8);
    } finally {
      await th.cleanup();
    }
  });
});
