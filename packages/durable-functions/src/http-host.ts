/**
 * Serving HTTP functions registered with `app.http` from @azure/functions (and `df.app.client.http`).
 *
 * Outside Azure, @azure/functions asks for the host's API with `require('@azure/functions-core')`
 * and, finding none, registers nothing. The Azure Functions Node worker answers that `require` by
 * patching `Module.prototype.require`; this module does the same (only when nothing else answers
 * it), with an API that keeps HTTP functions in the shared registry and refuses every other trigger
 * with NotSupportedError. {@link httpFunctions} then serves them from any Fastify app, such as
 * durabull's server, under `/api/<route>` as the Functions host does.
 */
import { randomUUID } from 'node:crypto';
import Module, { createRequire } from 'node:module';
import type { HttpResponse } from '@azure/functions';
import { AzureHttpRequest, AzureHttpResponse, AzureInvocationContext } from './azure.js';
import { ValidationError } from '@durabull/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { deliverOutputs } from './app.js';
import { ORIGIN } from './client.js';
import { NotSupportedError } from './errors.js';
import { type HttpFunction, logHandler, packageLogger, shared } from './state.js';

interface Binding {
  type: string;
  name?: string;
  direction?: string;
  route?: string;
  methods?: string[];
  authLevel?: string;
  [k: string]: unknown;
}

/** The part of the Functions host's API (`@azure/functions-core`) that @azure/functions calls. */
const coreApi = {
  setProgrammingModel(): void {},
  getProgrammingModel(): undefined {
    return undefined;
  },
  registerFunction(metadata: { name: string; bindings: Record<string, Binding> }, callback: HttpFunction['handler']): { dispose(): void } {
    const { name, bindings } = metadata;
    const trigger = Object.values(bindings).find((b) => b.direction === 'in' && /trigger$/i.test(b.type));
    if (!trigger || trigger.type !== 'httpTrigger') {
      throw new NotSupportedError(
        `${trigger?.type ?? 'unknown'} trigger`,
        `Function '${name}': durabull serves HTTP functions only (app.http); a ${trigger?.type ?? 'function without a trigger'} is not run. ` +
          'Start orchestrations on a timer with client.schedules, or from your own consumer with df.getClient()',
      );
    }
    const inputs = Object.values(bindings).filter((b) => b.direction === 'in' && b !== trigger && b.type !== 'durableClient' && b.type !== 'orchestrationClient');
    if (inputs.length > 0) {
      throw new NotSupportedError(`${inputs[0]!.type} input binding`, `Function '${name}': extraInputs of type ${inputs.map((i) => `'${i.type}'`).join(', ')} are not supported: durabull runs no Azure input bindings`);
    }
    const functions = shared().httpFunctions;
    if (functions.has(name)) throw new ValidationError(`An HTTP function named '${name}' is already registered`);
    functions.set(name, {
      name,
      route: trigger.route ?? name,
      methods: (trigger.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase()),
      authLevel: trigger.authLevel ?? 'anonymous',
      bindings,
      handler: callback,
    });
    return { dispose: () => void functions.delete(name) };
  },
  registerHook(hookName: string): never {
    throw new NotSupportedError(`${hookName} hook`, `app.hook.${hookName}: Azure Functions hooks are not run by durabull`);
  },
  log(level: string, _category: string, message: string): void {
    const logger = packageLogger();
    if (level === 'error' || level === 'critical') logger?.error(message);
    else if (level === 'warning') logger?.warn(message);
    else logger?.debug(message);
  },
};

/** Answers `require('@azure/functions-core')` as the Functions host does, unless something already does. */
function installHostApi(): void {
  const FLAG = Symbol.for('durabull.durable-functions.core-api');
  const g = globalThis as unknown as Record<symbol, boolean>;
  if (g[FLAG]) return;
  g[FLAG] = true;
  try {
    createRequire(import.meta.url)('@azure/functions-core');
    return; // inside the Functions host (or another provider): leave it alone
  } catch {
    // not in a host: provide the API
  }
  const proto = (Module as unknown as { prototype: { require: (id: string) => unknown } }).prototype;
  const original = proto.require;
  proto.require = function (this: unknown, id: string) {
    if (id === '@azure/functions-core') return coreApi;
    // eslint-disable-next-line prefer-rest-params
    return original.apply(this, arguments as unknown as [string]);
  };
}
installHostApi();

