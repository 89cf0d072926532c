/**
 * The HTTP server on a real Redis, through fastify.inject: every management endpoint, the async
 * polling pattern, the pages, Bull Board, authentication, and the requests it must refuse without
 * writing anything.
 */
import { DEFAULT_PARTITIONS } from '@durabull/redis';
import { request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { OrchestrationStatus } from '@durabull/client';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from '../../../test/src/helpers/hub.js';
import { TEST_PARTITIONS } from '../../../test/src/helpers/partitions.js';
import { scanAll } from '../../../test/src/helpers/redis.js';
import { createServer } from './server.js';
import { activities, orchestrators } from './test-functions.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const HOST = 'dash.test:8080';

/** Polls `read` until `ok` holds; fails with the last value after `timeoutMs`. */
async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) {
      const last = v && typeof v === 'object' && 'statusCode' in v ? `${v.statusCode} ${(v as { body?: string }).body}` : JSON.stringify(v);
      throw new Error(`Timed out waiting for ${what}; last value: ${last}`);
    }
    await sleep(25);
  }
}

/** Path and query of an absolute URL the server handed out. */
const local = (url: string) => {
  const u = new URL(url);
  expect(u.host).toBe(HOST);
  return u.pathname + u.search;
};

describe('management API', () => {
  let th: TestHub;
  let app: FastifyInstance;
  /** A request as a JSON client sends it (the body, when there is one, as JSON). */
  const req = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: { host: HOST, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });
  const status = async (id: string) => (await req('GET', `/instances/${id}`)).json<OrchestrationStatus & { history?: { type: string }[] }>();
  const untilWaiting = (id: string) =>
    until(`${id} waiting for its event`, () => req('GET', `/instances/${id}`), (r) => r.json().customStatus?.waitingFor === 'Approval');

  beforeAll(async () => {
    th = await createTestHub({ orchestrators, activities });
    app = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, registeredOrchestrators: Object.keys(orchestrators) });
  });
  afterAll(async () => {
    await app?.close();
    await th?.cleanup();
  });

  it('starts an instance and follows the async HTTP API pattern: 202 while running, 200 with the output', async () => {
    const start = await req('POST', '/orchestrations/Approval?instanceId=poll-1', 'in');
    expect(start.statusCode).toBe(202);
    const urls = start.json();
    expect(urls).toEqual({
      id: 'poll-1',
      statusQueryGetUri: `http://${HOST}/instances/poll-1`,
      sendEventPostUri: `http://${HOST}/instances/poll-1/raiseEvent/{eventName}`,
      terminatePostUri: `http://${HOST}/instances/poll-1/terminate`,
      suspendPostUri: `http://${HOST}/instances/poll-1/suspend`,
      resumePostUri: `http://${HOST}/instances/poll-1/resume`,
      restartPostUri: `http://${HOST}/instances/poll-1/restart`,
      purgeHistoryDeleteUri: `http://${HOST}/instances/poll-1`,
    });
    expect(start.headers.location).toBe(urls.statusQueryGetUri);

    const running = await req('GET', local(urls.statusQueryGetUri));
    expect(running.statusCode).toBe(202);
    expect(running.headers.location).toBe(urls.statusQueryGetUri);
    expect(running.headers['retry-after']).toBe('1');
    expect(['Pending', 'Running']).toContain(running.json().runtimeStatus);

    await untilWaiting('poll-1');
    const raised = await req('POST', local(urls.sendEventPostUri.replace('{eventName}', 'Approval')), { by: 'ops' });
    expect(raised.statusCode).toBe(202);

    // Poll the status URL as a client of the async HTTP API would, until it answers 200.
    const done = await until('a 200', () => req('GET', local(urls.statusQueryGetUri)), (r) => r.statusCode !== 202);
    expect(done.statusCode).toBe(200);
    expect(done.json()).toMatchObject({ instanceId: 'poll-1', name: 'Approval', runtimeStatus: 'Completed', input: 'in', output: { steps: 'in>F1>F2>F3', approval: { by: 'ops' } } });
  });

  it('returns the history with showHistory and leaves out the input with showInput=false', async () => {
    const id = (await req('POST', '/orchestrations/Quick', { n: 1 })).json().id as string;
    await until('Quick to finish', () => req('GET', `/instances/${id}`), (r) => r.statusCode === 200);
    const plain = await status(id);
    expect(plain.input).toEqual({ n: 1 });
    expect(plain.history).toBeUndefined();
    const full = (await req('GET', `/instances/${id}?showHistory=true&showInput=false`)).json();
    expect(full).not.toHaveProperty('input');
    expect(full.output).toEqual({ echo: { n: 1 }, f1: 'q>F1' });
    expect(full.history.map((e: { type: string }) => e.type)).toEqual(expect.arrayContaining(['ExecutionStarted', 'TaskScheduled', 'TaskCompleted', 'ExecutionCompleted']));
    expect((await req('GET', `/instances/${id}?showHistory=maybe`)).statusCode).toBe(400);
  });

  it('reports a failed instance with 200 and its failure', async () => {
    const id = (await req('POST', '/orchestrations/Failing?instanceId=fail-1')).json().id as string;
    const r = await until('Failing to finish', () => req('GET', `/instances/${id}`), (x) => x.statusCode === 200);
    expect(r.json()).toMatchObject({ runtimeStatus: 'Failed', failure: { errorName: 'TaskFailedError' } });
  });

  it('answers 409 for a running duplicate id and 404 for a missing instance', async () => {
    expect((await req('POST', '/orchestrations/Approval?instanceId=dup-1', 'x')).statusCode).toBe(202);
    const dup = await req('POST', '/orchestrations/Approval?instanceId=dup-1', 'x');
    expect(dup.statusCode).toBe(409);
    expect(dup.json()).toEqual({ error: 'InstanceAlreadyExistsError', message: expect.stringContaining('dup-1') });
    const missing = await req('GET', '/instances/nobody');
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'InstanceNotFoundError', message: "No instance 'nobody' exists in this task hub." });
    await req('POST', '/instances/dup-1/terminate', { reason: 'cleanup' });
  });

  it('raises events: 404 for a missing instance, 409 for a finished one, 400 for a bad event name', async () => {
    expect((await req('POST', '/instances/nobody/raiseEvent/Approval', 1)).statusCode).toBe(404);
    expect((await req('POST', '/instances/poll-1/raiseEvent/Approval', 1)).statusCode).toBe(409);
    const bad = await req('POST', '/instances/poll-1/raiseEvent/bad%20name', 1);
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain('path.event');
  });

  it('terminates (recursive flag, reason as output) and refuses to terminate twice', async () => {
    await req('POST', '/orchestrations/Approval?instanceId=term-1', 'x');
    const t = await req('POST', '/instances/term-1/terminate?recursive=true', { reason: 'no longer needed' });
    expect(t.statusCode).toBe(202);
    const s = await req('GET', '/instances/term-1');
    expect(s.statusCode).toBe(200);
    expect(s.json()).toMatchObject({ runtimeStatus: 'Terminated', output: 'no longer needed' });
    expect((await req('POST', '/instances/term-1/terminate')).statusCode).toBe(409);
    expect((await req('POST', '/instances/term-1/terminate?recursive=perhaps')).statusCode).toBe(400);
  });

  it('suspends and resumes; resuming an instance that is not suspended is a 409', async () => {
    await req('POST', '/orchestrations/Approval?instanceId=sus-1', 'x');
    await untilWaiting('sus-1');
    expect((await req('POST', '/instances/sus-1/suspend', { reason: 'maintenance' })).statusCode).toBe(202);
    expect((await status('sus-1')).runtimeStatus).toBe('Suspended');
    expect((await req('GET', '/instances/sus-1')).statusCode).toBe(202);
    // An event raised while suspended waits in the inbox; resume lets the instance finish.
    expect((await req('POST', '/instances/sus-1/raiseEvent/Approval', 'ok')).statusCode).toBe(202);
    expect((await req('POST', '/instances/sus-1/resume')).statusCode).toBe(202);
    const done = await until('sus-1 to finish', () => status('sus-1'), (s) => s.runtimeStatus === 'Completed');
    expect(done.output).toEqual({ steps: 'x>F1>F2>F3', approval: 'ok' });
    const again = await req('POST', '/instances/sus-1/resume');
    expect(again.statusCode).toBe(409);
    expect(again.json().error).toBe('InvalidInstanceStateError');
  });

  it('restarts a finished instance under its id or a new one', async () => {
    const same = await req('POST', '/instances/term-1/restart');
    expect(same.statusCode).toBe(202);
    expect(same.json().id).toBe('term-1');
    expect(same.headers.location).toBe(`http://${HOST}/instances/term-1`);
    expect((await status('term-1')).runtimeStatus).not.toBe('Terminated');
    // Not finished any more: restarting it under its own id is a 409, under a new id is fine.
    expect((await req('POST', '/instances/term-1/restart')).statusCode).toBe(409);
    const copy = await req('POST', '/instances/term-1/restart?newInstanceId=term-1-copy');
    expect(copy.statusCode).toBe(202);
    expect((await status('term-1-copy')).input).toBe('x');
    expect((await req('POST', '/instances/nobody/restart')).statusCode).toBe(404);
    expect((await req('POST', '/instances/term-1/restart?newInstanceId=a%3Ab')).statusCode).toBe(400);
    for (const id of ['term-1', 'term-1-copy']) await req('POST', `/instances/${id}/terminate`);
  });

  it('purges a finished instance (404 afterwards), refuses a running one (409) and a missing one (404)', async () => {
    await req('POST', '/orchestrations/Approval?instanceId=purge-1', 'x');
    expect((await req('DELETE', '/instances/purge-1')).statusCode).toBe(409);
    await req('POST', '/instances/purge-1/terminate');
    const purged = await req('DELETE', '/instances/purge-1');
    expect(purged.statusCode).toBe(200);
    expect(purged.json()).toEqual({ instancesDeleted: 1 });
    expect((await req('GET', '/instances/purge-1')).statusCode).toBe(404);
    expect((await req('DELETE', '/instances/purge-1')).statusCode).toBe(404);
  });

  it('lists with filters and a cursor, and purges by filter', async () => {
    const from = new Date(Date.now() - 1).toISOString();
    for (let i = 0; i < 3; i++) await req('POST', `/orchestrations/Quick?instanceId=list-${i}`, i);
    await until('the Quick instances to finish', () => req('GET', `/instances?name=Quick&status=Running,Pending`), (r) => r.json().instances.length === 0);
    const page1 = (await req('GET', `/instances?name=Quick&createdFrom=${from}&pageSize=2`)).json();
    expect(page1.instances.map((s: OrchestrationStatus) => s.instanceId)).toEqual(['list-0', 'list-1']);
    expect(page1.nextCursor).toEqual(expect.any(String));
    const page2 = (await req('GET', `/instances?name=Quick&createdFrom=${from}&pageSize=2&cursor=${page1.nextCursor}`)).json();
    expect(page2.instances.map((s: OrchestrationStatus) => s.instanceId)).toEqual(['list-2']);
    expect(page2.nextCursor).toBeUndefined();
    const byStatus = (await req('GET', '/instances?status=Failed')).json();
    expect(byStatus.instances.map((s: OrchestrationStatus) => s.instanceId)).toEqual(['fail-1']);
    const twoStatuses = (await req('GET', '/instances?status=Failed&status=Completed&createdTo=2000-01-01')).json();
    expect(twoStatuses.instances).toEqual([]);

    for (const bad of ['status=Bogus', 'status=', 'status=,', 'pageSize=0', 'pageSize=abc', 'createdFrom=yesterday', 'name=1abc', 'cursor=%7B%7D']) {
      const r = await req('GET', `/instances?${bad}`);
      expect(r.statusCode, bad).toBe(400);
      expect(r.json().error).toBe('BadRequest');
    }

    expect((await req('DELETE', '/instances')).statusCode).toBe(400);
    // An empty filter value is no filter: refused, and nothing is purged.
    const all = async () => ((await req('GET', '/instances?pageSize=1000')).json().instances as OrchestrationStatus[]).map((s) => s.instanceId).sort();
    const before = await all();
    expect(before).toEqual(expect.arrayContaining(['fail-1', 'list-0', 'list-1', 'list-2']));
    for (const empty of ['status=', 'status=,', 'status=%20', 'status=Completed,', 'status=&status=', 'name=', 'createdFrom=', 'createdTo=', 'status=&name=Quick']) {
      const r = await req('DELETE', `/instances?${empty}`);
      expect(r.statusCode, empty).toBe(400);
      expect(r.json(), empty).toEqual({ error: 'BadRequest', message: expect.stringMatching(/^Invalid request: query\.(status|name|createdFrom|createdTo)/) });
    }
    expect((await req('DELETE', '/instances?status=')).json().message).toMatch(/query\.status\.0: an empty status; give one or more of Pending, Running/);
    expect(await all()).toEqual(before);
    const purged = await req('DELETE', `/instances?name=Quick&createdFrom=${from}`);
    expect(purged.json()).toEqual({ instancesDeleted: 3 });
    expect((await req('GET', `/instances?name=Quick&createdFrom=${from}`)).json().instances).toEqual([]);
  });

  it('serves the orchestration list and the instance page, escaping what instances contain', async () => {
    const evil = '<img src=x onerror="alert(1)">';
    await req('POST', '/orchestrations/Approval?instanceId=page-1', evil);
    await untilWaiting('page-1');
    const list = await req('GET', '/?name=Approval');
    expect(list.statusCode).toBe(200);
    expect(list.headers['content-type']).toContain('text/html');
    expect(list.body).toContain('href="/ui/instances/page-1"');
    expect(list.body).toContain('waitingFor');
    const paged = await req('GET', '/?pageSize=1');
    expect(paged.body).toContain('id="next"');

    const page = await req('GET', '/ui/instances/page-1');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'nonce-");
    expect(page.body).not.toContain(evil);
    // Shown as the JSON string it is, escaped: `"<img src=x onerror=\"alert(1)\">"`.
    expect(page.body).toContain('&#34;&#60;img src=x onerror=\\&#34;alert(1)\\&#34;&#62;&#34;');
    for (const f of ['F1', 'F2', 'F3']) {
      expect(page.body).toContain(`Activity function ${f} task scheduled`);
      expect(page.body).toContain(`Activity function ${f} task completed`);
      expect(page.body).toMatch(new RegExp(`<g class="bar" data-task-id="\\d+" data-name="${f}" data-kind="activity" data-outcome="completed">`));
    }
    expect(page.body).toContain('Orchestration function started');
    expect((await req('GET', '/ui/instances/nobody')).statusCode).toBe(404);
    expect((await req('GET', '/ui/instances/a%3Ab')).statusCode).toBe(400);
    await req('POST', '/instances/page-1/terminate');
  });

  it('refuses with 404 and the served names to start an orchestrator no live worker runs, and lists the workers', async () => {
    // Without registeredOrchestrators: the hub's worker registry decides.
    const open = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub });
    try {
      const inject = (method: 'GET' | 'POST', url: string) => open.inject({ method, url, headers: { host: HOST } });
      const refused = await inject('POST', '/orchestrations/NoSuchOrchestrator?instanceId=ns-1');
      expect(refused.statusCode).toBe(404);
      expect(refused.json()).toEqual({
        error: 'OrchestratorNotServedError',
        message: expect.stringContaining(`No live worker of task hub '${th.hub}' runs an orchestrator named 'NoSuchOrchestrator'`),
        served: Object.keys(orchestrators).sort(),
      });
      expect(await th.client.getStatus('ns-1')).toBeUndefined();
      const anyway = await inject('POST', '/orchestrations/NoSuchOrchestrator?instanceId=ns-2&allowUnknownName=true');
      expect(anyway.statusCode).toBe(202);
      expect((await th.client.getStatus('ns-2'))?.name).toBe('NoSuchOrchestrator');
      expect((await inject('POST', '/orchestrations/Quick?allowUnknownName=perhaps')).statusCode).toBe(400);

      const listed = await inject('GET', '/workers');
      expect(listed.statusCode).toBe(200);
      const { workers } = listed.json();
      expect(workers).toHaveLength(1);
      expect(workers[0]).toMatchObject({
        id: th.workers[0]!.id,
        pid: process.pid,
        kinds: ['orchestrator', 'activity'],
        orchestratorNames: Object.keys(orchestrators).sort(),
        activityNames: Object.keys(activities).sort(),
      });
      expect(Number.isNaN(Date.parse(workers[0].lastHeartbeatAt))).toBe(false);
    } finally {
      await open.close();
    }
  });

  it('serves the Workers page, linked from the navigation, escaping what entries contain', async () => {
    const evil = '<img src=x onerror="alert(1)">';
    // An entry written by hand with markup everywhere a worker could put text.
    await th.client.backend.workerRegistry.heartbeat({
      id: 'evil-1',
      host: evil,
      pid: 1,
      version: evil,
      kinds: ['activity'],
      orchestratorNames: [],
      activityNames: [evil],
      startedAt: Date.now(),
      heartbeatIntervalMs: 1000,
      heartbeatExpiryMs: 60_000,
      jobsRunning: 0,
      episodesDone: 0,
      activitiesDone: 0,
    });
    try {
      const page = await req('GET', '/ui/workers');
      expect(page.statusCode).toBe(200);
      expect(page.headers['content-type']).toContain('text/html');
      expect(page.body).toContain(`data-worker-id="${th.workers[0]!.id}"`);
      expect(page.body).toContain('data-worker-id="evil-1"');
      expect(page.body).toContain(Object.keys(orchestrators).sort().join(', '));
      expect(page.body).not.toContain(evil);
      expect(page.body).toContain('&#60;img src=x onerror=&#34;alert(1)&#34;&#62;');
      expect((await req('GET', '/')).body).toContain('<a href="/ui/workers">Workers</a>');
    } finally {
      await th.client.backend.workerRegistry.remove('evil-1');
    }
  });

  it('serves the hub gauges at /metrics, the charts’ data at /stats, and the overview page', async () => {
    await th.workers[0]!.flushStats();
    const metrics = await req('GET', '/metrics');
    expect(metrics.statusCode).toBe(200);
    expect(metrics.headers['content-type']).toContain('text/plain; version=0.0.4');
    const completed = /^durabull_instances\{hub="([^"]+)",status="Completed"\} (\d+)$/m.exec(metrics.body);
    expect(completed?.[1]).toBe(th.hub);
    expect(Number(completed?.[2])).toBeGreaterThan(0);
    for (const line of [
      `durabull_queue_jobs{hub="${th.hub}",queue="activity",state="failed"} 0`,
      `durabull_outbox_entries{hub="${th.hub}"} 0`,
      '# TYPE durabull_redis_roundtrip_seconds histogram',
      '# TYPE durabull_outbox_oldest_age_seconds gauge',
    ]) expect(metrics.body).toContain(line);

    const stats = await req('GET', '/stats?minutes=5');
    expect(stats.statusCode).toBe(200);
    const body = stats.json<{ minutes: number[]; counters: { episodes: number[] }; statuses: { Completed: (number | null)[] } }>();
    expect(body.minutes).toHaveLength(5);
    expect(body.counters.episodes.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    expect(body.statuses.Completed.some((v) => v !== null && v > 0)).toBe(true);
    for (const bad of ['0', '121', 'x']) {
      const r = await req('GET', `/stats?minutes=${bad}`);
      expect(r.statusCode, bad).toBe(400);
      expect(r.json().message).toMatch(/^Invalid request: query\.minutes: /);
    }

    const page = await req('GET', '/ui/overview');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toContain("script-src 'nonce-");
    for (const id of ['chart-throughput', 'chart-latency-activity', 'chart-latency-scheduleToStart', 'chart-latency-episode', 'chart-latency-instance', 'chart-queues', 'chart-statuses']) {
      expect(page.body).toContain(`id="${id}"`);
    }
    expect(page.body).toContain('<a href="/ui/overview">Overview</a>');
    // No inline style attribute (the CSP would refuse it): colours are SVG attributes.
    expect(page.body).not.toMatch(/ style="/);
  });

  it("mounts Bull Board at /queues with the hub's orchestrator and activity queues", async () => {
    const ui = await req('GET', '/queues');
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain('<base href="/queues/"');
    const queues = await req('GET', '/queues/api/queues');
    expect(queues.statusCode).toBe(200);
    const count = TEST_PARTITIONS.partitions ?? DEFAULT_PARTITIONS;
    expect(queues.json().queues.map((q: { name: string }) => q.name).sort()).toEqual(Array.from({ length: count }, (_, p) => (count === 1 ? ['activity', 'orchestrator'] : [`p${p}/activity`, `p${p}/orchestrator`])).flat().sort());
  });
});

