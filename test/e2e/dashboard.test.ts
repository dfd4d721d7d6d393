// `kubectl kt dashboard` in real headless Chromium (Debian's chromium, driven
// by playwright-core) against the test cluster: the page follows a preview
// and a mesh appearing and going without a reload (the time it takes is
// measured and printed), and its Recover button (after a confirmation) puts a taken-over
// Service back, through the same code as `kubectl kt recover`.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ROOT, startCluster, type Cluster } from '../cluster/cluster.ts';
import { applyApps, echoApp, namespace } from '../fixtures/workloads.ts';
import { exited, waitForLine, waitNoKtPods } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const NS = 'shop';

let cluster: Cluster;
let dashboard: ChildProcess;
let url = '';
// playwright-core's types are loaded with it, lazily: the test needs Chromium.
let browser: import('playwright-core').Browser;

/** Ctrl-C to a session (it must exit 0), then the time until its row leaves the page, printed. */
async function goneFromPage(page: import('playwright-core').Page, session: ChildProcess, row: string, what: string): Promise<void> {
  session.kill('SIGINT');
  assert.equal(await exited(session), 0);
  const t1 = performance.now();
  await page.waitForSelector(row, { state: 'detached', timeout: 10_000 });
  process.stdout.write(`# dashboard: ${what} gone from the page ${(performance.now() - t1).toFixed(0)} ms after the plugin exited\n`);
}

before(async () => {
  cluster = await startCluster();
  await applyApps(cluster, NS, [namespace(NS), echoApp(NS, 'web', { pod: true })], { pods: ['web'] });
  // The dashboard needs only the API server, which the root namespace reaches
  // too; running it there lets Chromium (also in the root namespace) load it.
  dashboard = spawn(join(ROOT, 'dist', 'kubectl-kt'), ['dashboard', '-n', NS, '--no-open'], { env: cluster.laptopEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  const line = await waitForLine(dashboard, /^dashboard for namespace shop: http:\/\/127\.0\.0\.1:\d+\//);
  url = /http:\/\/\S+/.exec(line)![0];
  const { chromium } = await import('playwright-core');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  dashboard?.kill('SIGINT');
  if (dashboard) await exited(dashboard);
  await cluster?.stop();
});

describe('dashboard', { skip: !existsSync(CHROMIUM) && 'chromium is not installed (apt-get install chromium)' }, () => {
  test('a preview shows up live and goes away; recover from the page restores a Service', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await page.goto(url);
    await page.waitForSelector('section[data-namespace="shop"]');
    assert.match(await page.textContent('section[data-namespace="shop"]') ?? '', /every Service is served by its own pods/);

    // A session appears without a reload.
    const server = cluster.spawnInLaptop('node', ['-e', `require('http').createServer((q, r) => r.end('laptop')).listen(18080, '127.0.0.1', () => console.error('listening'))`]);
    await waitForLine(server, /^listening/);
    const preview = cluster.spawnInLaptop('kubectl', ['kt', 'preview', 'web-alice', '--expose', '18080:80', '-n', NS]);
    await waitForLine(preview, /^previewing: /);
    const t0 = performance.now();
    await page.waitForSelector('tr[data-service="web-alice"] .badge.previewed', { timeout: 10_000 });
    const shown = performance.now() - t0;
    process.stdout.write(`# dashboard: preview shown ${shown.toFixed(0)} ms after the plugin reported it\n`);
    assert.match(await page.textContent('section[data-namespace="shop"]') ?? '', /preview/);
    mkdirSync(join(ROOT, 'test-results'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test-results', 'dashboard.png'), fullPage: true });

    await goneFromPage(page, preview, 'tr[data-service="web-alice"]', 'preview');
    server.kill();
    await waitNoKtPods(cluster);

    // A Service left taken over (as a crashed exchange would leave it): Recover puts it back.
    const before = cluster.store.get('services', NS, 'web');
    const patch = JSON.stringify({
      metadata: { annotations: { 'kt.dev/original-selector': JSON.stringify({ app: 'web' }) } },
      spec: { selector: { app: null, 'kt.dev/target': 'web', 'kt.dev/role': 'router' } },
    });
    const p = await cluster.kubectl(['patch', '-n', NS, 'svc/web', '--type', 'merge', '-p', patch]);
    assert.equal(p.code, 0, p.stderr);
    await page.waitForSelector('tr[data-service="web"] .badge.taken-over', { timeout: 10_000 });
    page.once('dialog', (d) => void d.accept());
    await page.click('tr[data-service="web"] button[data-action="recover"]');
    await page.waitForSelector('tr[data-service="web"]', { state: 'detached', timeout: 10_000 });
    const restored = cluster.store.get('services', NS, 'web');
    assert.deepEqual((restored?.spec as { selector: unknown }).selector, { app: 'web' });
    assert.equal(restored?.metadata.annotations?.['kt.dev/original-selector'], undefined);
    assert.deepEqual(restored?.spec, before?.spec);
    // The row can leave (the watch) before the POST's answer fills the message line: wait for the answer.
    await page.locator('#msg', { hasText: /restore the selector|nothing to do|^error/ }).waitFor({ timeout: 10_000 });
    assert.match(await page.textContent('#msg') ?? '', /restore the selector of service shop\/web/);
    await page.close();
  });

  test('a mesh shows up with its header value and owner within a second, and goes when it stops', async () => {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    await page.goto(url);
    await page.waitForSelector('section[data-namespace="shop"]');
    assert.equal(await page.$('tr[data-service="web"]'), null, 'web is natural before the mesh');
    const server = cluster.spawnInLaptop('node', ['-e', `require('http').createServer((q, r) => r.end('laptop')).listen(18081, '127.0.0.1', () => console.error('listening'))`]);
    try {
      await waitForLine(server, /^listening/);
      const mesh = cluster.spawnInLaptop('kubectl', ['kt', 'mesh', 'svc/web', '--expose', '18081:80', '--header', 'x-kt-version=dash', '-n', NS]);
      await waitForLine(mesh, /^meshing: /);
      const t0 = performance.now();
      const route = await page.waitForSelector('tr[data-service="web"] [data-route]', { timeout: 10_000 });
      const shown = performance.now() - t0;
      process.stdout.write(`# dashboard: mesh shown ${shown.toFixed(0)} ms after the plugin reported it (goal: within a second)\n`);
      assert.match(await page.textContent('tr[data-service="web"] .badge') ?? '', /meshed/);
      const text = (await route.textContent()) ?? '';
      assert.match(text, /x-kt-version: dash/);
      assert.match(text, /@/, 'the owner (user@host) is shown');
      await page.screenshot({ path: join(ROOT, 'test-results', 'dashboard-mesh.png'), fullPage: true });
      await goneFromPage(page, mesh, 'tr[data-service="web"]', 'mesh');
    } finally {
      server.kill();
      await page.close();
    }
    await waitNoKtPods(cluster);
  });

  test('actions need the page token, and only our own Host is served', async () => {
    const noToken = await fetch(new URL('/api/clean', url), { method: 'POST', body: JSON.stringify({ namespace: NS }) });
    assert.equal(noToken.status, 403);
    const port = new URL(url).port;
    const rebinding = await new Promise<number>((resolve, reject) => {
      const c = spawn('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', `Host: evil.example:${port}`, url]);
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      c.on('exit', () => resolve(Number(out)));
      c.on('error', reject);
    });
    assert.equal(rebinding, 421);
  });
});
