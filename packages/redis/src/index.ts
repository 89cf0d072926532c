/**
 * @durabull/redis: the Redis backend of durabull (key layout, Lua state transitions, history
 * streams, outbox into BullMQ queues).
 */

// Connections (a URL, ioredis options or client, a Redis Cluster)
export {
  createRedisClient,
  closeConnection,
  duplicateConnection,
  duplicateClient,
  assertConnection,
  connectionFromEnv,
  parseClusterUrl,
  parseClusterNodes,
  clusterUrl,
  isCluster,
  isClusterUrl,
  isRedisClient,
  masterNodes,
  scanKeys,
  redactConnectionUrl,
  DEFAULT_REDIS_URL,
  CLUSTER_FAILOVER_DEFAULTS,
  type RedisClient,
  type ClusterConnectionOptions,
  type ConnectionLike,
} from './connection.js';


// Router over a hub's partitions
export { TaskHub, DEFAULT_PARTITIONS, type HubOptions } from './task-hub.js';

// Backend: one partition of a hub
export {
  RedisBackend,
  SharedResources,
  HistoryCache,
  type PartitionSetup,
  type RequeueResult,
  newEventId,
  newExecutionId,
  activityJobId,
  subStartJobId,
  timerJobId,
  parseWake,
  wakeNotBefore,
  ignoreGone,
  attemptMember,
  formatAttemptInfo,
  HEARTBEAT_DETAILS_TTL_MS,
  type AttemptInfo,
  type ExpiredAttempt,
  type ActivityCallOptions,
  type ScheduleLink,
  type BackendOptions,
  type InstanceState,
  type LoadedEpisode,
  type InboxItem,
  type CommitResult,
  type CommitOptions,
  type EpisodeJobFinish,
  type DeliverResult,
  type EpisodeJobData,
  type TimerJobData,
  type ActivityJobData,
  type ParentLink,
  type ListQuery,
  type ListPage,
  type StoredEvent,
} from './redis-backend.js';

// Schedules
export {
  ScheduleStore,
  checkScheduleSpec,
  scheduleInstanceId,
  ticksBetween,
  nextTick,
  DEFAULT_CATCHUP_WINDOW_MS,
  MIN_SCHEDULE_INTERVAL_MS,
  MAX_CATCHUP_TICKS,
  BUFFER_CHECK_MS,
  SCHEDULE_JOB,
  SCHEDULE_BUFFER_JOB,
  type OverlapPolicy,
  type ScheduleSpec,
  type Schedule,
  type SchedulePage,
  type FireResult,
} from './schedules.js';
// Durable entities
export {
  EntityStore,
  entityMessageJobId,
  entityResponseJobId,
  entityResponse,
  type EntityMessage,
  type ClaimedEntity,
  type EntityBatchResult,
  type EntityStateResponse,
  type EntityMetadata,
  type EntityListQuery,
  type EntityListPage,
  type EntityResponseData,
} from './entity-store.js';

// Worker registry
export { WorkerRegistry, DEFAULT_SERVED_CACHE_MS, type WorkerEntry, type WorkerInfo, type WorkerKind } from './worker-registry.js';

// Invariant checker and repair of stuck instances
export {
  checkInstance,
  checkHub,
  checkHistoryEvents,
  wakeJobId,
  StuckSweeper,
  FINDING_CODES,
  DEFAULT_STUCK_GRACE_MS,
  type FindingCode,
  type Finding,
  type InstanceReport,
  type HubReport,
  type CheckOptions,
  type HubCheckOptions,
  type HistorySummary,
  type StuckSweepOptions,
  type StuckRepair,
} from './checker.js';

// Keys and encoding
export {
  HubKeys,
  assertHubName,
  assertInstanceId,
  assertPartitionCount,
  partitionOf,
  partitionTag,
  keySlot,
  hubMetaKey,
  CLUSTER_SLOTS,
  MAX_PARTITIONS,
  ORCHESTRATOR_QUEUE,
  ACTIVITY_QUEUE,
} from './keys.js';
export {
  encode,
  decode,
  encodePayload,
  encodeEvent,
  encodeCheckedEvent,
  encodeStoredEvent,
  checkPayload,
  measurePayload,
  assertSerializable,
  MAX_PAYLOAD_DEPTH,
  type PayloadSize,
  type CheckedPayload,
  decodeEvent,
  payloadField,
  PayloadRef,
  type Claim,
  DEFAULT_MAX_PAYLOAD_BYTES,
  DEFAULT_CLAIM_CHECK_THRESHOLD_BYTES,
} from './codec.js';

// Errors
export { ErrorCode, PartitionMismatchError, InstanceFinishedError, InvalidInstanceStateError, PayloadMissingError, RedisUnavailableError } from './error-codes.js';

// Connections: one listener each, an outage logged once
export { ConnectionMonitor, type ConnectionLogger, connectionAddress, isConnectionError, silentLogger } from './connection-monitor.js';

// Scripts (exported for tests and tools)
export { defineScripts, loadScripts, resolveScript, splitFilename, ScriptLoaderError } from './script-loader.js';
export { type BullFinish, compositeLua, DELIVER_EVENT_KEYS, COMMIT_EPISODE_KEYS } from './job-composites.js';
export { encodeCommand, useFastEncoding, useFastEncodingForAll } from './script-command.js';

// The dashboard's charts: per-minute counters and gauge samples kept in Redis
export {
  HubStatsRecorder,
  readHubGauges,
  readHubStats,
  bucketQuantile,
  STATS_RETENTION_MINUTES,
  LATENCY_BUCKETS_MS,
  LATENCY_KINDS,
  STATUSES,
  QUEUE_NAMES,
  QUEUE_STATES,
  type HubGauges,
  type HubStatsSeries,
  type LatencySeries,
  type LatencyKind,
  type StatsCounter,
  type QueueName,
  type QueueState,
} from './hub-stats.js';
