// What a browser upload does when a storage worker dies under it, in real Chromium against a real
// network (the server and 10 worker processes on loopback): a worker is killed (SIGKILL) while the
// shards of a 256 MiB file stream to it through the socket relay. The upload must stop and say
// which worker failed to store what, and the file must not be listed: it was never committed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
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
