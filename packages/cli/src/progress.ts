/**
 * `start --wait`: waits for the instance while showing how it goes, on stderr (stdout keeps the
 * result). On a terminal: one status line with a spinner, rewritten in place. Elsewhere: a plain
 * line each time the status or custom status changes.
 */
import type { DurabullClient, OrchestrationStatus } from '@durabull/client';
import { formatOffset, showValue } from './format.js';

/** Where progress goes: a stream, and whether it is a terminal. */
export interface ProgressOutput {
  write(chunk: string): unknown;
  isTTY?: boolean;
  /** Width of the terminal: the progress line is cut to fit, so that rewriting it in place works. */
  columns?: number;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const CLEAR_LINE = '\r\x1b[2K';

/** Options of {@link waitWithProgress}. */
export interface WaitProgressOptions {
  /** Give up after this long (WaitTimeoutError); the instance goes on. */
  timeoutMs: number;
  out: ProgressOutput;
  /** How often the status is read for the progress line. Default 250 ms. */
  pollMs?: number;
  /** Stops waiting early (Ctrl-C). */
  signal?: AbortSignal;
}

/**
 * Waits until the instance is Completed, Failed or Terminated (`client.waitForCompletion`) and
 * returns its final status, reporting progress meanwhile from `client.getStatus`.
 */
export async function waitWithProgress(client: DurabullClient, instanceId: string, opts: WaitProgressOptions): Promise<OrchestrationStatus> {
  const { out } = opts;
  const tty = out.isTTY === true;
  const t0 = Date.now();
  let current: OrchestrationStatus | undefined;
  let lastPlain = '';
  let frame = 0;
  let done = false;

  const summary = (s: OrchestrationStatus | undefined): string => {
    if (!s) return 'waiting for the instance';
    const custom = s.customStatus === undefined ? '' : `, custom status ${showValue(s.customStatus, 60)}`;
    return `${s.runtimeStatus}${custom}`;
  };
  const render = () => {
    const s = current;
    const episodes = s ? `, ${s.episodes} episode${s.episodes === 1 ? '' : 's'}` : '';
    const text = `${FRAMES[frame++ % FRAMES.length]} ${instanceId}: ${summary(s)}${episodes} (${formatOffset(Date.now() - t0).slice(1)})`;
    const width = (out.columns ?? 0) > 1 ? out.columns! - 1 : Infinity;
    out.write(`${CLEAR_LINE}${text.length > width ? `${text.slice(0, width - 1)}…` : text}`);
  };
  const report = () => {
    if (tty) return;
    const line = summary(current);
    if (line === lastPlain) return;
    lastPlain = line;
    out.write(`[${formatOffset(Date.now() - t0)}] ${instanceId}: ${line}\n`);
  };

  let wake: (() => void) | undefined;
  const poll = (async () => {
    while (!done) {
      current = (await client.getStatus(instanceId).catch(() => undefined)) ?? current;
      if (!done) report();
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, opts.pollMs ?? 250).unref();
      });
    }
  })();
  const spinner = tty ? setInterval(render, 80) : undefined;
  if (tty) render();
  try {
    const waiting = client.waitForCompletion(instanceId, { timeoutMs: opts.timeoutMs });
    if (!opts.signal) return await waiting;
    const signal = opts.signal;
    return await new Promise<OrchestrationStatus>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      waiting.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  } finally {
    done = true;
    if (spinner) clearInterval(spinner);
    wake?.();
    await poll;
    if (tty) out.write(CLEAR_LINE);
  }
}
