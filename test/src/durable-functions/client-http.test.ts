/**
 * v3's DurableClient on durabull, HTTP starters written with `app.http` from @azure/functions served
 * by durabull's server, `context.log` through pino, and the clear errors for what is not supported.
 */
import { Writable } from 'node:stream';
import { app, type HttpRequest, type InvocationContext, output } from '@azure/functions';
import * as df from '@durabull/durable-functions';
import { InstanceNotFoundError } from '@durabull/core';
import { InvalidInstanceStateError } from '@durabull/redis';
import { HubKeys } from '@durabull/redis';
import { createServer } from '@durabull/server';
import { DurabullWorker } from '@durabull/worker';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitUntil } from '../helpers/orchestration.js';
import { deleteKeysByPattern, redisUrl, uniqueHub, connectRedis } from '../helpers/redis.js';

const hub = uniqueHub('dfc');
const logLines: Record<string, unknown>[] = [];
const sink = new Writable({
  write(chunk, _enc, done) {
    for (const line of String(chunk).split('\n')) if (line) logLines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});
df.configure({ connection: redisUrl(), hub, logger: pino({ level: 'trace' }, sink) });

// ---- functions ----

let failNext = true;
df.app.orchestration('Greet', function* (context) {
  context.log('greeting', context.df.getInput());
  const out: string = yield context.df.callActivity('Hello', context.df.getInput());
  if (context.df.getInput() === 'flaky' && failNext) {
    failNext = false;
    throw new Error('failed once');
  }
  return out;
});
df.app.orchestration('WaitForGo', function* (context) {
  return yield context.df.waitForExternalEvent('go');
});
df.app.activity('Hello', {
  handler: (name: string, context: InvocationContext) => {
    context.info(`saying hello to ${name}`);
    return `Hello ${name}`;
  },
});
const smsOutput = output.generic({ type: 'twilioSms', from: '%TwilioPhoneNumber%' });
df.app.activity('SendSms', {
  extraOutputs: [smsOutput],
  handler: (to: string, context: InvocationContext) => {
    context.extraOutputs.set(smsOutput, { to, body: 'hi' });
    return to;
  },
});
const blobOutput = output.storageBlob({ path: 'out/{name}', connection: 'Storage' });
df.app.activity('WriteBlob', {
  extraOutputs: [blobOutput],
  handler: (name: string, context: InvocationContext) => {
    context.extraOutputs.set(blobOutput, `contents of ${name}`);
  },
});
df.app.orchestration('Sms', function* (context) {
  return yield context.df.callActivity('SendSms', context.df.getInput());
});
df.app.orchestration('Blob', function* (context) {
  try {
    yield context.df.callActivity('WriteBlob', 'a.txt');
    return 'written';
  } catch (e) {
    return (e as Error).message;
  }
});
df.app.entity('Counter', (context: df.EntityContext<number>) => {
  if (context.df.operationName === 'add') context.df.setState((context.df.getState(() => 0) ?? 0) + context.df.getInput<number>()!);
});
const sent: unknown[] = [];
df.outputBinding('twilioSms', (value) => void sent.push(value));

// HTTP starters, as the Durable Functions samples write them (app.http from @azure/functions).
app.http('httpStart', {
  route: 'orchestrators/{orchestratorName}',
  extraInputs: [df.input.durableClient()],
  handler: async (request: HttpRequest, context: InvocationContext) => {
    const client = df.getClient(context);
    const body: unknown = await request.json();
    const instanceId = await client.startNew(request.params.orchestratorName!, { input: body });
    context.log(`Started orchestration with ID = '${instanceId}'.`);
    return client.createCheckStatusResponse(request, instanceId);
  },
});
app.http('httpSyncStart', {
  methods: ['POST'],
  route: 'orchestrators/wait/{orchestratorName}',
  authLevel: 'anonymous',
  extraInputs: [df.input.durableClient()],
  handler: async (request: HttpRequest, context: InvocationContext) => {
    const client = df.getClient(context);
    const instanceId = await client.startNew(request.params.orchestratorName!, { input: await request.json() });
    const timeoutInMilliseconds = Number(request.query.get('timeout') ?? 30) * 1000;
    return client.waitForCompletionOrCreateCheckStatusResponse(request, instanceId, { timeoutInMilliseconds, retryIntervalInMilliseconds: Math.min(1000, timeoutInMilliseconds) });
  },
});
// Route templates: a constrained parameter and a catch-all; the query; a text body.
app.http('files', {
  route: 'files/{id:int}/{*path}',
  methods: ['PUT'],
  handler: async (request: HttpRequest) => ({ jsonBody: { params: request.params, q: request.query.get('q'), body: await request.text(), method: request.method } }),
});
// v3's own way: df.app.client.http hands the handler the client.
df.app.client.http('clientHttp', {
  route: 'hello/{name?}',
  methods: ['GET'],
  handler: async (request, client) => {
    const instanceId = await client.startNew('Greet', { input: request.params.name ?? 'nobody' });
    return { status: 200, jsonBody: client.createHttpManagementPayload(instanceId) };
  },
});

const redis = connectRedis();
let worker: DurabullWorker;
let server: FastifyInstance;
let base: string;
const client = df.getClient();

beforeAll(async () => {
  worker = await new DurabullWorker({ connection: redisUrl(), hub, registry: df.registry, logger: false }).start();
  server = createServer({ connection: redisUrl(), hub });
  await server.register(df.httpFunctions);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const address = server.server.address() as { port: number };
  base = `http://127.0.0.1:${address.port}`;
});
afterAll(async () => {
  await server.close();
  await worker.close();
  await df.closeClient();
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
  await redis.quit();
});

const done = (id: string) => client.durabull.waitForCompletion(id, { timeoutMs: 15_000 });

describe('HTTP starters written with app.http, served by durabull’s server', () => {
  it('starts an orchestration and answers 202 with the management URLs of durabull’s HTTP API', async () => {
    const res = await fetch(`${base}/api/orchestrators/Greet`, { method: 'POST', body: JSON.stringify('Tokyo'), headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(202);
    const payload = (await res.json()) as df.HttpManagementPayload;
    expect(res.headers.get('location')).toBe(payload.statusQueryGetUri);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(payload.statusQueryGetUri).toBe(`${base}/instances/${payload.id}`);
    expect(payload.sendEventPostUri).toBe(`${base}/instances/${payload.id}/raiseEvent/{eventName}`);
    await done(payload.id);
    // The URL answers: the durabull server's status route.
    const status = await fetch(payload.statusQueryGetUri);
    expect(status.status).toBe(200);
    expect(((await status.json()) as { output: unknown }).output).toBe('Hello Tokyo');
  });

  it('waitForCompletionOrCreateCheckStatusResponse: 200 with the output, or the 202 when it does not finish in time', async () => {
    const res = await fetch(`${base}/api/orchestrators/wait/Greet`, { method: 'POST', body: '"Oslo"', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toBe('Hello Oslo');
    const waiting = await fetch(`${base}/api/orchestrators/wait/WaitForGo?timeout=0`, { method: 'POST', body: 'null', headers: { 'content-type': 'application/json' } });
    expect(waiting.status).toBe(202);
    const payload = (await waiting.json()) as df.HttpManagementPayload;
    await fetch(payload.sendEventPostUri.replace('{eventName}', 'go'), { method: 'POST', body: '"went"', headers: { 'content-type': 'application/json' } });
    expect((await done(payload.id)).output).toBe('went');
  });

  it('df.app.client.http hands the handler a client; an optional route parameter; GET only', async () => {
    const res = await fetch(`${base}/api/hello/Lima`);
    expect(res.status).toBe(200);
    const payload = (await res.json()) as df.HttpManagementPayload;
    expect((await done(payload.id)).output).toBe('Hello Lima');
    expect((await fetch(`${base}/api/hello/Lima`, { method: 'POST' })).status).toBe(404);
  });

  it("passes route parameters (Azure's templates), the query and the body to the handler", async () => {
    const res = await fetch(`${base}/api/files/42/a/b.txt?q=x`, { method: 'PUT', body: 'plain text', headers: { 'content-type': 'text/plain' } });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ params: { id: '42', path: 'a/b.txt' }, q: 'x', body: 'plain text', method: 'PUT' });
  });

  it('refuses triggers other than HTTP, hooks, and input bindings with NotSupportedError, at registration', () => {
    expect(() => app.timer('nightly', { schedule: '0 0 3 * * *', handler: () => {} })).toThrow(df.NotSupportedError);
    expect(() => app.timer('nightly', { schedule: '0 0 3 * * *', handler: () => {} })).toThrow(/durabull serves HTTP functions only .*client\.schedules/);
    expect(() => app.storageQueue('q', { queueName: 'q', connection: 'c', handler: () => {} })).toThrow(/queueTrigger/);
    expect(() => df.app.client.timer('t')).toThrow(df.NotSupportedError);
    expect(() => app.hook.appStart(() => {})).toThrow(df.NotSupportedError);
    const blobInput = { type: 'blob', name: 'in', path: 'x' };
    expect(() => df.app.activity('ReadsBlob', { extraInputs: [blobInput], handler: () => 1 })).toThrow(/extraInputs of type 'blob' are not supported/);
    expect(df.registry.activityNames()).not.toContain('ReadsBlob');
  });
});

describe('output bindings', () => {
  it("hands a value the activity set to the handler of its type; one without a handler fails the activity", async () => {
    const sms = await client.startNew('Sms', { input: '+15550100' });
    expect((await done(sms)).output).toBe('+15550100');
    expect(sent).toEqual([{ to: '+15550100', body: 'hi' }]);
    const blob = await client.startNew('Blob');
    expect((await done(blob)).output).toMatch(/^Activity function 'WriteBlob' failed: Activity 'WriteBlob' set its 'blob' output binding '.*', which durabull does not run: handle it with df\.outputBinding\('blob'/);
  });
});

describe('DurableClient', () => {
  it('getStatus: v3’s status object, its options, and a missing instance', async () => {
    const id = await client.startNew('Greet', { input: 'Rome' });
    await done(id);
    const s = await client.getStatus(id);
    expect(s).toBeInstanceOf(df.DurableOrchestrationStatus);
    expect(s).toMatchObject({ name: 'Greet', instanceId: id, input: 'Rome', output: 'Hello Rome', runtimeStatus: df.OrchestrationRuntimeStatus.Completed });
    expect(s.createdTime).toBeInstanceOf(Date);
    expect(s.lastUpdatedTime.getTime()).toBeGreaterThanOrEqual(s.createdTime.getTime());
    expect(s.history).toBeUndefined();
    expect((await client.getStatus(id, { showInput: false })).input).toBeUndefined();
    const withHistory = await client.getStatus(id, { showHistory: true });
    const scheduled = withHistory.history!.find((e) => (e as { type: string }).type === 'TaskScheduled') as Record<string, unknown>;
    expect(scheduled).toMatchObject({ name: 'Hello' });
    expect('input' in scheduled).toBe(false);
    const withOutput = await client.getStatus(id, { showHistory: true, showHistoryOutput: true });
    expect(withOutput.history!.find((e) => (e as { type: string }).type === 'TaskScheduled')).toMatchObject({ name: 'Hello', input: 'Rome' });
    await expect(client.getStatus(`${id}-missing`)).rejects.toThrow(InstanceNotFoundError);
  });

  it('getStatusAll and getStatusBy (runtime status and creation time)', async () => {
    const from = new Date();
    const waiting = await client.startNew('WaitForGo');
    await waitUntil('Running', async () => (await client.getStatus(waiting)).runtimeStatus === 'Running');
    const all = await client.getStatusAll();
    expect(all.map((s) => s.instanceId)).toContain(waiting);
    const running = await client.getStatusBy({ runtimeStatus: [df.OrchestrationRuntimeStatus.Running] });
    expect(running.map((s) => s.instanceId)).toEqual([waiting]);
    expect(await client.getStatusBy({ runtimeStatus: [df.OrchestrationRuntimeStatus.Canceled] })).toEqual([]);
    expect((await client.getStatusBy({ createdTimeFrom: from })).map((s) => s.instanceId)).toEqual([waiting]);
    await client.raiseEvent(waiting, 'go', 1);
    await done(waiting);
  });

  it('raiseEvent and terminate do nothing to a finished instance (v3), and throw for a missing one', async () => {
    const id = await client.startNew('Greet', { input: 'x' });
    await done(id);
    await client.raiseEvent(id, 'go', 1);
    await client.terminate(id, 'late');
    expect((await client.getStatus(id)).runtimeStatus).toBe('Completed');
    await expect(client.terminate('no-such-instance', 'x')).rejects.toThrow(InstanceNotFoundError);
  });

  it('suspend, resume, terminate', async () => {
    const id = await client.startNew('WaitForGo');
    await waitUntil('Running', async () => (await client.getStatus(id)).runtimeStatus === 'Running');
    await client.suspend(id, 'pause');
    expect((await client.getStatus(id)).runtimeStatus).toBe(df.OrchestrationRuntimeStatus.Suspended);
    await client.suspend(id, 'again'); // already suspended: nothing happens
    await client.resume(id, 'go on');
    expect((await client.getStatus(id)).runtimeStatus).toBe('Running');
    await client.terminate(id, 'stop');
    const s = await client.getStatus(id);
    expect(s.runtimeStatus).toBe(df.OrchestrationRuntimeStatus.Terminated);
    expect(s.output).toBe('stop');
  });

  it('rewind runs a Failed instance again (durabull’s restart); anything else is refused', async () => {
    const id = await client.startNew('Greet', { input: 'flaky' });
    const failed = await done(id);
    expect(failed.runtimeStatus).toBe('Failed');
    expect((await client.getStatus(id)).output).toBe("Orchestrator function 'Greet' failed: failed once");
    await client.rewind(id, 'try again');
    await waitUntil('it ran again', async () => (await client.getStatus(id)).runtimeStatus === 'Completed');
    expect((await client.getStatus(id)).output).toBe('Hello flaky');
    await expect(client.rewind(id, 'not failed')).rejects.toThrow(InvalidInstanceStateError);
  });

  it('purgeInstanceHistory and purgeInstanceHistoryBy return { instancesDeleted }', async () => {
    const id = await client.startNew('Greet', { input: 'p' });
    await done(id);
    expect(await client.purgeInstanceHistory(id)).toEqual(new df.PurgeHistoryResult(1));
    expect(await client.purgeInstanceHistory(id)).toEqual(new df.PurgeHistoryResult(0));
    const running = await client.startNew('WaitForGo');
    expect((await client.purgeInstanceHistory(running)).instancesDeleted).toBe(0);
    const from = new Date(Date.now() - 1);
    const ids = [await client.startNew('Greet', { input: 'a' }), await client.startNew('Greet', { input: 'b' })];
    for (const i of ids) await done(i);
    expect(await client.purgeInstanceHistoryBy({ createdTimeFrom: from, runtimeStatus: [df.OrchestrationRuntimeStatus.Completed] })).toEqual(new df.PurgeHistoryResult(2));
    await client.terminate(running, 'done');
  });

  it('signalEntity and readEntityState (entity names are case-insensitive)', async () => {
    const id = new df.EntityId('Counter', `c-${hub}`);
    expect(id.toString()).toBe(`@counter@c-${hub}`);
    await client.signalEntity(id, 'add', 2);
    await client.signalEntity(new df.EntityId('COUNTER', `c-${hub}`), 'add', 3);
    await waitUntil('both signals ran', async () => (await client.readEntityState<number>(id)).entityState === 5);
    expect(await client.readEntityState(new df.EntityId('Counter', 'never'))).toEqual(new df.EntityStateResponse(false));
  });

  it('createHttpManagementPayload with a configured base URL; another task hub is refused', async () => {
    const own = new df.DurableClient({ connection: redisUrl(), hub, baseUrl: 'https://durabull.example/' });
    try {
      expect(own.createHttpManagementPayload('abc')).toEqual({
        id: 'abc',
        statusQueryGetUri: 'https://durabull.example/instances/abc',
        sendEventPostUri: 'https://durabull.example/instances/abc/raiseEvent/{eventName}',
        terminatePostUri: 'https://durabull.example/instances/abc/terminate',
        rewindPostUri: 'https://durabull.example/instances/abc/restart',
        purgeHistoryDeleteUri: 'https://durabull.example/instances/abc',
        suspendPostUri: 'https://durabull.example/instances/abc/suspend',
        resumePostUri: 'https://durabull.example/instances/abc/resume',
        restartPostUri: 'https://durabull.example/instances/abc/restart',
      });
      expect(own.taskHubName).toBe(hub);
      await expect(own.raiseEvent('abc', 'e', 1, { taskHubName: 'other' })).rejects.toThrow(df.NotSupportedError);
    } finally {
      await own.close();
    }
    expect(() => new df.DurableClient({ baseUrl: 'ftp://x' })).toThrow(/options.baseUrl must be an http\(s\) URL/);
    expect(() => df.configure({ hub: 'late' })).toThrow(/call df.closeClient\(\) first/);
  });
});

describe('context.log and friends', () => {
  it('go to pino, with the function, the instance and whether the code is replaying', async () => {
    const id = await client.startNew('Greet', { input: 'logs' });
    await done(id);
    const greeting = logLines.filter((l) => l.msg === 'greeting logs' && l.instanceId === id);
    expect(greeting.length).toBeGreaterThanOrEqual(1);
    expect(greeting[0]).toMatchObject({ level: 30, functionName: 'Greet', isReplaying: false });
    expect(logLines.find((l) => l.msg === 'saying hello to logs')).toMatchObject({ level: 30, functionName: 'Hello', instanceId: id });
  });
});
