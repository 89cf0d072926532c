/**
 * A throwaway Redis Cluster on loopback: `redis-server` processes with `--cluster-enabled yes`,
 * slots assigned evenly (CLUSTER ADDSLOTSRANGE), joined with CLUSTER MEET, replicas attached with
 * CLUSTER REPLICATE. Ready once every node reports `cluster_state:ok` (Redis holds a master at
 * `fail` for 2 s after its first state update, so a start takes a little over 2 s).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { Redis } from 'ioredis';
import { LOOPBACK_HOST, getFreePort, isPortFree } from './net.js';
import { RedisServerNotFoundError, findRedisServer, installExitHook, running } from './redis-server.js';

const SLOTS = 16384;

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters (each gets an even share of the 16384 slots). Default 3; at least 1. */
  masters?: number;
  /** Replicas of each master. Default 0. */
  replicasPerMaster?: number;
  /** Each node's working directory is `<dataDir>/<port>` (nodes.conf); created when missing, not removed by `stop()`. */
  dataDir: string;
  /** `cluster-node-timeout`: how long a master may be silent before its replica takes over. Default 2000 ms. */
  nodeTimeoutMs?: number;
  /** First port of a block of consecutive ports (bus ports are these + 10000); free ports are picked when omitted. */
  basePort?: number;
  /** How long the whole start may take. Default 30 000 ms. */
  startTimeoutMs?: number;
}

/** One node of a {@link RedisCluster}. */
export interface RedisClusterNode {
  readonly port: number;
  /** PID of its redis-server. */
  readonly pid: number;
  /** The role it was started in (a failover changes the real one; see {@link RedisCluster.waitForPromotion}). */
  readonly role: 'master' | 'replica';
  /** For a replica: the port of the master it was started for. */
  readonly masterPort?: number;
}

/** A cluster started by {@link startRedisCluster}. */
export interface RedisCluster {
  readonly nodes: readonly RedisClusterNode[];
  /** The masters' ports (as started). */
  readonly masterPorts: readonly number[];
  /** `redis-cluster://127.0.0.1:<port>,...` of the masters: a `connection` string durabull accepts. */
  readonly url: string;
  /** `127.0.0.1:<port>,...` of the masters (`REDIS_CLUSTER_NODES`). */
  readonly nodeList: string;
  /** Stops every node (SIGTERM by PID, SIGKILL after 5 s) and resolves once they have exited; again is fine. */
  stop(): Promise<void>;
  /** SIGKILL of one node (a crash), resolved once it has exited. */
  killNode(port: number): Promise<void>;
  /**
   * Resolves with the port of the node that now serves the slots `masterPort` served (a replica
   * promoted after that master failed), once every live node agrees and reports `cluster_state:ok`.
   */
  waitForPromotion(masterPort: number, timeoutMs?: number): Promise<number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether `pid` is gone or a zombie (an exited child its parent has not reaped is stopped for us). */
function isStopped(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** A block of `n` consecutive ports, free with their bus ports (+10000); bus ports stay under 65536. */
async function freePortBlock(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const seed = await getFreePort();
    const base = seed + n + 10000 < 65536 ? seed : 20000 + Math.floor(Math.random() * 20000);
    let ok = true;
    for (let i = 0; i < n && ok; i++) ok = (await isPortFree(base + i)) && (await isPortFree(base + i + 10000));
    if (ok) return base;
  }
  throw new Error(`no block of ${n} free ports (with their cluster bus ports) found on ${LOOPBACK_HOST}`);
}

function node(port: number): Redis {
  const r = new Redis({ host: LOOPBACK_HOST, port, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: true, retryStrategy: () => 50 });
  r.on('error', () => {});
  return r;
}

async function clusterInfo(r: Redis): Promise<Record<string, string>> {
  const text = (await r.call('CLUSTER', 'INFO')) as string;
  return Object.fromEntries(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => l.split(':', 2) as [string, string]));
}

/**
 * Starts a Redis Cluster of `masters` masters (each with `replicasPerMaster` replicas) on free loopback
 * ports and resolves once every node reports `cluster_state:ok`. Each node runs with `--save ''`,
 * no AOF, `--repl-diskless-sync-delay 0` and `--enable-debug-command local` (tests may `DEBUG SLEEP`).
 *
 * @throws {RedisServerNotFoundError} when `redis-server` is not on the PATH.
 */
