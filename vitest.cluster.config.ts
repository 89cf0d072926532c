/**
 * `npm run test:cluster`: the integration tests that exercise the storage paths, on a 3-master Redis Cluster that
 * test/global-setup.ts starts for the run (DURABULL_TEST_REDIS=cluster). The whole suite passes on a cluster too
 * (`DURABULL_TEST_REDIS=cluster npx vitest run test/src apps/demo apps/samples apps/server packages/cli`); this list keeps `npm test` near ten
 * minutes on two cores. docs/operations.md#the-tests-on-a-cluster says which files and why.
 */
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

process.env.DURABULL_TEST_REDIS = 'cluster';

// Not mergeConfig: it would append this list to the base config's `include` instead of replacing it.
export default defineConfig({
  ...base,
  test: {
    ...base.test,
    include: [
      // the cluster itself, and the test helpers on it
      'test/src/redis-cluster.test.ts',
      'test/src/helpers/redis.test.ts',
      // instances: scripts, episodes, queries, management, payloads stored apart, bad input
      'test/src/orchestrations.test.ts',
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
