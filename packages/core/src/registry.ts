import type { OrchestrationContext } from './context/orchestration-context.js';
import { EntityNotFoundError, FunctionNotFoundError, ValidationError } from './errors.js';
import type { EntityDefinition, EntityFunction } from './entities/entity.js';
import { assertEntityName } from './entities/entity-id.js';
import { assertActivityOptions, assertFunction, assertFunctionName, describeValue } from './validation.js';

/**
 * An orchestrator: a generator function (`function* (ctx, input) { const x = yield ctx.callActivity(...) }`)
 * or an async function (`async (ctx, input) => { const x = await ctx.callActivity(...) }`).
 * Its code must be deterministic: it is replayed from history.
 */
export type OrchestratorFunction<TIn = any, TOut = any> = (
  ctx: OrchestrationContext,
  input: TIn,
) => Generator<unknown, TOut, any> | Promise<TOut>;

/**
 * Timeouts of an activity, at registration (`addActivity(name, fn, options)`, `defineActivity`) or
 * per call (`ctx.callActivity(name, input, options)`); a call's options win over the registration's,
 * which win over the worker's `defaultStartToCloseTimeoutMs`. Integers of ms >= 1.
 */
export interface ActivityOptions {
  /**
   * The longest one attempt may run, from its start to its result. When it runs out, the attempt's
   * task fails with `ActivityTimeoutError` (retry policies apply), `ctx.signal` is aborted and a
   * result that comes later is dropped. Default: the worker's `defaultStartToCloseTimeoutMs` (5 minutes).
   */
  startToCloseTimeoutMs?: number;
  /**
   * The longest an attempt may go without `ctx.heartbeat()`: past it, the attempt fails as above.
   * Also how soon the attempt of a worker that died is given up on (plus a sweep), rather than
   * when BullMQ finds its job stalled (`lockDurationMs`). Default: none.
   */
  heartbeatTimeoutMs?: number;
}

/** Context an activity receives beside its input. */
export interface ActivityContext {
  readonly instanceId: string;
  readonly executionId: string;
  /** The activity's sequence number in the orchestration. */
  readonly taskId: number;
  readonly name: string;
  /** 1 on the first delivery, more when the activity job is delivered again after a crash. */
  readonly attempt: number;
  /**
   * Aborted when this attempt should stop: its timeout ran out (the reason is an
   * `ActivityTimeoutError`), its instance was terminated, its task no longer waits for it, or the
   * worker is shutting down past its grace period (an `ActivityCancelledError`). Pass it to
   * `fetch` and other APIs that take one. Code that ignores it keeps running, but its result is
   * dropped.
   */
  readonly signal: AbortSignal;
  /**
   * Records progress: keeps a heartbeat timeout from running out and stores `details` (the last
   * value given) for the next attempt of this task, which reads them as `lastHeartbeatDetails`.
   * Cheap to call often: Redis is written at most once per 80% of the heartbeat timeout (30 s
   * without one), the first call and the last value at once / at the end of each interval.
   */
  heartbeat(details?: unknown): void;
  /**
   * The details the previous attempt of this task (an earlier try of the same retry policy, or a
   * run cut off by a crash) gave to its last heartbeat; undefined for a first attempt.
   */
  readonly lastHeartbeatDetails: unknown;
  /** This attempt's start-to-close timeout in ms (Infinity when none). */
  readonly startToCloseTimeoutMs: number;
  /** This attempt's heartbeat timeout in ms, if it has one. */
  readonly heartbeatTimeoutMs: number | undefined;
}

/** An activity: ordinary async code that does the real work. Runs at least once. */
export type ActivityFunction<TIn = any, TOut = any> = (input: TIn, ctx: ActivityContext) => TOut | Promise<TOut>;

export { assertFunctionName, assertInstanceId } from './validation.js';

/** A named, typed activity: `ctx.callActivity(def, input)` checks `input` against TIn and returns a Task of TOut. */
export interface ActivityDefinition<TIn = any, TOut = any> {
  readonly kind: 'activity';
  readonly name: string;
  readonly fn: ActivityFunction<TIn, TOut>;
  /** Its timeouts, as registered. */
  readonly options?: ActivityOptions;
}

/** A named, typed orchestrator: `client.startNew(def, { input })` checks `input` against TIn. */
export interface OrchestratorDefinition<TIn = any, TOut = any> {
  readonly kind: 'orchestrator';
  readonly name: string;
  readonly fn: OrchestratorFunction<TIn, TOut>;
}

/** Input and output types of a definition: `InputOf<typeof F1>`, `OutputOf<typeof Chaining>`. */
export type InputOf<D> = D extends ActivityDefinition<infer I, any> ? I : D extends OrchestratorDefinition<infer I, any> ? I : never;
export type OutputOf<D> = D extends ActivityDefinition<any, infer O> ? O : D extends OrchestratorDefinition<any, infer O> ? O : never;

/**
 * Defines an activity with its types:
 * `const F1 = defineActivity('F1', async (city: string) => \`Hello ${city}\`)`.
 */
