/**
 * What a fresh clone and an application outside the repository get:
 * - CI runs exactly the README's commands, with no system package installed on the side;
 * - an application in another folder installs the packages from the checkout (`npm install
 *   <checkout>/packages/...`) and runs them built (`npm run build`, then plain `node`, its own
 *   TypeScript compiled against the packages' declarations, or `require()` from CommonJS) or from
 *   their sources (`tsx --conditions=source`, no build), through the packages' `exports` maps.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { HubKeys } from '@durabull/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteKeysByPattern, redisUrl, uniqueHub, connectRedis } from './helpers/redis.js';

const exec = promisify(execFile);
/** execFile that fails with what the command printed (tsc prints its errors on stdout). */
const run: typeof exec = (async (...args: Parameters<typeof exec>) => {
  try {
    return await exec(...args);
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    e.message += `\n${e.stdout ?? ''}${e.stderr ?? ''}`;
    throw e;
  }
}) as typeof exec;
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The environment of a process outside the test runner: no `--conditions` inherited through NODE_OPTIONS. */
function plainEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

describe('CI', () => {
  it('runs the README’s two commands and installs nothing else (no apt step)', async () => {
    const script = await readFile(join(ROOT, '.ci/run'), 'utf8');
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    // Commands only: comments and messages may name a package manager (to advise, not to run it).
    const commands = script
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#') && !/^echo\b/.test(line));
    expect(commands.filter((line) => /\b(apt|apt-get|dpkg|brew|yum|dnf|apk)\b/.test(line))).toEqual([]);
    const npmCommands = commands.filter((line) => /^npm\b/.test(line));
    expect(npmCommands).toEqual(['npm ci', 'npm run demo', 'npm test']);
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(firstBlock).toMatch(/^npm ci && npm run demo\b/m);
    expect(firstBlock).toMatch(/^npm test\b/m);
  });
});

