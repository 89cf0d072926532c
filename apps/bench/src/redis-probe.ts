/**
 * What the benchmark reads from Redis itself: INFO (commands, CPU, memory), the keys a workload
 * left behind (SCAN + MEMORY USAGE), deleting them, and a MONITOR census of the commands one run
 * sends.
 */
import { createHash } from 'node:crypto';
import { compositeLua, loadScripts, scanKeys } from '@durabull/redis';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { counterDelta } from './stats.js';

export interface RedisSnapshot {
  /** total_commands_processed (on Redis 7 it also counts the commands a script runs). */
  totalCommands: number;
  /** INFO commandstats: calls per command (script inner calls included, under their own names). */
  calls: Record<string, number>;
  /** INFO commandstats: microseconds per command. */
  usec: Record<string, number>;
  /** used_cpu_user + used_cpu_sys of the redis-server process, seconds. */
  cpuSec: number;
  usedMemory: number;
  at: number;
}

export interface SnapshotDelta {
  totalCommands: number;
  calls: Record<string, number>;
  usec: Record<string, number>;
  cpuMs: number;
  ms: number;
}

export interface KeysSummary {
  keys: number;
  /** Sum of MEMORY USAGE over the keys. */
  bytes: number;
  /** By kind of key (durabull: `i`, `h`, `outbox`...; BullMQ: `<queue>:job`, `<queue>:events`...). */
  byKind: Record<string, { keys: number; bytes: number }>;
}

/** Redis' INFO text as a map. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

/** BullMQ's own per-queue keys (anything else under a queue is a job id). */
const BULLMQ_QUEUE_KEYS = new Set([
  'id', 'meta', 'events', 'wait', 'paused', 'active', 'completed', 'failed', 'delayed', 'prioritized', 'marker', 'stalled',
  'stalled-check', 'pc', 'limiter', 'waiting-children', 'de', 'repeat', 'metrics', 'schedulers',
]);
const BULLMQ_JOB_SUFFIXES = new Set(['lock', 'logs', 'dependencies', 'processed', 'failed', 'unsuccessful']);

/**
 * The kind of a key below `prefix:` for the "left behind" breakdown: durabull keys by their first
 * segment (`i`, `h`, `outbox`, `idx`...), BullMQ keys as `<queue>:<structure>` or `<queue>:job`.
 */
export function keyKind(rest: string, queues: readonly string[]): string {
  const parts = rest.split(':');
  const first = parts[0] ?? '';
  if (!queues.includes(first)) return parts.length > 1 && first === 'idx' ? `idx:${parts[1]}` : first;
  const second = parts[1] ?? '';
  if (parts.length === 2 && BULLMQ_QUEUE_KEYS.has(second)) return `${first}:${second}`;
  if (parts.length === 3 && BULLMQ_JOB_SUFFIXES.has(parts[2] ?? '')) return `${first}:job:${parts[2]}`;
  return `${first}:job`;
}

export class RedisProbe {
  constructor(readonly redis: Redis) {}

  async info(section?: string): Promise<Record<string, string>> {
    return parseInfo(section ? await this.redis.info(section) : await this.redis.info());
  }

  async snapshot(): Promise<RedisSnapshot> {
    const [statsText, cmdText, cpuText, memText] = await Promise.all([
      this.redis.info('stats'),
      this.redis.info('commandstats'),
      this.redis.info('cpu'),
      this.redis.info('memory'),
    ]);
    const stats = parseInfo(statsText);
    const cpu = parseInfo(cpuText);
    const mem = parseInfo(memText);
    const calls: Record<string, number> = {};
    const usec: Record<string, number> = {};
    for (const [k, v] of Object.entries(parseInfo(cmdText))) {
      if (!k.startsWith('cmdstat_')) continue;
      const name = k.slice('cmdstat_'.length);
      const m = /calls=(\d+),usec=(\d+)/.exec(v);
      if (!m) continue;
      calls[name] = Number(m[1]);
      usec[name] = Number(m[2]);
    }
    return {
      totalCommands: Number(stats.total_commands_processed ?? 0),
      calls,
      usec,
      cpuSec: Number(cpu.used_cpu_user ?? 0) + Number(cpu.used_cpu_sys ?? 0),
      usedMemory: Number(mem.used_memory ?? 0),
      at: performance.now(),
    };
  }

  static delta(a: RedisSnapshot, b: RedisSnapshot): SnapshotDelta {
    return {
      totalCommands: b.totalCommands - a.totalCommands,
      calls: counterDelta(a.calls, b.calls),
      usec: counterDelta(a.usec, b.usec),
      cpuMs: (b.cpuSec - a.cpuSec) * 1000,
      ms: b.at - a.at,
    };
  }

