/**
 * Small helpers for the orchestration API tests: polling for a condition (never for a duration),
 * gates that hold an activity until the test releases it, and history queries.
 */
import type { HistoryEvent, OrchestrationContext } from '@durabull/core';
import type { DeliverResult } from '@durabull/redis';
import type { DurabullWorker } from '@durabull/worker';
import type { TestHub } from './hub.js';

/** Polls `check` every 10 ms until it returns true; fails with `what` after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Sleeps until the wall clock has passed `t` (epoch ms). */
export async function sleepUntil(t: number): Promise<void> {
  const left = t - Date.now();
  if (left > 0) await new Promise((r) => setTimeout(r, left + 5));
}

/**
 * Holds an activity until the test releases it. `entered` resolves when the activity started.
 * Call `releaseAll()` in afterEach, so a failing test never leaves a worker waiting on a gate.
 */
export class Gate {
  private static readonly open = new Set<Gate>();
  private release!: () => void;
  private enter!: () => void;
  readonly opened: Promise<void>;
  readonly entered: Promise<void>;
  constructor() {
    this.opened = new Promise<void>((r) => (this.release = r));
    this.entered = new Promise<void>((r) => (this.enter = r));
    Gate.open.add(this);
  }
  /** For the activity: says it started, then waits for the release. */
  async pass(): Promise<void> {
    this.enter();
    await this.opened;
  }
  open(): void {
    Gate.open.delete(this);
    this.release();
  }
  static releaseAll(): void {
    for (const g of [...Gate.open]) g.open();
  }
}

export type EventOf<T extends HistoryEvent['type']> = Extract<HistoryEvent, { type: T }>;

/** The events of one type, typed. */
export function eventsOf<T extends HistoryEvent['type']>(history: readonly HistoryEvent[] | undefined, type: T): EventOf<T>[] {
  return (history ?? []).filter((e): e is EventOf<T> => e.type === type);
}

/** History without what differs between two runs (times, execution and instance ids), to compare two runs. */
export function historyShape(history: readonly HistoryEvent[] | undefined): string[] {
  return (history ?? []).map((e) => JSON.stringify({ ...e, timestamp: 0, executionId: 0, instanceId: 0 }));
}

/** A chain of three `Double` activities on its input. */
export function* doubleThrice(ctx: OrchestrationContext, x: number): Generator<unknown, number, number> {
  for (let i = 0; i < 3; i++) x = yield ctx.callActivity('Double', x);
  return x;
}

/** A chain of `n` `Double` activities from 1: returns 2^n. */
export function* doublings(ctx: OrchestrationContext, n: number): Generator<unknown, number, number> {
  let x = 1;
  for (let k = 0; k < n; k++) x = yield ctx.callActivity('Double', x);
  return x;
}

export function typesOf(history: readonly HistoryEvent[] | undefined): string[] {
  return (history ?? []).map((e) => e.type);
}

/** The history of the instance's current execution. */
export async function historyOf(th: TestHub, id: string): Promise<HistoryEvent[]> {
  return th.client.backend.getHistory(id);
}

/** True when no episode of the instance is queued or running (`scheduled = 0`) and it is not finished. */
export async function isIdle(th: TestHub, id: string): Promise<boolean> {
  const st = await th.client.backend.getState(id);
  return !!st && !st.scheduled && (st.runtimeStatus === 'Running' || st.runtimeStatus === 'Suspended');
}

/** Waits until the instance has committed an episode that left it blocked with nothing queued. */
export async function waitIdle(th: TestHub, id: string, what = `instance '${id}' is blocked and idle`): Promise<void> {
  await waitUntil(what, () => isIdle(th, id));
}

/** One call of a worker's `backend.deliverEvent` (an activity result or a timer firing) and how it ended. */
export interface Delivery {
  instanceId: string;
  executionId: string;
  seq: number | undefined;
  type: HistoryEvent['type'];
  result?: DeliverResult;
  error?: unknown;
}

/**
 * Records every event the worker delivers to instances, with the outcome: `delivered` (with or
 * without a wake), `duplicate`, `stale` (an older execution), or the error (a finished instance).
 * Install it before the events happen. Independent of how BullMQ keeps finished jobs.
 */
export function recordDeliveries(worker: DurabullWorker): Delivery[] {
  const log: Delivery[] = [];
  const backend = worker.backend;
  const deliver = backend.deliverEvent.bind(backend);
  backend.deliverEvent = async (instanceId, executionId, kind, seq, event, opts) => {
    const d: Delivery = { instanceId, executionId, seq, type: event.type };
    try {
      const result = await deliver(instanceId, executionId, kind, seq, event, opts);
      log.push({ ...d, result });
      return result;
    } catch (error) {
      log.push({ ...d, error });
      throw error;
    }
  };
  return log;
}

/** Waits until the timer `seq` of that execution has fired and its delivery finished; returns it. */
export async function waitTimerFired(log: Delivery[], instanceId: string, executionId: string, seq: number): Promise<Delivery> {
  const find = () => log.find((d) => d.type === 'TimerFired' && d.instanceId === instanceId && d.executionId === executionId && d.seq === seq);
  await waitUntil(`timer ${seq} of ${instanceId}/${executionId} fired`, () => find() !== undefined);
  return find()!;
}

/** The sequence number (taskId) of every TaskScheduled of activity `name`. */
export function scheduledIds(history: readonly HistoryEvent[] | undefined, name: string): number[] {
  return eventsOf(history, 'TaskScheduled')
    .filter((e) => e.name === name)
    .map((e) => e.taskId);
}