describe('an application in another folder', () => {
  let app: string;
  let hub: string;
  const redis = connectRedis();

  beforeAll(async () => {
    // The build the README tells to run (about 5 s); dist/ is git-ignored.
    await run('npm', ['run', 'build'], { cwd: ROOT, env: plainEnv() });
    app = await mkdtemp(join(tmpdir(), 'durabull-app-'));
    expect(relative(ROOT, app).startsWith('..')).toBe(true); // outside the workspace
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // What the README says; --offline: installing folders needs nothing from a registry.
    const folders = ['core', 'client', 'worker'].map((p) => join(ROOT, 'packages', p));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', ...folders], { cwd: app, env: plainEnv() });
    await writeFile(join(app, 'app.ts'), APP);
    await writeFile(join(app, 'legacy.cjs'), LEGACY);
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'es2022',
          strict: true,
          outDir: 'out',
          // The application's own @types/node would come from its own install; this one has none.
          typeRoots: [join(ROOT, 'node_modules/@types')],
          types: ['node'],
        },
        files: ['app.ts'],
      }),
    );
    hub = uniqueHub('app');
  }, 180_000);

  afterAll(async () => {
    if (hub) await deleteKeysByPattern(redis, new HubKeys(hub).pattern);
    await redis.quit();
    if (app) await rm(app, { recursive: true, force: true });
  });

  it('finds every file that a workspace package’s exports map names, after the build', async () => {
    const rootPackage = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { workspaces: string[] };
    const dirs: string[] = [];
    for (const pattern of rootPackage.workspaces) {
      if (!pattern.endsWith('/*')) dirs.push(pattern);
      else for (const entry of await readdir(join(ROOT, pattern.slice(0, -2)), { withFileTypes: true })) if (entry.isDirectory()) dirs.push(join(pattern.slice(0, -2), entry.name));
    }
    const missing: string[] = [];
    let named = 0;
    for (const dir of dirs) {
      const pkg = JSON.parse(await readFile(join(ROOT, dir, 'package.json'), 'utf8')) as { name: string; exports?: Record<string, Record<string, string>> };
      for (const [subpath, conditions] of Object.entries(pkg.exports ?? {})) {
        expect(Object.keys(conditions), `${pkg.name} "${subpath}"`).toEqual(['source', 'types', 'default']);
        for (const [condition, target] of Object.entries(conditions)) {
          named++;
          if (!existsSync(join(ROOT, dir, target))) missing.push(`${pkg.name} ${subpath} ${condition}: ${target}`);
        }
      }
    }
    expect(named).toBeGreaterThanOrEqual(7 * 3); // six packages and apps/server
    expect(missing).toEqual([]);
  });

  it('compiles against the built declarations and runs on plain node', async () => {
    // A type error in the app (or types that resolve to nothing: the @ts-expect-error goes unused) fails the compile.
    await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', app], { cwd: app, env: plainEnv() });
    const { stdout } = await run(process.execPath, [join(app, 'out/app.js'), redisUrl(), hub], { cwd: app, env: plainEnv() });
    const result = JSON.parse(stdout) as AppResult;
    expect(result).toEqual({ runtimeStatus: 'Completed', output: ['Hello Tokyo', 'Hello Oslo'], resolved: expect.any(Array) });
    expect(result.resolved.map((url) => relative(ROOT, fileURLToPath(url)))).toEqual([
      'packages/core/dist/index.js',
      'packages/client/dist/index.js',
      'packages/worker/dist/index.js',
    ]);
  });

  it('requires the built packages from CommonJS', async () => {
    const { stdout } = await run(process.execPath, [join(app, 'legacy.cjs')], { cwd: app, env: plainEnv() });
    expect(JSON.parse(stdout)).toEqual({ core: join(ROOT, 'packages/core/dist/index.js'), Registry: 'function', DurabullClient: 'function' });
  });

  it('runs from the TypeScript sources with tsx --conditions=source', async () => {
    const { stdout } = await run(join(ROOT, 'node_modules/.bin/tsx'), ['--conditions=source', join(app, 'app.ts'), redisUrl(), hub], { cwd: app, env: plainEnv() });
    const result = JSON.parse(stdout) as AppResult;
    expect(result.runtimeStatus).toBe('Completed');
    expect(result.output).toEqual(['Hello Tokyo', 'Hello Oslo']);
    expect(result.resolved.map((url) => relative(ROOT, fileURLToPath(url)))).toEqual([
      'packages/core/src/index.ts',
      'packages/client/src/index.ts',
      'packages/worker/src/index.ts',
    ]);
    expect(existsSync(join(app, 'node_modules/@durabull/core/src/index.ts'))).toBe(true);
  });
});

interface AppResult {
  runtimeStatus: string;
  output: unknown;
  resolved: string[];
}

/** The application: a typed orchestrator and activity, a worker and a client; prints one JSON line. */
const APP = `import { Registry, defineActivity, defineOrchestrator } from '@durabull/core';
import { DurabullClient } from '@durabull/client';
import { DurabullWorker } from '@durabull/worker';

const [connection, hub] = process.argv.slice(2) as [string, string];
const Greet = defineActivity('Greet', async (city: string) => \`Hello \${city}\`);
const Trip = defineOrchestrator('Trip', async (ctx, cities: string[]) => ctx.all(cities.map((city) => ctx.callActivity(Greet, city))));

const worker = await new DurabullWorker({ connection, hub, registry: new Registry().add(Greet, Trip), logger: false }).start();
const client = new DurabullClient({ connection, hub });
try {
  const id = await client.startNew(Trip, { input: ['Tokyo', 'Oslo'] });
  const status = await client.waitForCompletion(id, { timeoutMs: 20_000 });
  const resolved = ['@durabull/core', '@durabull/client', '@durabull/worker'].map((name) => import.meta.resolve(name));
  console.log(JSON.stringify({ runtimeStatus: status.runtimeStatus, output: status.output, resolved }));
} finally {
  await worker.close();
  await client.close();
}

export function wrongInput(c: DurabullClient) {
  // @ts-expect-error Trip takes string[]
  return c.startNew(Trip, { input: 42 });
}
`;

/** CommonJS: require() of the ES-module packages (Node 20.19 and later). */
const LEGACY = `const { Registry } = require('@durabull/core');
const { DurabullClient } = require('@durabull/client');
console.log(JSON.stringify({ core: require.resolve('@durabull/core'), Registry: typeof Registry, DurabullClient: typeof DurabullClient }));
`;
