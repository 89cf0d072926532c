/**
 * The `durabull` CLI on a real Redis, each test in a task hub of its own (deleted afterwards, and
 * only that hub's keys). Commands run in-process through runCli with collected stdout/stderr;
 * `worker` and `dev` run as child processes, as users run them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DurabullClient } from '@durabull/client';
import { HubKeys, type RedisClient, isClusterUrl } from '@durabull/redis';
import { createServer } from '@durabull/server';
import { DurabullWorker } from '@durabull/worker';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { registry } from './__tests__/functions.js';
import { type DashboardModule, runCli } from './cli.js';
import { waitUntil as until } from '../../../test/src/helpers/orchestration.js';
import { deleteKeysByPattern, connectRedis, scanAll } from '../../../test/src/helpers/redis.js';

// `dashboard` imports @durabull/server without its types: this keeps the two in step.
const serverModule: DashboardModule = { createServer };

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the Redis that test/global-setup.ts picked for the whole run. */
    redisUrl: string;
  }
}

const BIN = fileURLToPath(new URL('../bin/durabull.js', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.ts', import.meta.url));
const FUNCTIONS = fileURLToPath(new URL('./__tests__/functions.ts', import.meta.url));
const DEFINITIONS = fileURLToPath(new URL('./__tests__/definitions.ts', import.meta.url));
/** tsx's loader, by absolute URL: the child processes run in a temporary directory. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

let url: string;
let redis: RedisClient;
let hub: string;
let client: DurabullClient;
let worker: DurabullWorker | undefined;
let tmp: string;

beforeAll(async () => {
  url = inject('redisUrl') || process.env.REDIS_URL!;
  redis = connectRedis(url);
  tmp = await mkdtemp(join(tmpdir(), 'durabull-cli-'));
});

afterAll(async () => {
  await redis.quit();
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  hub = `cli-${randomBytes(4).toString('hex')}`;
  client = new DurabullClient({ connection: url, hub });
});

afterEach(async () => {
  await worker?.close();
  worker = undefined;
  await client.close();
  // Only this hub's keys, with SCAN + UNLINK: the Redis may be shared.
  await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
});

async function startWorker(): Promise<void> {
  worker = await new DurabullWorker({ connection: url, hub, registry, logger: false }).start();
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

interface CliOptions {
  tty?: boolean;
  cwd?: string;
  /** Pass --redis and --hub of this test (default true). */
  globals?: boolean;
  env?: NodeJS.ProcessEnv;
}

/** A command line running in-process: its output so far, and an abort that stops `dashboard`, `worker` or `dev`. */
function cliLive(args: string[], opts: CliOptions = {}): { done: Promise<CliResult>; stdout: () => string; stderr: () => string; abort: () => void } {
  let stdout = '';
  let stderr = '';
  const stop = new AbortController();
  const globals = opts.globals === false ? [] : ['--redis', url, '--hub', hub];
  const done = runCli([...globals, ...args], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s), isTTY: opts.tty === true, columns: 200 },
    env: opts.env ?? {},
    cwd: opts.cwd ?? tmp,
    signal: stop.signal,
  }).then((code) => ({ code, stdout, stderr }));
  return { done, stdout: () => stdout, stderr: () => stderr, abort: () => stop.abort() };
}

/** Runs one command line in-process against this test's Redis and hub. */
function cli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  return cliLive(args, opts).done;
}

/**
 * Every key of the hub with its DUMP, to check that a rejected command wrote nothing. The worker
 * registry's keys by name only: a running worker's heartbeat rewrites them on its own.
 */
async function snapshot(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const k of await scanAll(redis, new HubKeys(hub).pattern)) {
    if (/^dbl:\{[^}]*\}:stats:/.test(k)) continue; // the charts' counters, written by a worker on its own
    // The worker registry, in every partition: rewritten by every heartbeat.
    out.set(k, /^dbl:\{[^}]*\}:workers/.test(k) ? 'registry' : ((await redis.dumpBuffer(k))?.toString('hex') ?? ''));
  }
  return out;
}

const statusOf = async (id: string) => (await client.getStatus(id))?.runtimeStatus;
const OFFSET = /^ *\+\d+(ms|\.\d{3}s) /;

