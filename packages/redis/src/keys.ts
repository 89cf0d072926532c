/**
 * The one place that builds key names. Everything of a task hub lives under `dbl:{<hub>:<p>}`:
 * the hash tag is the partition, so an instance's keys, its partition's outbox and index, and the
 * partition's BullMQ queues share one Redis Cluster slot and one Lua script can touch any of them.
 */
import { ValidationError, assertInstanceId, invalidArgument } from '@durabull/core';
import clusterKeySlot from 'cluster-key-slot';

export { assertInstanceId };

const HUB_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/** Task hub names: letters, digits, `_` and `-`, at most 64 characters. */
export function assertHubName(hub: unknown): asserts hub is string {
  if (typeof hub !== 'string') throw invalidArgument('', 'hub', 'a string (the task hub name)', hub);
  if (!HUB_RE.test(hub)) {
    throw new ValidationError(`Invalid task hub name ${JSON.stringify(hub)}: use 1 to 64 letters, digits, '_' or '-', starting with a letter or digit.`);
  }
}

/** Redis Cluster's slots. */
export const CLUSTER_SLOTS = 16384;
/** The most partitions a hub may have. */
export const MAX_PARTITIONS = 1024;

/** Checks a partition count: an integer from 1 to {@link MAX_PARTITIONS}. */
export function assertPartitionCount(p: unknown, field = 'partitions'): asserts p is number {
  if (typeof p !== 'number' || !Number.isInteger(p) || p < 1 || p > MAX_PARTITIONS) {
    throw new ValidationError(`${field} must be an integer from 1 to ${MAX_PARTITIONS}, got ${typeof p === 'string' ? JSON.stringify(p) : String(p)}`);
  }
}

/** The Redis Cluster slot of a key or hash tag (CRC16 mod 16384, as Redis computes it). */
export function keySlot(key: string): number {
  return clusterKeySlot(key);
}

/**
 * The hash tag of partition `p` of a hub of `count` partitions (a pure function). With one
 * partition, `<hub>:0` (the layout of hubs made before partitions). With more, the first of
 * `<hub>:<p>`, `<hub>:<p>-1`, `<hub>:<p>-2`, ... whose slot falls in
 * [p * 16384 / count, (p + 1) * 16384 / count): the partitions' slots spread evenly, so a cluster
 * whose masters own even slot ranges (1, 2, 4, ... masters dividing `count`) gets an even share.
 */
export function partitionTag(hub: string, p: number, count: number): string {
  if (count === 1) return `${hub}:0`;
  const lo = Math.floor((p * CLUSTER_SLOTS) / count);
  const hi = Math.floor(((p + 1) * CLUSTER_SLOTS) / count);
  for (let k = 0; ; k++) {
    const tag = k === 0 ? `${hub}:${p}` : `${hub}:${p}-${k}`;
    const slot = clusterKeySlot(tag);
    if (slot >= lo && slot < hi) return tag;
  }
}

/**
 * The partition of an instance or entity id: FNV-1a (32 bits) of its UTF-8 bytes, mod `count`.
 * The same in every process and version; never change it (an instance's keys are where it says).
 */
export function partitionOf(id: string, count: number): number {
  if (count === 1) return 0;
  let h = 0x811c9dc5;
  const bytes = Buffer.from(id, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i]!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % count;
}

/**
 * The hub's partition map (a hash, field `partitions`): the one hub-level key, under a fixed tag
 * of its own, `{<hub>:meta}` (no partition's tag: those are `<hub>:<number>...`), and under
 * `dbl:{<hub>:` like every key of the hub (a per-hub ACL covers it).
 */
export function hubMetaKey(hub: string): string {
  return `dbl:{${hub}:meta}`;
}

export class HubKeys {
  /** BullMQ prefix for this partition's queues; carries the same hash tag as the instance keys. */
  readonly queuePrefix: string;
  /** The partition's hash tag (without braces). */
  readonly tag: string;
  private readonly base: string;

