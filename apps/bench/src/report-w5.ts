/** W5 (one Redis against a 3-master Redis Cluster) in the results: its targets and its Markdown section. */
import { fmt, fmtRatio } from './stats.js';
import type { W5Arm, W5Result } from './workloads/w5.js';

const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;

export function w5Targets(w: W5Result): { what: string; value: number; op: '<='; target: number }[] {
  return [
    { what: 'Redis CPU per activity, cluster / single (W1, median of the pairs of runs)', value: w.clusterRedisCpuRatio, op: '<=', target: 1.3 },
    { what: 'busiest master commands / mean (W1)', value: w.masterSpread, op: '<=', target: 1.25 },
  ];
}

const perMaster = (m: Record<string, number>) =>
  Object.values(m)
    .map((v) => fmt(v, 0))
    .join(' / ');

export function w5Section(w: W5Result): string[] {
  const L: string[] = [];
  const s: W5Arm = w.single;
  const c: W5Arm = w.cluster;
  L.push('');
  L.push(`## W5: one Redis vs a 3-master Redis Cluster (task hubs of ${w.partitions} partition${w.partitions === 1 ? '' : 's'})`);
  L.push('');
  L.push(w.how);
  L.push('');
  L.push(row(['', 'single', 'cluster (3 masters)', 'cluster / single']));
  L.push(row(['---', '---:', '---:', '---:']));
  L.push(row([`W1 instances/s (${fmt(w.w1Instances, 0)} × 4)`, fmt(s.w1InstancesPerSec, 0), fmt(c.w1InstancesPerSec, 0), fmtRatio(w.clusterInstancesRatio)]));
  L.push(row(['W1 Redis CPU µs / activity (summed over the masters)', fmt(s.w1RedisCpuUsPerActivity, 1), fmt(c.w1RedisCpuUsPerActivity, 1), fmtRatio(w.clusterRedisCpuRatioOfMedians)]));
  L.push(row(['W1 Redis CPU per activity, cluster / single, per pair of runs (median)', '', '', `${w.clusterRedisCpuRatioPairs.map((x) => fmt(x, 2)).join(', ')} (${fmtRatio(w.clusterRedisCpuRatio)})`]));
  L.push(row(['W1 commands / activity (all masters)', fmt(s.w1CommandsPerActivity, 2), fmt(c.w1CommandsPerActivity, 2), fmtRatio(c.w1CommandsPerActivity / s.w1CommandsPerActivity)]));
  L.push(row(['W1 commands per master (one run)', perMaster(s.w1CommandsPerMaster), perMaster(c.w1CommandsPerMaster), '']));
  L.push(row(['W1 busiest master / mean (spread)', '1', fmt(c.w1Spread, 2), '']));
  L.push(row([`W2 N=${fmt(w.w2N, 0)} ms`, fmt(s.w2Ms, 0), fmt(c.w2Ms, 0), fmtRatio(c.w2Ms / s.w2Ms)]));
  L.push(row(['W2 Redis CPU µs / activity (summed over the masters; ratio: median of the pairs)', fmt(s.w2RedisCpuUsPerActivity, 1), fmt(c.w2RedisCpuUsPerActivity, 1), fmtRatio(w.clusterRedisCpuRatioW2)]));
  L.push(row(['W2 commands per master (one run)', perMaster(s.w2CommandsPerMaster), perMaster(c.w2CommandsPerMaster), '']));
  L.push(row(['W2 busiest master / mean (one instance: one slot)', '1', fmt(c.w2Spread, 2), '']));
  L.push('');
  L.push('Capacity model for the cluster (one core per master, enough worker cores), from the cluster\'s W1 figures:');
  L.push('');
  L.push(row(['masters', 'Redis CPU ms / instance (all masters)', 'spread', 'instances/s (busiest master saturated)', 'if perfectly even', 'worker cores needed']));
  L.push(row(['---:', '---:', '---:', '---:', '---:', '---:']));
  for (const m of [w.model.masters3, w.model.masters6]) {
    L.push(row([m.masters, fmt(m.redisCpuMsPerInstance, 3), fmt(m.spread, 2), m.error ? `n/a (${m.error})` : fmt(m.instancesPerSec, 0), fmt(m.evenInstancesPerSec, 0), fmt(m.workerCoresNeeded, 1)]));
  }
  const failed = w.runsDetail.filter((r) => r.errors > 0 || r.error);
  if (failed.length) {
    L.push('');
    for (const r of failed) L.push(`- W5 ${r.workload} ${r.mode}: ${r.error ?? `${r.errors} wrong results`} (left out of the medians)`);
  }
  return L;
}