describe('start', () => {
  it('start --wait runs an orchestration to the end on a worker and prints its status', async () => {
    await startWorker();
    const r = await cli(['start', 'Hello', '--input', '"Ada"', '--id', 'h1', '--wait']);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("Started Hello as instance 'h1'; waiting for it to finish.");
    // Not a terminal: plain progress lines, no spinner.
    expect(r.stderr).not.toContain('\r');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^Instance +h1$/));
    expect(lines).toContainEqual(expect.stringMatching(/^Status +Completed$/));
    expect(lines).toContainEqual(expect.stringMatching(/^Output +"HELLO ADA!"$/));
    expect(lines).toContainEqual(expect.stringMatching(/^Custom status +"greeting"$/));
    expect((await client.getStatus('h1'))?.output).toBe('HELLO ADA!');
  });

  it('start --wait on a terminal shows a spinner line, rewritten in place, and clears it', async () => {
    const id = 'tty-1';
    const waiting = cliLive(['start', 'Approve', '--id', id, '--wait'], { tty: true });
    await startWorker();
    await until('the spinner shows the instance running', async () => waiting.stderr().includes(`${id}: Running`));
    await client.raiseEvent(id, 'Approval', 'yes');
    const r = await waiting.done;
    expect(r.code).toBe(0);
    // The first frame is drawn at once; later ones show the status as the poll sees it.
    expect(r.stderr).toMatch(/^Started Approve as instance 'tty-1'; waiting for it to finish\.\n\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] tty-1: /);
    expect(r.stderr).toMatch(/\r\x1b\[2K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] tty-1: Running, 1 episode \((\d+ms|\d+\.\d{3}s)\)/);
    expect(r.stderr.endsWith('\r\x1b[2K')).toBe(true);
    expect(r.stdout).toMatch(/^Output +\{"approved":"yes"\}$/m);
  });

  it('start --json --wait prints the final status as JSON and nothing else', async () => {
    await startWorker();
    const r = await cli(['--json', 'start', 'Hello', '--input', '"Bo"', '--id', 'j1', '--wait']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const status = JSON.parse(r.stdout);
    expect(status).toMatchObject({ instanceId: 'j1', name: 'Hello', runtimeStatus: 'Completed', output: 'HELLO BO!', input: 'Bo', episodes: 3 });
    expect(new Date(status.createdAt).getTime()).toBeGreaterThan(0);
  });

  it('start without --wait prints the id (a random UUID by default), or JSON', async () => {
    const r = await cli(['start', 'Hello', '--input', '"x"']);
    expect(r.code).toBe(0);
    const id = /^Started Hello as instance '([0-9a-f-]{36})'\.$/.exec(r.stdout.trim())?.[1];
    expect(id).toBeDefined();
    expect(await statusOf(id!)).toBe('Pending');

    const j = await cli(['--json', 'start', 'Hello', '--id', 'given']);
    expect(JSON.parse(j.stdout)).toEqual({ instanceId: 'given', name: 'Hello' });
    expect((await client.getStatus('given'))?.input).toBeUndefined();
  });

  it('start --input @file reads the JSON from a file relative to the working directory', async () => {
    await writeFile(join(tmp, 'input.json'), '"from a file"');
    const r = await cli(['start', 'Hello', '--input', '@input.json', '--id', 'f1']);
    expect(r.code).toBe(0);
    expect((await client.getStatus('f1'))?.input).toBe('from a file');
  });

  it('start --wait exits 1 when the orchestration fails, and prints why', async () => {
    await startWorker();
    const r = await cli(['start', 'Fails', '--id', 'bad', '--wait']);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^Status +Failed$/m);
    expect(r.stdout).toMatch(/^Caused by +TypeError: boom$/m);
    expect(r.stderr).toMatch(/^error: instance 'bad' ended Failed: TaskFailedError: Activity 'Boom' \(task 0\) failed: TypeError: boom$/m);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  });

  it('start --wait --timeout gives up with exit code 1; the instance goes on', async () => {
    await startWorker();
    const r = await cli(['start', 'Approve', '--id', 'slow', '--wait', '--timeout', '300']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: Instance 'slow' did not finish within 300 ms \(it is (Pending|Running)\)\.$/m);
    expect(await statusOf('slow')).toMatch(/Pending|Running/);
  });

  it('start refuses an id that is running (exit 1), and changes nothing', async () => {
    await cli(['start', 'Approve', '--id', 'dup']);
    const before = await snapshot();
    const r = await cli(['start', 'Approve', '--id', 'dup']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error: Instance 'dup' already exists and is Pending; an instance id can be reused only once the instance has finished.\n");
    expect(await snapshot()).toEqual(before);
  });
});