  async usedMemory(): Promise<number> {
    return Number((await this.info('memory')).used_memory ?? 0);
  }

  /** Keys matching `pattern` (SCAN of every master on a cluster). */
  async scan(pattern: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const batch of scanKeys(this.redis, pattern, 2000)) keys.push(...batch);
    return keys;
  }

  /** Keys matching `prefix:*`, their memory, and a breakdown by kind. */
  async keysSummary(prefix: string, queues: readonly string[]): Promise<KeysSummary> {
    const keys = await this.scan(`${globEscape(prefix)}:*`);
    const summary: KeysSummary = { keys: keys.length, bytes: 0, byKind: {} };
    for (let i = 0; i < keys.length; i += 1000) {
      const chunk = keys.slice(i, i + 1000);
      const p = this.redis.pipeline();
      for (const k of chunk) p.memory('USAGE', k, 'SAMPLES', 0);
      const res = (await p.exec()) ?? [];
      chunk.forEach((k, j) => {
        const bytes = Number(res[j]?.[1] ?? 0);
        const kind = keyKind(k.slice(prefix.length + 1), queues);
        const slot = (summary.byKind[kind] ??= { keys: 0, bytes: 0 });
        slot.keys++;
        slot.bytes += bytes;
        summary.bytes += bytes;
      });
    }
    return summary;
  }

  /** Deletes every key matching the glob `pattern` (SCAN + UNLINK); returns how many. */
  async deleteMatching(pattern: string): Promise<number> {
    let n = 0;
    for await (const batch of scanKeys(this.redis, pattern, 2000)) n += await this.redis.unlink(...batch);
    return n;
  }
}

/** Escapes Redis glob characters so a literal prefix can head a SCAN pattern. */
export function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

/** Script names by sha1, and by their text (for EVAL, which MONITOR prints escaped). */
export interface ScriptNames {
  bySha: Map<string, string>;
  byText: Map<string, string>;
}

/** The letters and digits of a script's text: the same for the source and MONITOR's escaped copy. */
export function normalizeLua(text: string, escaped = false): string {
  const t = escaped ? text.replace(/\\x[0-9a-fA-F]{2}|\\[nrtab"\\]/g, '') : text;
  return t.replace(/[^A-Za-z0-9]/g, '');
}

/** The scripts ioredis clients have defined (durabull's and BullMQ's), by sha1 and by text. */
export function scriptNames(...clients: unknown[]): ScriptNames {
  const out: ScriptNames = { bySha: new Map(), byText: new Map() };
  for (const c of clients) {
    const set = (c as { scriptsSet?: Record<string, { sha?: string; lua?: string }> } | undefined)?.scriptsSet;
    if (!set) continue;
    for (const [name, script] of Object.entries(set)) {
      const short = name.replace(/:[^:]*$/, ''); // BullMQ names its commands `<script>:<version>`
      if (script?.sha) out.bySha.set(script.sha, short);
      if (script?.lua) out.byText.set(normalizeLua(script.lua), short);
    }
  }
  return out;
}

/** sha1 of a script's text, as ioredis sends it with EVALSHA. */
export function scriptSha(lua: string): string {
  return createHash('sha1').update(lua).digest('hex');
}

/**
 * The names of every script a durabull or BullMQ client of this run may call: durabull's from its
 * Lua files, BullMQ's from a queue's connection (BullMQ defines all its scripts on a connection
 * when a queue connects; the queue's `meta` key it writes is deleted again).
 */
export async function allScriptNames(url: string, prefix: string): Promise<ScriptNames> {
  const out: ScriptNames = { bySha: new Map(), byText: new Map() };
  for (const s of loadScripts()) {
    out.bySha.set(scriptSha(s.lua), s.name);
    out.byText.set(normalizeLua(s.lua), s.name);
  }
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue('bench-script-names', { connection: conn, prefix });
  try {
    await queue.waitUntilReady();
    const bull = scriptNames(conn);
    for (const [k, v] of bull.bySha) out.bySha.set(k, v);
    for (const [k, v] of bull.byText) out.byText.set(k, v);
    // Our scripts with a BullMQ job's completion (job-composites.ts).
    const sets = (conn as unknown as { scriptsSet: Record<string, { lua: string }> }).scriptsSet;
    const moveToFinished = Object.entries(sets).find(([name]) => name.startsWith('moveToFinished:'))?.[1].lua;
    if (moveToFinished) {
      for (const name of ['finishActivity', 'finishEpisode'] as const) {
        const lua = compositeLua(name, moveToFinished);
        out.bySha.set(scriptSha(lua), name);
        out.byText.set(normalizeLua(lua), name);
      }
    }
  } finally {
    await queue.close();
    await new RedisProbe(conn).deleteMatching(`${globEscape(prefix)}:bench-script-names:*`).catch(() => 0);
    await conn.quit().catch(() => undefined);
  }
  return out;
}

/** A command name for people: `evalsha:<sha1>` / `eval:<sha1>` become `script:<name>` (or `script:<first 8 hex digits>`). */
export function commandLabel(key: string, names: ScriptNames): string {
  const m = /^(?:evalsha|eval):([0-9a-f]{40})$/.exec(key);
  if (!m) return key;
  return `script:${names.bySha.get(m[1]!) ?? m[1]!.slice(0, 8)}`;
}

/** Counts keyed as io-counter.ts keys them, relabelled with `commandLabel` (labels that meet are summed). */
export function labelCounts(counts: Readonly<Record<string, number>>, names: ScriptNames): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(counts)) {
    const label = commandLabel(k, names);
    out[label] = (out[label] ?? 0) + v;
  }
  return out;
}

