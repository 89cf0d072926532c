/**
 * Durable Functions' own samples for Node (azure-functions-durable-js v3.x, samples-ts), run on
 * durabull: the files in ./durable-functions/functions/ import "durable-functions", which this
 * workspace aliases to @durabull/durable-functions (apps/samples/package.json:
 * `"durable-functions": "file:../../packages/durable-functions"`; an application uses
 * `"npm:@durabull/durable-functions@<version>"`). Their code is Microsoft's, changed only where each
 * file's first lines say.
 *
 * This runner plays the Functions host: a durabull worker runs `df.registry`, durabull's server
 * serves the HTTP starters (`app.http` from @azure/functions) next to its management API, and the
 * Azure output bindings the samples use (a blob, Twilio SMS) are handled with `df.outputBinding`.
 *
 *   helloSequence        POST /api/orchestrators/helloSequence, then GET its statusQueryGetUri
 *   backupSiteContent    POST /api/orchestrators/wait/backupSiteContent (fan-out/fan-in, blob outputs)
 *   weatherMonitor       monitor: polls a (local) weather API, texts when the sky is clear
 *   smsPhoneVerification human interaction: texts a code, waits for it or 90 s
 *   counterOrchestration a counter entity
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer } from '@durabull/server';
import { DurabullWorker } from '@durabull/worker';
import * as df from 'durable-functions';
import type { SampleOptions } from './harness.js';
import { sleep } from './harness.js';
import './durable-functions/functions/sayHello.js';
import './durable-functions/functions/backupSiteContent.js';
import './durable-functions/functions/weatherMonitor.js';
import './durable-functions/functions/smsPhoneVerification.js';
import './durable-functions/functions/counter.js';
import './durable-functions/functions/httpStart.js';
import './durable-functions/functions/httpSyncStart.js';

export interface DurableFunctionsSamplesResult {
  hello: { startStatus: number; location: string | null; statusQueryGetUri: string; polls: number; finalStatus: number; output: unknown };
  backup: { status: number; totalBytes: unknown; files: number; blobs: { path: string; bytes: number }[]; copiedIdentical: boolean };
  monitor: { runtimeStatus: string; texts: unknown[]; weatherRequests: string[]; invalid: { runtimeStatus: string; output: unknown } };
  phone: { sentCode: number; authorized: unknown; wrongCodes: unknown; texts: number };
  /** The counter's state before and after three runs (the sample's hub keeps it between `npm run sample` runs). */
  counter: { runs: string[]; before: number; after: number };
}

/** Texts the samples sent through their Twilio output binding. */
interface Sms {
  to: string;
  body: string;
}

