/**
 * @durabull/testing: helpers for durabull's tests that need a real Redis.
 *
 * ```ts
 * const redis = await ensureRedis({ dataDir: '.redis-data' }); // a running Redis, or one started here
 * // ... tests against redis.url ...
 * await redis.stop();
 * ```
 */

// Redis server process
export {
  startRedisServer,
  findRedisServer,
  RedisServerNotFoundError,
  type RedisServer,
  type RedisServerOptions,
  type AppendFsync,
} from './redis-server.js';

// Finding or starting a Redis
export { ensureRedis, redisUrlFromEnv, DEFAULT_REDIS_URL, type EnsureRedisOptions, type EnsuredRedis } from './ensure-redis.js';

// Network helpers
export { getFreePort, isPortFree, pingRedis, redactUrl, LOOPBACK_HOST } from './net.js';

// Redis Cluster on loopback
export { startRedisCluster, type RedisCluster, type RedisClusterNode, type RedisClusterOptions } from './redis-cluster.js';