describe('refused requests', () => {
  let th: TestHub;
  let app: FastifyInstance;
  beforeAll(async () => {
    th = await createTestHub({}, { startWorker: false });
    app = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, bodyLimitBytes: 1024, registeredOrchestrators: ['Approval', 'Quick'] });
  });
  afterAll(async () => {
    await app?.close();
    await th?.cleanup();
  });

  it('refuses bad names, ids, bodies and content types with JSON errors and writes nothing', async () => {
    const cases: { url: string; payload?: string; type?: string; status: number; error: string; message?: RegExp }[] = [
      { url: '/orchestrations/Nope?instanceId=r-1', payload: '1', status: 404, error: 'OrchestratorNotFound', message: /'Approval', 'Quick'/ },
      { url: '/orchestrations/1bad?instanceId=r-2', payload: '1', status: 400, error: 'BadRequest', message: /path\.name/ },
      { url: '/orchestrations/Approval?instanceId=r-3', payload: '{"a":', status: 400, error: 'BadRequest', message: /Malformed JSON/ },
      { url: '/orchestrations/Approval?instanceId=r-4', payload: JSON.stringify({ big: 'x'.repeat(2000) }), status: 413, error: 'PayloadTooLarge' },
      { url: '/orchestrations/Approval?instanceId=r:5', payload: '1', status: 400, error: 'BadRequest', message: /query\.instanceId/ },
      { url: `/orchestrations/Approval?instanceId=${'r'.repeat(257)}`, payload: '1', status: 400, error: 'BadRequest' },
      { url: '/orchestrations/Approval?instanceId=%7Br%7D', payload: '1', status: 400, error: 'BadRequest' },
      { url: '/orchestrations/Approval?instanceId=r-6&instanceId=r-7', payload: '1', status: 400, error: 'BadRequest' },
      { url: '/orchestrations/Approval?instanceId=r-8', payload: 'hello', type: 'text/plain', status: 415, error: 'UnsupportedMediaType' },
      { url: '/orchestrations/Approval?instanceId=r-9', payload: '{"__proto__":{"x":1}}', status: 400, error: 'BadRequest' },
      { url: '/instances/r%3A1/raiseEvent/Approval', payload: '1', status: 400, error: 'BadRequest', message: /path\.id/ },
      { url: `/instances/${'r'.repeat(300)}/terminate`, status: 400, error: 'BadRequest' },
      // '.' and '..' are path segments: no URL client can address such an instance (paths: the next test).
      { url: '/orchestrations/Approval?instanceId=..', payload: '1', status: 400, error: 'BadRequest', message: /query\.instanceId: '\.' and '\.\.' are not instance ids/ },
      { url: '/orchestrations/Approval?instanceId=.', payload: '1', status: 400, error: 'BadRequest', message: /query\.instanceId/ },
      { url: '/instances/x/restart?newInstanceId=..', status: 400, error: 'BadRequest', message: /query\.newInstanceId/ },
    ];
    for (const c of cases) {
      const r = await app.inject({
        method: 'POST',
        url: c.url,
        ...(c.payload === undefined ? {} : { payload: c.payload, headers: { 'content-type': c.type ?? 'application/json' } }),
      });
      expect(r.statusCode, c.url).toBe(c.status);
      expect(r.headers['content-type'], c.url).toContain('application/json');
      const body = r.json();
      expect(Object.keys(body).filter((k) => k !== 'registered'), c.url).toEqual(['error', 'message']);
      expect(body.error, c.url).toBe(c.error);
      if (c.message) expect(body.message, c.url).toMatch(c.message);
      expect(r.body, c.url).not.toMatch(/\s+at .*\.(ts|js):\d+/); // no stack trace
    }
    expect((await app.inject({ method: 'POST', url: '/orchestrations/Nope', payload: {} })).json().registered).toEqual(['Approval', 'Quick']);
    // Nothing was written: no instance, and no key of the hub but the BullMQ queues' own meta keys.
    expect((await th.client.list()).instances).toEqual([]);
    for (const id of ['r-1', 'r-2', 'r-3', 'r-4', 'r-6', 'r-7', 'r-8', 'r-9']) expect(await th.client.getStatus(id)).toBeUndefined();
    expect((await scanAll(th.redis, th.keys.pattern)).filter((k) => !/:(orchestrator|activity):meta$/.test(k))).toEqual([]);
  });

  it('refuses input nested 2,000 or 100,000 deep with 400 PayloadError naming the depth, and writes nothing', async () => {
    const roomy = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub });
    try {
      const bodies = [`${'{"a":'.repeat(2_000)}1${'}'.repeat(2_000)}`, `${'['.repeat(100_000)}1${']'.repeat(100_000)}`];
      for (const [i, payload] of bodies.entries()) {
        const r = await roomy.inject({ method: 'POST', url: `/orchestrations/Approval?instanceId=deep-${i}`, payload, headers: { 'content-type': 'application/json' } });
        expect(r.statusCode).toBe(400);
        expect(r.json().error).toBe('PayloadError');
        expect(r.json().message).toMatch(/^Orchestration input(\.a|\[0\])+\.\.\.\(\d+ more\)\.\.\.(\.a|\[0\])+ is nested deeper than 500 levels, which cannot be serialized/);
        expect(await th.client.getStatus(`deep-${i}`)).toBeUndefined();
      }
      const raise = await roomy.inject({ method: 'POST', url: '/instances/any/raiseEvent/go', payload: bodies[1], headers: { 'content-type': 'application/json' } });
      expect([raise.statusCode, raise.json().error]).toEqual([400, 'PayloadError']);
      expect((await scanAll(th.redis, th.keys.pattern)).filter((k) => !/:(orchestrator|activity):meta$/.test(k))).toEqual([]);
    } finally {
      await roomy.close();
    }
  });

  it("refuses the ids '.' and '..' in paths, as a client that does not normalize the path sends them", async () => {
    // fastify.inject (like every URL client) resolves '..' before sending: a raw HTTP request keeps it.
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    const raw = (method: string, path: string) =>
      new Promise<{ status: number; body: { error: string; message: string } }>((resolve, reject) => {
        const r = httpRequest({ host: '127.0.0.1', port, method, path, headers: { host: HOST } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        });
        r.on('error', reject);
        r.end();
      });
    for (const [method, path] of [
      ['POST', '/instances/../terminate'],
      ['POST', '/instances/%2E%2E/suspend'],
      ['POST', '/instances/./raiseEvent/Approval'],
      ['GET', '/instances/..'],
      ['DELETE', '/instances/%2e'],
      ['GET', '/ui/instances/..'],
    ] as const) {
      const r = await raw(method, path);
      expect(r.status, path).toBe(400);
      expect(r.body.error, path).toBe('BadRequest');
      expect(r.body.message, path).toMatch(/^Invalid request: path\.id: '\.' and '\.\.' are not instance ids/);
    }
  });

  it('accepts an orchestrator name that is well formed when no registered names are given', async () => {
    const open = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub });
    try {
      const r = await open.inject({ method: 'POST', url: '/orchestrations/Whatever?instanceId=open-1', payload: { a: 1 } });
      expect(r.statusCode).toBe(202);
      expect((await th.client.getStatus('open-1'))?.name).toBe('Whatever');
      expect((await open.inject({ method: 'POST', url: '/orchestrations/-x' })).statusCode).toBe(400);
      await th.client.terminate('open-1');
    } finally {
      await open.close();
    }
  });
});