export interface ScriptCensus {
  /** Calls of the script (EVALSHA/EVAL lines). */
  calls: number;
  /** Commands the script ran, by name, over all its calls. */
  inner: Record<string, number>;
  innerTotal: number;
}

export interface Census {
  /** Commands sent by clients, by name; scripts as `script:<name>`. */
  topLevel: Record<string, number>;
  /** Commands run inside scripts, by name. */
  inScripts: Record<string, number>;
  topLevelTotal: number;
  inScriptsTotal: number;
  /** Per script (`script:<name>`): its calls and the commands it ran (MONITOR prints them right after the call). */
  byScript: Record<string, ScriptCensus>;
  /** Commands, sent or run inside scripts, on BullMQ's marker keys (`<prefix>:<queue>:marker`). */
  markerOps: number;
}

/** One MONITOR line, as the census keeps it: the command, its first argument, and whether a script ran it. */
export interface MonitorLine {
  args: string[];
  lua: boolean;
}

/**
 * Counts MONITOR lines: top-level commands by name (EVAL/EVALSHA as `script:<name>`), commands run
 * inside scripts, and those per script. A script's commands follow its call line (Redis 7 feeds
 * MONITOR the call before running it), so they are counted against the last script call.
 */
export function countMonitorLines(lines: readonly MonitorLine[], byName: ScriptNames): Census {
  const topLevel: Record<string, number> = {};
  const inScripts: Record<string, number> = {};
  const byScript: Record<string, ScriptCensus> = {};
  let current: ScriptCensus | undefined;
  let markerOps = 0;
  for (const { args, lua } of lines) {
    let cmd = (args[0] ?? '?').toLowerCase();
    if (cmd === 'echo') continue;
    if ((args[1] ?? '').endsWith(':marker')) markerOps++;
    if (!lua && (cmd === 'evalsha' || cmd === 'eval')) {
      const name = cmd === 'eval' ? byName.byText.get(normalizeLua(args[1] ?? '', true)) : byName.bySha.get(args[1] ?? '');
      cmd = `script:${name ?? (cmd === 'eval' ? createHash('sha1').update(args[1] ?? '').digest('hex') : (args[1] ?? '')).slice(0, 8)}`;
      current = byScript[cmd] ??= { calls: 0, inner: {}, innerTotal: 0 };
      current.calls++;
    } else if (!lua) {
      current = undefined;
    } else if (current) {
      current.inner[cmd] = (current.inner[cmd] ?? 0) + 1;
      current.innerTotal++;
    }
    const into = lua ? inScripts : topLevel;
    into[cmd] = (into[cmd] ?? 0) + 1;
  }
  const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
  return { topLevel, inScripts, topLevelTotal: sum(topLevel), inScriptsTotal: sum(inScripts), byScript, markerOps };
}

/**
 * A connection in MONITOR mode, with an error listener of its own: on a busy Redis the first
 * MONITOR lines can arrive in the same read as MONITOR's OK, before ioredis (6.1) has switched the
 * connection to monitoring, and it reports them as replies to nothing ("Command queue state
 * error"), which `conn.monitor()` takes for a failure. Lines before the census' start marker are
 * not counted anyway.
 */
async function startMonitor(url: string): Promise<Redis> {
  const monitor = new Redis(url, { monitor: true, maxRetriesPerRequest: null, lazyConnect: true });
  monitor.on('error', () => undefined);
  const on = new Promise<void>((resolve) => monitor.once('monitoring', () => resolve()));
  await monitor.connect();
  await on;
  return monitor;
}

