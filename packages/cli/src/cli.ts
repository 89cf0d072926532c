/**
 * The `durabull` command line, built on commander. {@link runCli} runs one command line in-process
 * with the output streams it is given (the tests use it that way); `main.ts` runs it for the
 * process.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DurabullClient, type OrchestrationStatus, type OverlapPolicy, type PurgeFilter } from '@durabull/client';
import { InstanceNotFoundError, type ReplayDivergence, type ReplayReport, ReplayChecker, type RuntimeStatus, ScheduleNotFoundError, ValidationError, assertFunctionName, assertInstanceId, assertScheduleId, toEntityId } from '@durabull/core';
import { type Finding, type ListPage, type ListQuery, assertConnection, assertHubName, checkHub, checkInstance, clusterUrl, parseClusterNodes } from '@durabull/redis';
import { DEFAULT_REDIS_URL, ensureRedis, pingRedis, redactUrl } from '@durabull/testing';
import { DurabullWorker, type DurabullWorkerOptions } from '@durabull/worker';
import { Command, CommanderError, Option } from 'commander';
import { CliError, ExitCode, UsageError, reportError } from './errors.js';
import { historyLines, listLines, scheduleDetailLines, scheduleLines, showFailure, statusLines, toJson, workerLines } from './format.js';
import { parseDateOption, parseIntOption, parseJsonOption, parseStatuses } from './input.js';
import { type LoadedModule, loadModule } from './module-loader.js';
import { waitWithProgress } from './progress.js';

/** A stream the CLI writes to: `process.stdout`, or anything with `write` (tests collect strings). */
export interface CliOutput {
  write(chunk: string): unknown;
  /** True for a terminal: `start --wait` then shows a spinner line instead of plain progress lines. */
  isTTY?: boolean;
  /** Terminal width, for the spinner line. */
  columns?: number;
}

/** Where a command line runs: its output streams, environment and working directory. */
export interface CliIO {
  stdout: CliOutput;
  stderr: CliOutput;
  /** Environment for the defaults of `--redis` (REDIS_URL) and `--hub` (DURABULL_HUB). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Directory that `@file` options, `--module` and `dev`'s `.redis-data/dev` are relative to. Default `process.cwd()`. */
  cwd?: string;
  /**
   * Install SIGINT/SIGTERM handlers: `worker` uses DurabullWorker.closeOnSignals (finish running jobs,
   * then exit the process), `dev` stops its worker and Redis, `start --wait` stops waiting. Only for
   * a process that is the CLI (main.ts sets it). Default false.
   */
  handleSignals?: boolean;
  /** Aborting it stops `worker` and `dev` (closing the worker) and `start --wait`, in-process. */
  signal?: AbortSignal;
}

/** The global options, after defaults from the environment. */
export interface GlobalOptions {
  redis: string;
  hub: string;
  json: boolean;
  /** `--partitions`: the hub's partition count, checked against the hub's (default: the hub's). */
  partitions?: number;
}

/** How long the Redis has to answer PING before a command gives up on it. */
const PING_TIMEOUT_MS = 3000;
/** `start --wait` without `--timeout` waits this long: practically until the instance finishes or Ctrl-C. */
const WAIT_FOREVER_MS = 365 * 24 * 3600 * 1000;

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** State of one command line: its streams, the resolved options, its exit code, and the client it opened (closed at the end). */
class Run {
  globals: GlobalOptions | undefined;
  exitCode: number = ExitCode.Ok;
  private client: DurabullClient | undefined;

  constructor(readonly io: Required<Pick<CliIO, 'stdout' | 'stderr' | 'env' | 'cwd'>> & CliIO) {}

  /** The global options of `cmd`'s program; checks the hub name. */
  options(cmd: Command): GlobalOptions {
    const o = cmd.optsWithGlobals<{ redis: string; clusterNodes?: string; hub: string; json?: boolean; partitions?: string }>();
    assertHubName(o.hub);
    this.globals = { redis: resolveConnection(cmd, o, this.io.env), hub: o.hub, json: o.json === true };
    if (o.partitions !== undefined) this.globals.partitions = parseIntOption('--partitions', o.partitions, 1, 1024);
    return this.globals;
  }

  /** A client on the Redis of the global options, after checking that it answers. */
  async connect(g: GlobalOptions): Promise<DurabullClient> {
    await requireRedis(g.redis);
    // No log lines: stdout and stderr carry the command's output and errors only (a call that Redis
    // does not answer fails with RedisUnavailableError).
    this.client = new DurabullClient({ connection: g.redis, hub: g.hub, logger: false, ...(g.partitions !== undefined ? { partitions: g.partitions } : {}) });
    return this.client;
  }

  line(text = ''): void {
    this.io.stdout.write(`${text}\n`);
  }

  /** Writes `value` as JSON with `--json`, else the human lines. */
  emit(g: GlobalOptions, value: unknown, human: () => string[] | string): void {
    if (g.json) this.line(toJson(value, 2));
    else {
      const h = human();
      for (const l of Array.isArray(h) ? h : [h]) this.line(l);
    }
  }

  async close(): Promise<void> {
    await this.client?.close();
    this.client = undefined;
  }
}

/**
 * The Redis to use, as one string: `--cluster-nodes` (or REDIS_CLUSTER_NODES) gives
 * `redis-cluster://host:port,...`, else `--redis` (or REDIS_URL). An explicit option wins over the other's
 * environment variable; both options, or both variables, are a usage error.
 */
function resolveConnection(cmd: Command, o: { redis: string; clusterNodes?: string }, env: NodeJS.ProcessEnv): string {
  if (o.clusterNodes === undefined || o.clusterNodes === '') {
    assertConnection(o.redis, '--redis');
    return o.redis;
  }
  const nodesExplicit = cmd.getOptionValueSourceWithGlobals('clusterNodes') === 'cli';
  const redisExplicit = cmd.getOptionValueSourceWithGlobals('redis') === 'cli';
  if (nodesExplicit && redisExplicit) throw new UsageError('give --redis or --cluster-nodes, not both');
  if (redisExplicit) return o.redis;
  if (!nodesExplicit && env.REDIS_URL) throw new UsageError('both REDIS_URL and REDIS_CLUSTER_NODES are set: unset one, or choose with --redis or --cluster-nodes');
  return clusterUrl(parseClusterNodes(o.clusterNodes, nodesExplicit ? '--cluster-nodes' : 'REDIS_CLUSTER_NODES'));
}

async function requireRedis(url: string): Promise<void> {
  if (!(await pingRedis(url, PING_TIMEOUT_MS))) {
    throw new CliError(`no Redis answered at ${redactUrl(url)}: start one, or point --redis (or REDIS_URL) at yours (or run \`durabull dev\`)`);
  }
}

