/**
 * W6 durable entities:
 * - hot entity: 10,000 signals from 100 concurrent senders (clients) to one counter; operations/s
 *   from the first send to the counter reaching 10,000, and the batches (episodes) it took;
 * - many entities: 1,000 counters x 10 signals each (100 concurrent senders); operations/s;
 * - transfers: 100 orchestrations doing 5 transfers each under `lockEntities` over 20 accounts,
 *   with auditor orchestrations that lock all 20 and sum them while the transfers run: the total
 *   never changes (checked), and the time of a transfer (lock request to release, from the
 *   episodes' times) p50 / p99.
 */
import { DurabullClient } from '@durabull/client';
import { type EntityFunction, type OrchestratorFunction, Registry, defineEntity } from '@durabull/core';
import { DurabullWorker } from '@durabull/worker';
import type { Bench } from '../harness.js';
import { summarize } from '../stats.js';

export interface W6Result {
  hotSignals: number;
  hotSenders: number;
  hotEntityOpsPerSec: number;
  /** Batches (one load, one commit each) the hot counter ran. */
  hotEntityBatches: number;
  hotEntityOpsPerBatch: number;
  manyEntities: number;
  manyEntitiesOpsEach: number;
  manyEntitiesOpsPerSec: number;
  manyEntitiesBatches: number;
  transferOrchestrations: number;
  transfersEach: number;
  accounts: number;
  transferP50Ms: number;
  transferP99Ms: number;
  transfersPerSec: number;
  /** Every audit (all 20 accounts locked and summed) and the final sum saw the starting total. */
  totalBalanceConstant: boolean;
  audits: number[];
  finalTotal: number;
  expectedTotal: number;
}

const Counter: EntityFunction<number> = (ctx) => {
  if (ctx.operationName === 'add') ctx.setState((ctx.getState(() => 0) as number) + (ctx.getInput<number>() ?? 1));
  else if (ctx.operationName === 'get') ctx.return(ctx.getState(() => 0));
};

const START_BALANCE = 1000;
const Account = defineEntity('BenchAccount', {
  initialState: () => START_BALANCE,
  operations: {
    deposit: (ctx, n: number) => {
      ctx.state += n;
    },
    withdraw: (ctx, n: number) => {
      if (n > ctx.state) throw new Error('insufficient funds');
      ctx.state -= n;
    },
    balance: (ctx) => ctx.state,
  },
});

const Transfers: OrchestratorFunction = async (ctx, input: { seed: number; transfers: number; accounts: number }) => {
  const times: number[] = [];
  for (let t = 0; t < input.transfers; t++) {
    const a = (input.seed * 7 + t * 3) % input.accounts;
    let b = (input.seed * 11 + t * 5 + 1) % input.accounts;
    if (b === a) b = (b + 1) % input.accounts;
    const started = ctx.currentUtcDateTime.getTime();
    const lock = await ctx.lockEntities(Account.id(`a${a}`), Account.id(`a${b}`));
    const amount = 1 + ((input.seed + t) % 10);
    await ctx.callEntity(Account.id(`a${a}`), 'withdraw', amount);
    await ctx.callEntity(Account.id(`a${b}`), 'deposit', amount);
    lock.release();
    times.push(ctx.currentUtcDateTime.getTime() - started);
  }
  return times;
};

const Audit: OrchestratorFunction = async (ctx, accounts: number) => {
  const ids = Array.from({ length: accounts }, (_, i) => Account.id(`a${i}`));
  const lock = await ctx.lockEntities(...ids);
  const balances = await ctx.all(ids.map((id) => ctx.callEntity(id, 'balance')));
  lock.release();
  return (balances as number[]).reduce((x, y) => x + y, 0);
};

