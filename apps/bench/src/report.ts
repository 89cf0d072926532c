/**
 * The results: the JSON document (bench-results/latest.json), the targets it is judged against,
 * and the Markdown tables (bench-results/latest.md and the console).
 */
import { fmt, fmtRatio, mb, round } from './stats.js';
import type { W1Result, CommandCounts } from './workloads/w1.js';
import type { W2Point, W2Result } from './workloads/w2.js';
import type { W3Result } from './workloads/w3.js';
import type { W6Result } from './workloads/w6.js';
import { type W4Result, fleetBreakdown, modelSection, w4KeysSection, w4SummaryRows } from './report-w4.js';
import type { W1MetricsResult } from './workloads/w1-metrics.js';
import type { ReplayCheckResult } from './workloads/replay-check.js';
import type { W5Result } from './workloads/w5.js';
import { w5Section, w5Targets } from './report-w5.js';

export interface Machine {
  cpus: number;
  cpuModel: string;
  memGb: number;
  platform: string;
  node: string;
  redisVersion: string;
  bullmq: string;
  ioredis: string;
  /** 1/5/15-minute load averages when the run started and ended (other processes on the machine skew every figure). */
  loadavgStart: number[];
  loadavgEnd: number[];
  /** CPU busy (all CPUs, %) during the second before the run: other processes competing with the bench. */
  busyBeforeStartPct: number;
  /** git commit of the runtime measured, and whether packages/ had uncommitted changes. */
  commit: string;
  packagesDirty: boolean;
}

export interface Persistence {
  appendonly: string;
  appendfsync: string;
  save: string;
  /** true: the bench started this redis-server (temp dir); false: BENCH_REDIS_URL. */
  startedByBench: boolean;
}

export interface Results {
  startedAt: string;
  totalSeconds: number;
  quick: boolean;
  settings: {
    concurrency: number;
    w1Instances: number;
    w2Ns: number[];
    w3: { steps: number; sequenceRuns: number; chainRuns: number };
    w5?: { w1Instances: number; w2N: number; runs: number; warmup: number };
    w6?: { hotSignals: number; senders: number; entities: number; opsEach: number; orchestrations: number; transfers: number; accounts: number };
    w4Ks: number[];
    w4Instances: number;
    w4WarmupPerProcess: number;
    w4lInstances: number;
    w4lSteps: number;
    modelWorkerCores: number;
  };
  machine: Machine;
  redis: { url: string; persistence: Persistence };
  w1?: W1Result;
  w2?: W2Result;
  w3?: W3Result;
  w4?: W4Result;
  w1Metrics?: W1MetricsResult;
  replayCheck?: ReplayCheckResult;
  w6?: W6Result;
  w5?: W5Result;
  errors: Record<string, string>;
  targets: Target[];
  notes: string[];
}

export interface Target {
  workload: string;
  what: string;
  value: number;
  target: number;
  /** `>=` or `<=` (or `<`) */
  op: '>=' | '<=' | '<';
  ok: boolean;
  /** How far from the target: value/target for `<=`, target/value for `>=`; > 1 means missed by that factor. */
  off: number;
}

function target(workload: string, what: string, value: number | undefined, op: Target['op'], t: number): Target {
  const v = value ?? Number.NaN;
  const ok = op === '>=' ? v >= t : op === '<=' ? v <= t : v < t;
  // A target of 0 (nothing may happen) is met exactly or missed by an unbounded factor.
  const off = t === 0 ? (ok ? 0 : Number.POSITIVE_INFINITY) : op === '>=' ? t / v : v / t;
  return { workload, what, value: v, target: t, op, ok, off };
}

function isPoint(p: W2Result[string] | undefined): p is W2Point {
  return !!p && 'ms' in p;
}

