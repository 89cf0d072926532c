/**
 * `context.df.callHttp`: a durable HTTP call. The request runs as an activity (`fetch` in a worker,
 * its response recorded in history); with polling on (v3's default) a 202 response with a
 * `Location` header is followed by durable timers and GETs of that location until another status
 * comes back, in a built-in sub-orchestration, as the Durable Functions extension does.
 */
import { type ActivityContext, type OrchestrationContext, type Registry, TaskFailedError, ValidationError, describeValue, type Task as CoreTask } from '@durabull/core';
import { DurableError, NotSupportedError } from './errors.js';
import { DFTask, type Scheduler } from './tasks.js';

/** The built-in activity that sends one request. */
export const HTTP_ACTIVITY = 'DurableFunctions.CallHttp';
/** The built-in orchestrator that sends a request and polls a 202's Location. */
export const HTTP_POLLING_ORCHESTRATOR = 'DurableFunctions.CallHttpPolling';
/** The wait between polls when a 202 has no `Retry-After` (v3's default, 30 s). */
export const DEFAULT_POLL_INTERVAL_MS = 30_000;

/** v3's token source for managed identities: accepted as a type, refused by `callHttp` (durabull has no Azure identity). */
export class ManagedIdentityTokenSource {
  readonly kind = 'AzureManagedIdentity';
  constructor(readonly resource: string) {}
}
export type TokenSource = ManagedIdentityTokenSource;

/** The options of `context.df.callHttp`. */
export interface CallHttpOptions {
  method: string;
  url: string;
  /** A string, or an object sent as JSON. */
  body?: string | object;
  headers?: { [key: string]: string };
  /** Not supported: throws NotSupportedError. */
  tokenSource?: TokenSource;
  /** Follow 202 + Location with durable polling. Default true. */
  enablePolling?: boolean;
  /** @deprecated v3's older name of `enablePolling`. */
  asynchronousPatternEnabled?: boolean;
}

/** A durable HTTP request as history stores it. */
export class DurableHttpRequest {
  constructor(
    readonly method: string,
    readonly uri: string,
    readonly content?: string,
    readonly headers?: { [key: string]: string },
    readonly tokenSource?: TokenSource,
    readonly asynchronousPatternEnabled: boolean = true,
  ) {}
}

/** The response of a durable HTTP call. */
export class DurableHttpResponse {
  constructor(
    public statusCode: number,
    public content?: string,
    public headers?: { [key: string]: string },
  ) {}
  /** The header's value, whatever the case of its name; undefined when it is not set. */
  getHeader(name: string): string | undefined {
    return headerOf(this.headers, name);
  }
}

interface RequestPayload {
  method: string;
  uri: string;
  content?: string;
  headers?: Record<string, string>;
  enablePolling: boolean;
}
interface ResponsePayload {
  statusCode: number;
  content: string;
  headers: Record<string, string>;
}

function headerOf(headers: Record<string, string> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const lower = name.toLowerCase();
  const key = Object.keys(headers).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : headers[key];
}

