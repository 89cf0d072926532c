/**
 * The long fault-injection run: `npm run test:faults` (tsx --conditions=source test/faults/main.ts).
 *
 * Three runs, each on its own redis-server (AOF on): `appendfsync always` and `appendfsync everysec`, each with
 * FAULTS_CHAINS chaining instances (default 500) and FAULTS_FANOUTS fan-outs (default 20) of FAULTS_FANOUT_SIZE
 * activities (default 500), a worker process SIGKILLed about every FAULTS_KILL_EVERY_MS (default 1000) and two Redis
 * crashes (SIGKILL, restart on the same port and data directory). In the everysec run each crash also drops the
 * last second the append-only file took in (what an OS crash may lose with everysec; a SIGKILL alone loses
 * nothing). Prints the figures of each run; exits non-zero when something was lost, wrong or duplicated (with
 * `always`), or when an everysec run left anything unfinished apart from starts lost with the last second of the AOF.
 *
 * A third run, `sigkill`, crashes Redis with a plain SIGKILL about every FAULTS_REDIS_CRASH_EVERY_MS (default 3000) under
 * everysec, without cutting the file. After every crash the hub is checked; an instance found stuck or with a lost
 * task must be repaired by the workers' own sweep within two sweep intervals (no repair is run by the suite).
 *
 * Instances are started in batches over the first FAULTS_START_SPREAD_MS (default 30 000), so that starts meet the
 * faults too. FAULTS_ONLY=always|everysec|sigkill runs one of the three; FAULTS_TIMEOUT_MS (default 240 000) bounds each run.
 */
import { formatFigures, runFaults, type FaultRunFigures } from './fault-run.js';

const env = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const chains = env('FAULTS_CHAINS', 500);
const fanOuts = env('FAULTS_FANOUTS', 20);
const fanOutSize = env('FAULTS_FANOUT_SIZE', 500);
const killEveryMs = env('FAULTS_KILL_EVERY_MS', 1000);
const timeoutMs = env('FAULTS_TIMEOUT_MS', 240_000);
const startSpreadMs = env('FAULTS_START_SPREAD_MS', 30_000);
const only = process.env.FAULTS_ONLY;

const log = (line: string) => console.log(`${new Date().toISOString().slice(11, 23)} ${line}`);
const results: FaultRunFigures[] = [];
let failed = false;

/**
 * The forms: `always` and `everysec` as above; `sigkill`: `appendfsync everysec` and a plain SIGKILL of Redis about
 * every 3 s (no cut of the file), while dispatches and acks are in flight: Redis may lose writes it acknowledged when
 * its write of the file was postponed behind a slow fsync, and an ack queued across the reconnect must not delete
 * the record of a job that went with them.
 */
const forms = [
  { name: 'always', appendfsync: 'always' as const },
  { name: 'everysec', appendfsync: 'everysec' as const },
  { name: 'sigkill', appendfsync: 'everysec' as const },
];
for (const form of forms) {
  if (only && only !== form.name) continue;
  const { appendfsync } = form;
  const f = await runFaults({
    label: `faults/${form.name}`,
    chains,
    fanOuts,
    fanOutSize,
    // One process of each layout: orchestrators and activities together, and apart.
    workers: { all: 1, orchestrators: 1, activities: 2 },
    killEveryMs,
    killFrom: 0.02,
    // Instances are started over the first 30 s, so that some starts meet a kill or a Redis crash.
    startSpreadMs,
    redisStop: 'kill',
    ...(form.name === 'sigkill'
      ? { redisCrashEveryMs: env('FAULTS_REDIS_CRASH_EVERY_MS', 3000) }
      : { redisRestarts: [0.3, 0.65] }),
    // A SIGKILL of redis-server loses nothing even with everysec (the page cache keeps what was written): the
    // everysec run also cuts the AOF back to its size one second before the crash, as an OS crash could, at a command
    // boundary outside MULTI blocks (FAULTS_AOF_CUT=byte cuts anywhere: see aofCut in fault-run.ts).
    ...(form.name === 'everysec' ? { redisLoseTailMs: 1000, aofCut: (process.env.FAULTS_AOF_CUT === 'byte' ? 'byte' : 'command') as 'byte' | 'command' } : {}),
    appendfsync,
    timeoutMs,
    log,
  });
  results.push(f);
  console.log(formatFigures(f));
  const duplicated = f.duplicatedHistoryEvents > 0 || f.checkerCounts['duplicate-completion'] || f.checkerCounts['duplicate-schedule'];
  const stuck = f.stuckAfterTwoSweeps > 0;
  if (appendfsync === 'always') {
    if (f.lost > 0 || f.wrong > 0 || duplicated || stuck || f.sideEffectsMissing > 0 || f.missingResults > 0 || f.checkerFindings > 0) failed = true;
  } else {
    // everysec may lose the last second before a crash: instances whose start went with it are reported, not failed.
    if (f.lost - f.startsLost > 0 || f.wrong > 0 || duplicated || stuck || f.missingResults > 0 || f.checkerFindings > 0) failed = true;
  }
}

console.log('\n| run | instances | activities | worker kills | Redis restarts | lost | duplicated history events | activities run twice | checkHub findings | time |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const f of results) {
  console.log(
    `| ${f.label.replace('faults/', '')} (appendfsync ${f.appendfsync}) | ${f.instances} | ${f.activities} | ${f.kills} | ${f.redisRestarts} | ${f.lost}${f.startsLost ? ` (${f.startsLost} starts lost)` : ''} | ` +
      `${f.duplicatedHistoryEvents} | ${f.activitiesRunTwice} | ${f.checkerFindings} | ${(f.durationMs / 1000).toFixed(0)} s |`,
  );
}
process.exit(failed ? 1 : 0);