export async function startRedisCluster(opts: RedisClusterOptions): Promise<RedisCluster> {
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 0;
  if (!Number.isInteger(masters) || masters < 1) throw new RangeError(`masters must be an integer >= 1, got ${String(masters)}`);
  if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError(`replicasPerMaster must be an integer >= 0, got ${String(replicas)}`);
  const bin = findRedisServer();
  if (bin === undefined) throw new RedisServerNotFoundError();
  const total = masters * (1 + replicas);
  const base = opts.basePort ?? (await freePortBlock(total));
  const dataDir = resolvePath(opts.dataDir);
  const nodeTimeout = opts.nodeTimeoutMs ?? 2000;
  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);

  const children: ChildProcess[] = [];
  const nodes: RedisClusterNode[] = [];
  const clients: Redis[] = [];
  const stop = async (): Promise<void> => {
    for (const c of clients) c.disconnect();
    await Promise.all(children.map((c) => stopChild(c, 'SIGTERM')));
  };
  try {
    for (let i = 0; i < total; i++) {
      const port = base + i;
      const dir = join(dataDir, String(port));
      mkdirSync(dir, { recursive: true });
      const args = [
        '--port', String(port),
        '--bind', LOOPBACK_HOST,
        '--dir', dir,
        '--daemonize', 'no',
        '--logfile', '',
        '--save', '',
        '--appendonly', 'no',
        '--cluster-enabled', 'yes',
        '--cluster-config-file', join(dir, 'nodes.conf'),
        '--cluster-node-timeout', String(nodeTimeout),
        '--repl-diskless-sync-delay', '0',
        '--enable-debug-command', 'local',
      ];
      const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.resume();
      children.push(child);
      running.add(child);
      child.once('exit', () => running.delete(child));
      installExitHook();
      const master = i < masters;
      const masterPort = master ? undefined : base + ((i - masters) % masters);
      nodes.push({ port, pid: child.pid ?? -1, role: master ? 'master' : 'replica', ...(masterPort !== undefined ? { masterPort } : {}) });
    }
    for (const n of nodes) clients.push(node(n.port));
    // Every node answers PING.
    for (const [i, c] of clients.entries()) {
      for (;;) {
        if (children[i]!.exitCode !== null) throw new Error(`redis-server on port ${nodes[i]!.port} exited during startup`);
        try {
          if ((await c.ping()) === 'PONG') break;
        } catch {
          // not yet
        }
        if (Date.now() > deadline) throw new Error(`redis-server on port ${nodes[i]!.port} did not answer PING`);
        await sleep(20);
      }
    }
    // Slots, epochs, then the handshake.
    for (let m = 0; m < masters; m++) {
      const from = Math.floor((m * SLOTS) / masters);
      const to = Math.floor(((m + 1) * SLOTS) / masters) - 1;
      await clients[m]!.call('CLUSTER', 'ADDSLOTSRANGE', from, to);
      await clients[m]!.call('CLUSTER', 'SET-CONFIG-EPOCH', m + 1);
    }
    for (let i = 1; i < total; i++) await clients[i]!.call('CLUSTER', 'MEET', LOOPBACK_HOST, base);
    // Replicas: REPLICATE answers "Unknown node" until gossip has told the replica about its master.
    for (let i = masters; i < total; i++) {
      const masterId = (await clients[nodes[i]!.masterPort! - base]!.call('CLUSTER', 'MYID')) as string;
      for (;;) {
        try {
          if ((await clients[i]!.call('CLUSTER', 'REPLICATE', masterId)) === 'OK') break;
        } catch {
          // not known yet
        }
        if (Date.now() > deadline) throw new Error(`replica on port ${nodes[i]!.port} could not REPLICATE its master`);
        await sleep(50);
      }
    }
    // cluster_state:ok and every node known on every node.
    for (const c of clients) {
      for (;;) {
        const info = await clusterInfo(c).catch(() => ({}) as Record<string, string>);
        if (info.cluster_state === 'ok' && Number(info.cluster_known_nodes) === total) break;
        if (Date.now() > deadline) throw new Error(`cluster did not reach cluster_state:ok (port ${String(c.options.port)}: ${JSON.stringify(info)})`);
        await sleep(50);
      }
    }
    // A replica is ready once its link to the master is up.
    for (let i = masters; i < total; i++) {
      for (;;) {
        const info = String(await clients[i]!.info('replication').catch(() => ''));
        if (/master_link_status:up/.test(info)) break;
        if (Date.now() > deadline) throw new Error(`replica on port ${nodes[i]!.port} did not sync with its master`);
        await sleep(50);
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  for (const c of clients) c.disconnect();
  clients.length = 0;

  const masterPorts = nodes.filter((n) => n.role === 'master').map((n) => n.port);
  const nodeList = masterPorts.map((p) => `${LOOPBACK_HOST}:${p}`).join(',');
  const childOf = (port: number): ChildProcess => {
    const i = nodes.findIndex((n) => n.port === port);
    if (i < 0) throw new RangeError(`no node of this cluster listens on port ${port}`);
    return children[i]!;
  };
  return {
    nodes,
    masterPorts,
    nodeList,
    url: `redis-cluster://${nodeList}`,
    stop,
    killNode: (port) => stopChild(childOf(port), 'SIGKILL'),
    async waitForPromotion(masterPort, timeoutMs = 30_000) {
      const until = Date.now() + timeoutMs;
      const i = nodes.findIndex((n) => n.port === masterPort);
      if (i < 0 || nodes[i]!.role !== 'master') throw new RangeError(`port ${masterPort} is not a master of this cluster`);
      const slot = Math.floor((i * SLOTS) / masters);
      const live = nodes.filter((n) => !isStopped(n.pid));
      const conns = live.map((n) => node(n.port));
      try {
        for (;;) {
          const owners = await Promise.all(
            conns.map(async (c) => {
              try {
                const info = await clusterInfo(c);
                if (info.cluster_state !== 'ok') return undefined;
                const shards = (await c.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
                const owner = shards.find(([from, to]) => from <= slot && slot <= to);
                return owner?.[2]?.[1];
              } catch {
                return undefined;
              }
            }),
          );
          const first = owners[0];
          if (first !== undefined && first !== masterPort && owners.every((o) => o === first)) return first;
          if (Date.now() > until) throw new Error(`no replica took over the slots of port ${masterPort} within ${timeoutMs} ms (owners seen: ${JSON.stringify(owners)})`);
          await sleep(100);
        }
      } finally {
        for (const c of conns) c.disconnect();
      }
    },
  };
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  const escalateAt = Date.now() + 5000;
  while (!isStopped(pid) && child.exitCode === null && child.signalCode === null) {
    if (Date.now() > escalateAt) child.kill('SIGKILL');
    await sleep(10);
  }
}