/** Every id argument is checked before anything connects: a bad id is a usage error. */
function checkId(id: string): string {
  assertInstanceId(id);
  return id;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Resolves when `signal` aborts or, with `handleSignals`, on SIGINT/SIGTERM; never otherwise. */
function stopRequested(io: CliIO): Promise<string> {
  return new Promise((resolve) => {
    if (io.signal?.aborted) resolve('abort');
    io.signal?.addEventListener('abort', () => resolve('abort'), { once: true });
    if (io.handleSignals) {
      const on = (sig: NodeJS.Signals) => {
        process.off('SIGINT', on);
        process.off('SIGTERM', on);
        resolve(sig);
      };
      process.on('SIGINT', on);
      process.on('SIGTERM', on);
    }
  });
}

/** What a worker runs, as lines for the start-up message. */
function describeFunctions(loaded: LoadedModule, kinds: { orchestrators: boolean; activities: boolean }): string[] {
  const list = (names: string[]) => (names.length ? names.join(', ') : '(none)');
  const out: string[] = [];
  if (kinds.orchestrators) out.push(`  orchestrators: ${list(loaded.registry.orchestratorNames())}`);
  if (kinds.activities) out.push(`  activities:    ${list(loaded.registry.activityNames())}`);
  return out;
}

function resolveIO(io: CliIO): Run['io'] {
  return { ...io, env: io.env ?? process.env, cwd: io.cwd ?? process.cwd() };
}

/**
 * Builds the `durabull` program for one command line. Output goes to the run's streams; commander's
 * own errors (unknown option, missing argument) are thrown as CommanderError instead of exiting.
 */
function buildProgram(run: Run): Command {
  const { io } = run;
  const program = new Command('durabull');
  program
    .description('Start, watch and manage durabull orchestrations; run workers.')
    .version(packageVersion(), '-V, --version')
    .addOption(new Option('--redis <url>', 'Redis URL; redis-cluster://host:port,... for a Redis Cluster (env REDIS_URL)').default(io.env.REDIS_URL || DEFAULT_REDIS_URL))
    .addOption(new Option('--cluster-nodes <host:port,...>', 'a Redis Cluster: some of its nodes (env REDIS_CLUSTER_NODES)').default(io.env.REDIS_CLUSTER_NODES || undefined))
    .addOption(new Option('--hub <name>', 'task hub (env DURABULL_HUB)').default(io.env.DURABULL_HUB || 'default'))
    .addOption(new Option('--partitions <n>', "the hub's partition count, 1 to 1024, fixed when the hub is first used (env DURABULL_PARTITIONS; default: the hub's, 6 for a new hub)").default(io.env.DURABULL_PARTITIONS || undefined))
    .option('--json', 'machine-readable output (JSON on stdout)')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(s),
    })
    .showHelpAfterError('(add --help for usage)')
    .addHelpText(
      'after',
      `
Exit codes: 0 done; 1 failed (missing instance, wrong status, timeout, Redis unreachable, the
orchestration failed with --wait, check findings, replay-check divergences); 2 usage error (bad
option, invalid JSON, id or name; nothing done).

Examples:
  durabull start Chaining --input '"Tokyo"' --id order-1 --wait
  durabull --hub demo status order-1
  durabull history order-1
  durabull list --status Running,Pending --json
  durabull workers
  durabull start Report --start-at 2030-01-01T06:00:00Z
  durabull schedule create nightly --orchestrator Report --cron '0 3 * * *' --tz Europe/Paris
  durabull schedule list
  durabull entity signal @Counter@c1 add --input 5
  durabull entity get @Counter@c1
  durabull raise order-1 Approval --data '{"ok":true}'
  durabull purge --status Completed,Failed --to 2025-01-31
  durabull worker --module ./src/functions.ts
  durabull dev --module ./src/functions.ts
  durabull check --repair
  durabull replay-check --module ./dist/functions.js
  DURABULL_TOKEN=secret durabull dashboard --port 8080`,
    );

  program
    .command('start')
    .description('start an orchestration; prints its instance id')
    .argument('<name>', 'orchestrator name')
    .option('--input <json|@file>', 'input as JSON, or @file to read it from a file')
    .option('--id <instanceId>', 'instance id (default: a random UUID)')
    .option('--wait', 'wait until it finishes; exit code 1 unless it Completed')
    .option('--timeout <ms>', 'with --wait: give up after this many milliseconds (the instance goes on)')
    .option('--allow-unknown-name', 'start it even if no live worker of the hub runs this orchestrator (it waits, Pending, for one)')
    .option('--start-at <time>', 'a delayed start: Pending until then (ISO time with an offset, or epoch ms)')
    .action(async (name: string, opts: { input?: string; id?: string; wait?: boolean; timeout?: string; allowUnknownName?: boolean; startAt?: string }, cmd: Command) => {
      const g = run.options(cmd);
      assertFunctionName('orchestrator', name);
      const input = opts.input === undefined ? undefined : parseJsonOption('--input', opts.input, io.cwd);
      if (opts.id !== undefined) checkId(opts.id);
      if (opts.timeout !== undefined && !opts.wait) throw new UsageError('--timeout needs --wait');
      const timeoutMs = opts.timeout === undefined ? WAIT_FOREVER_MS : parseIntOption('--timeout', opts.timeout, 1);
      const startAt = opts.startAt === undefined ? undefined : parseTimeOption('--start-at', opts.startAt);
      const client = await run.connect(g);
      const instanceId = await client.startNew(name, {
        input,
        allowUnknownName: opts.allowUnknownName === true,
        ...(opts.id !== undefined ? { instanceId: opts.id } : {}),
        ...(startAt !== undefined ? { startAt } : {}),
      });
      if (!opts.wait) {
        run.emit(g, { instanceId, name }, () => `Started ${name} as instance '${instanceId}'.`);
        return;
      }
      if (!g.json) io.stderr.write(`Started ${name} as instance '${instanceId}'; waiting for it to finish.\n`);
      const status = await waitInterruptibly(run, client, instanceId, timeoutMs, g.json);
      if (!status) return;
      run.emit(g, status, () => statusLines(status));
      if (status.runtimeStatus !== 'Completed') {
        const why = status.runtimeStatus === 'Failed' ? `: ${showFailure(status.failure)}` : '';
        io.stderr.write(`error: instance '${instanceId}' ended ${status.runtimeStatus}${why}\n`);
        run.exitCode = ExitCode.Failure;
      }
    });

  program
    .command('status')
    .description("show an instance's status")
    .argument('<id>', 'instance id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = run.options(cmd);
      checkId(id);
      const client = await run.connect(g);
      const status = await client.getStatus(id);
      if (!status) throw new InstanceNotFoundError(id);
      run.emit(g, status, () => statusLines(status));
    });

  program
    .command('history')
    .description("show the execution log of an instance's current execution, one line per history event")
    .argument('<id>', 'instance id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = run.options(cmd);
      checkId(id);
      const client = await run.connect(g);
      const status = await client.getStatus(id, { showHistory: true });
      if (!status) throw new InstanceNotFoundError(id);
      const events = status.history ?? [];
      run.emit(
        g,
        { instanceId: id, name: status.name, executionId: status.executionId, runtimeStatus: status.runtimeStatus, events },
        () =>
          events.length
            ? historyLines(events, { startedAt: status.createdAt })
            : `No history yet: instance '${id}' is ${status.runtimeStatus} and has not run an episode.`,
      );
    });

  program
    .command('list')
    .description('list instances in creation order, a page at a time')
    .option('--status <statuses>', 'only these statuses (comma-separated, repeatable)', collect)
    .option('--name <orchestrator>', 'only instances of this orchestrator')
    .option('--schedule <id>', 'only instances this schedule started')
    .option('--from <time>', 'created at or after (ISO date/time or epoch ms)')
    .option('--to <time>', 'created at or before (ISO date/time or epoch ms)')
    .option('--page-size <n>', 'instances per page, 1 to 1000 (default 100)')
    .option('--cursor <cursor>', 'the next page, from the previous page')
    .action(
      async (
        opts: { status?: string[]; name?: string; schedule?: string; from?: string; to?: string; pageSize?: string; cursor?: string },
        cmd: Command,
      ) => {
        const g = run.options(cmd);
        const query: ListQuery = {};
        if (opts.status) query.status = parseStatuses('--status', opts.status);
        if (opts.name !== undefined) {
          assertFunctionName('orchestrator', opts.name);
          query.name = opts.name;
        }
        if (opts.schedule !== undefined) {
          assertScheduleId(opts.schedule, '--schedule');
          query.scheduleId = opts.schedule;
        }
        if (opts.from !== undefined) query.createdFrom = parseDateOption('--from', opts.from);
        if (opts.to !== undefined) query.createdTo = parseDateOption('--to', opts.to);
        if (opts.pageSize !== undefined) query.pageSize = parseIntOption('--page-size', opts.pageSize, 1, 1000);
        if (opts.cursor !== undefined) query.cursor = opts.cursor;
        const client = await run.connect(g);
        const page = await client.list(query);
        run.emit(g, page, () => {
          const lines = page.instances.length ? listLines(page.instances) : ['No instances.'];
          if (page.nextCursor) lines.push('', `More: add --cursor ${page.nextCursor}`);
          return lines;
        });
      },
    );

  program
    .command('workers')
    .description("list the hub's live workers: what they run, their last heartbeat and stats")
    .action(async (_opts: unknown, cmd: Command) => {
      const g = run.options(cmd);
      const client = await run.connect(g);
      const workers = await client.listWorkers();
      run.emit(g, { hub: g.hub, workers }, () => (workers.length ? workerLines(workers, Date.now()) : `No live worker in task hub '${g.hub}'.`));
    });

  addScheduleCommands(program, run);
  const entity = program.command('entity').description('durable entities: signal one, read its state, list them, purge empty ones');
  entity
    .command('signal')
    .description("send an operation to an entity ('@name@key'); it runs it once, in order")
    .argument('<entity>', "entity id, '@name@key'")
    .argument('<operation>', 'operation name')
    .option('--input <json|@file>', 'operation input as JSON, or @file')
    .option('--at <iso-time>', 'deliver it at this time (a scheduled signal)')
    .action(async (id: string, operation: string, opts: { input?: string; at?: string }, cmd: Command) => {
      const g = run.options(cmd);
      const entityId = toEntityId(id, 'entity signal', 'entity');
      const input = opts.input === undefined ? undefined : parseJsonOption('--input', opts.input, io.cwd);
      const at = opts.at === undefined ? undefined : new Date(opts.at);
      if (at && Number.isNaN(at.getTime())) throw new ValidationError(`entity signal: --at must be a date and time (ISO 8601), got ${JSON.stringify(opts.at)}`);
      const client = await run.connect(g);
      await client.signalEntity(entityId, operation, input, at ? { scheduledTime: at } : {});
      run.emit(g, { entityId: entityId.toString(), operation, ...(at ? { scheduledTime: at.toISOString() } : {}) }, () => `Signalled '${operation}' to entity '${entityId.toString()}'${at ? ` for ${at.toISOString()}` : ''}.`);
    });
  entity
    .command('get')
    .description("an entity's state, operations waiting and lock holder")
    .argument('<entity>', "entity id, '@name@key'")
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = run.options(cmd);
      const entityId = toEntityId(id, 'entity get', 'entity');
      const client = await run.connect(g);
      const m = await client.getEntity(entityId);
      if (!m) throw new CliError(`No entity '${entityId.toString()}' in task hub '${g.hub}'.`);
      run.emit(g, m, () => [
        `${m.id}`,
        `  state:              ${m.hasState ? JSON.stringify(m.state) : '(none)'}`,
        `  pending operations: ${m.pendingOperations}`,
        `  locked by:          ${m.lockedBy ?? '-'}`,
        `  operations run:     ${m.operations} in ${m.batches} batches`,
        `  last modified:      ${m.lastModifiedAt?.toISOString() ?? '-'}`,
      ]);
    });
  entity
    .command('list')
    .description('entities in id order, optionally of one name')
    .option('--name <name>', 'only entities of this name')
    .option('--page-size <n>', 'entities per page (1 to 1000)', '100')
    .option('--cursor <cursor>', 'the nextCursor of the previous page')
    .action(async (opts: { name?: string; pageSize: string; cursor?: string }, cmd: Command) => {
      const g = run.options(cmd);
      const pageSize = parseIntOption('--page-size', opts.pageSize, 1, 1000);
      const client = await run.connect(g);
      const page = await client.listEntities({ pageSize, withState: true, ...(opts.name ? { name: opts.name } : {}), ...(opts.cursor ? { cursor: opts.cursor } : {}) });
      run.emit(g, page, () => [
        ...page.entities.map((m) => `${m.id}  ${m.hasState ? JSON.stringify(m.state) : '(no state)'}  pending ${m.pendingOperations}${m.lockedBy ? `  locked by ${m.lockedBy}` : ''}`),
        ...(page.entities.length === 0 ? ['No entity.'] : []),
        ...(page.nextCursor ? [`Next page: --cursor '${page.nextCursor}'`] : []),
      ]);
    });
  entity
    .command('purge')
    .description('delete empty entities (no state, nothing waiting, no lock): one, or every one with --all')
    .argument('[entity]', "entity id, '@name@key'")
    .option('--all', 'every empty entity of the hub')
    .action(async (id: string | undefined, opts: { all?: boolean }, cmd: Command) => {
      const g = run.options(cmd);
      if (!id && !opts.all) throw new ValidationError("entity purge: give an entity id ('@name@key') or --all");
      const entityId = id ? toEntityId(id, 'entity purge', 'entity') : undefined;
      const client = await run.connect(g);
      const deleted = entityId ? ((await client.purgeEntity(entityId)) ? 1 : 0) : (await client.cleanEntityStorage({ removeEmptyEntities: true, releaseOrphanedLocks: false })).emptyEntitiesRemoved;
      run.emit(g, { entitiesDeleted: deleted }, () => `Deleted ${deleted} empty entit${deleted === 1 ? 'y' : 'ies'}.`);
    });

  program
    .command('raise')
    .description('raise an external event on an instance (ctx.waitForExternalEvent receives it)')
    .argument('<id>', 'instance id')
    .argument('<event>', 'event name')
    .option('--data <json|@file>', 'event data as JSON, or @file')
    .action(async (id: string, event: string, opts: { data?: string }, cmd: Command) => {
      const g = run.options(cmd);
      checkId(id);
      const data = opts.data === undefined ? undefined : parseJsonOption('--data', opts.data, io.cwd);
      const client = await run.connect(g);
      await client.raiseEvent(id, event, data);
      run.emit(g, { instanceId: id, event }, () => `Raised event '${event}' on instance '${id}'.`);
    });

  program
    .command('terminate')
    .description('terminate a running instance at once')
    .argument('<id>', 'instance id')
    .option('--reason <text>', 'reason, recorded as the output')
    .option('--recursive', 'terminate its running sub-orchestrations too')
    .action(async (id: string, opts: { reason?: string; recursive?: boolean }, cmd: Command) => {
      const g = run.options(cmd);
      checkId(id);
      const client = await run.connect(g);
      await client.terminate(id, opts.reason, { recursive: opts.recursive === true });
      run.emit(g, { instanceId: id, runtimeStatus: 'Terminated' }, () => `Terminated instance '${id}'.`);
    });

  for (const op of ['suspend', 'resume'] as const) {
    program
      .command(op)
      .description(op === 'suspend' ? 'suspend an instance: it runs no episode until resumed' : 'resume a suspended instance')
      .argument('<id>', 'instance id')
      .option('--reason <text>', 'reason, recorded in history')
      .action(async (id: string, opts: { reason?: string }, cmd: Command) => {
        const g = run.options(cmd);
        checkId(id);
        const client = await run.connect(g);
        await client[op](id, opts.reason);
        const status = await client.getStatus(id);
        run.emit(g, { instanceId: id, runtimeStatus: status?.runtimeStatus }, () => `${op === 'suspend' ? 'Suspended' : 'Resumed'} instance '${id}'.`);
      });
  }

  program
    .command('purge')
    .description('delete a finished instance (state, history and index entries), or every finished instance that matches filters')
    .argument('[id]', 'instance id')
    .option('--status <statuses>', 'without an id: only these final statuses (comma-separated, repeatable; default Completed, Failed, Terminated)', collect)
    .option('--name <orchestrator>', 'without an id: only instances of this orchestrator')
    .option('--from <time>', 'without an id: created at or after (ISO date/time or epoch ms)')
    .option('--to <time>', 'without an id: created at or before (ISO date/time or epoch ms)')
    .option('--all', 'without an id and filters: every finished instance of the task hub')
    .action(async (id: string | undefined, opts: { status?: string[]; name?: string; from?: string; to?: string; all?: boolean }, cmd: Command) => {
      const g = run.options(cmd);
      const filtered = opts.status !== undefined || opts.name !== undefined || opts.from !== undefined || opts.to !== undefined;
      if (id !== undefined) {
        if (filtered || opts.all) throw new UsageError('purge takes an instance id or filters (--status, --name, --from, --to, --all), not both');
        checkId(id);
        const client = await run.connect(g);
        await client.purge(id);
        run.emit(g, { instanceId: id, purged: true }, () => `Purged instance '${id}'.`);
        return;
      }
      // As purgeInstances: no filter purges nothing unless --all says every finished instance.
      if (!filtered && !opts.all) throw new UsageError('purge needs an instance id, or filters (--status, --name, --from, --to), or --all for every finished instance');
      const filter: PurgeFilter = {};
      if (opts.status) filter.status = parseStatuses('--status', opts.status);
      if (opts.name !== undefined) {
        assertFunctionName('orchestrator', opts.name);
        filter.name = opts.name;
      }
      if (opts.from !== undefined) filter.createdFrom = parseDateOption('--from', opts.from);
      if (opts.to !== undefined) filter.createdTo = parseDateOption('--to', opts.to);
      if (opts.all) filter.all = true;
      const client = await run.connect(g);
      const n = await client.purgeInstances(filter);
      run.emit(g, { instancesDeleted: n }, () => `Purged ${n} finished instance${n === 1 ? '' : 's'}.`);
    });

  program
    .command('restart')
    .description('start a finished instance again with its original input (or a copy under --new-id)')
    .argument('<id>', 'instance id')
    .option('--new-id <instanceId>', 'start the copy under this id and leave the original as it is')
    .action(async (id: string, opts: { newId?: string }, cmd: Command) => {
      const g = run.options(cmd);
      checkId(id);
      if (opts.newId !== undefined) checkId(opts.newId);
      const client = await run.connect(g);
      const instanceId = await client.restart(id, opts.newId !== undefined ? { newInstanceId: opts.newId } : {});
      run.emit(g, { instanceId, restartedFrom: id }, () =>
        instanceId === id ? `Restarted instance '${id}' (a new execution).` : `Restarted instance '${id}' as '${instanceId}'.`,
      );
    });

  program
    .command('worker')
    .description("run a worker for a module's orchestrators and activities until SIGINT/SIGTERM")
    .requiredOption('--module <file>', 'a .ts or .js module exporting `registry` (a Registry), a default Registry, or definitions')
    .addOption(new Option('--orchestrators-only', 'run only the orchestrator worker').conflicts('activitiesOnly'))
    .addOption(new Option('--activities-only', 'run only the activity worker'))
    .option('--concurrency <n>', 'episodes and activities run at once, each (default 20)')
    .option('--metrics-port <port>', 'serve Prometheus metrics at GET /metrics on this port (default: not served)')
    .action(async (opts: { module: string; orchestratorsOnly?: boolean; activitiesOnly?: boolean; concurrency?: string; metricsPort?: string }, cmd: Command) => {
      const g = run.options(cmd);
      const concurrency = opts.concurrency === undefined ? undefined : parseIntOption('--concurrency', opts.concurrency, 1, 10_000);
      const metricsPort = opts.metricsPort === undefined ? undefined : parseIntOption('--metrics-port', opts.metricsPort, 0, 65535);
      const kinds = { orchestrators: opts.activitiesOnly !== true, activities: opts.orchestratorsOnly !== true };
      const loaded = await loadModule(opts.module, io.cwd);
      await requireRedis(g.redis);
      const workerOpts: DurabullWorkerOptions = { connection: g.redis, hub: g.hub, registry: loaded.registry, ...kinds, ...(g.partitions !== undefined ? { partitions: g.partitions } : {}) };
      if (concurrency !== undefined) Object.assign(workerOpts, { orchestratorConcurrency: concurrency, activityConcurrency: concurrency });
      if (metricsPort !== undefined) workerOpts.metricsPort = metricsPort;
      const worker = await new DurabullWorker(workerOpts).start();
      if (io.handleSignals) worker.closeOnSignals();
      const metricsAt = worker.metricsAddress;
      const info = { event: 'worker-started', redis: redactUrl(g.redis), hub: g.hub, module: loaded.path, ...kinds, concurrency: concurrency ?? 20, pid: process.pid, ...(metricsAt ? { metricsPort: metricsAt.port } : {}) };
      if (g.json) run.line(toJson({ ...info, orchestratorNames: loaded.registry.orchestratorNames(), activityNames: loaded.registry.activityNames() }));
      else {
        run.line(`Worker started on ${redactUrl(g.redis)}, task hub '${g.hub}', module ${loaded.path} (${loaded.source}):`);
        for (const l of describeFunctions(loaded, kinds)) run.line(l);
        if (metricsAt) run.line(`Metrics: http://${metricsAt.address}:${metricsAt.port}/metrics`);
        run.line('Stop with Ctrl-C or SIGTERM (running jobs finish first).');
      }
      await stopRequested({ ...io, handleSignals: false });
      await worker.close();
    });

  program
    .command('dev')
    .description('local development: find or start a Redis, run a worker of both kinds for a module, stop on Ctrl-C')
    .requiredOption('--module <file>', 'a .ts or .js module exporting `registry` (a Registry), a default Registry, or definitions')
    .action(async (opts: { module: string }, cmd: Command) => {
      const g = run.options(cmd);
      const loaded = await loadModule(opts.module, io.cwd);
      const dataDir = resolve(io.cwd, '.redis-data/dev');
      const redis = await ensureRedis({ url: g.redis, dataDir, log: (l) => io.stderr.write(`${l}\n`) });
      try {
        const worker = await new DurabullWorker({ connection: redis.url, hub: g.hub, registry: loaded.registry }).start();
        try {
          const kinds = { orchestrators: true, activities: true };
          if (g.json) {
            run.line(
              toJson({
                event: 'dev-started',
                redis: redactUrl(redis.url),
                redisStarted: redis.started,
                ...(redis.started ? { dataDir } : {}),
                hub: g.hub,
                module: loaded.path,
                orchestratorNames: loaded.registry.orchestratorNames(),
                activityNames: loaded.registry.activityNames(),
                pid: process.pid,
              }),
            );
          } else {
            run.line(`durabull dev: Redis ${redactUrl(redis.url)} (${redis.started ? `started here, data in ${dataDir}` : 'already running'}), task hub '${g.hub}'`);
            run.line(`Worker (orchestrators and activities) for ${loaded.path} (${loaded.source}):`);
            for (const l of describeFunctions(loaded, kinds)) run.line(l);
            const first = loaded.registry.orchestratorNames()[0];
            const target = `--redis ${redactUrl(redis.url)}${g.hub === 'default' ? '' : ` --hub ${g.hub}`}`;
            if (first) run.line(`Try, in another terminal: npm run durabull -- ${target} start ${first} --input '<json>' --wait`);
            run.line('Stop with Ctrl-C.');
          }
          const why = await stopRequested(io);
          if (!g.json) run.line(`Stopping (${why}): finishing running jobs${redis.started ? ', then stopping Redis' : ''}.`);
        } finally {
          await worker.close();
        }
      } finally {
        await redis.stop();
      }
    });

  program
    .command('check')
    .description("check the history invariants of one instance, or of every instance of the hub (exit code 1 on findings)")
    .argument('[id]', 'instance id (default: every instance, through the creation index)')
    .option('--repair', 'repair what is safe to repair: re-queue stuck instances and lost tasks (activities, timers, sub-orchestration starts), rewrite index entries')
    .option('--grace-ms <ms>', 'how long an instance may stay scheduled without a job before it counts as stuck (default 5000)')
    .option('--limit <n>', 'check at most this many instances (whole hub); prints a cursor to go on')
    .option('--cursor <cursor>', 'go on from a previous --limit run')
    .action(async (id: string | undefined, opts: { repair?: boolean; graceMs?: string; limit?: string; cursor?: string }, cmd: Command) => {
      const g = run.options(cmd);
      if (id !== undefined) checkId(id);
      if (id !== undefined && (opts.limit !== undefined || opts.cursor !== undefined)) throw new UsageError('--limit and --cursor apply to the whole hub, not to one instance');
      const check = { repair: opts.repair === true, ...(opts.graceMs !== undefined ? { graceMs: parseIntOption('--grace-ms', opts.graceMs, 0) } : {}) };
      const limit = opts.limit === undefined ? undefined : parseIntOption('--limit', opts.limit, 1);
      if (opts.cursor !== undefined && !/^[A-Za-z0-9_-]{1,2048}$/.test(opts.cursor)) throw new UsageError('--cursor: pass the cursor a previous check printed');
      const { backend } = await run.connect(g);
      let findings: Finding[];
      if (id !== undefined) {
        const report = await checkInstance(backend, id, check);
        if (!report.exists && report.findings.length === 0) throw new InstanceNotFoundError(id);
        findings = report.findings;
        run.emit(g, report, () => [
          ...findingLines(findings),
          report.unsettled ? `Instance '${id}' kept changing while read (it is busy, so not stuck); not checked.` : `Checked instance '${id}' (${report.status}): ${countFindings(findings)}.`,
        ]);
      } else {
        const report = await checkHub(backend, { ...check, ...(limit !== undefined ? { limit } : {}), ...(opts.cursor !== undefined ? { cursor: opts.cursor } : {}) });
        findings = report.findings;
        run.emit(g, report, () => {
          const lines = [...findingLines(findings), `Checked ${report.checked} instance${report.checked === 1 ? '' : 's'} of task hub '${g.hub}': ${countFindings(findings)}.`];
          if (report.unsettled.length) lines.push(`Kept changing while read (busy, so not stuck), not checked: ${report.unsettled.join(', ')}`);
          if (report.nextCursor) lines.push(`More: add --cursor ${report.nextCursor}`);
          return lines;
        });
      }
      const open = findings.filter((f) => !f.repaired).length;
      if (open > 0) {
        io.stderr.write(`error: ${open} finding${open === 1 ? '' : 's'} ${opts.repair ? 'could not be repaired' : 'to look at'}${opts.repair ? '' : ' (--repair fixes stuck instances, lost tasks and index entries)'}\n`);
        run.exitCode = ExitCode.Failure;
      }
    });

  program
    .command('replay-check')
    .description("replay the history of every running instance against a module's orchestrators, writing nothing (exit code 1 on any divergence)")
    .requiredOption('--module <file>', 'the new code: a .ts or .js module exporting `registry` (a Registry), a default Registry, or definitions')
    .option('--status <statuses>', 'the instances to check, by status (comma-separated, repeatable; default Running,Pending,Suspended)', collect)
    .option('--limit <n>', 'check at most this many instances')
    .option('--batch <n>', 'histories read per pipelined round trip, 1 to 1000 (default 500)')
    .addHelpText(
      'after',
      '\nReports each instance whose history the new code does not replay as recorded (the step, what the history has, what the code\n' +
        'does), instances of orchestrators the module no longer has, and the ctx.patched ids no checked instance needs any more.\n' +
        'Run it before a deploy: it exits 1 when the new code would break a running instance.',
    )
    .action(async (opts: { module: string; status?: string[]; limit?: string; batch?: string }, cmd: Command) => {
      const g = run.options(cmd);
      const statuses: RuntimeStatus[] = opts.status ? parseStatuses('--status', opts.status) : ['Running', 'Pending', 'Suspended'];
      const limit = opts.limit === undefined ? undefined : parseIntOption('--limit', opts.limit, 1);
      const batch = opts.batch === undefined ? 500 : parseIntOption('--batch', opts.batch, 1, 1000);
      const loaded = await loadModule(opts.module, io.cwd);
      const checker = new ReplayChecker(loaded.registry);
      const { backend } = await run.connect(g);
      const started = performance.now();
      let count = 0;
      // The next page (ids and names from the status index) is read while this one replays.
      let page: Promise<ListPage> | undefined = backend.list({ status: statuses, pageSize: batch });
      while (page) {
        const { instances, nextCursor }: ListPage = await page;
        const take = limit === undefined ? instances : instances.slice(0, Math.max(0, limit - count));
        const histories = backend.getHistories(take.map((s) => s.instanceId));
        count += take.length;
        page = nextCursor && (limit === undefined || count < limit) ? backend.list({ status: statuses, pageSize: batch, cursor: nextCursor }) : undefined;
        const events = await histories;
        for (const [i, s] of take.entries()) await checker.add({ instanceId: s.instanceId, name: s.name, events: events[i]! });
      }
      const report: ReplayReport = checker.report();
      // A partial check cannot tell that no instance needs a patch.
      const partial = limit !== undefined && count >= limit;
      if (partial) for (const p of report.patches) p.removable = false;
      const seconds = (performance.now() - started) / 1000;
      run.emit(g, { hub: g.hub, module: loaded.path, statuses, instances: count, partial, seconds: Number(seconds.toFixed(3)), ...report }, () => replayCheckLines(report, { hub: g.hub, module: opts.module, instances: count, partial, seconds }));
      if (!report.ok) {
        io.stderr.write(`error: ${report.divergences.length} instance${report.divergences.length === 1 ? '' : 's'} would not replay on the new code\n`);
        run.exitCode = ExitCode.Failure;
      }
    });

  program
    .command('dashboard')
    .description('serve the management HTTP API, Bull Board (/queues) and the orchestration view until SIGINT/SIGTERM')
    .addOption(new Option('--port <port>', 'port (env PORT)').default(io.env.PORT || '8080'))
    .addOption(new Option('--host <address>', 'address to listen on (env HOST); anything but loopback needs a token').default(io.env.HOST || '127.0.0.1'))
    .option('--orchestrators <names>', 'comma-separated names that POST /orchestrations/:name accepts (default: any)')
    .addHelpText(
      'after',
      '\nThe API token comes from the environment only (DURABULL_TOKEN), so that it does not show in the process list; beyond loopback it\n' +
        'needs at least 16 characters. Behind a TLS proxy, DURABULL_TRUST_PROXY=true trusts its X-Forwarded-Proto (the token cookie is then Secure).',
    )
    .action(async (opts: { port: string; host: string; orchestrators?: string }, cmd: Command) => {
      const g = run.options(cmd);
      const port = parseIntOption('--port', opts.port, 0, 65535);
      const names = opts.orchestrators?.split(',').map((n) => n.trim()).filter(Boolean);
      for (const n of names ?? []) assertFunctionName('orchestrator', n);
      const token = io.env.DURABULL_TOKEN || undefined;
      const trustProxy = io.env.DURABULL_TRUST_PROXY || undefined;
      const server = await loadDashboard();
      await requireRedis(g.redis);
      let app: DashboardServer;
      try {
        app = server.createServer({
          connection: g.redis,
          hub: g.hub,
          ...(g.partitions !== undefined ? { partitions: g.partitions } : {}),
          host: opts.host,
          ...(token ? { token } : {}),
          ...(names?.length ? { registeredOrchestrators: names } : {}),
          ...(trustProxy ? { trustProxy: trustProxy === 'true' ? true : trustProxy } : {}),
        });
      } catch (err) {
        if (err instanceof ValidationError) throw err;
        throw new UsageError((err as Error).message);
      }
      try {
        let address: string;
        try {
          address = await app.listen({ host: opts.host, port });
        } catch (err) {
          throw new CliError(`cannot listen on ${opts.host}:${port}: ${(err as Error).message}`);
        }
        if (g.json) run.line(toJson({ event: 'dashboard-started', url: `${address}/`, queues: `${address}/queues`, hub: g.hub, redis: redactUrl(g.redis), token: !!token, pid: process.pid }));
        else {
          run.line(`durabull dashboard: ${address}/ (Bull Board at ${address}/queues), task hub '${g.hub}', Redis ${redactUrl(g.redis)}${token ? ', token required' : ''}`);
          run.line('Stop with Ctrl-C.');
        }
        const why = await stopRequested(io);
        if (!g.json) run.line(`Stopping (${why}).`);
      } finally {
        await app.close();
      }
    });

  return program;
}

