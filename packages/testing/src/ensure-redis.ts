import { LOOPBACK_HOST, isPortFree, pingRedis, redactUrl } from './net.js';
import { RedisServerNotFoundError, findRedisServer, startRedisServer, type RedisServer } from './redis-server.js';

/** The URL used when neither `url` nor `REDIS_URL` is given. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** How long the first PING may take before the Redis counts as absent. */
const PING_TIMEOUT_MS = 1000;

/** Options of {@link ensureRedis}. */
export interface EnsureRedisOptions {
  /** Redis to look for. Default: {@link redisUrlFromEnv} (`REDIS_CLUSTER_NODES`, `REDIS_URL`, else {@link DEFAULT_REDIS_URL}). */
  url?: string;
  /** Data directory of the redis-server started when nothing answers (its AOF lives there). */
  dataDir: string;
  /** Receives one human-readable line per decision; passwords are redacted. Default: silent. */
  log?: (line: string) => void;
}

/** What {@link ensureRedis} settled on. */
export interface EnsuredRedis {
  /** URL of a Redis that answered PING. */
  url: string;
  /** `true` when ensureRedis started the server itself (and `stop` shuts it down). */
  started: boolean;
  /** Stops the server ensureRedis started; does nothing when it found one already running. */
  stop(): Promise<void>;
}

/**
 * Returns a Redis that answers PING: the one at `url` when it answers within about a second, else a `redis-server`
 * started here with `appendonly yes` in `dataDir`.
 *
 * The new server takes the URL's port when the URL is a loopback one and that port is free (so the URL the caller
 * expected keeps working), and a free port otherwise; a password in the URL becomes its `requirepass`. The returned
 * `url` is always the one to use.
 *
 * @throws {RedisServerNotFoundError} when nothing answers and `redis-server` is not on the PATH; its message is one
 *   line saying how to get a Redis.
 */
export async function ensureRedis(opts: EnsureRedisOptions): Promise<EnsuredRedis> {
  const url = opts.url ?? redisUrlFromEnv();
  const log = opts.log ?? (() => {});

  if (await pingRedis(url, PING_TIMEOUT_MS)) {
    log(`Redis at ${redactUrl(url)} answers PING; using it.`);
    return { url, started: false, stop: async () => {} };
  }

  if (/^rediss?-cluster:\/\//i.test(url)) {
    // A cluster is not something to replace with a single server started here.
    throw new Error(`No Redis Cluster answered at ${redactUrl(url)} (PING and cluster_state:ok): start it, or point at a single Redis instead.`);
  }

  if (findRedisServer() === undefined) {
    throw new RedisServerNotFoundError(
      `No Redis answered PING at ${redactUrl(url)} and redis-server is not on the PATH: ${RedisServerNotFoundError.howToGetRedis}.`,
    );
  }

  const target = parseRedisUrl(url);
  const reusablePort =
    target !== undefined && target.loopback && (await isPortFree(target.port)) ? target.port : undefined;
  const serverOptions = { dataDir: opts.dataDir, appendonly: true, password: target?.password } as const;

  let server: RedisServer;
  if (reusablePort !== undefined) {
    log(`No Redis answered PING at ${redactUrl(url)}; starting redis-server on its port ${reusablePort} in ${opts.dataDir}.`);
    try {
      server = await startRedisServer({ ...serverOptions, port: reusablePort });
    } catch (err) {
      // The port can be taken between the check and the bind; any free port will do then.
      if (err instanceof RedisServerNotFoundError) throw err;
      log(`Could not start redis-server on port ${reusablePort} (${firstLine(err)}); trying a free port.`);
      server = await startRedisServer(serverOptions);
    }
  } else {
    log(`No Redis answered PING at ${redactUrl(url)}; starting redis-server on a free port in ${opts.dataDir}.`);
    server = await startRedisServer(serverOptions);
  }

  // Keep the database index of the URL (redis://host:port/3) on the new server.
  const startedUrl = target?.db === undefined ? server.url : `${server.url}/${target.db}`;
  log(`Started redis-server ${redactUrl(startedUrl)} (pid ${server.pid}).`);
  return { url: startedUrl, started: true, stop: () => server.stop() };
}

interface ParsedRedisUrl {
  port: number;
  loopback: boolean;
  password: string | undefined;
  db: string | undefined;
}

/** The parts of a `redis://` URL that matter for starting a stand-in; `undefined` for other schemes or junk. */
function parseRedisUrl(url: string): ParsedRedisUrl | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  if (parsed.protocol !== 'redis:') return undefined;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host === '::1' || host === LOOPBACK_HOST || host.startsWith('127.');
  const db = parsed.pathname.replace(/^\//, '');
  return {
    port: parsed.port === '' ? 6379 : Number(parsed.port),
    loopback,
    password: parsed.password === '' ? undefined : decodeURIComponent(parsed.password),
    db: /^\d+$/.test(db) ? db : undefined,
  };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
}

/**
 * The Redis the environment names: `REDIS_CLUSTER_NODES=host:port,...` gives `redis-cluster://host:port,...` (a
 * Redis Cluster), else `REDIS_URL`, else {@link DEFAULT_REDIS_URL}.
 *
 * @throws {Error} when both REDIS_URL and REDIS_CLUSTER_NODES are set.
 */
export function redisUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const nodes = env.REDIS_CLUSTER_NODES?.trim();
  if (nodes) {
    if (env.REDIS_URL?.trim()) throw new Error('both REDIS_URL and REDIS_CLUSTER_NODES are set: set only one');
    return `redis-cluster://${nodes.split(',').map((n) => n.trim()).filter((n) => n !== '').join(',')}`;
  }
  return env.REDIS_URL?.trim() || DEFAULT_REDIS_URL;
}
