import { createServer } from 'node:net';
import { Cluster, Redis } from 'ioredis';

/** The loopback address every server started by this package binds to. */
export const LOOPBACK_HOST = '127.0.0.1';

/**
 * Finds a TCP port that is free on `host` right now, by binding port 0 and reading what the kernel chose.
 *
 * The port is released before this resolves, so another process can still take it before the caller binds it:
 * callers that spawn a server on it should retry with a new port when the bind fails.
 */
export async function getFreePort(host: string = LOOPBACK_HOST): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`could not read the port bound on ${host}`));
        return;
      }
      server.close((err) => (err ? reject(err) : resolve(address.port)));
    });
  });
}

/** Tells whether `port` can be bound on `host` right now (same race as {@link getFreePort}). */
export async function isPortFree(port: number, host: string = LOOPBACK_HOST): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve(true));
    });
  });
}

/**
 * Sends one PING to the Redis at `url` and tells whether it answered `PONG` within `timeoutMs`.
 *
 * Never throws and never retries: a refused connection, a wrong password (`NOAUTH`/`WRONGPASS`), a server still
 * loading its data set (`LOADING`) or silence all give `false`. Credentials, TLS (`rediss://`) and the database index
 * in the URL are honoured, because the check goes through ioredis.
 */
export async function pingRedis(url: string, timeoutMs = 1000): Promise<boolean> {
  if (/^rediss?-cluster:\/\//i.test(url)) return pingCluster(url, timeoutMs);
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    enableReadyCheck: false,
    // One attempt only: ioredis would otherwise reconnect forever in the background.
    retryStrategy: () => null,
  });
  // Without a listener ioredis prints "[ioredis] Unhandled error event" for every refused connection.
  client.on('error', () => {});
  return answersWithin(client, timeoutMs, async () => (await client.ping()) === 'PONG');
}

/**
 * Connects `client` and runs `check` on it, giving `false` for any error or when `timeoutMs` passes first; the
 * client is disconnected either way.
 */
async function answersWithin(client: Redis | Cluster, timeoutMs: number, check: () => Promise<boolean>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const attempt = (async () => {
    try {
      await client.connect();
      return await check();
    } catch {
      return false;
    }
  })();
  try {
    return await Promise.race([attempt, deadline]);
  } finally {
    clearTimeout(timer);
    client.disconnect();
  }
}

/**
 * A PING through a Redis Cluster given as `redis-cluster://[user[:password]@]host:port,...` (the form durabull
 * accepts), once its slots are known: `true` only when the cluster is up (`cluster_state:ok` on the node asked).
 */
async function pingCluster(url: string, timeoutMs: number): Promise<boolean> {
  const m = /^(rediss?)-cluster:\/\/(?:([^@]*)@)?([^/?#]+)\/?$/i.exec(url);
  if (!m) return false;
  const [user, pass] = (m[2] ?? '').split(':').map((s) => decodeURIComponent(s));
  const nodes = m[3]!.split(',').map((n) => {
    const i = n.lastIndexOf(':');
    return { host: n.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(n.slice(i + 1)) };
  });
  const client = new Cluster(nodes, {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: () => null,
    slotsRefreshTimeout: timeoutMs,
    redisOptions: {
      connectTimeout: timeoutMs,
      commandTimeout: timeoutMs,
      maxRetriesPerRequest: 0,
      ...(user ? { username: user } : {}),
      ...(pass ? { password: pass } : {}),
      ...(m[1]!.toLowerCase() === 'rediss' ? { tls: {} } : {}),
    },
  });
  client.on('error', () => {});
  return answersWithin(client, timeoutMs, async () => (await client.ping()) === 'PONG' && /cluster_state:ok/.test(String(await client.cluster('INFO'))));
}

/** `url` with its password replaced by `***`, for log lines (cluster URLs too). Returns the input unchanged when it does not parse. */
export function redactUrl(url: string): string {
  if (/^rediss?-cluster:\/\//i.test(url)) return url.replace(/^([^:]+:\/\/[^:@/]*:)[^@]*@/, '$1***@');
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url;
  }
}
