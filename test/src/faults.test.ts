/**
 * The short form of the fault-injection run (test/faults/fault-run.ts; the long form is `npm run test:faults`):
 * its own redis-server with `appendfsync always`, three worker processes, 60 chains and 3 fan-outs of 100, three
 * worker processes SIGKILLed at random moments (each replaced at once) and one Redis crash (SIGKILL, restart on
 * the same data directory) in the middle. Nothing may be lost and nothing duplicated.
 */
import { expect, it, describe } from 'vitest';
import { formatFigures, runFaults } from '../faults/fault-run.js';

// Single server only, left out of the cluster runs (vitest.cluster.config.ts): crashes and restarts a redis-server of its own.
describe('fault injection (short form)', () => {
  it('loses and duplicates nothing through worker kills and a Redis crash (appendfsync always)', async () => {
    const f = await runFaults({
      label: 'faults/short',
      chains: 60,
      fanOuts: 3,
      fanOutSize: 100,
      workers: { all: 2, activities: 1 },
      killEveryMs: 600,
      maxKills: 3,
      killFrom: 0.02,
      redisRestarts: [0.4],
      redisStop: 'kill',
      appendfsync: 'always',
      timeoutMs: 30_000,
    });
    console.log(formatFigures(f));
    expect(f.problems).toEqual([]);
    expect(f.redisRestarts).toBe(1);
    expect(f.kills).toBeGreaterThanOrEqual(1);
    expect(f.lost).toBe(0);
    expect(f.wrong).toBe(0);
    expect(f.sideEffectsMissing).toBe(0);
    expect(f.missingResults).toBe(0);
    expect(f.duplicatedHistoryEvents).toBe(0);
    expect(f.checkerFindings).toBe(0);
    expect(f.unexpectedExits).toBe(0);
  }, 60_000);
});