/** Azure's route template (`orchestrators/{name}`, `{id?}`, `{id:int}`, `{*rest}`) as a Fastify path. */
export function fastifyPath(prefix: string, route: string): string {
  const path = route
    .replace(/^\/+/, '')
    .split('/')
    .map((seg) =>
      seg.replace(/\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::[^}?]*)?(\?)?\}/g, (_m, star: string | undefined, name: string, optional: string | undefined) =>
        star ? '*' : `:${name}${optional ?? ''}`,
      ),
    )
    .join('/');
  return `${prefix ? `/${prefix.replace(/^\/+|\/+$/g, '')}` : ''}/${path}`;
}

/** Options of {@link httpFunctions}. */
export interface HttpFunctionsOptions {
  /** The route prefix (host.json's `extensions.http.routePrefix`). Default `api`; `''` for none. */
  routePrefix?: string;
}

/**
 * A Fastify plugin that serves the registered HTTP functions at `/<routePrefix>/<route>`:
 * `await app.register(httpFunctions)`. Register it after the modules that call `app.http` were
 * imported. Each request becomes an HttpRequest of @azure/functions, the handler's HttpResponse
 * (or HttpResponseInit) the reply; output bindings set on the context go to their
 * {@link outputBinding} handlers. Registered inside the server's own hooks (durabull's server: its
 * token applies).
 */
export async function httpFunctions(fastify: FastifyInstance, options: HttpFunctionsOptions = {}): Promise<void> {
  const prefix = options.routePrefix ?? 'api';
  // The body as bytes, whatever its type: the function reads it (text(), json(), formData()...).
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  for (const fn of shared().httpFunctions.values()) {
    fastify.route({
      method: fn.methods as never,
      url: fastifyPath(prefix, fn.route),
      handler: (req, reply) => serve(fn, req, reply),
    });
  }
}

async function serve(fn: HttpFunction, req: FastifyRequest, reply: FastifyReply): Promise<void> {
  const origin = `${req.protocol}://${req.host}`;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const body = Buffer.isBuffer(req.body) ? req.body : undefined;
  const params = { ...(req.params as Record<string, string>) };
  // A catch-all segment (`{*path}`) is Fastify's `*`: give it its name back.
  const catchAll = /\{\*([A-Za-z_][A-Za-z0-9_]*)\}/.exec(fn.route)?.[1];
  if (catchAll && params['*'] !== undefined) {
    params[catchAll] = params['*'];
    delete params['*'];
  }
  const request = new AzureHttpRequest({
    method: req.method,
    url: `${origin}${req.url}`,
    headers,
    params,
    ...(body && body.length > 0 ? { body: { bytes: body } } : {}),
  });
  const bindings = Object.values(fn.bindings);
  const trigger = bindings.find((b) => b.type === 'httpTrigger')!;
  const extraOutputs = bindings.filter((b) => b.direction === 'out' && b.name !== undefined && b.type !== 'http');
  const context = new AzureInvocationContext({
    invocationId: randomUUID(),
    functionName: fn.name,
    logHandler: logHandler({ functionName: fn.name }),
    options: {
      trigger: trigger as never,
      extraInputs: bindings.filter((b) => b.direction === 'in' && b !== trigger) as never,
      extraOutputs: extraOutputs as never,
    },
  });
  (context as unknown as Record<symbol, string>)[ORIGIN] = origin;
  let result: unknown;
  try {
    result = await fn.handler(request, context);
    await deliverOutputs(`HTTP function '${fn.name}'`, extraOutputs as never, context, { ...Object.fromEntries(request.query), ...params });
  } catch (err) {
    req.log.error({ err }, `HTTP function '${fn.name}' failed`);
    packageLogger()?.error({ err, functionName: fn.name }, 'HTTP function failed');
    await reply.code(500).type('application/json').send(JSON.stringify({ error: 'FunctionFailed', message: `Function '${fn.name}' failed.` }));
    return;
  }
  const res = isHttpResponse(result) ? result : new AzureHttpResponse((result ?? {}) as never);
  reply.code(res.status);
  res.headers.forEach((value, key) => void reply.header(key, value));
  const bytes = Buffer.from(await res.arrayBuffer());
  await reply.send(bytes);
}

function isHttpResponse(v: unknown): v is HttpResponse {
  return v instanceof AzureHttpResponse || (typeof v === 'object' && v !== null && typeof (v as HttpResponse).arrayBuffer === 'function' && typeof (v as HttpResponse).status === 'number');
}
