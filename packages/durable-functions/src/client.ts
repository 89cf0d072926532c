/**
 * `df.getClient(context)`: v3's DurableClient on a DurabullClient. Its HTTP helpers answer with the
 * URLs of durabull's HTTP API (apps/server): `/instances/{id}`, `/instances/{id}/raiseEvent/{eventName}`,
 * `/instances/{id}/terminate`, ...
 */
import type { HttpRequest, HttpResponse } from '@azure/functions';
import { AzureHttpResponse } from './azure.js';
import { type ClientOptions, DurabullClient, type OrchestrationStatus } from '@durabull/client';
import { InstanceNotFoundError, type RuntimeStatus, ValidationError, WaitTimeoutError, assertOperationName, describeValue } from '@durabull/core';
import { InstanceFinishedError, InvalidInstanceStateError } from '@durabull/redis';
import { EntityStateResponse, toCoreEntityId } from './entity-id.js';
import { NotSupportedError } from './errors.js';
import { checkBaseUrl, settings, sharedClient } from './state.js';

/** An orchestration's runtime status, as v3 names them (durabull never reports `Canceled`). */
export enum OrchestrationRuntimeStatus {
  Running = 'Running',
  Completed = 'Completed',
  ContinuedAsNew = 'ContinuedAsNew',
  Failed = 'Failed',
  Canceled = 'Canceled',
  Terminated = 'Terminated',
  Pending = 'Pending',
  Suspended = 'Suspended',
}

/** v3's status object: `createdTime` and `lastUpdatedTime` are durabull's `createdAt` and `lastUpdatedAt`. */
export class DurableOrchestrationStatus {
  readonly name: string;
  readonly instanceId: string;
  readonly createdTime: Date;
  readonly lastUpdatedTime: Date;
  readonly input: unknown;
  /** The output; for a Failed instance `Orchestrator function '<name>' failed: <message>`, as Durable Functions reports it. */
  readonly output: unknown;
  readonly runtimeStatus: OrchestrationRuntimeStatus;
  readonly customStatus?: unknown;
  /** With `showHistory`: durabull's history events (`ExecutionStarted`, `TaskScheduled`, ...). */
  readonly history?: Array<unknown>;

  /** @internal */
  constructor(s: OrchestrationStatus, options: GetStatusOptions = {}) {
    this.name = s.name;
    this.instanceId = s.instanceId;
    this.createdTime = s.createdAt;
    this.lastUpdatedTime = s.lastUpdatedAt;
    this.input = options.showInput === false ? undefined : s.input;
    this.output = s.runtimeStatus === 'Failed' && s.failure ? `Orchestrator function '${s.name}' failed: ${s.failure.message}` : s.output;
    this.runtimeStatus = s.runtimeStatus as OrchestrationRuntimeStatus;
    this.customStatus = s.customStatus;
    if (s.history) {
      this.history = options.showHistoryOutput
        ? s.history
        : s.history.map((e) => {
            const { input: _i, result: _r, ...rest } = e as unknown as Record<string, unknown>;
            return rest;
          });
    }
  }
}

/** What the purge calls return. */
export class PurgeHistoryResult {
  constructor(readonly instancesDeleted: number) {}
}

/** The management URLs of an instance, on durabull's HTTP API. */
export interface HttpManagementPayload {
  id: string;
  statusQueryGetUri: string;
  /** With `{eventName}` to replace. */
  sendEventPostUri: string;
  /** POST with an optional JSON body `{ "reason": ... }`. */
  terminatePostUri: string;
  /** durabull's restart (`/restart`): the instance runs again from its start (v3's rewind re-runs only what failed). */
  rewindPostUri: string;
  purgeHistoryDeleteUri: string;
  suspendPostUri: string;
  resumePostUri: string;
  restartPostUri: string;
}

