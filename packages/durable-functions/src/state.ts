/**
 * What every part of the package shares, kept on `globalThis` so that two copies of the package (the
 * `durable-functions` alias and `@durabull/durable-functions` resolved apart) register into one
 * registry: the durabull Registry that `df.app.*` fills, the HTTP functions `app.http` registered,
 * the output-binding handlers, the settings of `df.configure` and the shared client.
 */
import { format } from 'node:util';
import { type ClientOptions, DurabullClient } from '@durabull/client';
import { Registry, ValidationError, describeValue } from '@durabull/core';
import { connectionFromEnv } from '@durabull/redis';
import type { FunctionOutput, InvocationContext, LogHandler } from '@azure/functions';
import { pino, type Logger } from 'pino';

/** Settings of {@link configure}; each has an environment variable as its default. */
export interface DurableFunctionsOptions {
  /** Redis: a URL (`redis-cluster://host:port,...` for a Redis Cluster), ioredis options, `{ clusterNodes }` or an ioredis `Redis` / `Cluster`. Default: `REDIS_CLUSTER_NODES` (a cluster), else `REDIS_URL`, else `redis://127.0.0.1:6379`. */
  connection?: ClientOptions['connection'];
  /** Task hub (`taskHubName`). Default `DURABULL_HUB`, else `default`. */
  hub?: string;
  /**
   * The address of durabull's HTTP API (`npm run dashboard`, apps/server), for the URLs of
   * `createCheckStatusResponse`, `createHttpManagementPayload` and
   * `waitForCompletionOrCreateCheckStatusResponse`. Default `DURABULL_BASE_URL`; without one, the
   * origin of the request given (the HTTP functions and the API served by one server), else
   * `http://127.0.0.1:8080`.
   */
  baseUrl?: string;
  /** Where `context.log` and friends go. Default pino at info on stdout (`name: 'durable-functions'`); `false` for none. */
  logger?: Logger | false;
}

/** What `context.extraOutputs.set(output, value)` values are handed to, by the output's `type`. */
export type OutputBindingHandler = (value: unknown, output: FunctionOutput, context: InvocationContext) => void | Promise<void>;

/** A function registered with `app.http` (from @azure/functions) or `df.app.client.http`. */
export interface HttpFunction {
  name: string;
  /** The route template (Azure's `{param}` syntax), the function name when none was given. */
  route: string;
  methods: string[];
  authLevel: string;
  /** The trigger, extra inputs and outputs as registered (for the InvocationContext's `options`). */
  bindings: Record<string, { type: string; name?: string; direction?: string } & Record<string, unknown>>;
  handler: (request: unknown, context: InvocationContext) => unknown;
}

interface SharedState {
  registry: Registry;
  httpFunctions: Map<string, HttpFunction>;
  outputBindings: Map<string, OutputBindingHandler>;
  options: DurableFunctionsOptions;
  logger: Logger | undefined;
  client: DurabullClient | undefined;
}

const KEY = Symbol.for('durabull.durable-functions.state');

/** The one shared state of this process. */
export function shared(): SharedState {
  const g = globalThis as unknown as Record<symbol, SharedState | undefined>;
  let s = g[KEY];
  if (!s) {
    s = { registry: new Registry(), httpFunctions: new Map(), outputBindings: new Map(), options: {}, logger: undefined, client: undefined };
    g[KEY] = s;
  }
  return s;
}

/**
 * Sets where the package's clients and logs go. Call it before the first `df.getClient()`:
 * afterwards it throws ValidationError (close the shared client with {@link closeClient} first).
 */
export function configure(options: DurableFunctionsOptions): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValidationError(`df.configure: options must be an object, got ${describeValue(options)}`);
  }
  const s = shared();
  if (s.client) throw new ValidationError('df.configure: the shared client already exists (df.getClient() was called); call df.closeClient() first');
  if (options.baseUrl !== undefined) checkBaseUrl(options.baseUrl, 'df.configure', 'options.baseUrl');
  s.options = { ...s.options, ...options };
  s.logger = undefined;
}

/** Closes the shared client of {@link getClient} (a later `df.getClient()` opens a new one). */
export async function closeClient(): Promise<void> {
  const s = shared();
  const c = s.client;
  s.client = undefined;
  await c?.close();
}

export function checkBaseUrl(v: unknown, where: string, arg: string): string {
  let ok = false;
  if (typeof v === 'string') {
    try {
      const u = new URL(v);
      ok = u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      ok = false;
    }
  }
  if (!ok) throw new ValidationError(`${where}: ${arg} must be an http(s) URL, got ${describeValue(v)}`);
  return (v as string).replace(/\/+$/, '');
}

/** The settings in force: `configure`'s, then the environment's. */
export function settings(): { connection: ClientOptions['connection']; hub: string; baseUrl: string | undefined } {
  const o = shared().options;
  const baseUrl = o.baseUrl ?? (process.env.DURABULL_BASE_URL ? checkBaseUrl(process.env.DURABULL_BASE_URL, 'DURABULL_BASE_URL', 'the value') : undefined);
  return {
    connection: o.connection ?? connectionFromEnv(),
    hub: o.hub ?? process.env.DURABULL_HUB ?? 'default',
    baseUrl: baseUrl === undefined ? undefined : baseUrl.replace(/\/+$/, ''),
  };
}

/** The shared DurabullClient, opened on first use. */
export function sharedClient(): DurabullClient {
  const s = shared();
  if (!s.client) {
    const { connection, hub } = settings();
    const logger = packageLogger();
    s.client = new DurabullClient({ connection, hub, logger: logger ?? false });
  }
  return s.client;
}

/** The logger of `context.log` (undefined when turned off). */
export function packageLogger(): Logger | undefined {
  const s = shared();
  if (s.options.logger === false) return undefined;
  s.logger ??= s.options.logger ?? pino({ name: 'durable-functions' });
  return s.logger;
}

/** Azure's log levels in pino's words. */
const LEVELS = { trace: 'trace', debug: 'debug', information: 'info', warning: 'warn', error: 'error', critical: 'fatal', none: undefined } as const;

/** A LogHandler for an InvocationContext: each call is one pino line with `fields` (and the formatted arguments as its message). */
export function logHandler(fields: Record<string, unknown> | (() => Record<string, unknown>)): LogHandler {
  return (level, ...args) => {
    const logger = packageLogger();
    const method = LEVELS[level as keyof typeof LEVELS];
    if (!logger || !method) return;
    logger[method](typeof fields === 'function' ? fields() : fields, format(...args));
  };
}
