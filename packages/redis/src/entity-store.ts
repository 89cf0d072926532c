/**
 * Durable entities in Redis: an entity's state hash, its inbox of messages and its lock live under
 * the hub's hash tag (keys.ts); the scripts `signalEntity`, `claimEntities`, `commitEntity`,
 * `purgeEntity` and `wakeEntity` are its state transitions, and `commitEpisode` appends the messages
 * an orchestration sends (`e-...` outbox pairs) to the entities' inboxes with the episode.
 *
 * Messages are msgpack maps ({@link EntityMessage}); the ready zset says which entity may run when,
 * and entity workers block on the doorbell list for entities that became ready now.
 */
import { EntityId, type FailureDetails, type SendEntityMessageAction } from '@durabull/core';
import type { RedisClient } from './connection.js';
import { decode, encode } from './codec.js';
import type { HubKeys } from './keys.js';

/** A message in an entity's inbox. */
export interface EntityMessage {
  /** `o` an operation, `l` a lock request, `u` an unlock. */
  k: 'o' | 'l' | 'u';
  /** Message id (a client signal's id is its duplicate filter). */
  i: string;
  /** Operation name. */
  o?: string;
  /** Operation input. */
  a?: unknown;
  /** Sender: `<instance>|<execution>` for an orchestration, `@name@key` for an entity, absent for a client. */
  s?: string;
  /** A call (or lock request): the orchestration's task id that the response completes. */
  c?: number;
  /** Delivery time (ms) of a scheduled signal. */
  d?: number;
  /** A lock request: every entity of the critical section, sorted. */
  l?: string[];
  /** When it was sent (ms). */
  t: number;
}

/** An entity claimed by a worker, with what its batch needs (one script for many entities). */
export interface ClaimedEntity {
  id: string;
  version: string;
  state: { exists: boolean; value?: unknown };
  /** Messages parked by earlier batches (waiting for a lock or their time), oldest first, then the inbox's. */
  held: Buffer[];
  messages: Buffer[];
  /** `<instance>|<execution>|<task>` of the orchestration holding the lock. */
  lock?: string;
  /** The lock holder's current execution and status (to release a lock whose holder ended). */
  holderExec?: string;
  holderStatus?: string;
}

/** What a batch leaves. */
export interface EntityBatchResult {
  state: { exists: boolean; value?: unknown } | undefined;
  held: Buffer[];
  lock: string | undefined;
  nextAt: number | undefined;
  /** Outbox entries: responses to orchestrations. */
  responses: [jobId: string, payload: string][];
  /** Signals to entities: target id, message, due (0 now). */
  signals: [target: string, message: Buffer, due: number][];
  operations: number;
}

/** The last committed state of an entity (`readEntityState`). */
export interface EntityStateResponse<T = unknown> {
  entityExists: boolean;
  entityState?: T;
}

/** One entity as `listEntities` reports it. */
export interface EntityMetadata {
  entityId: EntityId;
  /** `@name@key` */
  id: string;
  name: string;
  key: string;
  hasState: boolean;
  state?: unknown;
  createdAt?: Date;
  lastModifiedAt?: Date;
  /** Messages waiting: in the inbox and parked (for a lock or their time). */
  pendingOperations: number;
  /** The orchestration holding the entity (`<instance>|<execution>`), if locked. */
  lockedBy?: string;
  /** Operations run since the entity was created. */
  operations: number;
  batches: number;
}

export interface EntityListQuery {
  /** Only entities of this name. */
  name?: string;
  /** 1 to 1000, default 100. */
  pageSize?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
  /** Read each entity's state too (default false). */
  withState?: boolean;
}
export interface EntityListPage {
  entities: EntityMetadata[];
  nextCursor?: string;
}

type Arg = string | Buffer | number;
type EntityScripts = RedisClient & {
  signalEntity(...args: Arg[]): Promise<number>;
  claimEntitiesBuffer(...args: Arg[]): Promise<unknown[]>;
  commitEntity(...args: Arg[]): Promise<number[]>;
  purgeEntity(...args: Arg[]): Promise<number>;
  wakeEntity(...args: Arg[]): Promise<number>;
};

/** An `M` outbox payload: a message to an entity of another partition. */
function remoteMessage(entityId: string, message: Buffer, due: number): string {
  return `M${JSON.stringify({ e: entityId, m: message.toString('base64'), d: due })}`;
}