/** The options of `schedule create` and `schedule update`, as commander gives them. */
interface ScheduleOptions {
  orchestrator?: string;
  input?: string;
  cron?: string;
  tz?: string;
  every?: string;
  overlap?: string;
  catchupWindow?: string;
  startAt?: string;
  endAt?: string;
}

const OVERLAPS: readonly OverlapPolicy[] = ['skip', 'bufferOne', 'allowAll'];

/** The spec fields `schedule create` / `update` were given, parsed (UsageError naming the option). */
function scheduleSpecOf(o: ScheduleOptions, cwd: string): Record<string, unknown> {
  const spec: Record<string, unknown> = {};
  if (o.orchestrator !== undefined) {
    assertFunctionName('orchestrator', o.orchestrator, '--orchestrator');
    spec.orchestrator = o.orchestrator;
  }
  if (o.input !== undefined) spec.input = parseJsonOption('--input', o.input, cwd);
  if (o.cron !== undefined) spec.cron = o.cron;
  if (o.tz !== undefined) spec.timeZone = o.tz;
  if (o.every !== undefined) spec.intervalMs = parseIntOption('--every', o.every, 1000);
  if (o.overlap !== undefined) {
    if (!OVERLAPS.includes(o.overlap as OverlapPolicy)) throw new UsageError(`--overlap must be one of ${OVERLAPS.join(', ')}, got ${JSON.stringify(o.overlap)}`);
    spec.overlap = o.overlap;
  }
  if (o.catchupWindow !== undefined) spec.catchupWindowMs = parseIntOption('--catchup-window', o.catchupWindow, 1000);
  if (o.startAt !== undefined) spec.startAt = parseTimeOption('--start-at', o.startAt);
  if (o.endAt !== undefined) spec.endAt = parseTimeOption('--end-at', o.endAt);
  return spec;
}

