/**
 * durabull's HTTP server: the management API (Durable Functions' HTTP API in spirit), Bull Board
 * over the task hub's queues, and a server-rendered orchestration view.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import { DurabullClient } from '@durabull/client';
import {
  EntityNotFoundError,
  EntityOperationNotFoundError,
  InstanceAlreadyExistsError,
  InstanceNotFoundError,
  OrchestratorNotServedError,
  type RuntimeStatus,
  ScheduleAlreadyExistsError,
  ScheduleNotFoundError,
  ValidationError,
  isTerminalStatus,
} from '@durabull/core';
import { InstanceFinishedError, InvalidInstanceStateError, RedisUnavailableError, STATS_RETENTION_MINUTES, readHubGauges, readHubStats } from '@durabull/redis';
import { DurabullMetrics } from '@durabull/worker';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import type { ConnectionLike, RedisClient } from '@durabull/redis';
import { z } from 'zod';
import { type PageContext, entitiesPage, instancePage, jsonReplacer, listPage, notFoundPage, overviewPage, schedulesPage, workersPage } from './html.js';

/** Options of {@link createServer}. */
export interface ServerOptions {
  /** Redis URL (`redis-cluster://host:port,...` for a Redis Cluster), ioredis options, `{ clusterNodes }`, or an ioredis client. */
  connection: ConnectionLike;
  /** Task hub. Default `default`. */
  hub?: string;
  /** The hub's partition count, checked against the hub's (PartitionMismatchError). Default: the hub's. */
  partitions?: number;
  /**
   * API token. When set, every route (API, pages, Bull Board) needs `Authorization: Bearer <token>`.
   * A browser passes `?token=` once on a page, which sets an HttpOnly, SameSite=Strict cookie
   * (`Secure` when the request came over HTTPS, see `trustProxy`); the pages' own scripts then call
   * the API with that cookie and an `X-Durabull-Csrf` header, which a cross-site form or link cannot
   * send. The token is never written into a page.
   */
  token?: string;
  /**
   * The address the caller will listen on. Only checked here: anything but 127.0.0.1, ::1 or
   * localhost needs a `token` of at least {@link MIN_TOKEN_LENGTH} characters. Default 127.0.0.1.
   */
  host?: string;
  /**
   * Fastify's `trustProxy`: behind a reverse proxy that terminates TLS, `true` (or the proxy's
   * address) makes `X-Forwarded-Proto: https` count as HTTPS, so the token cookie is `Secure`.
   * Default false (only the connection itself counts).
   */
  trustProxy?: FastifyServerOptions['trustProxy'];
  /**
   * How long a request waits for a Redis reply (the client's `commandTimeoutMs`): a request in
   * flight when Redis stops answering gets a 503 after it. Default 10 s.
   */
  commandTimeoutMs?: number;
  /** Largest request body. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** When given, `POST /orchestrations/:name` refuses other names with 404 and lists these. */
  registeredOrchestrators?: string[];
  /** Fastify's logger option. Default off. */
  logger?: FastifyServerOptions['logger'];
}

/** The shortest token accepted when the server listens beyond loopback. */
export const MIN_TOKEN_LENGTH = 16;
/** How long the server waits for its first Redis connection before it serves (503s while Redis is not ready). */
const FIRST_CONNECT_WAIT_MS = 2000;

/** Instance ids as the backend accepts them (checked here before anything reaches Redis). */
const INSTANCE_ID = z
  .string()
  .regex(/^[A-Za-z0-9_.@-]{1,256}$/, "an instance id is 1 to 256 letters, digits, '_', '.', '@' or '-'")
  .refine((id) => id !== '.' && id !== '..', "'.' and '..' are not instance ids (no URL can address them)");
/** Orchestrator names as the registry accepts them. */
const NAME = z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/, "a name is 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or '_'");
const EVENT_NAME = z.string().regex(/^[A-Za-z0-9_.:@-]{1,128}$/, "an event name is 1 to 128 letters, digits, '_', '.', ':', '@' or '-'");
const STATUS = z.enum(['Pending', 'Running', 'Completed', 'Failed', 'Terminated', 'ContinuedAsNew', 'Suspended']);
/** `?status=Running,Pending` or `?status=Running&status=Pending`; an empty value (`?status=`, `?status=,`) is refused. */
const STATUSES = z
  .union([z.string(), z.array(z.string()).max(7)])
  .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()))
  .pipe(z.array(z.string().min(1, 'an empty status; give one or more of Pending, Running, Completed, Failed, Terminated, ContinuedAsNew, Suspended').pipe(STATUS)).min(1).max(7));