  /** Partition `partition` of a hub of `count` partitions (default: the one partition of a hub of one). */
  constructor(
    readonly hub: string,
    readonly partition = 0,
    readonly count = 1,
  ) {
    assertHubName(hub);
    this.tag = partitionTag(hub, partition, count);
    this.base = `dbl:{${this.tag}}`;
    this.queuePrefix = this.base;
  }

  /** What every key of the partition starts with (`dbl:{<tag>}`); scripts build instance keys from it. */
  get keyBase(): string {
    return this.base;
  }

  /** Instance state hash. */
  state(id: string): string {
    return `${this.base}:i:${id}`;
  }
  /** History stream of the instance's current execution. */
  history(id: string): string {
    return `${this.base}:h:${id}`;
  }
  /** New events not yet seen by the code. */
  inbox(id: string): string {
    return `${this.base}:n:${id}`;
  }
  /** Scheduled sequence numbers without a result yet. */
  pending(id: string): string {
    return `${this.base}:p:${id}`;
  }
  /** Sequence numbers the blocked code waits on (when not all open tasks). */
  wait(id: string): string {
    return `${this.base}:w:${id}`;
  }
  /** Claim check: the tokens of the instance's payloads stored apart (a set). */
  claims(id: string): string {
    return `${this.base}:c:${id}`;
  }
  /**
   * Claim check: one payload stored apart (a string). Under the instance's `claims` key name, so
   * the scripts build it from that key (`includes/claimKey.lua`) and it shares the hash tag.
   */
  claim(id: string, token: string): string {
    return `${this.claims(id)}:${token}`;
  }
  /** Partition outbox: job id -> payload. */
  get outbox(): string {
    return `${this.base}:outbox`;
  }
  /** Partition outbox index: job id by time written. */
  get outboxIndex(): string {
    return `${this.base}:outbox:t`;
  }
  /** Creation index: lex zset of `<createdAt:13>|<id>`. */
  get instances(): string {
    return `${this.base}:idx:all`;
  }
  /** Status index: lex zset of `<status>|<createdAt:13>|<id>`. */
  get statusIndex(): string {
    return `${this.base}:idx:status`;
  }
  /** Name index: lex zset of `<name>|<createdAt:13>|<id>`. */
  get nameIndex(): string {
    return `${this.base}:idx:name`;
  }
  /**
   * Sticky wake-ups: `stickyPrefix + workerId` is the stream of the wake-ups handed to the worker
   * that keeps the sessions of their instances (deliverEvent writes it; the worker reads it).
   */
  get stickyPrefix(): string {
    return `${this.base}:sticky:`;
  }
  sticky(workerId: string): string {
    return `${this.stickyPrefix}${workerId}`;
  }
  /**
   * Heartbeat details of an instance's activities (a hash: `<execution>|<task id of the first
   * attempt>` -> msgpack), read by the next attempt of a task; deleted with the instance.
   */
  heartbeats(id: string): string {
    return `${this.base}:hb:${id}`;
  }
  /**
   * Deadlines of running activity attempts that a worker recorded (a zset: `<instance>|<execution>|<task id>`
   * by deadline, epoch ms): the sweep fails the task of an attempt whose deadline passed (its
   * worker died, or hangs), whatever process ran it.
   */
  get activityDeadlines(): string {
    return `${this.base}:adl`;
  }
  /** What each recorded attempt is (a hash, members of {@link activityDeadlines} -> `<attempt>|<start>|<start-to-close>|<heartbeat>|<name>`). */
  get activityAttempts(): string {
    return `${this.base}:adl:a`;
  }
  /** Pub/sub channel on which a terminated instance's id is published: workers abort its running activities. */
  get cancelChannel(): string {
    return `${this.base}:cancel`;
  }
  /** Schedules: a lex zset of the ids of the partition's schedules. */
  get schedules(): string {
    return `${this.base}:sch`;
  }
  /** One schedule (a hash: its spec, state and counters). */
  schedule(scheduleId: string): string {
    return `${this.base}:sch:${scheduleId}`;
  }
  /** Schedule index: lex zset of `<schedule id>|<createdAt:13>|<instance id>` for the instances schedules started. */
  get scheduleIndex(): string {
    return `${this.base}:idx:sched`;
  }
  /** Worker registry: the set of the ids of the workers registered in this partition. */
  get workers(): string {
    return `${this.base}:workers`;
  }
  /**
   * Worker registry: one worker's entry (a string of JSON with a time to live, renewed by its
   * heartbeat). Under the index's key name, so the scripts build it from that key and it shares the
   * hash tag.
   */
  worker(workerId: string): string {
    return `${this.workers}:${workerId}`;
  }
  /**
   * Per-minute counters of the dashboard's charts (a hash per minute, `minute` = epoch ms / 60,000):
   * episodes, activities, latency histograms, and samples of queue depths and instances by status.
   * Each expires after the retention bound (`STATS_RETENTION_MINUTES`).
   */
  stats(minute: number): string {
    return `${this.statsPrefix}${minute}`;
  }
  /** What every `stats` key starts with (tools that compare a hub's keys leave them out: running workers write them). */
  get statsPrefix(): string {
    return `${this.base}:stats:`;
  }
  /** Pub/sub channel on which the ids of instances that reach a final status are published. */
  get doneChannel(): string {
    return `${this.base}:done`;
  }
  /**
   * Key prefixes for scripts that reach the keys of instances or jobs named in their arguments
   * (`ackOutbox`): `state(id)` is `statePrefix + id`, `pending(id)` is `pendingPrefix + id`, and a
   * BullMQ job's hash is `jobPrefix(queue) + jobId`. They carry the hash tag, so such a script stays
   * on one cluster slot.
   */
  get statePrefix(): string {
    return `${this.base}:i:`;
  }
  get pendingPrefix(): string {
    return `${this.base}:p:`;
  }
  jobPrefix(queue: string): string {
    return `${this.queuePrefix}:${queue}:`;
  }
  /** Entity state hash (`version`, `state`, `held`, `lock`, `lease`, ...); `entityId` is `@name@key`. */
  entity(entityId: string): string {
    return `${this.entityPrefix}${entityId}`;
  }
  /** Entity inbox: the messages (operations, lock requests, unlocks) not processed yet, in arrival order. */
  entityInbox(entityId: string): string {
    return `${this.entityInboxPrefix}${entityId}`;
  }
  /** Entity duplicate filter: ids of the client signals it received in the last hour (zset by time). */
  entitySeen(entityId: string): string {
    return `${this.base}:er:${entityId}`;
  }
  /**
   * Key prefixes of entity state and inboxes, for scripts that reach entities named in their
   * arguments (a batch's signals to other entities): `entity(id)` is `entityPrefix + id`.
   */
  get entityPrefix(): string {
    return `${this.base}:e:`;
  }
  get entityInboxPrefix(): string {
    return `${this.base}:eq:`;
  }
  /** Entities with work: zset of entity ids by the time they may run (now, a scheduled signal's time, or a batch's lease). */
  get entitiesReady(): string {
    return `${this.base}:entities:ready`;
  }
  /** Doorbell list: pushed when an entity becomes ready now (entity workers block on it). */
  get entitiesBell(): string {
    return `${this.base}:entities:bell`;
  }
  /** Entity index: lex zset of `@name@key`, every entity that received a message and was not purged. */
  get entityIndex(): string {
    return `${this.base}:idx:entities`;
  }
  /** Every key of one instance, in the order the scripts take them. */
  instanceKeys(id: string): [string, string, string, string, string] {
    return [this.state(id), this.history(id), this.inbox(id), this.pending(id), this.wait(id)];
  }
  /** `key`, a key of `from` (another partition of the same hub), as the same key of this partition. */
  rename(key: string, from: HubKeys): string {
    return key.startsWith(from.base) ? this.base + key.slice(from.base.length) : key;
  }
  /** A SCAN pattern for every key of the hub, every partition's and the partition map (tests and tools only). */
  get pattern(): string {
    return `dbl:{${this.hub}:*}*`;
  }
}

/** Queue names inside the hub's prefix. */
export const ORCHESTRATOR_QUEUE = 'orchestrator';
export const ACTIVITY_QUEUE = 'activity';