/** Checks `callHttp`'s options (at the call, as v3 builds its request there) and builds the request. */
export function httpRequestOf(options: unknown): RequestPayload {
  const where = 'context.df.callHttp';
  if (typeof options !== 'object' || options === null) throw new ValidationError(`${where}: options must be an object, got ${describeValue(options)}`);
  const o = options as CallHttpOptions;
  if (typeof o.method !== 'string' || o.method === '') throw new ValidationError(`${where}: options.method must be an HTTP method, got ${describeValue(o.method)}`);
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    throw new ValidationError(`${where}: options.url must be an absolute http(s) URL, got ${describeValue(o.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ValidationError(`${where}: options.url must be an http(s) URL, got ${describeValue(o.url)}`);
  if (o.tokenSource !== undefined) {
    throw new NotSupportedError(
      'callHttp.tokenSource',
      `${where}: options.tokenSource (a managed-identity token) is not supported: durabull has no Azure identity to get one from; send the token in options.headers.Authorization`,
    );
  }
  if (o.headers !== undefined) {
    if (typeof o.headers !== 'object' || o.headers === null) throw new ValidationError(`${where}: options.headers must be an object of strings, got ${describeValue(o.headers)}`);
    for (const [k, v] of Object.entries(o.headers)) {
      if (typeof v !== 'string') throw new ValidationError(`${where}: options.headers['${k}'] must be a string, got ${describeValue(v)}`);
    }
  }
  const method = o.method.toUpperCase();
  const content = o.body === undefined || o.body === null ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  if (content !== undefined && (method === 'GET' || method === 'HEAD')) {
    throw new ValidationError(`${where}: a ${method} request cannot have a body (fetch refuses one); use POST, PUT or PATCH, or drop options.body`);
  }
  const req: RequestPayload = { method, uri: url.href, enablePolling: o.enablePolling ?? o.asynchronousPatternEnabled ?? true };
  if (content !== undefined) req.content = content;
  if (o.headers) req.headers = { ...o.headers };
  return req;
}

/** The task of `context.df.callHttp`. */
export class CallHttpTask extends DFTask {
  constructor(readonly request: RequestPayload) {
    super();
  }
  protected create(s: Scheduler): CoreTask<unknown> {
    return this.request.enablePolling ? s.ctx.callSubOrchestrator(HTTP_POLLING_ORCHESTRATOR, this.request) : s.ctx.callActivity(HTTP_ACTIVITY, this.request);
  }
  protected override value(core: CoreTask<unknown>): unknown {
    const r = core.result as ResponsePayload;
    return new DurableHttpResponse(r.statusCode, r.content, r.headers);
  }
  protected override convert(err: unknown): unknown {
    if (!(err instanceof TaskFailedError)) return err;
    const f = err.failure.inner ?? err.failure;
    return new DurableError(`context.df.callHttp: ${this.request.method} ${this.request.uri} failed: ${f.errorName}: ${f.message}`, { cause: err, failure: err.failure });
  }
}

/** Sends one request and records the response (status, text body, headers). */
async function sendRequest(req: RequestPayload, ctx: ActivityContext): Promise<ResponsePayload> {
  const init: RequestInit = { method: req.method, signal: ctx.signal };
  if (req.headers) init.headers = req.headers;
  if (req.content !== undefined) init.body = req.content;
  const res = await fetch(req.uri, init);
  const headers: Record<string, string> = {};
  res.headers.forEach((v, k) => {
    headers[k] = v;
  });
  return { statusCode: res.status, content: await res.text(), headers };
}

/** Headers that carry credentials: not sent to a Location of another origin. */
const CREDENTIALS = new Set(['authorization', 'cookie', 'proxy-authorization']);

/** Sends the request, then polls while it gets 202 with a Location, waiting Retry-After seconds (or 30 s) on a durable timer. */
function* pollingOrchestrator(ctx: OrchestrationContext, req: RequestPayload): Generator<unknown, ResponsePayload, ResponsePayload> {
  let res: ResponsePayload = yield ctx.callActivity(HTTP_ACTIVITY, req);
  const origin = new URL(req.uri).origin;
  for (;;) {
    const location = res.statusCode === 202 ? headerOf(res.headers, 'location') : undefined;
    if (!location) return res;
    const seconds = Number(headerOf(res.headers, 'retry-after'));
    const delay = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : DEFAULT_POLL_INTERVAL_MS;
    yield ctx.createTimer(new Date(ctx.currentUtcDateTime.getTime() + delay));
    const next = new URL(location, req.uri);
    const headers = Object.fromEntries(Object.entries(req.headers ?? {}).filter(([k]) => next.origin === origin || !CREDENTIALS.has(k.toLowerCase())));
    res = yield ctx.callActivity(HTTP_ACTIVITY, { method: 'GET', uri: next.href, headers, enablePolling: false } satisfies RequestPayload);
  }
}

/** Adds the built-in HTTP activity and polling orchestrator to `registry` (once). */
export function addHttpBuiltins(registry: Registry): void {
  if (!registry.activityNames().includes(HTTP_ACTIVITY)) registry.addActivity(HTTP_ACTIVITY, sendRequest);
  if (!registry.orchestratorNames().includes(HTTP_POLLING_ORCHESTRATOR)) registry.addOrchestrator(HTTP_POLLING_ORCHESTRATOR, pollingOrchestrator);
}
