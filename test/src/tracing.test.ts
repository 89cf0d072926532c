/**
 * OpenTelemetry traces across processes, with the SDK's in-memory exporter in each: this process
 * starts the orchestrations (`startNew` spans), one worker process runs the orchestrators, another
 * the activities (fixtures/traced-worker.ts, every episode replaying its history). The spans of one
 * orchestration form one tree: startNew > episodes > activity attempts > the activities' own spans,
 * timers and sub-orchestrations under the episode that asked for them; a restarted worker process
 * goes on in the same trace, and replayed episodes make no activity spans.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { context, propagation, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type SpanRecord, toRecord } from './fixtures/traced-worker.js';
import { type TestHub, createTestHub } from './helpers/hub.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/traced-worker.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

beforeAll(() => {
  provider.register();
});
afterAll(async () => {
  await provider.shutdown();
  trace.disable();
  context.disable();
  propagation.disable();
});

interface TracedProcess {
  kind: string;
  child: ChildProcess;
  ready: Promise<void>;
  exited: Promise<void>;
  output: string[];
}

const processes: TracedProcess[] = [];
let th: TestHub | undefined;

afterEach(async () => {
  for (const p of processes.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  await th?.cleanup();
  th = undefined;
});

function startProcess(kind: 'orchestrators' | 'activities', hub: string, url: string): TracedProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=source', FIXTURE], {
    cwd: REPO_ROOT,
    env: { ...process.env, REDIS_URL: url, DURABULL_HUB: hub, WORKER_KIND: kind },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const output: string[] = [];
  const keep = (b: Buffer) => output.push(...b.toString().split('\n').filter(Boolean).slice(-20));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (m: { type?: string }) => m?.type === 'ready' && resolve());
    void exited.then(() => reject(new Error(`traced worker (${kind}) exited before it was ready:\n${output.join('\n')}`)));
  });
  const p = { kind, child, ready, exited, output };
  processes.push(p);
  return p;
}

/** The spans a worker process has finished so far (its in-memory exporter, emptied). */
function spansOf(p: TracedProcess): Promise<SpanRecord[]> {
  return new Promise((resolve) => {
    const on = (m: { type?: string; spans?: SpanRecord[] }) => {
      if (m?.type !== 'spans') return;
      p.child.off('message', on);
      resolve(m.spans ?? []);
    };
    p.child.on('message', on);
    p.child.send({ type: 'spans' });
  });
}

async function stop(p: TracedProcess): Promise<void> {
  p.child.kill('SIGTERM');
  await p.exited;
}

