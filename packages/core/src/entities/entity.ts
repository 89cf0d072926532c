/**
 * Durable entities: small pieces of state with an address (an {@link EntityId}) whose operations
 * run one at a time. This module is pure: definitions, the context an operation sees, and
 * {@link EntityBatch}, which runs a batch of operations against a state with rollback per
 * operation. The backend loads and commits; the worker decides which queued messages run.
 */
import { DurabullError, EntityOperationNotFoundError } from '../errors.js';
import { type FailureDetails, toFailureDetails } from '../failure.js';
import { assertDate, assertFunction, assertOptions, describeValue, invalidArgument } from '../validation.js';
import { EntityId, assertEntityName, assertOperationName, toEntityId } from './entity-id.js';

/** What an entity operation sees: Durable Functions' `context.df` of an entity function. */
export interface EntityContext<TState = unknown> {
  readonly entityId: EntityId;
  readonly entityName: string;
  readonly entityKey: string;
  /** The operation being run. */
  readonly operationName: string;
  /** True when the entity has a state (set by an earlier operation, not deleted). */
  readonly hasState: boolean;
  /**
   * The current state; without one, the initializer's value (not stored unless `setState` is
   * called) or undefined.
   */
  getState(initializer?: () => TState): TState | undefined;
  /** Replaces the state; committed with the batch unless this operation throws. */
  setState(state: TState): void;
  /** The operation's input. */
  getInput<T = unknown>(): T;
  /** The operation's result (what the caller's `callEntity` task completes with). */
  return(value: unknown): void;
  /** Deletes the state once this operation completes (the entity then has no state). */
  destructOnExit(): void;
  /**
   * Sends a one-way operation to another entity (or this one), committed with the batch; with
   * `scheduledTime`, delivered at that time.
   */
  signalEntity(entity: EntityId | string | { name: string; key: string }, operationName: string, input?: unknown, options?: { scheduledTime?: Date }): void;
}

/** A typed entity's operation context: `ctx.state` reads (and creates, from `initialState`) and writes the state. */
export interface TypedEntityContext<TState> extends EntityContext<TState> {
  state: TState;
}

/** An entity in the function style (`df.app.entity(name, handler)`): one function for every operation, switching on `ctx.operationName`. */
export type EntityFunction<TState = any> = (ctx: EntityContext<TState>) => unknown;

/** One operation of a typed entity. */
export type EntityOperation<TState = any, TIn = any, TOut = any> = (ctx: TypedEntityContext<TState>, input: TIn) => TOut;
export type EntityOperations<TState = any> = Record<string, EntityOperation<TState>>;

/** The arguments after the operation name for operation `F`: none for an operation without input. */
export type OperationArgs<F> = F extends (ctx: any) => any ? [input?: undefined] : F extends (ctx: any, input: infer I) => any ? [input: I] : [input?: unknown];
/** The result of operation `F`. */
export type OperationResult<F> = F extends (...args: any[]) => infer R ? Awaited<R> : unknown;

/** An entity id that knows its definition's operations (`Counter.id('c1')`): calls are type-checked. */
export class TypedEntityId<TOps = EntityOperations> extends EntityId {
  /** @internal the operations of the definition (unknown names are refused at the call). */
  readonly operations: readonly string[];
  declare readonly __ops?: TOps;
  constructor(name: string, key: string, operations: readonly string[]) {
    super(name, key);
    this.operations = operations;
  }
}

/** A named entity: `registry.add(def)`; typed definitions (`defineEntity`) list their operations. */
export interface EntityDefinition<TState = any, TOps = any> {
  readonly kind: 'entity';
  readonly name: string;
  readonly fn: EntityFunction<TState>;
  /** The operation names of a typed definition; undefined in the function style (any name reaches the function). */
  readonly operations: readonly string[] | undefined;
  /** The id of this entity with `key`, typed by its operations. */
  id(key: string): TypedEntityId<TOps>;
}

/**
 * Defines a typed entity from an object of operations:
 * ```ts
 * const Counter = defineEntity('Counter', {
 *   initialState: () => 0,
 *   operations: {
 *     add: (ctx, n: number) => { ctx.state += n; },
 *     get: (ctx) => ctx.state,
 *     reset: (ctx) => ctx.destructOnExit(),
 *   },
 * });
 * await ctx.callEntity(Counter.id('c1'), 'add', 5);
 * ```
 * An operation's return value is its result. An operation name the definition does not have
 * fails the call with EntityOperationNotFoundError.
 */
export function defineEntity<TState, TOps extends Record<string, (ctx: TypedEntityContext<TState>, input: any) => unknown>>(
  name: string,
  spec: { initialState?: () => TState; operations: TOps },
): EntityDefinition<TState, TOps> {
  assertEntityName(name, 'defineEntity');
  assertOptions(`defineEntity('${name}')`, 'spec', spec);
  if (spec === undefined) throw invalidArgument(`defineEntity('${name}')`, 'spec', 'an object with operations', spec);
  if (spec.initialState !== undefined) assertFunction(`defineEntity('${name}')`, 'spec.initialState', spec.initialState);
  const ops = spec.operations as Record<string, unknown> | undefined;
  if (typeof ops !== 'object' || ops === null) throw invalidArgument(`defineEntity('${name}')`, 'spec.operations', 'an object of operation functions', ops);
  const names = Object.keys(ops);
  for (const op of names) {
    assertOperationName(op, `defineEntity('${name}')`, `spec.operations.${op}`);
    assertFunction(`defineEntity('${name}')`, `spec.operations.${op}`, ops[op]);
  }
  const initial = spec.initialState;
  const fn: EntityFunction<TState> = (ctx) => {
    const op = (ops as Record<string, (c: TypedEntityContext<TState>, input: unknown) => unknown>)[ctx.operationName];
    if (!op || !Object.prototype.hasOwnProperty.call(ops, ctx.operationName)) throw new EntityOperationNotFoundError(name, ctx.operationName, names);
    const typed = ctx as TypedEntityContext<TState>;
    Object.defineProperty(typed, 'state', {
      configurable: true,
      get: () => {
        if (!ctx.hasState) ctx.setState(initial ? initial() : (undefined as TState));
        return ctx.getState();
      },
      set: (v: TState) => ctx.setState(v),
    });
    return op(typed, ctx.getInput());
  };
  return { kind: 'entity', name, fn, operations: names, id: (key: string) => new TypedEntityId<TOps>(name, key, names) };
}

