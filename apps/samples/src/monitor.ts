/**
 * Monitor (generator style): an eternal orchestration that polls a status activity every interval
 * until a condition holds or the monitor expires. Each round is one execution: check, sleep on a
 * durable timer, then `continueAsNew` with the next round's input, so the history never grows
 * beyond one round however long the monitor runs. `setCustomStatus` tells clients where it is.
 *
 *   JobMonitor(job):  if expired: return Expired
 *                     status = GetJobStatus(job)
 *                     if status done: SendAlert(job); return Completed
 *                     timer(now + interval); continueAsNew(next round)
 *
 * The sample watches two jobs: one that finishes at its 4th poll, one that never does and expires.
 */
import { type OrchestrationContext, Registry, defineActivity, defineOrchestrator } from '@durabull/core';
import { type InstanceReport, type SampleOptions, countEvents, sleep, withHarness } from './harness.js';

export interface MonitorInput {
  jobId: string;
  pollIntervalMs: number;
  /** How long the monitor may run, from its first execution. */
  ttlMs: number;
  /** Set by the monitor itself when it continues as new. */
  round?: number;
  expiresAt?: number;
  lastProgress?: number;
}

export interface MonitorOutput {
  jobId: string;
  outcome: 'Completed' | 'Expired';
  /** Status checks made, one per execution. */
  polls: number;
  lastProgress: number;
}

export interface JobStatus {
  state: 'Running' | 'Completed';
  progress: number;
}

/**
 * A stand-in for an external job service: `export-*` jobs gain 25% per status check; `stuck-*`
 * jobs hang at 40%.
 */
export const GetJobStatus = defineActivity('GetJobStatus', async (q: { jobId: string; poll: number }): Promise<JobStatus> => {
  const progress = q.jobId.startsWith('stuck') ? 40 : Math.min(100, q.poll * 25);
  return { state: progress >= 100 ? 'Completed' : 'Running', progress };
});
export const SendAlert = defineActivity('SendAlert', async (a: { jobId: string; polls: number }) => `alert: ${a.jobId} done after ${a.polls} polls`);

export const JobMonitor = defineOrchestrator('JobMonitor', function* (ctx: OrchestrationContext, input: MonitorInput): Generator<unknown, MonitorOutput | undefined, any> {
  const now = ctx.currentUtcDateTime.getTime();
  const round = input.round ?? 1;
  const expiresAt = input.expiresAt ?? now + input.ttlMs;
  if (now >= expiresAt) {
    ctx.setCustomStatus({ round, state: 'Expired' });
    return { jobId: input.jobId, outcome: 'Expired', polls: round - 1, lastProgress: input.lastProgress ?? 0 };
  }
  const status: JobStatus = yield ctx.callActivity(GetJobStatus, { jobId: input.jobId, poll: round });
  if (status.state === 'Completed') {
    yield ctx.callActivity(SendAlert, { jobId: input.jobId, polls: round });
    ctx.setCustomStatus({ round, state: 'Completed', progress: status.progress });
    return { jobId: input.jobId, outcome: 'Completed', polls: round, lastProgress: status.progress };
  }
  ctx.setCustomStatus({ round, state: 'Waiting', progress: status.progress });
  yield ctx.createTimer(new Date(now + input.pollIntervalMs));
  ctx.continueAsNew({ ...input, round: round + 1, expiresAt, lastProgress: status.progress });
  return undefined;
});

export const registry = new Registry().add(GetJobStatus, SendAlert, JobMonitor);

export interface MonitorReport {
  instance: InstanceReport<MonitorOutput>;
  /** The execution the instance started with, and the one it ended in. */
  firstExecutionId: string;
  lastExecutionId: string;
  /** Times the monitor continued as new (executions - 1), from the last execution's input. */
  continuedAsNew: number;
  /** Status checks in the last execution's history (at most one: the history holds one round). */
  checksInLastHistory: number;
  /** Distinct custom statuses a client saw while polling (a sample, not every round). */
  customStatusesSeen: string[];
}

export interface MonitorResult {
  completed: MonitorReport;
  expired: MonitorReport;
}

export async function run(opts: SampleOptions & { pollIntervalMs?: number }): Promise<MonitorResult> {
  const pollIntervalMs = opts.pollIntervalMs ?? 150;
  return withHarness(opts, registry, async (h) => {
    const watch = async (jobId: string, ttlMs: number): Promise<MonitorReport> => {
      const id = await h.client.startNew(JobMonitor, { input: { jobId, pollIntervalMs, ttlMs }, instanceId: h.id(`monitor-${jobId}`) });
      const first = await h.client.getStatus(id);
      const seen = new Set<string>();
      // A client watching the custom status while the monitor runs.
      let done = false;
      const watcher = (async () => {
        while (!done) {
          const s = await h.client.getStatus(id);
          if (s?.customStatus !== undefined) {
            const line = JSON.stringify(s.customStatus);
            if (!seen.has(line)) {
              seen.add(line);
              h.log(`${id}: ${s.runtimeStatus} ${line}`);
            }
          }
          await sleep(20);
        }
      })();
      const instance = await h.finish<MonitorOutput>(id).finally(() => (done = true));
      await watcher;
      const last = await h.client.getStatus(id);
      const lastInput = last?.input as MonitorInput | undefined;
      const report: MonitorReport = {
        instance,
        firstExecutionId: first?.executionId ?? '',
        lastExecutionId: last?.executionId ?? '',
        continuedAsNew: (lastInput?.round ?? 1) - 1,
        checksInLastHistory: countEvents(instance.history, 'TaskScheduled:GetJobStatus'),
        customStatusesSeen: [...seen],
      };
      h.log(
        `${id}: ${instance.runtimeStatus} ${JSON.stringify(instance.output)}; continued as new ${report.continuedAsNew} times, ` +
          `${instance.episodes} episodes, last execution's history: ${instance.historyEvents} events`,
      );
      return report;
    };
    h.log(`JobMonitor: poll every ${pollIntervalMs} ms, continue as new each round`);
    const [completed, expired] = await Promise.all([watch('export-42', 30_000), watch('stuck-7', 6 * pollIntervalMs)]);
    return { completed, expired };
  });
}
