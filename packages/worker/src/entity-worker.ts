/**
 * Runs durable entities: claims entities that have work (the ready zset; woken by the doorbell
 * list), runs each one's batch of messages in order with {@link EntityBatch}, and commits the new
 * state, the responses and the signals with one `commitEntity` script per batch.
 *
 * In a batch, messages run in inbox order, parked ones (from earlier batches) first. A message is
 * parked while its time has not come (a scheduled signal) or while another orchestration holds the
 * entity (a critical section); an unlock or a lock grant starts the scan again from the oldest
 * parked message, so each sender's messages keep their order.
 */
import { EntityBatch, EntityId, type Registry, isTerminalStatus, toFailureDetails } from '@durabull/core';
import { type ClaimedEntity, type EntityBatchResult, type EntityMessage, type RedisBackend, decode, duplicateClient, isCluster, encode, entityResponse, newEventId } from '@durabull/redis';
import type { RedisClient } from '@durabull/redis';
import type { Logger } from 'pino';

export interface EntityWorkerOptions {
  concurrency: number;
  batchSize: number;
  windowMs: number;
  leaseMs: number;
  /** How often an entity held by an orchestration, with callers waiting, looks whether its holder ended. */
  lockCheckMs: number;
}

export interface EntityStats {
  entityBatches: number;
  entityOperations: number;
  entityStaleBatches: number;
}

interface Queued {
  raw: Buffer;
  m: EntityMessage;
}

export class EntityWorker {
  private closing = false;
  private loop: Promise<void> | undefined;
  private bellConn: RedisClient | undefined;
  private bell: Promise<unknown> | undefined;
  /** The partition claimed from first in the next round (they take turns). */
  private turn = 0;
  private readonly running = new Set<Promise<void>>();
  private wakeLoop: (() => void) | undefined;

  constructor(
    /** The hub's partitions: entities are claimed from each, within one process-wide concurrency. */
    private readonly parts: readonly RedisBackend[],
    private readonly registry: Registry,
    private readonly log: Logger,
    private readonly opts: EntityWorkerOptions,
    private readonly stats: EntityStats,
  ) {}

  start(): void {
    const conn = duplicateClient(this.parts[0]!.redis);
    this.parts[0]!.connections.watch(conn);
    this.bellConn = conn;
    this.loop = this.run();
  }

  async close(): Promise<void> {
    this.closing = true;
    this.wakeLoop?.();
    this.bellConn?.disconnect();
    await this.loop;
    while (this.running.size > 0) await Promise.all([...this.running]);
  }

