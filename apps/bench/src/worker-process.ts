/**
 * A worker process for W4 (scale-out), started by the bench as
 *
 *   node --import tsx --conditions=source apps/bench/src/worker-process.ts
 *
 * with BENCH_REDIS_URL, BENCH_ROLE and BENCH_CONCURRENCY, plus BENCH_HUB for the durabull roles
 * (`orchestrators`: orchestrator worker only; `activities`: activity worker only; `all`: both) or BENCH_PREFIX and
 * BENCH_QUEUE for `baseline` (a BullMQ chain worker whose last step publishes the chain id).
 * IPC: sends `{ type: 'ready' }` once connected; answers `{ type: 'stats' }` with its CPU time, its
 * counters (jobs, or DurabullWorker.stats plus failed job attempts) and what it sent to Redis
 * (io-counter.ts); `{ type: 'profile-start' }` / `{ type: 'profile-stop' }` take a CPU profile
 * (profiler.ts; answered with `profile-started` / `profile` and its summary); `{ type: 'stop' }`
 * closes gracefully and exits. Exits when the bench goes away
 * (IPC closes).
 */
import { DurabullWorker } from '@durabull/worker';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { chainProcessor, doneChannel } from './baseline.js';
import { registry } from './functions.js';
import { installIoCounter } from './io-counter.js';
import { startProfile, stopProfile } from './profiler.js';

const url = process.env.BENCH_REDIS_URL;
const role = process.env.BENCH_ROLE;
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 20);
if (!url || (role !== 'orchestrators' && role !== 'activities' && role !== 'all' && role !== 'baseline') || !process.send) {
  console.error(`worker-process: need BENCH_REDIS_URL, BENCH_ROLE=orchestrators|activities|all|baseline and an IPC channel (got ${url}, ${role})`);
  process.exit(2);
}

// Before any connection exists, so that every command and write of this process is counted.
const ioCounts = installIoCounter(Number(new URL(url).port || 6379));
let close: () => Promise<void>;
let stats: () => Record<string, number>;

if (role === 'baseline') {
  const prefix = process.env.BENCH_PREFIX!;
  const name = process.env.BENCH_QUEUE!;
  const conn = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue(name, { connection: conn, prefix });
  let jobs = 0;
  const worker = new Worker(name, chainProcessor(queue, { conn, channel: doneChannel(prefix, name) }), { connection: conn, prefix, concurrency });
  let failedJobs = 0;
  worker.on('completed', () => jobs++);
  worker.on('failed', () => failedJobs++);
  worker.on('error', (err) => console.error(`baseline worker: ${err.message}`));
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
  close = async () => {
    await worker.close();
    await queue.close();
    await conn.quit().catch(() => undefined);
  };
  stats = () => ({ jobs, failedJobs });
} else {
  const worker = await new DurabullWorker({
    connection: url,
    hub: process.env.BENCH_HUB!,
    registry,
    logger: false,
    orchestrators: role !== 'activities',
    activities: role !== 'orchestrators',
    orchestratorConcurrency: concurrency,
    activityConcurrency: concurrency,
  }).start();
  // DurabullWorker keeps its BullMQ workers private and retries failed attempts silently: count them.
  let failedJobs = 0;
  // One BullMQ worker per partition and queue.
  const internals = worker as unknown as { orchestratorWorkers: Worker[]; activityWorkers: Worker[] };
  for (const w of [...internals.orchestratorWorkers, ...internals.activityWorkers]) w.on('failed', () => failedJobs++);
  close = () => worker.close();
  stats = () => ({ ...worker.stats, failedJobs });
}

process.on('message', (m: { type?: string }) => {
  if (m?.type === 'stats') {
    const cpu = process.cpuUsage();
    process.send!({ type: 'stats', cpuMs: (cpu.user + cpu.system) / 1000, rss: process.memoryUsage.rss(), stats: stats(), io: ioCounts() });
  } else if (m?.type === 'profile-start') {
    void startProfile().then(
      () => process.send!({ type: 'profile-started' }),
      (err: unknown) => process.send!({ type: 'profile-started', error: String(err) }),
    );
  } else if (m?.type === 'profile-stop') {
    void stopProfile().then(
      (summary) => process.send!({ type: 'profile', summary }),
      (err: unknown) => process.send!({ type: 'profile', error: String(err) }),
    );
  } else if (m?.type === 'stop') {
    void close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  }
});
process.on('disconnect', () => process.exit(3));
process.send({ type: 'ready', pid: process.pid });