/** `--start-at` / `--end-at`: epoch ms, or an ISO time with an offset (checked again by the client). */
function parseTimeOption(option: string, value: string): Date | string | number {
  if (/^\d+$/.test(value)) return Number(value);
  if (Number.isNaN(Date.parse(value))) throw new UsageError(`${option} must be an ISO 8601 time with an offset (2030-01-01T06:00:00Z) or epoch milliseconds, got ${JSON.stringify(value)}`);
  return value;
}

/** `durabull schedule ...`: create, update, pause, resume, trigger, delete, get and list schedules. */
function addScheduleCommands(program: Command, run: Run): void {
  const { io } = run;
  const schedule = program.command('schedule').description('manage schedules: start an orchestration on a cron expression or at an interval');
  const specOptions = (c: Command) =>
    c
      .option('--input <json|@file>', 'the input every tick starts it with (JSON, or @file)')
      .option('--cron <expression>', 'a cron expression (5 fields, or 6 with seconds first)')
      .option('--tz <zone>', 'the IANA time zone of --cron (default UTC)')
      .option('--every <ms>', 'a fixed interval in milliseconds (>= 1000), instead of --cron')
      .option('--overlap <policy>', 'while the last instance runs: skip (default), bufferOne or allowAll')
      .option('--catchup-window <ms>', 'ticks missed while no worker ran are started when at most this late (default 3600000)')
      .option('--start-at <time>', 'no tick before this time (ISO time with an offset, or epoch ms)')
      .option('--end-at <time>', 'no tick after this time');

  specOptions(
    schedule
      .command('create')
      .description('create a schedule')
      .argument('<id>', 'schedule id')
      .requiredOption('--orchestrator <name>', 'the orchestrator each tick starts'),
  )
    .option('--paused', 'create it paused (no tick until resumed)')
    .option('--allow-unknown-name', 'create it even if no live worker of the hub runs the orchestrator')
    .action(async (id: string, opts: ScheduleOptions & { paused?: boolean; allowUnknownName?: boolean }, cmd: Command) => {
      const g = run.options(cmd);
      assertScheduleId(id);
      const spec = scheduleSpecOf(opts, io.cwd);
      const client = await run.connect(g);
      const s = await client.schedules.create({
        ...(spec as { orchestrator: string }),
        scheduleId: id,
        ...(opts.paused ? { paused: true } : {}),
        ...(opts.allowUnknownName ? { allowUnknownName: true } : {}),
      });
      run.emit(g, s, () => [`Created schedule '${id}'.`, ...scheduleDetailLines(s)]);
    });

  specOptions(schedule.command('update').description("change a schedule's spec (the options given)").argument('<id>', 'schedule id').option('--orchestrator <name>', 'the orchestrator each tick starts')).action(
    async (id: string, opts: ScheduleOptions, cmd: Command) => {
      const g = run.options(cmd);
      assertScheduleId(id);
      const changes = scheduleSpecOf(opts, io.cwd);
      if (Object.keys(changes).length === 0) throw new UsageError('schedule update needs at least one option to change (--cron, --every, --input, ...)');
      const client = await run.connect(g);
      const s = await client.schedules.update(id, changes);
      run.emit(g, s, () => [`Updated schedule '${id}'.`, ...scheduleDetailLines(s)]);
    },
  );

  for (const op of ['pause', 'resume', 'delete'] as const) {
    schedule
      .command(op)
      .description(op === 'pause' ? 'pause a schedule: no tick until resumed' : op === 'resume' ? 'resume a paused schedule from its next tick' : 'delete a schedule (its instances stay)')
      .argument('<id>', 'schedule id')
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const g = run.options(cmd);
        assertScheduleId(id);
        const client = await run.connect(g);
        await client.schedules[op](id);
        const done = op === 'pause' ? 'Paused' : op === 'resume' ? 'Resumed' : 'Deleted';
        run.emit(g, { scheduleId: id, [op === 'delete' ? 'deleted' : 'paused']: op !== 'resume' }, () => `${done} schedule '${id}'.`);
      });
  }

  schedule
    .command('trigger')
    .description('start the orchestrator now (also while paused), under the overlap policy')
    .argument('<id>', 'schedule id')
    .option('--overlap <policy>', 'this once: skip, bufferOne or allowAll')
    .action(async (id: string, opts: { overlap?: string }, cmd: Command) => {
      const g = run.options(cmd);
      assertScheduleId(id);
      const { overlap } = scheduleSpecOf({ ...(opts.overlap !== undefined ? { overlap: opts.overlap } : {}) }, io.cwd) as { overlap?: OverlapPolicy };
      const client = await run.connect(g);
      const r = await client.schedules.trigger(id, overlap ? { overlap } : {});
      run.emit(g, { scheduleId: id, ...r }, () =>
        r.outcome === 'started'
          ? `Started instance '${r.instanceId}'.`
          : r.outcome === 'buffered'
            ? `Buffered: instance '${r.instanceId}' starts once the last one has finished.`
            : `Skipped: the last instance of schedule '${id}' is still running (try --overlap allowAll).`,
      );
    });

  schedule
    .command('get')
    .description('show a schedule')
    .argument('<id>', 'schedule id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const g = run.options(cmd);
      assertScheduleId(id);
      const client = await run.connect(g);
      const s = await client.schedules.get(id);
      if (!s) throw new ScheduleNotFoundError(id);
      run.emit(g, s, () => scheduleDetailLines(s));
    });

  schedule
    .command('list')
    .description('list schedules in id order, a page at a time')
    .option('--page-size <n>', 'schedules per page, 1 to 1000 (default 100)')
    .option('--cursor <id>', 'the next page, from the previous page')
    .action(async (opts: { pageSize?: string; cursor?: string }, cmd: Command) => {
      const g = run.options(cmd);
      const query: { pageSize?: number; cursor?: string } = {};
      if (opts.pageSize !== undefined) query.pageSize = parseIntOption('--page-size', opts.pageSize, 1, 1000);
      if (opts.cursor !== undefined) {
        assertScheduleId(opts.cursor, '--cursor');
        query.cursor = opts.cursor;
      }
      const client = await run.connect(g);
      const page = await client.schedules.list(query);
      run.emit(g, page, () => {
        const lines = page.schedules.length ? scheduleLines(page.schedules) : [`No schedules in task hub '${g.hub}'.`];
        if (page.nextCursor) lines.push('', `More: add --cursor ${page.nextCursor}`);
        return lines;
      });
    });
}

