/**
 * The worker registry of a task hub: every worker keeps an entry (who it is, what it runs, its
 * stats) under a key with a time to live that its heartbeat renews, so the entry of a process that
 * died goes away on its own. Clients read it to refuse starts of orchestrators that no live worker
 * runs ({@link WorkerRegistry.assertServed}) and to list the workers.
 *
 * Layout (HubKeys): `workers` is a set of worker ids; `workers:<id>` is one entry (JSON, with a TTL).
 * Both share the partition's hash tag, and a read is one script (SMEMBERS + GET + PTTL): no SCAN.
 * Liveness is the key's TTL, kept by Redis' own clock: the clocks of workers and clients need not
 * agree.
 */
import { EntityNotFoundError, EntityOperationNotFoundError, OrchestratorNotServedError, assertFunctionName } from '@durabull/core';
import type { RedisClient } from './connection.js';
import type { HubKeys } from './keys.js';

/** What a worker runs. */
export type WorkerKind = 'orchestrator' | 'activity';

/** A worker's entry as it writes it at every heartbeat. */
export interface WorkerEntry {
  /** Unique per worker process and start: `<host>-<pid>-<random>`. */
  id: string;
  host: string;
  pid: number;
  /** The `@durabull/worker` package version. */
  version: string;
  kinds: WorkerKind[];
  /** The orchestrators it runs (empty when it runs activities only). */
  orchestratorNames: string[];
  /** The activities it runs (empty when it runs orchestrators only). */
  activityNames: string[];
  /** When the worker started, ms since the epoch (its own clock). */
  startedAt: number;
  heartbeatIntervalMs: number;
  /** The entry's time to live: how long after its last heartbeat a dead worker drops out. */
  heartbeatExpiryMs: number;
  /** Jobs running at the heartbeat: episodes and activities (queue jobs and activities run in place). */
  jobsRunning: number;
  /** Episodes committed since the worker started. */
  episodesDone: number;
  /** Activities run since the worker started. */
  activitiesDone: number;
  /**
   * It reads the wake-ups handed to it (sticky episodes): a client may hand it the first episode of
   * an instance it starts (`stickyStarts`).
   */
  sticky?: boolean;
  /** The entities it runs (absent or empty when it runs none). */
  entityNames?: string[];
  /** The operations of its typed entities (defineEntity), by entity name. */
  entityOperations?: Record<string, string[]>;
}

/** A live worker as the registry lists it. */
export interface WorkerInfo extends Omit<WorkerEntry, 'startedAt'> {
  startedAt: Date;
  /** The last heartbeat: the entry's expiry less `heartbeatExpiryMs` (from the key's TTL, Redis' clock). */
  lastHeartbeatAt: Date;
  /** When the entry expires unless renewed. */
  expiresAt: Date;
}

/** The orchestrator names live workers run, as read at `readAt` (this process' clock). */
interface Served {
  names: Set<string>;
  /** By orchestrator name: the live workers that run it and read the wake-ups handed to them. */
  sticky: Map<string, string[]>;
  /** Live workers that run orchestrators (0: nothing is checked). */
  orchestratorWorkers: number;
  readAt: number;
}

type RegistryScripts = RedisClient & {
  heartbeatWorker(index: string, entryKey: string, id: string, entry: string, ttlMs: number): Promise<[number]>;
  readWorkers(index: string): Promise<(string | number)[]>;
};

/** How long the served names are reused before the next start reads them again. */
export const DEFAULT_SERVED_CACHE_MS = 2000;

