/**
 * The router over a task hub's partitions. Each partition ({@link RedisBackend}) is one hash tag:
 * its instances' keys, outbox, indexes and BullMQ queues, and the scripts that move them. The
 * hub knows how many partitions there are (stored once in the hub, `dbl:{<hub>:meta}`), which one
 * holds an instance ({@link partitionOf}), and reads the whole hub one pipeline per partition.
 */
import { type EntityId, type HistoryEvent, ValidationError } from '@durabull/core';
import type { RedisClient } from './connection.js';
import {
  type BackendOptions,
  type InstanceState,
  type ListPage,
  type ListQuery,
  RedisBackend,
  SharedResources,
  type StoredEvent,
} from './redis-backend.js';
import { HubKeys, assertHubName, assertPartitionCount, hubMetaKey, partitionOf } from './keys.js';
import { PartitionMismatchError } from './error-codes.js';
import type { EntityListPage, EntityListQuery, EntityMetadata, EntityStateResponse } from './entity-store.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { ScheduleStore } from './schedules.js';
import type { CheckedPayload } from './codec.js';

/**
 * Partitions of a new hub when none is configured: 6 spread evenly over 1, 2, 3 and 6 cluster
 * masters (3 is the smallest cluster), so a hub can move from one Redis to such a cluster without
 * rewriting its data; on one Redis its cost on W1 is within the noise of the machine we measure on
 * (docs/performance.md#partitions). 12 (even over 4 and 12 masters too) is an option: it measured
 * 5 to 10% slower on W1.
 */
export const DEFAULT_PARTITIONS: number = 6;

export interface HubOptions extends BackendOptions {
  /**
   * Partitions of the hub (1 to 1024). Fixed by the hub's first write and stored in it; a
   * process configured with another number gets `PartitionMismatchError`. Unset: the hub's own
   * number (a new hub gets {@link DEFAULT_PARTITIONS}; a hub made before partitions has 1).
   */
  partitions?: number;
}

/** The task hub: P partitions and the routing between them. */
export class TaskHub {
  readonly hub: string;
  readonly shared: SharedResources;
  private readonly opts: BackendOptions;
  private readonly configured: number | undefined;
  private parts: RedisBackend[] | undefined;
  private opening: Promise<readonly RedisBackend[]> | undefined;
  private _workerId = '';

  constructor(opts: HubOptions = {}) {
    this.hub = opts.hub ?? 'default';
    assertHubName(this.hub);
    if (opts.partitions !== undefined) assertPartitionCount(opts.partitions);
    this.configured = opts.partitions;
    const { partitions: _p, ...rest } = opts;
    this.opts = rest;
    // Checks the options and connects: a refused option leaves no connection open.
    this.shared = new SharedResources(rest);
  }

  get redis(): RedisClient {
    return this.shared.redis;
  }
  get queueConnection(): RedisClient {
    return this.shared.queueConnection;
  }
  get connections(): SharedResources['connections'] {
    return this.shared.connections;
  }
  get maxPayloadBytes(): number {
    return this.shared.maxPayloadBytes;
  }

  /** The worker these partitions serve ("" for a client): see {@link RedisBackend.workerId}. */
  get workerId(): string {
    return this._workerId;
  }
  set workerId(id: string) {
    this._workerId = id;
    for (const p of this.parts ?? []) p.workerId = id;
  }

  /**
   * Reads (or, for a new hub, writes) the partition count, and makes the partitions. Memoized; one
   * HGET for a hub already in use. Throws PartitionMismatchError when the configured count is not
   * the hub's.
   */
  open(): Promise<readonly RedisBackend[]> {
    if (this.parts && !this.unstored) return Promise.resolve(this.parts);
    // A hub nobody has written to yet: its map is read again until it is there (another process,
    // a worker, may store another count first), one HGET per call until then.
    if (this.parts) return (this.recheck ??= this.recheckCount().finally(() => (this.recheck = undefined)));
    this.opening ??= this.readCount().then(
      (count) => {
        this.build(count);
        return this.parts!;
      },
      (err: unknown) => {
        this.opening = undefined;
        throw err;
      },
    );
    return this.opening;
  }

  private async readCount(): Promise<number> {
    const key = hubMetaKey(this.hub);
    const stored = await this.redis.hget(key, 'partitions');
    if (stored === null) {
      // No map yet: a hub with data made before partitions has one; a new hub gets the configured
      // count or the default. Nothing is written by a read: the first write stores the map (store()).
      const legacy = new HubKeys(this.hub, 0, 1);
      const old = await this.redis.exists(legacy.instances, legacy.schedules, legacy.entityIndex, legacy.outbox);
      const count = old > 0 ? 1 : (this.configured ?? DEFAULT_PARTITIONS);
      if (this.configured !== undefined && this.configured !== count) throw new PartitionMismatchError(this.hub, this.configured, count);
      this.unstored = true;
      return count;
    }
    const count = Number(stored);
    if (!Number.isInteger(count) || count < 1) throw new ValidationError(`Task hub '${this.hub}': its partition map (${key}) holds ${JSON.stringify(stored)}, not a partition count`);
    if (this.configured !== undefined && this.configured !== count) throw new PartitionMismatchError(this.hub, this.configured, count);
    return count;
  }