export function defineActivity<TIn, TOut>(
  name: string,
  fn: (input: TIn, ctx: ActivityContext) => TOut | Promise<TOut>,
  options?: ActivityOptions,
): ActivityDefinition<TIn, Awaited<TOut>> {
  assertFunctionName('activity', name, 'defineActivity');
  assertFunction(`defineActivity('${name}')`, 'fn', fn);
  assertActivityOptions(`defineActivity('${name}')`, 'options', options);
  const def: { kind: 'activity'; name: string; fn: ActivityFunction<TIn, Awaited<TOut>>; options?: ActivityOptions } = {
    kind: 'activity',
    name,
    fn: fn as ActivityFunction<TIn, Awaited<TOut>>,
  };
  if (options !== undefined) def.options = { ...options };
  return def;
}

/**
 * Defines an orchestrator with its types:
 * `const Greet = defineOrchestrator('Greet', async (ctx, city: string) => ctx.callActivity(F1, city))`.
 */
export function defineOrchestrator<TIn, TOut>(
  name: string,
  fn: (ctx: OrchestrationContext, input: TIn) => Generator<unknown, TOut, any> | Promise<TOut>,
): OrchestratorDefinition<TIn, TOut> {
  assertFunctionName('orchestrator', name, 'defineOrchestrator');
  assertFunction(`defineOrchestrator('${name}')`, 'fn', fn);
  return { kind: 'orchestrator', name, fn };
}

/** The orchestrators and activities a worker can run, by name. */
export class Registry {
  private readonly orchestrators = new Map<string, OrchestratorFunction>();
  private readonly activities = new Map<string, ActivityFunction>();
  private readonly activityOptions = new Map<string, ActivityOptions>();
  private readonly entities = new Map<string, { fn: EntityFunction; operations: readonly string[] | undefined }>();

  addOrchestrator(name: string, fn: OrchestratorFunction): this {
    assertFunctionName('orchestrator', name, 'addOrchestrator');
    assertFunction(`addOrchestrator('${name}')`, 'fn', fn);
    if (this.orchestrators.has(name)) throw new ValidationError(`An orchestrator named '${name}' is already registered`);
    this.orchestrators.set(name, fn);
    return this;
  }

  /** Registers an activity; `options` sets its timeouts (checked: ValidationError naming the field). */
  addActivity(name: string, fn: ActivityFunction, options?: ActivityOptions): this {
    assertFunctionName('activity', name, 'addActivity');
    assertFunction(`addActivity('${name}')`, 'fn', fn);
    assertActivityOptions(`addActivity('${name}')`, 'options', options);
    if (this.activities.has(name)) throw new ValidationError(`An activity named '${name}' is already registered`);
    this.activities.set(name, fn);
    if (options !== undefined) this.activityOptions.set(name, { ...options });
    return this;
  }

  /**
   * Registers an entity in the function style (Durable Functions' `df.app.entity(name, handler)`):
   * `fn(ctx)` runs every operation, switching on `ctx.operationName`.
   */
  addEntity(name: string, fn: EntityFunction): this {
    return this.putEntity(name, fn, undefined, 'addEntity');
  }

  private putEntity(name: string, fn: EntityFunction, operations: readonly string[] | undefined, where: string): this {
    assertEntityName(name, where);
    assertFunction(`${where}('${name}')`, 'fn', fn);
    if (this.entities.has(name)) throw new ValidationError(`An entity named '${name}' is already registered`);
    this.entities.set(name, { fn, operations });
    return this;
  }

  /** Registers definitions made with defineActivity / defineOrchestrator / defineEntity. */
  add(...defs: (ActivityDefinition | OrchestratorDefinition | EntityDefinition)[]): this {
    for (const d of defs) {
      if (d?.kind === 'activity') this.addActivity(d.name, d.fn, d.options);
      else if (d?.kind === 'orchestrator') this.addOrchestrator(d.name, d.fn);
      else if (d?.kind === 'entity') this.putEntity(d.name, d.fn, d.operations, 'Registry.add');
      else throw new ValidationError(`Registry.add: every argument must be a definition from defineActivity(), defineOrchestrator() or defineEntity(), got ${describeValue(d)}`);
    }
    return this;
  }

  getEntity(name: string): EntityFunction {
    const e = this.entities.get(name);
    if (!e) throw new EntityNotFoundError(name, this.entityNames());
    return e.fn;
  }

  entityNames(): string[] {
    return [...this.entities.keys()].sort();
  }

  /** The operation names of a typed entity (defineEntity); undefined for the function style or an unknown name. */
  entityOperations(name: string): readonly string[] | undefined {
    return this.entities.get(name)?.operations;
  }

  getOrchestrator(name: string): OrchestratorFunction {
    const fn = this.orchestrators.get(name);
    if (!fn) throw new FunctionNotFoundError('orchestrator', name, this.orchestratorNames());
    return fn;
  }

  getActivity(name: string): ActivityFunction {
    const fn = this.activities.get(name);
    if (!fn) throw new FunctionNotFoundError('activity', name, this.activityNames());
    return fn;
  }

  /** The timeouts an activity was registered with (undefined when none). */
  getActivityOptions(name: string): ActivityOptions | undefined {
    return this.activityOptions.get(name);
  }

  orchestratorNames(): string[] {
    return [...this.orchestrators.keys()].sort();
  }
  activityNames(): string[] {
    return [...this.activities.keys()].sort();
  }
}
