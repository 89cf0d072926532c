import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ScriptLoaderError, loadScripts, resolveScript, splitFilename } from '../script-loader.js';

const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

describe('script loader', () => {
  it('reads the key count from the file name', () => {
    expect(splitFilename('commitEpisode-7.lua')).toEqual({ name: 'commitEpisode', numberOfKeys: 7 });
    expect(() => splitFilename('noKeys.lua')).toThrow(ScriptLoaderError);
  });

  it('inlines each include once, where it is first included, dependencies first', () => {
    const lua = resolveScript(join(fixtures, 'ok', 'useBoth-2.lua'));
    const lines = lua.split('\n');
    const rcall = lines.indexOf('local rcall = redis.call');
    const b = lines.indexOf('local function b() return 41 end');
    const a = lines.indexOf('local function a() return b() + 1 end');
    expect(rcall).toBe(0);
    expect(b).toBeGreaterThan(rcall);
    expect(a).toBeGreaterThan(b);
    expect(lines.filter((l) => l.includes('local function b()'))).toHaveLength(1);
    expect(lua).not.toContain('@include');
  });

  it('refuses circular and missing includes', () => {
    expect(() => resolveScript(join(fixtures, 'cycle', 'loop-0.lua'))).toThrow(/Circular @include/);
    expect(() => resolveScript(join(fixtures, 'missing', 'broken-1.lua'))).toThrow(/Included file not found/);
  });

  it('loads every backend script with its key count and no unresolved include', () => {
    const scripts = loadScripts();
    // Script flags on: on a cluster an undeclared key of another slot fails even on the same node.
    for (const s of scripts) expect(s.lua.startsWith('#!lua\n'), s.name).toBe(true);
    const byName = Object.fromEntries(scripts.map((s) => [s.name, s]));
    expect(byName.commitEpisode?.numberOfKeys).toBe(9);
    expect(byName.deliverEvent?.numberOfKeys).toBe(10);
    expect(byName.startInstance?.numberOfKeys).toBe(13);
    expect(byName.terminateInstance?.numberOfKeys).toBe(9);
    expect(byName.purgeInstance?.numberOfKeys).toBe(11);
    expect(byName.setSuspended?.numberOfKeys).toBe(6);
    expect(byName.requeueInstance?.numberOfKeys).toBe(5);
    expect(byName.reindexInstance?.numberOfKeys).toBe(4);
    expect(byName.heartbeatActivity?.numberOfKeys).toBe(5);
    expect(byName.endActivityAttempt?.numberOfKeys).toBe(2);
    expect(byName.claimExpiredActivities?.numberOfKeys).toBe(2);
    expect(byName.writeSchedule?.numberOfKeys).toBe(2);
    expect(byName.fireSchedule?.numberOfKeys).toBe(2);
    for (const s of scripts) {
      expect(s.lua).not.toContain('@include');
      expect(s.lua.startsWith('#!lua\n--[[')).toBe(true);
    }
  });
});
