#!/usr/bin/env node
// The `durabull` command. In this repository (src/ present) it runs the TypeScript sources through
// tsx, resolving the workspace packages by their "source" export condition, exactly like
// `npm run durabull -- ...`; a built, published package (no src/) runs dist/main.js.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

const source = new URL('../src/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  // Adds the "source" condition to every resolution, as `node --conditions=source` would.
  const hook =
    'export async function resolve(specifier, context, next) {' +
    ' const conditions = context.conditions ?? [];' +
    " return next(specifier, conditions.includes('source') ? context : { ...context, conditions: ['source', ...conditions] }); }";
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  await import(source.href);
} else {
  await import(new URL('../dist/main.js', import.meta.url).href);
}
