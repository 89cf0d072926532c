/**
 * Watching the Redis connections of one component (a client, a worker): every connection gets an
 * `error` listener (without one ioredis prints "[ioredis] Unhandled error event" on every
 * reconnect attempt), and an outage is logged once when it starts (warn, with the address and the
 * reason) and once when every connection is back (info), however many reconnect attempts it takes.
 */
import { type RedisClient, isCluster } from './connection.js';

/**
 * What the monitor logs through: a pino logger (or Fastify's, which is one) fits. `debug` gets
 * each connection error of an outage; `warn` and `info` its start and end.
 */
export interface ConnectionLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A logger that drops everything. */
export const silentLogger: ConnectionLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Error codes of a connection that failed or broke (as Node's net and dns, and ioredis, report them). */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
  'ERR_SSL_WRONG_VERSION_NUMBER',
]);

/**
 * Whether `err` says that a connection to Redis failed or broke (rather than that Redis refused a
 * command): such errors describe an outage, which {@link ConnectionMonitor} reports once.
 */
export function isConnectionError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: unknown; syscall?: unknown };
  if (typeof e.code === 'string' && CONNECTION_CODES.has(e.code)) return true;
  if (e.syscall === 'connect' || e.syscall === 'read' || e.syscall === 'write') return true;
  return /^Connection is closed\.?$|^Command timed out$|ECONNREFUSED|ECONNRESET|ETIMEDOUT|Stream isn't writeable/.test(e.message);
}

/** `host:port` (or the socket path) of a connection, never its credentials. */
export function connectionAddress(redis: RedisClient): string {
  if (isCluster(redis)) {
    const nodes = (redis as unknown as { startupNodes?: unknown[] }).startupNodes ?? [];
    return `cluster ${nodes.map((n) => (typeof n === 'object' && n !== null ? `${(n as { host?: string }).host ?? '127.0.0.1'}:${(n as { port?: number }).port ?? 6379}` : String(n))).join(',')}`;
  }
  const o = redis.options;
  if (o.path) return o.path;
  const host = o.host ?? '127.0.0.1';
  return `${host.includes(':') ? `[${host}]` : host}:${o.port ?? 6379}`;
}

interface Watched {
  /** Since its `reconnecting` until its next `ready`. */
  down: boolean;
  lastError: Error | undefined;
}

/**
 * The connections of one component. The component is "down" from the first of them that starts
 * reconnecting (a broken connection, or a first connection that failed) until all of them are
 * ready again; that start and that end are logged once each.
 */
export class ConnectionMonitor {
  private readonly watched = new Map<RedisClient, Watched>();
  private downSince: number | undefined;

  constructor(
    private readonly log: ConnectionLogger,
    /** Names the component in the log lines: `client`, `worker`. */
    private readonly component: string,
  ) {}

  /** Watches `redis` (once; watching it again does nothing). Listeners stay until the connection ends. */
  watch(redis: RedisClient): void {
    if (this.watched.has(redis)) return;
    const w: Watched = { down: false, lastError: undefined };
    this.watched.set(redis, w);
    redis.on('error', (err: Error) => {
      // Anything but a failed or broken connection (a refused password...) is an error, once: the
      // same error on each reconnect attempt goes to debug like the rest.
      const repeated = w.lastError?.message === err.message;
      w.lastError = err;
      const at = { err, component: this.component, address: connectionAddress(redis) };
      if (!isConnectionError(err) && !repeated) this.log.error(at, 'Redis connection error');
      else this.log.debug(at, 'Redis connection attempt failed');
    });
    // ioredis reconnects only a connection it did not close on purpose: `reconnecting` is an outage.
    redis.on('reconnecting', () => {
      w.down = true;
      if (this.downSince !== undefined) return;
      this.downSince = Date.now();
      const reason = w.lastError?.message ?? 'the connection closed';
      this.log.warn(
        { component: this.component, address: connectionAddress(redis), reason },
        `Redis connection lost (${reason}); reconnecting, logged again once it is back`,
      );
    });
    redis.on('ready', () => {
      w.down = false;
      w.lastError = undefined;
      this.settle(redis);
    });
    // Closed (by its owner, or for good): no longer part of the component's outage.
    redis.on('end', () => {
      this.watched.delete(redis);
      this.settle(redis);
    });
  }

  /** Ends the outage once no watched connection is down and at least one is ready. */
  private settle(redis: RedisClient): void {
    if (this.downSince === undefined) return;
    let ready = false;
    for (const [r, w] of this.watched) {
      if (w.down) return;
      if (r.status === 'ready') ready = true;
    }
    if (!ready) return;
    const downMs = Date.now() - this.downSince;
    this.downSince = undefined;
    this.log.info({ component: this.component, address: connectionAddress(redis), downMs }, 'Redis connection is back');
  }
}
