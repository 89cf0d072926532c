/**
 * The points where a worker tells what it does: an episode, an activity attempt, a timer firing, a
 * sweep repair. Metrics (prom-client), traces (OpenTelemetry) and the dashboard's per-minute
 * counters are instrumentations; a worker calls all of its own through one {@link WorkerInstrumentation}.
 */
import type { ExecutionResult, HistoryEvent, OrchestrationSession } from '@durabull/core';
import type { InstanceState, LoadedEpisode } from '@durabull/redis';

/** How an episode's code got to where it stopped. */
export type EpisodeMode =
  /** The execution's first episode: nothing to replay. */
  | 'started'
  /** The code replayed the history (from Redis or from this worker's cache). */
  | 'replayed'
  /** The code went on from where this worker's last commit left it (a kept session). */
  | 'resumed';

/** How an episode ended. */
export type EpisodeOutcome =
  /** Committed, the code waiting for something. */
  | 'running'
  | 'completed'
  | 'failed'
  | 'continued_as_new'
  | 'terminated'
  /** Not committed: another worker's commit came first, or the job was behind the instance. */
  | 'stale'
  /** Not committed: this worker's cached state was behind; the episode runs again another way. */
  | 'refused'
  /** Not committed: it threw (the job is retried). */
  | 'error';

/** An episode, once its input is loaded. */
export interface EpisodeStart {
  hub: string;
  instanceId: string;
  executionId: string;
  orchestrator: string;
  /** Its number in the execution (1 for the first). */
  episode: number;
  mode: EpisodeMode;
  /** `performance.now()` when the worker began it (before the load). */
  startedAt: number;
  /** The instance as loaded (its `createdAt` is when the execution started). */
  state: InstanceState;
  loaded: LoadedEpisode;
  /** The session that runs the code (kept between episodes with extended sessions). */
  session: OrchestrationSession;
  /**
   * The events the episode stores first (its OrchestratorStarted): an instrumentation may add to
   * them before the commit (the trace context of a first episode).
   */
  prefix: HistoryEvent[];
}

/** What an instrumentation does with one episode. */
export interface EpisodeObserver {
  /** Trace context (W3C entries) for the jobs the episode's commit writes, if any. */
  readonly trace?: Record<string, string> | undefined;
  /** The commit took effect. */
  committed(result: ExecutionResult): void;
  /** The episode ended without a commit. */
  dropped(outcome: 'stale' | 'refused' | 'error', err?: unknown): void;
}

/** An activity attempt, before it runs. */
export interface ActivityStart {
  hub: string;
  instanceId: string;
  executionId: string;
  taskId: number;
  activity: string;
  attempt: number;
  /** When the task was queued (epoch ms), for the schedule-to-start latency; undefined when not known. */
  scheduledAt: number | undefined;
  /** Run in place right after the episode that scheduled it (not taken from the queue). */
  eager: boolean;
  /** The trace context the job carries (the scheduling episode's). */
  trace: Record<string, string> | undefined;
}

/** What an instrumentation does with one activity attempt. */
export interface ActivityObserver {
  /** Runs the activity function (inside the attempt's span, so the function's own spans nest under it). */
  run<T>(fn: () => T): T;
  /** The function returned, or threw (`failed`). */
  done(outcome: 'completed' | 'failed', err?: unknown): void;
}

/** A durable timer that fired (its job ran). */
export interface TimerFired {
  hub: string;
  instanceId: string;
  executionId: string;
  taskId: number;
  /** When it was due, and when its job was queued (epoch ms). */
  fireAt: number;
  createdAt: number | undefined;
  trace: Record<string, string> | undefined;
}

/** What the sweep repaired: outbox entries queued, stuck instances re-queued (`idle`, `lost-wake`), lost tasks. */
export type RepairKind = 'outbox' | 'idle' | 'lost-wake' | 'lost-task';

/**
 * The hooks a worker calls. Every method is called on the worker's hot path, so an implementation
 * keeps them cheap and never throws; anything that talks to the network runs on its own schedule
 * (`start` / `close`).
 */
export interface WorkerInstrumentation {
  episode(e: EpisodeStart): EpisodeObserver;
  activity(a: ActivityStart): ActivityObserver;
  timerFired(t: TimerFired): void;
  repaired(kind: RepairKind, count: number): void;
  /** Called once the worker is started. */
  start?(): Promise<void> | void;
  /** Called when the worker closes, after its last job (flush what is buffered). */
  close?(): Promise<void> | void;
}

/** An episode observer that does nothing (an instrumentation may return it; a combination skips it). */
export const noopEpisode: EpisodeObserver = Object.freeze({ committed() {}, dropped() {} });
/** An activity observer that does nothing (an instrumentation may return it; a combination skips it). */
export const noopActivity: ActivityObserver = Object.freeze({ run: <T>(fn: () => T): T => fn(), done() {} });

/** Does nothing: the default of a worker without metrics, traces or charts. */
export const noopInstrumentation: WorkerInstrumentation = {
  episode: () => noopEpisode,
  activity: () => noopActivity,
  timerFired() {},
  repaired() {},
};

/** The outcome label of a committed episode. */
export function outcomeOf(result: ExecutionResult): EpisodeOutcome {
  switch (result.status) {
    case 'Running':
      return 'running';
    case 'Completed':
      return 'completed';
    case 'Failed':
      return 'failed';
    case 'ContinuedAsNew':
      return 'continued_as_new';
    default:
      return 'terminated';
  }
}

/** Several instrumentations as one: each hook calls every one in order. */
export function combineInstrumentations(list: readonly WorkerInstrumentation[]): WorkerInstrumentation {
  if (list.length === 0) return noopInstrumentation;
  if (list.length === 1) return list[0]!;
  return {
    // The observers that do nothing are left out: with one left (metrics, no tracing SDK), it is
    // returned as it is, with no wrapper to allocate.
    episode(e) {
      let one: EpisodeObserver | undefined;
      let obs: EpisodeObserver[] | undefined;
      for (const i of list) {
        const o = i.episode(e);
        if (o === noopEpisode) continue;
        if (one === undefined) one = o;
        else (obs ??= [one]).push(o);
      }
      if (!obs) return one ?? noopEpisode;
      const all = obs;
      return {
        trace: all.find((o) => o.trace)?.trace,
        committed: (r) => all.forEach((o) => o.committed(r)),
        dropped: (outcome, err) => all.forEach((o) => o.dropped(outcome, err)),
      };
    },
    activity(a) {
      let one: ActivityObserver | undefined;
      let obs: ActivityObserver[] | undefined;
      for (const i of list) {
        const o = i.activity(a);
        if (o === noopActivity) continue;
        if (one === undefined) one = o;
        else (obs ??= [one]).push(o);
      }
      if (!obs) return one ?? noopActivity;
      const all = obs;
      return {
        run: <T>(fn: () => T): T => all.reduceRight<() => T>((inner, o) => () => o.run(inner), fn)(),
        done: (outcome, err) => all.forEach((o) => o.done(outcome, err)),
      };
    },
    timerFired: (t) => list.forEach((i) => i.timerFired(t)),
    repaired: (kind, n) => list.forEach((i) => i.repaired(kind, n)),
    start: async () => {
      for (const i of list) await i.start?.();
    },
    close: async () => {
      for (const i of list) await i.close?.();
    },
  };
}