/** Every span collected so far: this process's and the workers'. */
class Spans {
  readonly all: SpanRecord[] = [];
  async collect(...from: TracedProcess[]): Promise<void> {
    for (const p of from) this.all.push(...(await spansOf(p)));
    this.all.push(...exporter.getFinishedSpans().map((s) => toRecord(s)));
    exporter.reset();
  }
  of(instanceId: string, name?: string): SpanRecord[] {
    return this.all.filter((s) => s.attributes['durabull.instance_id'] === instanceId && (name === undefined || s.name === name));
  }
  /** Committed episodes of an instance (stale or refused attempts left out), by episode number. */
  episodes(instanceId: string, orchestrator: string): SpanRecord[] {
    return this.of(instanceId, `episode ${orchestrator}`)
      .filter((s) => !['stale', 'refused', 'error'].includes(String(s.attributes['durabull.outcome'])))
      .sort((a, b) => Number(a.attributes['durabull.episode']) - Number(b.attributes['durabull.episode']));
  }
  byId(spanId: string | undefined): SpanRecord | undefined {
    return this.all.find((s) => s.spanId === spanId);
  }
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('traces', () => {
  it('make one tree per orchestration for a chain and a fan-out, the orchestrators in one process and the activities in another', async () => {
    th = await createTestHub({}, { startWorker: false });
    const orch = startProcess('orchestrators', th.hub, th.url);
    const acts = startProcess('activities', th.hub, th.url);
    await Promise.all([orch.ready, acts.ready]);
    await th.client.startNew('Chain', { instanceId: 'chain-1', input: 'go' });
    await th.client.startNew('FanOut', { instanceId: 'fan-1', input: 10 });
    expect((await th.client.waitForCompletion('chain-1', { timeoutMs: 20_000 })).output).toBe('go>1>2>3');
    const fan = await th.client.waitForCompletion('fan-1', { timeoutMs: 20_000 });
    expect(fan.output).toBe(285 + 'child>1>2>3'.length);
    const spans = new Spans();
    await spans.collect(orch, acts);

    // The chain: startNew (here) > 4 episodes (orchestrator process) > 3 activity attempts (activity
    // process), each under the episode that scheduled it > the activity's own call.
    const [start] = spans.all.filter((s) => s.name === 'startNew Chain');
    expect(start).toMatchObject({ parentSpanId: undefined, pid: process.pid, attributes: { 'durabull.instance_id': 'chain-1' } });
    const episodes = spans.episodes('chain-1', 'Chain');
    expect(episodes.map((e) => e.attributes['durabull.episode'])).toEqual([1, 2, 3, 4]);
    expect(episodes.map((e) => e.attributes['durabull.outcome'])).toEqual(['running', 'running', 'running', 'completed']);
    for (const e of episodes) expect(e).toMatchObject({ traceId: start!.traceId, parentSpanId: start!.spanId, pid: orch.child.pid });
    const steps = spans.of('chain-1', 'activity Step').sort((a, b) => Number(a.attributes['durabull.task_id']) - Number(b.attributes['durabull.task_id']));
    expect(steps.map((s) => s.attributes['durabull.task_id'])).toEqual([0, 1, 2]);
    steps.forEach((s, k) => expect(s).toMatchObject({ traceId: start!.traceId, parentSpanId: episodes[k]!.spanId, pid: acts.child.pid }));
    const calls = spans.all.filter((s) => s.name === 'GET /step' && s.traceId === start!.traceId);
    expect(calls.map((c) => spans.byId(c.parentSpanId)?.name)).toEqual(['activity Step', 'activity Step', 'activity Step']);
    expect(new Set(calls.map((c) => c.parentSpanId))).toEqual(new Set(steps.map((s) => s.spanId)));

    // The fan-out: all its activities under its first episode; the timer under the fan-in episode
    // that created it; the sub-orchestration's episodes under the episode that asked for the child.
    const [fanStart] = spans.all.filter((s) => s.name === 'startNew FanOut');
    const fanEpisodes = spans.episodes('fan-1', 'FanOut');
    expect(fanEpisodes.map((e) => e.attributes['durabull.episode'])).toEqual([1, 2, 3, 4]);
    for (const e of fanEpisodes) expect(e).toMatchObject({ traceId: fanStart!.traceId, parentSpanId: fanStart!.spanId });
    const squares = spans.of('fan-1', 'activity Square');
    expect(squares).toHaveLength(10);
    expect(new Set(squares.map((s) => s.attributes['durabull.task_id']))).toEqual(new Set([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]));
    for (const s of squares) expect(s).toMatchObject({ traceId: fanStart!.traceId, parentSpanId: fanEpisodes[0]!.spanId, pid: acts.child.pid });
    const [timer] = spans.of('fan-1', 'timer');
    expect(timer).toMatchObject({ traceId: fanStart!.traceId, parentSpanId: fanEpisodes[1]!.spanId, attributes: { 'durabull.task_id': 10 } });
    const childId = `fan-1-${fan.executionId}-11`;
    const childEpisodes = spans.episodes(childId, 'Chain');
    expect(childEpisodes).toHaveLength(4);
    for (const e of childEpisodes) expect(e).toMatchObject({ traceId: fanStart!.traceId, parentSpanId: fanEpisodes[2]!.spanId });
    const childSteps = spans.of(childId, 'activity Step');
    expect(childSteps).toHaveLength(3);
    for (const s of childSteps) expect(childEpisodes.map((e) => e.spanId)).toContain(s.parentSpanId);
    // Nothing of either orchestration outside its trace.
    for (const id of ['fan-1', childId]) for (const s of spans.of(id)) expect(s.traceId).toBe(fanStart!.traceId);
    expect(start!.traceId).not.toBe(fanStart!.traceId);
  });

  it('goes on in the same trace after the orchestrator process restarts, and replayed episodes make no activity spans', async () => {
    th = await createTestHub({}, { startWorker: false });
    const first = startProcess('orchestrators', th.hub, th.url);
    const acts = startProcess('activities', th.hub, th.url);
    await Promise.all([first.ready, acts.ready]);
    await th.client.startNew('GatedChain', { instanceId: 'gated-1', input: 'g' });
    await until(async () => ((await th!.client.getStatus('gated-1'))?.episodes ?? 0) >= 2, 'gated-1 waits for Go');
    const spans = new Spans();
    await spans.collect(first);
    await stop(first);
    const second = startProcess('orchestrators', th.hub, th.url);
    await second.ready;
    await th.client.raiseEvent('gated-1', 'Go');
    expect((await th.client.waitForCompletion('gated-1', { timeoutMs: 20_000 })).output).toBe('g>1>2>3');
    await spans.collect(second, acts);

    const [start] = spans.all.filter((s) => s.name === 'startNew GatedChain');
    const episodes = spans.episodes('gated-1', 'GatedChain');
    expect(episodes.map((e) => [e.attributes['durabull.episode'], e.pid])).toEqual([
      [1, first.child.pid],
      [2, first.child.pid],
      [3, second.child.pid],
      [4, second.child.pid],
      [5, second.child.pid],
    ]);
    // The new process found the trace in the history it replayed.
    for (const e of episodes) expect(e).toMatchObject({ traceId: start!.traceId, parentSpanId: start!.spanId });
    expect(episodes.slice(1).map((e) => e.attributes['durabull.mode'])).toEqual(['replayed', 'replayed', 'replayed', 'replayed']);
    // Each activity ran once and has one span, though episodes 3 to 5 replayed the steps before them.
    const steps = spans.of('gated-1', 'activity Step');
    expect(steps.map((s) => s.attributes['durabull.task_id']).sort()).toEqual([0, 1, 2]);
    expect(steps.find((s) => s.attributes['durabull.task_id'] === 0)!.parentSpanId).toBe(episodes[0]!.spanId);
    expect(steps.find((s) => s.attributes['durabull.task_id'] === 1)!.parentSpanId).toBe(episodes[2]!.spanId);
    expect(steps.find((s) => s.attributes['durabull.task_id'] === 2)!.parentSpanId).toBe(episodes[3]!.spanId);
  });

  it('roots an execution whose start was not traced at its first episode, recorded in history for the others', async () => {
    th = await createTestHub({}, { startWorker: false });
    const orch = startProcess('orchestrators', th.hub, th.url);
    const acts = startProcess('activities', th.hub, th.url);
    await Promise.all([orch.ready, acts.ready]);
    // Started without a span (as by a client in a process without an SDK).
    await th.client.backend.startInstance('Chain', 'plain-1', 'p');
    expect((await th.client.waitForCompletion('plain-1', { timeoutMs: 20_000 })).output).toBe('p>1>2>3');
    const spans = new Spans();
    await spans.collect(orch, acts);
    const episodes = spans.episodes('plain-1', 'Chain');
    expect(episodes).toHaveLength(4);
    expect(episodes[0]!.parentSpanId).toBeUndefined();
    for (const e of episodes.slice(1)) expect(e).toMatchObject({ traceId: episodes[0]!.traceId, parentSpanId: episodes[0]!.spanId });
    for (const s of spans.of('plain-1', 'activity Step')) expect(s.traceId).toBe(episodes[0]!.traceId);
    const history = (await th.client.getStatus('plain-1', { showHistory: true }))!.history!;
    expect(history[0]).toMatchObject({ type: 'OrchestratorStarted', trace: { traceparent: expect.stringContaining(episodes[0]!.spanId) } });
    expect(history.find((e) => e.type === 'ExecutionStarted')).not.toHaveProperty('trace');
  });
});
