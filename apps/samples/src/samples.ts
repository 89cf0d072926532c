/** Every sample by the name `npm run sample -- <name>` takes. */
import * as chaining from './chaining.js';
import * as durableFunctions from './durable-functions.js';
import * as entities from './entities.js';
import * as fanOutFanIn from './fan-out-fan-in.js';
import type { SampleOptions } from './harness.js';
import * as humanInteraction from './human-interaction.js';
import * as monitor from './monitor.js';
import * as schedule from './schedule.js';
import * as subOrchestrations from './sub-orchestrations.js';

export interface Sample {
  /** One line: the pattern and what the sample shows. */
  description: string;
  run(opts: SampleOptions): Promise<unknown>;
}

export const samples = {
  chaining: { description: 'F1 -> F2 -> F3 -> F4 with try/catch compensation (one trip booked, one compensated)', run: chaining.run },
  'fan-out-fan-in': { description: 'F1 lists N work items, F2 runs on each in parallel (ctx.all), F3 gets the sum', run: fanOutFanIn.run },
  monitor: { description: 'polls a status activity on a durable timer, continuing as new each round, until done or expired', run: monitor.run },
  'human-interaction': { description: 'waits for an Approval event or a deadline (ctx.any); one approved, one escalated', run: humanInteraction.run },
  'sub-orchestrations': { description: 'a parent fans out to child orchestrations, retries a failing child, catches a hopeless one', run: subOrchestrations.run },
  schedule: { description: 'a schedule starts a report every tick; its export heartbeats, times out once and resumes from its last heartbeat', run: schedule.run },
  entities: { description: 'a counter aggregated from a fan-out of signals; transfers between two accounts under lockEntities', run: entities.run },
  'durable-functions': {
    description: "Durable Functions' own Node samples (hello sequence, backup, monitor, phone verification, counter) through the durable-functions alias",
    run: durableFunctions.run,
  },
} satisfies Record<string, Sample>;

export type SampleName = keyof typeof samples;

export function isSampleName(name: string): name is SampleName {
  return Object.hasOwn(samples, name);
}
