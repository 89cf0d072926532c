/**
 * W4, W4L and the capacity model in the results: the JSON type, the targets, and the Markdown
 * (summary rows, the per-fleet breakdown of where the CPU and the commands go, the model).
 */
import type { FleetRun, RoleFigures } from './fleet.js';
import { fmt, fmtRatio, ratio } from './stats.js';
import type { ModelResult } from './workloads/model.js';
import { type K1Pair, type ScaleSet, type W4Keys, layoutRatio, replays } from './workloads/w4.js';

export interface W4Result extends W4Keys {
  /** W4: 4-activity chains over k processes per layout. */
  scale?: ScaleSet;
  /** W4L: 50-activity chains over k processes per layout. */
  long?: ScaleSet;
  model?: ModelResult;
}

const row = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`;
const pct = (x: number) => (Number.isFinite(x) ? `${fmt(x * 100, 1)}%` : 'n/a');

/** The fleets of a scale set in reading order: split k..., baseline 2k..., both kinds k..., baseline k... (each once). */
export function fleetsOf(set: ScaleSet): FleetRun[] {
  const out: FleetRun[] = [];
  for (const r of [...set.durabull, ...set.combined.durabull, ...set.baseline, ...set.combined.baseline]) if (!out.includes(r)) out.push(r);
  return out;
}

export function fleetName(r: FleetRun): string {
  if (r.layout === 'baseline') return `baseline ×${r.k}`;
  return `${r.layout === 'split' ? 'split' : 'both'} k=${r.k}`;
}

/** Rows of the main results table. */
export function w4SummaryRows(w: W4Result): string[] {
  const L: string[] = [];
  for (const [set, title] of [
    [w.scale, 'W4 scale-out'],
    [w.long, 'W4L long chains'],
  ] as const) {
    if (!set) continue;
    const head = `${title} (${fmt(set.instances, 0)} × ${set.steps} activities)`;
    let first = true;
    for (const [layout, runs, name] of [
      ['split', set.durabull, 'split: k orch + k activity processes vs 2k baseline processes'],
      ['combined', set.combined.durabull, 'both kinds: k processes vs k baseline processes'],
    ] as const) {
      for (const run of runs) {
        const base = layout === 'split' ? set.baseline.find((x) => x.k === 2 * run.k) : set.combined.baseline.find((x) => x.k === run.k);
        L.push(
          row([
            first ? head : '',
            `${name}, k=${run.k}: instances/s, steady (whole run) / worker CPU µs per activity`,
            `${fmt(run.steadyInstancesPerSec, 0)} (${fmt(run.instancesPerSec, 0)}) / ${fmt((run.workersCpuMs * 1000) / run.activities, 0)}`,
            base ? `${fmt(base.steadyInstancesPerSec, 0)} (${fmt(base.instancesPerSec, 0)}) / ${fmt((base.workersCpuMs * 1000) / base.activities, 0)}` : '-',
            `${fmtRatio(layoutRatio(set, layout, run.k))} (${fmtRatio(layoutRatio(set, layout, run.k, 'whole'))}) / ${fmtRatio(ratio(run.workersCpuMs / run.activities, base ? base.workersCpuMs / base.activities : undefined))}`,
          ]),
        );
        first = false;
      }
    }
  }
  return L;
}

function roleText(r: FleetRun, f: (x: RoleFigures) => string): string {
  if (r.roles.length === 1) return f(r.roles[0]!);
  return r.roles.map((x) => `${x.role === 'orchestrators' ? 'o' : x.role === 'activities' ? 'a' : x.role} ${f(x)}`).join(' / ');
}

function stat(r: FleetRun, name: string): number {
  return r.roles.reduce((s, x) => s + (x.stats[name] ?? 0), 0);
}

function commands(r: FleetRun): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of r.roles) for (const [k, v] of Object.entries(x.commands)) out[k] = (out[k] ?? 0) + v;
  return out;
}

/** The breakdown of one scale set: where the CPU and the commands go, per activity, per fleet. */
export function fleetBreakdown(set: ScaleSet, title: string): string[] {
  const fleets = fleetsOf(set);
  const L: string[] = [];
  const per = (r: FleetRun, x: number) => x / r.activities;
  L.push(`## ${title}: where the CPU and the commands go (${fmt(set.instances, 0)} × ${set.steps} activities per fleet, per activity unless said)`);
  L.push('');
  L.push(
    'Worker figures are the timed run\'s deltas read from each process (CPU, DurabullWorker.stats, and what it sent to Redis as counted in the process: ' +
      'commands, pipelined or not, and socket writes). Roles: o = orchestrator-only, a = activity-only processes. The client (the bench process) is not in the worker figures.',
  );
  L.push('');
  L.push(row(['', ...fleets.map(fleetName)]));
  L.push(row(['---', ...fleets.map(() => '---:')]));
  const line = (name: string, f: (r: FleetRun) => string) => L.push(row([name, ...fleets.map(f)]));
  line('instances/s: steady, 10–90% of the activities (whole run)', (r) => `${fmt(r.steadyInstancesPerSec, 0)} (${fmt(r.instancesPerSec, 0)})`);
  line('ramp-up and tail, % of the run', (r) => pct(r.edgeShare));
  line('warm-up: instances (batches)', (r) => `${fmt(r.warmup.instances, 0)} (${r.warmup.batches})`);
  line('warm-up: worker CPU ms / instance, first → last batch', (r) => `${fmt(r.warmup.workerCpuMsPerInstance[0], 2)} → ${fmt(r.warmup.workerCpuMsPerInstance.at(-1), 2)}`);
  line('timed run: worker CPU ms / instance', (r) => fmt(r.workersCpuMs / r.instances, 2));
  line('worker CPU µs', (r) => fmt((per(r, r.workersCpuMs) * 1000), 0));
  line('… by role', (r) => roleText(r, (x) => fmt((x.cpuMs * 1000) / r.activities, 0)));
  line('client CPU µs', (r) => fmt(per(r, r.clientCpuMs) * 1000, 0));
  line('Redis CPU µs (% of a core)', (r) => `${fmt(per(r, r.redisCpuMs) * 1000, 1)} (${fmt(r.redisCpuPct, 0)}%)`);
  line('machine CPUs busy, %', (r) => r.machineCpuBusyPct.map((x) => fmt(x, 0)).join(' / '));
  line('Redis commands (INFO, incl. inside scripts)', (r) => fmt(per(r, r.redis.totalCommands), 1));
  line('commands sent by the workers', (r) => fmt(per(r, r.roles.reduce((s, x) => s + x.commandsTotal, 0)), 2));
  line('… by role', (r) => roleText(r, (x) => fmt(x.commandsTotal / r.activities, 2)));
  line('socket writes (round trips at most)', (r) => fmt(per(r, r.roles.reduce((s, x) => s + x.writes, 0)), 2));
  line('commands per write, by role', (r) => roleText(r, (x) => fmt(ratio(x.commandsTotal, x.writes), 2)));
  line('bytes sent by the workers', (r) => fmt(per(r, r.roles.reduce((s, x) => s + x.bytesOut, 0)), 0));
  const durabull = fleets.some((r) => r.layout !== 'baseline');
  if (durabull) {
    const d = (f: (r: FleetRun) => string) => (r: FleetRun) => (r.layout === 'baseline' ? '-' : f(r));
    line('episodes', d((r) => fmt(per(r, stat(r, 'episodes')), 2)));
    line('… run in place after a result (inline) / of them direct', d((r) => `${fmt(per(r, stat(r, 'inlineEpisodes')), 2)} / ${fmt(per(r, stat(r, 'directEpisodes')), 2)}`));
    line('… from a wake job without a load (cached)', d((r) => fmt(per(r, stat(r, 'cachedEpisodes')), 2)));
    line('… resumed a kept session / replayed history', d((r) => `${fmt(per(r, stat(r, 'resumedEpisodes')), 2)} / ${fmt(per(r, stat(r, 'replayedEpisodes')), 2)}`));
    line('share of episodes that replayed', d((r) => pct(replays(r).share)));
    line('history events replayed per episode', d((r) => fmt(replays(r).eventsPerEpisode, 2)));
    line('loads (state + history + inbox reads)', d((r) => fmt(per(r, stat(r, 'loads')), 3)));
    line('refused commits: direct / cached / stale episodes', d((r) => `${fmt(stat(r, 'directRefused'), 0)} / ${fmt(stat(r, 'cachedRefused'), 0)} / ${fmt(stat(r, 'staleEpisodes'), 0)}`));
    line('activities run eagerly (no queue hop), share', d((r) => pct(ratio(stat(r, 'eagerActivities'), stat(r, 'activities')))));
    line('results delivered by the script that completed their job, share', d((r) => pct(ratio(stat(r, 'deliveredOnFinish'), stat(r, 'activities')))));
    line('orchestrator jobs completed by their episode\'s commit, per instance', d((r) => fmt(ratio(stat(r, 'committedOnFinish'), r.instances), 2)));
    line('outbox: swept entries (whole life) / left at the end', d((r) => `${fmt(r.sweptTotal, 0)} / ${fmt(r.outboxLeft, 0)}`));
  }
  line('failed job attempts (whole life)', (r) => fmt(r.failedJobsTotal, 0));
  // BullMQ's own costs, from the commands the workers sent.
  const c = (r: FleetRun, name: string) => commands(r)[name] ?? 0;
  line('BullMQ: fetches (moveToActive) + completions (moveToFinished; finishActivity, finishEpisode)', (r) => `${fmt(per(r, c(r, 'script:moveToActive')), 2)} + ${fmt(per(r, c(r, 'script:moveToFinished')), 2)}; ${fmt(per(r, c(r, 'script:finishActivity')), 2)}, ${fmt(per(r, c(r, 'script:finishEpisode')), 2)}`);
  line('BullMQ: blocking waits (bzpopmin)', (r) => fmt(per(r, c(r, 'bzpopmin')), 3));
  line(
    'BullMQ over the processes\' life (seconds): lock renewals / stalled checks / blocking waits, all processes',
    (r) => `${fmt(r.lifetime.ms / 1000, 0)} s: ${fmt(r.lifetime.lockRenewals, 0)} / ${fmt(r.lifetime.stalledChecks, 0)} / ${fmt(r.lifetime.blockingWaits, 0)}`,
  );
  line('BullMQ: marker ops, incl. inside scripts (MONITOR census)', (r) => (r.census ? fmt(r.census.census.markerOps / (r.census.instances * r.steps), 2) : 'n/a'));
  line('sweep passes (zrangebyscore on the outbox index)', (r) => (r.layout === 'baseline' ? '-' : fmt(c(r, 'zrangebyscore'), 0)));
  L.push('');
  // Commands sent, by name.
  const all = new Map<string, number>();
  for (const r of fleets) for (const [k, v] of Object.entries(commands(r))) all.set(k, Math.max(all.get(k) ?? 0, v / r.activities));
  const names = [...all.entries()].filter(([, v]) => v >= 0.001).sort((a, b) => b[1] - a[1]).map(([k]) => k);
  L.push(`Commands the worker processes sent, per activity, by command (\`script:<name>\` is one EVALSHA):`);
  L.push('');
  L.push(row(['', ...fleets.map(fleetName)]));
  L.push(row(['---', ...fleets.map(() => '---:')]));
  for (const n of names) line(n, (r) => fmt(per(r, c(r, n)), 3));
  L.push('');
  // Worker CPU by library, from the CPU profiles.
  const profiled = fleets.filter((r) => r.profile);
  if (profiled.length) {
    const cats = new Set<string>();
    for (const r of profiled) for (const x of r.profile!.byRole) for (const k of Object.keys(x.summary.byCategory)) cats.add(k);
    const order = ['bullmq', 'ioredis', 'durabull worker', 'durabull redis', 'durabull core', 'msgpack', 'node', 'socket writes', 'GC', 'V8 / native', 'other dependencies', 'bench', 'other'];
    const sorted = [...cats].sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99));
    L.push(
      `Worker CPU by library, µs per activity: the timed run's CPU of each role split by the self time of a CPU profile (V8's sampler, every 250 µs) ` +
        `of an untimed batch of ${fmt(profiled[0]!.profile!.instances, 0)} instances after it. "socket writes": Node's write bindings (the write system call and copying the data); "V8 / native": time in no JavaScript function (V8's builtins, compiling, promise jobs); "node": Node's own JavaScript (streams, buffers, timers).`,
    );
    L.push('');
    L.push(row(['', ...profiled.map(fleetName)]));
    L.push(row(['---', ...profiled.map(() => '---:')]));
    const cell = (r: FleetRun, cat: string) =>
      r.profile!.byRole
        .map((x) => {
          const role = r.roles.find((y) => y.role === x.role);
          const share = x.summary.totalMs > 0 ? (x.summary.byCategory[cat] ?? 0) / x.summary.totalMs : Number.NaN;
          const us = role ? (share * role.cpuMs * 1000) / r.activities : Number.NaN;
          const tag = r.profile!.byRole.length > 1 ? `${x.role === 'orchestrators' ? 'o' : 'a'} ` : '';
          return `${tag}${fmt(us, 1)}`;
        })
        .join(' / ');
    for (const cat of sorted) L.push(row([cat, ...profiled.map((r) => cell(r, cat))]));
    L.push('');
    for (const r of profiled.filter((x) => x.k === 1)) {
      for (const x of r.profile!.byRole) {
        const top = x.summary.top.slice(0, 8).map(([f, ms]) => `${f} ${fmt((ms / x.summary.totalMs) * 100, 1)}%`);
        L.push(`- ${fleetName(r)}, ${x.role}: the functions with the most self time: ${top.join('; ')}.`);
      }
    }
    L.push('');
  }
  // Scripts: inner commands (MONITOR) and execution time (slow log), over the censuses.
  const censused = fleets.filter((r) => r.census || r.slowlog);
  if (censused.length) {
    L.push(
      'Per script call, from the untimed censuses after each timed run (MONITOR: the commands a script runs; the slow log at 0 µs: the time Redis spends executing it, ' +
        'without reading, parsing and replying): inner commands per call / µs per call. The last rows: commands per activity that all clients sent (the client\'s included), ' +
        'and the share of Redis CPU spent executing commands.',
    );
    L.push('');
    L.push(row(['', ...censused.map(fleetName)]));
    L.push(row(['---', ...censused.map(() => '---:')]));
    const scripts = new Set<string>();
    for (const r of censused) {
      for (const k of Object.keys(r.census?.census.byScript ?? {})) scripts.add(k);
      for (const k of Object.keys(r.slowlog?.census.byCommand ?? {})) if (k.startsWith('script:')) scripts.add(k);
    }
    for (const s of [...scripts].sort()) {
      L.push(
        row([
          s,
          ...censused.map((r) => {
            const m = r.census?.census.byScript[s];
            const t = r.slowlog?.census.byCommand[s];
            if (!m && !t) return '';
            return `${m ? fmt(m.innerTotal / m.calls, 1) : '-'} / ${t ? fmt(t.usec / t.calls, 1) : '-'}`;
          }),
        ]),
      );
    }
    L.push(row(['all clients: commands sent (of them script calls)', ...censused.map((r) => (r.census ? `${fmt(r.census.census.topLevelTotal / (r.census.instances * r.steps), 2)} (${fmt(Object.values(r.census.census.byScript).reduce((s, x) => s + x.calls, 0) / (r.census.instances * r.steps), 2)})` : '-'))]));
    L.push(row(['Redis: executing commands, % of its CPU (slow log)', ...censused.map((r) => (r.slowlog ? `${fmt((r.slowlog.census.usec / 1000 / r.slowlog.redisCpuMs) * 100, 0)}%${r.slowlog.census.overflowed ? ' (log overflowed)' : ''}` : '-'))]));
    L.push('');
  }
  return L;
}

