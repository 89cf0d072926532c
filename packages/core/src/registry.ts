import type { OrchestrationContext } from './context/orchestration-context.js';
import { EntityNotFoundError, FunctionNotFoundError, ValidationError } from './errors.js';
import type { EntityDefinition, EntityFunction } from './entities/entity.js';
import { assertEntityName } from './entities/entity-id.js';
import { assertFunction, assertFunctionName, describeValue } from './validation.js';

/**
 * An orchestrator: a generator function (`function* (ctx, input) { const x = yield ctx.callActivity(...) }`)
 * or an async function (`async (ctx, input) => { const x = await ctx.callActivity(...) }`).
 * Its code must be deterministic: it is replayed from history.
 */
export type OrchestratorFunction<TIn = any, TOut = any> = (
  ctx: OrchestrationContext,
  input: TIn,
) => Generator<unknown, TOut, any> | Promise<TOut>;

/** Context an activity receives beside its input. */
export interface ActivityContext {
  readonly instanceId: string;
  readonly executionId: string;
  /** The activity's sequence number in the orchestration. */
  readonly taskId: number;
  readonly name: string;
  /** 1 on the first delivery, more when the activity job is delivered again after a crash. */
  readonly attempt: number;
}

/** An activity: ordinary async code that does the real work. Runs at least once. */
export type ActivityFunction<TIn = any, TOut = any> = (input: TIn, ctx: ActivityContext) => TOut | Promise<TOut>;

export { assertFunctionName, assertInstanceId } from './validation.js';

/** A named, typed activity: `ctx.callActivity(def, input)` checks `input` against TIn and returns a Task of TOut. */
export interface ActivityDefinition<TIn = any, TOut = any> {
  readonly kind: 'activity';
  readonly name: string;
  readonly fn: ActivityFunction<TIn, TOut>;
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
): ActivityDefinition<TIn, Awaited<TOut>> {
  assertFunctionName('activity', name, 'defineActivity');
  assertFunction(`defineActivity('${name}')`, 'fn', fn);
  return { kind: 'activity', name, fn: fn as ActivityFunction<TIn, Awaited<TOut>> };
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
  private readonly entities = new Map<string, { fn: EntityFunction; operations: readonly string[] | undefined }>();

  addOrchestrator(name: string, fn: OrchestratorFunction): this {
    assertFunctionName('orchestrator', name, 'addOrchestrator');
    assertFunction(`addOrchestrator('${name}')`, 'fn', fn);
    if (this.orchestrators.has(name)) throw new ValidationError(`An orchestrator named '${name}' is already registered`);
    this.orchestrators.set(name, fn);
    return this;
  }

  addActivity(name: string, fn: ActivityFunction): this {
    assertFunctionName('activity', name, 'addActivity');
    assertFunction(`addActivity('${name}')`, 'fn', fn);
    if (this.activities.has(name)) throw new ValidationError(`An activity named '${name}' is already registered`);
    this.activities.set(name, fn);
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
      if (d?.kind === 'activity') this.addActivity(d.name, d.fn);
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

  orchestratorNames(): string[] {
    return [...this.orchestrators.keys()].sort();
  }
  activityNames(): string[] {
    return [...this.activities.keys()].sort();
  }
}
