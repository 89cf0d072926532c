/**
 * Loads the Lua scripts of `lua/` into an ioredis client as custom commands (EVALSHA with a
 * fallback to EVAL, handled by ioredis). A script named `verbNoun-N.lua` takes N keys.
 * `--- @include "path"` lines inline a helper file once, in dependency order; cycles and missing
 * files are errors.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RedisClient } from './connection.js';
import { useFastEncoding } from './script-command.js';

export interface LoadedScript {
  name: string;
  numberOfKeys: number;
  lua: string;
}

const INCLUDE_RE = /^\s*---\s*@include\s+"([^"]+)"\s*$/;

export class ScriptLoaderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ScriptLoaderError';
  }
}

/** Reads `verbNoun-N` back out of a file name. */
export function splitFilename(file: string): { name: string; numberOfKeys: number } {
  const m = /^(.+)-(\d+)\.lua$/.exec(file);
  if (!m) throw new ScriptLoaderError(`Script file '${file}' is not named verbNoun-N.lua`);
  return { name: m[1]!, numberOfKeys: Number(m[2]) };
}

/**
 * Resolves includes of one script file: each `--- @include` line is replaced by the included
 * file (its own includes resolved first); a file already included is not inlined again.
 */
export function resolveScript(file: string): string {
  const included = new Set<string>();
  const visit = (path: string, stack: string[]): string[] => {
    if (stack.includes(path)) throw new ScriptLoaderError(`Circular @include: ${[...stack, path].join(' -> ')}`);
    if (!existsSync(path)) throw new ScriptLoaderError(`Included file not found: ${path} (from ${stack.at(-1) ?? '?'})`);
    const out: string[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const m = INCLUDE_RE.exec(line);
      if (!m) {
        out.push(line);
        continue;
      }
      const target = resolve(dirname(path), m[1]!.endsWith('.lua') ? m[1]! : `${m[1]}.lua`);
      if (included.has(target)) continue;
      out.push(...visit(target, [...stack, path]));
      included.add(target);
    }
    return out;
  };
  return visit(resolve(file), []).join('\n');
}

export function scriptsDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const candidate of [join(here, 'lua'), join(here, '..', 'src', 'lua')]) {
    if (existsSync(candidate)) return candidate;
  }
  throw new ScriptLoaderError(`Lua scripts folder not found next to ${here}`);
}

let cache: LoadedScript[] | undefined;

/**
 * Every script starts with `#!lua` (Redis 7 script flags, none set): on a Redis Cluster, a key a script
 * builds itself (not in KEYS) must then hash to the slot of its KEYS, even when another slot lives on the
 * same node, so a key outside the hub's tag fails in the tests instead of working by chance. A script
 * with no flags may write, and Redis refuses it up front while over `maxmemory`.
 */
const SHEBANG = '#!lua\n';

/** All scripts of the backend, read once per process. */
export function loadScripts(dir = scriptsDir()): LoadedScript[] {
  if (dir === scriptsDir() && cache) return cache;
  const scripts = readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .map((f) => ({ ...splitFilename(f), lua: SHEBANG + resolveScript(join(dir, f)) }));
  if (dir === scriptsDir()) cache = scripts;
  return scripts;
}

/** Defines every script as a command on the client, with the fast encoding of script-command.ts (idempotent per client). */
export function defineScripts(client: RedisClient): void {
  const marker = client as RedisClient & { __durabullScripts?: boolean };
  if (marker.__durabullScripts) return;
  for (const s of loadScripts()) {
    client.defineCommand(s.name, { numberOfKeys: s.numberOfKeys, lua: s.lua });
    useFastEncoding(client, s.name);
  }
  marker.__durabullScripts = true;
}