/** What `dashboard` uses of @durabull/server's `createServer` (a Fastify instance). */
export interface DashboardServer {
  listen(opts: { host: string; port: number }): Promise<string>;
  close(): Promise<unknown>;
}

/** The part of the @durabull/server module that `dashboard` uses. */
export interface DashboardModule {
  createServer(opts: { connection: string; hub: string; partitions?: number; host: string; token?: string; registeredOrchestrators?: string[]; trustProxy?: boolean | string }): DashboardServer;
}

/**
 * Imports @durabull/server (the workspace app `apps/server`) on demand: fastify and Bull Board load
 * only for `dashboard`, and the CLI keeps no build-time dependency on that private app (cli.test.ts
 * checks that its `createServer` fits {@link DashboardModule}).
 */
async function loadDashboard(): Promise<DashboardModule> {
  const specifier = '@durabull/server';
  let mod: Partial<DashboardModule>;
  try {
    mod = (await import(specifier)) as Partial<DashboardModule>;
  } catch (err) {
    throw new CliError(`the dashboard needs the @durabull/server package (apps/server), which could not be loaded: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof mod.createServer !== 'function') throw new CliError('@durabull/server does not export createServer');
  return mod as DashboardModule;
}

/** The lines of a replay check: divergences, missing orchestrators, patches, then a summary. */
function replayCheckLines(report: ReplayReport, run: { hub: string; module: string; instances: number; partial: boolean; seconds: number }): string[] {
  const lines: string[] = [];
  const step = (d: ReplayDivergence) =>
    d.step?.sequenceNumber !== undefined ? ` at step #${d.step.sequenceNumber}${d.step.historyIndex !== undefined ? ` (history[${d.step.historyIndex}])` : ''}` : '';
  for (const d of report.divergences) {
    lines.push(`${d.instanceId}  ${d.orchestrator}  ${d.kind}${step(d)}`, `    history: ${d.history}`, `    code:    ${d.code}`);
  }
  const missing = new Map<string, number>();
  for (const d of report.divergences) if (d.kind === 'missing-orchestrator') missing.set(d.orchestrator, (missing.get(d.orchestrator) ?? 0) + 1);
  for (const [name, n] of missing) lines.push(`Orchestrator '${name}' is not in the new code, and ${n} instance${n === 1 ? '' : 's'} of it would fail.`);
  for (const p of report.patches) {
    if (p.predating > 0) lines.push(`Patch '${p.patchId}': ${p.predating} instance${p.predating === 1 ? '' : 's'} still take the old path; keep it.`);
    else if (p.removable) lines.push(`Patch '${p.patchId}': no instance takes the old path any more (${p.applied} applied it); ctx.patched('${p.patchId}') can give way to the new path.`);
    else lines.push(`Patch '${p.patchId}': no instance checked takes the old path (${p.applied} applied it), but --limit stopped the check early.`);
  }
  const n = report.divergences.length;
  const notStarted = report.notStarted.length ? ` (${report.notStarted.length} not started yet: they run the new code from the start)` : '';
  lines.push(
    `Replayed ${report.checked} of ${run.instances} instance${run.instances === 1 ? '' : 's'} of task hub '${run.hub}'${notStarted} against ${run.module} in ${run.seconds.toFixed(1)} s: ` +
      (n === 0 ? 'no divergence.' : `${n} divergence${n === 1 ? '' : 's'}.`),
  );
  return lines;
}

/** One line per finding: instance, code, message, and what the repair did. */
function findingLines(findings: readonly Finding[]): string[] {
  return findings.map((f) => `${f.instanceId}  ${f.code}  ${f.message}${f.repaired ? `  [repaired: ${f.repaired}]` : ''}`);
}

function countFindings(findings: readonly Finding[]): string {
  if (findings.length === 0) return 'no findings';
  const repaired = findings.filter((f) => f.repaired).length;
  return `${findings.length} finding${findings.length === 1 ? '' : 's'}${repaired ? `, ${repaired} repaired` : ''}`;
}

/** `start --wait`: waits with progress on stderr; with Ctrl-C (or the abort signal) stops waiting, exit code 130. */
async function waitInterruptibly(
  run: Run,
  client: DurabullClient,
  instanceId: string,
  timeoutMs: number,
  quiet: boolean,
): Promise<OrchestrationStatus | undefined> {
  const { io } = run;
  const stop = new AbortController();
  const onStop = () => stop.abort(new Error('interrupted'));
  io.signal?.addEventListener('abort', onStop, { once: true });
  if (io.handleSignals) process.once('SIGINT', onStop);
  try {
    // With --json, stdout and stderr carry nothing but the result and errors.
    const out = quiet ? { write: () => true } : io.stderr;
    return await waitWithProgress(client, instanceId, { timeoutMs, out, signal: stop.signal });
  } catch (err) {
    if (!stop.signal.aborted) throw err;
    io.stderr.write(`Stopped waiting; instance '${instanceId}' goes on (durabull status ${instanceId}).\n`);
    run.exitCode = ExitCode.Interrupted;
    return undefined;
  } finally {
    io.signal?.removeEventListener('abort', onStop);
    if (io.handleSignals) process.off('SIGINT', onStop);
  }
}

/**
 * Runs one `durabull` command line (`argv` without the node and script paths) and resolves to its
 * exit code; it never calls `process.exit` itself, except that `worker` with `handleSignals` exits
 * the process on SIGINT/SIGTERM once its worker has closed. Errors are reported on `io.stderr` as
 * one `error: ...` line.
 *
 * ```ts
 * const out: string[] = [];
 * const code = await runCli(['--hub', 'demo', 'status', 'order-1'], {
 *   stdout: { write: (s) => out.push(s) },
 *   stderr: { write: (s) => out.push(s) },
 * });
 * ```
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  const run = new Run(resolveIO(io));
  const program = buildProgram(run);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return run.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has printed its message already. Help and version are not errors.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0) return ExitCode.Ok;
      return ExitCode.Usage;
    }
    const report = reportError(err, { ...(run.globals ? { hub: run.globals.hub } : {}), debug: !!run.io.env.DURABULL_DEBUG });
    run.io.stderr.write(`error: ${report.message}\n`);
    if (report.detail) run.io.stderr.write(`${report.detail}\n`);
    return report.exitCode;
  } finally {
    await run.close().catch(() => undefined);
  }
}
