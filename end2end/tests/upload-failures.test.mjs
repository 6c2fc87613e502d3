// What a browser upload does when storage workers die under it, in real Chromium against a real
// network (the server and 10 worker processes on loopback): two workers are killed (SIGKILL)
// while the shards of a 256 MiB file stream to them through the socket relay. The upload must go
// on (their shards placed again by the server, those no worker can take left for repair) and the
// file must download byte-identical. A file cut short on disk while it is read fails the upload
// with a clear error and commits nothing; where the browser cannot read a file's stream into a
// buffer, the upload reads it slice by slice. And when the socket relay (the worker that owns an upload's
// sockets) cannot start, the upload says so at once instead of waiting out the connect timeout.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  dropTestFile, launchBrowser, makeFileInPage, sha256File, signUp, startNetwork, writeTestFile,
} from './support.mjs';

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

// Tried: a 256 MiB file on disk picked for upload and cut to 1 MiB at once, while the upload
// reads it chunk by chunk (a few chunks ahead of the sending). Must hold: the upload stops with
// an error that says the file could not be read or changed, the page has no script error, and
// the account has no file committed.
test('a file cut short on disk while it uploads fails with a clear error and commits nothing', { timeout: 120_000 }, async () => {
  const context = await chromium.browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signUp(page, net.url, 'ada@example.org');
  await page.getByTestId('dropzone').waitFor();
  const file = await writeTestFile('shrinking.bin', 256 * MiB);
  await page.getByTestId('file-input').setInputFiles(file);
  truncateSync(file, 1 * MiB);

  const row = page.getByTestId('transfer');
  await page.locator('[data-testid=transfer]:not([data-state=running])').waitFor({ timeout: 60_000 });
  const text = await row.textContent();
  assert.equal(await row.getAttribute('data-state'), 'failed', `the upload did not fail: ${text}`);
  assert.match(text, /cannot read the file \(.*\): was it changed, moved or deleted after it was picked\?|the file changed while being read/);
  assert.deepEqual(errors, []);
  // The account is new: it has no file at all.
  const files = await page.evaluate(async () => (await (await fetch('/api/v1/files')).json()).files.length);
  assert.equal(files, 0, 'a file was committed');
  rmSync(path.dirname(file), { recursive: true, force: true });
  await context.close();
});

// Tried: a browser whose file streams have no BYOB reader (Safari before 26.4), played by making
// `getReader({mode: 'byob'})` throw in the pipeline worker. Must hold: the upload reads the file
// slice by slice instead, finishes, and the file downloads byte-identical.
test('without BYOB stream readers the upload reads slices and the file comes back identical', { timeout: 180_000 }, async () => {
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signUp(page, net.url, 'mary@example.org');
  await page.getByTestId('dropzone').waitFor();
  // The log-in's key derivation ran in the pipeline worker, so it is up.
  const pipeline = page.workers().find((w) => w.url().endsWith('/pipeline.js'));
  assert.ok(pipeline, `no pipeline worker among ${page.workers().map((w) => w.url())}`);
  await pipeline.evaluate(() => {
    const getReader = ReadableStream.prototype.getReader;
    ReadableStream.prototype.getReader = function (options) {
      if (options?.mode === 'byob') {
        self.byobRefused = (self.byobRefused ?? 0) + 1;
        throw new TypeError('no BYOB readers here');
      }
      return getReader.call(this, options);
    };
  });
  const file = await writeTestFile('sliced.bin', 20 * MiB + 12345);
  const sha = await sha256File(file);
  await page.getByTestId('file-input').setInputFiles(file);
  const row = page.getByTestId('transfer');
  await page.locator('[data-testid=transfer]:not([data-state=running])').waitFor({ timeout: 120_000 });
  assert.equal(await row.getAttribute('data-state'), 'done', `the upload did not finish: ${await row.textContent()}`);
  assert.equal(await pipeline.evaluate(() => self.byobRefused), 1, 'the upload did not ask for a BYOB reader once');

  const listed = page.getByTestId('file-row').filter({ hasText: 'sliced.bin' });
  await listed.waitFor({ timeout: 30_000 });
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    listed.getByTestId('download').click(),
  ]);
  assert.equal(await download.failure(), null);
  assert.equal(await sha256File(await download.path()), sha, 'the downloaded file differs from the picked one');
  assert.deepEqual(errors, []);
  rmSync(path.dirname(file), { recursive: true, force: true });
  await context.close();
});

// Tried: two of the ten workers killed (SIGKILL) once 5% of a 256 MiB upload is stored.
// Must hold: the upload finishes (no error shown), the file is listed with its chunks at 8 of 10
// healthy shards at least (the two no worker could take are left for repair), and it downloads
// byte-identical.
test('two workers killed mid-upload: the upload finishes and the file downloads byte-identical', { timeout: 300_000 }, async () => {
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signUp(page, net.url, 'grace@example.org');
  await page.getByTestId('dropzone').waitFor();
  const sha = await makeFileInPage(page, { name: 'survivor.bin', size: 256 * MiB });
  await dropTestFile(page);

  // Killed once the first chunks are stored, with the rest still to send.
  await page.waitForFunction(() => {
    const state = document.querySelector('[data-testid=transfer] .transfer-state')?.textContent ?? '';
    return Number.parseInt(state, 10) >= 5;
  }, null, { timeout: 120_000 });
  await Promise.all([net.stopNode(net.nodes[3]), net.stopNode(net.nodes[7])]);

  const row = page.getByTestId('transfer');
  await page.locator('[data-testid=transfer]:not([data-state=running])').waitFor({ timeout: 240_000 });
  const text = await row.textContent();
  assert.equal(await row.getAttribute('data-state'), 'done', `the upload did not finish: ${text}`);

  const file = page.getByTestId('file-row').filter({ hasText: 'survivor.bin' });
  await file.waitFor({ timeout: 30_000 });
  const health = await file.getByTestId('health').textContent();
  const [healthy] = health.split('/').map((n) => Number.parseInt(n, 10));
  assert.ok(healthy >= 8, `the file's health reads ${health}`);
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    file.getByTestId('download').click(),
  ]);
  assert.equal(await download.failure(), null);
  assert.equal(await sha256File(await download.path()), sha, 'the downloaded file differs from the dropped one');
  assert.deepEqual(errors, []);
  await context.close();
});