export interface StartNewOptions {
  instanceId?: string;
  input?: unknown;
}
export interface GetStatusOptions {
  showHistory?: boolean;
  /** With `showHistory`: keep the inputs and results in the history events (left out otherwise). */
  showHistoryOutput?: boolean;
  /** Default true; false leaves `input` undefined. */
  showInput?: boolean;
}
export interface OrchestrationFilter {
  createdTimeFrom?: Date;
  createdTimeTo?: Date;
  runtimeStatus?: OrchestrationRuntimeStatus[];
}
/** v3's options naming another task hub or connection: only the client's own hub is served here. */
export interface TaskHubOptions {
  taskHubName?: string;
  connectionName?: string;
}
export interface WaitForCompletionOptions {
  /** Default 10 s. */
  timeoutInMilliseconds?: number;
  /** Default 1 s; must not be more than the timeout. durabull is woken by the completion itself and polls only as a safety net. */
  retryIntervalInMilliseconds?: number;
}

/** Options of `new DurableClient(...)` beyond a DurabullClient's. */
export interface DurableClientOptions extends ClientOptions {
  /** durabull's HTTP API, for the management URLs (see `df.configure`). */
  baseUrl?: string;
}

const isFinished = (status: string) => status === 'Completed' || status === 'Failed' || status === 'Terminated';

/** The default address of durabull's HTTP API (`npm run dashboard`). */
const DEFAULT_BASE_URL = 'http://127.0.0.1:8080';

const isDurabullClient = (v: unknown): v is DurabullClient =>
  v instanceof DurabullClient || (typeof v === 'object' && v !== null && typeof (v as DurabullClient).startNew === 'function' && typeof (v as DurabullClient).waitForCompletion === 'function');

/**
 * Starts, queries and manages instances and entities, with v3's methods. Differences from v3 are in
 * docs/durable-functions.md: errors where v3 ignores an operation are swallowed as v3 does (raising
 * an event to, or terminating, a finished instance), `getStatus` of a missing instance throws, and
 * `rewind` is durabull's restart.
 */
export class DurableClient {
  readonly #client: DurabullClient;
  readonly #owned: boolean;
  readonly #baseUrl: string | undefined;
  readonly #origin: string | undefined;

  /**
   * @param client a DurabullClient (shared, not closed by {@link close}), or options to open one
   * @param origin the origin of the HTTP request being served, used for the URLs when no base URL is set
   */
  constructor(client?: DurabullClient | DurableClientOptions, origin?: string) {
    if (isDurabullClient(client)) {
      this.#client = client;
      this.#owned = false;
      this.#baseUrl = settings().baseUrl;
    } else {
      const { baseUrl, ...opts } = client ?? {};
      const s = settings();
      this.#client = new DurabullClient({ connection: s.connection, hub: s.hub, ...opts });
      this.#owned = true;
      this.#baseUrl = baseUrl !== undefined ? checkBaseUrl(baseUrl, 'new DurableClient', 'options.baseUrl') : s.baseUrl;
    }
    this.#origin = origin;
  }

