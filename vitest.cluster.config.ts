/**
 * `npm run test:cluster`: the integration tests that exercise the storage paths, on a 3-master Redis Cluster that
 * test/global-setup.ts starts for the run (DURABULL_TEST_REDIS=cluster). `npm run test:cluster:all` runs every
 * integration test on a cluster (all but the single-server ones below); this list keeps `npm test` near ten minutes
 * on two cores. docs/operations.md#the-tests-on-a-cluster says which files and why.
 */
import { configDefaults, defineConfig } from 'vitest/config';
import base from './vitest.config.js';

process.env.DURABULL_TEST_REDIS = 'cluster';

/**
 * Tests that start a redis-server of their own (they restart, kill, freeze or cut it, or give it a password or ACL
 * users): they test a single server, so the cluster runs leave them out (docs/operations.md says why, file by file).
 */
const SINGLE_SERVER_ONLY = [
  'test/src/aof-cut.test.ts',
  'test/src/client-redis-down.test.ts',
  'test/src/server-redis-down.test.ts',
  'test/src/connection-log.test.ts',
  'test/src/entities-crash.test.ts',
  'test/src/faults.test.ts',
  'test/src/redis-auth.test.ts',
  'test/src/security.test.ts',
];

/** `npm run test:cluster:all` (DURABULL_TEST_CLUSTER_ALL=1): every integration test but those. */
const ALL = ['test/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'packages/cli/src/**/*.test.ts'];

// Not mergeConfig: it would append this list to the base config's `include` instead of replacing it.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    exclude: [...(base.test?.exclude ?? configDefaults.exclude), ...SINGLE_SERVER_ONLY],
    include: process.env.DURABULL_TEST_CLUSTER_ALL === '1' ? ALL : [
      // the cluster itself, and the test helpers on it
      'test/src/redis-cluster.test.ts',
      'test/src/helpers/redis.test.ts',
      // partitions over the masters: messages between partitions, hub-wide reads
      'test/src/partitions.test.ts',
      // instances: scripts, episodes, queries, management, payloads stored apart, bad input
      'test/src/orchestrations.test.ts',
      'test/src/activity-job-layout.test.ts',
      'test/src/activity-finish.test.ts',
      'test/src/episode-finish.test.ts',
      'test/src/wait-set.test.ts',
      'test/src/orchestration-api*.test.ts',
      'test/src/instance-management.test.ts',
      'test/src/redis-backend.redis.test.ts',
      'test/src/claim-check.test.ts',
      'test/src/bad-input.test.ts',
      // entities, schedules, the checker, the worker registry, sticky episodes, several processes
      'test/src/entities.test.ts',
      'test/src/schedules.test.ts',
      'test/src/checker.redis.test.ts',
      'test/src/worker-registry.test.ts',
      'test/src/sticky-episodes.test.ts',
      'test/src/sticky-starts.test.ts',
      'test/src/multi-process.test.ts',
      // the durable-functions package, the server, the CLI, the demo and the samples
      'test/src/durable-functions/*.test.ts',
      'apps/server/src/server.test.ts',
      'packages/cli/src/cli.test.ts',
      'apps/demo/src/demo.test.ts',
      'apps/samples/src/samples.test.ts',
    ],
  },
});
