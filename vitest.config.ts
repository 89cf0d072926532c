import { defaultClientConditions, defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

/** Export condition under which every workspace package exports its TypeScript sources. */
const SOURCE_CONDITION = 'source';

export default defineConfig({
  plugins: [
    {
      // "@durabull/core" must resolve to packages/core/src/index.ts (its "source" export), not to dist/index.js, which
      // exists only after a build.
      //
      // Vitest 4 (on Vite 6+) resolves through several Vite environments: test files run in "ssr", globalSetup files
      // in Vitest's own "__vitest__" environment. A server environment takes its conditions only from its own
      // `resolve.conditions` (or `ssr.resolve.conditions` for "ssr"), never from the top-level `resolve.conditions`,
      // and setting them replaces Vite's defaults. So this hook adds the condition to every environment, in front of
      // whatever that environment would otherwise use. Vitest also copies the "ssr" list into its workers'
      // `--conditions` flags, so Node's own resolver (import.meta.resolve, child processes forked with process.execArgv)
      // agrees.
      name: 'durabull:source-condition',
      configEnvironment(name, env) {
        const consumer = env.consumer ?? (name === 'client' ? 'client' : 'server');
        const current = env.resolve?.conditions ?? (consumer === 'client' ? defaultClientConditions : defaultServerConditions);
        if (current.includes(SOURCE_CONDITION)) return;
        env.resolve = { ...env.resolve, conditions: [SOURCE_CONDITION, ...current] };
      },
    },
  ],
  test: {
    globals: false,
    include: ['packages/*/src/**/*.test.ts', 'apps/*/src/**/*.test.ts', 'test/src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['./test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
  },
});