const DATE = z.union([z.iso.datetime({ offset: true }), z.iso.date()]).transform((s) => new Date(s));
const CURSOR = z.string().regex(/^[A-Za-z0-9_-]{1,2048}$/, 'pass the nextCursor of the previous page');
const BOOL = z.stringbool();

/** Schedule ids as the backend accepts them. */
const SCHEDULE_ID = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,200}$/, "a schedule id is 1 to 200 letters, digits, '_', '.' or '-'")
  .refine((id) => id !== '.' && id !== '..', "'.' and '..' are not schedule ids (no URL can address them)");
const OVERLAP = z.enum(['skip', 'bufferOne', 'allowAll']);
const ID_PARAMS = z.object({ id: INSTANCE_ID });
const SCHEDULE_PARAMS = z.object({ id: SCHEDULE_ID });
/** A JSON object body (its fields are checked by the client, which names each bad one). */
const OBJECT_BODY = z.record(z.string(), z.unknown());
const FILTERS = z.object({
  status: STATUSES.optional(),
  name: NAME.optional(),
  scheduleId: SCHEDULE_ID.optional(),
  createdFrom: DATE.optional(),
  createdTo: DATE.optional(),
});
const ENTITY_KEY = z.string().regex(/^[A-Za-z0-9_.@-]{1,200}$/, "an entity key is 1 to 200 letters, digits, '_', '.', '@' or '-'");
const ENTITY_PARAMS = z.object({ name: NAME, key: ENTITY_KEY });
const OPERATION = z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/, "an operation name is 1 to 128 letters, digits, '_', '.', ':' or '-'");
const ENTITY_CURSOR = z.string().regex(/^@[A-Za-z0-9_.@-]{1,400}$/, 'pass the nextCursor of the previous page');
const LIST_QUERY = FILTERS.extend({ pageSize: z.coerce.number().int().min(1).max(1000).optional(), cursor: CURSOR.optional() });
/** Body of terminate, suspend and resume: optional, with an optional reason. */
const REASON_BODY = z.object({ reason: z.unknown() }).optional();

