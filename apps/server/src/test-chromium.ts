/**
 * The Chromium that browser.test.ts drives: `CHROMIUM_PATH` when it is set, otherwise the one the
 * `@sparticuz/chromium` package carries inside its npm tarball (a Brotli-compressed Chromium
 * headless shell for Linux x64, with the NSS/expat libraries it links, SwiftShader and a font), so
 * `npm ci` is all a machine needs.
 *
 * The package is unpacked once per package version into `node_modules/.cache/durabull-chromium/`
 * (private to the checkout, removed by the next `npm ci`), not into the shared `/tmp/chromium`
 * that the package's own `executablePath()` uses and trusts on sight. Each run unpacks into a
 * staging folder of its own and publishes it with one `rename`, so a folder under its final name
 * is always complete: two runs that unpack at the same time both finish, one rename wins, the
 * other run drops its copy and uses the winner's; a run killed half-way leaves only a staging
 * folder that nobody reads.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress } from 'node:zlib';
import { extract } from 'tar-fs';

/** What to launch: the executable and the environment variables it needs on top of the process's own. */
export interface TestChromium {
  /** Absolute path of the Chromium executable. */
  executablePath: string;
  /** Extra environment for the browser process (empty for `CHROMIUM_PATH`). */
  env: Record<string, string>;
  /** Where it came from: `CHROMIUM_PATH`, or the package name and version. */
  source: string;
}

export interface TestChromiumOptions {
  /** Environment to read `CHROMIUM_PATH` from (default `process.env`). */
  env?: NodeJS.ProcessEnv;
  /** Folder that holds one unpacked Chromium per package version (default `node_modules/.cache/durabull-chromium`). */
  cacheDir?: string;
}

/** The Chromium for the browser tests, unpacked on first use (about 210 MB on disk; see README.md). */
export async function testChromium(options: TestChromiumOptions = {}): Promise<TestChromium> {
  const override = (options.env ?? process.env).CHROMIUM_PATH;
  if (override !== undefined && override !== '') {
    if (!existsSync(override)) throw new Error(`CHROMIUM_PATH is ${JSON.stringify(override)}, which does not exist: point it at a Chromium or Chrome executable, or unset it to use the one @sparticuz/chromium ships`);
    return { executablePath: override, env: {}, source: 'CHROMIUM_PATH' };
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`@sparticuz/chromium ships a Chromium for Linux x64 only, and this is ${process.platform} ${process.arch}: set CHROMIUM_PATH to a Chromium or Chrome executable`);
  }
  const pkg = await chromiumPackage();
  const dir = join(options.cacheDir ?? pkg.cacheDir, pkg.version);
  if (!existsSync(join(dir, 'chromium'))) await unpackChromium(pkg.bin, dir);
  return {
    executablePath: join(dir, 'chromium'),
    env: { LD_LIBRARY_PATH: join(dir, 'al2023', 'lib'), FONTCONFIG_FILE: join(dir, 'fonts.conf') },
    source: `${pkg.name}@${pkg.version}`,
  };
}

/** The installed `@sparticuz/chromium`: its name, version, `bin/` folder, and the default cache folder beside it. */
export async function chromiumPackage(): Promise<{ name: string; version: string; bin: string; cacheDir: string }> {
  const packageDir = dirname(dirname(createRequire(import.meta.url).resolve('@sparticuz/chromium'))); // .../build/index.js
  const { name, version } = JSON.parse(await readFile(join(packageDir, 'package.json'), 'utf8')) as { name: string; version: string };
  return { name, version, bin: join(packageDir, 'bin'), cacheDir: join(dirname(dirname(packageDir)), '.cache', 'durabull-chromium') };
}

/**
 * Unpacks the package's `bin/` (see {@link chromiumPackage}) into a new staging folder beside `dir`,
 * then renames it to `dir`. When `dir` already exists (another run published it first) the
 * staging copy is dropped and `dir` is kept as it is; no staging folder outlives the call.
 */
export async function unpackChromium(bin: string, dir: string): Promise<void> {
  await mkdir(dirname(dir), { recursive: true });
  const staging = await mkdtemp(join(dirname(dir), '.unpacking-'));
  try {
    await Promise.all([
      brotli(join(bin, 'chromium.br'), createWriteStream(join(staging, 'chromium'), { mode: 0o755 })),
      brotli(join(bin, 'al2023.tar.br'), extract(join(staging, 'al2023'))), // lib/libnss3.so, libnspr4.so, libexpat.so.1, ...
      brotli(join(bin, 'swiftshader.tar.br'), extract(staging)), // libGLESv2.so, libEGL.so, ... next to the executable
      brotli(join(bin, 'fonts.tar.br'), extract(join(staging, 'fonts'))), // fonts/Open_Sans/*.ttf (its fonts.conf names /tmp/fonts)
    ]);
    // The system's fonts where there is a fontconfig setup, and the package's Open Sans in any case.
    await writeFile(
      join(staging, 'fonts.conf'),
      `<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "fonts.dtd">\n<fontconfig>\n  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>\n  <dir>${xmlText(join(dir, 'fonts', 'fonts'))}</dir>\n</fontconfig>\n`,
    );
    try {
      await rename(staging, dir);
    } catch (err) {
      // Another run published the same version first: its copy is complete, ours goes.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code !== 'ENOTEMPTY' && code !== 'EEXIST') || !existsSync(join(dir, 'chromium'))) throw err;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

function brotli(file: string, into: NodeJS.WritableStream): Promise<void> {
  return pipeline(createReadStream(file), createBrotliDecompress(), into);
}

function xmlText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}
