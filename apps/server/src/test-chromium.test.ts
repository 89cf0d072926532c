/**
 * The browser tests' Chromium comes from an npm package, so `npm ci` is all a machine needs: it
 * unpacks into a folder of its own, two unpacks of the same version at once leave one complete
 * copy, and CHROMIUM_PATH overrides it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { chromiumPackage, testChromium, unpackChromium } from './test-chromium.js';

const run = promisify(execFile);

describe('the browser tests’ Chromium', () => {
  const made: string[] = [];
  const tempDir = async () => {
    const dir = await mkdtemp(join(tmpdir(), 'durabull-chromium-cache-'));
    made.push(dir);
    return dir;
  };
  afterAll(async () => {
    for (const dir of made) await rm(dir, { recursive: true, force: true });
  });

  it('comes from @sparticuz/chromium without CHROMIUM_PATH, and two unpacks at once leave one complete copy', async () => {
    const cacheDir = await tempDir();
    const pkg = await chromiumPackage();
    expect(pkg.name).toBe('@sparticuz/chromium');
    const dir = join(cacheDir, pkg.version);

    // Both unpack (unpackChromium does not look for an existing copy); one rename wins, the other drops its copy.
    await Promise.all([unpackChromium(pkg.bin, dir), unpackChromium(pkg.bin, dir)]);
    expect(await readdir(cacheDir)).toEqual([pkg.version]); // no staging folder left behind
    const published = await stat(join(dir, 'chromium'));

    // testChromium finds that copy and does not unpack again.
    const chromium = await testChromium({ env: {}, cacheDir });
    expect(chromium.executablePath).toBe(join(dir, 'chromium'));
    expect(chromium.source).toBe(`@sparticuz/chromium@${pkg.version}`);
    expect((await stat(chromium.executablePath)).ino).toBe(published.ino);
    expect(await readdir(cacheDir)).toEqual([pkg.version]);

    // It runs, with the libraries it ships (no system Chromium or NSS needed).
    const { stdout } = await run(chromium.executablePath, ['--version'], { env: { ...process.env, ...chromium.env } });
    expect(stdout).toMatch(new RegExp(`^Chromium ${pkg.version.split('.')[0]}\\.`));
    const { stdout: libs } = await run('ldd', [chromium.executablePath], { env: { ...process.env, ...chromium.env } });
    expect(libs).toContain(join(dir, 'al2023', 'lib', 'libnss3.so'));
    expect(libs).not.toContain('not found');
  });

  it('takes CHROMIUM_PATH when it is set, and names it when it points nowhere', async () => {
    const cacheDir = await tempDir();
    await expect(testChromium({ env: { CHROMIUM_PATH: process.execPath }, cacheDir })).resolves.toEqual({
      executablePath: process.execPath,
      env: {},
      source: 'CHROMIUM_PATH',
    });
    await expect(testChromium({ env: { CHROMIUM_PATH: '/nonexistent/chromium' }, cacheDir })).rejects.toThrow(
      'CHROMIUM_PATH is "/nonexistent/chromium", which does not exist',
    );
    expect(await readdir(cacheDir)).toEqual([]); // nothing unpacked
  });
});
