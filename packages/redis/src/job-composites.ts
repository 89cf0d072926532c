/**
 * A BullMQ job completed in the script that does its work, where they were two round trips:
 *
 * - `finishActivity`: an activity's result delivered (our deliverEvent), then its job completed;
 * - `finishEpisode`: an episode committed (our commitEpisode), then the orchestrator job that ran
 *   it completed, only when the commit applied or found the episode stale (1 or -2): a refused
 *   commit (-6, -8) leaves the job active, since the worker runs the episode again under it.
 *
 * BullMQ's half is its own moveToFinished (which also fetches the worker's next job), taken as the
 * worker's connection defined it (ioredis keeps each defined script's text), so the composite
 * always runs the BullMQ that is installed; each half runs as a function that sees its own KEYS
 * and ARGV. Nothing here knows BullMQ's keys or arguments: BullMQ builds them (its queue backend's
 * `moveToCompletedArgs`).
 *
 * Keys: our script's, then moveToFinished's. ARGV[1] is the number of our script's arguments, then
 * those, then moveToFinished's. Reply: {our script's reply, moveToFinished's (false when not run)}.
 * A Lua error in the first half leaves the job active (BullMQ's handling of a failed attempt
 * follows); a refusal of the second (a lost lock, say) leaves the first half's writes done, as when
 * the two ran one after the other.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './connection.js';
import { useFastEncoding } from './script-command.js';
import { loadScripts } from './script-loader.js';

/** deliverEvent's key count (its file name's suffix). */
export const DELIVER_EVENT_KEYS = 10;
/** commitEpisode's key count. */
export const COMMIT_EPISODE_KEYS = 9;

/** The composites: our script, its key count, and when its reply lets the job be completed. */
const COMPOSITES = {
  finishActivity: { script: 'deliverEvent', keys: DELIVER_EVENT_KEYS, when: 'true' },
  finishEpisode: { script: 'commitEpisode', keys: COMMIT_EPISODE_KEYS, when: 'first[1] == 1 or first[1] == -2' },
} as const;

export type CompositeName = keyof typeof COMPOSITES;

/** The Lua of composite `name` for BullMQ's moveToFinished text `bullLua`. */
export function compositeLua(name: CompositeName, bullLua: string): string {
  const { script, keys, when } = COMPOSITES[name];
  const ours = loadScripts().find((s) => s.name === script);
  if (!ours || ours.numberOfKeys !== keys) throw new Error(`${script}-${keys}.lua not found`);
  // Our scripts start with their `#!lua` line; the composite has one of its own.
  const body = ours.lua.replace(/^#!lua[^\n]*\n/, '');
  return [
    '#!lua',
    `local function ${script}(KEYS, ARGV)`,
    body,
    'end',
    'local function moveToFinished(KEYS, ARGV)',
    bullLua.replace(/^#![^\n]*\n/, ''),
    'end',
    'local n = tonumber(ARGV[1])',
    'local ok, oa, fk, fa = {}, {}, {}, {}',
    `for i = 1, ${keys} do ok[i] = KEYS[i] end`,
    `for i = ${keys + 1}, #KEYS do fk[#fk + 1] = KEYS[i] end`,
    'for i = 2, n + 1 do oa[#oa + 1] = ARGV[i] end',
    'for i = n + 2, #ARGV do fa[#fa + 1] = ARGV[i] end',
    `local first = ${script}(ok, oa)`,
    `if ${when} then return {first, moveToFinished(fk, fa)} end`,
    'return {first, false}',
    '',
  ].join('\n');
}

/** Per client: per composite, the command name for each BullMQ Lua text (looked up by that string, whose hash V8 keeps). */
const defined = new WeakMap<object, Record<CompositeName, Map<string, string>>>();

/**
 * Defines composite `name` for `bullLua` on `client` once (a command named after its SHA-1: ioredis
 * sends EVALSHA and loads it on NOSCRIPT) and returns the command's name.
 */
export function defineComposite(client: RedisClient, name: CompositeName, bullLua: string, bullKeyCount: number): string {
  let names = defined.get(client);
  if (!names) defined.set(client, (names = { finishActivity: new Map(), finishEpisode: new Map() }));
  const byLua = names[name];
  let command = byLua.get(bullLua);
  if (!command) {
    const lua = compositeLua(name, bullLua);
    command = `${name}_${createHash('sha1').update(lua).digest('hex').slice(0, 12)}`;
    client.defineCommand(command, { numberOfKeys: COMPOSITES[name].keys + bullKeyCount, lua });
    useFastEncoding(client, command);
    byLua.set(bullLua, command);
  }
  return command;
}

/** BullMQ's moveToFinished for one job: its Lua, its key count, its keys then arguments. */
export interface BullFinish {
  lua: string;
  keyCount: number;
  args: (string | number | Buffer)[];
}

/**
 * Runs composite `name` on `client` (defined there on first use): our script with `keys` and
 * `argv`, then `bull`'s moveToFinished when our script's reply allows it. Returns both replies (the
 * second null when it did not run).
 */
export async function runComposite(client: RedisClient, name: CompositeName, keys: readonly unknown[], argv: readonly unknown[], bull: BullFinish): Promise<[unknown, unknown]> {
  const command = defineComposite(client, name, bull.lua, bull.keyCount);
  const run = (client as unknown as Record<string, (...a: unknown[]) => Promise<[unknown, unknown]>>)[command]!;
  return run.call(client, ...keys, ...bull.args.slice(0, bull.keyCount), argv.length, ...argv, ...bull.args.slice(bull.keyCount));
}