describe('workers and the start check', () => {
  it('workers lists the live workers as a table, or JSON; and says when there is none', async () => {
    const none = await cli(['workers']);
    expect(none.code).toBe(0);
    expect(none.stdout).toBe(`No live worker in task hub '${hub}'.\n`);
    expect(JSON.parse((await cli(['--json', 'workers'])).stdout)).toEqual({ hub, workers: [] });

    await startWorker();
    const r = await cli(['workers']);
    expect(r.code).toBe(0);
    const [header, row, ...rest] = r.stdout.trimEnd().split('\n');
    expect(rest).toEqual([]);
    expect(header!.split(/ {2,}/)).toEqual(['WORKER', 'VERSION', 'KINDS', 'HEARTBEAT', 'RUNNING', 'EPISODES', 'ACTIVITIES', 'ORCHESTRATOR NAMES', 'ACTIVITY NAMES']);
    const cells = row!.split(/ {2,}/);
    expect(cells[0]).toBe(worker!.id);
    expect(cells[2]).toBe('orchestrator,activity');
    expect(cells[3]).toMatch(/^(\d+ms|\d+\.\d{3}s) ago$/);
    expect(cells.slice(4, 7)).toEqual(['0', '0', '0']);
    expect(cells[7]).toBe(registry.orchestratorNames().join(','));
    expect(cells[8]).toBe(registry.activityNames().join(','));

    const j = JSON.parse((await cli(['--json', 'workers'])).stdout);
    expect(j.hub).toBe(hub);
    expect(j.workers).toHaveLength(1);
    expect(j.workers[0]).toMatchObject({ id: worker!.id, pid: process.pid, kinds: ['orchestrator', 'activity'], orchestratorNames: registry.orchestratorNames(), jobsRunning: 0 });
    expect(new Date(j.workers[0].lastHeartbeatAt).getTime()).toBeGreaterThan(0);
  });

  it('start refuses a name no live worker runs (exit 1, changes nothing); --allow-unknown-name starts it anyway', async () => {
    await startWorker();
    const before = await snapshot();
    const r = await cli(['start', 'NoSuchOrchestrator', '--id', 'ns-1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `error: No live worker of task hub '${hub}' runs an orchestrator named 'NoSuchOrchestrator'; nothing was started. ` +
        `Served orchestrators: ${registry.orchestratorNames().map((n) => `'${n}'`).join(', ')}. To start it anyway (it waits, Pending, for such a worker), add --allow-unknown-name.\n`,
    );
    expect(await snapshot()).toEqual(before);
    const anyway = await cli(['start', 'NoSuchOrchestrator', '--id', 'ns-2', '--allow-unknown-name']);
    expect(anyway.code).toBe(0);
    expect((await client.getStatus('ns-2'))?.name).toBe('NoSuchOrchestrator');
  });
});

describe('schedules and delayed starts', () => {
  it('schedule create / get / list / update / trigger / pause / resume / delete, and list --schedule', async () => {
    await startWorker();
    const created = await cli(['schedule', 'create', 'nightly', '--orchestrator', 'Approve', '--cron', '0 3 * * *', '--tz', 'Europe/Paris', '--paused']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^Created schedule 'nightly'\.\nSchedule +nightly\nOrchestrator +Approve\nWhen +cron 0 3 \* \* \* \(Europe\/Paris\)\n/);
    const listed = await cli(['schedule', 'list']);
    const [header, row] = listed.stdout.trimEnd().split('\n');
    expect(header!.split(/ {2,}/)).toEqual(['SCHEDULE', 'ORCHESTRATOR', 'WHEN', 'OVERLAP', 'STATE', 'NEXT RUN', 'STARTED', 'SKIPPED']);
    expect(row!.split(/ {2,}/)).toEqual(['nightly', 'Approve', 'cron 0 3 * * * (Europe/Paris)', 'skip', 'paused', '-', '0', '0']);
    const updated = await cli(['--json', 'schedule', 'update', 'nightly', '--every', '60000', '--overlap', 'allowAll']);
    expect(JSON.parse(updated.stdout)).toMatchObject({ scheduleId: 'nightly', intervalMs: 60000, overlap: 'allowAll', revision: 2 });
    const fired = await cli(['--json', 'schedule', 'trigger', 'nightly']);
    const { instanceId } = JSON.parse(fired.stdout) as { instanceId: string };
    expect(instanceId).toMatch(/^nightly@\d{8}T\d{6}\.\d{3}Z$/);
    const byList = await cli(['list', '--schedule', 'nightly']);
    expect(byList.stdout.split('\n')[1]).toMatch(new RegExp(`^${instanceId.replace(/\./g, '\\.')} +Approve`));
    expect((await cli(['status', instanceId])).stdout).toMatch(/\nSchedule +'nightly', tick \d{4}-/);
    expect((await cli(['schedule', 'resume', 'nightly'])).stdout).toBe("Resumed schedule 'nightly'.\n");
    expect((await cli(['--json', 'schedule', 'get', 'nightly'])).stdout).toContain('"paused": false');
    expect((await cli(['schedule', 'pause', 'nightly'])).stdout).toBe("Paused schedule 'nightly'.\n");
    expect((await cli(['schedule', 'delete', 'nightly'])).stdout).toBe("Deleted schedule 'nightly'.\n");
    const gone = await cli(['schedule', 'get', 'nightly']);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toBe("error: No schedule 'nightly' exists in this task hub.\n");
  });

  it('refuses a bad cron, time zone, interval or start time as a usage error, and writes nothing', async () => {
    const before = await snapshot();
    const cases: [string[], RegExp][] = [
      [['schedule', 'create', 's1', '--orchestrator', 'Hello', '--cron', '0 25 * * *', '--allow-unknown-name'], /^error: schedules\.create: options\.cron "0 25 \* \* \*" is not a valid cron expression/],
      [['schedule', 'create', 's1', '--orchestrator', 'Hello', '--cron', '0 3 * * *', '--tz', 'Atlantis/Capital', '--allow-unknown-name'], /^error: schedules\.create: options\.timeZone "Atlantis\/Capital" is not a time zone/],
      [['schedule', 'create', 's1', '--orchestrator', 'Hello', '--every', '500'], /^error: --every must be a whole number at least 1000, got "500"/],
      [['schedule', 'create', 's1', '--orchestrator', 'Hello', '--every', '5000', '--overlap', 'queue'], /^error: --overlap must be one of skip, bufferOne, allowAll, got "queue"/],
      [['start', 'Hello', '--start-at', 'tomorrow'], /^error: --start-at must be an ISO 8601 time with an offset/],
      [['schedule', 'update', 's1'], /^error: schedule update needs at least one option to change/],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(message);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('start --start-at keeps the instance Pending until then', async () => {
    await startWorker();
    const at = new Date(Date.now() + 60_000).toISOString();
    const r = await cli(['start', 'Hello', '--input', '"later"', '--id', 'later-1', '--start-at', at]);
    expect(r.code).toBe(0);
    expect(await client.getStatus('later-1')).toMatchObject({ runtimeStatus: 'Pending', scheduledStartTime: new Date(at) });
    expect((await cli(['status', 'later-1'])).stdout).toContain(`Scheduled start  ${at}`);
  });
});

describe('status and history', () => {
  it('status prints the status; --json prints it as JSON', async () => {
    await startWorker();
    await client.startNew('Hello', { input: 'Cy', instanceId: 's1' });
    await client.waitForCompletion('s1');
    const r = await cli(['status', 's1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Orchestrator +Hello$/m);
    expect(r.stdout).toMatch(/^Status +Completed$/m);
    expect(r.stdout).toMatch(/^Input +"Cy"$/m);
    expect(r.stdout).toMatch(/^Episodes +3$/m);
    expect(r.stdout).toMatch(/^Completed +\d{4}-\d\d-\d\dT[\d:.]+Z \(after \d/m);
    const j = await cli(['--json', 'status', 's1']);
    expect(JSON.parse(j.stdout)).toMatchObject({ instanceId: 's1', runtimeStatus: 'Completed', output: 'HELLO CY!', customStatus: 'greeting' });
  });

  it('history prints the execution log, one line per event, with times from the start', async () => {
    await startWorker();
    await client.startNew('Hello', { input: 'Ada', instanceId: 'h2' });
    await client.waitForCompletion('h2');
    const r = await cli(['history', 'h2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    for (const l of lines) expect(l).toMatch(OFFSET);
    expect(lines[0]).toMatch(/^ *\+0ms /);
    const { executionId } = (await client.getStatus('h2'))!;
    expect(lines.map((l) => l.replace(OFFSET, ''))).toEqual([
      `Execution started: Hello (execution ${executionId}) input="Ada"`,
      'Orchestration function started',
      'Activity function Greet task scheduled (task 0) input="Ada"',
      'Orchestration function completed',
      'Activity function Greet task completed (task 0) result="Hello Ada"',
      'Orchestration function started',
      'Activity function Shout task scheduled (task 1) input="Hello Ada"',
      'Orchestration function completed',
      'Activity function Shout task completed (task 1) result="HELLO ADA!"',
      'Orchestration function started',
      'Execution completed output="HELLO ADA!"',
      'Orchestration function completed',
    ]);
    // Times never go backwards in this order on one machine.
    const ms = lines.map((l) => Number(/\+(\d+)ms/.exec(l)?.[1] ?? Infinity));
    expect([...ms].sort((a, b) => a - b)).toEqual(ms);

    const j = await cli(['--json', 'history', 'h2']);
    const parsed = JSON.parse(j.stdout);
    expect(parsed).toMatchObject({ instanceId: 'h2', name: 'Hello', executionId, runtimeStatus: 'Completed' });
    expect(parsed.events.map((e: { type: string }) => e.type)).toEqual([
      'OrchestratorStarted',
      'ExecutionStarted',
      'TaskScheduled',
      'OrchestratorCompleted',
      'OrchestratorStarted',
      'TaskCompleted',
      'TaskScheduled',
      'OrchestratorCompleted',
      'OrchestratorStarted',
      'TaskCompleted',
      'ExecutionCompleted',
      'OrchestratorCompleted',
    ]);
  });

  it('history shows failures, events, suspension and termination; and says when nothing ran yet', async () => {
    await cli(['start', 'Approve', '--id', 'p1']);
    const pending = await cli(['history', 'p1']);
    expect(pending.stdout).toBe("No history yet: instance 'p1' is Pending and has not run an episode.\n");

    await startWorker();
    const failed = await cli(['start', 'Fails', '--id', 'f2', '--wait']);
    expect(failed.code).toBe(1);
    const f = (await cli(['history', 'f2'])).stdout.split('\n').map((l) => l.replace(OFFSET, ''));
    expect(f).toContain('Activity function Boom task failed (task 0): TypeError: boom');
    expect(f).toContain("Execution failed: TaskFailedError: Activity 'Boom' (task 0) failed: TypeError: boom");

    await cli(['start', 'Approve', '--id', 'e1']);
    await until('e1 runs', async () => (await statusOf('e1')) === 'Running');
    await cli(['suspend', 'e1', '--reason', 'lunch']);
    await cli(['resume', 'e1']);
    await cli(['raise', 'e1', 'Approval', '--data', '[1,2]']);
    await client.waitForCompletion('e1');
    const e = (await cli(['history', 'e1'])).stdout.split('\n').map((l) => l.replace(OFFSET, ''));
    expect(e).toContain('Execution suspended reason="lunch"');
    expect(e).toContain('Execution resumed');
    expect(e).toContain('External event Approval raised data=[1,2]');
    expect(e).toContain('Execution completed output={"approved":[1,2]}');
  });
});

describe('list', () => {
  it('lists instances as a table or JSON, filtered and paged', async () => {
    for (const id of ['a1', 'a2', 'a3']) await client.startNew('Hello', { input: id, instanceId: id });
    await client.startNew('Approve', { instanceId: 'b1' });
    await client.terminate('b1', 'stop');

    const all = await cli(['list']);
    expect(all.code).toBe(0);
    const rows = all.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^INSTANCE +NAME +STATUS +CREATED +LAST UPDATED$/);
    expect(rows.slice(1).map((r) => r.split(/ +/).slice(0, 3))).toEqual([
      ['a1', 'Hello', 'Pending'],
      ['a2', 'Hello', 'Pending'],
      ['a3', 'Hello', 'Pending'],
      ['b1', 'Approve', 'Terminated'],
    ]);

    const page1 = JSON.parse((await cli(['--json', 'list', '--page-size', '2'])).stdout);
    expect(page1.instances.map((s: { instanceId: string }) => s.instanceId)).toEqual(['a1', 'a2']);
    expect(typeof page1.nextCursor).toBe('string');
    const page2 = JSON.parse((await cli(['--json', 'list', '--page-size', '2', '--cursor', page1.nextCursor])).stdout);
    expect(page2.instances.map((s: { instanceId: string }) => s.instanceId)).toEqual(['a3', 'b1']);
    const human = await cli(['list', '--page-size', '2']);
    expect(human.stdout).toContain(`More: add --cursor ${page1.nextCursor}`);

    const ids = async (args: string[]) =>
      JSON.parse((await cli(['--json', 'list', ...args])).stdout).instances.map((s: { instanceId: string }) => s.instanceId);
    expect(await ids(['--status', 'terminated'])).toEqual(['b1']);
    expect(await ids(['--status', 'Terminated,Pending'])).toEqual(['b1', 'a1', 'a2', 'a3']);
    expect(await ids(['--status', 'Completed', '--status', 'Terminated'])).toEqual(['b1']);
    expect(await ids(['--name', 'Approve'])).toEqual(['b1']);
    expect(await ids(['--from', new Date(Date.now() + 60_000).toISOString()])).toEqual([]);
    expect(await ids(['--to', String(Date.now())])).toEqual(['a1', 'a2', 'a3', 'b1']);
    expect((await cli(['list', '--status', 'Running'])).stdout).toBe('No instances.\n');
  });
});

describe('managing instances', () => {
  it('raise sends an event (--data JSON or @file)', async () => {
    await startWorker();
    await cli(['start', 'Approve', '--id', 'r1']);
    const r = await cli(['raise', 'r1', 'Approval', '--data', '{"ok":true}']);
    expect(r).toEqual({ code: 0, stdout: "Raised event 'Approval' on instance 'r1'.\n", stderr: '' });
    expect((await client.waitForCompletion('r1')).output).toEqual({ approved: { ok: true } });

    await writeFile(join(tmp, 'data.json'), '{"from":"file"}');
    await cli(['start', 'Approve', '--id', 'r2']);
    const j = await cli(['--json', 'raise', 'r2', 'Approval', '--data', '@data.json']);
    expect(JSON.parse(j.stdout)).toEqual({ instanceId: 'r2', event: 'Approval' });
    expect((await client.waitForCompletion('r2')).output).toEqual({ approved: { from: 'file' } });
  });

  it('terminate (with --reason and --recursive), then terminating again is an error', async () => {
    await startWorker();
    await cli(['start', 'Approve', '--id', 't1']);
    const r = await cli(['terminate', 't1', '--reason', 'no longer needed', '--recursive']);
    expect(r).toEqual({ code: 0, stdout: "Terminated instance 't1'.\n", stderr: '' });
    const st = await client.getStatus('t1');
    expect(st).toMatchObject({ runtimeStatus: 'Terminated', output: 'no longer needed' });
    const again = await cli(['--json', 'terminate', 't1']);
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe("error: Instance 't1' has already finished (Terminated); it takes no more events.\n");
  });

  it('suspend and resume', async () => {
    await startWorker();
    await cli(['start', 'Approve', '--id', 'sr']);
    await until('sr runs', async () => (await statusOf('sr')) === 'Running');
    expect(await cli(['suspend', 'sr'])).toEqual({ code: 0, stdout: "Suspended instance 'sr'.\n", stderr: '' });
    expect(await statusOf('sr')).toBe('Suspended');
    const again = await cli(['suspend', 'sr']);
    expect(again).toMatchObject({ code: 1, stderr: "error: Cannot suspend instance 'sr': it is Suspended.\n" });
    const j = await cli(['--json', 'resume', 'sr']);
    expect(JSON.parse(j.stdout)).toEqual({ instanceId: 'sr', runtimeStatus: 'Running' });
    expect(await statusOf('sr')).toBe('Running');
  });

  it('purge deletes a finished instance and refuses a running one', async () => {
    await startWorker();
    await cli(['start', 'Hello', '--input', '"P"', '--id', 'pg', '--wait']);
    expect(await cli(['purge', 'pg'])).toEqual({ code: 0, stdout: "Purged instance 'pg'.\n", stderr: '' });
    expect(await client.getStatus('pg')).toBeUndefined();

    await cli(['start', 'Approve', '--id', 'pr']);
    const r = await cli(['purge', 'pr']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: Cannot purge instance 'pr': it is (Pending|Running)\.\n$/);
    expect(await client.getStatus('pr')).toBeDefined();
  });

  it('purge by filter deletes the finished instances that match; no filter or an empty one is a usage error that purges nothing', async () => {
    await startWorker();
    for (const id of ['pf-1', 'pf-2']) await cli(['start', 'Hello', '--input', '"F"', '--id', id, '--wait']);
    await cli(['start', 'Approve', '--id', 'pf-running']);
    // Its first episode done and its job gone from the queue: nothing moves while the commands below run.
    const queue = `${(await client.backend.at('pf-running')).keys.queuePrefix}:orchestrator`;
    await until('pf-running has run its first episode', async () => (await client.getStatus('pf-running'))?.episodes === 1 && (await redis.llen(`${queue}:active`)) + (await redis.llen(`${queue}:wait`)) === 0);
    const before = await snapshot();
    const usage = [
      [['purge'], /^error: purge needs an instance id, or filters \(--status, --name, --from, --to\), or --all for every finished instance\n$/],
      [['purge', '--status', ''], /^error: --status needs at least one status/],
      [['purge', '--status', ','], /^error: --status needs at least one status/],
      [['purge', '--name', ''], /^error: Invalid orchestrator name ""/],
      [['purge', '--from', ''], /^error: --from must be an ISO date or time/],
      [['purge', '--to', 'soon'], /^error: --to must be an ISO date or time/],
      [['purge', 'pf-1', '--all'], /^error: purge takes an instance id or filters/],
    ] as const;
    for (const [args, stderr] of usage) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout, args.join(' ')).toBe('');
      expect(r.stderr, args.join(' ')).toMatch(stderr);
    }
    expect(await snapshot()).toEqual(before);

    expect(await cli(['purge', '--status', 'Failed'])).toEqual({ code: 0, stdout: 'Purged 0 finished instances.\n', stderr: '' });
    expect(await cli(['--json', 'purge', '--name', 'Hello', '--status', 'completed'])).toEqual({ code: 0, stdout: '{\n  "instancesDeleted": 2\n}\n', stderr: '' });
    expect(await client.getStatus('pf-1')).toBeUndefined();
    expect(await cli(['purge', '--all'])).toMatchObject({ code: 0, stdout: expect.stringMatching(/^Purged \d+ finished instances?\.\n$/) });
    expect(await statusOf('pf-running')).toMatch(/^(Pending|Running)$/);
  });

  it('restart runs a finished instance again, under its id or a new one', async () => {
    await startWorker();
    await cli(['start', 'Hello', '--input', '"R"', '--id', 'rs', '--wait']);
    const first = (await client.getStatus('rs'))!.executionId;
    expect(await cli(['restart', 'rs'])).toEqual({ code: 0, stdout: "Restarted instance 'rs' (a new execution).\n", stderr: '' });
    const st = await client.waitForCompletion('rs');
    expect(st.executionId).not.toBe(first);
    expect(st.output).toBe('HELLO R!');
    const j = await cli(['--json', 'restart', 'rs', '--new-id', 'rs-copy']);
    expect(JSON.parse(j.stdout)).toEqual({ instanceId: 'rs-copy', restartedFrom: 'rs' });
    expect((await client.waitForCompletion('rs-copy')).output).toBe('HELLO R!');
  });
});

describe('bad input', () => {
  it('invalid JSON names the option, exits 2 and writes nothing', async () => {
    const r = await cli(['start', 'Hello', '--input', 'tokyo', '--id', 'x']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^error: --input is not valid JSON \(.*\); a string needs JSON quotes, e\.g\. --input '"text"', or pass a file as --input @file\.json\n$/);
    expect((await snapshot()).size).toBe(0);

    await cli(['start', 'Approve', '--id', 'ev']);
    const before = await snapshot();
    const d = await cli(['raise', 'ev', 'Approval', '--data', '{ok: true}']);
    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/^error: --data is not valid JSON/);
    const f = await cli(['raise', 'ev', 'Approval', '--data', '@missing.json']);
    expect(f).toMatchObject({ code: 2, stderr: `error: --data @missing.json: cannot read missing.json (ENOENT)\n` });
    await writeFile(join(tmp, 'broken.json'), '{"a":');
    const b = await cli(['start', 'Hello', '--input', '@broken.json']);
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/^error: --input @broken\.json: broken\.json is not valid JSON \(/);
    expect(await snapshot()).toEqual(before);
  });

  it('an unknown instance is exit code 1 with one line naming the hub, for every command', async () => {
    await cli(['start', 'Approve', '--id', 'other']);
    const before = await snapshot();
    const line = `error: No instance 'missing' exists in task hub '${hub}'.\n`;
    for (const args of [
      ['status', 'missing'],
      ['history', 'missing'],
      ['raise', 'missing', 'Approval'],
      ['terminate', 'missing'],
      ['suspend', 'missing'],
      ['resume', 'missing'],
      ['purge', 'missing'],
      ['restart', 'missing'],
    ]) {
      expect(await cli(args), args.join(' ')).toEqual({ code: 1, stdout: '', stderr: line });
    }
    expect(await snapshot()).toEqual(before);
  });

  it('invalid ids and names are usage errors (exit 2) and write nothing', async () => {
    const idLine = (id: string) => `error: Invalid instance id ${JSON.stringify(id)}: use 1 to 256 letters, digits, '_', '.', '@' or '-'.\n`;
    expect(await cli(['status', 'a:b'])).toEqual({ code: 2, stdout: '', stderr: idLine('a:b') });
    expect(await cli(['start', 'Hello', '--id', 'has space'])).toEqual({ code: 2, stdout: '', stderr: idLine('has space') });
    expect(await cli(['restart', 'x', '--new-id', '{x}'])).toEqual({ code: 2, stdout: '', stderr: idLine('{x}') });
    const dots = (id: string) => `error: Invalid instance id ${JSON.stringify(id)}: '.' and '..' are refused, since no URL can address them (they are path segments).\n`;
    expect(await cli(['status', '..'])).toEqual({ code: 2, stdout: '', stderr: dots('..') });
    expect(await cli(['start', 'Hello', '--id', '.'])).toEqual({ code: 2, stdout: '', stderr: dots('.') });
    const deep = await cli(['start', 'Hello', '--input', `${'['.repeat(2000)}1${']'.repeat(2000)}`]);
    expect(deep.code).toBe(2);
    expect(deep.stderr).toMatch(/^error: Orchestration input\[0\].* is nested deeper than 500 levels, which cannot be serialized/);
    const name = await cli(['start', '1nvalid']);
    expect(name.code).toBe(2);
    expect(name.stderr).toMatch(/^error: Invalid orchestrator name "1nvalid"/);
    const hubName = await cli(['--hub', 'no:colons', 'status', 'x'], { globals: false });
    expect(hubName.code).toBe(2);
    expect(hubName.stderr).toMatch(/^error: Invalid task hub name "no:colons"/);
    expect((await snapshot()).size).toBe(0);
  });

  it('bad option values are usage errors with a clear line', async () => {
    const cases: [string[], RegExp][] = [
      [['list', '--status', 'Done'], /^error: --status: unknown status "Done"; use Pending, Running, Completed, Failed, Terminated, ContinuedAsNew, Suspended\n$/],
      [['list', '--page-size', '5000'], /^error: --page-size must be a whole number from 1 to 1000, got "5000"\n$/],
      [['list', '--from', 'yesterday'], /^error: --from must be an ISO date or time/],
      [['list', '--cursor', 'nonsense'], /^error: Invalid list cursor/],
      [['start', 'Hello', '--timeout', '10'], /^error: --timeout needs --wait\n$/],
      [['start', 'Hello', '--wait', '--timeout', 'soon'], /^error: --timeout must be a whole number at least 1, got "soon"\n$/],
      [['worker', '--module', 'nope.ts'], /^error: --module: no such file: .*nope\.ts\n$/],
      [['worker', '--module', FUNCTIONS, '--orchestrators-only', '--activities-only'], /^error: option '--orchestrators-only' cannot be used with option '--activities-only'/],
      [['worker', '--module', FUNCTIONS, '--concurrency', '0'], /^error: --concurrency must be a whole number from 1 to 10000, got "0"\n$/],
      [['status'], /^error: missing required argument 'id'\n\(add --help for usage\)\n$/],
      [['status', 'a', 'b'], /^error: too many arguments for 'status'/],
      [['start', 'Hello', '--bogus'], /^error: unknown option '--bogus'/],
      [['frobnicate'], /^error: unknown command 'frobnicate'/],
    ];
    for (const [args, stderr] of cases) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(stderr);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }
    expect((await snapshot()).size).toBe(0);
  });

  it('a Redis that does not answer is exit code 1, with one line', async () => {
    const r = await cli(['--redis', 'redis://127.0.0.1:1', 'status', 'x'], { globals: false });
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: no Redis answered at redis://127.0.0.1:1: start one, or point --redis (or REDIS_URL) at yours (or run `durabull dev`)\n',
    });
  });

  it('a module without functions, or one that throws, is exit code 1', async () => {
    await writeFile(join(tmp, 'empty.mjs'), 'export const nothing = 1;\n');
    const e = await cli(['worker', '--module', 'empty.mjs']);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/^error: module empty\.mjs provides no functions: export a Registry as `registry`/);
    await writeFile(join(tmp, 'throws.mjs'), "throw new Error('broken module');\n");
    const t = await cli(['worker', '--module', 'throws.mjs']);
    expect(t.code).toBe(1);
    // The user's own code failed: its stack follows, to find the line.
    expect(t.stderr).toMatch(/^error: could not load module throws\.mjs: Error: broken module\nError: broken module\n\s+at /);
  });

  it('help exits 0; no command prints the help and exits 2', async () => {
    const h = await cli(['--help']);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain('Usage: durabull [options] [command]');
    expect(h.stdout).toContain('Exit codes:');
    const s = await cli(['start', '--help']);
    expect(s.code).toBe(0);
    expect(s.stdout).toContain('--input <json|@file>');
    const none = await cli([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: durabull');
  });

  it('--cluster-nodes (or REDIS_CLUSTER_NODES) names a Redis Cluster; a bad list or both ways at once is a usage error', async () => {
    expect(await cli(['--redis', url, '--cluster-nodes', '127.0.0.1:7000', 'status', 'x'], { globals: false })).toEqual({ code: 2, stdout: '', stderr: 'error: give --redis or --cluster-nodes, not both\n' });
    expect(await cli(['--cluster-nodes', '127.0.0.1', 'status', 'x'], { globals: false })).toEqual({
      code: 2,
      stdout: '',
      stderr: "error: --cluster-nodes: '127.0.0.1' is not a cluster node; write host:port (e.g. 127.0.0.1:7000)\n",
    });
    const both = await cli(['status', 'x'], { globals: false, env: { REDIS_URL: url, REDIS_CLUSTER_NODES: '127.0.0.1:7000' } });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^error: both REDIS_URL and REDIS_CLUSTER_NODES are set/);
    expect((await cli(['--redis', 'localhost:6379', 'status', 'x'], { globals: false })).stderr).toMatch(/^error: --redis 'localhost:6379' is not a Redis URL/);
    if (isClusterUrl(url)) {
      // The run's cluster, named both ways.
      await client.startNew('Hello', { instanceId: 'cl1' });
      const nodes = url.slice('redis-cluster://'.length);
      for (const r of [await cli(['--json', '--hub', hub, '--cluster-nodes', nodes, 'status', 'cl1'], { globals: false }), await cli(['--json', 'status', 'cl1'], { globals: false, env: { REDIS_CLUSTER_NODES: nodes, DURABULL_HUB: hub } })]) {
        expect(r.code).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ instanceId: 'cl1' });
      }
    } else {
      expect(await cli(['--cluster-nodes', '127.0.0.1:1', 'status', 'x'], { globals: false })).toEqual({
        code: 1,
        stdout: '',
        stderr: 'error: no Redis answered at redis-cluster://127.0.0.1:1: start one, or point --redis (or REDIS_URL) at yours (or run `durabull dev`)\n',
      });
    }
  });

  it('--redis and --hub default to REDIS_URL and DURABULL_HUB', async () => {
    await client.startNew('Hello', { instanceId: 'env1' });
    const r = await cli(['--json', 'status', 'env1'], { globals: false, env: { REDIS_URL: url, DURABULL_HUB: hub } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ instanceId: 'env1', runtimeStatus: 'Pending' });
  });
});

