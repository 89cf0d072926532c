/**
 * @durabull/worker: orchestrator and activity workers.
 *
 * ```ts
 * const registry = new Registry()
 *   .addActivity('SayHello', async (name: string) => `Hello ${name}!`)
 *   .addOrchestrator('Hello', function* (ctx) { return yield ctx.callActivity('SayHello', 'Tokyo'); });
 * const worker = await new DurabullWorker({ connection: 'redis://127.0.0.1:6379', registry }).start();
 * worker.closeOnSignals();
 * ```
 */
export { DurabullWorker, type DurabullWorkerOptions, type WorkerStats } from './durabull-worker.js';
export { LogMessages } from './execution-log.js';
export { DurabullMetrics } from './metrics.js';
export { TracingInstrumentation, TRACER_NAME, ATTR as SPAN_ATTRIBUTES } from './tracing.js';
export {
  type WorkerInstrumentation,
  type EpisodeObserver,
  type ActivityObserver,
  type EpisodeStart,
  type ActivityStart,
  type TimerFired,
  type RepairKind,
  type EpisodeMode,
  type EpisodeOutcome,
  noopInstrumentation,
  noopEpisode,
  noopActivity,
  combineInstrumentations,
} from './instrumentation.js';
