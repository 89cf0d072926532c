/**
 * A CPU profile of this process between two calls (V8's sampling profiler through node:inspector),
 * summed by where the code comes from: BullMQ, ioredis, durabull's packages, other dependencies,
 * Node's own code, the garbage collector. W4's worker processes take one of an untimed batch
 * (profiling costs CPU of its own), so that the CPU of each role splits by library.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { join } from 'node:path';

/** Self time by source, ms, and the functions with the most self time. */
export interface ProfileSummary {
  /** Sampled time, ms (idle excluded). */
  totalMs: number;
  byCategory: Record<string, number>;
  /** `function (category:file:line)` → self ms, largest first. */
  top: [string, number][];
}

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

const PACKAGES: [RegExp, string][] = [
  [/\/packages\/core\//, 'durabull core'],
  [/\/packages\/redis\//, 'durabull redis'],
  [/\/packages\/worker\//, 'durabull worker'],
  [/\/packages\/client\//, 'durabull client'],
  [/\/apps\/bench\//, 'bench'],
  [/node_modules\/bullmq\//, 'bullmq'],
  [/node_modules\/ioredis\//, 'ioredis'],
  [/node_modules\/(@ioredis|redis-errors|redis-parser|denque|cluster-key-slot|standard-as-callback)\//, 'ioredis'],
  [/node_modules\/(msgpackr|@msgpack)/, 'msgpack'],
  [/node_modules\//, 'other dependencies'],
];

const SOCKET_WRITES = new Set(['writeBuffer', 'writev', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString', 'writeUcs2String']);

/** Where a sampled function comes from. */
export function categoryOf(frame: CallFrame): string {
  const name = frame.functionName;
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8 / native';
  if (name === '(idle)') return 'idle';
  if (name === '(root)') return 'V8 / native';
  const url = frame.url;
  // Node's stream bindings: the write(2)/writev(2) of a socket, and copying the data for it.
  if (!url && SOCKET_WRITES.has(name)) return 'socket writes';
  if (!url) return 'V8 / native';
  for (const [re, cat] of PACKAGES) if (re.test(url)) return cat;
  if (url.startsWith('node:')) return 'node';
  return 'other';
}

/** Self time per category and per function of a V8 CPU profile (idle samples left out). */
export function summarizeProfile(p: CpuProfile, topN = 15): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  for (const n of p.nodes) byId.set(n.id, n);
  const byCategory: Record<string, number> = {};
  const byFunction = new Map<string, number>();
  let totalMs = 0;
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    if (!node) continue;
    // timeDeltas[i] is the time before sample i; the sample stands for the interval after it (the next delta).
    const ms = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000;
    const cat = categoryOf(node.callFrame);
    if (cat === 'idle') continue;
    totalMs += ms;
    byCategory[cat] = (byCategory[cat] ?? 0) + ms;
    const f = node.callFrame;
    const file = f.url ? f.url.replace(/^.*\/(node_modules\/|packages\/|apps\/)/, '$1') : '';
    const key = `${f.functionName || '(anonymous)'} (${file ? `${file}:${f.lineNumber + 1}` : cat === 'V8 / native' || cat === 'socket writes' ? 'native' : cat})`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + ms);
  }
  const top = [...byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, topN);
  return { totalMs, byCategory, top };
}

let session: Session | undefined;

/** Starts V8's sampling profiler in this process (every `intervalUs` µs). */
export async function startProfile(intervalUs = 250): Promise<void> {
  if (session) throw new Error('startProfile: a profile is running already');
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
}

/** Stops the profiler and sums the profile. */
export async function stopProfile(): Promise<ProfileSummary> {
  if (!session) throw new Error('stopProfile: no profile is running');
  const s = session;
  session = undefined;
  try {
    const { profile } = (await s.post('Profiler.stop')) as { profile: CpuProfile };
    // BENCH_PROFILE_DIR keeps the raw profile (open it in Chrome's DevTools) as <pid>-<time>.cpuprofile.
    const dir = process.env.BENCH_PROFILE_DIR;
    if (dir) writeFileSync(join(dir, `${process.pid}-${Date.now()}.cpuprofile`), JSON.stringify(profile));
    return summarizeProfile(profile);
  } finally {
    await s.post('Profiler.disable').catch(() => undefined);
    s.disconnect();
  }
}
