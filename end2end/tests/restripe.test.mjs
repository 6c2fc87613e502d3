// Files below the redundancy policy, in real Chromium: a file dropped while the network has 7
// workers is stored at 4 + 3 (the most 7 workers hold while still losing 40%). Once the network
// has grown to 15, the policy gives 9 + 6 and the file is below it; the owner's tab, the only
// place its manifest can be signed, re-encodes it by itself the next time the files page loads,
// shows it as a transfer, and the file then reads 15 / 15 and downloads byte-identical.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dropTestFile, launchBrowser, makeFileInPage, sha256File, signUp, startNetwork } from './support.mjs';

const MiB = 1024 * 1024;
let net;
let chromium;

before(async () => {
  net = await startNetwork({ workers: 7, heartbeat: 1 });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await net?.stop();
});

test('a file stored on a small network is re-encoded by its owner\'s tab once the network grows', { timeout: 240_000 }, async () => {
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signUp(page, net.url, 'barbara@example.org');
  await page.getByTestId('dropzone').waitFor();
  const sha = await makeFileInPage(page, { name: 'early.bin', size: 9 * MiB + 5 });
  await dropTestFile(page);
  await page.locator('[data-testid=transfer][data-state=done]').waitFor({ timeout: 120_000 });
  const file = page.getByTestId('file-row').filter({ hasText: 'early.bin' });
  await file.waitFor({ timeout: 30_000 });
  assert.equal((await file.getByTestId('health').textContent()).trim(), '7 / 7');
  assert.equal(await file.getByTestId('below-policy').count(), 0, 'at the policy of 7 workers');

  await net.addWorkers(8);
  // The next visit to the files page: the list says the file is below the policy, and the tab
  // re-encodes it without being asked.
  await page.reload();
  const restripe = page.locator('[data-testid=transfer]').filter({ hasText: 're-encoding' });
  await restripe.waitFor({ timeout: 60_000 });
  await page.locator('[data-testid=transfer][data-state]:not([data-state=running])')
    .filter({ hasText: 're-encoding' })
    .waitFor({ timeout: 120_000 });
  assert.equal(await restripe.getAttribute('data-state'), 'done', await restripe.textContent());
  // The list is read again when it is done: 9 + 6 on 15 workers, at the policy.
  await page.waitForFunction(() => {
    const row = [...document.querySelectorAll('[data-testid=file-row]')].find((r) => r.textContent.includes('early.bin'));
    return row?.querySelector('[data-testid=health]')?.textContent.trim() === '15 / 15';
  }, null, { timeout: 30_000 });
  assert.equal(await file.getByTestId('below-policy').count(), 0, 'no longer below the policy');

  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    file.getByTestId('download').click(),
  ]);
  assert.equal(await download.failure(), null);
  assert.equal(await sha256File(await download.path()), sha, 'the restriped file differs from the dropped one');
  assert.deepEqual(errors, []);
  await context.close();
});
