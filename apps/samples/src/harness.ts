/**
 * What every sample shares: a worker and a client on one task hub, and small helpers to read
 * statuses and histories.
 */
import { randomBytes } from 'node:crypto';
import { DurabullClient, type OrchestrationStatus } from '@durabull/client';
import type { HistoryEvent, Registry, RuntimeStatus } from '@durabull/core';
import { DurabullWorker } from '@durabull/worker';

/** What every sample's `run` takes. */
export interface SampleOptions {
  /** Redis to run on. */
  redisUrl: string;
  /** Task hub: every key and queue of the sample lives under it. */
  hub: string;
  /** Receives one readable line per step. Default: silent. */
  log?: (line: string) => void;
}

/** The facts a sample reports about one instance. */
export interface InstanceReport<TOut = unknown> {
  instanceId: string;
  runtimeStatus: RuntimeStatus;
  output: TOut | undefined;
  customStatus: unknown;
  /** Orchestrator episodes (replays) run for the instance, over all its executions. */
  episodes: number;
  /** `errorName: message` when the instance failed. */
  failure?: string;
  /** The current execution's history, as `Type` or `Type:name` lines (see {@link describeHistory}). */
  history: string[];
  /** Events in the current execution's history, episode markers included. */
  historyEvents: number;
}

export interface Harness {
  client: DurabullClient;
  worker: DurabullWorker;
  log: (line: string) => void;
  /** A suffix that makes instance ids unique to this run: `<prefix>-<suffix>`. */
  id(prefix: string): string;
  /** Waits for the instance to finish and reports it (with its history). */
  finish<TOut>(instanceId: string, timeoutMs?: number): Promise<InstanceReport<TOut>>;
  /** The instance's report as it is now (finished or not). */
  report<TOut>(instanceId: string): Promise<InstanceReport<TOut>>;
  /** Polls the instance's status until `predicate` holds. */
  until(instanceId: string, predicate: (status: OrchestrationStatus) => boolean, timeoutMs?: number): Promise<OrchestrationStatus>;
}

/**
 * Starts a worker (execution log off) and a client on `opts.hub`, runs `body`, and closes both
 * whatever happens.
 */
export async function withHarness<T>(opts: SampleOptions, registry: Registry, body: (h: Harness) => Promise<T>): Promise<T> {
  const log = opts.log ?? (() => {});
  const worker = await new DurabullWorker({ connection: opts.redisUrl, hub: opts.hub, registry, logger: false }).start();
  const client = new DurabullClient({ connection: opts.redisUrl, hub: opts.hub });
  const suffix = `${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const report = async <TOut>(status: OrchestrationStatus | undefined, instanceId: string): Promise<InstanceReport<TOut>> => {
    if (!status) throw new Error(`No instance '${instanceId}'`);
    const r: InstanceReport<TOut> = {
      instanceId,
      runtimeStatus: status.runtimeStatus,
      output: status.output as TOut | undefined,
      customStatus: status.customStatus,
      episodes: status.episodes,
      history: describeHistory(status.history ?? []),
      historyEvents: status.history?.length ?? 0,
    };
    if (status.failure) r.failure = `${status.failure.errorName}: ${status.failure.message}`;
    return r;
  };
  const h: Harness = {
    client,
    worker,
    log,
    id: (prefix) => `${prefix}-${suffix}`,
    finish: async (instanceId, timeoutMs = 30_000) =>
      report(await client.waitForCompletion(instanceId, { timeoutMs, showHistory: true }), instanceId),
    report: async (instanceId) => report(await client.getStatus(instanceId, { showHistory: true }), instanceId),
    async until(instanceId, predicate, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const status = await client.getStatus(instanceId);
        if (status && predicate(status)) return status;
        if (Date.now() > deadline) throw new Error(`Instance '${instanceId}' did not reach the expected state within ${timeoutMs} ms (${status?.runtimeStatus ?? 'not found'})`);
        await sleep(25);
      }
    },
  };
  try {
    return await body(h);
  } finally {
    await client.close();
    await worker.close();
  }
}

/**
 * A history as short lines: `TaskScheduled:F1`, `TaskCompleted`, `TimerFired`, `EventRaised:Approval`,
 * `SubOrchestrationInstanceCreated:Child`, `ExecutionCompleted:Completed`... Episode markers
 * (`OrchestratorStarted`, `OrchestratorCompleted`) are left out.
 */
export function describeHistory(history: readonly HistoryEvent[]): string[] {
  const lines: string[] = [];
  for (const e of history) {
    switch (e.type) {
      case 'OrchestratorStarted':
      case 'OrchestratorCompleted':
        break;
      case 'ExecutionStarted':
      case 'TaskScheduled':
      case 'EventRaised':
      case 'SubOrchestrationInstanceCreated':
        lines.push(`${e.type}:${e.name}`);
        break;
      case 'ExecutionCompleted':
        lines.push(`${e.type}:${e.status}`);
        break;
      case 'EntityOperationCalled':
      case 'EntityOperationSignaled':
        lines.push(`${e.type}:${e.entityId}:${e.operation}`);
        break;
      default:
        lines.push(e.type);
    }
  }
  return lines;
}

/** How many history lines start with `prefix` (`TaskScheduled`, `TaskScheduled:F1`...). */
export function countEvents(history: readonly string[], prefix: string): number {
  return history.filter((line) => line === prefix || line.startsWith(`${prefix}:`)).length;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** History lines on one line, runs of the same line folded: `TaskScheduled:MeasureItem x20`. */
export function compactHistory(lines: readonly string[]): string {
  const out: string[] = [];
  for (let i = 0; i < lines.length; ) {
    let j = i + 1;
    while (j < lines.length && lines[j] === lines[i]) j++;
    out.push(j - i > 1 ? `${lines[i]} x${j - i}` : lines[i]!);
    i = j;
  }
  return out.join(', ');
}
