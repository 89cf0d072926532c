/**
 * The end of an activity job in one script: the result's delivery (our deliverEvent) and the job's
 * completion (BullMQ's own moveToFinished, which also fetches the worker's next job), where they
 * were two round trips. BullMQ's Lua is taken as the worker's connection defined it (ioredis keeps
 * each defined script's text), so the composite always runs the BullMQ that is installed; each
 * half runs as a function that sees its own KEYS and ARGV. Nothing here knows BullMQ's keys or
 * arguments: BullMQ builds them (its queue backend's `moveToCompletedArgs`).
 *
 * Keys: deliverEvent's 10, then moveToFinished's. ARGV[1] is the number of deliverEvent's
 * arguments, then those, then moveToFinished's. Reply: {deliverEvent's reply, moveToFinished's}.
 * A Lua error in the first half leaves the job active (BullMQ's handling of a failed attempt
 * follows); a refusal of the second (a lost lock, say) leaves the delivery done, as when the two
 * ran one after the other.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from './connection.js';
import { useFastEncoding } from './script-command.js';
import { loadScripts } from './script-loader.js';

/** deliverEvent's key count (its file name's suffix). */
export const DELIVER_EVENT_KEYS = 10;

/** The composite's Lua for BullMQ's moveToFinished text `bullLua`. */
export function finishActivityLua(bullLua: string): string {
  const deliver = loadScripts().find((s) => s.name === 'deliverEvent');
  if (!deliver || deliver.numberOfKeys !== DELIVER_EVENT_KEYS) throw new Error(`deliverEvent-${DELIVER_EVENT_KEYS}.lua not found`);
  // Our scripts start with their `#!lua` line; the composite has one of its own.
  const body = deliver.lua.replace(/^#!lua[^\n]*\n/, '');
  return [
    '#!lua',
    'local function deliverEvent(KEYS, ARGV)',
    body,
    'end',
    'local function moveToFinished(KEYS, ARGV)',
    bullLua.replace(/^#![^\n]*\n/, ''),
    'end',
    'local n = tonumber(ARGV[1])',
    'local dk, da, fk, fa = {}, {}, {}, {}',
    `for i = 1, ${DELIVER_EVENT_KEYS} do dk[i] = KEYS[i] end`,
    `for i = ${DELIVER_EVENT_KEYS + 1}, #KEYS do fk[#fk + 1] = KEYS[i] end`,
    'for i = 2, n + 1 do da[#da + 1] = ARGV[i] end',
    'for i = n + 2, #ARGV do fa[#fa + 1] = ARGV[i] end',
    'local delivered = deliverEvent(dk, da)',
    'return {delivered, moveToFinished(fk, fa)}',
    '',
  ].join('\n');
}

const defined = new WeakMap<object, Map<string, string>>();

/**
 * Defines the composite for `bullLua` on `client` once (a command named after its SHA-1: ioredis
 * sends EVALSHA and loads it on NOSCRIPT) and returns the command's name.
 */
export function defineFinishActivity(client: RedisClient, bullLua: string, bullKeyCount: number): string {
  let byLua = defined.get(client);
  if (!byLua) defined.set(client, (byLua = new Map()));
  let name = byLua.get(bullLua);
  if (!name) {
    const lua = finishActivityLua(bullLua);
    name = `finishActivity_${createHash('sha1').update(lua).digest('hex').slice(0, 12)}`;
    client.defineCommand(name, { numberOfKeys: DELIVER_EVENT_KEYS + bullKeyCount, lua });
    useFastEncoding(client, name);
    byLua.set(bullLua, name);
  }
  return name;
}
