import { EntityId as CoreEntityId, ValidationError, describeValue } from '@durabull/core';

/**
 * v3's entity id: `new df.EntityId(name, key)`. Entity names are case-insensitive, as in Durable
 * Functions: the id's string form (and the name durabull stores) is the lower-case name,
 * `@counter@c1`. Names follow durabull's rules for function names and keys its rules for entity keys
 * (letters, digits, `_`, `.`, `@`, `-`), checked here.
 */
export class EntityId {
  constructor(
    readonly name: string,
    readonly key: string,
  ) {
    if (typeof name !== 'string' || name.trim() === '') throw new ValidationError(`new EntityId: name must be a non-empty string, got ${describeValue(name)}`);
    if (typeof key !== 'string' || key.trim() === '') throw new ValidationError(`new EntityId: key must be a non-empty string, got ${describeValue(key)}`);
    toCoreEntityId(this, 'new EntityId'); // the same checks as durabull's own ids
  }

  /** `@<lower-case name>@<key>`, Durable Functions' entity instance id. */
  toString(): string {
    return `@${this.name.toLowerCase()}@${this.key}`;
  }
}

/** The durabull id of a v3 entity id (or `{ name, key }`, or `'@name@key'`): its name in lower case. */
export function toCoreEntityId(id: unknown, where: string, arg = 'entityId'): CoreEntityId {
  if (typeof id === 'string') {
    const parsed = CoreEntityId.parse(id, where, arg);
    return new CoreEntityId(parsed.name.toLowerCase(), parsed.key);
  }
  const o = id as { name?: unknown; key?: unknown } | null;
  if (typeof o !== 'object' || o === null || typeof o.name !== 'string' || typeof o.key !== 'string') {
    throw new ValidationError(`${where}: ${arg} must be an EntityId (new df.EntityId(name, key)), got ${describeValue(id)}`);
  }
  try {
    return new CoreEntityId(o.name.toLowerCase(), o.key);
  } catch (err) {
    throw new ValidationError(`${where}: ${arg} ${describeValue(`@${o.name}@${o.key}`)} is not an entity id durabull can store: ${(err as Error).message}`);
  }
}

/** What `client.readEntityState` returns: whether the entity exists, and its state. */
export class EntityStateResponse<T> {
  constructor(
    public entityExists: boolean,
    public entityState?: T,
  ) {}
}
