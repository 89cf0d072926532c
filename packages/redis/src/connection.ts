/**
 * Connections: what a `connection` option may be (a URL, ioredis options, an ioredis `Redis` or
 * `Cluster`, or the cluster form), how it becomes an ioredis client, and the few things that differ
 * on a Redis Cluster (closing, scanning every master).
 *
 * The cluster forms:
 * - `{ clusterNodes: ['host:port', ...], redisOptions?, clusterOptions? }`;
 * - the string `redis-cluster://[user[:password]@]host:port[,host:port...]` (`rediss-cluster://` for TLS),
 *   which is what `REDIS_URL`, `REDIS_CLUSTER_NODES` and the CLI's `--cluster-nodes` come down to.
 */
import { ValidationError } from '@durabull/core';
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';

/** An ioredis client of either kind: one server or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** A Redis Cluster given by some of its nodes (ioredis discovers the rest). */
export interface ClusterConnectionOptions {
  /** Seed nodes, `'host:port'` or `{ host, port }`; at least one. */
  clusterNodes: ReadonlyArray<string | { host: string; port: number }>;
  /** Options of the connection to each node (password, username, tls, commandTimeout...). */
  redisOptions?: RedisOptions;
  /** ioredis `Cluster` options (slotsRefreshTimeout, natMap...). */
  clusterOptions?: Omit<ClusterOptions, 'redisOptions'>;
}

/**
 * A Redis connection: an ioredis client (`Redis` or `Cluster`: shared, not closed by us), a URL
 * (`redis://`, `rediss://`, `redis-cluster://`, `rediss-cluster://`, or a unix socket path), ioredis
 * options, or {@link ClusterConnectionOptions}.
 */
export type ConnectionLike = Redis | Cluster | string | RedisOptions | ClusterConnectionOptions;

/** The default Redis when nothing says otherwise. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

const CLUSTER_SCHEMES = ['redis-cluster://', 'rediss-cluster://'] as const;

/** Whether `c` is an ioredis Cluster (duck-typed: a second copy of ioredis has its own classes). */
export function isCluster(c: unknown): c is Cluster {
  return typeof c === 'object' && c !== null && (c as { isCluster?: unknown }).isCluster === true && typeof (c as Cluster).nodes === 'function';
}

/** Whether `c` is an ioredis client of either kind (not options). */
export function isRedisClient(c: unknown): c is RedisClient {
  return (
    c instanceof Redis ||
    c instanceof Cluster ||
    (typeof c === 'object' && c !== null && typeof (c as { isCluster?: unknown }).isCluster === 'boolean' && typeof (c as Redis).duplicate === 'function' && typeof (c as Redis).sendCommand === 'function')
  );
}

/** Whether `s` is a cluster URL (`redis-cluster://...`). */
export function isClusterUrl(s: string): boolean {
  return CLUSTER_SCHEMES.some((p) => s.toLowerCase().startsWith(p));
}

/** Parses one `host:port` (IPv6 as `[::1]:port`). */
function parseNode(s: string, where: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:\s,\[\]/@]+)):(\d{1,5})$/.exec(s.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || !(port > 0 && port < 65536)) {
    throw new ValidationError(`${where}: '${s}' is not a cluster node; write host:port (e.g. 127.0.0.1:7000)`);
  }
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * The nodes of a comma-separated `host:port,host:port` list (`REDIS_CLUSTER_NODES`, `--cluster-nodes`).
 *
 * @throws {ValidationError} when the list is empty or an entry is not `host:port`.
 */
export function parseClusterNodes(list: string, where = 'cluster nodes'): { host: string; port: number }[] {
  const parts = list.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0) throw new ValidationError(`${where}: no node given; write host:port[,host:port...]`);
  return parts.map((p) => parseNode(p, where));
}

/**
 * Parses `redis-cluster://[user[:password]@]host:port[,host:port...]` (`rediss-cluster://`: TLS).
 *
 * @throws {ValidationError} naming what is wrong.
 */
export function parseClusterUrl(url: string): ClusterConnectionOptions {
  const scheme = CLUSTER_SCHEMES.find((p) => url.toLowerCase().startsWith(p));
  if (!scheme) throw new ValidationError(`'${redactConnectionUrl(url)}' is not a cluster URL (redis-cluster://host:port,host:port)`);
  let rest = url.slice(scheme.length);
  if (rest.endsWith('/')) rest = rest.slice(0, -1);
  if (/[/?#]/.test(rest)) {
    throw new ValidationError(`cluster URL '${redactConnectionUrl(url)}': a path, query or fragment is not supported (a cluster has only database 0); put other options in { clusterNodes, redisOptions }`);
  }
  const redisOptions: RedisOptions = {};
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(':');
    try {
      const user = decodeURIComponent(colon >= 0 ? userinfo.slice(0, colon) : userinfo);
      const pass = colon >= 0 ? decodeURIComponent(userinfo.slice(colon + 1)) : '';
      if (user) redisOptions.username = user;
      if (pass) redisOptions.password = pass;
    } catch {
      throw new ValidationError(`cluster URL '${redactConnectionUrl(url)}': its credentials are not valid percent-encoding`);
    }
  }
  if (scheme === 'rediss-cluster://') redisOptions.tls = {};
  const nodes = parseClusterNodes(rest, `cluster URL '${redactConnectionUrl(url)}'`);
  return { clusterNodes: nodes, redisOptions };
}