export function modelSection(m: ModelResult): string[] {
  const L: string[] = [];
  L.push(`## Capacity model: ${m.workerCores} worker cores + ${m.redisCores} Redis core`);
  L.push('');
  L.push(
    `instances/s = min(W / (worker + client CPU per instance), R / Redis CPU per instance); Redis is the bottleneck from W = R × (worker + client) / Redis CPU per instance on. Basis: ${m.basis}.`,
  );
  L.push('');
  L.push(row(['layout', 'CPU ms / instance: workers + client / Redis', `predicted instances/s (${m.workerCores} + ${m.redisCores} cores)`, 'bottleneck', 'Redis-bound from W =', 'same from the largest k (contention, cache misses)']));
  L.push(row(['---', '---:', '---:', '---', '---:', '---:']));
  for (const [layout, x] of Object.entries(m.layouts)) {
    if (!x) continue;
    const p = x.perInstance;
    const k = x.predictedKmax;
    L.push(
      row([
        layout === 'combined' ? 'both kinds' : layout,
        `${fmt(p.workerCpuMs, 3)} + ${fmt(p.clientCpuMs, 3)} / ${fmt(p.redisCpuMs, 3)}`,
        fmt(x.predicted.instancesPerSec, 0),
        x.predicted.bottleneck,
        fmt(x.predicted.redisBoundFromWorkerCores, 1),
        k && x.perInstanceKmax ? `${fmt(k.instancesPerSec, 0)} (${k.bottleneck}; ${fmt(x.perInstanceKmax.workerCpuMs + x.perInstanceKmax.clientCpuMs, 3)} / ${fmt(x.perInstanceKmax.redisCpuMs, 3)} ms)` : '-',
      ]),
    );
  }
  L.push('');
  const us = Object.entries(m.redisUsPerActivity).map(([l, v]) => `${l === 'combined' ? 'both kinds' : l} ${fmt(v, 1)} µs (${fmt(m.redisActivitiesPerSecPerCore[l as keyof typeof m.redisActivitiesPerSecPerCore], 0)} activities/s per Redis core)`);
  L.push(`Redis CPU per activity at k = 1: ${us.join(', ')}.`);
  L.push('');
  if (m.check) {
    L.push(`Check: ${m.check.how}.`);
    L.push('');
    L.push(row(['layout', 'predicted', 'measured (whole run)', 'error', 'error for the core other processes left', 'pinned run: CPU ms / instance, workers + client / Redis', 'CPU 1: ours / others', 'CPU 0: Redis / others']));
    L.push(row(['---', '---:', '---:', '---:', '---:', '---:', '---:', '---:']));
    for (const r of m.check.runs) {
      L.push(
        row([
          r.layout === 'combined' ? 'both kinds' : r.layout,
          fmt(r.predicted, 0),
          `${fmt(r.measured, 0)} (${fmt(r.measuredWhole, 0)})`,
          pct(r.error),
          pct(r.errorForCoreLeft),
          `${fmt(r.perInstance.workerCpuMs, 3)} + ${fmt(r.perInstance.clientCpuMs, 3)} / ${fmt(r.perInstance.redisCpuMs, 3)}`,
          `${fmt(r.workerCoreOursPct, 0)}% / ${fmt(r.workerCoreOthersPct, 0)}%`,
          `${fmt(r.redisCoreRedisPct, 0)}% / ${fmt(r.redisCoreOthersPct, 0)}%`,
        ]),
      );
    }
    L.push('');
  } else if (m.checkSkipped) {
    L.push(`Check skipped: ${m.checkSkipped}.`);
    L.push('');
  }
  return L;
}