export async function run(opts: SampleOptions): Promise<DurableFunctionsSamplesResult> {
  const log = opts.log ?? (() => {});
  df.configure({ connection: opts.redisUrl, hub: opts.hub, logger: false });
  const work = await mkdtemp(join(tmpdir(), 'durabull-df-samples-'));
  const texts: Sms[] = [];
  // The Azure bindings the samples declare, handled here: a blob written to a folder, a text recorded.
  df.outputBinding('blob', async (value, output) => {
    const file = join(work, 'blobs', String((output as { path?: string }).path));
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, value as Buffer);
  });
  df.outputBinding('twilioSms', (value) => void texts.push(value as Sms));

  // A stand-in for OpenWeatherMap: cloudy for Seattle, clear for the rest.
  const weatherRequests: string[] = [];
  const weather = createHttpServer((req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams.get('q') ?? '';
    weatherRequests.push(q);
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ weather: [{ description: q.startsWith('Seattle') ? 'overcast clouds' : 'clear sky' }] }));
  });
  await new Promise<void>((r) => weather.listen(0, '127.0.0.1', r));
  const previousApi = process.env.OpenWeatherMapApiUrl;
  process.env.OpenWeatherMapApiUrl = `http://127.0.0.1:${(weather.address() as AddressInfo).port}`;

  const worker = await new DurabullWorker({ connection: opts.redisUrl, hub: opts.hub, registry: df.registry, logger: false }).start();
  const server = createServer({ connection: opts.redisUrl, hub: opts.hub });
  await server.register(df.httpFunctions);
  await server.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(server.server.address() as AddressInfo).port}`;
  const client = df.getClient();
  const done = (id: string) => client.durabull.waitForCompletion(id, { timeoutMs: 30_000 });
  const post = (path: string, body: unknown) => fetch(`${base}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

  try {
    // Function chaining, started over HTTP: 202 with the management URLs, then poll the status URL.
    log(`POST ${base}/api/orchestrators/helloSequence`);
    const started = await post('/api/orchestrators/helloSequence', null);
    const payload = (await started.json()) as df.HttpManagementPayload;
    let polls = 0;
    let status: Response;
    for (;;) {
      polls++;
      status = await fetch(payload.statusQueryGetUri);
      if (status.status !== 202) break;
      await sleep(50);
    }
    const hello = {
      startStatus: started.status,
      location: started.headers.get('location'),
      statusQueryGetUri: payload.statusQueryGetUri,
      polls,
      finalStatus: status.status,
      output: ((await status.json()) as { output: unknown }).output,
    };
    log(`helloSequence: ${JSON.stringify(hello.output)} after ${polls} status poll(s)`);

    // Fan-out/fan-in over a folder, started with httpSyncStart (waits for the result).
    const site = join(work, 'site');
    await mkdir(join(site, 'images'), { recursive: true });
    const files: Record<string, string> = { 'index.html': '<h1>home</h1>', 'about.html': '<p>about us</p>', 'images/logo.svg': '<svg/>', 'images/photo.bin': 'x'.repeat(5000) };
    for (const [name, content] of Object.entries(files)) await writeFile(join(site, name), content);
    const backupRes = await post('/api/orchestrators/wait/backupSiteContent?timeout=30', site);
    const totalBytes = await backupRes.json();
    const blobs: { path: string; bytes: number }[] = [];
    let copiedIdentical = true;
    for (const name of Object.keys(files)) {
      const copy = await readFile(join(work, 'blobs', 'backups', name)).catch(() => undefined);
      blobs.push({ path: `backups/${name}`, bytes: copy?.length ?? -1 });
      if (!copy || copy.toString() !== files[name]) copiedIdentical = false;
    }
    const backup = { status: backupRes.status, totalBytes, files: Object.keys(files).length, blobs, copiedIdentical };
    log(`backupSiteContent: HTTP ${backup.status}, ${String(totalBytes)} bytes in ${blobs.length} blobs`);

    // Monitor: the weather is checked on a durable timer until it is clear (here: at once), then a text.
    const monitorId = await client.startNew('weatherMonitor', { input: { location: { city: 'Redmond', state: 'WA', country: 'USA' }, phone: '+15550100' } });
    const monitored = await done(monitorId);
    const invalidId = await client.startNew('weatherMonitor', { input: { location: { country: 'FR' }, phone: '+33100000000' } });
    await done(invalidId);
    const invalid = await client.getStatus(invalidId);
    const monitor = {
      runtimeStatus: monitored.runtimeStatus,
      texts: texts.filter((t) => t.to === '+15550100'),
      weatherRequests: [...weatherRequests],
      invalid: { runtimeStatus: invalid.runtimeStatus, output: invalid.output },
    };
    log(`weatherMonitor: ${monitor.runtimeStatus}, texted ${JSON.stringify(monitor.texts.map((t) => t.body))}`);

    // Human interaction: the code texted to the phone comes back as an event; then four wrong answers.
    const phoneId = await client.startNew('smsPhoneVerification', { input: '+15550111' });
    const sms = await until(() => texts.find((t) => t.to === '+15550111'));
    const sentCode = Number(sms.body.split(' ').pop());
    await client.raiseEvent(phoneId, 'SmsChallengeResponse', sentCode);
    const authorized = (await done(phoneId)).output;
    const wrongId = await client.startNew('smsPhoneVerification', { input: '+15550122' });
    const wrongSms = await until(() => texts.find((t) => t.to === '+15550122'));
    for (let i = 0; i < 4; i++) await client.raiseEvent(wrongId, 'SmsChallengeResponse', Number(wrongSms.body.split(' ').pop()) + 1 + i);
    const wrongCodes = (await done(wrongId)).output;
    const phone = { sentCode, authorized, wrongCodes, texts: texts.filter((t) => t.to.startsWith('+155501')).length };
    log(`smsPhoneVerification: the right code -> ${String(authorized)}, four wrong codes -> ${String(wrongCodes)}`);

    // A counter entity, called from an orchestration three times.
    const counterId = new df.EntityId('counterEntity', 'myCounter');
    const before = (await client.readEntityState<number>(counterId)).entityState ?? 0;
    const runs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const id = await client.startNew('counterOrchestration');
      runs.push((await done(id)).runtimeStatus);
    }
    const after = (await client.readEntityState<number>(counterId)).entityState ?? 0;
    log(`counterOrchestration x3: counterEntity@myCounter ${before} -> ${after}`);

    return { hello, backup, monitor, phone, counter: { runs, before, after } };
  } finally {
    await server.close();
    await worker.close();
    await df.closeClient();
    await new Promise<void>((r) => weather.close(() => r()));
    if (previousApi === undefined) delete process.env.OpenWeatherMapApiUrl;
    else process.env.OpenWeatherMapApiUrl = previousApi;
    await rm(work, { recursive: true, force: true });
  }
}

/** Polls `find` until it returns something (at most 30 s). */
async function until<T>(find: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('Timed out waiting for the sample');
    await sleep(20);
  }
}
