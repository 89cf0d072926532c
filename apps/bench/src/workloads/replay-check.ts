/**
 * `durabull replay-check` at scale: `instances` running instances (each has run one activity and
 * waits for an event), then the CLI command, in this process, against the bench's own functions
 * module; the time it takes to read and replay every history.
 */
import { fileURLToPath } from 'node:url';
import { runCli } from '@durabull/cli';
import { GATED } from '../functions.js';
import { type Bench, startDurabull, withTimeout } from '../harness.js';

export interface ReplayCheckResult {
  instances: number;
  /** Histories replayed, as the command reports. */
  checked: number;
  divergences: number;
  /** The check itself (the command's own figure: listing, pipelined reads, replays). */
  seconds: number;
  /** The whole command line: loading the module, connecting, the check. */
  wallSeconds: number;
  batch: number;
  exitCode: number;
}

const MODULE = fileURLToPath(new URL('../functions.ts', import.meta.url));

export async function runReplayCheck(b: Bench, opts: { instances: number; batch: number; timeoutMs: number }): Promise<ReplayCheckResult> {
  const n = opts.instances;
  const rig = await startDurabull(b, b.hub('replay'));
  const hub = rig.hub;
  try {
    b.log(`Replay check: starting ${n} instances that wait for an event`);
    for (let i = 0; i < n; i += 1000) {
      await Promise.all(Array.from({ length: Math.min(1000, n - i) }, (_, k) => rig.client.startNew(GATED, { instanceId: `g${i + k}`, input: i + k })));
    }
    await withTimeout(
      (async () => {
        while (rig.worker.stats.activities < n || rig.worker.stats.episodes < 2 * n) await new Promise((r) => setTimeout(r, 200));
      })(),
      opts.timeoutMs,
      'replay check: instances waiting',
    );
    await rig.close();
    b.log(`Replay check: ${n} instances wait; running durabull replay-check`);
    let out = '';
    let err = '';
    const t0 = performance.now();
    const exitCode = await runCli(['--redis', b.url, '--hub', hub, '--json', 'replay-check', '--module', MODULE, '--batch', String(opts.batch)], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      env: {},
    });
    const wallSeconds = (performance.now() - t0) / 1000;
    if (exitCode !== 0 && !out) throw new Error(`replay-check exited ${exitCode}: ${err}`);
    const report = JSON.parse(out) as { checked: number; divergences: unknown[]; seconds: number };
    b.log(`Replay check: ${report.checked} histories in ${report.seconds.toFixed(1)} s (${wallSeconds.toFixed(1)} s with loading and connecting), ${report.divergences.length} divergences`);
    return { instances: n, checked: report.checked, divergences: report.divergences.length, seconds: report.seconds, wallSeconds, batch: opts.batch, exitCode };
  } finally {
    await rig.close().catch(() => undefined);
    await b.probe.deleteMatching(`dbl:{${hub}:*`);
  }
}