/** An error with its HTTP status and JSON body `{ error, message, ... }`. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly error: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Parses `value` with `schema`; a mismatch is a 400 naming each bad field. */
function parse<T extends z.ZodType>(schema: T, value: unknown, where: string): z.output<T> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const message = result.error.issues.map((i) => `${[where, ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');
  throw new HttpError(400, 'BadRequest', `Invalid request: ${message}`);
}

/** Maps anything thrown to an HTTP status and the JSON error body (never a stack trace). */
function toHttpError(err: unknown): { status: number; body: Record<string, unknown> } {
  const e = err as { name?: string; message?: string; statusCode?: number; code?: string };
  const named = (status: number) => ({ status, body: { error: e.name ?? 'Error', message: e.message ?? '' } });
  if (err instanceof HttpError) return { status: err.statusCode, body: { error: err.error, message: err.message, ...err.extra } };
  if (err instanceof InstanceNotFoundError || err instanceof ScheduleNotFoundError) return named(404);
  if (err instanceof InstanceNotFoundError) return named(404);
  if (err instanceof EntityNotFoundError || err instanceof EntityOperationNotFoundError) return named(404);
  // No live worker of the hub runs that orchestrator: the names they run come with it.
  if (err instanceof OrchestratorNotServedError) return { status: 404, body: { error: err.name, message: err.message, served: err.served } };
  if (err instanceof InstanceAlreadyExistsError || err instanceof ScheduleAlreadyExistsError || err instanceof InstanceFinishedError || err instanceof InvalidInstanceStateError) {
    return named(409);
  }
  if (err instanceof ValidationError) return named(400); // PayloadError included
  // Redis did not answer in time: the request may or may not have taken effect.
  if (err instanceof RedisUnavailableError) return { status: 503, body: { error: 'ServiceUnavailable', message: err.message } };
  // The same from a command not made through the client's calls (Bull Board's reads of the queues).
  if (e.message === 'Command timed out') {
    return { status: 503, body: { error: 'ServiceUnavailable', message: 'Redis did not answer in time. The outcome is unknown: what was sent may still be applied once Redis is back.' } };
  }
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    const error =
      status === 413 ? 'PayloadTooLarge' : status === 415 ? 'UnsupportedMediaType' : status === 404 ? 'NotFound' : status === 400 ? 'BadRequest' : 'ClientError';
    const message =
      e.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
        ? 'Malformed JSON body.'
        : e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
          ? 'Unsupported content type: send JSON (content-type: application/json).'
          : (e.message ?? error);
    return { status, body: { error, message } };
  }
  return { status: 500, body: { error: 'InternalServerError', message: 'Internal server error.' } };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', '[::1]', 'localhost']);
const COOKIE = 'durabull_token';
/**
 * Sent by the pages' scripts with the cookie: a cross-site form, link or image cannot add a header,
 * and a cross-origin script that adds one needs a CORS preflight this server never grants.
 */
const CSRF_HEADER = 'x-durabull-csrf';

function sameToken(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function cookieValue(req: FastifyRequest, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Routes a browser opens (pages and Bull Board): they also accept the cookie and `?token=`. */
function isBrowserRoute(route: string | undefined): boolean {
  return route === '/' || route?.startsWith('/ui/') === true || route === '/queues' || route?.startsWith('/queues/') === true;
}

/** Resolves once `redis` is ready or its first attempt failed, or after `ms`. */
function firstContact(redis: RedisClient, ms: number): Promise<void> {
  if (redis.status === 'ready' || redis.status === 'end') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      for (const e of ['ready', 'error', 'reconnecting', 'end']) redis.off(e, done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    for (const e of ['ready', 'error', 'reconnecting', 'end']) redis.on(e, done);
  });
}

/**
 * Builds the server: the management API, Bull Board at `/queues` and the orchestration view at
 * `/`. It does not listen; call `listen()` on the result. Closing it (`app.close()`) closes its
 * DurabullClient. Throws when `host` is not loopback and no `token` of at least
 * {@link MIN_TOKEN_LENGTH} characters is set.
 */
export function createServer(opts: ServerOptions): FastifyInstance {
  const host = opts.host ?? '127.0.0.1';
  const token = opts.token;
  if (token !== undefined && token.length === 0) throw new Error('The API token must not be empty.');
  if (!LOOPBACK.has(host) && !token) {
    throw new Error(`Refusing to serve on ${host} without a token: set a token (DURABULL_TOKEN) or listen on 127.0.0.1.`);
  }
  if (!LOOPBACK.has(host) && token && token.length < MIN_TOKEN_LENGTH) {
    throw new Error(
      `Refusing to serve on ${host} with a token of ${token.length} character${token.length === 1 ? '' : 's'}: beyond loopback the token ` +
        `(DURABULL_TOKEN) must be at least ${MIN_TOKEN_LENGTH} characters; make one with \`openssl rand -hex 32\`.`,
    );
  }
  const registered = opts.registeredOrchestrators;

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimitBytes ?? 1024 * 1024,
    // Instance ids may be 256 characters; longer ones must reach validation (400), not miss the route (404).
    routerOptions: { maxParamLength: 1024 },
    ...(opts.trustProxy !== undefined ? { trustProxy: opts.trustProxy } : {}),
  });
  // The client logs a lost Redis connection once, and once more when it is back, through the server's logger.
  const client = new DurabullClient({
    connection: opts.connection,
    logger: app.log,
    ...(opts.hub ? { hub: opts.hub } : {}),
    ...(opts.partitions !== undefined ? { partitions: opts.partitions } : {}),
    ...(opts.commandTimeoutMs !== undefined ? { commandTimeoutMs: opts.commandTimeoutMs } : {}),
  });
  // The hub's gauges (instances by status, queue depths, outbox) and the Redis round trip, read when scraped.
  const metrics = new DurabullMetrics().watchHub(client.backend);
  app.addHook('onClose', async () => {
    metrics.unwatchHub(client.backend);
    await client.close();
  });
  // JSON only: the text/plain parser would turn a mislabelled body into a string input.
  app.removeContentTypeParser('text/plain');
  app.setReplySerializer((payload) => JSON.stringify(payload, jsonReplacer));
  app.setErrorHandler((err, req, reply) => {
    const { status, body } = toHttpError(err);
    if (status === 503) {
      req.log.warn({ err }, 'request failed: Redis did not answer');
      reply.header('retry-after', '1');
    } else if (status >= 500) req.log.error({ err }, 'request failed');
    return reply.code(status).type('application/json').send(body);
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: 'NotFound', message: `No route ${req.method} ${req.url.split('?', 1)[0]!.slice(0, 200)}` }),
  );

  if (token) {
    app.addHook('onRequest', async (req, reply) => {
      const auth = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '');
      if (sameToken(auth?.[1]?.trim(), token)) return;
      const browserRoute = isBrowserRoute(req.routeOptions.url);
      const safe = req.method === 'GET' || req.method === 'HEAD';
      if (sameToken(cookieValue(req, COOKIE), token)) {
        // The cookie opens pages and Bull Board; anything else (the API, any state change) also
        // needs the header that only the pages' own scripts send.
        if ((browserRoute && safe) || req.headers[CSRF_HEADER] !== undefined) return;
      }
      if (browserRoute) {
        const url = new URL(req.url, 'http://x');
        if (req.method === 'GET' && sameToken(url.searchParams.get('token') ?? undefined, token)) {
          // Remember the token in a cookie and drop it from the address bar.
          url.searchParams.delete('token');
          const secure = req.protocol === 'https' ? '; Secure' : '';
          return reply
            .header('set-cookie', `${COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure}`)
            .redirect(url.pathname + url.search, 303);
        }
      }
      return reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'Unauthorized', message: 'Missing or wrong token: send Authorization: Bearer <token>.' });
    });
  }

  // While Redis is not ready (down, or not yet connected), every request gets a 503 at once instead
  // of waiting in ioredis' offline queue (where a start or an event would still be sent whenever
  // Redis is back). A request already in flight when Redis stops answering ends with a 503 after
  // the client's command timeout (RedisUnavailableError). The client logs the outage once.
  const connections = [client.backend.redis, client.backend.queueConnection];
  /** The first connection's status that is not `ready`, or `ready`. */
  const redisStatus = () => connections.find((c) => c.status !== 'ready')?.status ?? 'ready';
  // Serve only once the first connection attempt has an outcome (bounded): a server started while
  // Redis is down answers 503 from the start, and one started with Redis up does not refuse its
  // first requests while connecting.
  app.addHook('onReady', async () => {
    await Promise.all(connections.map((c) => firstContact(c, FIRST_CONNECT_WAIT_MS)));
  });
  app.addHook('onRequest', async (req, reply) => {
    const status = redisStatus();
    if (status === 'ready' || !req.routeOptions.url || req.routeOptions.url === '/health') return;
    return reply
      .code(503)
      .header('retry-after', '1')
      .send({ error: 'ServiceUnavailable', message: `Redis is unreachable (connection ${status}); nothing was done. Try again shortly.` });
  });

  const baseUrl = (req: FastifyRequest) => `${req.protocol}://${req.host}`;
  /** The management URLs of an instance, as Durable Functions' createCheckStatusResponse gives them. */
  const managementPayload = (req: FastifyRequest, id: string) => {
    const i = `${baseUrl(req)}/instances/${encodeURIComponent(id)}`;
    return {
      id,
      statusQueryGetUri: i,
      sendEventPostUri: `${i}/raiseEvent/{eventName}`,
      terminatePostUri: `${i}/terminate`,
      suspendPostUri: `${i}/suspend`,
      resumePostUri: `${i}/resume`,
      restartPostUri: `${i}/restart`,
      purgeHistoryDeleteUri: i,
    };
  };
  const accepted = (req: FastifyRequest, reply: FastifyReply, id: string) => {
    const payload = managementPayload(req, id);
    return reply.code(202).header('location', payload.statusQueryGetUri).send(payload);
  };

  // ---- management API ----

  // For health checks: answers without a Redis command; 503 while Redis is not ready.
  app.get('/health', async (_req, reply) => {
    const status = redisStatus();
    if (status === 'ready') return { status: 'ok', redis: status };
    return reply.code(503).header('retry-after', '1').send({ status: 'unavailable', redis: status });
  });

  app.post('/orchestrations/:name', async (req, reply) => {
    const { name } = parse(z.object({ name: NAME }), req.params, 'path');
    const { instanceId, allowUnknownName, startAt } = parse(
      z.object({ instanceId: INSTANCE_ID.optional(), allowUnknownName: BOOL.default(false), startAt: z.string().min(1).optional() }),
      req.query,
      'query',
    );
    if (registered && !registered.includes(name)) {
      throw new HttpError(
        404,
        'OrchestratorNotFound',
        `No orchestrator named '${name}' is registered. Registered orchestrators: ${registered.map((n) => `'${n}'`).join(', ') || '(none)'}`,
        { registered },
      );
    }
    // startAt: an ISO 8601 time with an offset, or epoch ms (the client checks it).
    const when = startAt === undefined ? undefined : /^\d+$/.test(startAt) ? Number(startAt) : startAt;
    const id = await client.startNew(name, { input: req.body, allowUnknownName, ...(instanceId ? { instanceId } : {}), ...(when !== undefined ? { startAt: when } : {}) });
    return accepted(req, reply, id);
  });

  // ---- schedules ----

  app.get('/schedules', async (req) => {
    const q = parse(z.object({ pageSize: z.coerce.number().int().min(1).max(1000).optional(), cursor: SCHEDULE_ID.optional() }), req.query, 'query');
    return client.schedules.list(q);
  });

  app.post('/schedules', async (req, reply) => {
    const { allowUnknownName } = parse(z.object({ allowUnknownName: BOOL.default(false) }), req.query, 'query');
    const body = parse(OBJECT_BODY, req.body, 'body');
    const schedule = await client.schedules.create({ ...(body as Record<string, unknown>), ...(allowUnknownName ? { allowUnknownName } : {}) } as never);
    return reply.code(201).header('location', `${baseUrl(req)}/schedules/${encodeURIComponent(schedule.scheduleId)}`).send(schedule);
  });

  app.get('/schedules/:id', async (req) => {
    const { id } = parse(SCHEDULE_PARAMS, req.params, 'path');
    const schedule = await client.schedules.get(id);
    if (!schedule) throw new ScheduleNotFoundError(id);
    return schedule;
  });

  app.patch('/schedules/:id', async (req) => {
    const { id } = parse(SCHEDULE_PARAMS, req.params, 'path');
    const body = parse(OBJECT_BODY, req.body, 'body');
    return client.schedules.update(id, body as never);
  });

  for (const op of ['pause', 'resume'] as const) {
    app.post(`/schedules/:id/${op}`, async (req, reply) => {
      const { id } = parse(SCHEDULE_PARAMS, req.params, 'path');
      await client.schedules[op](id);
      return reply.code(202).send();
    });
  }

  app.post('/schedules/:id/trigger', async (req) => {
    const { id } = parse(SCHEDULE_PARAMS, req.params, 'path');
    const { overlap } = parse(z.object({ overlap: OVERLAP.optional() }), req.query, 'query');
    return client.schedules.trigger(id, overlap ? { overlap } : {});
  });

  app.delete('/schedules/:id', async (req) => {
    const { id } = parse(SCHEDULE_PARAMS, req.params, 'path');
    await client.schedules.delete(id);
    return { schedulesDeleted: 1 };
  });

  // The live workers of the hub (the worker registry).
  app.get('/workers', async () => ({ workers: await client.listWorkers() }));

  // Prometheus: the hub gauges, read from Redis at each scrape (behind the token like every route).
  app.get('/metrics', async (_req, reply) => reply.type(metrics.registry.contentType).send(await metrics.metrics()));

  // What the overview page draws: per-minute counters and samples of the last `minutes` minutes.
  app.get('/stats', async (req) => {
    const { minutes } = parse(z.object({ minutes: z.coerce.number().int().min(1).max(STATS_RETENTION_MINUTES).default(60) }), req.query, 'query');
    return readHubStats(client.backend, { minutes });
  });

  app.get('/instances', async (req) => {
    const q = parse(LIST_QUERY, req.query, 'query');
    return client.list(q);
  });

  app.delete('/instances', async (req) => {
    const filter = parse(FILTERS, req.query, 'query');
    if (Object.values(filter).every((v) => v === undefined)) {
      throw new HttpError(400, 'BadRequest', 'Purging by filter needs at least one of status, name, scheduleId, createdFrom, createdTo.');
    }
    return { instancesDeleted: await client.purgeInstances(filter) };
  });

  app.get('/instances/:id', async (req, reply) => {
    const { id } = parse(ID_PARAMS, req.params, 'path');
    const q = parse(z.object({ showHistory: BOOL.default(false), showInput: BOOL.default(true) }), req.query, 'query');
    const status = await client.getStatus(id, { showHistory: q.showHistory });
    if (!status) throw new InstanceNotFoundError(id);
    const body: Record<string, unknown> = { ...status };
    if (!q.showInput) delete body.input;
    if (isTerminalStatus(status.runtimeStatus)) return reply.code(200).send(body);
    // Still going: 202 with where to poll, as in the async HTTP API pattern.
    return reply.code(202).header('location', managementPayload(req, id).statusQueryGetUri).header('retry-after', '1').send(body);
  });

  app.post('/instances/:id/raiseEvent/:event', async (req, reply) => {
    const { id, event } = parse(ID_PARAMS.extend({ event: EVENT_NAME }), req.params, 'path');
    await client.raiseEvent(id, event, req.body);
    return reply.code(202).send();
  });

  app.post('/instances/:id/terminate', async (req, reply) => {
    const { id } = parse(ID_PARAMS, req.params, 'path');
    const { recursive } = parse(z.object({ recursive: BOOL.default(false) }), req.query, 'query');
    const body = parse(REASON_BODY, req.body, 'body');
    await client.terminate(id, body?.reason, { recursive });
    return reply.code(202).send();
  });

  for (const op of ['suspend', 'resume'] as const) {
    app.post(`/instances/:id/${op}`, async (req, reply) => {
      const { id } = parse(ID_PARAMS, req.params, 'path');
      const body = parse(REASON_BODY, req.body, 'body');
      await client[op](id, body?.reason);
      return reply.code(202).send();
    });
  }

  app.post('/instances/:id/restart', async (req, reply) => {
    const { id } = parse(ID_PARAMS, req.params, 'path');
    const { newInstanceId } = parse(z.object({ newInstanceId: INSTANCE_ID.optional() }), req.query, 'query');
    const target = await client.restart(id, newInstanceId ? { newInstanceId } : {});
    return accepted(req, reply, target);
  });

  app.delete('/instances/:id', async (req) => {
    const { id } = parse(ID_PARAMS, req.params, 'path');
    await client.purge(id);
    return { instancesDeleted: 1 };
  });

  // ---- entities (Durable Functions' /entities/{name}/{key}) ----

  app.get('/entities', async (req) => {
    const q = parse(z.object({ name: NAME.optional(), pageSize: z.coerce.number().int().min(1).max(1000).default(100), cursor: ENTITY_CURSOR.optional(), withState: BOOL.default(false) }), req.query, 'query');
    return client.listEntities({ pageSize: q.pageSize, withState: q.withState, ...(q.name ? { name: q.name } : {}), ...(q.cursor ? { cursor: q.cursor } : {}) });
  });

  app.get('/entities/:name/:key', async (req, reply) => {
    const { name, key } = parse(ENTITY_PARAMS, req.params, 'path');
    const entity = await client.getEntity({ name, key });
    if (!entity) return reply.code(404).send({ error: 'EntityNotFound', message: `No entity '@${name}@${key}'` });
    return entity;
  });

  app.post('/entities/:name/:key', async (req, reply) => {
    const { name, key } = parse(ENTITY_PARAMS, req.params, 'path');
    const { op } = parse(z.object({ op: OPERATION }), req.query, 'query');
    await client.signalEntity({ name, key }, op, req.body);
    return reply.code(202).send();
  });

  app.delete('/entities/:name/:key', async (req) => {
    const { name, key } = parse(ENTITY_PARAMS, req.params, 'path');
    return { entitiesDeleted: (await client.purgeEntity({ name, key })) ? 1 : 0 };
  });

  // ---- pages ----

  const page = (reply: FastifyReply, status: number, render: (ctx: PageContext) => string) => {
    const nonce = randomBytes(16).toString('base64');
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .header(
        'content-security-policy',
        `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      )
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(render({ nonce }));
  };

  app.get('/', async (req, reply) => {
    const q = parse(
      z.object({
        status: z.union([z.literal('').transform(() => undefined), STATUS]).optional(),
        name: z.union([z.literal('').transform(() => undefined), NAME]).optional(),
        scheduleId: z.union([z.literal('').transform(() => undefined), SCHEDULE_ID]).optional(),
        pageSize: z.coerce.number().int().min(1).max(1000).default(25),
        cursor: CURSOR.optional(),
      }),
      req.query,
      'query',
    );
    const filters = {
      pageSize: q.pageSize,
      ...(q.status ? { status: q.status as RuntimeStatus } : {}),
      ...(q.name ? { name: q.name } : {}),
      ...(q.scheduleId ? { scheduleId: q.scheduleId } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    };
    const result = await client.list(filters);
    return page(reply, 200, (ctx) => listPage(ctx, filters, result.instances, result.nextCursor));
  });

  app.get('/ui/instances/:id', async (req, reply) => {
    const { id } = parse(ID_PARAMS, req.params, 'path');
    const status = await client.getStatus(id, { showHistory: true });
    if (!status) return page(reply, 404, (ctx) => notFoundPage(ctx, id));
    return page(reply, 200, (ctx) => instancePage(ctx, status, Date.now()));
  });

  app.get('/ui/overview', async (_req, reply) => {
    const now = Date.now();
    const [stats, gauges] = await Promise.all([readHubStats(client.backend, { minutes: 60, now }), readHubGauges(client.backend, now)]);
    return page(reply, 200, (ctx) => overviewPage(ctx, client.backend.hub, stats, gauges, now));
  });

  app.get('/ui/schedules', async (req, reply) => {
    const q = parse(z.object({ cursor: SCHEDULE_ID.optional() }), req.query, 'query');
    const found = await client.schedules.list({ pageSize: 100, ...(q.cursor ? { cursor: q.cursor } : {}) });
    return page(reply, 200, (ctx) => schedulesPage(ctx, client.backend.hub, found.schedules, found.nextCursor, q.cursor, Date.now()));
  });

  app.get('/ui/entities', async (req, reply) => {
    const q = parse(z.object({ name: z.union([z.literal('').transform(() => undefined), NAME]).optional(), cursor: ENTITY_CURSOR.optional() }), req.query, 'query');
    const result = await client.listEntities({ pageSize: 50, withState: true, ...(q.name ? { name: q.name } : {}), ...(q.cursor ? { cursor: q.cursor } : {}) });
    return page(reply, 200, (ctx) => entitiesPage(ctx, q.name, result.entities, result.nextCursor));
  });

  app.get('/ui/workers', async (_req, reply) => {
    const workers = await client.listWorkers();
    return page(reply, 200, (ctx) => workersPage(ctx, client.backend.hub, workers, Date.now()));
  });

  // ---- Bull Board ----

  // Read-only: removing, promoting or retrying durabull's jobs by hand can stall or hurry instances.
  const board = new FastifyAdapter();
  board.setBasePath('/queues');
  const bullBoard = createBullBoard({
    queues: [],
    serverAdapter: board,
    options: { uiConfig: { boardTitle: `durabull: ${client.backend.hub}` } },
  });
  // Every partition's two queues, grouped by partition (`p<n>/orchestrator`), once the partition
  // map is read; a hub of one partition shows its two queues as before.
  // Not awaited: a server started while Redis is down serves (503s) until it is back; tried again each second.
  let boardRetry: NodeJS.Timeout | undefined;
  const fillBoard = (): void => {
    client.backend.open().then(
      (parts) => {
        const many = parts.length > 1;
        bullBoard.setQueues(
          parts.flatMap((p) =>
            [p.orchestratorQueue, p.activityQueue].map((q) => new BullMQAdapter(q, { readOnlyMode: true, ...(many ? { prefix: `p${p.partition}/`, delimiter: '/' } : {}) })),
          ),
        );
      },
      () => {
        boardRetry = setTimeout(fillBoard, 1000);
        boardRetry.unref();
      },
    );
  };
  app.addHook('onReady', async () => fillBoard());
  app.addHook('onClose', async () => clearTimeout(boardRetry));
  // Bull Board's own handler would add the stack under NODE_ENV=development; answer like the API does.
  type BoardAnswer = ReturnType<Parameters<FastifyAdapter['setErrorHandler']>[0]>;
  board.setErrorHandler((err) => toHttpError(err) as BoardAnswer);
  void app.register(board.registerPlugin(), { prefix: '/queues' });

  return app;
}
