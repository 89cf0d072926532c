import { ValidationError } from '@durabull/core';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  assertConnection,
  clusterUrl,
  connectionFromEnv,
  createRedisClient,
  isCluster,
  parseClusterNodes,
  parseClusterUrl,
  reconnectDelay,
  redactConnectionUrl,
} from '../connection.js';
import { RedisBackend } from '../redis-backend.js';

describe('cluster connection strings', () => {
  it('parses redis-cluster:// with credentials, IPv6 nodes and a trailing slash', () => {
    expect(parseClusterUrl('redis-cluster://127.0.0.1:7000,127.0.0.1:7001')).toEqual({
      clusterNodes: [
        { host: '127.0.0.1', port: 7000 },
        { host: '127.0.0.1', port: 7001 },
      ],
      redisOptions: {},
    });
    expect(parseClusterUrl('redis-cluster://app:p%40ss@h1:7000,[::1]:7001/')).toEqual({
      clusterNodes: [
        { host: 'h1', port: 7000 },
        { host: '::1', port: 7001 },
      ],
      redisOptions: { username: 'app', password: 'p@ss' },
    });
    expect(parseClusterUrl('rediss-cluster://:pw@h:7000').redisOptions).toEqual({ password: 'pw', tls: {} });
  });

  it('refuses what is not a list of host:port, naming it', () => {
    expect(() => parseClusterUrl('redis-cluster://')).toThrow(ValidationError);
    expect(() => parseClusterUrl('redis-cluster://h')).toThrow(/'h' is not a cluster node; write host:port/);
    expect(() => parseClusterUrl('redis-cluster://h:0')).toThrow(/'h:0' is not a cluster node/);
    expect(() => parseClusterUrl('redis-cluster://h:70000')).toThrow(/'h:70000' is not a cluster node/);
    expect(() => parseClusterUrl('redis-cluster://h:1/2')).toThrow(/a path, query or fragment is not supported/);
    expect(() => parseClusterUrl('redis-cluster://h:1?tls=1')).toThrow(ValidationError);
    expect(() => parseClusterNodes(' , ', 'REDIS_CLUSTER_NODES')).toThrow(/REDIS_CLUSTER_NODES: no node given/);
  });

  it('round-trips through clusterUrl, and never shows a password', () => {
    const nodes = parseClusterNodes('127.0.0.1:7000, 127.0.0.1:7001');
    expect(clusterUrl(nodes)).toBe('redis-cluster://127.0.0.1:7000,127.0.0.1:7001');
    expect(redactConnectionUrl('redis-cluster://u:secret@h:1,h:2')).toBe('redis-cluster://u:***@h:1,h:2');
    expect(redactConnectionUrl('redis://:secret@h:1')).toBe('redis://:***@h:1');
    let message = '';
    try {
      parseClusterUrl('redis-cluster://u:secret@h');
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/not a cluster node/);
    expect(message).not.toContain('secret');
  });
});

describe('connectionFromEnv', () => {
  it('REDIS_CLUSTER_NODES gives a cluster URL, else REDIS_URL, else the default', () => {
    expect(connectionFromEnv({ REDIS_CLUSTER_NODES: '127.0.0.1:7000,127.0.0.1:7001' })).toBe('redis-cluster://127.0.0.1:7000,127.0.0.1:7001');
    expect(connectionFromEnv({ REDIS_URL: 'redis://h:1' })).toBe('redis://h:1');
    expect(connectionFromEnv({})).toBe('redis://127.0.0.1:6379');
  });

  it('refuses both at once, and a bad node list', () => {
    expect(() => connectionFromEnv({ REDIS_URL: 'redis://h:1', REDIS_CLUSTER_NODES: 'h:2' })).toThrow(/both REDIS_URL and REDIS_CLUSTER_NODES are set/);
    expect(() => connectionFromEnv({ REDIS_CLUSTER_NODES: 'h2' })).toThrow(/REDIS_CLUSTER_NODES: 'h2' is not a cluster node/);
  });
});

