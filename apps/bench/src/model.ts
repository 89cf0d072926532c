/**
 * The capacity model: how many instances per second W worker cores and R Redis cores sustain,
 * from the CPU one instance costs on each side (measured in W4). Each side runs at most its cores'
 * worth of CPU per second; the fleet runs at the pace of the slower side:
 *
 *   instances/s = min(W / (worker + client CPU per instance), R / Redis CPU per instance)
 *
 * The worker side carries the clients that start the instances (in the bench they share the
 * worker cores). Redis becomes the bottleneck from W = R × (worker + client) / Redis CPU per
 * instance worker cores on. The model assumes both sides CPU-bound (enough instances in flight,
 * no other load), and CPU per instance that does not change with the load (Redis tends to get
 * cheaper per command when busier: more commands per event-loop turn).
 */

/** CPU time one instance costs, milliseconds. */
export interface PerInstanceCpu {
  /** The worker processes (all kinds together). */
  workerCpuMs: number;
  /** The client that starts the instances and learns of their completion. */
  clientCpuMs: number;
  /** redis-server (INFO cpu: used_cpu_user + used_cpu_sys). */
  redisCpuMs: number;
}

export interface Capacity {
  workerCores: number;
  redisCores: number;
  /** What the worker cores alone would sustain, instances/s. */
  workerBoundPerSec: number;
  /** What the Redis cores alone would sustain, instances/s. */
  redisBoundPerSec: number;
  /** min of the two. */
  instancesPerSec: number;
  bottleneck: 'workers' | 'redis';
  /** Worker cores from which Redis is the bottleneck (with `redisCores`). */
  redisBoundFromWorkerCores: number;
}

export class ModelInputError extends RangeError {
  override readonly name = 'ModelInputError';
}

function positive(what: string, v: number): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new ModelInputError(`capacity model: ${what} must be a finite number > 0, got ${String(v)}`);
}

/** Instances/s for `workerCores` worker cores and `redisCores` Redis cores. */
export function capacity(cost: PerInstanceCpu, workerCores: number, redisCores = 1): Capacity {
  positive('workerCpuMs', cost.workerCpuMs);
  if (typeof cost.clientCpuMs !== 'number' || !Number.isFinite(cost.clientCpuMs) || cost.clientCpuMs < 0) {
    throw new ModelInputError(`capacity model: clientCpuMs must be a finite number >= 0, got ${String(cost.clientCpuMs)}`);
  }
  positive('redisCpuMs', cost.redisCpuMs);
  positive('workerCores', workerCores);
  positive('redisCores', redisCores);
  const workerSide = cost.workerCpuMs + cost.clientCpuMs;
  const workerBoundPerSec = (workerCores * 1000) / workerSide;
  const redisBoundPerSec = (redisCores * 1000) / cost.redisCpuMs;
  return {
    workerCores,
    redisCores,
    workerBoundPerSec,
    redisBoundPerSec,
    instancesPerSec: Math.min(workerBoundPerSec, redisBoundPerSec),
    bottleneck: workerBoundPerSec <= redisBoundPerSec ? 'workers' : 'redis',
    redisBoundFromWorkerCores: (redisCores * workerSide) / cost.redisCpuMs,
  };
}

/** CPU per instance from a run's totals (ms of CPU over `instances`). */
export function perInstance(totals: { workersCpuMs: number; clientCpuMs: number; redisCpuMs: number }, instances: number): PerInstanceCpu {
  positive('instances', instances);
  return { workerCpuMs: totals.workersCpuMs / instances, clientCpuMs: totals.clientCpuMs / instances, redisCpuMs: totals.redisCpuMs / instances };
}

/** The model's error against a measurement: predicted / measured - 1 (0.1: the model said 10% more than was measured). */
export function modelError(predicted: number, measured: number): number {
  positive('predicted', predicted);
  positive('measured', measured);
  return predicted / measured - 1;
}

/** What a Redis Cluster's masters sustain (workers not the limit), from {@link clusterCapacity}. */
export interface ClusterCapacity {
  masters: number;
  /** Busiest master's share of the load over the mean (1 = perfectly even, `masters` = all on one). */
  spread: number;
  /** Redis CPU per instance summed over the masters, ms. */
  redisCpuMsPerInstance: number;
  /** instances/s at which the busiest master runs out of its core. */
  instancesPerSec: number;
  /** The same with the load spread perfectly (spread 1). */
  evenInstancesPerSec: number;
  /** Worker cores (workers + client) that pace needs; NaN without a worker cost. */
  workerCoresNeeded: number;
  /** Why the prediction could not be made (a bad input). */
  error?: string;
}

/**
 * instances/s of a Redis Cluster of `masters` masters, one core each, with enough worker cores:
 * the busiest master carries `spread` times the mean share of the Redis CPU, and runs out first:
 *
 *   instances/s = masters × 1000 / (Redis CPU ms per instance, summed over the masters × spread)
 *
 * `workerCpuMsPerInstance` (workers + client) gives the worker cores that pace needs.
 */
export function clusterCapacity(o: { redisCpuMsPerInstance: number; masters: number; spread: number; workerCpuMsPerInstance?: number }): ClusterCapacity {
  positive('redisCpuMsPerInstance', o.redisCpuMsPerInstance);
  if (!Number.isInteger(o.masters) || o.masters < 1) throw new ModelInputError(`capacity model: masters must be an integer >= 1, got ${String(o.masters)}`);
  if (typeof o.spread !== 'number' || !(o.spread >= 1 && o.spread <= o.masters)) {
    throw new ModelInputError(`capacity model: spread must be between 1 and masters (${o.masters}), got ${String(o.spread)}`);
  }
  if (o.workerCpuMsPerInstance !== undefined) positive('workerCpuMsPerInstance', o.workerCpuMsPerInstance);
  const evenInstancesPerSec = (o.masters * 1000) / o.redisCpuMsPerInstance;
  const instancesPerSec = evenInstancesPerSec / o.spread;
  return {
    masters: o.masters,
    spread: o.spread,
    redisCpuMsPerInstance: o.redisCpuMsPerInstance,
    instancesPerSec,
    evenInstancesPerSec,
    workerCoresNeeded: o.workerCpuMsPerInstance === undefined ? Number.NaN : (instancesPerSec * o.workerCpuMsPerInstance) / 1000,
  };
}
