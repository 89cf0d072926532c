import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdirSync } from 'node:fs';
import { delimiter, join, resolve as resolvePath } from 'node:path';
import { LOOPBACK_HOST, getFreePort, pingRedis } from './net.js';

/** How to get a Redis for the tests; one line, so that it reads well at the top of a failed run. */
const HOW_TO_GET_REDIS =
  'install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: `brew install redis`) ' +
  'or set REDIS_URL to a Redis that is already running (e.g. REDIS_URL=redis://127.0.0.1:6379)';

/**
 * Thrown when a Redis has to be started but no `redis-server` executable is on the PATH.
 *
 * The message is a single line that says how to get one.
 */
export class RedisServerNotFoundError extends Error {
  override readonly name = 'RedisServerNotFoundError';

  constructor(message = `redis-server was not found on the PATH: ${HOW_TO_GET_REDIS}`) {
    super(message);
  }

  /** The advice part of the default message, for callers that build their own first half. */
  static readonly howToGetRedis = HOW_TO_GET_REDIS;
}

/** Values of redis.conf's `appendfsync`. */
export type AppendFsync = 'always' | 'everysec' | 'no';

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** TCP port on 127.0.0.1; a free one is picked when omitted (and kept across {@link RedisServer.restart}). */
  port?: number;
  /** Working directory of the server (AOF and RDB files); created when missing. Not removed by `stop()`. */
  dataDir: string;
  /** Turns the append-only file on (`--appendonly yes`). Default `false`: nothing survives a restart. */
  appendonly?: boolean;
  /** fsync policy of the append-only file. Default `'everysec'` (Redis' own default). */
  appendfsync?: AppendFsync;
  /** Sets `requirepass`; the returned `url` then carries it. */
  password?: string;
  /** How long to wait for the first `PONG` after spawning. Default 10 000 ms. */
  startTimeoutMs?: number;
}

/** A `redis-server` child process started by {@link startRedisServer}. */
export interface RedisServer {
  /** `redis://[:password@]127.0.0.1:<port>`. */
  readonly url: string;
  /** The TCP port; the same before and after {@link RedisServer.restart}. */
  readonly port: number;
  /** PID of the current process, or of the last one once it has exited; changes on every restart. */
  readonly pid: number;
  /** Absolute path of the data directory. */
  readonly dataDir: string;
  /**
   * Shuts the server down with SIGTERM (Redis fsyncs the AOF on the way out) and resolves once the process has exited.
   * Escalates to SIGKILL after 10 s. Calling it again, or after {@link RedisServer.kill}, is fine.
   */
  stop(): Promise<void>;
  /**
   * Sends `signal` (default SIGKILL, i.e. a crash) without waiting. Follow it with {@link RedisServer.stop} or
   * {@link RedisServer.restart}, which wait for the exit.
   */
  kill(signal?: NodeJS.Signals): void;
  /** {@link RedisServer.stop}, then start a new process on the same port and data directory and wait for `PONG`. */
  restart(): Promise<void>;
}

/** Path of the first executable `redis-server` on the PATH, or `undefined`. */
export function findRedisServer(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, 'redis-server');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/**
 * Spawns `redis-server` (from the PATH) bound to 127.0.0.1, with its own data directory, and resolves once it answers
 * PING.
 *
 * RDB snapshots are off (`--save ''`), so only the AOF (when `appendonly` is on) survives a restart. When no `port` is
 * given and the picked port is taken before Redis binds it, another free port is tried.
 *
 * ```ts
 * const redis = await startRedisServer({ dataDir, appendonly: true, appendfsync: 'always' });
 * // ... use redis.url ...
 * await redis.restart();
 * await redis.stop();
 * ```
 *
 * @throws {RedisServerNotFoundError} when `redis-server` is not on the PATH.
 */