/** `redis-cluster://host:port,...` for the nodes (no credentials). */
export function clusterUrl(nodes: ReadonlyArray<string | { host: string; port: number }>): string {
  return `redis-cluster://${nodes.map((n) => (typeof n === 'string' ? n : `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`)).join(',')}`;
}

/** A URL with its password replaced by `***` (cluster URLs too), for messages and logs. */
export function redactConnectionUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@]*@/i, '$1***@');
}

/**
 * The connection the environment names, as a string: `REDIS_CLUSTER_NODES=host:port,...` gives
 * `redis-cluster://host:port,...`; else `REDIS_URL`; else `fallback`.
 *
 * @throws {ValidationError} when both are set, or REDIS_CLUSTER_NODES is not a list of host:port.
 */
export function connectionFromEnv(env: NodeJS.ProcessEnv = process.env, fallback = DEFAULT_REDIS_URL): string {
  const nodes = env.REDIS_CLUSTER_NODES?.trim();
  const url = env.REDIS_URL?.trim();
  if (nodes) {
    if (url) throw new ValidationError('both REDIS_URL and REDIS_CLUSTER_NODES are set: set only one (a cluster URL redis-cluster://host:port,... can go in REDIS_URL)');
    return clusterUrl(parseClusterNodes(nodes, 'REDIS_CLUSTER_NODES'));
  }
  return url || fallback;
}

