/**
 * The checks of `new DurabullWorker(options)`: a wrong type or range throws ValidationError naming
 * the option and the value (`DurabullWorker: options.orchestratorConcurrency must be an integer >= 1,
 * got number 0`). Options it does not know are left alone. The cache sizes and the hub name's
 * format are checked by the backend.
 */
import {
  assertOptionalBoolean,
  assertOptionalInteger,
  assertOptionalNumber,
  assertOptionalString,
  assertOptions,
  invalidArgument,
} from '@durabull/core';
import type { DurabullWorkerOptions } from './durabull-worker.js';
import { assertConnection } from '@durabull/redis';

const WHERE = 'DurabullWorker';

export function assertWorkerOptions(opts: DurabullWorkerOptions): void {
  if (opts === undefined) throw invalidArgument(WHERE, 'options', 'an object with a registry', opts);
  assertOptions(WHERE, 'options', opts);
  const o = opts as unknown as Record<string, unknown>;
  const registry = o.registry as Record<string, unknown> | null | undefined;
  if (typeof registry !== 'object' || registry === null || typeof registry.getOrchestrator !== 'function' || typeof registry.getActivity !== 'function') {
    throw invalidArgument(WHERE, 'options.registry', 'a Registry', registry);
  }
  const c = o.connection;
  if (c !== undefined && typeof c !== 'string' && (typeof c !== 'object' || c === null || Array.isArray(c))) {
    throw invalidArgument(WHERE, 'options.connection', 'a Redis URL, ioredis options or an ioredis client', c);
  }
  assertConnection(c, `${WHERE}: options.connection`);
  assertOptionalString(WHERE, 'options.hub', o.hub);
  if (o.partitions !== undefined) assertOptionalInteger(WHERE, 'options.partitions', o.partitions, 1, 1024);
  assertOptionalNumber(WHERE, 'options.maxPayloadBytes', o.maxPayloadBytes, 0);
  assertOptionalNumber(WHERE, 'options.claimCheckThresholdBytes', o.claimCheckThresholdBytes, 0, true);
  for (const k of ['orchestrators', 'activities', 'inlineEpisodes', 'eagerActivities', 'extendedSessions', 'stickyEpisodes', 'tracing', 'entities']) {
    assertOptionalBoolean(WHERE, `options.${k}`, o[k]);
  }
  for (const k of ['orchestratorConcurrency', 'activityConcurrency', 'maxEpisodeAttempts', 'sweepInstancesPerPass', 'entityConcurrency', 'entityBatchSize']) {
    assertOptionalInteger(WHERE, `options.${k}`, o[k], 1);
  }
  for (const k of ['entityBatchWindowMs', 'entityLeaseMs']) assertOptionalNumber(WHERE, `options.${k}`, o[k], 0, true);
  for (const k of ['maxStalledCount', 'maxHistoryEvents', 'defaultStartToCloseTimeoutMs', 'shutdownGraceMs']) assertOptionalInteger(WHERE, `options.${k}`, o[k], 0);
  for (const k of ['lockDurationMs', 'stalledIntervalMs', 'eagerLeaseMs']) assertOptionalNumber(WHERE, `options.${k}`, o[k], 0);
  assertOptionalNumber(WHERE, 'options.sweepIntervalMs', o.sweepIntervalMs, 0, true);
  assertOptionalNumber(WHERE, 'options.statsIntervalMs', o.statsIntervalMs, 0, true);
  assertOptionalInteger(WHERE, 'options.metricsPort', o.metricsPort, 0);
  if (typeof o.metricsPort === 'number' && o.metricsPort > 65535) throw invalidArgument(WHERE, 'options.metricsPort', 'a port from 0 to 65535', o.metricsPort);
  assertOptionalString(WHERE, 'options.metricsHost', o.metricsHost);
  const metrics = o.metrics as Record<string, unknown> | boolean | undefined;
  if (metrics !== undefined && typeof metrics !== 'boolean' && (typeof metrics !== 'object' || metrics === null || typeof metrics.instrument !== 'function')) {
    throw invalidArgument(WHERE, 'options.metrics', 'a boolean or a DurabullMetrics', metrics);
  }
  if (metrics === false && o.metricsPort !== undefined) throw invalidArgument(WHERE, 'options.metricsPort', 'left out when options.metrics is false (there is nothing to serve)', o.metricsPort);
  const instr = o.instrumentation as Record<string, unknown> | undefined;
  if (instr !== undefined && (typeof instr !== 'object' || instr === null || ['episode', 'activity', 'timerFired', 'repaired'].some((m) => typeof instr[m] !== 'function'))) {
    throw invalidArgument(WHERE, 'options.instrumentation', 'an object with episode, activity, timerFired and repaired methods (a WorkerInstrumentation)', instr);
  }
  const logger = o.logger as Record<string, unknown> | false | undefined;
  if (logger !== undefined && logger !== false && (typeof logger !== 'object' || logger === null || typeof logger.child !== 'function' || typeof logger.info !== 'function')) {
    throw invalidArgument(WHERE, 'options.logger', 'a pino logger or false', logger);
  }
}
