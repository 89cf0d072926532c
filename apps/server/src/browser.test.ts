/**
 * The orchestration view in a real browser (the Chromium that @sparticuz/chromium ships, or
 * CHROMIUM_PATH, through playwright-core; see test-chromium.ts): an
 * instance that ran three activities and waits for an event, its timeline and execution log, the
 * event raised from the page's form, the instance completing; and the overview's charts after a
 * short run. Saves screenshots in test-results/.
 */
import { DEFAULT_PARTITIONS } from '@durabull/redis';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { type BrowserContext, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestHub, createTestHub } from '../../../test/src/helpers/hub.js';
import { TEST_PARTITIONS } from '../../../test/src/helpers/partitions.js';
import { createServer } from './server.js';
import { testChromium } from './test-chromium.js';
import { activities, orchestrators } from './test-functions.js';

const RESULTS = fileURLToPath(new URL('../../../test-results/', import.meta.url));
const TOKEN = 'browser-test-token';

describe('orchestration view in Chromium', () => {
  let th: TestHub;
  let app: FastifyInstance;
  let base: string;
  let profile: string;
  let browser: BrowserContext;

  beforeAll(async () => {
    const binary = await testChromium();
    th = await createTestHub({ orchestrators, activities });
    app = createServer({ ...TEST_PARTITIONS, connection: th.url, hub: th.hub, token: TOKEN });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    profile = await mkdtemp(join(tmpdir(), 'durabull-chromium-'));
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: binary.executablePath,
      env: { ...process.env, ...binary.env },
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
  });

  afterAll(async () => {
    await browser?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
    await app?.close();
    await th?.cleanup();
  });

  it('shows the timeline and execution log, raises the event from the form and sees the instance complete', async () => {
    const id = `browser-${Date.now().toString(36)}`;
    const start = await fetch(`${base}/orchestrations/Approval?instanceId=${id}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify('order-42'),
    });
    expect(start.status).toBe(202);
    // Three activities done, waiting for the event.
    for (let i = 0; i < 200 && (await th.client.getStatus(id))?.customStatus === undefined; i++) await new Promise((r) => setTimeout(r, 50));

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`${msg.text()} ${msg.location().url}`); // a CSP violation shows up here
    });

    // The token once in the address; the server sets a cookie and drops it from the URL.
    await page.goto(`${base}/ui/instances/${id}?token=${TOKEN}`);
    expect(page.url()).toBe(`${base}/ui/instances/${id}`);
    await expect(page.locator('h1 .status').textContent()).resolves.toBe('Running');

    const bars = page.locator('#timeline g.bar');
    await expect(bars.count()).resolves.toBe(3);
    expect(await bars.evaluateAll((gs) => gs.map((g) => `${g.getAttribute('data-name')}:${g.getAttribute('data-outcome')}`))).toEqual([
      'F1:completed',
      'F2:completed',
      'F3:completed',
    ]);
    // Every bar has a width and starts after the previous one ends (a chain).
    const boxes = await page.locator('#timeline g.bar rect').evaluateAll((rs) => rs.map((r) => ({ x: Number(r.getAttribute('x')), w: Number(r.getAttribute('width')) })));
    for (let i = 0; i < boxes.length; i++) {
      expect(boxes[i]!.w).toBeGreaterThan(2);
      if (i > 0) expect(boxes[i]!.x).toBeGreaterThanOrEqual(boxes[i - 1]!.x + boxes[i - 1]!.w - 1);
    }
    const log = await page.locator('#log').innerText();
    expect(log).toContain('Execution started');
    expect(log).toContain('Orchestration function started');
    for (const f of ['F1', 'F2', 'F3']) {
      expect(log).toContain(`Activity function ${f} task scheduled`);
      expect(log).toContain(`Activity function ${f} task completed`);
    }
    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, 'dashboard-waiting.png'), fullPage: true });

    // Raise the event from the page's form: the page calls the API with the token, then follows the instance.
    const form = page.locator('form[data-action="raise"]');
    await form.locator('input[name="event"]').fill('Approval');
    await form.locator('textarea[name="data"]').fill('{"approvedBy": "alice"}');
    await form.getByRole('button', { name: 'Raise event' }).click();
    await page.locator('h1 .status', { hasText: 'Completed' }).waitFor({ timeout: 15_000 });

    expect(JSON.parse(await page.locator('#output').innerText())).toEqual({ steps: 'order-42>F1>F2>F3', approval: { approvedBy: 'alice' } });
    const finalLog = await page.locator('#log').innerText();
    expect(finalLog).toContain('External event Approval received');
    expect(finalLog).toContain('Execution completed');
    expect((await th.client.getStatus(id))?.runtimeStatus).toBe('Completed');
    await page.screenshot({ path: join(RESULTS, 'dashboard-instance.png'), fullPage: true });

    // The list shows it, and the link leads back to the instance.
    await page.goto(`${base}/?name=Approval`);
    await page.screenshot({ path: join(RESULTS, 'dashboard-list.png') });
    await page.getByRole('link', { name: id }).click();
    await page.waitForURL(`${base}/ui/instances/${id}`);
    expect(problems).toEqual([]);

    // Bull Board, through the same cookie: the hub's two queues.
    const queues = page.waitForResponse((r) => r.url().startsWith(`${base}/queues/api/queues`));
    await page.getByRole('link', { name: 'Queues (Bull Board)' }).click();
    const listed = (await (await queues).json()) as { queues: { name: string }[] };
    const count = TEST_PARTITIONS.partitions ?? DEFAULT_PARTITIONS;
    expect(listed.queues.map((q) => q.name).sort()).toEqual(Array.from({ length: count }, (_, p) => (count === 1 ? ['activity', 'orchestrator'] : [`p${p}/activity`, `p${p}/orchestrator`])).flat().sort());
    await page.getByText(/\d+ Jobs?/).nth(1).waitFor({ timeout: 15_000 }); // both queue cards rendered
    await page.screenshot({ path: join(RESULTS, 'dashboard-queues.png') });
  });

  it('draws the overview charts with data after a short run', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(await th.client.startNew('Quick', { input: i }));
    const failing = await th.client.startNew('Failing');
    for (const id of [...ids, failing]) await th.client.waitForCompletion(id, { timeoutMs: 15_000 });
    // The worker writes its counters every 10 s; now, for the test.
    await th.workers[0]!.flushStats();

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`${msg.text()} ${msg.location().url}`);
    });
    // The token in the address sets the cookie, unless the first test set it already.
    await page.goto(`${base}/ui/overview?token=${TOKEN}`);
    await expect(page.locator('h1').textContent()).resolves.toContain('Overview');

    /** The values of one series of a chart, as drawn. */
    const values = async (chart: string, series: string) =>
      JSON.parse((await page.locator(`#${chart} g.series[data-series="${series}"]`).getAttribute('data-values')) ?? '[]') as (number | null)[];
    const drawn = (xs: (number | null)[]) => xs.filter((v): v is number => v !== null);
    expect(Math.max(...drawn(await values('chart-throughput', 'activities/s')))).toBeGreaterThan(0);
    expect(Math.max(...drawn(await values('chart-throughput', 'episodes/s')))).toBeGreaterThan(0);
    expect(Math.max(...drawn(await values('chart-throughput', 'failed activities/s')))).toBeGreaterThan(0);
    for (const p of ['p50', 'p95', 'p99']) expect(drawn(await values('chart-latency-activity', p)).length).toBeGreaterThan(0);
    expect(Math.max(...drawn(await values('chart-latency-instance', 'p95')))).toBeGreaterThan(0);
    expect(Math.max(...drawn(await values('chart-statuses', 'Completed')))).toBeGreaterThanOrEqual(ids.length);
    expect(Math.max(...drawn(await values('chart-statuses', 'Failed')))).toBeGreaterThanOrEqual(1);
    expect(drawn(await values('chart-queues', 'activity waiting')).length).toBeGreaterThan(0);
    // Each chart is on screen with a size, and its points are drawn inside its plot.
    for (const chart of ['chart-throughput', 'chart-latency-activity', 'chart-latency-scheduleToStart', 'chart-latency-episode', 'chart-latency-instance', 'chart-queues', 'chart-statuses']) {
      const box = await page.locator(`#${chart} svg.plot`).boundingBox();
      expect(box?.width, chart).toBeGreaterThan(300);
      expect(box?.height, chart).toBeGreaterThan(80);
    }
    const dots = page.locator('#chart-throughput g.series[data-series="activities/s"] circle');
    expect(await dots.count()).toBeGreaterThan(0);
    const dot = await dots.last().boundingBox();
    const plot = await page.locator('#chart-throughput svg.plot').boundingBox();
    expect(dot!.y).toBeGreaterThanOrEqual(plot!.y);
    expect(dot!.y + dot!.height).toBeLessThanOrEqual(plot!.y + plot!.height);
    expect(await page.locator('#now td[data-status="Completed"]').innerText()).toMatch(/Completed\s+\d+/);
    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: join(RESULTS, 'dashboard-overview.png'), fullPage: true });
    expect(problems).toEqual([]);
  });

  it('creates a schedule from the Schedules page, triggers and pauses it, and follows it to its instances', async () => {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(`${msg.text()} ${msg.location().url}`);
    });
    await page.goto(`${base}/ui/schedules?token=${TOKEN}`);
    await expect(page.locator('#schedules tbody').innerText()).resolves.toContain('No schedules.');

    const form = page.locator('form[data-action="create"]');
    await form.locator('input[name="scheduleId"]').fill('from-the-page');
    await form.locator('input[name="orchestrator"]').fill('Quick');
    await form.locator('input[name="cron"]').fill('0 3 * * *');
    await form.locator('input[name="timeZone"]').fill('Europe/Paris');
    await form.locator('textarea[name="input"]').fill('"nightly"');
    await form.getByRole('button', { name: 'Create' }).click();
    const row = page.locator('tr[data-schedule-id="from-the-page"]');
    await row.waitFor({ timeout: 15_000 });
    await expect(row.innerText()).resolves.toContain('cron 0 3 * * * (Europe/Paris)');
    expect((await th.client.schedules.get('from-the-page'))?.input).toBe('nightly');

    await row.getByRole('button', { name: 'Trigger now' }).click();
    for (let i = 0; i < 200 && (await th.client.list({ scheduleId: 'from-the-page' })).instances.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    const [started] = (await th.client.list({ scheduleId: 'from-the-page' })).instances;
    expect(started?.instanceId).toMatch(/^from-the-page@/);

    await page.locator('tr[data-schedule-id="from-the-page"]').getByRole('button', { name: 'Pause' }).click();
    await page.locator('tr[data-schedule-id="from-the-page"]').getByRole('button', { name: 'Resume' }).waitFor({ timeout: 15_000 });
    expect((await th.client.schedules.get('from-the-page'))?.paused).toBe(true);
    await page.screenshot({ path: join(RESULTS, 'dashboard-schedules.png'), fullPage: true });

    // The schedule's id lists its instances.
    await page.getByRole('link', { name: 'from-the-page', exact: true }).click();
    await page.waitForURL(`${base}/?scheduleId=from-the-page`);
    await expect(page.getByRole('link', { name: started!.instanceId }).count()).resolves.toBe(1);
    expect(problems).toEqual([]);
    await th.client.schedules.delete('from-the-page');
  });
});
