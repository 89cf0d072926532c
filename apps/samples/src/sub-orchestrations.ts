/**
 * Sub-orchestrations: a parent (async style) fans out to one child orchestration (generator style)
 * per region, all running in parallel, and aggregates their outputs. Children are started with a
 * retry policy (`callSubOrchestratorWithRetry`): a child that fails is started again, as a new
 * instance, after a durable delay.
 *
 *   ProvisionEnvironment(env):  tasks = regions.map(r => callSubOrchestratorWithRetry(ProvisionRegion, retry, r))
 *                               for each task: try { provisioned += await task } catch { failed += region }
 *                               return Summarize(provisioned, failed)
 *   ProvisionRegion(region):    network = CreateNetwork(region); cluster = CreateCluster(region, network)
 *
 * In the sample, `us-east` hits a transient capacity error on its first attempt (retried, then
 * succeeds) and `mars-1` is not a region at all (the child throws NonRetriableError: no retry, the
 * parent catches it and reports it).
 */
import { NonRetriableError, type OrchestrationContext, Registry, TaskFailedError, defineActivity, defineOrchestrator } from '@durabull/core';
import { type InstanceReport, type SampleOptions, countEvents, withHarness } from './harness.js';

export interface RegionRequest {
  /** The parent's instance id: lets the fake cloud below fail once per environment. */
  environment: string;
  region: string;
}

export interface RegionResult {
  region: string;
  network: string;
  cluster: string;
}

export interface EnvironmentResult {
  provisioned: RegionResult[];
  failed: { region: string; error: string; attempts: number }[];
  summary: string;
}

export const KNOWN_REGIONS = ['eu-west', 'us-east', 'ap-south'];
/** Calls of CreateCluster per environment and region: the fake cloud refuses the first one in us-east. */
const clusterCalls = new Map<string, number>();

export const CreateNetwork = defineActivity('CreateNetwork', async (r: RegionRequest) => `net-${r.region}`);
export const CreateCluster = defineActivity('CreateCluster', async (r: RegionRequest & { network: string }) => {
  const key = `${r.environment}/${r.region}`;
  const calls = (clusterCalls.get(key) ?? 0) + 1;
  clusterCalls.set(key, calls);
  if (r.region === 'us-east' && calls === 1) throw new Error('no capacity in us-east right now, try again');
  return `k8s-${r.region}@${r.network}`;
});
export const Summarize = defineActivity(
  'Summarize',
  async (s: { provisioned: RegionResult[]; failed: { region: string }[] }) =>
    `${s.provisioned.length} regions up (${s.provisioned.map((p) => p.region).join(', ')}), ${s.failed.length} failed (${s.failed.map((f) => f.region).join(', ')})`,
);

export const ProvisionRegion = defineOrchestrator('ProvisionRegion', function* (ctx: OrchestrationContext, r: RegionRequest): Generator<unknown, RegionResult, any> {
  if (!KNOWN_REGIONS.includes(r.region)) throw new NonRetriableError(`unknown region '${r.region}'`);
  const network: string = yield ctx.callActivity(CreateNetwork, r);
  const cluster: string = yield ctx.callActivity(CreateCluster, { ...r, network });
  return { region: r.region, network, cluster };
});

export const ProvisionEnvironment = defineOrchestrator('ProvisionEnvironment', async (ctx, regions: string[]): Promise<EnvironmentResult> => {
  const retry = { maxNumberOfAttempts: 3, firstRetryIntervalMs: 100 };
  // Fan out: every child starts in this episode and runs in parallel.
  const children = regions.map((region) => ({
    region,
    task: ctx.callSubOrchestratorWithRetry(ProvisionRegion, retry, { environment: ctx.instanceId, region }),
  }));
  // Fan in, child by child, so that one failure does not hide the others' results.
  const provisioned: RegionResult[] = [];
  const failed: EnvironmentResult['failed'] = [];
  for (const { region, task } of children) {
    try {
      provisioned.push(await task);
    } catch (err) {
      if (!(err instanceof TaskFailedError)) throw err;
      failed.push({ region, error: err.failure.message, attempts: err.attempts });
    }
  }
  const summary = await ctx.callActivity(Summarize, { provisioned, failed });
  return { provisioned, failed, summary };
});

export const registry = new Registry().add(CreateNetwork, CreateCluster, Summarize, ProvisionRegion, ProvisionEnvironment);

export interface SubOrchestrationsResult {
  parent: InstanceReport<EnvironmentResult>;
  /** Every child instance the parent started (retries included), in start order. */
  children: { instanceId: string; region: string; runtimeStatus: string; failure?: string }[];
  /** Child starts in the parent's history (one per region, plus one per retry). */
  childStarts: number;
  /** Retry delays: durable timers in the parent's history. */
  retryTimers: number;
}

export async function run(opts: SampleOptions & { regions?: string[] }): Promise<SubOrchestrationsResult> {
  const regions = opts.regions ?? ['eu-west', 'us-east', 'ap-south', 'mars-1'];
  return withHarness(opts, registry, async (h) => {
    h.log(`ProvisionEnvironment: one ProvisionRegion child per region (${regions.join(', ')}), retried up to 3 times`);
    const id = await h.client.startNew(ProvisionEnvironment, { input: regions, instanceId: h.id('env') });
    const parent = await h.finish<EnvironmentResult>(id);
    const history = (await h.client.getStatus(id, { showHistory: true }))?.history ?? [];
    const children: SubOrchestrationsResult['children'] = [];
    for (const e of history) {
      if (e.type !== 'SubOrchestrationInstanceCreated') continue;
      const child = await h.client.getStatus(e.instanceId);
      const entry: SubOrchestrationsResult['children'][number] = {
        instanceId: e.instanceId,
        region: (e.input as RegionRequest).region,
        runtimeStatus: child?.runtimeStatus ?? 'missing',
      };
      if (child?.failure) entry.failure = `${child.failure.errorName}: ${child.failure.message}`;
      children.push(entry);
      h.log(`  child ${e.instanceId} (${entry.region}): ${entry.runtimeStatus}${entry.failure ? ` - ${entry.failure}` : ''}`);
    }
    h.log(`${id}: ${parent.runtimeStatus} ${JSON.stringify(parent.output)}`);
    return {
      parent,
      children,
      childStarts: countEvents(parent.history, 'SubOrchestrationInstanceCreated'),
      retryTimers: countEvents(parent.history, 'TimerCreated'),
    };
  });
}
