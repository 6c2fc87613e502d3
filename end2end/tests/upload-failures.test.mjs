// What a browser upload does when a storage worker dies under it, in real Chromium against a real
// network (the server and 10 worker processes on loopback): a worker is killed (SIGKILL) while the
// shards of a 256 MiB file stream to it through the socket relay. The upload must stop and say
// which worker failed to store what, and the file must not be listed: it was never committed.
// And when the socket relay (the worker that owns an upload's sockets) cannot start, the upload
// says so at once instead of waiting out the connect timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dropTestFile, launchBrowser, makeFileInPage, signUp, startNetwork } from './support.mjs';

const MiB = 1024 * 1024;
let net;
let chromium;

before(async () => {
  net = await startNetwork({ workers: 10, heartbeat: 1 });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await net?.stop();
});

test('an upload whose socket relay cannot start fails at once and says why', { timeout: 120_000 }, async () => {
  // A server whose site lacks the relay's script: the worker that should own the upload's
  // sockets never runs (Playwright cannot intercept a worker's own fetches, so the file is gone).
  const site = process.env.LEPTOS_SITE_ROOT ?? path.resolve(import.meta.dirname, '..', '..', 'target', 'site');
  const broken = mkdtempSync(path.join(tmpdir(), 'disktro-e2e-site-'));
  cpSync(site, broken, { recursive: true });
  rmSync(path.join(broken, 'relay.js'));
  const siteRoot = process.env.LEPTOS_SITE_ROOT;
  process.env.LEPTOS_SITE_ROOT = broken;
  let lacking;
  try {
    lacking = await startNetwork({ workers: 10, heartbeat: 1 });
  } finally {
    if (siteRoot === undefined) delete process.env.LEPTOS_SITE_ROOT;
    else process.env.LEPTOS_SITE_ROOT = siteRoot;
  }
  try {
    const context = await chromium.browser.newContext();
    const page = await context.newPage();
    await signUp(page, lacking.url, 'hedy@example.org');
    await page.getByTestId('dropzone').waitFor();
    await makeFileInPage(page, { name: 'no-relay.bin', size: 1 * MiB });
    const dropped = Date.now();
    await dropTestFile(page);
    const row = page.getByTestId('transfer');
    await page.locator('[data-testid=transfer]:not([data-state=running])').waitFor({ timeout: 60_000 });
    const seconds = (Date.now() - dropped) / 1000;
    const text = await row.textContent();
    assert.equal(await row.getAttribute('data-state'), 'failed', `the upload did not fail: ${text}`);
    assert.match(text, /cannot connect to the worker at ws:\/\/\S+: the socket relay stopped/);
    // Not the 10 s connect timeout.
    assert.ok(seconds < 8, `the failure took ${seconds.toFixed(1)} s to show`);
    await context.close();
  } finally {
    await lacking.stop();
    rmSync(broken, { recursive: true, force: true });
  }
});

test('a worker killed mid-upload stops the upload with its reason, and nothing is listed', { timeout: 300_000 }, async () => {
  const context = await chromium.browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signUp(page, net.url, 'grace@example.org');
  await page.getByTestId('dropzone').waitFor();
  await makeFileInPage(page, { name: 'interrupted.bin', size: 256 * MiB });
  await dropTestFile(page);

  // Killed once the first chunks are stored, with the rest still to send.
  await page.waitForFunction(() => {
    const state = document.querySelector('[data-testid=transfer] .transfer-state')?.textContent ?? '';
    return Number.parseInt(state, 10) >= 5;
  }, null, { timeout: 120_000 });
  await net.stopNode(net.nodes[3]);
  const killed = Date.now();

  // Told by the closed socket, not by a request timing out (60 s) long after.
  const row = page.getByTestId('transfer');
  await page.locator('[data-testid=transfer]:not([data-state=running])').waitFor({ timeout: 120_000 });
  const seconds = (Date.now() - killed) / 1000;
  const text = await row.textContent();
  console.log(`upload ended ${seconds.toFixed(1)} s after the kill: ${text}`);
  assert.equal(await row.getAttribute('data-state'), 'failed', `the upload did not fail: ${text}`);
  assert.match(text, /worker ws:\/\/127\.0\.0\.1:\d+\S* did not store shard \d+ of chunk \d+: connection closed/);
  assert.ok(seconds < 20, `the failure took ${seconds.toFixed(1)} s to show`);

  // Nothing half-stored shows up as a file.
  await page.reload();
  await page.getByText('No files yet').waitFor({ timeout: 60_000 });
  assert.equal(await page.getByTestId('file-row').count(), 0);
  assert.deepEqual(errors, []);
  await context.close();
});
