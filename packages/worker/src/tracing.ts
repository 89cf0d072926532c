/**
 * OpenTelemetry traces through `@opentelemetry/api` only: the application registers its SDK and
 * exporter (and a propagator, W3C trace context by default), and without one every call here is a
 * no-op. One execution is one trace, whichever processes run it:
 *
 * - the span that started it (`startNew`, or the parent's episode for a sub-orchestration) is stored
 *   as W3C entries in its ExecutionStarted event, and every episode span is a child of it;
 * - each episode's context travels in the jobs its commit writes, so an activity attempt's span (and
 *   the spans of the activity's own calls: it runs inside it) and a timer's span are children of
 *   the episode that scheduled them;
 * - an execution whose start was not traced gets its first episode as the root, recorded in that
 *   episode's OrchestratorStarted event for the later ones.
 *
 * Spans are made from what happens, never from what the code replays: a replayed episode makes one
 * episode span and no span for the activities it replays.
 */
import { readFileSync } from 'node:fs';
import { type Context, ProxyTracerProvider, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, context, propagation, trace } from '@opentelemetry/api';
import type { ExecutionStartedEvent, HistoryEvent, OrchestrationSession } from '@durabull/core';
import type { LoadedEpisode } from '@durabull/redis';
import {
  type ActivityObserver,
  type ActivityStart,
  type EpisodeObserver,
  type EpisodeStart,
  type TimerFired,
  type WorkerInstrumentation,
  noopActivity,
  noopEpisode,
  outcomeOf,
} from './instrumentation.js';

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/** The tracer's name: filter or sample on it. */
export const TRACER_NAME = '@durabull/worker';

/** Span attribute names. */
export const ATTR = {
  hub: 'durabull.hub',
  instanceId: 'durabull.instance_id',
  executionId: 'durabull.execution_id',
  orchestrator: 'durabull.orchestrator',
  episode: 'durabull.episode',
  mode: 'durabull.mode',
  outcome: 'durabull.outcome',
  activity: 'durabull.activity',
  taskId: 'durabull.task_id',
  attempt: 'durabull.attempt',
  eager: 'durabull.eager',
} as const;

/** A trace context as W3C entries (empty when no propagator is registered or the span is not sampled). */
function carrierOf(ctx: Context): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

function contextOf(carrier: Record<string, string> | undefined): Context | undefined {
  if (!carrier) return undefined;
  const ctx = propagation.extract(ROOT_CONTEXT, carrier);
  return trace.getSpanContext(ctx) ? ctx : undefined;
}

/** The execution's ExecutionStarted: near the head of its history, or (first episode) of its inbox. */
function startedEvent(loaded: LoadedEpisode, session: OrchestrationSession): ExecutionStartedEvent | undefined {
  const fromSession = session.startedEvent;
  if (fromSession) return fromSession;
  for (const list of [loaded.history, loaded.inbox.map((m) => m.event)] as HistoryEvent[][]) {
    for (let i = 0; i < Math.min(list.length, 4); i++) if (list[i]!.type === 'ExecutionStarted') return list[i] as ExecutionStartedEvent;
  }
  return undefined;
}

function fail(span: Span, err: unknown): void {
  if (err instanceof Error) span.recordException(err);
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
}

/** Spans of one worker (its hub). */
export class TracingInstrumentation implements WorkerInstrumentation {
  /** The root context of an execution, kept with the session that goes on with its code. */
  private readonly roots = new WeakMap<OrchestrationSession, Context>();

  constructor(private readonly hub: string) {}

  private get tracer() {
    return trace.getTracer(TRACER_NAME, VERSION);
  }

  /**
   * False while no OpenTelemetry SDK is registered (the API's global provider has no delegate):
   * then no span is made at all, which costs next to nothing on the hot path.
   */
  private get enabled(): boolean {
    const provider = trace.getTracerProvider();
    return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer(TRACER_NAME, VERSION) !== undefined;
  }

  episode(e: EpisodeStart): EpisodeObserver {
    if (!this.enabled) {
      // No SDK here: the jobs still carry the execution's root, for the workers that trace.
      const carried = startedEvent(e.loaded, e.session)?.trace;
      return carried ? { trace: carried, committed() {}, dropped() {} } : noopEpisode;
    }
    let root = this.roots.get(e.session);
    if (!root) {
      const started = startedEvent(e.loaded, e.session);
      root = contextOf(started?.trace);
      // Not traced at the start: the first episode's span is the root, recorded in its OrchestratorStarted.
      const first = e.loaded.history[0];
      if (!root && first?.type === 'OrchestratorStarted') root = contextOf(first.trace);
    }
    const span = this.tracer.startSpan(
      `episode ${e.orchestrator}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [ATTR.hub]: this.hub,
          [ATTR.instanceId]: e.instanceId,
          [ATTR.executionId]: e.executionId,
          [ATTR.orchestrator]: e.orchestrator,
          [ATTR.episode]: e.episode,
          [ATTR.mode]: e.mode,
        },
      },
      root ?? ROOT_CONTEXT,
    );
    const own = trace.setSpan(ROOT_CONTEXT, span);
    const carrier = carrierOf(own);
    if (!root && carrier && e.mode === 'started') {
      (e.prefix[0] as { trace?: Record<string, string> }).trace = carrier;
      root = own;
    }
    if (root) this.roots.set(e.session, root);
    let ended = false;
    return {
      trace: carrier,
      committed: (result) => {
        if (ended) return;
        ended = true;
        span.setAttribute(ATTR.outcome, outcomeOf(result));
        if (result.status === 'Failed') span.setStatus({ code: SpanStatusCode.ERROR, message: result.failure ? `${result.failure.errorName}: ${result.failure.message}` : 'failed' });
        span.end();
      },
      dropped: (outcome, err) => {
        if (ended) return;
        ended = true;
        span.setAttribute(ATTR.outcome, outcome);
        if (err !== undefined) fail(span, err);
        span.end();
      },
    };
  }

  activity(a: ActivityStart): ActivityObserver {
    if (!this.enabled) return noopActivity;
    const span = this.tracer.startSpan(
      `activity ${a.activity}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [ATTR.hub]: this.hub,
          [ATTR.instanceId]: a.instanceId,
          [ATTR.executionId]: a.executionId,
          [ATTR.activity]: a.activity,
          [ATTR.taskId]: a.taskId,
          [ATTR.attempt]: a.attempt,
          [ATTR.eager]: a.eager,
        },
      },
      contextOf(a.trace) ?? ROOT_CONTEXT,
    );
    const inside = trace.setSpan(context.active(), span);
    let ended = false;
    return {
      run: (fn) => context.with(inside, fn),
      done: (outcome, err) => {
        if (ended) return;
        ended = true;
        span.setAttribute(ATTR.outcome, outcome);
        if (outcome === 'failed') fail(span, err);
        span.end();
      },
    };
  }

  timerFired(t: TimerFired): void {
    if (!this.enabled) return;
    // From when its job was queued (the episode that created it) to now, under that episode.
    const span = this.tracer.startSpan(
      'timer',
      {
        kind: SpanKind.CONSUMER,
        startTime: t.createdAt ?? t.fireAt,
        attributes: { [ATTR.hub]: this.hub, [ATTR.instanceId]: t.instanceId, [ATTR.executionId]: t.executionId, [ATTR.taskId]: t.taskId, 'durabull.fire_at': new Date(t.fireAt).toISOString() },
      },
      contextOf(t.trace) ?? ROOT_CONTEXT,
    );
    span.end();
  }

  repaired(): void {}
}
