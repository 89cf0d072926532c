/**
 * Helpers for executor unit tests: hand-made histories built with the event factories, no Redis.
 */
import {
  type ExecutionResult,
  type HistoryEvent,
  type OrchestratorFunction,
  Registry,
  executeOrchestration,
  newExecutionStartedEvent,
  newOrchestratorStartedEvent,
} from '../index.js';

export const INSTANCE_ID = 'order-42';

/** Episode clock: `at(0)` is the first episode's OrchestratorStarted timestamp, `at(n)` is n seconds later. */
export const T0 = Date.UTC(2026, 0, 15, 9, 0, 0);
export const at = (seconds: number): number => T0 + seconds * 1000;

/** F1 -> F2 -> F3 -> F4, each given the previous result. */
export const chain: OrchestratorFunction = function* (ctx, input: string) {
  const a = yield ctx.callActivity('F1', input);
  const b = yield ctx.callActivity('F2', a);
  const c = yield ctx.callActivity('F3', b);
  return yield ctx.callActivity('F4', c);
};

export function registryOf(name: string, fn: OrchestratorFunction): Registry {
  return new Registry().addOrchestrator(name, fn);
}

/** The inbox of a first episode: OrchestratorStarted + ExecutionStarted. */
export function startEvents(name: string, input?: unknown, timestamp = T0): HistoryEvent[] {
  return [newOrchestratorStartedEvent(timestamp), newExecutionStartedEvent(name, INSTANCE_ID, input, { timestamp })];
}

/**
 * Runs successive episodes the way the backend does: each sees the past history plus its inbox, and
 * history then grows by the inbox and the episode's action events.
 */
export class EpisodeRunner {
  history: HistoryEvent[] = [];
  constructor(private readonly registry: Registry) {}

  async run(inbox: HistoryEvent[]): Promise<ExecutionResult> {
    const result = await executeOrchestration(this.registry, this.history, inbox);
    this.history = [...this.history, ...inbox, ...result.actionEvents];
    return result;
  }
}