  private recheck: Promise<readonly RedisBackend[]> | undefined;

  /** The partitions in use, after reading the map of a hub that had none when opened. */
  private async recheckCount(): Promise<readonly RedisBackend[]> {
    const stored = await this.redis.hget(hubMetaKey(this.hub), 'partitions');
    const parts = this.parts!;
    if (stored === null || !this.unstored) return this.parts!;
    const count = Number(stored);
    this.unstored = false;
    if (count === parts.length) return parts;
    if (this.configured !== undefined) throw new PartitionMismatchError(this.hub, this.configured, count);
    // Stored meanwhile with another count (the default of another version, or a configured one): use it.
    this.build(count);
    void Promise.all(parts.map((p) => p.close())).catch(() => undefined);
    return this.parts!;
  }

  /** The map was not in the hub when read: {@link store} writes it before the first write. */
  private unstored = false;
  private storing: Promise<void> | undefined;

  /**
   * Makes sure the hub's partition map is stored (HSETNX: the first writer of a new hub fixes it),
   * before anything is written to the hub. Throws PartitionMismatchError when another process
   * stored another count meanwhile. One round trip the first time, none after.
   */
  async store(): Promise<void> {
    const parts = await this.open();
    if (!this.unstored) return;
    this.storing ??= (async () => {
      const key = hubMetaKey(this.hub);
      await this.redis.hsetnx(key, 'partitions', String(parts.length));
      const stored = Number(await this.redis.hget(key, 'partitions'));
      if (stored !== parts.length) throw new PartitionMismatchError(this.hub, parts.length, stored);
      this.unstored = false;
    })().finally(() => (this.storing = undefined));
    return this.storing;
  }

  private build(count: number): void {
    const parts: RedisBackend[] = [];
    const route = (id: string) => parts[partitionOf(id, count)]!;
    for (let i = 0; i < count; i++) {
      parts.push(new RedisBackend(this.opts, { shared: this.shared, index: i, count, route, ...(i > 0 ? { registry: parts[0]!.workerRegistry } : {}) }));
    }
    for (const p of parts) {
      p.workerId = this._workerId;
      p.beforeWrite = () => this.store();
    }
    this.parts = parts;
  }

  /** The partitions (after {@link open}). */
  get partitions(): readonly RedisBackend[] {
    if (!this.parts) throw new Error(`Task hub '${this.hub}' is not open yet: call open() first`);
    return this.parts;
  }

  /** Partition count (after {@link open}). */
  get partitionCount(): number {
    return this.partitions.length;
  }

  /** The partition number of an instance or entity id ({@link partitionOf}). */
  partitionOf(id: string): number {
    return partitionOf(id, this.partitionCount);
  }

  /** The partition that holds an instance or entity (after {@link open}). */
  forInstance(id: string): RedisBackend {
    return this.partitions[this.partitionOf(id)]!;
  }

  /** The partition that holds an instance, opening the hub first. */
  async at(id: string): Promise<RedisBackend> {
    await this.open();
    return this.forInstance(id);
  }

  /** Partition 0's keys (hub name, and the keys of hub-level things kept in partition 0). */
  get keys(): HubKeys {
    return this.partitions[0]!.keys;
  }

  /** The worker registry (partition 0's; every worker registers in every partition). */
  get workerRegistry(): WorkerRegistry {
    return this.partitions[0]!.workerRegistry;
  }

  /** The hub's schedules (kept in partition 0; their instances started in their own partitions). */
  get schedules(): ScheduleStore {
    const store = this.partitions[0]!.schedules;
    store.beforeWrite ??= () => this.store();
    return store;
  }

  /** Payload checks and encoding need no partition (the limits are the process's): usable before open(). */
  private get codec(): RedisBackend {
    if (this.parts) return this.parts[0]!;
    this._codec ??= new RedisBackend(this.opts, { shared: this.shared, index: 0, count: 1, route: () => this._codec! });
    return this._codec;
  }
  private _codec: RedisBackend | undefined;

  checkPayload(value: unknown, what: string): CheckedPayload {
    return this.codec.checkPayload(value, what);
  }

  encodeForStorage(event: HistoryEvent, what?: string): StoredEvent {
    return this.codec.encodeForStorage(event, what);
  }

  // ---- one instance: routed ----