  /** The durabull client underneath, for what v3 does not have (schedules, listEntities, ...). */
  get durabull(): DurabullClient {
    return this.#client;
  }
  /** The task hub. */
  get taskHubName(): string {
    return this.#client.backend.hub;
  }
  /** @hidden v3 lists the origins of its webhooks; durabull's HTTP API is one origin. */
  get uniqueWebhookOrigins(): string[] {
    return [new URL(this.#base(undefined)).origin];
  }

  #hubOptions(where: string, options: TaskHubOptions | undefined): void {
    if (options === undefined) return;
    if (typeof options !== 'object' || options === null) throw new ValidationError(`${where}: options must be an object, got ${describeValue(options)}`);
    if (options.connectionName !== undefined || (options.taskHubName !== undefined && options.taskHubName !== this.taskHubName)) {
      throw new NotSupportedError(
        'taskHubName/connectionName',
        `${where}: options.taskHubName / options.connectionName name another task hub or connection; open a client for it with new DurableClient({ connection, hub })`,
      );
    }
  }

  /** Starts an orchestration; returns its id (a random UUID unless `instanceId` is given). */
  async startNew(orchestratorFunctionName: string, options: StartNewOptions = {}): Promise<string> {
    if (typeof options !== 'object' || options === null) throw new ValidationError(`startNew: options must be an object, got ${describeValue(options)}`);
    const opts: { input?: unknown; instanceId?: string } = {};
    if (options.input !== undefined) opts.input = options.input;
    if (options.instanceId !== undefined) opts.instanceId = options.instanceId;
    return this.#client.startNew(orchestratorFunctionName, opts);
  }

  /** Sends an event; to a finished instance it does nothing, as in v3. A missing instance throws InstanceNotFoundError. */
  async raiseEvent(instanceId: string, eventName: string, eventData: unknown, options?: TaskHubOptions): Promise<void> {
    this.#hubOptions('raiseEvent', options);
    try {
      await this.#client.raiseEvent(instanceId, eventName, eventData);
    } catch (err) {
      if (!(err instanceof InstanceFinishedError)) throw err;
    }
  }

  /** The instance's status; a missing instance throws InstanceNotFoundError (v3 throws on the 404). */
  async getStatus(instanceId: string, options: GetStatusOptions = {}): Promise<DurableOrchestrationStatus> {
    if (typeof options !== 'object' || options === null) throw new ValidationError(`getStatus: options must be an object, got ${describeValue(options)}`);
    const s = await this.#client.getStatus(instanceId, { showHistory: options.showHistory === true });
    if (!s) throw new InstanceNotFoundError(instanceId);
    return new DurableOrchestrationStatus(s, options);
  }

  /** Every instance of the hub (all pages). */
  getStatusAll(): Promise<DurableOrchestrationStatus[]> {
    return this.getStatusBy({});
  }

  /** Every instance that matches the filter (all pages). */
  async getStatusBy(filter: OrchestrationFilter): Promise<DurableOrchestrationStatus[]> {
    const query = this.#query('getStatusBy', filter);
    if (!query) return [];
    const out: DurableOrchestrationStatus[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.#client.list({ ...query, pageSize: 1000, ...(cursor ? { cursor } : {}) });
      for (const s of page.instances) out.push(new DurableOrchestrationStatus(s));
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

  /** The durabull query of a v3 filter; undefined when it can match nothing (only `Canceled`). */
  #query(where: string, filter: OrchestrationFilter): { createdFrom?: Date; createdTo?: Date; status?: RuntimeStatus[] } | undefined {
    if (typeof filter !== 'object' || filter === null) throw new ValidationError(`${where}: filter must be an object, got ${describeValue(filter)}`);
    const q: { createdFrom?: Date; createdTo?: Date; status?: RuntimeStatus[] } = {};
    if (filter.createdTimeFrom !== undefined) q.createdFrom = filter.createdTimeFrom;
    if (filter.createdTimeTo !== undefined) q.createdTo = filter.createdTimeTo;
    if (filter.runtimeStatus !== undefined) {
      if (!Array.isArray(filter.runtimeStatus)) throw new ValidationError(`${where}: filter.runtimeStatus must be an array of statuses, got ${describeValue(filter.runtimeStatus)}`);
      if (filter.runtimeStatus.length > 0) {
        const statuses = filter.runtimeStatus.filter((s) => s !== OrchestrationRuntimeStatus.Canceled) as RuntimeStatus[];
        if (statuses.length === 0) return undefined;
        q.status = statuses;
      }
    }
    return q;
  }

  /** Deletes a finished instance: `{ instancesDeleted: 1 }`, or 0 for a missing or unfinished one. */
  async purgeInstanceHistory(instanceId: string): Promise<PurgeHistoryResult> {
    try {
      await this.#client.purge(instanceId);
      return new PurgeHistoryResult(1);
    } catch (err) {
      if (err instanceof InstanceNotFoundError || err instanceof InvalidInstanceStateError) return new PurgeHistoryResult(0);
      throw err;
    }
  }

  /** Deletes the finished instances that match the filter (at least one field; instances that have not finished stay). */
  async purgeInstanceHistoryBy(filter: OrchestrationFilter): Promise<PurgeHistoryResult> {
    const query = this.#query('purgeInstanceHistoryBy', filter);
    if (!query) return new PurgeHistoryResult(0);
    return new PurgeHistoryResult(await this.#client.purgeInstances(query));
  }

  /** Terminates an instance (at once); a finished one is left as it is, as in v3. */
  async terminate(instanceId: string, reason: string): Promise<void> {
    try {
      await this.#client.terminate(instanceId, reason);
    } catch (err) {
      if (!(err instanceof InstanceFinishedError)) throw err;
    }
  }

  /** Suspends an instance; one that is finished (or already suspended) is left as it is. */
  async suspend(instanceId: string, reason: string): Promise<void> {
    try {
      await this.#client.suspend(instanceId, reason);
    } catch (err) {
      if (!(err instanceof InvalidInstanceStateError || err instanceof InstanceFinishedError)) throw err;
    }
  }

  /** Resumes a suspended instance; any other is left as it is. */
  async resume(instanceId: string, reason: string): Promise<void> {
    try {
      await this.#client.resume(instanceId, reason);
    } catch (err) {
      if (!(err instanceof InvalidInstanceStateError || err instanceof InstanceFinishedError)) throw err;
    }
  }

  /**
   * v3's rewind, as durabull's restart: a Failed instance runs again from its start with its
   * original input, as a new execution under the same id (every activity runs again; v3's rewind
   * replays the history and re-runs only what failed). Anything but a Failed instance throws
   * InvalidInstanceStateError, as v3 refuses it.
   */
  async rewind(instanceId: string, reason: string, options?: TaskHubOptions): Promise<void> {
    this.#hubOptions('rewind', options);
    void reason;
    const s = await this.#client.getStatus(instanceId);
    if (!s) throw new InstanceNotFoundError(instanceId);
    if (s.runtimeStatus !== 'Failed') throw new InvalidInstanceStateError(instanceId, s.runtimeStatus, 'rewind (only Failed instances can be rewound)');
    await this.#client.restart(instanceId);
  }

  /** Sends a one-way operation to an entity. */
  async signalEntity(entityId: { name: string; key: string }, operationName?: string, operationContent?: unknown, options?: TaskHubOptions): Promise<void> {
    this.#hubOptions('signalEntity', options);
    assertOperationName(operationName, 'signalEntity');
    await this.#client.signalEntity(toCoreEntityId(entityId, 'signalEntity'), operationName, operationContent);
  }

  /** The entity's last committed state. */
  async readEntityState<T>(entityId: { name: string; key: string }, options?: TaskHubOptions): Promise<EntityStateResponse<T>> {
    this.#hubOptions('readEntityState', options);
    const r = await this.#client.readEntityState<T>(toCoreEntityId(entityId, 'readEntityState'));
    return r.entityExists ? new EntityStateResponse<T>(true, r.entityState) : new EntityStateResponse<T>(false);
  }

  #base(request: HttpRequest | undefined): string {
    if (this.#baseUrl) return this.#baseUrl;
    const url = (request as { url?: unknown } | undefined)?.url;
    if (typeof url === 'string') {
      try {
        return new URL(url).origin;
      } catch {
        // not a URL: fall through
      }
    }
    return this.#origin ?? DEFAULT_BASE_URL;
  }

  #payload(request: HttpRequest | undefined, instanceId: string): HttpManagementPayload {
    if (typeof instanceId !== 'string' || instanceId === '') throw new ValidationError(`instanceId must be a non-empty string, got ${describeValue(instanceId)}`);
    const i = `${this.#base(request)}/instances/${encodeURIComponent(instanceId)}`;
    return {
      id: instanceId,
      statusQueryGetUri: i,
      sendEventPostUri: `${i}/raiseEvent/{eventName}`,
      terminatePostUri: `${i}/terminate`,
      rewindPostUri: `${i}/restart`,
      purgeHistoryDeleteUri: i,
      suspendPostUri: `${i}/suspend`,
      resumePostUri: `${i}/resume`,
      restartPostUri: `${i}/restart`,
    };
  }

  /** A 202 response with the instance's management URLs (body and `Location`), as v3 gives it. */
  createCheckStatusResponse(request: HttpRequest | undefined, instanceId: string): HttpResponse {
    const payload = this.#payload(request, instanceId);
    return new AzureHttpResponse({
      status: 202,
      jsonBody: payload,
      headers: { 'Content-Type': 'application/json', Location: payload.statusQueryGetUri, 'Retry-After': '10' },
    });
  }

  /** The instance's management URLs. */
  createHttpManagementPayload(instanceId: string): HttpManagementPayload {
    return this.#payload(undefined, instanceId);
  }

  /**
   * Waits up to `timeoutInMilliseconds` for the instance: Completed answers 200 with its output,
   * Terminated 200 and Failed 500 with its status; still running, the 202 of createCheckStatusResponse.
   */
  async waitForCompletionOrCreateCheckStatusResponse(request: HttpRequest, instanceId: string, waitOptions: WaitForCompletionOptions = {}): Promise<HttpResponse> {
    const timeout = waitOptions.timeoutInMilliseconds ?? 10_000;
    const interval = waitOptions.retryIntervalInMilliseconds ?? 1000;
    if (typeof timeout !== 'number' || !(timeout >= 0)) throw new ValidationError(`waitForCompletionOrCreateCheckStatusResponse: waitOptions.timeoutInMilliseconds must be a number >= 0, got ${describeValue(timeout)}`);
    if (typeof interval !== 'number' || !(interval >= 0)) throw new ValidationError(`waitForCompletionOrCreateCheckStatusResponse: waitOptions.retryIntervalInMilliseconds must be a number >= 0, got ${describeValue(interval)}`);
    if (interval > timeout) {
      throw new ValidationError(`waitForCompletionOrCreateCheckStatusResponse: Total timeout ${timeout} (ms) should be bigger than retry timeout ${interval} (ms)`);
    }
    let s: OrchestrationStatus;
    try {
      s = await this.#client.waitForCompletion(instanceId, { timeoutMs: Math.max(1, timeout) });
    } catch (err) {
      if (!(err instanceof WaitTimeoutError)) throw err;
      const now = await this.#client.getStatus(instanceId);
      if (!now) throw new InstanceNotFoundError(instanceId);
      if (!isFinished(now.runtimeStatus)) return this.createCheckStatusResponse(request, instanceId);
      s = now;
    }
    const json = (status: number, body: unknown) => new AzureHttpResponse({ status, jsonBody: body, headers: { 'Content-Type': 'application/json' } });
    if (s.runtimeStatus === 'Completed') return json(200, s.output);
    return json(s.runtimeStatus === 'Failed' ? 500 : 200, new DurableOrchestrationStatus(s));
  }

  /** Closes the connections of a client this object opened (not the shared one of `df.getClient`). */
  async close(): Promise<void> {
    if (this.#owned) await this.#client.close();
  }
}

/**
 * The durable client of a function (v3: `df.getClient(context)`), on the shared DurabullClient of
 * `df.configure` (or `REDIS_URL` / `DURABULL_HUB`). `context` is optional: without an Azure
 * context, `df.getClient()` gives the same client. In an HTTP function the management URLs use the
 * request's origin unless a base URL is configured.
 */
export function getClient(context?: unknown): DurableClient {
  const origin = (context as { [ORIGIN]?: string } | undefined)?.[ORIGIN];
  return new DurableClient(sharedClient(), origin);
}

/** Where the HTTP host puts the request's origin on the InvocationContext it gives a function. */
export const ORIGIN = Symbol.for('durabull.durable-functions.origin');
