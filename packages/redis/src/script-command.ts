/**
 * A faster wire encoding for the scripts a backend defines on its connections.
 *
 * ioredis writes a command whose arguments include a Buffer (our msgpack payloads, BullMQ's packed
 * options) through a list of pieces: three per argument, each measured twice and copied into the
 * output by its own native call. A `commitEpisode` or `finishActivity` call has 30 to 60
 * arguments, and that encoding was the largest single cost of a worker process that only finishes
 * activities (about a fifth of its CPU). {@link encodeCommand} writes the same bytes with one string
 * per run of text arguments: one measure and one copy per Buffer argument and per run between them.
 *
 * BullMQ defines its scripts on the connection it is given the same way; a worker gives those the
 * encoding too once its BullMQ workers are ready ({@link useFastEncodingForAll}).
 *
 * {@link useFastEncoding} gives a script defined with ioredis' `defineCommand` a command class that
 * keeps ioredis' EVALSHA/EVAL handling (a script not loaded on a connection is sent as EVAL once;
 * a NOSCRIPT reply forgets that) and encodes with {@link encodeCommand}. Only a client of the
 * ioredis this package imports is changed (a client of another copy keeps its own encoding).
 */
import { Command } from 'ioredis';

type Arg = string | Buffer;

/**
 * The RESP encoding of `name` with `args` (strings or Buffers, as ioredis holds them once it has
 * converted numbers): the bytes ioredis' own `Command.toWritable` writes. A string when no argument
 * is a Buffer (ioredis writes it as UTF-8), a Buffer otherwise.
 */
export function encodeCommand(name: string, args: readonly Arg[]): string | Buffer {
  let text = `*${args.length + 1}\r\n$${Buffer.byteLength(name)}\r\n${name}\r\n`;
  let parts: (string | Buffer)[] | undefined;
  let total = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (typeof a === 'string') {
      text += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
      continue;
    }
    if (a.length === 0) {
      text += '$0\r\n\r\n';
      continue;
    }
    text += `$${a.length}\r\n`;
    parts ??= [];
    parts.push(text, a);
    total += Buffer.byteLength(text) + a.length;
    text = '\r\n';
  }
  if (!parts) return text;
  parts.push(text);
  total += Buffer.byteLength(text);
  const out = Buffer.allocUnsafe(total);
  let offset = 0;
  for (const p of parts) {
    if (typeof p === 'string') offset += out.write(p, offset);
    else offset += p.copy(out, offset);
  }
  return out;
}

interface DefinedScript {
  lua: string;
  sha: string;
  Command: typeof Command;
}

/** What Command holds that toWritable reads and writes (`name`, `args` are public in its types). */
interface CommandState {
  name: string;
  args: Arg[];
  reject: (err: Error) => void;
}

/**
 * Gives the script `name` defined on `client` (ioredis' `defineCommand`) the fast encoding. Returns
 * false, changing nothing, when the client is not one of this package's ioredis or the script is
 * not defined.
 */
export function useFastEncoding(client: object, name: string): boolean {
  const script = (client as { scriptsSet?: Record<string, DefinedScript | undefined> }).scriptsSet?.[name];
  if (!script || typeof script.lua !== 'string' || typeof script.sha !== 'string') return false;
  // ioredis' own script command extends its Command: the same class as ours, or another copy.
  if (Object.getPrototypeOf(script.Command) !== Command) return script.Command.prototype instanceof FastScriptCommand;
  const { lua, sha } = script;
  const loaded = new WeakSet<object>();
  script.Command = class extends FastScriptCommand {
    override toWritable(socket: object): string | Buffer {
      const self = this as unknown as CommandState;
      const reject = self.reject;
      self.reject = (err: Error) => {
        if (err.message.includes('NOSCRIPT')) loaded.delete(socket);
        reject.call(this, err);
      };
      if (!loaded.has(socket)) {
        // First use on this connection (or after NOSCRIPT): EVAL loads the script as it runs it.
        loaded.add(socket);
        self.name = 'eval';
        self.args[0] = lua;
      } else if (self.name === 'eval') {
        self.name = 'evalsha';
        self.args[0] = sha;
      }
      return encodeCommand(self.name, self.args);
    }
  } as unknown as typeof Command;
  return true;
}

/**
 * {@link useFastEncoding} for every script defined on `client` so far (BullMQ's, once its queues and
 * workers are ready, ours); returns how many have it.
 */
export function useFastEncodingForAll(client: object): number {
  const set = (client as { scriptsSet?: Record<string, unknown> }).scriptsSet;
  if (!set) return 0;
  let n = 0;
  for (const name of Object.keys(set)) if (useFastEncoding(client, name)) n++;
  return n;
}

/** The base of the script commands {@link useFastEncoding} makes (tells a script already changed). */
class FastScriptCommand extends Command {}