/** The targets of the brief, each with how far the run is from it (worst first). */
export function evaluateTargets(r: Results): Target[] {
  const out: Target[] = [];
  if (r.w1) {
    out.push(target('W1', 'instances/s', r.w1.instancesPerSec, '>=', 2000));
    out.push(target('W1', 'instances/s vs baseline', r.w1.ratio, '>=', 0.45));
  }
  if (r.w6) {
    out.push(target('W6', 'hot entity operations/s', r.w6.hotEntityOpsPerSec, '>=', 5000));
    out.push(target('W6', 'hot entity operations per batch', r.w6.hotEntityOpsPerBatch, '>=', 50));
    out.push(target('W6', 'many entities operations/s', r.w6.manyEntitiesOpsPerSec, '>=', 5000));
    out.push(target('W6', 'total balance constant (1 = yes)', r.w6.totalBalanceConstant ? 1 : 0, '>=', 1));
  }
  const n10 = r.w2?.n10000;
  const n100 = r.w2?.n100000;
  // A run that did not produce the sum meets no target of its own, whatever it measured on the way.
  const okPoint = (p: W2Point) => (p.durabull.ok ? p : undefined);
  if (isPoint(n10)) {
    const p = okPoint(n10);
    out.push(target('W2', 'N=10,000 ms', p?.ms, '<=', 2000));
    out.push(target('W2', 'N=10,000 time vs baseline', p?.ratio, '<=', 2.2));
    out.push(target('W2', 'N=10,000 episodes', p?.episodes, '<=', 4));
  }
  if (isPoint(n100)) {
    const p = okPoint(n100);
    out.push(target('W2', 'N=100,000 peak RSS MB', p?.peakRssMb, '<', 1024));
    if (isPoint(n10)) out.push(target('W2', 'N=100,000 time / N=10,000 time', p ? p.ms / n10.ms : undefined, '<=', 12));
  }
  if (r.w5) out.push(...w5Targets(r.w5).map((t) => target('W5', t.what, t.value, t.op, t.target)));
  if (r.w3) {
    out.push(target('W3', 'chain p50 ms', r.w3.chainP50Ms, '<=', 2.5));
    out.push(target('W3', 'chain p99 ms', r.w3.chainP99Ms, '<=', 10));
    out.push(target('W3', 'ms/step', r.w3.msPerStep, '<=', 0.5));
  }
  if (r.w4?.scale) {
    out.push(target('W4', 'speedup 2 vs 1 process pair', r.w4.scale.speedup2, '>=', 1.5));
    out.push(target('W4', 'split layout instances/s vs baseline, k=1', r.w4.splitVsBaseline1, '>=', 0.5));
    out.push(target('W4', 'split layout worker CPU / activity vs baseline, k=1', r.w4.splitCpuVsBaseline1, '<=', 2.0));
    out.push(target('W4', 'ratio to baseline held from k=1 to k=4 (worse layout)', r.w4.ratioHeld4, '>=', 0.9));
  }
  if (r.w4?.long) out.push(target('W4L', 'share of episodes that replay at k=4 (larger layout)', r.w4.replayShare4, '<=', 0.05));
  if (r.w4 && Number.isFinite(r.w4.sweepPickups)) out.push(target('W4', 'outbox entries picked up by a sweep', r.w4.sweepPickups, '<=', 0));
  if (r.w1Metrics) out.push(target('W1 metrics', 'throughput with / without metrics (median of pairs)', r.w1Metrics.medianRatio, '>=', 0.95));
  if (r.replayCheck) out.push(target('replay-check', `seconds for ${r.replayCheck.instances} running instances`, r.replayCheck.seconds, '<', 60));
  return out.sort((a, b) => (Number.isFinite(b.off) ? b.off : Infinity) - (Number.isFinite(a.off) ? a.off : Infinity));
}

