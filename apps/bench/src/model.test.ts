import { describe, expect, it } from 'vitest';
import { ModelInputError, capacity, clusterCapacity, modelError, perInstance } from './model.js';

describe('capacity model', () => {
  const cost = { workerCpuMs: 0.9, clientCpuMs: 0.1, redisCpuMs: 0.25 };

  it('is bound by the worker cores until Redis is the slower side', () => {
    // 1 ms of worker + client CPU per instance: 1,000 instances/s per worker core; 0.25 ms of Redis: 4,000 per Redis core.
    const one = capacity(cost, 1);
    expect(one.workerBoundPerSec).toBeCloseTo(1000, 9);
    expect(one.redisBoundPerSec).toBeCloseTo(4000, 9);
    expect(one).toMatchObject({ bottleneck: 'workers', workerCores: 1, redisCores: 1 });
    expect(one.instancesPerSec).toBeCloseTo(1000, 9);
    // Redis is the limit from 4 worker cores on.
    expect(one.redisBoundFromWorkerCores).toBeCloseTo(4, 9);
    const eight = capacity(cost, 8);
    expect(eight.bottleneck).toBe('redis');
    expect(eight.instancesPerSec).toBeCloseTo(4000, 9);
    // Two Redis cores move the crossover to 8 worker cores.
    expect(capacity(cost, 8, 2).redisBoundFromWorkerCores).toBeCloseTo(8, 9);
  });

  it('takes CPU per instance from a run\'s totals, and states its error against a measurement', () => {
    expect(perInstance({ workersCpuMs: 900, clientCpuMs: 100, redisCpuMs: 250 }, 1000)).toEqual({ workerCpuMs: 0.9, clientCpuMs: 0.1, redisCpuMs: 0.25 });
    expect(modelError(1100, 1000)).toBeCloseTo(0.1, 9);
    expect(modelError(900, 1000)).toBeCloseTo(-0.1, 9);
  });

  it('refuses inputs it cannot compute with, naming them', () => {
    expect(() => capacity({ ...cost, redisCpuMs: 0 }, 8)).toThrow(ModelInputError);
    expect(() => capacity({ ...cost, redisCpuMs: 0 }, 8)).toThrow(/redisCpuMs must be a finite number > 0, got 0/);
    expect(() => capacity({ ...cost, workerCpuMs: Number.NaN }, 8)).toThrow(/workerCpuMs .* got NaN/);
    expect(() => capacity({ ...cost, clientCpuMs: -1 }, 8)).toThrow(/clientCpuMs must be a finite number >= 0, got -1/);
    expect(() => capacity(cost, 0)).toThrow(/workerCores .* got 0/);
    expect(() => perInstance({ workersCpuMs: 1, clientCpuMs: 0, redisCpuMs: 1 }, 0)).toThrow(/instances .* got 0/);
    expect(() => modelError(100, 0)).toThrow(/measured/);
  });
});

describe('cluster capacity model', () => {
  it('is bound by the busiest master: masters × 1000 / (Redis CPU per instance × spread)', () => {
    // 0.5 ms of Redis CPU per instance over all masters: 2,000 instances/s per master core.
    const even = clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 3, spread: 1, workerCpuMsPerInstance: 2 });
    expect(even.instancesPerSec).toBeCloseTo(6000, 9);
    expect(even.evenInstancesPerSec).toBeCloseTo(6000, 9);
    // 6,000 instances/s × 2 ms of worker CPU each: 12 worker cores.
    expect(even.workerCoresNeeded).toBeCloseTo(12, 9);
    // The busiest master carries 1.2 × the mean: it saturates at 6,000 / 1.2.
    const skewed = clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 3, spread: 1.2 });
    expect(skewed.instancesPerSec).toBeCloseTo(5000, 9);
    expect(skewed.evenInstancesPerSec).toBeCloseTo(6000, 9);
    expect(Number.isNaN(skewed.workerCoresNeeded)).toBe(true);
    // Six masters at the same spread: twice as much.
    expect(clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 6, spread: 1.2 }).instancesPerSec).toBeCloseTo(10000, 9);
    // Everything on one master (spread = masters): one master's worth, however many there are.
    expect(clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 6, spread: 6 }).instancesPerSec).toBeCloseTo(2000, 9);
  });

  it('refuses a spread outside 1..masters and a bad cost, naming them', () => {
    expect(() => clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 3, spread: 0.9 })).toThrow(ModelInputError);
    expect(() => clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 3, spread: 3.5 })).toThrow(/spread must be between 1 and masters \(3\), got 3.5/);
    expect(() => clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 2.5, spread: 1 })).toThrow(/masters must be an integer >= 1, got 2.5/);
    expect(() => clusterCapacity({ redisCpuMsPerInstance: 0, masters: 3, spread: 1 })).toThrow(/redisCpuMsPerInstance .* got 0/);
    expect(() => clusterCapacity({ redisCpuMsPerInstance: 0.5, masters: 3, spread: 1, workerCpuMsPerInstance: -1 })).toThrow(/workerCpuMsPerInstance/);
  });
});