export async function startRedisServer(opts: RedisServerOptions): Promise<RedisServer> {
  const bin = findRedisServer();
  if (bin === undefined) throw new RedisServerNotFoundError();
  const dataDir = resolvePath(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });

  const attempts = opts.port === undefined ? 5 : 1;
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await getFreePort());
    const server = new RedisServerProcess(bin, { ...opts, dataDir, port });
    try {
      await server.start();
      return server;
    } catch (err) {
      if (attempt >= attempts || !(err instanceof AddressInUseError)) throw err;
    }
  }
}

/** Raised internally when the port was taken between picking it and Redis binding it. */
class AddressInUseError extends Error {
  override readonly name = 'AddressInUseError';
}

/** How many lines of the server's own output are kept for error messages. */
const KEPT_OUTPUT_LINES = 30;

/**
 * redis-server processes still running (this file's and redis-cluster.ts's nodes); they get a SIGTERM if the Node.js
 * process exits without stopping them. Add a child here, then call installExitHook().
 */
export const running = new Set<ChildProcess>();
let exitHookInstalled = false;

export function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous; kill() is, and Redis finishes its shutdown on its own.
  process.once('exit', () => {
    for (const child of running) child.kill('SIGTERM');
  });
}

type ResolvedOptions = RedisServerOptions & { dataDir: string; port: number };

class RedisServerProcess implements RedisServer {
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  readonly #bin: string;
  readonly #opts: ResolvedOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #lastPid = -1;
  #output: string[] = [];

  constructor(bin: string, opts: ResolvedOptions) {
    this.#bin = bin;
    this.#opts = opts;
    this.port = opts.port;
    this.dataDir = opts.dataDir;
    const auth = opts.password === undefined ? '' : `:${encodeURIComponent(opts.password)}@`;
    this.url = `redis://${auth}${LOOPBACK_HOST}:${opts.port}`;
  }

  get pid(): number {
    return this.#lastPid;
  }

  async start(): Promise<void> {
    const opts = this.#opts;
    const args = [
      '--port', String(opts.port),
      '--bind', LOOPBACK_HOST,
      '--dir', opts.dataDir,
      '--daemonize', 'no',
      '--logfile', '',
      '--save', '',
      '--appendonly', opts.appendonly ? 'yes' : 'no',
      '--appendfsync', opts.appendfsync ?? 'everysec',
    ];
    if (opts.password !== undefined) args.push('--requirepass', opts.password);

    this.#output = [];
    const child = spawn(this.#bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    running.add(child);
    installExitHook();
    // Always drain both pipes: a full pipe would block the server.
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.#keepOutput(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.#keepOutput(chunk));

    let spawnError: Error | undefined;
    let exitedEarly = false;
    this.#exited = new Promise<void>((resolve) => {
      child.once('error', (err) => {
        spawnError = err;
        running.delete(child);
        resolve();
      });
      child.once('exit', () => {
        exitedEarly = true;
        running.delete(child);
        resolve();
      });
    });
    if (child.pid !== undefined) this.#lastPid = child.pid;

    const timeoutMs = opts.startTimeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError !== undefined) {
        if ((spawnError as NodeJS.ErrnoException).code === 'ENOENT') throw new RedisServerNotFoundError();
        throw spawnError;
      }
      if (exitedEarly) {
        const output = this.#output.join('\n');
        const message = `redis-server on port ${opts.port} exited during startup:\n${output}`;
        throw /Address already in use/i.test(output) ? new AddressInUseError(message) : new Error(message);
      }
      if (await pingRedis(this.url, 500)) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(
          `redis-server on port ${opts.port} did not answer PING within ${timeoutMs} ms:\n${this.#output.join('\n')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const escalate = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      await this.#exited;
    } finally {
      clearTimeout(escalate);
    }
    if (this.#child === child) this.#child = undefined;
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.#child?.kill(signal);
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  #keepOutput(chunk: string): void {
    for (const line of chunk.split('\n')) if (line.trim() !== '') this.#output.push(line);
    if (this.#output.length > KEPT_OUTPUT_LINES) this.#output.splice(0, this.#output.length - KEPT_OUTPUT_LINES);
  }
}
