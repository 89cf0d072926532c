/**
 * Fan-out/fan-in (async style): F1 lists N work items, F2 runs on every item in parallel
 * (`ctx.all`), F3 gets the sum.
 *
 *   items = ListWorkItems(n); sizes = all(items.map(MeasureItem)); return ReportTotal(sum(sizes))
 *
 * The orchestrator replays a handful of times whatever N is: the N results are counted in Redis and
 * wake it once, when the last one is in.
 */
import { Registry, defineActivity, defineOrchestrator } from '@durabull/core';
import { type InstanceReport, type SampleOptions, countEvents, withHarness } from './harness.js';

export interface WorkItem {
  name: string;
  index: number;
}

/** F1: the work to do. */
export const ListWorkItems = defineActivity('ListWorkItems', async (count: number): Promise<WorkItem[]> =>
  Array.from({ length: count }, (_, i) => ({ name: `part-${String(i + 1).padStart(2, '0')}`, index: i + 1 })),
);
/** F2: the work on one item (here: its "size", the square of its index). */
export const MeasureItem = defineActivity('MeasureItem', async (item: WorkItem) => item.index * item.index);
/** F3: reports the total. */
export const ReportTotal = defineActivity('ReportTotal', async (r: { items: number; total: number }) => `${r.items} items, total size ${r.total}`);

export const FanOutFanIn = defineOrchestrator('FanOutFanIn', async (ctx, count: number) => {
  const items = await ctx.callActivity(ListWorkItems, count);
  const sizes = await ctx.all(items.map((item) => ctx.callActivity(MeasureItem, item)));
  const total = sizes.reduce((a, b) => a + b, 0);
  const report = await ctx.callActivity(ReportTotal, { items: items.length, total });
  return { total, report };
});

export const registry = new Registry().add(ListWorkItems, MeasureItem, ReportTotal, FanOutFanIn);

export interface FanOutFanInResult {
  items: number;
  instance: InstanceReport<{ total: number; report: string }>;
  /** MeasureItem tasks in the history: one per item, all scheduled in one episode. */
  parallelTasks: number;
}

export async function run(opts: SampleOptions & { items?: number }): Promise<FanOutFanInResult> {
  const items = opts.items ?? 20;
  return withHarness(opts, registry, async (h) => {
    h.log(`FanOutFanIn: ListWorkItems(${items}), MeasureItem on each in parallel, ReportTotal of the sum`);
    const id = await h.client.startNew(FanOutFanIn, { input: items, instanceId: h.id('fan-out') });
    const instance = await h.finish<{ total: number; report: string }>(id);
    const parallelTasks = countEvents(instance.history, 'TaskScheduled:MeasureItem');
    h.log(`${id}: ${instance.runtimeStatus} ${JSON.stringify(instance.output)} (${parallelTasks} parallel tasks, ${instance.episodes} episodes)`);
    return { items, instance, parallelTasks };
  });
}