async function untilTrue(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > end) throw new Error(`W6: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function senders(n: number, total: number, send: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      for (let i = next++; i < total; i = next++) await send(i);
    }),
  );
}

export async function runW6(b: Bench, opts: { hotSignals: number; senders: number; entities: number; opsEach: number; orchestrations: number; transfers: number; accounts: number; timeoutMs: number }): Promise<W6Result> {
  const hub = b.hub('w6');
  const registry = new Registry().addEntity('Counter', Counter).add(Account).addOrchestrator('Transfers', Transfers).addOrchestrator('Audit', Audit);
  const worker = await new DurabullWorker({ connection: b.url, hub, registry, logger: false, orchestratorConcurrency: b.concurrency, activityConcurrency: b.concurrency }).start();
  const client = new DurabullClient({ connection: b.url, hub, logger: false });
  try {
    // Warm-up: scripts loaded, JIT.
    await senders(10, 200, () => client.signalEntity('@Counter@warm', 'add', 1));
    await untilTrue('the warm-up', async () => (await client.readEntityState('@Counter@warm')).entityState === 200, opts.timeoutMs);

    // Hot entity.
    b.log(`W6: ${opts.hotSignals} signals from ${opts.senders} concurrent senders to one counter`);
    let t0 = performance.now();
    await senders(opts.senders, opts.hotSignals, () => client.signalEntity('@Counter@hot', 'add', 1));
    await untilTrue('the hot counter', async () => (await client.readEntityState('@Counter@hot')).entityState === opts.hotSignals, opts.timeoutMs);
    const hotMs = performance.now() - t0;
    const hot = await client.getEntity('@Counter@hot');
    const hotEntityOpsPerSec = opts.hotSignals / (hotMs / 1000);
    b.log(`W6 hot: ${hotEntityOpsPerSec.toFixed(0)} ops/s, ${hot?.batches} batches (${(opts.hotSignals / (hot?.batches ?? 1)).toFixed(1)} ops per batch)`);

    // Many entities.
    const manyOps = opts.entities * opts.opsEach;
    b.log(`W6: ${opts.entities} entities x ${opts.opsEach} signals`);
    const before = worker.stats.entityOperations;
    const batchesBefore = worker.stats.entityBatches;
    t0 = performance.now();
    await senders(opts.senders, manyOps, (i) => client.signalEntity(`@Counter@m${i % opts.entities}`, 'add', 1));
    await untilTrue('the many counters', async () => worker.stats.entityOperations - before >= manyOps, opts.timeoutMs);
    const manyMs = performance.now() - t0;
    const manyEntitiesOpsPerSec = manyOps / (manyMs / 1000);
    const manyEntitiesBatches = worker.stats.entityBatches - batchesBefore;
    b.log(`W6 many: ${manyEntitiesOpsPerSec.toFixed(0)} ops/s, ${manyEntitiesBatches} batches`);

    // Transfers under critical sections, with audits.
    b.log(`W6: ${opts.orchestrations} orchestrations x ${opts.transfers} transfers under lockEntities over ${opts.accounts} accounts`);
    t0 = performance.now();
    const ids: string[] = [];
    const audits: string[] = [];
    for (let i = 0; i < opts.orchestrations; i++) {
      ids.push(await client.startNew('Transfers', { input: { seed: i, transfers: opts.transfers, accounts: opts.accounts } }));
      if (i % 25 === 12) audits.push(await client.startNew('Audit', { input: opts.accounts }));
    }
    const times: number[] = [];
    for (const id of ids) {
      const st = await client.waitForCompletion<number[]>(id, { timeoutMs: opts.timeoutMs });
      if (st.runtimeStatus !== 'Completed') throw new Error(`W6: transfers ${id} ${st.runtimeStatus}: ${st.failure?.message}`);
      times.push(...st.output!);
    }
    const transferMs = performance.now() - t0;
    const auditTotals: number[] = [];
    for (const id of audits) auditTotals.push((await client.waitForCompletion<number>(id, { timeoutMs: opts.timeoutMs })).output!);
    let finalTotal = 0;
    for (let i = 0; i < opts.accounts; i++) finalTotal += ((await client.readEntityState<number>(Account.id(`a${i}`))).entityState ?? START_BALANCE);
    const expectedTotal = opts.accounts * START_BALANCE;
    const s = summarize(times);
    const result: W6Result = {
      hotSignals: opts.hotSignals,
      hotSenders: opts.senders,
      hotEntityOpsPerSec,
      hotEntityBatches: hot?.batches ?? 0,
      hotEntityOpsPerBatch: opts.hotSignals / Math.max(1, hot?.batches ?? 1),
      manyEntities: opts.entities,
      manyEntitiesOpsEach: opts.opsEach,
      manyEntitiesOpsPerSec,
      manyEntitiesBatches,
      transferOrchestrations: opts.orchestrations,
      transfersEach: opts.transfers,
      accounts: opts.accounts,
      transferP50Ms: s.p50,
      transferP99Ms: s.p99,
      transfersPerSec: times.length / (transferMs / 1000),
      totalBalanceConstant: finalTotal === expectedTotal && auditTotals.every((t) => t === expectedTotal),
      audits: auditTotals,
      finalTotal,
      expectedTotal,
    };
    b.log(`W6 transfers: p50 ${s.p50.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, ${result.transfersPerSec.toFixed(0)} transfers/s; totals ${auditTotals.join(', ')} / final ${finalTotal} (expected ${expectedTotal})`);
    return result;
  } finally {
    await worker.close();
    await client.close();
  }
}