/**
 * Runs `fn` with MONITOR attached and counts the commands Redis saw: the ones clients sent (EVAL
 * and EVALSHA named after their script) and the ones scripts ran. MONITOR slows Redis down, so
 * this is for counting, never for timing.
 */
export async function monitorCensus(url: string, names: () => ScriptNames, fn: () => Promise<void>): Promise<Census> {
  const monitor = await startMonitor(url);
  const raw: MonitorLine[] = [];
  let counting = false;
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (!counting) return;
    raw.push({ args: args.slice(0, 2), lua: source === 'lua' });
  });
  // MONITOR starts streaming asynchronously: a marker tells us when it is on.
  const marker = `bench-census-${Date.now()}`;
  const seen = new Promise<void>((resolve) => {
    const on = (_t: string, args: string[]) => {
      if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) {
        monitor.off('monitor', on);
        resolve();
      }
    };
    monitor.on('monitor', on);
  });
  const pinger = new Redis(url);
  counting = true;
  await pinger.echo(marker);
  await seen;
  raw.length = 0;
  try {
    await fn();
  } finally {
    // Let the last lines arrive, then stop.
    const endMarker = `${marker}-end`;
    const ended = new Promise<void>((resolve) => {
      const on = (_t: string, args: string[]) => {
        if (args[0]?.toLowerCase() === 'echo' && args[1] === endMarker) {
          monitor.off('monitor', on);
          resolve();
        }
      };
      monitor.on('monitor', on);
    });
    await pinger.echo(endMarker);
    await ended;
    counting = false;
    monitor.disconnect();
    pinger.disconnect();
  }
  return countMonitorLines(raw, names());
}

export interface SlowlogCensus {
  /** Top-level commands logged (scripts as `script:<name>`): calls and microseconds of execution. */
  byCommand: Record<string, { calls: number; usec: number }>;
  calls: number;
  usec: number;
  /** The run logged more than `slowlog-max-len` entries: the oldest are missing from the figures. */
  overflowed: boolean;
}

/**
 * Runs `fn` with the slow log taking every command (`slowlog-log-slower-than 0`) and sums the
 * execution time Redis logged per command and per script: the wall-clock time spent running it (a
 * script's with the commands it runs), without reading, parsing and replying; on a busy machine
 * it includes the time the Redis thread was not on a CPU. Changes this Redis' config
 * for the duration (restored after): only for a Redis the bench started itself.
 */
export async function slowlogCensus(redis: Redis, names: () => ScriptNames, fn: () => Promise<void>, maxLen = 200_000): Promise<SlowlogCensus> {
  const get = async (key: string) => ((await redis.config('GET', key)) as string[])[1] ?? '';
  const [slower, len] = [await get('slowlog-log-slower-than'), await get('slowlog-max-len')];
  await redis.config('SET', 'slowlog-max-len', String(maxLen));
  await redis.slowlog('RESET');
  await redis.config('SET', 'slowlog-log-slower-than', '0');
  let entries: unknown[];
  try {
    await fn();
  } finally {
    await redis.config('SET', 'slowlog-log-slower-than', slower);
    entries = (await redis.slowlog('GET', -1)) as unknown[];
    await redis.slowlog('RESET');
    await redis.config('SET', 'slowlog-max-len', len);
  }
  const byName = names();
  // The CONFIG SET that turned logging on is the first entry: when it is gone, the log overflowed.
  const out: SlowlogCensus = { byCommand: {}, calls: 0, usec: 0, overflowed: true };
  for (const e of entries) {
    const [, , usec, args, client] = e as [number, number, number, string[], string];
    // Redis 7 logs the commands a script runs too, as the script's client `?:0`: within the script's time already.
    if (client === '?:0') continue;
    let cmd = String(args[0] ?? '?').toLowerCase();
    if (cmd === 'config' || cmd === 'slowlog') {
      if (String(args[2]).toLowerCase() === 'slowlog-log-slower-than') out.overflowed = false;
      continue;
    }
    // The log keeps a script's text cut short: an EVAL (ioredis' fallback for an unknown script) stays `eval`.
    if (cmd === 'evalsha') cmd = commandLabel(`evalsha:${String(args[1] ?? '')}`, byName);
    const slot = (out.byCommand[cmd] ??= { calls: 0, usec: 0 });
    slot.calls++;
    slot.usec += usec;
    out.calls++;
    out.usec += usec;
  }
  return out;
}