describe('createRedisClient', () => {
  it('refuses anything that is not a connection with a ValidationError, never falling back to localhost', () => {
    for (const bad of ['localhost:6379', 'http://h:1', '', 42, null, [], true]) {
      expect(() => createRedisClient(bad as never), String(bad)).toThrow(ValidationError);
    }
    expect(() => createRedisClient({ clusterNodes: [] })).toThrow(/clusterNodes must be a non-empty array/);
    expect(() => createRedisClient({ clusterNodes: ['h'] })).toThrow(/'h' is not a cluster node/);
    expect(() => createRedisClient({ clusterNodes: [{ host: 'h' } as never] })).toThrow(/each node is 'host:port' or \{ host, port \}/);
    expect(() => createRedisClient({ redisOptions: { password: 'x' } } as never)).toThrow(/has 'redisOptions' but no clusterNodes/);
    expect(() => createRedisClient({ startupNodes: [{ host: 'h', port: 1 }] } as never)).toThrow(/has 'startupNodes' but no clusterNodes/);
    expect(() => assertConnection('foo', 'DurabullClient: options.connection')).toThrow(/DurabullClient: options.connection 'foo' is not a Redis URL/);
  });

  it('returns a Redis or a Cluster given as it is, and builds a Cluster from either cluster form', () => {
    const redis = new Redis({ lazyConnect: true });
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true });
    try {
      expect(createRedisClient(redis)).toBe(redis);
      expect(createRedisClient(cluster)).toBe(cluster);
      expect(isCluster(cluster)).toBe(true);
      expect(isCluster(redis)).toBe(false);
    } finally {
      redis.disconnect();
      cluster.disconnect();
    }
    for (const c of [
      createRedisClient('redis-cluster://127.0.0.1:1,127.0.0.1:2', { commandTimeout: 500 }),
      createRedisClient({ clusterNodes: ['127.0.0.1:1', { host: '127.0.0.1', port: 2 }], redisOptions: { password: 'pw', maxRetriesPerRequest: 3 }, clusterOptions: { lazyConnect: true } }, { commandTimeout: 500 }),
    ]) {
      try {
        expect(isCluster(c)).toBe(true);
        const o = (c as Cluster).options.redisOptions!;
        // BullMQ reads maxRetriesPerRequest from the nodes' options of a Cluster; it must be null there.
        expect(o.maxRetriesPerRequest).toBeNull();
        expect(o.commandTimeout).toBe(500);
        expect((c as unknown as { startupNodes: { port: number }[] }).startupNodes.map((n) => n.port)).toEqual([1, 2]);
        // A command retries across a failover for about 13 s (ioredis alone: 1.6 s).
        expect((c as Cluster).options).toMatchObject({ retryDelayOnFailover: 200, retryDelayOnClusterDown: 200, retryDelayOnTryAgain: 200, maxRedirections: 64 });
      } finally {
        c.disconnect();
      }
    }
    // A lost connection tries again 50 ms later per attempt, at most 2 s apart, unless the options say otherwise.
    expect([1, 2, 10, 40, 1000].map(reconnectDelay)).toEqual([50, 100, 500, 2000, 2000]);
    const own1 = createRedisClient('redis://127.0.0.1:1', { lazyConnect: true }) as Redis;
    const own2 = createRedisClient({ port: 1, lazyConnect: true, retryStrategy: () => 7 }) as Redis;
    try {
      expect(own1.options.retryStrategy).toBe(reconnectDelay);
      expect(own2.options.retryStrategy!(1)).toBe(7);
    } finally {
      own1.disconnect();
      own2.disconnect();
    }
    // The caller's clusterOptions win over those defaults.
    const own = createRedisClient({ clusterNodes: ['127.0.0.1:1'], clusterOptions: { lazyConnect: true, maxRedirections: 5, retryDelayOnFailover: 50 } }) as Cluster;
    try {
      expect(own.options).toMatchObject({ maxRedirections: 5, retryDelayOnFailover: 50, retryDelayOnClusterDown: 200 });
    } finally {
      own.disconnect();
    }
  });
});

describe('the backend on a given client', () => {
  it("gives BullMQ a duplicate with maxRetriesPerRequest: null on every node, whatever the caller's client has", () => {
    const cluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true, redisOptions: { maxRetriesPerRequest: 3, password: 'pw' } });
    const redis = new Redis({ lazyConnect: true, maxRetriesPerRequest: 3 });
    const backends = [new RedisBackend({ connection: cluster, hub: 'x' }), new RedisBackend({ connection: redis, hub: 'x' })];
    try {
      const [onCluster, onRedis] = backends.map((b) => b.queueConnection);
      expect(isCluster(onCluster)).toBe(true);
      expect((onCluster as Cluster).options.redisOptions).toMatchObject({ maxRetriesPerRequest: null, password: 'pw' });
      expect(onCluster).not.toBe(cluster);
      expect((onRedis as Redis).options.maxRetriesPerRequest).toBeNull();
      // The caller's own clients keep their options.
      expect(cluster.options.redisOptions?.maxRetriesPerRequest).toBe(3);
      expect(redis.options.maxRetriesPerRequest).toBe(3);
    } finally {
      for (const b of backends) b.queueConnection.disconnect();
      cluster.disconnect();
      redis.disconnect();
    }
  });
});