describe('check and dashboard', () => {
  it('check reports broken invariants (exit 1), --repair fixes what is safe, --json prints the report', async () => {
    await client.startNew('Hello', { instanceId: 'k1' });
    await client.startNew('Hello', { instanceId: 'k2' });
    expect(await cli(['check'])).toEqual({ code: 0, stdout: `Checked 2 instances of task hub '${hub}': no findings.\n`, stderr: '' });
    expect(await cli(['check', 'k1'])).toEqual({ code: 0, stdout: "Checked instance 'k1' (Pending): no findings.\n", stderr: '' });

    // Break an invariant: k2's status index entry goes missing.
    const keys = (await client.backend.at('k2')).keys;
    const entry = (await redis.zrange(keys.statusIndex, 0, -1)).find((m) => m.endsWith('|k2'))!;
    await redis.zrem(keys.statusIndex, entry);
    const broken = await cli(['check']);
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/^k2  index-mismatch  .+\nChecked 2 instances of task hub '.+': 1 finding\.\n$/);
    expect(broken.stderr).toBe('error: 1 finding to look at (--repair fixes stuck instances, lost tasks and index entries)\n');
    const json = JSON.parse((await cli(['--json', 'check', 'k2'])).stdout);
    expect(json).toMatchObject({ instanceId: 'k2', exists: true, findings: [{ instanceId: 'k2', code: 'index-mismatch' }] });

    const repaired = await cli(['check', '--repair']);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/^k2  index-mismatch  .+  \[repaired: .+\]\nChecked 2 instances of task hub '.+': 1 finding, 1 repaired\.\n$/);
    expect(await redis.zscore(keys.statusIndex, entry)).not.toBeNull();
    expect((await cli(['check'])).code).toBe(0);

    const page = await cli(['check', '--limit', '1']);
    const cursor = /More: add --cursor (\S+)/.exec(page.stdout)?.[1];
    expect(cursor).toBeDefined();
    expect((await cli(['check', '--limit', '1', '--cursor', cursor!])).stdout).toContain('Checked 1 instance of task hub');

    expect(await cli(['check', 'nobody'])).toEqual({ code: 1, stdout: '', stderr: `error: No instance 'nobody' exists in task hub '${hub}'.\n` });
  });

  it('dashboard serves the management API until stopped', async () => {
    expect(typeof serverModule.createServer).toBe('function');
    await client.startNew('Hello', { input: 'web', instanceId: 'web1' });
    const d = cliLive(['dashboard', '--port', '0']);
    await until('the dashboard listens', async () => d.stdout().includes('Stop with Ctrl-C.'));
    const base = /durabull dashboard: (http:\/\/127\.0\.0\.1:\d+)\/ \(Bull Board at /.exec(d.stdout())?.[1];
    expect(base).toBeDefined();
    const res = await fetch(`${base}/instances/web1`);
    expect(res.ok).toBe(true);
    expect(await res.json()).toMatchObject({ instanceId: 'web1', runtimeStatus: 'Pending' });
    d.abort();
    const r = await d.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Stopping (abort).');
    await expect(fetch(`${base}/instances/web1`)).rejects.toThrow();

    const open = await cli(['dashboard', '--host', '0.0.0.0', '--port', '0']);
    expect(open).toEqual({
      code: 2,
      stdout: '',
      stderr: 'error: Refusing to serve on 0.0.0.0 without a token: set a token (DURABULL_TOKEN) or listen on 127.0.0.1.\n',
    });
  });
});

