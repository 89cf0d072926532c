/**
 * Parsing option values. Every function throws UsageError naming the option, before anything
 * touches Redis.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { type RuntimeStatus, RuntimeStatus as Statuses } from '@durabull/core';
import { UsageError } from './errors.js';

/**
 * Parses a JSON option value, or reads and parses the file after `@` (`--input @order.json`, relative
 * to `cwd`). Plain text is not JSON: a string needs its quotes (`--input '"hello"'`).
 */
export function parseJsonOption(option: string, value: string, cwd: string): unknown {
  if (value.startsWith('@')) {
    const file = value.slice(1);
    if (file === '') throw new UsageError(`${option} @<file>: the file name is missing`);
    let text: string;
    try {
      text = readFileSync(resolve(cwd, file), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(`${option} @${file}: cannot read ${file} (${code ?? (err as Error).message})`);
    }
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new UsageError(`${option} @${file}: ${file} is not valid JSON (${(err as Error).message})`);
    }
  }
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new UsageError(
      `${option} is not valid JSON (${(err as Error).message}); a string needs JSON quotes, e.g. ${option} '"text"', ` +
        `or pass a file as ${option} @file.json`,
    );
  }
}

/** Parses a whole number from `min` to `max` (inclusive). */
export function parseIntOption(option: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${option} must be a whole number ${range}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** Parses a date: an ISO 8601 date or time (`2025-01-31`, `2025-01-31T12:00:00Z`) or epoch milliseconds. */
export function parseDateOption(option: string, value: string): Date {
  const d = /^\d+$/.test(value) ? new Date(Number(value)) : new Date(value);
  if (Number.isNaN(d.getTime())) {
    throw new UsageError(`${option} must be an ISO date or time (2025-01-31, 2025-01-31T12:00:00Z) or epoch milliseconds, got ${JSON.stringify(value)}`);
  }
  return d;
}

const STATUS_NAMES = Object.values(Statuses) as RuntimeStatus[];

/** Parses runtime statuses given as a comma-separated list (any case), possibly repeated. */
export function parseStatuses(option: string, values: readonly string[]): RuntimeStatus[] {
  const out: RuntimeStatus[] = [];
  for (const part of values.flatMap((v) => v.split(','))) {
    const s = part.trim();
    if (s === '') continue;
    const found = STATUS_NAMES.find((n) => n.toLowerCase() === s.toLowerCase());
    if (!found) throw new UsageError(`${option}: unknown status ${JSON.stringify(s)}; use ${STATUS_NAMES.join(', ')}`);
    if (!out.includes(found)) out.push(found);
  }
  if (out.length === 0) throw new UsageError(`${option} needs at least one status: ${STATUS_NAMES.join(', ')}`);
  return out;
}