/** An `M` outbox payload's parts. */
export function parseRemoteMessage(payload: string): { entityId: string; message: Buffer; due: number } {
  const d = JSON.parse(payload.slice(1)) as { e: string; m: string; d: number };
  return { entityId: d.e, message: Buffer.from(d.m, 'base64'), due: d.d };
}

/** Outbox job id of an orchestration's message to an entity (never a BullMQ job: commitEpisode delivers it). */
export function entityMessageJobId(instanceId: string, executionId: string, seq: number): string {
  return `e-${instanceId}-${executionId}-${seq}`;
}

/** Outbox job id of an entity's response to task `seq` of an orchestration. */
export function entityResponseJobId(instanceId: string, executionId: string, seq: number): string {
  return `r-${instanceId}-${executionId}-${seq}`;
}

/** An entity's response to an orchestration, as its outbox payload carries it (`R` + JSON). */
export interface EntityResponseData {
  i: string;
  x: string;
  s: number;
  /** `c` completed, `f` failed, `g` lock granted. */
  k: 'c' | 'f' | 'g';
  /** msgpack of the result or failure, base64. */
  p?: string;
}

export function entityResponse(instanceId: string, executionId: string, seq: number, kind: 'c' | 'f' | 'g', value?: unknown | FailureDetails): [string, string] {
  const d: EntityResponseData = { i: instanceId, x: executionId, s: seq, k: kind };
  if (kind !== 'g') d.p = encode(value).toString('base64');
  return [entityResponseJobId(instanceId, executionId, seq), `R${JSON.stringify(d)}`];
}