export class WorkerRegistry {
  private served: Served | undefined;
  private reading: Promise<Served> | undefined;
  private entitiesServed: { names: Map<string, string[] | undefined>; workers: number; readAt: number } | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: HubKeys,
    /** How long the served names are reused (ms); a name missing from them is read again once before a refusal. */
    private readonly cacheMs = DEFAULT_SERVED_CACHE_MS,
  ) {}

  private get scripts(): RegistryScripts {
    return this.redis as RegistryScripts;
  }

  /** Writes or renews the worker's entry, with a time to live of `expiryMs`. */
  async heartbeat(entry: WorkerEntry): Promise<void> {
    await this.scripts.heartbeatWorker(this.keys.workers, this.keys.worker(entry.id), entry.id, JSON.stringify(entry), entry.heartbeatExpiryMs);
  }

  /** Removes a worker's entry (its graceful shutdown). */
  async remove(workerId: string): Promise<void> {
    await this.redis.multi().del(this.keys.worker(workerId)).srem(this.keys.workers, workerId).exec();
  }

  /** The live workers (one script call), oldest first. */
  async list(): Promise<WorkerInfo[]> {
    const now = Date.now();
    const raw = await this.scripts.readWorkers(this.keys.workers);
    const out: WorkerInfo[] = [];
    for (let k = 0; k + 2 < raw.length; k += 3) {
      const entry = parseEntry(String(raw[k + 1]));
      if (!entry) continue;
      const ttl = Number(raw[k + 2]);
      const { startedAt, ...rest } = entry;
      out.push({
        ...rest,
        id: String(raw[k]),
        startedAt: new Date(startedAt),
        lastHeartbeatAt: new Date(now + ttl - entry.heartbeatExpiryMs),
        expiresAt: new Date(now + ttl),
      });
    }
    return out.sort((a, b) => a.startedAt.getTime() - b.startedAt.getTime() || a.id.localeCompare(b.id));
  }

  /**
   * Throws OrchestratorNotServedError unless a live worker of the hub runs orchestrator `name`, or
   * no live worker runs orchestrators at all (nothing to check against: the start waits, Pending,
   * for one). At most one Redis read: the names are reused for `cacheMs`, and a name missing from
   * names read earlier is read again once before the refusal (a worker that just started with it).
   * Concurrent calls share one read.
   */
  async assertServed(name: string): Promise<void> {
    assertFunctionName('orchestrator', name);
    let served = this.served && Date.now() - this.served.readAt < this.cacheMs ? this.served : undefined;
    const cached = served !== undefined;
    served ??= await this.readServed();
    if (isServed(served, name)) return;
    if (cached) {
      served = await this.readServed();
      if (isServed(served, name)) return;
    }
    throw new OrchestratorNotServedError(name, this.keys.hub, [...served.names].sort());
  }

  /**
   * A live worker that runs orchestrator `name` and reads the wake-ups handed to it, picked at random
   * among them, from the names {@link assertServed} read last (no read of its own; none when they
   * are older than `cacheMs`). The caller's script checks that the worker's entry is still live.
   */
  stickyWorkerFor(name: string): string | undefined {
    const s = this.served;
    if (!s || Date.now() - s.readAt >= this.cacheMs) return undefined;
    const ids = s.sticky.get(name);
    return ids && ids.length > 0 ? ids[Math.floor(Math.random() * ids.length)] : undefined;
  }

  /**
   * Throws EntityNotFoundError unless a live worker of the hub runs entity `name` (or no live
   * worker runs entities: nothing to check against), and EntityOperationNotFoundError when the
   * workers that run it list its operations (a typed entity) without `operation`. Names are reused
   * for `cacheMs`; a refusal from names read earlier reads them again once.
   */
  async assertEntityServed(name: string, operation?: string): Promise<void> {
    const check = (s: NonNullable<WorkerRegistry['entitiesServed']>): Error | undefined => {
      if (s.workers === 0) return undefined;
      if (!s.names.has(name)) return new EntityNotFoundError(name, [...s.names.keys()].sort(), this.keys.hub);
      const ops = s.names.get(name);
      if (operation !== undefined && ops && !ops.includes(operation)) return new EntityOperationNotFoundError(name, operation, ops);
      return undefined;
    };
    const fresh = this.entitiesServed && Date.now() - this.entitiesServed.readAt < this.cacheMs ? this.entitiesServed : undefined;
    let err = check(fresh ?? (await this.readEntitiesServed()));
    if (err && fresh) err = check(await this.readEntitiesServed());
    if (err) throw err;
  }

  private async readEntitiesServed(): Promise<NonNullable<WorkerRegistry['entitiesServed']>> {
    const readAt = Date.now();
    const names = new Map<string, string[] | undefined>();
    let workers = 0;
    for (const w of await this.list()) {
      if (!w.entityNames?.length) continue;
      workers++;
      for (const n of w.entityNames) {
        const ops = w.entityOperations?.[n];
        const had = names.get(n);
        // A name some worker runs in the function style takes any operation.
        names.set(n, names.has(n) && had === undefined ? undefined : ops ? [...new Set([...(had ?? []), ...ops])] : undefined);
      }
    }
    this.entitiesServed = { names, workers, readAt };
    return this.entitiesServed;
  }

  private readServed(): Promise<Served> {
    this.reading ??= (async () => {
      const readAt = Date.now();
      try {
        const workers = await this.list();
        const names = new Set<string>();
        const sticky = new Map<string, string[]>();
        let orchestratorWorkers = 0;
        for (const w of workers) {
          if (!w.kinds.includes('orchestrator')) continue;
          orchestratorWorkers++;
          for (const n of w.orchestratorNames) {
            names.add(n);
            if (!w.sticky) continue;
            const ids = sticky.get(n);
            if (ids) ids.push(w.id);
            else sticky.set(n, [w.id]);
          }
        }
        this.served = { names, sticky, orchestratorWorkers, readAt };
        return this.served;
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }
}

function isServed(served: Served, name: string): boolean {
  return served.orchestratorWorkers === 0 || served.names.has(name);
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** An entry's JSON, or undefined when it is not what a worker writes (such an entry is skipped). */
function parseEntry(json: string): WorkerEntry | undefined {
  let e: Partial<WorkerEntry>;
  try {
    e = JSON.parse(json) as Partial<WorkerEntry>;
  } catch {
    return undefined;
  }
  if (typeof e !== 'object' || e === null) return undefined;
  if (!isStrings(e.kinds) || !isStrings(e.orchestratorNames) || !isStrings(e.activityNames)) return undefined;
  if (!isCount(e.startedAt) || !isCount(e.heartbeatExpiryMs) || !isCount(e.heartbeatIntervalMs)) return undefined;
  return {
    id: String(e.id),
    host: String(e.host ?? ''),
    pid: Number(e.pid ?? 0),
    version: String(e.version ?? ''),
    kinds: e.kinds.filter((k): k is WorkerKind => k === 'orchestrator' || k === 'activity'),
    orchestratorNames: e.orchestratorNames,
    activityNames: e.activityNames,
    startedAt: e.startedAt,
    heartbeatIntervalMs: e.heartbeatIntervalMs,
    heartbeatExpiryMs: e.heartbeatExpiryMs,
    jobsRunning: isCount(e.jobsRunning) ? e.jobsRunning : 0,
    episodesDone: isCount(e.episodesDone) ? e.episodesDone : 0,
    activitiesDone: isCount(e.activitiesDone) ? e.activitiesDone : 0,
    ...(e.sticky === true ? { sticky: true } : {}),
    ...(isStrings(e.entityNames) ? { entityNames: e.entityNames } : {}),
    ...(typeof e.entityOperations === 'object' && e.entityOperations !== null ? { entityOperations: e.entityOperations } : {}),
  };
}