describe('security', () => {
  const TOKEN = 'dashboard-s3cret-token';
  let th: TestHub;
  let app: FastifyInstance;
  beforeAll(async () => {
    th = await createTestHub({}, { startWorker: false });
    app = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, token: TOKEN, host: '0.0.0.0' });
  });
  afterAll(async () => {
    await app?.close();
    await th?.cleanup();
  });

  it('refuses to start on a non-loopback host without a token', () => {
    for (const host of ['0.0.0.0', '::', '192.168.1.10']) {
      expect(() => createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, host })).toThrow(/without a token/);
    }
    expect(() => createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, host: '0.0.0.0', token: '' })).toThrow(/must not be empty/);
  });

  it('refuses a token shorter than 16 characters beyond loopback, and says how to make one', async () => {
    expect(() => createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, host: '0.0.0.0', token: 'x' })).toThrow(
      'Refusing to serve on 0.0.0.0 with a token of 1 character: beyond loopback the token (DURABULL_TOKEN) must be at least 16 characters; make one with `openssl rand -hex 32`.',
    );
    expect(() => createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, host: '192.168.1.10', token: 'a'.repeat(15) })).toThrow(/with a token of 15 characters: .* at least 16 characters/);
    // 16 characters beyond loopback, and any token on loopback, are accepted.
    for (const [host, t] of [['0.0.0.0', 'a'.repeat(16)], ['127.0.0.1', 'x'], ['localhost', 'short']] as const) {
      const ok = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, host, token: t });
      await ok.close();
    }
  });

  it('requires the Bearer token on every route: API, pages and Bull Board', async () => {
    for (const [method, url] of [
      ['POST', '/orchestrations/Approval?instanceId=sec-1'],
      ['GET', '/instances'],
      ['GET', '/instances/sec-1'],
      ['DELETE', '/instances/sec-1'],
      ['GET', '/'],
      ['GET', '/ui/instances/sec-1'],
      ['GET', '/queues'],
      ['GET', '/queues/api/queues'],
      ['GET', '/metrics'],
      ['GET', '/stats'],
      ['GET', '/ui/overview'],
      ['GET', '/no-such-route'],
    ] as const) {
      for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`, TOKEN]) {
        const r = await app.inject({ method, url, headers: authorization ? { authorization } : {}, payload: method === 'POST' ? {} : undefined });
        expect(r.statusCode, `${method} ${url} ${authorization}`).toBe(401);
        expect(r.json()).toEqual({ error: 'Unauthorized', message: expect.any(String) });
      }
    }
    expect(await th.client.getStatus('sec-1')).toBeUndefined();

    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await app.inject({ method: 'GET', url: '/instances', headers: auth })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/queues/api/queues', headers: auth })).statusCode).toBe(200);
    // Prometheus scrapes with the bearer token (its `authorization` / `bearer_token` setting).
    const scraped = await app.inject({ method: 'GET', url: '/metrics', headers: auth });
    expect(scraped.statusCode).toBe(200);
    expect(scraped.body).toContain(`durabull_instances{hub="${th.hub}",status="Running"}`);
    // No page carries the token: not in a meta tag, not in a script (the cookie authenticates the pages' scripts).
    await th.client.startNew('Anything', { instanceId: 'sec-page' });
    for (const url of ['/', '/ui/instances/sec-page', '/ui/instances/nobody', '/ui/overview', '/queues']) {
      const page = await app.inject({ method: 'GET', url, headers: auth });
      expect(page.statusCode, url).toBeLessThan(500);
      expect(page.headers['content-type'], url).toContain('text/html');
      expect(page.body, url).not.toContain(TOKEN);
      expect(page.body, url).not.toContain('durabull-token');
    }
    await th.client.terminate('sec-page');
  });

  it('lets a browser pass ?token= once on a page, then uses an HttpOnly cookie; the API takes it only with the header the pages send', async () => {
    const wrong = await app.inject({ method: 'GET', url: '/?token=nope' });
    expect(wrong.statusCode).toBe(401);
    const first = await app.inject({ method: 'GET', url: `/?status=Running&token=${TOKEN}` });
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toBe('/?status=Running');
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toMatch(/^durabull_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict$/);
    const jar = { cookie: cookie.split(';')[0]! };
    expect((await app.inject({ method: 'GET', url: '/?status=Running', headers: jar })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/queues/api/queues', headers: jar })).statusCode).toBe(200);
    // The cookie alone does not open the API: a cross-site form or link would send it along (with
    // a SameSite=Strict cookie, a same-site one still could). The pages' scripts add a header that
    // neither can send.
    expect((await app.inject({ method: 'GET', url: '/instances', headers: jar })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: jar })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/ui/overview', headers: jar })).statusCode).toBe(200);
    const start = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/orchestrations/Anything?instanceId=sec-cookie', headers: { ...headers, 'content-type': 'application/json' }, payload: '1' });
    expect((await start(jar)).statusCode).toBe(401);
    expect((await start({ ...jar, 'content-type': 'application/x-www-form-urlencoded' })).statusCode).toBe(401);
    expect(await th.client.getStatus('sec-cookie')).toBeUndefined();
    const fromPage = { ...jar, 'x-durabull-csrf': '1' };
    expect((await app.inject({ method: 'GET', url: '/instances', headers: fromPage })).statusCode).toBe(200);
    expect((await start(fromPage)).statusCode).toBe(202);
    expect((await app.inject({ method: 'POST', url: '/instances/sec-cookie/terminate', headers: fromPage })).statusCode).toBe(202);
    expect((await th.client.getStatus('sec-cookie'))?.runtimeStatus).toBe('Terminated');
    // The header without the cookie, or with a wrong one, is nothing.
    expect((await app.inject({ method: 'GET', url: '/instances', headers: { 'x-durabull-csrf': '1' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/instances', headers: { cookie: 'durabull_token=nope', 'x-durabull-csrf': '1' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: `/instances?token=${TOKEN}` })).statusCode).toBe(401);
  });

  it('marks the cookie Secure when the request came over HTTPS, as a trusted proxy says', async () => {
    const login = (server: FastifyInstance, headers: Record<string, string> = {}) =>
      server.inject({ method: 'GET', url: `/?token=${TOKEN}`, headers }).then((r) => String(r.headers['set-cookie']));
    // Plain HTTP, and a proxy header nobody said to trust: not Secure.
    expect(await login(app)).not.toMatch(/Secure/);
    expect(await login(app, { 'x-forwarded-proto': 'https' })).not.toMatch(/Secure/);
    const proxied = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, token: TOKEN, host: '0.0.0.0', trustProxy: true });
    try {
      expect(await login(proxied, { 'x-forwarded-proto': 'https' })).toMatch(/^durabull_token=[^;]+; Path=\/; HttpOnly; SameSite=Strict; Secure$/);
      expect(await login(proxied, { 'x-forwarded-proto': 'http' })).not.toMatch(/Secure/);
    } finally {
      await proxied.close();
    }
  });
});

describe('schedules and delayed starts', () => {
  let th: TestHub;
  let app: FastifyInstance;
  const req = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown) =>
    app.inject({
      method,
      url,
      headers: { host: HOST, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
    });

  beforeAll(async () => {
    th = await createTestHub({ orchestrators, activities });
    app = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub });
  });
  afterAll(async () => {
    await app?.close();
    await th?.cleanup();
  });

  it('creates, reads, lists, changes, pauses, resumes, triggers and deletes a schedule', async () => {
    const created = await req('POST', '/schedules', { scheduleId: 'nightly', orchestrator: 'Quick', input: 'n', cron: '0 3 * * *', timeZone: 'Europe/Paris', paused: true });
    expect(created.statusCode).toBe(201);
    expect(created.headers.location).toBe(`http://${HOST}/schedules/nightly`);
    expect(created.json()).toMatchObject({ scheduleId: 'nightly', orchestrator: 'Quick', cron: '0 3 * * *', timeZone: 'Europe/Paris', paused: true, overlap: 'skip' });
    expect((await req('POST', '/schedules', { scheduleId: 'nightly', orchestrator: 'Quick', cron: '0 3 * * *' })).statusCode).toBe(409);
    expect((await req('GET', '/schedules/nightly')).json()).toMatchObject({ scheduleId: 'nightly', input: 'n' });
    expect((await req('GET', '/schedules')).json().schedules.map((s: { scheduleId: string }) => s.scheduleId)).toEqual(['nightly']);
    const changed = await req('PATCH', '/schedules/nightly', { overlap: 'bufferOne', input: 'm' });
    expect(changed.statusCode).toBe(200);
    expect(changed.json()).toMatchObject({ overlap: 'bufferOne', input: 'm', revision: 2 });
    expect((await req('POST', '/schedules/nightly/resume')).statusCode).toBe(202);
    expect((await req('GET', '/schedules/nightly')).json().paused).toBe(false);
    expect((await req('POST', '/schedules/nightly/pause')).statusCode).toBe(202);
    const fired = await req('POST', '/schedules/nightly/trigger?overlap=allowAll');
    expect(fired.statusCode).toBe(200);
    expect(fired.json()).toMatchObject({ outcome: 'started', instanceId: expect.stringMatching(/^nightly@/) });
    const listed = await req('GET', '/instances?scheduleId=nightly');
    expect(listed.json().instances.map((s: { instanceId: string }) => s.instanceId)).toEqual([fired.json().instanceId]);
    expect(listed.json().instances[0].schedule.scheduleId).toBe('nightly');
    expect((await req('DELETE', '/schedules/nightly')).json()).toEqual({ schedulesDeleted: 1 });
    expect((await req('GET', '/schedules/nightly')).statusCode).toBe(404);
    expect((await req('POST', '/schedules/nightly/pause')).statusCode).toBe(404);
  });

  it('refuses a bad schedule with 400 naming the field, and writes nothing', async () => {
    const cases: [unknown, RegExp][] = [
      [{ scheduleId: 'bad', orchestrator: 'Quick', cron: '99 * * * *' }, /options\.cron "99 \* \* \* \*" is not a valid cron expression/],
      [{ scheduleId: 'bad', orchestrator: 'Quick', cron: '0 3 * * *', timeZone: 'Nowhere/Land' }, /options\.timeZone "Nowhere\/Land" is not a time zone/],
      [{ scheduleId: 'bad', orchestrator: 'Quick', intervalMs: 10 }, /options\.intervalMs must be an integer number of ms >= 1000/],
      [[1, 2], /^Invalid request: body: /],
    ];
    for (const [body, message] of cases) {
      const r = await req('POST', '/schedules', body);
      expect(r.statusCode, JSON.stringify(body)).toBe(400);
      expect(r.json().message).toMatch(message);
    }
    expect((await req('GET', '/schedules/a:b')).statusCode).toBe(400);
    expect((await req('GET', '/schedules')).json().schedules).toEqual([]);
  });

  it('serves the Schedules page, linked from the navigation, its schedules linked to their instances', async () => {
    await th.client.schedules.create({ scheduleId: 'page-1', orchestrator: 'Quick', intervalMs: 60_000, paused: true });
    const page = await req('GET', '/ui/schedules');
    expect(page.statusCode).toBe(200);
    expect(page.body).toContain('data-schedule-id="page-1"');
    expect(page.body).toContain('every 1.0 min');
    expect(page.body).toContain('<a href="/?scheduleId=page-1">page-1</a>');
    expect((await req('GET', '/')).body).toContain('<a href="/ui/schedules">Schedules</a>');
    await th.client.schedules.delete('page-1');
  });

  it('starts an instance at a later time with ?startAt=', async () => {
    const startAt = new Date(Date.now() + 60_000).toISOString();
    const r = await req('POST', `/orchestrations/Quick?instanceId=later-1&startAt=${encodeURIComponent(startAt)}`, 'x');
    expect(r.statusCode).toBe(202);
    const st = await th.client.getStatus('later-1');
    expect(st).toMatchObject({ runtimeStatus: 'Pending', scheduledStartTime: new Date(startAt) });
    const bad = await req('POST', '/orchestrations/Quick?instanceId=later-2&startAt=soon', 'x');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toMatch(/options\.startAt must be a valid Date/);
    expect(await th.client.getStatus('later-2')).toBeUndefined();
    await th.client.terminate('later-1', 'done');
  });
});
