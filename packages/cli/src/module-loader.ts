/**
 * Loading the user's functions for `durabull worker --module <file>` and `durabull dev`.
 */
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type ActivityDefinition, type EntityDefinition, type OrchestratorDefinition, Registry } from '@durabull/core';
import { CliError, UsageError } from './errors.js';

/** The registry a module provides and where it came from, for the startup lines. */
export interface LoadedModule {
  registry: Registry;
  /** Absolute path of the module. */
  path: string;
  /** How the registry was found: `export registry`, `export default`, or `N definitions`. */
  source: string;
}

type RegistryLike = Pick<Registry, 'orchestratorNames' | 'activityNames' | 'getOrchestrator' | 'getActivity'>;

function isRegistryLike(v: unknown): v is RegistryLike {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return ['orchestratorNames', 'activityNames', 'getOrchestrator', 'getActivity'].every((k) => typeof r[k] === 'function');
}

function isDefinition(v: unknown): v is ActivityDefinition | OrchestratorDefinition | EntityDefinition {
  if (typeof v !== 'object' || v === null) return false;
  const d = v as Record<string, unknown>;
  return (d.kind === 'activity' || d.kind === 'orchestrator' || d.kind === 'entity') && typeof d.name === 'string' && typeof d.fn === 'function';
}

/**
 * A Registry of this copy of @durabull/core (the worker checks `instanceof Registry`): the object
 * itself, or a copy of one made by another copy of the package (a module that resolved its own
 * @durabull/core).
 */
function asRegistry(v: RegistryLike): Registry {
  if (v instanceof Registry) return v;
  const copy = new Registry();
  for (const name of v.orchestratorNames()) copy.addOrchestrator(name, v.getOrchestrator(name));
  for (const name of v.activityNames()) copy.addActivity(name, v.getActivity(name));
  const e = v as Partial<Pick<Registry, 'entityNames' | 'getEntity'>>;
  if (typeof e.entityNames === 'function' && typeof e.getEntity === 'function') for (const name of e.entityNames()) copy.addEntity(name, e.getEntity(name));
  return copy;
}

/**
 * Imports `file` (relative to `cwd`; `.ts` needs the tsx loader, which the `durabull` bin registers in
 * this repository) and returns its functions: its `registry` export, else its default export if that
 * is a Registry, else a new Registry of every definition it exports (from `defineActivity` /
 * `defineOrchestrator`, alone or in arrays).
 *
 * @throws UsageError when the file does not exist; CliError when it cannot be imported (with the
 *   error's stack as detail) or provides no functions.
 */
export async function loadModule(file: string, cwd: string): Promise<LoadedModule> {
  const path = resolve(cwd, file);
  if (!existsSync(path) || !statSync(path).isFile()) throw new UsageError(`--module: no such file: ${path}`);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    throw new CliError(`could not load module ${file}: ${e.name}: ${e.message}`, 1, e.stack);
  }
  let registry: Registry | undefined;
  let source = '';
  if (isRegistryLike(mod.registry)) {
    registry = asRegistry(mod.registry);
    source = 'export registry';
  } else if (isRegistryLike(mod.default)) {
    registry = asRegistry(mod.default);
    source = 'export default';
  } else {
    const defs = new Set<ActivityDefinition | OrchestratorDefinition | EntityDefinition>();
    for (const v of Object.values(mod)) {
      for (const item of Array.isArray(v) ? v : [v]) if (isDefinition(item)) defs.add(item);
    }
    if (defs.size > 0) {
      try {
        registry = new Registry().add(...defs);
      } catch (err) {
        throw new CliError(`module ${file}: ${(err as Error).message}`);
      }
      source = `${defs.size} definition${defs.size === 1 ? '' : 's'}`;
    }
  }
  if (!registry || registry.orchestratorNames().length + registry.activityNames().length + registry.entityNames().length === 0) {
    throw new CliError(
      `module ${file} provides no functions: export a Registry as \`registry\` or as the default export, ` +
        'or export the definitions made with defineActivity() / defineOrchestrator()',
    );
  }
  return { registry, path, source };
}