  async startInstance(...args: Parameters<RedisBackend['startInstance']>): ReturnType<RedisBackend['startInstance']> {
    return (await this.at(args[1])).startInstance(...args);
  }
  async deliverEvent(...args: Parameters<RedisBackend['deliverEvent']>): ReturnType<RedisBackend['deliverEvent']> {
    return (await this.at(args[0])).deliverEvent(...args);
  }
  async terminate(...args: Parameters<RedisBackend['terminate']>): ReturnType<RedisBackend['terminate']> {
    return (await this.at(args[0])).terminate(...args);
  }
  async setSuspended(...args: Parameters<RedisBackend['setSuspended']>): ReturnType<RedisBackend['setSuspended']> {
    return (await this.at(args[0])).setSuspended(...args);
  }
  async purge(instanceId: string): Promise<void> {
    return (await this.at(instanceId)).purge(instanceId);
  }
  async getState(instanceId: string, opts: { resolve?: boolean } = {}): Promise<InstanceState | undefined> {
    return (await this.at(instanceId)).getState(instanceId, opts);
  }
  async getHistory(instanceId: string, opts: { resolve?: boolean } = {}): Promise<HistoryEvent[]> {
    return (await this.at(instanceId)).getHistory(instanceId, opts);
  }
  async resolvePayload(instanceId: string, value: unknown): Promise<unknown> {
    return (await this.at(instanceId)).resolvePayload(instanceId, value);
  }
  async failExecution(...args: Parameters<RedisBackend['failExecution']>): ReturnType<RedisBackend['failExecution']> {
    return (await this.at(args[0])).failExecution(...args);
  }

  // ---- many instances: one pipeline per partition ----

  /** States of many instances: one pipelined round trip per partition that holds some (in parallel). */
  async getStates(ids: string[]): Promise<(InstanceState | undefined)[]> {
    return this.perPartition(ids, (p, some) => p.getStates(some));
  }

  /** Histories of many instances, as {@link RedisBackend.getHistories}, one pipeline per partition. */
  async getHistories(ids: readonly string[]): Promise<HistoryEvent[][]> {
    return this.perPartition(ids, (p, some) => p.getHistories(some));
  }

  private async perPartition<T>(ids: readonly string[], read: (p: RedisBackend, ids: string[]) => Promise<T[]>): Promise<T[]> {
    const parts = await this.open();
    if (parts.length === 1) return read(parts[0]!, [...ids]);
    const groups = new Map<number, number[]>();
    ids.forEach((id, i) => {
      const p = partitionOf(id, parts.length);
      let g = groups.get(p);
      if (!g) groups.set(p, (g = []));
      g.push(i);
    });
    const out = new Array<T>(ids.length);
    await Promise.all(
      [...groups].map(async ([p, idx]) => {
        const res = await read(parts[p]!, idx.map((i) => ids[i]!));
        idx.forEach((i, k) => (out[i] = res[k]!));
      }),
    );
    return out;
  }

  /**
   * Lists instances in creation order across every partition: each partition's index is read
   * after the cursor (one read per partition, in parallel) and the pages merged by index member
   * (`<createdAt:13>|<id>`, or with the status / name / schedule prefix). The cursor is the last
   * member returned, per scan, so it stays valid whatever the partitions hold meanwhile.
   */
  async list(q: ListQuery = {}): Promise<ListPage> {
    const parts = await this.open();
    if (parts.length === 1) return parts[0]!.list(q);
    return parts[0]!.listAcross(parts, q);
  }

  // ---- entities: routed by entity id ----

  readonly entities = {
    signal: async (entity: EntityId, operation: string, input: unknown, opts: { scheduledTime?: number; signalId: string; now?: number }): Promise<boolean> => {
      await this.store();
      return (await this.at(entity.toString())).entities.signal(entity, operation, input, opts);
    },
    readState: async <T = unknown>(entity: EntityId): Promise<EntityStateResponse<T>> => (await this.at(entity.toString())).entities.readState<T>(entity),
    describe: async (entity: EntityId, withState = true): Promise<EntityMetadata | undefined> => (await this.at(entity.toString())).entities.describe(entity, withState),
    purge: async (entity: EntityId, now = Date.now()): Promise<number> => (await this.at(entity.toString())).entities.purge(entity, now),
    wake: async (entity: EntityId, now = Date.now()): Promise<boolean> => (await this.at(entity.toString())).entities.wake(entity, now),
    /** Entities in id order across every partition (each partition's index read after the cursor, merged). */
    list: async (q: EntityListQuery = {}): Promise<EntityListPage> => {
      const parts = await this.open();
      if (parts.length === 1) return parts[0]!.entities.list(q);
      const size = q.pageSize ?? 100;
      const pages = await Promise.all(parts.map((p) => p.entities.list({ ...q, pageSize: size, withState: false })));
      const all = pages.flatMap((pg) => pg.entities.map((e) => ({ e, id: e.id })));
      all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const more = all.length > size || pages.some((pg) => pg.nextCursor !== undefined);
      const page = all.slice(0, size);
      const entities = q.withState ? await Promise.all(page.map(async ({ e, id }) => (await this.forInstance(id).entities.describe(e.entityId, true)) ?? e)) : page.map((x) => x.e);
      const out: EntityListPage = { entities };
      if (more && page.length > 0) out.nextCursor = page[page.length - 1]!.id;
      return out;
    },
  };

  /** One PING ({@link RedisBackend.ping}: a refused password becomes RedisAuthError). Needs no partition map. */
  async ping(): Promise<void> {
    await this.codec.ping();
  }

  /** Closes every partition's queues, then the shared connections. */
  async close(): Promise<void> {
    // Not waiting for an open under way: while Redis is away it may never end.
    await Promise.all((this.parts ?? []).map((p) => p.close()));
    await this.shared.close();
  }
}
