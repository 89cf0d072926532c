/**
 * What one process sends to Redis, counted in the process itself (W4's worker processes): every
 * command ioredis sends (pipelined or not; a script call as `evalsha:<sha1>`), and every write to
 * a socket connected to Redis. Commands per write is how much the process batches: a command
 * sent on its own is one write, a pipeline or a MULTI block of n commands is one write for n.
 * Counting costs a map update per command and a property read per socket write.
 */
import { createHash } from 'node:crypto';
import { Socket } from 'node:net';
import { Redis } from 'ioredis';

export interface IoCounts {
  /** Commands sent, by lower-case name; script calls as `evalsha:<sha1>` (EVAL as `eval:<sha1 of the script>`). */
  commands: Record<string, number>;
  /** Writes to sockets connected to Redis (one per command sent alone, one per pipeline or MULTI block). */
  writes: number;
  /** Bytes written to them. */
  bytesOut: number;
}

interface CommandLike {
  name: string;
  args: unknown[];
}

let installed: { port: number; counts: IoCounts } | undefined;

/**
 * Starts counting the commands and socket writes of this process to the Redis on `port` (idempotent
 * for one port). Returns a function that reads the counts so far (a copy).
 *
 * @throws {RangeError} when `port` is not a TCP port, or counting already runs for another port.
 */
export function installIoCounter(port: number): () => IoCounts {
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`installIoCounter: port must be a TCP port (1-65535), got ${String(port)}`);
  if (installed && installed.port !== port) throw new RangeError(`installIoCounter: already counting for port ${installed.port}, got ${port}`);
  if (!installed) {
    const counts: IoCounts = { commands: {}, writes: 0, bytesOut: 0 };
    installed = { port, counts };
    const send = Redis.prototype.sendCommand;
    Redis.prototype.sendCommand = function (this: Redis, command: CommandLike, ...rest: unknown[]) {
      const key = commandKey(command);
      counts.commands[key] = (counts.commands[key] ?? 0) + 1;
      return (send as (...a: unknown[]) => unknown).call(this, command, ...rest);
    } as typeof Redis.prototype.sendCommand;
    const write = Socket.prototype.write;
    Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
      if (this.remotePort === port) {
        counts.writes++;
        counts.bytesOut += typeof chunk === 'string' ? Buffer.byteLength(chunk) : ((chunk as { length?: number })?.length ?? 0);
      }
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof Socket.prototype.write;
  }
  const counts = installed.counts;
  return () => ({ commands: { ...counts.commands }, writes: counts.writes, bytesOut: counts.bytesOut });
}

function commandKey(c: CommandLike): string {
  const name = String(c.name).toLowerCase();
  if (name === 'evalsha') return `evalsha:${String(c.args[0])}`;
  if (name === 'eval') return `eval:${createHash('sha1').update(String(c.args[0])).digest('hex')}`;
  return name;
}