export function w4KeysSection(w: W4Result): string[] {
  const L: string[] = [];
  L.push('## W4 keys');
  L.push('');
  L.push('Instances/s in the keys are steady paces (10–90% of each run\'s activities); the whole-run figures follow in brackets where they differ.');
  L.push('');
  L.push(row(['key', 'value']));
  L.push(row(['---', '---:']));
  const each = (f: (p: K1Pair) => number, digits: number) => (w.pairs1?.length > 1 ? `; pairs: ${w.pairs1.map((p) => fmt(f(p), digits)).join(' / ')}` : '');
  L.push(row(['w4.splitVsBaseline1 (whole runs: w4.splitVsBaseline1Whole), median of the k = 1 pairs', `${fmt(w.splitVsBaseline1, 3)} (${fmt(w.splitVsBaseline1Whole, 3)})${each((p) => p.ratio, 3)}`]));
  L.push(row(['w4.splitCpuVsBaseline1, median of the k = 1 pairs', `${fmt(w.splitCpuVsBaseline1, 2)}${each((p) => p.cpu, 2)}`]));
  L.push(row(['w4.ratioHeld4 (split / both kinds; whole runs: w4.ratioHeld4Whole)', `${fmt(w.ratioHeld4, 2)} (${fmt(w.ratioHeld4ByLayout.split, 2)} / ${fmt(w.ratioHeld4ByLayout.combined, 2)}; ${fmt(w.ratioHeld4Whole, 2)})`]));
  L.push(row(['w4.replayShare4 (split / both kinds)', `${pct(w.replayShare4)} (${pct(w.replayShare4ByLayout.split)} / ${pct(w.replayShare4ByLayout.combined)})`]));
  L.push(row(['w4.replayedEventsPerEpisode4 (k=1: w4.replayedEventsPerEpisode1)', `${fmt(w.replayedEventsPerEpisode4, 2)} (${fmt(w.replayedEventsPerEpisode1, 2)})`]));
  L.push(row(['w4.sweepPickups', fmt(w.sweepPickups, 0)]));
  const m = w.model;
  if (m) {
    const pred = Object.entries(m.layouts).map(([l, x]) => `${l === 'combined' ? 'both kinds' : l} ${fmt(x?.predicted.instancesPerSec, 0)}`);
    L.push(row([`w4.model: instances/s predicted for ${m.workerCores} worker cores + ${m.redisCores} Redis core`, pred.join(', ')]));
    L.push(row(['w4.model: worst error of the check (for the core other processes left)', m.check ? `${pct(m.check.worstAbsError)} (${pct(m.check.worstAbsErrorForCoreLeft)})` : `skipped (${m.checkSkipped ?? '?'})`]));
  }
  L.push('');
  return L;
}