/** Checks a `connection` option without connecting. @throws {ValidationError} naming what is wrong. */
export function assertConnection(connection: unknown, what = 'connection'): void {
  if (connection === undefined || isRedisClient(connection)) return;
  if (typeof connection === 'string') {
    if (isClusterUrl(connection)) {
      parseClusterUrl(connection);
      return;
    }
    if (/^rediss?:\/\//i.test(connection) || connection.startsWith('/')) return;
    throw new ValidationError(
      `${what} '${redactConnectionUrl(connection)}' is not a Redis URL: use redis://host:port, rediss://..., a unix socket path, or redis-cluster://host:port,host:port for a Redis Cluster`,
    );
  }
  if (typeof connection !== 'object' || connection === null || Array.isArray(connection)) {
    throw new ValidationError(`${what} must be a Redis URL, ioredis options, { clusterNodes: [...] }, or an ioredis Redis or Cluster; got ${connection === null ? 'null' : Array.isArray(connection) ? 'an array' : typeof connection}`);
  }
  const o = connection as Partial<ClusterConnectionOptions>;
  if (!('clusterNodes' in o)) {
    // Cluster settings without the nodes would otherwise be read as options of one server on localhost.
    const clusterish = ['redisOptions', 'clusterOptions', 'startupNodes', 'nodes'].find((k) => k in o);
    if (clusterish) throw new ValidationError(`${what} has '${clusterish}' but no clusterNodes: a Redis Cluster is { clusterNodes: ['host:port', ...], redisOptions?, clusterOptions? }`);
  } else {
    if (!Array.isArray(o.clusterNodes) || o.clusterNodes.length === 0) throw new ValidationError(`${what}.clusterNodes must be a non-empty array of 'host:port'`);
    for (const n of o.clusterNodes) {
      if (typeof n === 'string') parseNode(n, `${what}.clusterNodes`);
      else if (typeof n !== 'object' || n === null || typeof n.host !== 'string' || !Number.isInteger(n.port)) {
        throw new ValidationError(`${what}.clusterNodes: each node is 'host:port' or { host, port }, got ${JSON.stringify(n)}`);
      }
    }
    if (o.redisOptions !== undefined && (typeof o.redisOptions !== 'object' || o.redisOptions === null)) throw new ValidationError(`${what}.redisOptions must be ioredis options`);
    if (o.clusterOptions !== undefined && (typeof o.clusterOptions !== 'object' || o.clusterOptions === null)) throw new ValidationError(`${what}.clusterOptions must be ioredis Cluster options`);
  }
}

function toClusterNodes(nodes: ClusterConnectionOptions['clusterNodes']): ClusterNode[] {
  return nodes.map((n) => (typeof n === 'string' ? parseNode(n, 'clusterNodes') : { host: n.host, port: n.port }));
}

/**
 * An ioredis client for `connection` (returned as it is when it is one). `maxRetriesPerRequest:
 * null` (on a cluster: on every node's connection): a command waits across reconnects instead of
 * failing after a number of attempts, and one whose reply a broken connection lost is sent again
 * (every client-facing script is idempotent against that); BullMQ needs it on its workers'
 * connections. `extra` (e.g. `commandTimeout`) goes on each connection the same way.
 *
 * @throws {ValidationError} when `connection` is none of the accepted forms (never a fallback to localhost).
 */
export function createRedisClient(connection: ConnectionLike | undefined, extra: RedisOptions = {}): RedisClient {
  assertConnection(connection);
  if (isRedisClient(connection)) return connection;
  const opts: RedisOptions = { maxRetriesPerRequest: null, ...extra };
  if (typeof connection === 'string') {
    if (isClusterUrl(connection)) return newCluster(parseClusterUrl(connection), opts);
    return new Redis(connection, { retryStrategy: reconnectDelay, ...opts });
  }
  if (connection && 'clusterNodes' in connection) return newCluster(connection as ClusterConnectionOptions, opts);
  return new Redis({ host: '127.0.0.1', port: 6379, retryStrategy: reconnectDelay, ...(connection as RedisOptions | undefined), ...opts });
}

/**
 * How long a lost connection to one Redis waits before its next attempt, unless the options give
 * a `retryStrategy`: 50 ms more per attempt, at most 2 s (ioredis 5's default; ioredis 6 doubles
 * from 50 ms up to 5 s, so a worker would wait up to 5 s more to see a restarted Redis). A
 * Cluster reconnects its nodes itself.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 50, 2000);
}

/**
 * ioredis Cluster options durabull sets unless `clusterOptions` says otherwise: a command that meets
 * a failover (its master's connection closed, CLUSTERDOWN, TRYAGAIN) is retried every 200 ms up to
 * 64 times, about 13 s, instead of ioredis' 100 ms × 16 (1.6 s, shorter than a failover even with a
 * 1 s `cluster-node-timeout`), before it fails with "Too many Cluster redirections".
 */
export const CLUSTER_FAILOVER_DEFAULTS = {
  retryDelayOnFailover: 200,
  retryDelayOnClusterDown: 200,
  retryDelayOnTryAgain: 200,
  maxRedirections: 64,
} as const satisfies Partial<ClusterOptions>;

function newCluster(c: ClusterConnectionOptions, opts: RedisOptions): Cluster {
  return new Cluster(toClusterNodes(c.clusterNodes), {
    ...CLUSTER_FAILOVER_DEFAULTS,
    ...c.clusterOptions,
    redisOptions: { ...c.redisOptions, ...opts },
  });
}

/** A new connection like `c`: its nodes and options, not its commands or subscriptions. */
export function duplicateClient<C extends RedisClient>(c: C): C {
  return (isCluster(c) ? c.duplicate() : (c as Redis).duplicate()) as C;
}

/**
 * A second connection like `redis` (same nodes and options), with `maxRetriesPerRequest: null`
 * whatever `redis` has (on a cluster: on every node's connection), as BullMQ's blocking
 * connections need it.
 */
export function duplicateConnection(redis: RedisClient): RedisClient {
  if (isCluster(redis)) return redis.duplicate([], { redisOptions: { ...redis.options.redisOptions, maxRetriesPerRequest: null } });
  return redis.duplicate({ maxRetriesPerRequest: null });
}

/** QUIT when connected (replies to what was sent still arrive); otherwise drop the connection at once. */
export async function closeConnection(redis: RedisClient): Promise<void> {
  if (redis.status === 'end') return;
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  await redis.quit().catch(() => redis.disconnect());
}

/** The connections to the masters (a single server: itself). On a cluster, waits until its slots are known. */
export async function masterNodes(redis: RedisClient): Promise<Redis[]> {
  if (!isCluster(redis)) return [redis];
  if (redis.status !== 'ready') {
    if (redis.status === 'wait') await redis.connect().catch(() => undefined);
    await new Promise<void>((resolve, reject) => {
      if (redis.status === 'ready') return resolve();
      const ok = (): void => {
        redis.off('error', fail);
        resolve();
      };
      const fail = (err: Error): void => {
        redis.off('ready', ok);
        reject(err);
      };
      redis.once('ready', ok);
      redis.once('error', fail);
    });
  }
  return redis.nodes('master');
}

/**
 * Every key matching the glob `pattern`, on every master of a cluster (SCAN on a cluster covers
 * one node), in batches of about `count`.
 */
export async function* scanKeys(redis: RedisClient, pattern: string, count = 1000): AsyncGenerator<string[]> {
  for (const node of await masterNodes(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', count);
      cursor = next;
      if (keys.length > 0) yield keys;
    } while (cursor !== '0');
  }
}
