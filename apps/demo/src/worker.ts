/**
 * A worker process for the demo's functions: `tsx --conditions=source apps/demo/src/worker.ts
 * [--orchestrators-only | --activities-only]`. Run as many as you like against one Redis
 * (REDIS_URL or REDIS_CLUSTER_NODES, DURABULL_HUB); each stops gracefully on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { connectionFromEnv } from '@durabull/redis';
import { DurabullWorker } from '@durabull/worker';
import { registry } from './functions.js';

const { values } = parseArgs({
  options: {
    'orchestrators-only': { type: 'boolean', default: false },
    'activities-only': { type: 'boolean', default: false },
    concurrency: { type: 'string' },
  },
});
const concurrency = values.concurrency ? Number(values.concurrency) : undefined;
const worker = new DurabullWorker({
  connection: connectionFromEnv(),
  hub: process.env.DURABULL_HUB ?? 'demo',
  registry,
  orchestrators: !values['activities-only'],
  activities: !values['orchestrators-only'],
  ...(concurrency ? { orchestratorConcurrency: concurrency, activityConcurrency: concurrency } : {}),
});
await worker.start();
worker.closeOnSignals();
worker.log.info({ orchestrators: !values['activities-only'], activities: !values['orchestrators-only'] }, 'Worker started');
