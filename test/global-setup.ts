/**
 * Vitest globalSetup: picks the Redis for the whole test run, once, in the main process.
 *
 * Order: `REDIS_URL` when set (it must answer PING); else a `redis:7-alpine` container when a container runtime
 * answers (testcontainers); else `redis://127.0.0.1:6379` when it answers PING; else a `redis-server` from the PATH
 * started on a free port in a temporary directory. Tests read the choice with `redisUrl()` from
 * `test/src/helpers/redis.ts` (`inject('redisUrl')`); child processes get it as `REDIS_URL`.
 *
 * Cluster mode (`DURABULL_TEST_REDIS=cluster`, what `npm run test:cluster` sets): a 3-master Redis Cluster started
 * here on free loopback ports (`startRedisCluster`, about 2 s), or the one `REDIS_URL=redis-cluster://...` names;
 * `redisUrl()` is then its `redis-cluster://127.0.0.1:<port>,...` string, which every `connection` option accepts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { RedisServerNotFoundError, pingRedis, redactUrl, startRedisCluster, startRedisServer } from '@durabull/testing';
// Brings the `redisUrl` key of vitest's ProvidedContext into scope for project.provide().
import type {} from './src/helpers/redis.js';

const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379';
/** How long a container runtime may take to answer before the run moves on without one. */
const CONTAINER_RUNTIME_TIMEOUT_MS = 5_000;
/** How long pulling and starting the container may take (a first pull needs the network). */
const CONTAINER_START_TIMEOUT_MS = 120_000;

interface ChosenRedis {
  url: string;
  /** Where the Redis came from, for the log line. */
  source: string;
  teardown(): Promise<void>;
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const previousRedisUrl = process.env.REDIS_URL;
  const chosen = await chooseRedis();
  project.provide('redisUrl', chosen.url);
  // Workers are forked after globalSetup and inherit process.env, and so do the processes tests spawn.
  process.env.REDIS_URL = chosen.url;
  console.log(`[durabull tests] Redis ${redactUrl(chosen.url)} (${chosen.source})`);

  return async () => {
    await chosen.teardown();
    if (previousRedisUrl === undefined) delete process.env.REDIS_URL;
    else process.env.REDIS_URL = previousRedisUrl;
  };
}

async function chooseRedis(): Promise<ChosenRedis> {
  const mode = process.env.DURABULL_TEST_REDIS;
  if (mode !== undefined && mode !== '' && mode !== 'single' && mode !== 'cluster') {
    throw new Error(`DURABULL_TEST_REDIS must be 'single' or 'cluster', got '${mode}'`);
  }
  if (mode === 'cluster') return chooseCluster();
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    // An explicit choice that does not answer is an error, not a reason to test against something else.
    if (!(await pingRedis(fromEnv, 2_000))) {
      throw new Error(`REDIS_URL=${redactUrl(fromEnv)} does not answer PING: start that Redis, or unset REDIS_URL.`);
    }
    return { url: fromEnv, source: 'REDIS_URL', teardown: async () => {} };
  }

  const container = await startRedisContainer();
  if (container !== undefined) return container;

  if (await pingRedis(LOCAL_REDIS_URL, 1_000)) {
    return { url: LOCAL_REDIS_URL, source: 'local Redis on port 6379', teardown: async () => {} };
  }

  const dataDir = await mkdtemp(join(tmpdir(), 'durabull-test-redis-'));
  try {
    const server = await startRedisServer({ dataDir });
    return {
      url: server.url,
      source: `redis-server pid ${server.pid} started in ${dataDir}`,
      teardown: async () => {
        await server.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    if (err instanceof RedisServerNotFoundError) {
      throw new RedisServerNotFoundError(
        `No Redis for the tests: REDIS_URL is unset, no container runtime answered, nothing answers at ${LOCAL_REDIS_URL}, ` +
          `and redis-server is not on the PATH: ${RedisServerNotFoundError.howToGetRedis}.`,
      );
    }
    throw err;
  }
}

/** Cluster mode: `REDIS_URL` when it is a cluster URL that answers, else a 3-master cluster started here. */
async function chooseCluster(): Promise<ChosenRedis> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv && /^rediss?-cluster:\/\//i.test(fromEnv)) {
    if (!(await pingRedis(fromEnv, 5_000))) throw new Error(`REDIS_URL=${redactUrl(fromEnv)} does not answer as a healthy cluster (PING, cluster_state:ok).`);
    return { url: fromEnv, source: 'REDIS_URL (cluster)', teardown: async () => {} };
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'durabull-test-cluster-'));
  try {
    const started = Date.now();
    const cluster = await startRedisCluster({ dataDir, masters: 3 });
    return {
      url: cluster.url,
      source: `3-master cluster started in ${Date.now() - started} ms, pids ${cluster.nodes.map((n) => n.pid).join(' ')}, in ${dataDir}`,
      teardown: async () => {
        await cluster.stop();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}

/** A `redis:7-alpine` container, or `undefined` when no container runtime answers or the container does not start. */
async function startRedisContainer(): Promise<ChosenRedis | undefined> {
  // Imported lazily: testcontainers pulls in dockerode and ssh2, which most runs never need.
  const { GenericContainer, getContainerRuntimeClient } = await import('testcontainers');
  try {
    await withTimeout(getContainerRuntimeClient(), CONTAINER_RUNTIME_TIMEOUT_MS, 'container runtime did not answer');
  } catch {
    return undefined;
  }
  try {
    const container = await withTimeout(
      new GenericContainer('redis:7-alpine')
        .withExposedPorts(6379)
        .withCommand(['redis-server', '--save', '', '--appendonly', 'no'])
        .start(),
      CONTAINER_START_TIMEOUT_MS,
      'redis container did not start',
    );
    const url = `redis://${container.getHost()}:${container.getMappedPort(6379)}`;
    return {
      url,
      source: `container ${container.getId().slice(0, 12)}`,
      teardown: async () => {
        await container.stop();
      },
    };
  } catch (err) {
    console.warn(`[durabull tests] a container runtime answered but redis:7-alpine did not start (${String(err)}); trying without it`);
    return undefined;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