/** JSON with numbers rounded to 3 decimals (NaN becomes null). */
export function toJson(r: Results): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? round(v, 3) : v), 2)}\n`;
}

const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;

export function toMarkdown(r: Results): string {
  const L: string[] = [];
  const m = r.machine;
  const p = r.redis.persistence;
  L.push(`# durabull benchmark, ${r.startedAt}`);
  L.push('');
  L.push(`Runtime: commit ${m.commit}${m.packagesDirty ? ' with uncommitted changes in packages/' : ''}.`);
  L.push('');
  L.push(
    `Machine: ${m.cpus} CPUs (${m.cpuModel}), ${fmt(m.memGb, 0)} GB RAM, ${m.platform}, Node ${m.node}; Redis ${m.redisVersion} ` +
      `(${p.startedByBench ? 'started by the bench in a temp dir' : 'BENCH_REDIS_URL'}; appendonly ${p.appendonly}, appendfsync ${p.appendfsync}, save '${p.save}'); ` +
      `bullmq ${m.bullmq}, ioredis ${m.ioredis}. Concurrency ${r.settings.concurrency} per BullMQ worker. ` +
      `CPU busy in the second before the run ${fmt(m.busyBeforeStartPct, 0)}%; load average at start ${m.loadavgStart.map((x) => x.toFixed(2)).join(' ')}, at end ${m.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}. ` +
      `Total run time ${fmt(r.totalSeconds, 0)} s${r.quick ? ' (BENCH_QUICK=1)' : ''}.`,
  );
  L.push('');
  L.push(row(['workload', 'metric', 'durabull', 'BullMQ baseline', 'durabull / baseline']));
  L.push(row(['---', '---', '---:', '---:', '---:']));
  if (r.w1) {
    const w = r.w1;
    L.push(row([`W1 chain throughput (${fmt(w.instances, 0)} x ${w.steps} activities)`, 'instances/s', fmt(w.instancesPerSec, 0), fmt(w.baselineInstancesPerSec, 0), fmtRatio(w.ratio)]));
    L.push(row(['', 'activities/s', fmt(w.activitiesPerSec, 0), fmt(w.baselineActivitiesPerSec, 0), fmtRatio(w.activitiesPerSec / w.baselineActivitiesPerSec)]));
    L.push(row(['', 'wall time, ms', fmt(w.durabull.ms, 0), fmt(w.baseline.ms, 0), fmtRatio(w.durabull.ms / w.baseline.ms)]));
    L.push(row(['', 'CPU ms / activity: node (workers+client)', fmt(w.durabull.nodeCpuMs / w.durabull.activities, 3), fmt(w.baseline.nodeCpuMs / w.baseline.activities, 3), fmtRatio(w.durabull.nodeCpuMs / w.baseline.nodeCpuMs)]));
    L.push(row(['', 'CPU ms / activity: redis-server', fmt(w.durabull.redisCpuMs / w.durabull.activities, 3), fmt(w.baseline.redisCpuMs / w.baseline.activities, 3), fmtRatio(w.durabull.redisCpuMs / w.baseline.redisCpuMs)]));
    const pct = (run: W1Result['durabull']) => `${fmt((run.nodeCpuMs / run.ms) * 100, 0)}% / ${fmt((run.redisCpuMs / run.ms) * 100, 0)}%`;
    L.push(row(['', 'CPU use during the run, % of one core: bench process / redis-server', pct(w.durabull), pct(w.baseline), '']));
  }
  for (const [key, pt] of Object.entries(r.w2 ?? {})) {
    if (!isPoint(pt)) {
      L.push(row([`W2 fan-out/fan-in ${key}`, 'skipped', pt.skipped, '', '']));
      continue;
    }
    const d = pt.durabull;
    const bl = pt.baseline;
    const name = `W2 fan-out/fan-in N=${fmt(pt.n, 0)}`;
    L.push(row([name, 'ms to the sum', `${fmt(pt.ms, 0)}${d.ok ? '' : ' (FAILED)'}`, `${fmt(pt.baselineMs, 0)}${bl.ok ? '' : ' (FAILED)'}`, fmtRatio(pt.ratio)]));
    L.push(row(['', 'orchestrator episodes', fmt(pt.episodes, 0), '-', '']));
    L.push(row(['', 'client.purge(id), ms', fmt(d.purgeMs, 1), '-', '']));
    L.push(row(['', 'peak RSS of the bench process, MB', fmt(pt.peakRssMb, 0), fmt(pt.baselinePeakRssMb, 0), fmtRatio(pt.peakRssMb / pt.baselinePeakRssMb)]));
    L.push(row(['', 'CPU ms: node / redis-server', `${fmt(d.nodeCpuMs, 0)} / ${fmt(d.redisCpuMs, 0)}`, `${fmt(bl.nodeCpuMs, 0)} / ${fmt(bl.redisCpuMs, 0)}`, '']));
    L.push(row(['', 'Redis used_memory before -> at completion, MB', `${fmt(mb(d.redisUsedMemoryBefore), 1)} -> ${fmt(mb(d.redisUsedMemoryAfter), 1)}`, `${fmt(mb(bl.redisUsedMemoryBefore), 1)} -> ${fmt(mb(bl.redisUsedMemoryAfter), 1)}`, '']));
    L.push(
      row([
        '',
        'left in Redis (durabull: after purge; baseline: after completion): keys / MB (MEMORY USAGE) / used_memory delta MB',
        `${fmt(d.leftBehind.keys, 0)} / ${fmt(mb(d.leftBehind.bytes), 2)} / ${fmt(mb(d.leftBehindUsedMemory), 2)}`,
        `${fmt(bl.leftBehind.keys, 0)} / ${fmt(mb(bl.leftBehind.bytes), 2)} / ${fmt(mb(bl.leftBehindUsedMemory), 2)}`,
        '',
      ]),
    );
  }
  if (r.w3) {
    const w = r.w3;
    L.push(row([`W3 latency: one instance of ${w.sequenceSteps} sequential activities (median of ${w.sequenceRuns})`, 'ms per step', fmt(w.msPerStep, 2), fmt(w.baselineMsPerStep, 2), fmtRatio(w.msPerStepRatio)]));
    L.push(row([`W3 latency: ${w.chainRuns} back-to-back 4-activity chains`, 'p50 ms', fmt(w.chainP50Ms, 2), fmt(w.baselineChainP50Ms, 2), fmtRatio(w.chainP50Ratio)]));
    L.push(row(['', 'p99 ms (of 50 runs: the slowest)', fmt(w.chainP99Ms, 2), fmt(w.baselineChainP99Ms, 2), fmtRatio(w.chainP99Ms / w.baselineChainP99Ms)]));
    L.push(row(['', 'mean ms', fmt(w.durabull.chain.mean, 2), fmt(w.baseline.chain.mean, 2), fmtRatio(w.durabull.chain.mean / w.baseline.chain.mean)]));
  }
  if (r.w4) L.push(...w4SummaryRows(r.w4));
  if (r.w6) {
    const w = r.w6;
    L.push(row([`W6 hot entity: ${fmt(w.hotSignals, 0)} signals from ${w.hotSenders} senders to one counter`, 'operations/s', fmt(w.hotEntityOpsPerSec, 0), '', '']));
    L.push(row(['', 'batches (operations per batch)', `${fmt(w.hotEntityBatches, 0)} (${fmt(w.hotEntityOpsPerBatch, 1)})`, '', '']));
    L.push(row([`W6 many entities: ${fmt(w.manyEntities, 0)} x ${w.manyEntitiesOpsEach} signals`, 'operations/s', fmt(w.manyEntitiesOpsPerSec, 0), '', '']));
    L.push(row([`W6 transfers: ${w.transferOrchestrations} orchestrations x ${w.transfersEach} under lockEntities over ${w.accounts} accounts`, 'p50 / p99 ms', `${fmt(w.transferP50Ms, 1)} / ${fmt(w.transferP99Ms, 1)}`, '', '']));
    L.push(row(['', 'total balance constant (audits, final)', `${w.totalBalanceConstant ? 'yes' : 'NO'} (${w.audits.join(', ')}; ${w.finalTotal})`, '', '']));
  }
  if (r.w1) {
    const d = r.w1.commands.durabull;
    const bl = r.w1.commands.baseline;
    L.push('');
    L.push(`## Redis commands per activity (W1, ${fmt(r.w1.instances, 0)} x ${r.w1.steps})`);
    L.push('');
    L.push(
      'From INFO deltas over the timed run. EVALSHA/EVAL counts once per script call, whatever the script does; on Redis 7 ' +
        'the commands a script runs inside are also counted, under their own names, in total_commands_processed and commandstats. ' +
        '"sent by clients" is from a MONITOR census of a separate, untimed run (one line per command a client sent, pipelined or not).',
    );
    L.push('');
    L.push(row(['', 'durabull', 'baseline', 'ratio']));
    L.push(row(['---', '---:', '---:', '---:']));
    L.push(row(['total_commands_processed / activity (incl. inside scripts)', fmt(d.totalPerActivity, 2), fmt(bl.totalPerActivity, 2), fmtRatio(d.totalPerActivity / bl.totalPerActivity)]));
    L.push(row(['EVALSHA + EVAL / activity (a script call counts once)', fmt(d.scriptCallsPerActivity, 2), fmt(bl.scriptCallsPerActivity, 2), fmtRatio(d.scriptCallsPerActivity / bl.scriptCallsPerActivity)]));
    L.push(row(['other commands / activity (sent, or run inside scripts)', fmt(d.otherPerActivity, 2), fmt(bl.otherPerActivity, 2), fmtRatio(d.otherPerActivity / bl.otherPerActivity)]));
    if (d.census && bl.census) {
      L.push(row(['commands sent by clients / activity (MONITOR)', fmt(d.census.sentPerActivity, 2), fmt(bl.census.sentPerActivity, 2), fmtRatio(d.census.sentPerActivity / bl.census.sentPerActivity)]));
      L.push(row(['commands run inside scripts / activity (MONITOR)', fmt(d.census.inScriptsPerActivity, 2), fmt(bl.census.inScriptsPerActivity, 2), fmtRatio(d.census.inScriptsPerActivity / bl.census.inScriptsPerActivity)]));
    }
    L.push(row(['redis-server CPU us / activity', fmt(d.redisCpuUsPerActivity, 1), fmt(bl.redisCpuUsPerActivity, 1), fmtRatio(d.redisCpuUsPerActivity / bl.redisCpuUsPerActivity)]));
    L.push('');
    if (d.census && bl.census) {
      L.push('Sent by clients, per activity (MONITOR census; `script:<name>` is one EVALSHA/EVAL):');
      L.push('');
      L.push(`- durabull: ${topList(d.census.sent)}`);
      L.push(`- baseline: ${topList(bl.census.sent)}`);
      L.push('');
    }
    L.push('All commands per activity (INFO commandstats, including inside scripts):');
    L.push('');
    L.push(`- durabull: ${topList(d.byCommand)}`);
    L.push(`- baseline: ${topList(bl.byCommand)}`);
  }
  if (r.w4) {
    L.push('');
    L.push(...w4KeysSection(r.w4));
    if (r.w4.scale) L.push(...fleetBreakdown(r.w4.scale, 'W4'));
    if (r.w4.long) L.push(...fleetBreakdown(r.w4.long, 'W4L'));
    if (r.w4.model) L.push(...modelSection(r.w4.model));
  }
  if (r.w5) L.push(...w5Section(r.w5));
  if (r.targets.length) {
    L.push('');
    L.push('## Targets (furthest first)');
    L.push('');
    L.push(row(['workload', 'metric', 'measured', 'target', 'met', 'off by']));
    L.push(row(['---', '---', '---:', '---:', '---', '---:']));
    for (const t of r.targets) {
      const value = Number.isFinite(t.value) ? fmt(t.value) : 'n/a (run failed)';
      L.push(row([t.workload, t.what, value, `${t.op} ${fmt(t.target)}`, t.ok ? 'yes' : '**no**', t.ok || !Number.isFinite(t.off) ? '' : fmtRatio(t.off)]));
    }
  }
  const failures: string[] = [];
  for (const pt of Object.values(r.w2 ?? {})) {
    if (!isPoint(pt)) continue;
    if (pt.durabull.error) failures.push(`W2 N=${fmt(pt.n, 0)} durabull: ${pt.durabull.error}`);
    if (pt.baseline.error) failures.push(`W2 N=${fmt(pt.n, 0)} baseline: ${pt.baseline.error}`);
  }
  if (r.w1 && r.w1.durabullFailedJobAttempts > 0) failures.push(`W1 durabull: ${r.w1.durabullFailedJobAttempts} failed job attempts`);
  if (r.w3?.durabull.error) failures.push(`W3 durabull: ${r.w3.durabull.error}`);
  if (r.w3?.baseline.error) failures.push(`W3 baseline: ${r.w3.baseline.error}`);
  if (failures.length) {
    L.push('');
    L.push('## Failures');
    L.push('');
    for (const f of failures) L.push(`- ${f}`);
  }
  if (r.w1Metrics) {
    const w = r.w1Metrics;
    L.push('');
    L.push(`## W1 with and without metrics (${fmt(w.instances, 0)} chains per run, interleaved pairs)`);
    L.push('');
    L.push(row(['pair', 'off: instances/s (/ baseline)', 'on: instances/s (/ baseline)', 'on / off (of the ratios)', 'off: node µs CPU / activity', 'on: node µs CPU / activity', 'on / off']));
    L.push(row(['---:', '---:', '---:', '---:', '---:', '---:', '---:']));
    w.pairs.forEach((p, i) =>
      L.push(
        row([
          String(i + 1),
          `${fmt(p.off.instancesPerSec, 0)} (${fmt(p.off.ratio, 3)})`,
          `${fmt(p.on.instancesPerSec, 0)} (${fmt(p.on.ratio, 3)})`,
          fmt(p.ratio, 3),
          fmt(p.off.nodeCpuUsPerActivity, 0),
          fmt(p.on.nodeCpuUsPerActivity, 0),
          fmt(p.cpuRatio, 3),
        ]),
      ),
    );
    L.push(row(['median', '', '', fmt(w.medianRatio, 3), '', '', fmt(w.medianCpuRatio, 3)]));
    L.push('');
    L.push(`The hooks themselves, called in a loop: ${fmt(w.hookUsPerStep.defaults, 2)} µs of CPU per chain step (an episode and an activity) with the defaults, ${fmt(w.hookUsPerStep.none, 2)} µs with none.`);
  }
  if (r.replayCheck) {
    const c = r.replayCheck;
    L.push('');
    L.push(`## durabull replay-check`);
    L.push('');
    L.push(`${fmt(c.checked, 0)} running instances replayed in ${fmt(c.seconds, 1)} s (${fmt(c.wallSeconds, 1)} s for the whole command line), histories read ${c.batch} per pipelined round trip; ${c.divergences} divergences.`);
  }
  if (Object.keys(r.errors).length) {
    L.push('');
    L.push('## Errors');
    L.push('');
    for (const [k, v] of Object.entries(r.errors)) L.push(`- ${k}: ${v}`);
  }
  if (r.notes.length) {
    L.push('');
    for (const n of r.notes) L.push(`- ${n}`);
  }
  return `${L.join('\n')}\n`;
}

function topList(r: Record<string, number>, n = 12): string {
  return Object.entries(r)
    .slice(0, n)
    .map(([k, v]) => `${k} ${fmt(v, 2)}`)
    .join(', ');
}

export type { CommandCounts, W4Result };
