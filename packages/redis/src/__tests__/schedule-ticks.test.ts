/**
 * The tick arithmetic of schedules, without Redis: ticks of an interval are multiples of it from
 * `startAt` (or the epoch); the ticks a late job catches up are the latest ones, found without
 * walking a long outage tick by tick; ids derived from ticks.
 */
import { describe, expect, it } from 'vitest';
import { nextTick, scheduleInstanceId, ticksBetween } from '../schedules.js';

const T = Date.UTC(2024, 5, 10, 3, 0, 0);

describe('schedule ticks', () => {
  it('an interval ticks on multiples of itself, from startAt or the epoch', () => {
    expect(nextTick({ orchestrator: 'X', intervalMs: 60_000 }, T + 1)).toBe(T + 60_000);
    expect(nextTick({ orchestrator: 'X', intervalMs: 60_000, startAt: new Date(T + 7) }, T + 10)).toBe(T + 60_007);
    expect(nextTick({ orchestrator: 'X', intervalMs: 60_000, startAt: new Date(T + 3_600_000) }, T)).toBe(T + 3_600_000);
    expect(nextTick({ orchestrator: 'X', intervalMs: 60_000, endAt: new Date(T + 30_000) }, T)).toBeUndefined();
    expect(ticksBetween({ orchestrator: 'X', intervalMs: 1000 }, T, T + 3500)).toEqual([T + 1000, T + 2000, T + 3000]);
  });

  it('a cron expression ticks in its time zone', () => {
    // 03:00 in Paris is 01:00 UTC in June (CEST).
    expect(nextTick({ orchestrator: 'X', cron: '0 3 * * *', timeZone: 'Europe/Paris' }, T)).toBe(Date.UTC(2024, 5, 11, 1, 0, 0));
    expect(ticksBetween({ orchestrator: 'X', cron: '0 * * * *' }, T, T + 3 * 3_600_000)).toEqual([T + 3_600_000, T + 7_200_000, T + 10_800_000]);
  });

  it('catching up a year of a per-second cron gives its latest 1,000 ticks without walking the year', () => {
    const year = 365 * 24 * 3_600_000;
    const ticks = ticksBetween({ orchestrator: 'X', cron: '* * * * * *' }, T - year, T);
    expect(ticks).toHaveLength(1000);
    expect(ticks.at(-1)).toBe(T);
    expect(ticks[0]).toBe(T - 999_000);
    const every = ticksBetween({ orchestrator: 'X', intervalMs: 1000 }, T - year, T);
    expect(every).toEqual(ticks);
  });

  it('derives instance ids from the schedule id and the tick, in ISO 8601 basic form', () => {
    expect(scheduleInstanceId('nightly', T)).toBe('nightly@20240610T030000.000Z');
    expect(scheduleInstanceId('a.b-c_d', T + 123)).toBe('a.b-c_d@20240610T030000.123Z');
  });
});
