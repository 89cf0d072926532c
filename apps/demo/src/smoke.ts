import { Registry } from '@durabull/core';
import { DurabullWorker } from '@durabull/worker';
import { DurabullClient } from '@durabull/client';

const hub = 'smoke' + Math.random().toString(16).slice(2, 8);
const registry = new Registry()
  .addActivity('F1', async (x: string) => x + '1')
  .addActivity('F2', async (x: string) => x + '2')
  .addActivity('Work', async (n: number) => n * 2)
  .addOrchestrator('Chain', function* (ctx, input: string) {
    const a = yield ctx.callActivity('F1', input);
    const b = yield ctx.callActivity('F2', a);
    return b;
  })
  .addOrchestrator('Fan', function* (ctx, n: number) {
    const tasks = [];
    for (let i = 0; i < n; i++) tasks.push(ctx.callActivity('Work', i));
    const results: number[] = yield ctx.all(tasks);
    return results.reduce((a, b) => a + b, 0);
  });
const worker = await new DurabullWorker({ hub, registry, logger: false }).start();
const client = new DurabullClient({ hub });
const id = await client.startNew('Chain', { input: 'x' });
console.log(await client.waitForCompletion(id, { timeoutMs: 10000 }));
const t0 = Date.now();
const id2 = await client.startNew('Fan', { input: 1000 });
const st = await client.waitForCompletion(id2, { timeoutMs: 60000 });
console.log(st.output, st.episodes, Date.now() - t0, 'ms');
await client.close();
await worker.close();