// ---- worker and dev, as child processes ----

interface Child {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function spawnCli(command: string[], args: string[]): Child {
  const child = spawn(process.execPath, [...command, ...args], { cwd: tmp, env: { ...process.env, REDIS_URL: url }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function untilOutput(c: Child, text: string): Promise<void> {
  await until(`the process prints ${JSON.stringify(text)} (stdout: ${c.stdout().slice(-500)}; stderr: ${c.stderr().slice(-500)})`, async () => {
    if (c.child.exitCode !== null) throw new Error(`the process exited with ${c.child.exitCode}: ${c.stderr()}`);
    return c.stdout().includes(text);
  }, 30_000);
}

describe('worker and dev processes', () => {
  it('worker --module (bin/durabull.js, definitions module) completes an instance and stops on SIGTERM', async () => {
    const w = spawnCli([BIN], ['--redis', url, '--hub', hub, 'worker', '--module', DEFINITIONS, '--concurrency', '4']);
    await untilOutput(w, 'Stop with Ctrl-C or SIGTERM');
    expect(w.stdout()).toContain(`Worker started on ${url}, task hub '${hub}', module ${DEFINITIONS} (3 definitions):`);
    expect(w.stdout()).toContain('  orchestrators: Compute\n  activities:    AddOne, Double\n');
    await client.startNew('Compute', { input: 20, instanceId: 'c1' });
    const st = await client.waitForCompletion('c1', { timeoutMs: 20_000 });
    expect(st).toMatchObject({ runtimeStatus: 'Completed', output: 41 });
    // The worker's execution log, in Durable Functions wording.
    await untilOutput(w, '"msg":"Execution completed"');
    w.child.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('an orchestrator-only and an activity-only worker (--json) complete an instance together', async () => {
    const args = ['--redis', url, '--hub', hub, '--json', 'worker', '--module', FUNCTIONS];
    const orch = spawnCli([BIN], [...args, '--orchestrators-only']);
    const acts = spawnCli([BIN], [...args, '--activities-only']);
    await Promise.all([untilOutput(orch, '"event":"worker-started"'), untilOutput(acts, '"event":"worker-started"')]);
    const info = JSON.parse(orch.stdout().split('\n')[0]!);
    expect(info).toMatchObject({ hub, orchestrators: true, activities: false, orchestratorNames: ['Approve', 'Fails', 'Hello'] });
    expect(JSON.parse(acts.stdout().split('\n')[0]!)).toMatchObject({ orchestrators: false, activities: true });
    const r = await cli(['start', 'Hello', '--input', '"two"', '--wait', '--timeout', '20000']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Output +"HELLO TWO!"$/m);
    orch.child.kill('SIGTERM');
    acts.child.kill('SIGINT');
    expect(await orch.exited).toEqual({ code: 0, signal: null });
    expect(await acts.exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  it('dev --module (main.ts) finds the running Redis, runs both kinds, and stops on SIGINT', async () => {
    const d = spawnCli(['--import', TSX, '--conditions=source', MAIN], ['--redis', url, '--hub', hub, 'dev', '--module', FUNCTIONS]);
    await untilOutput(d, 'Stop with Ctrl-C.');
    expect(d.stdout()).toContain(`durabull dev: Redis ${url} (already running), task hub '${hub}'`);
    expect(d.stdout()).toContain('  orchestrators: Approve, Fails, Hello\n  activities:    Boom, Greet, Shout\n');
    expect(d.stderr()).toContain('answers PING; using it.');
    await client.startNew('Hello', { input: 'dev', instanceId: 'd1' });
    expect((await client.waitForCompletion('d1', { timeoutMs: 20_000 })).output).toBe('HELLO DEV!');
    d.child.kill('SIGINT');
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(d.stdout()).toContain('Stopping (SIGINT): finishing running jobs.');
  }, 60_000);
});
