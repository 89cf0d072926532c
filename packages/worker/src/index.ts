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
