// Browser uploads that outlive their page, in real Chromium against a real network (the server
// and 10 worker processes on loopback): an upload is noted in the browser's IndexedDB as it goes,
// and the files page offers to continue it after a reload; picking the same file again sends only
// what the workers have not acknowledged.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { ingress, launchBrowser, sha256File, signUp, startNetwork, writeTestFile } from './support.mjs';

const MiB = 1024 * 1024;
const CHUNKS = 25;
/** What one 4 MiB chunk of random data costs the workers: 10 shards of its sealed body (plus its
 * header and tag) over 6, as the CLI's resume test counts it. */
const CHUNK_BYTES = 10 * Math.ceil((4 * MiB + 9 + 16) / 6);
/** Chunks on the wire at once in the browser (`CHUNKS_IN_FLIGHT`). */
const IN_FLIGHT = 4;
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

/** Chunks whose receipts the page has noted in IndexedDB. */
async function chunksNoted(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const open = indexedDB.open('disktro');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains('receipts')) return resolve(0);
      const count = db.transaction('receipts').objectStore('receipts').count();
      count.onsuccess = () => { db.close(); resolve(count.result); };
      count.onerror = () => reject(count.error);
    };
  }));
}

// Tried: a 100 MiB file (25 chunks of random data) picked from disk, the page reloaded once 40%
// of it is stored; after the reload, a different file with the same name picked to continue it,
// then the same file.
// Must hold: after the reload the files page lists the unfinished upload; the different file is
// refused with a reason and nothing starts; the same file continues the upload, which finishes:
// the file is listed once and downloads byte-identical, and the offer is gone. The workers
// received in the second try no more than the chunks not noted at the reload, and over both
// tries no more than the file's shards plus the chunks in flight at the reload and one more.
test('a reload at 40% of an upload: the page offers to continue it and sends only what was missing', { timeout: 300_000 }, async () => {
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  // The page asks before it is left mid-upload; this person leaves anyway.
  page.on('dialog', (d) => d.accept());
  await signUp(page, net.url, 'barbara@example.org');
  await page.getByTestId('dropzone').waitFor();
  const source = await writeTestFile('resumed.bin', CHUNKS * 4 * MiB);
  const other = await writeTestFile('resumed.bin', 3 * MiB);
  const sha = await sha256File(source);
  const before = await ingress(net);

  await page.getByTestId('file-input').setInputFiles(source);
  await page.waitForFunction(() => {
    const state = document.querySelector('[data-testid=transfer] .transfer-state')?.textContent ?? '';
    return Number.parseInt(state, 10) >= 40;
  }, null, { timeout: 120_000 });
  await page.reload();
  const noted = await chunksNoted(page);
  const first = await ingress(net) - before;
  assert.ok(noted >= 8 && noted < CHUNKS, `${noted} chunks noted at a reload at 40%`);

  const offer = page.getByTestId('unfinished').filter({ hasText: 'resumed.bin' });
  await offer.waitFor({ timeout: 30_000 });
  assert.match(await offer.textContent(), /\d+% sent/);
  await offer.getByTestId('unfinished-pick').setInputFiles(other);
  const problem = await page.getByTestId('unfinished-problem').textContent({ timeout: 10_000 });
  assert.match(problem, /not resumed\.bin \(100\.0 MiB\)/);
  assert.equal(await page.getByTestId('transfer').count(), 0, 'a refused file started an upload');

  await page.getByTestId('unfinished').getByTestId('unfinished-pick').setInputFiles(source);
  const row = page.getByTestId('transfer');
  await page.locator('[data-testid=transfer]:not([data-state=running])').waitFor({ timeout: 240_000 });
  const text = await row.textContent();
  assert.equal(await row.getAttribute('data-state'), 'done', `the continued upload did not finish: ${text}`);
  const second = await ingress(net) - before - first;
  assert.equal(await page.getByTestId('unfinished-list').count(), 0, 'the finished upload is still offered');
  assert.equal(await chunksNoted(page), 0, 'a committed upload left its receipts noted');

  const file = page.getByTestId('file-row').filter({ hasText: 'resumed.bin' });
  await file.waitFor({ timeout: 30_000 });
  assert.equal(await page.getByTestId('file-row').count(), 1, 'the file is listed more than once');
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    file.getByTestId('download').click(),
  ]);
  assert.equal(await download.failure(), null);
  assert.equal(await sha256File(await download.path()), sha, 'the continued upload differs from the file');

  const slack = 1 * MiB;
  console.log(`first try ${first} B, second ${second} B, ${noted} of ${CHUNKS} chunks noted at the reload`);
  assert.ok(second <= (CHUNKS - noted) * CHUNK_BYTES + slack,
    `the second try sent ${second} B for ${CHUNKS - noted} chunks left`);
  assert.ok(first + second <= (CHUNKS + IN_FLIGHT + 1) * CHUNK_BYTES + slack,
    `both tries sent ${first + second} B for a file of ${CHUNKS * CHUNK_BYTES} B`);
  assert.deepEqual(errors, []);
  await context.close();
  for (const f of [source, other]) rmSync(path.dirname(f), { recursive: true, force: true });
});
