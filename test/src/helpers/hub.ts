import { type OrchestratorFunction, type ActivityFunction, type EntityDefinition, type EntityFunction, Registry } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import { ACTIVITY_QUEUE, HubKeys, type RedisClient } from '@durabull/redis';
import type { JobType } from 'bullmq';
import { DurabullWorker, type DurabullWorkerOptions } from '@durabull/worker';
import { connectRedis, deleteKeysByPattern, redisUrl, uniqueHub } from './redis.js';

import { TEST_PARTITIONS } from './partitions.js';

export interface TestHub {
  hub: string;
  url: string;
  keys: HubKeys;
  /** A plain ioredis connection to the run's Redis (a `Cluster` on a cluster run). */
  redis: RedisClient;
  client: DurabullClient;
  workers: DurabullWorker[];
  /** Starts one more worker on this hub (with the hub's registry unless given). */
  startWorker(opts?: Partial<DurabullWorkerOptions>): Promise<DurabullWorker>;
  /** Closes everything and deletes every key of the hub. */
  cleanup(): Promise<void>;
}

/**
 * A task hub of its own for one test, on the run's Redis: a client, a worker running `functions`,
 * and a plain ioredis connection for looking at keys. `cleanup` deletes only this hub's keys.
 */
export async function createTestHub(
  functions: {
    orchestrators?: Record<string, OrchestratorFunction>;
    activities?: Record<string, ActivityFunction>;
    /** Entities: functions (the function style) by name, or definitions from defineEntity. */
    entities?: Record<string, EntityFunction | EntityDefinition>;
  },
  opts: Partial<DurabullWorkerOptions> & { startWorker?: boolean; stickyStarts?: boolean } = {},
): Promise<TestHub> {
  const url = redisUrl();
  const hub = uniqueHub();
  const registry = new Registry();
  for (const [name, fn] of Object.entries(functions.orchestrators ?? {})) registry.addOrchestrator(name, fn);
  for (const [name, fn] of Object.entries(functions.activities ?? {})) registry.addActivity(name, fn);
  for (const [name, e] of Object.entries(functions.entities ?? {})) {
    if (typeof e === 'function') registry.addEntity(name, e);
    else registry.add(e);
  }
  const redis = connectRedis(url);
  const client = new DurabullClient({
    connection: url,
    hub,
    ...(opts.partitions !== undefined ? { partitions: opts.partitions } : TEST_PARTITIONS),
    ...(opts.stickyStarts !== undefined ? { stickyStarts: opts.stickyStarts } : {}),
  });
  const workers: DurabullWorker[] = [];
  const { startWorker: start = true, stickyStarts: _stickyStarts, ...workerOpts } = opts;
  const th: TestHub = {
    hub,
    url,
    keys: routedKeys(hub, client),
    redis,
    client,
    workers,
    async startWorker(more = {}) {
      const w = new DurabullWorker({ connection: url, hub, registry, logger: false, ...TEST_PARTITIONS, ...workerOpts, ...more });
      workers.push(w);
      return w.start();
    },
    async cleanup() {
      await Promise.all(workers.map((w) => w.close()));
      await client.close();
      await deleteKeysByPattern(redis, th.keys.pattern);
      await redis.quit();
    },
  };
  if (start) await th.startWorker();
  // The partition map read (written, for a new hub) once the worker fixed it: tests may reach partitions at once.
  await client.backend.open();
  return th;
}

/** Worker options for tests of replay itself: every episode replays the history (no extended sessions). */
export const REPLAY_EVERY_EPISODE = { extendedSessions: false } as const;

/** HubKeys methods that take an instance or entity id: their keys are in that id's partition. */
const ROUTED = new Set(['state', 'history', 'inbox', 'pending', 'wait', 'claims', 'claim', 'heartbeats', 'instanceKeys', 'entity', 'entityInbox', 'entitySeen']);

/**
 * The hub's keys as tests read them: a key of an instance or entity in its partition; the
 * partition-level keys (outbox, indexes...) of partition 0; `pattern` covering every partition.
 */
export function routedKeys(hub: string, client: DurabullClient): HubKeys {
  const base = new HubKeys(hub);
  return new Proxy(base, {
    get(target, prop, receiver) {
      if (prop === 'pattern' || prop === 'hub') return Reflect.get(target, prop, receiver);
      let parts;
      try {
        parts = client.backend.partitions;
      } catch {
        return Reflect.get(target, prop, receiver);
      }
      if (typeof prop === 'string' && ROUTED.has(prop)) {
        return (id: string, ...rest: unknown[]) => (client.backend.forInstance(id).keys as unknown as Record<string, (...a: unknown[]) => unknown>)[prop]!(id, ...rest);
      }
      const k = parts[0]!.keys;
      const v = Reflect.get(k, prop, k) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(k) : v;
    },
  });
}

/**
 * One of the hub's BullMQ queues (`activity` or `orchestrator`) over every partition: its jobs in
 * `states`, and the entries of its event stream named `event` (`added`, `completed`...).
 */
export async function queueTally(th: TestHub, queue: string, states: JobType[], event: string): Promise<{ jobs: number; events: number }> {
  let jobs = 0;
  let events = 0;
  for (const p of th.client.backend.partitions) {
    const q = queue === ACTIVITY_QUEUE ? p.activityQueue : p.orchestratorQueue;
    const counts = await q.getJobCounts(...states);
    jobs += Object.values(counts).reduce((a, b) => a + b, 0);
    const stream = (await p.redis.xrange(p.keys.jobPrefix(queue) + 'events', '-', '+')) as [string, string[]][];
    events += stream.filter(([, f]) => f[1] === event).length;
  }
  return { jobs, events };
}
