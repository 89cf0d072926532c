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
  assertOptionalString(WHERE, 'options.hub', o.hub);
  assertOptionalNumber(WHERE, 'options.maxPayloadBytes', o.maxPayloadBytes, 0);
  assertOptionalNumber(WHERE, 'options.claimCheckThresholdBytes', o.claimCheckThresholdBytes, 0, true);
  for (const k of ['orchestrators', 'activities', 'inlineEpisodes', 'eagerActivities', 'extendedSessions', 'entities']) {
    assertOptionalBoolean(WHERE, `options.${k}`, o[k]);
  }
  for (const k of ['orchestratorConcurrency', 'activityConcurrency', 'maxEpisodeAttempts', 'sweepInstancesPerPass', 'entityConcurrency', 'entityBatchSize']) {
    assertOptionalInteger(WHERE, `options.${k}`, o[k], 1);
  }
  for (const k of ['entityBatchWindowMs', 'entityLeaseMs']) assertOptionalNumber(WHERE, `options.${k}`, o[k], 0, true);
  for (const k of ['maxStalledCount', 'maxHistoryEvents']) assertOptionalInteger(WHERE, `options.${k}`, o[k], 0);
  for (const k of ['lockDurationMs', 'stalledIntervalMs', 'eagerLeaseMs']) assertOptionalNumber(WHERE, `options.${k}`, o[k], 0);
  assertOptionalNumber(WHERE, 'options.sweepIntervalMs', o.sweepIntervalMs, 0, true);
  const logger = o.logger as Record<string, unknown> | false | undefined;
  if (logger !== undefined && logger !== false && (typeof logger !== 'object' || logger === null || typeof logger.child !== 'function' || typeof logger.info !== 'function')) {
    throw invalidArgument(WHERE, 'options.logger', 'a pino logger or false', logger);
  }
}
