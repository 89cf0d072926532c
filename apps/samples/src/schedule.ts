/**
 * Schedule (async style): a report that runs on a schedule, with an export activity that has a
 * heartbeat timeout and a retry policy.
 *
 *   schedule 'nightly-report':  every tick (in production a cron: '0 3 * * *' in Europe/Paris)
 *                               start NightlyReport; skip a tick while the last report still runs
 *   NightlyReport(day):         rows = ExportRows(day)   (heartbeat timeout, 3 attempts)
 *                               return Publish(rows)
 *   ExportRows:                 exports 10 batches, heartbeating { batch } after each; a retry
 *                               resumes from ctx.lastHeartbeatDetails instead of starting over
 *
 * The first attempt of each export stalls after 4 batches (a stand-in for a connection that
 * hangs): it stops heartbeating, times out (ActivityTimeoutError), and the retry picks up at batch
 * 4. The sample lets the schedule tick a few times (every second here), triggers one report by
 * hand, pauses the schedule, and starts one more report for later with `startAt`.
 */
import { type OrchestrationContext, Registry, defineActivity, defineOrchestrator } from '@durabull/core';
import { type InstanceReport, type SampleOptions, sleep, withHarness } from './harness.js';

export interface ExportResult {
  batches: number;
  /** The batch the attempt that finished started from (0: it ran from the start). */
  resumedFrom: number;
}

const BATCHES = 10;
/** An attempt that goes this long without a heartbeat is given up on. */
export const HEARTBEAT_TIMEOUT_MS = 300;

export const ExportRows = defineActivity('ExportRows', async (day: string, ctx): Promise<ExportResult> => {
  const from = (ctx.lastHeartbeatDetails as { batch: number } | undefined)?.batch ?? 0;
  for (let batch = from; batch < BATCHES; batch++) {
    // A first attempt hangs after 4 batches, until its heartbeat timeout aborts its signal.
    if (from === 0 && batch === 4) await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
    if (ctx.signal.aborted) throw ctx.signal.reason;
    await sleep(5); // export one batch of `day`
    ctx.heartbeat({ batch: batch + 1 });
  }
  return { batches: BATCHES, resumedFrom: from };
});

export const Publish = defineActivity('Publish', async (r: { day: string; rows: ExportResult }) => `report ${r.day}: ${r.rows.batches} batches (resumed at ${r.rows.resumedFrom})`);

export const NightlyReport = defineOrchestrator('NightlyReport', async (ctx: OrchestrationContext, day: string) => {
  const rows = await ctx.callActivityWithRetry(ExportRows, { maxNumberOfAttempts: 3, firstRetryIntervalMs: 50 }, day, { heartbeatTimeoutMs: HEARTBEAT_TIMEOUT_MS });
  return ctx.callActivity(Publish, { day, rows });
});

export const registry = new Registry().add(ExportRows, Publish, NightlyReport);

export interface ScheduleResult {
  scheduleId: string;
  /** The reports the schedule's ticks started, oldest first, with their ticks. */
  ticked: (InstanceReport<string> & { tick: string })[];
  /** The report `trigger` started. */
  triggered: InstanceReport<string>;
  /** The schedule once paused. */
  paused: boolean;
  started: number;
  /** A report started for later: when it was to start, and when its first episode ran. */
  delayed: { report: InstanceReport<string>; startAt: number; firstEpisodeAt: number };
}

export async function run(opts: SampleOptions & { intervalMs?: number; ticks?: number }): Promise<ScheduleResult> {
  const intervalMs = opts.intervalMs ?? 1000;
  const ticks = opts.ticks ?? 3;
  return withHarness(opts, registry, async (h) => {
    const scheduleId = h.id('nightly-report');
    const s = await h.client.schedules.create({ scheduleId, orchestrator: NightlyReport, input: '2024-06-01', intervalMs, overlap: 'skip' });
    h.log(`schedule ${scheduleId}: every ${intervalMs} ms, next run ${s.nextRunAt?.toISOString()}`);
    // Let it tick a few times.
    const instancesOf = async () => (await h.client.list({ scheduleId })).instances.sort((a, b) => a.schedule!.tick.getTime() - b.schedule!.tick.getTime());
    for (;;) {
      const done = (await instancesOf()).filter((i) => i.runtimeStatus === 'Completed');
      if (done.length >= ticks) break;
      await sleep(50);
    }
    const fired = await h.client.schedules.trigger(scheduleId, { overlap: 'allowAll' });
    h.log(`triggered by hand: ${fired.outcome} ${fired.instanceId}`);
    await h.client.schedules.pause(scheduleId);
    const triggered = await h.finish<string>(fired.instanceId!);
    const ticked = [];
    for (const i of await instancesOf()) {
      if (i.instanceId === fired.instanceId) continue;
      const r = await h.finish<string>(i.instanceId);
      ticked.push({ ...r, tick: i.schedule!.tick.toISOString() });
      h.log(`${i.instanceId} (tick ${i.schedule!.tick.toISOString()}): ${JSON.stringify(r.output)}`);
    }
    const info = (await h.client.schedules.get(scheduleId))!;
    h.log(`paused: ${info.paused}; ${info.started} reports started, ${info.skipped} ticks skipped`);
    await h.client.schedules.delete(scheduleId);

    // A one-off report for later: Pending until its start time.
    const startAt = Date.now() + 500;
    const later = await h.client.startNew(NightlyReport, { input: '2024-06-02', instanceId: h.id('report-later'), startAt });
    h.log(`${later}: ${(await h.client.getStatus(later))?.runtimeStatus} until ${new Date(startAt).toISOString()}`);
    const report = await h.finish<string>(later);
    const history = (await h.client.getStatus(later, { showHistory: true }))?.history ?? [];
    const firstEpisodeAt = history.find((e) => e.type === 'OrchestratorStarted')?.timestamp ?? 0;
    h.log(`${later}: ${report.runtimeStatus} ${JSON.stringify(report.output)}, first episode ${firstEpisodeAt - startAt} ms after its start time`);
    return { scheduleId, ticked, triggered, paused: info.paused, started: info.started, delayed: { report, startAt, firstEpisodeAt } };
  });
}