/** A signal an operation sent (committed with the batch). */
export interface EntitySignal {
  entity: EntityId;
  operation: string;
  input: unknown;
  /** Delivery time (ms), for a scheduled signal. */
  scheduledTime?: number;
}

/** The outcome of one operation. */
export type EntityOperationOutcome = { ok: true; result: unknown; signals: EntitySignal[] } | { ok: false; failure: FailureDetails; signals: [] };

/**
 * Checks a payload an operation hands out (the new state, a result, a signal's input) so that an
 * operation whose state cannot be stored fails (and is rolled back) instead of the whole batch.
 */
export type EntityPayloadCheck = (value: unknown, what: string) => void;

/** Resolves entity names to their functions. */
export interface EntityResolver {
  getEntity(name: string): EntityFunction;
}

/**
 * Runs operations of one entity against its state, one at a time: each operation sees the state the
 * previous one left; one that throws is rolled back (state and signals), and the next goes on.
 */
export class EntityBatch {
  private exists: boolean;
  private value: unknown;
  private fn: EntityFunction | undefined;
  private notFound: unknown;

  constructor(
    registry: EntityResolver,
    readonly entityId: EntityId,
    state: { exists: boolean; value?: unknown },
    private readonly checkPayload?: EntityPayloadCheck,
  ) {
    this.exists = state.exists;
    this.value = state.value;
    try {
      this.fn = registry.getEntity(entityId.name);
    } catch (err) {
      this.notFound = err;
    }
  }

  /** The state after the operations run so far. */
  get state(): { exists: boolean; value?: unknown } {
    return this.exists ? { exists: true, value: this.value } : { exists: false };
  }

  /** Runs one operation. Never throws: a failure is the outcome. */
  async run(operation: string, input: unknown): Promise<EntityOperationOutcome> {
    const name = this.entityId.name;
    if (!this.fn) return { ok: false, failure: toFailureDetails(this.notFound, name), signals: [] };
    const before = { exists: this.exists, value: this.exists ? snapshot(this.value) : undefined };
    const signals: EntitySignal[] = [];
    let result: unknown;
    let returned = false;
    let destruct = false;
    const self = this;
    const where = `entity '${name}' operation '${operation}'`;
    const ctx: EntityContext = {
      entityId: this.entityId,
      entityName: name,
      entityKey: this.entityId.key,
      operationName: operation,
      get hasState() {
        return self.exists;
      },
      getState(initializer) {
        if (self.exists) return self.value;
        if (initializer !== undefined) {
          assertFunction(`${where}: getState`, 'initializer', initializer);
          return initializer();
        }
        return undefined;
      },
      setState(state) {
        self.exists = true;
        self.value = state;
      },
      getInput: <T>() => input as T,
      return(value) {
        result = value;
        returned = true;
      },
      destructOnExit() {
        destruct = true;
      },
      signalEntity(entity, operationName, signalInput, options) {
        const target = toEntityId(entity, 'ctx.signalEntity', 'entity');
        assertOperationName(operationName, 'ctx.signalEntity');
        assertOptions('ctx.signalEntity', 'options', options);
        const at = options?.scheduledTime;
        if (at !== undefined) assertDate('ctx.signalEntity', 'options.scheduledTime', at);
        self.checkPayload?.(signalInput, `Input of signal '${operationName}' to entity '${target.toString()}'`);
        const s: EntitySignal = { entity: target, operation: operationName, input: signalInput };
        if (at) s.scheduledTime = at.getTime();
        signals.push(s);
      },
    };
    try {
      const out = await this.fn(ctx);
      if (!returned) result = out;
      if (destruct) {
        this.exists = false;
        this.value = undefined;
      } else if (this.exists) {
        this.checkPayload?.(this.value, `State of entity '${this.entityId.toString()}'`);
      }
      this.checkPayload?.(result, `Result of ${where}`);
      return { ok: true, result, signals };
    } catch (err) {
      this.exists = before.exists;
      this.value = before.value;
      return { ok: false, failure: toFailureDetails(err, name), signals: [] };
    }
  }
}

/** A copy of a state that an operation cannot change (objects are cloned; primitives are values). */
function snapshot(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  try {
    return structuredClone(v);
  } catch (err) {
    throw new DurabullError(`An entity state must be plain data (cloneable), got ${describeValue(v)}`, { cause: err });
  }
}

/** Registered entities, by name: the part of the Registry that entity workers use. */
export function assertEntityFunction(name: string, fn: unknown, where: string): void {
  assertEntityName(name, where);
  assertFunction(`${where}('${name}')`, 'fn', fn);
}

