import { ValidationError } from '../errors.js';
import { describeValue, invalidArgument } from '../validation.js';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,127}$/;
const KEY_RE = /^[A-Za-z0-9_.@-]{1,200}$/;

/**
 * The address of an entity: its registered name and a key (`new EntityId('Counter', 'c1')`).
 * Its string form is Durable Functions' entity instance id, `@<name>@<key>` (`@Counter@c1`).
 * Names are function names (1 to 128 letters, digits, `_`, `.`, `-`); keys are 1 to 200 letters,
 * digits, `_`, `.`, `@`, `-` (they are part of Redis key names).
 */
export class EntityId {
  readonly name: string;
  readonly key: string;
  constructor(name: string, key: string) {
    assertEntityName(name, 'EntityId');
    assertEntityKey(key, 'EntityId');
    this.name = name;
    this.key = key;
  }

  /** `@<name>@<key>`: Durable Functions' entity instance id. */
  toString(): string {
    return `@${this.name}@${this.key}`;
  }

  toJSON(): { name: string; key: string } {
    return { name: this.name, key: this.key };
  }

  /** Parses `@<name>@<key>` (the string form); throws ValidationError for anything else. */
  static parse(id: string, where = 'EntityId.parse', arg = 'entityId'): EntityId {
    if (typeof id !== 'string') throw invalidArgument(where, arg, "an entity id ('@name@key')", id);
    const m = /^@([^@]*)@(.*)$/s.exec(id);
    if (!m) throw new ValidationError(`${where}: ${arg} must be an entity id '@<name>@<key>', got ${describeValue(id)}`);
    return new EntityId(m[1]!, m[2]!);
  }
}

/** Checks an entity name: the same rules as orchestrator and activity names. */
export function assertEntityName(name: unknown, where = ''): asserts name is string {
  if (typeof name === 'string' && NAME_RE.test(name)) return;
  if (typeof name !== 'string') throw invalidArgument(where, 'name', 'a string (the entity name)', name);
  throw new ValidationError(
    `Invalid entity name ${JSON.stringify(name.slice(0, 200))}: use 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or '_'.`,
  );
}

/** Checks an entity key: 1 to 200 letters, digits, `_`, `.`, `@`, `-`. */
export function assertEntityKey(key: unknown, where = ''): asserts key is string {
  if (typeof key === 'string' && KEY_RE.test(key)) return;
  if (typeof key !== 'string') throw invalidArgument(where, 'key', 'a string (the entity key)', key);
  throw new ValidationError(`Invalid entity key ${JSON.stringify(key.slice(0, 200))}: use 1 to 200 letters, digits, '_', '.', '@' or '-'.`);
}

/** Checks an operation name: 1 to 128 letters, digits, `_`, `.`, `-`, `:`. */
export function assertOperationName(op: unknown, where = '', arg = 'operationName'): asserts op is string {
  if (typeof op === 'string' && /^[A-Za-z0-9_.:-]{1,128}$/.test(op)) return;
  if (typeof op !== 'string') throw invalidArgument(where, arg, 'a string (the operation name)', op);
  throw new ValidationError(`${where ? `${where}: ` : ''}Invalid operation name ${JSON.stringify(op.slice(0, 200))}: use 1 to 128 letters, digits, '_', '.', ':' or '-'.`);
}

/**
 * An entity id given as an EntityId, a typed id from `def.id(key)`, a `{ name, key }` object or the
 * string `@name@key`, checked.
 */
export function toEntityId(v: unknown, where: string, arg = 'entityId'): EntityId {
  if (v instanceof EntityId) return v;
  if (typeof v === 'string') return EntityId.parse(v, where, arg);
  if (typeof v === 'object' && v !== null && typeof (v as EntityId).name === 'string' && typeof (v as EntityId).key === 'string') {
    const { name, key } = v as EntityId;
    if (!NAME_RE.test(name)) throw new ValidationError(`${where}: ${arg}.name is not a valid entity name, got ${describeValue(name)}`);
    if (!KEY_RE.test(key)) throw new ValidationError(`${where}: ${arg}.key is not a valid entity key (1 to 200 letters, digits, '_', '.', '@', '-'), got ${describeValue(key)}`);
    return new EntityId(name, key);
  }
  throw invalidArgument(where, arg, "an EntityId, { name, key } or '@name@key'", v);
}