export class EntityStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: HubKeys,
    /** The entity store of the partition that holds an instance or entity (this one for a hub of one). */
    private readonly route: (id: string) => { entities: EntityStore; redis: RedisClient; keys: HubKeys } = () => ({ entities: this, redis, keys }),
  ) {}

  private get scripts(): EntityScripts {
    return this.redis as EntityScripts;
  }

  /** The message an orchestration's action sends, and its outbox pair for commitEpisode (the payload as bytes). */
  messageFor(instanceId: string, executionId: string, a: SendEntityMessageAction, now: number): [jobId: string, payload: Buffer] {
    const m = this.message(instanceId, executionId, a, now);
    const k = this.keys;
    const fields = [k.entity(a.entity), k.entityInbox(a.entity), k.entitiesReady, k.entitiesBell, k.entityIndex, a.entity, encode(m), String(m.d ?? 0)];
    const parts: Buffer[] = [Buffer.from('E')];
    for (const f of fields) {
      const b = typeof f === 'string' ? Buffer.from(f) : f;
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      parts.push(len, b);
    }
    return [entityMessageJobId(instanceId, executionId, a.id), Buffer.concat(parts)];
  }

  /** The message an orchestration's action sends. */
  private message(instanceId: string, executionId: string, a: SendEntityMessageAction, now: number): EntityMessage {
    const m: EntityMessage = { k: a.kind === 'lock' ? 'l' : a.kind === 'unlock' ? 'u' : 'o', i: `${instanceId}|${executionId}|${a.id}`, s: `${instanceId}|${executionId}`, t: now };
    if (a.operation !== undefined) m.o = a.operation;
    if (a.input !== undefined) m.a = a.input;
    if (a.kind === 'call' || a.kind === 'lock') m.c = a.id;
    if (a.lockSet) m.l = a.lockSet;
    if (a.scheduledTime !== undefined) m.d = a.scheduledTime;
    return m;
  }

  /**
   * The outbox entry of an orchestration's message to an entity of another partition (`M`): the
   * dispatcher delivers it there ({@link deliverMessage}), once, in the order of the episode.
   */
  remoteMessageFor(instanceId: string, executionId: string, a: SendEntityMessageAction, now: number): [jobId: string, payload: string] {
    const m = this.message(instanceId, executionId, a, now);
    return [`m-${instanceId}-${executionId}-${a.id}`, remoteMessage(a.entity, encode(m), m.d ?? 0)];
  }

  /**
   * Appends a message that came from another partition (an `M` outbox entry) to the entity's
   * inbox, unless this `messageId` (the entry's id) arrived in the last hour: delivered twice, it
   * is appended once.
   */
  async deliverMessage(entityId: string, message: Buffer, due: number, messageId: string, now = Date.now()): Promise<boolean> {
    const k = this.keys;
    const res = await this.scripts.signalEntity(k.entity(entityId), k.entityInbox(entityId), k.entitiesReady, k.entitiesBell, k.entityIndex, k.entitySeen(entityId), entityId, message, due, now, messageId);
    return res === 1;
  }

  /**
   * A client's signal: appended to the entity's inbox (creating it) unless a signal with this id
   * arrived in the last hour. Returns false for such a duplicate.
   */
  async signal(entity: EntityId, operation: string, input: unknown, opts: { scheduledTime?: number; signalId: string; now?: number }): Promise<boolean> {
    const now = opts.now ?? Date.now();
    const id = entity.toString();
    const m: EntityMessage = { k: 'o', i: opts.signalId, o: operation, t: now };
    if (input !== undefined) m.a = input;
    if (opts.scheduledTime !== undefined) m.d = opts.scheduledTime;
    const k = this.keys;
    const res = await this.scripts.signalEntity(
      k.entity(id),
      k.entityInbox(id),
      k.entitiesReady,
      k.entitiesBell,
      k.entityIndex,
      k.entitySeen(id),
      id,
      encode(m),
      m.d ?? 0,
      now,
      opts.signalId,
    );
    return res === 1;
  }

  /** Claims up to `max` entities whose time has come and loads their batches; `next` is the earliest time another one may run. */
  async claim(max: number, leaseMs: number, maxMessages: number, now = Date.now()): Promise<{ claimed: ClaimedEntity[]; next: number | undefined }> {
    const k = this.keys;
    const crossing = k.count > 1;
    const res = await this.scripts.claimEntitiesBuffer(k.entitiesReady, k.entityPrefix, k.entityInboxPrefix, k.statePrefix, now, max, leaseMs, maxMessages, crossing ? '1' : '0');
    const nextRaw = res[0] as Buffer;
    const next = nextRaw.length ? Number(nextRaw.toString('latin1')) : undefined;
    const claimed: ClaimedEntity[] = [];
    for (let i = 1; i < res.length; i++) {
      const [id, version, state, held, lock, hx, hs, msgs] = res[i] as [Buffer, Buffer, Buffer | null, Buffer | null, Buffer | null, Buffer | null, Buffer | null, Buffer[]];
      const c: ClaimedEntity = {
        id: id.toString('latin1'),
        version: version.toString('latin1'),
        state: state ? { exists: true, value: decode(state) } : { exists: false },
        held: held ? (decode(held) as Uint8Array[]).map((b) => Buffer.from(b)) : [],
        messages: msgs,
      };
      if (lock) c.lock = lock.toString('latin1');
      if (hx) c.holderExec = hx.toString('latin1');
      if (hs) c.holderStatus = hs.toString('latin1');
      claimed.push(c);
    }
    if (crossing) {
      // The lock holders' execution and status, each read in its own partition.
      await Promise.all(
        claimed.map(async (c) => {
          if (!c.lock) return;
          const holder = c.lock.slice(0, c.lock.indexOf('|'));
          const p = this.route(holder);
          const [hx, hs] = await p.redis.hmget(p.keys.state(holder), 'exec', 'status');
          if (hx) c.holderExec = hx;
          if (hs) c.holderStatus = hs;
        }),
      );
    }
    return { claimed, next };
  }

  /**
   * Commits a batch. Returns the new version and the inbox messages left, or undefined when the
   * batch was stale (its lease ran out and another worker committed): nothing written.
   */
  async commit(
    c: ClaimedEntity,
    r: EntityBatchResult,
    opts: { windowMs: number; maxMessages: number; now?: number },
  ): Promise<{ version: number; left: number } | undefined> {
    const k = this.keys;
    const now = opts.now ?? Date.now();
    const scalars = [
      c.version,
      String(c.messages.length),
      String(now),
      c.id,
      r.state === undefined ? 'k' : r.state.exists ? 's' : 'd',
      r.held.length ? 's' : 'd',
      r.lock ?? '',
      r.nextAt === undefined ? '' : String(r.nextAt),
      String(r.responses.length),
      String(r.signals.length),
      String(r.operations),
      String(opts.windowMs),
      String(opts.maxMessages),
    ];
    const args: Arg[] = [
      k.entity(c.id),
      k.entityInbox(c.id),
      k.entitiesReady,
      k.entitiesBell,
      k.outbox,
      k.outboxIndex,
      k.entityIndex,
      k.entityPrefix,
      k.entityInboxPrefix,
      encode(scalars),
      r.state?.exists ? encode(r.state.value) : '',
      r.held.length ? encode(r.held) : '',
    ];
    // Signals to entities of other partitions travel as outbox entries (`M`), delivered there.
    const responses = [...r.responses];
    const signals = k.count > 1 ? r.signals.filter(([target]) => this.route(target).entities === this) : r.signals;
    if (signals.length !== r.signals.length) {
      r.signals.forEach(([target, msg, due], n) => {
        if (this.route(target).entities !== this) {
          const entry: [string, string] = [`m-${c.id}-${c.version}-${n}`, remoteMessage(target, msg, due)];
          responses.push(entry);
          r.responses.push(entry);
        }
      });
      scalars[8] = String(responses.length);
      scalars[9] = String(signals.length);
      args[9] = encode(scalars);
    }
    for (const [jobId, payload] of responses) args.push(jobId, payload);
    for (const [target, msg, due] of signals) args.push(target, msg, due);
    const res = await this.scripts.commitEntity(...args);
    if (res[0] !== 1) return undefined;
    return { version: res[1]!, left: res[2]! };
  }

  /** The last committed state, without running the entity. */
  async readState<T = unknown>(entity: EntityId): Promise<EntityStateResponse<T>> {
    const buf = await this.redis.hgetBuffer(this.keys.entity(entity.toString()), 'state');
    return buf ? { entityExists: true, entityState: decode(buf) as T } : { entityExists: false };
  }

  /** One entity's metadata (undefined when it does not exist). */
  async describe(entity: EntityId, withState = true): Promise<EntityMetadata | undefined> {
    const [m] = await this.describeMany([entity.toString()], withState);
    return m;
  }

  private async describeMany(ids: string[], withState: boolean): Promise<(EntityMetadata | undefined)[]> {
    if (ids.length === 0) return [];
    const k = this.keys;
    const p = this.redis.pipeline();
    for (const id of ids) {
      p.hmgetBuffer(k.entity(id), 'version', 'state', 'held', 'lock', 'createdAt', 'updatedAt', 'ops', 'batches');
      p.llen(k.entityInbox(id));
    }
    const res = (await p.exec()) ?? [];
    return ids.map((id, i) => {
      const f = res[2 * i]?.[1] as (Buffer | null)[] | undefined;
      const llen = (res[2 * i + 1]?.[1] as number | undefined) ?? 0;
      if (!f?.[0]) return undefined;
      const entityId = EntityId.parse(id);
      const held = f[2] ? (decode(f[2]) as unknown[]).length : 0;
      const m: EntityMetadata = {
        entityId,
        id,
        name: entityId.name,
        key: entityId.key,
        hasState: f[1] !== null,
        pendingOperations: llen + held,
        operations: Number(f[6]?.toString() ?? 0),
        batches: Number(f[7]?.toString() ?? 0),
      };
      if (withState && f[1]) m.state = decode(f[1]);
      if (f[3]) m.lockedBy = f[3].toString().split('|').slice(0, 2).join('|');
      if (f[4]) m.createdAt = new Date(Number(f[4].toString()));
      if (f[5]) m.lastModifiedAt = new Date(Number(f[5].toString()));
      return m;
    });
  }

  /** Entities by id (`@name@key` order), paged through the entity index; never scans keys. */
  async list(q: EntityListQuery = {}): Promise<EntityListPage> {
    const size = q.pageSize ?? 100;
    const k = this.keys;
    const start = q.cursor !== undefined ? `(${q.cursor}` : q.name !== undefined ? `[@${q.name}@` : '-';
    const end = q.name !== undefined ? `(@${q.name}@\xff` : '+';
    const ids = await this.redis.zrangebylex(k.entityIndex, start, end, 'LIMIT', 0, size + 1);
    const more = ids.length > size;
    const page = ids.slice(0, size);
    const described = await this.describeMany(page, q.withState === true);
    const out: EntityListPage = { entities: described.filter((m): m is EntityMetadata => m !== undefined) };
    if (more) out.nextCursor = page[page.length - 1]!;
    return out;
  }

  /** Deletes an empty entity (no state, no messages, no lock): 1 deleted, 0 not empty, -1 missing. */
  async purge(entity: EntityId, now = Date.now()): Promise<number> {
    const id = entity.toString();
    const k = this.keys;
    return this.scripts.purgeEntity(k.entity(id), k.entityInbox(id), k.entitiesReady, k.entityIndex, k.entitySeen(id), id, now);
  }

  /** Makes an entity run now (a batch releases a lock whose holder ended). */
  async wake(entity: EntityId, now = Date.now()): Promise<boolean> {
    const id = entity.toString();
    const k = this.keys;
    return (await this.scripts.wakeEntity(k.entity(id), k.entitiesReady, k.entitiesBell, id, now)) === 1;
  }
}