  private async run(): Promise<void> {
    const keys = this.parts.map((p) => p.keys.entitiesBell);
    while (!this.closing) {
      const free = this.opts.concurrency - this.running.size;
      let next: number | undefined;
      if (free > 0) {
        let claimed: ClaimedEntity[] = [];
        try {
          // One claim per partition while slots are free, starting from a different one each round.
          const n = this.parts.length;
          const start = this.turn++ % n;
          for (let i = 0; i < n && claimed.length < free; i++) {
            const res = await this.parts[(start + i) % n]!.entities.claim(free - claimed.length, this.opts.leaseMs, this.opts.batchSize);
            for (const c of res.claimed) claimed.push(c);
            if (res.next !== undefined) next = next === undefined ? res.next : Math.min(next, res.next);
          }
        } catch (err) {
          if (this.closing) break;
          this.log.warn({ err }, 'Claiming entities failed; retrying');
          await sleep(200);
          continue;
        }
        for (const c of claimed) {
          const p: Promise<void> = this.runBatch(c)
            .catch((err: unknown) => this.log.error({ err, entityId: c.id }, 'Entity batch failed; it runs again once its lease ends'))
            .finally(() => {
              this.running.delete(p);
              this.wakeLoop?.();
            });
          this.running.add(p);
        }
        if (claimed.length === free) continue;
      }
      // Wait for the doorbell, a free slot, or the earliest ready time (at most a second).
      const wait = next === undefined ? 1000 : Math.max(0, Math.min(1000, next - Date.now()));
      if (wait === 0 && free > 0) continue;
      // BLPOP over every partition's doorbell (one Redis); on a cluster a command's keys share a
      // slot, so it waits on one partition's and the loop's timeout covers the others.
      this.bell ??= (isCluster(this.bellConn) ? this.bellConn!.blpop(keys[this.turn % keys.length]!, 1) : this.bellConn!.blpop(...keys, 1)).catch(() => undefined).finally(() => (this.bell = undefined));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.bell,
        new Promise<void>((r) => {
          this.wakeLoop = r;
          timer = setTimeout(r, wait);
        }),
      ]);
      clearTimeout(timer);
      this.wakeLoop = undefined;
    }
  }

  /** Runs one entity's batch and commits it. */
  private async runBatch(c: ClaimedEntity): Promise<void> {
    const now = Date.now();
    const entityId = EntityId.parse(c.id);
    const batch = new EntityBatch(this.registry, entityId, c.state, (v, what) => void this.parts[0]!.checkPayload(v, what));
    let lock = c.lock;
    if (lock) {
      const [holder, exec] = lock.split('|');
      if (c.holderExec !== exec || !c.holderStatus || isTerminalStatus(c.holderStatus)) {
        this.log.info({ entityId: c.id, holder }, 'Entity lock released: its holder has ended');
        lock = undefined;
      }
    }
    const queue: Queued[] = [...c.held, ...c.messages].map((raw) => ({ raw, m: decode(raw) as EntityMessage }));
    const done = new Array<boolean>(queue.length).fill(false);
    const result: EntityBatchResult = { state: undefined, held: [], lock: undefined, nextAt: undefined, responses: [], signals: [], operations: 0 };
    const holderOf = (l: string | undefined) => (l ? l.slice(0, l.lastIndexOf('|')) : undefined);
    for (let i = 0; i < queue.length; ) {
      const { m } = queue[i]!;
      const holder = holderOf(lock);
      const eligible = !(m.d !== undefined && m.d > now) && (holder === undefined || m.k === 'u' || m.s === holder);
      if (done[i] || !eligible) {
        i++;
        continue;
      }
      done[i] = true;
      let lockChanged = false;
      if (m.k === 'u') {
        if (holder !== undefined && m.s === holder) {
          lock = undefined;
          lockChanged = true;
        }
      } else if (m.k === 'l') {
        const [inst, exec] = (m.s ?? '|').split('|') as [string, string];
        lock = `${m.s}|${m.c}`;
        lockChanged = true;
        const set = m.l ?? [];
        const pos = set.indexOf(c.id);
        const nextEntity = pos >= 0 ? set[pos + 1] : undefined;
        // The lock goes on to the next entity of the set (sorted: every critical section takes them in one order).
        if (nextEntity) result.signals.push([nextEntity, raw(queue[i]!), 0]);
        else result.responses.push(entityResponse(inst, exec, m.c!, 'g'));
      } else {
        result.operations++;
        const outcome = await batch.run(m.o ?? '', m.a);
        if (m.c !== undefined && m.s) {
          const [inst, exec] = m.s.split('|') as [string, string];
          result.responses.push(outcome.ok ? entityResponse(inst, exec, m.c, 'c', outcome.result) : entityResponse(inst, exec, m.c, 'f', outcome.failure));
        } else if (!outcome.ok) {
          this.log.warn({ entityId: c.id, operation: m.o, failure: outcome.failure }, 'Entity operation failed (a signal: no caller to tell)');
        }
        for (const s of outcome.signals) {
          const msg: EntityMessage = { k: 'o', i: newEventId(), o: s.operation, s: c.id, t: now };
          if (s.input !== undefined) msg.a = s.input;
          if (s.scheduledTime !== undefined) msg.d = s.scheduledTime;
          result.signals.push([s.entity.toString(), encode(msg), s.scheduledTime ?? 0]);
        }
      }
      i = lockChanged ? 0 : i + 1;
    }
    // What is left is parked: waiting for its time or for the holder of the lock.
    let nextAt: number | undefined;
    queue.forEach((q, i) => {
      if (done[i]) return;
      result.held.push(q.raw);
      const at = q.m.d !== undefined && q.m.d > now ? q.m.d : now + this.opts.lockCheckMs;
      nextAt = nextAt === undefined ? at : Math.min(nextAt, at);
    });
    result.nextAt = nextAt;
    result.lock = lock;
    if (result.operations > 0) result.state = batch.state;
    let committed: { version: number; left: number } | undefined;
    try {
      committed = await this.parts[0]!.route(c.id).entities.commit(c, result, { windowMs: this.opts.windowMs, maxMessages: this.opts.batchSize });
    } catch (err) {
      // A state that cannot be encoded after all (checked per operation): the batch fails as a whole.
      this.log.error({ err: toFailureDetails(err), entityId: c.id }, 'Entity batch could not be committed');
      throw err;
    }
    if (!committed) {
      this.stats.entityStaleBatches++;
      return;
    }
    this.stats.entityBatches++;
    this.stats.entityOperations += result.operations;
    if (result.responses.length > 0) {
      await this.parts[0]!.route(c.id).dispatch(result.responses).catch((err: unknown) => this.log.warn({ err, entityId: c.id }, 'Dispatch of entity responses failed; the outbox sweep will deliver them'));
    }
  }
}

function raw(q: Queued): Buffer {
  return q.raw;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
