// Browser downloads past a stalled worker, in real Chromium against a real network (the server
// and 10 worker processes on loopback) whose get tokens last 4 s (`--get-token-ttl`, a setting
// operators have): a worker that stops answering (SIGSTOP: its sockets stay open, nothing is read
// or answered) just before a download must cost that download about one hedge
// (`fetch::HEDGE_AFTER`, 5 s), not the 60 s request timeout per chunk, and the 5 s hedge outlasts
// the tokens the download began with, so the download must renew them on the way: the owner's by
// asking for the file again, a share link's by continuing the same share download.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { dropTestFile, launchBrowser, makeFileInPage, sha256File, signUp, startNetwork } from './support.mjs';

const MiB = 1024 * 1024;
/** The documented bound: one hedge for the chunks that asked the stalled worker first, the
 * rest of the file at speed (the chunks after rank it last), and room for a slow machine. Every
 * window of 4 chunks paying a hedge (no straggler ranking) takes about 20 s for this file; no
 * hedging at all, minutes. */
const BOUND_S = 15;
let net;
let chromium;
let context;
let owner;
let sha;
let fileId;

before(async () => {
  net = await startNetwork({ workers: 10, heartbeat: 1, serverArgs: ['--get-token-ttl', '4s'] });
  chromium = await launchBrowser();
  context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  owner = await context.newPage();
  await signUp(owner, net.url, 'katherine@example.org');
  await owner.getByTestId('dropzone').waitFor();
  sha = await makeFileInPage(owner, { name: 'stalled.bin', size: 64 * MiB });
  await dropTestFile(owner);
  await owner.locator('[data-testid=transfer][data-state=done]').waitFor({ timeout: 120_000 });
  const row = owner.getByTestId('file-row').filter({ hasText: 'stalled.bin' });
  await row.waitFor({ timeout: 30_000 });
  fileId = await row.getAttribute('data-file-id');
});

after(async () => {
  await context?.close();
  await chromium?.close();
  await net?.stop();
});

/** The worker process holding shard `slot` of chunk `chunk` of the file, as the server places it. */
async function holder(chunk, slot) {
  const answer = await (await owner.request.get(`${net.url}/api/v1/files/${fileId}`)).json();
  const nodeId = answer.nodes[answer.locations[chunk][slot]].node_id;
  const node = net.nodes.find((n) => n.nodeId === nodeId);
  assert.ok(node, `node ${nodeId} is not one of this network's workers`);
  return node;
}

/** Resume `node` and wait until the server counts it online again. */
async function resume(node) {
  node.child.kill('SIGCONT');
  const deadline = Date.now() + 30_000;
  for (;;) {
    const nodes = await (await fetch(`${net.url}/api/v1/nodes`)).json();
    if (nodes.find((n) => n.node_id === node.nodeId)?.status === 'online') return;
    assert.ok(Date.now() < deadline, 'the resumed worker did not come back online');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Click, wait for the saved file; resolves with its SHA-256 and the seconds it took. */
async function timedDownload(page, click) {
  const started = Date.now();
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 120_000 }), click()]);
  const failure = await download.failure();
  const told = failure && await page.locator('[data-testid=transfer][data-state=failed], .share-page [role=alert]').allTextContents();
  assert.equal(failure, null, `the download failed: ${failure} (${told})`);
  const got = await sha256File(await download.path());
  return { got, seconds: (Date.now() - started) / 1000 };
}

// Tried: the worker holding the first data shard of the first chunk stalls (SIGSTOP) just before
// the owner clicks Download, while the server still counts it online.
// Must hold: the download saves byte-identical within BOUND_S, though its first tokens expired
// during the first chunks' hedge.
test('a stalled worker costs the owner\'s download one hedge, and its tokens are renewed', { timeout: 180_000 }, async () => {
  const errors = [];
  owner.on('pageerror', (e) => errors.push(String(e)));
  const stalled = await holder(0, 0);
  stalled.child.kill('SIGSTOP');
  try {
    const row = owner.getByTestId('file-row').filter({ hasText: 'stalled.bin' });
    const { got, seconds } = await timedDownload(owner, () => row.getByTestId('download').click());
    console.log(`the owner's download past a stalled worker took ${seconds.toFixed(1)} s`);
    assert.equal(got, sha, 'the download differs from the upload');
    assert.ok(seconds < BOUND_S, `the download took ${seconds.toFixed(1)} s`);
  } finally {
    await resume(stalled);
  }
  assert.deepEqual(errors, []);
});

// Tried: the same on a share link opened by someone with no account: the page loaded, then the
// worker holding the first data shard of the first chunk stalls, then Download.
// Must hold: byte-identical within BOUND_S; the renewal continued the same share download
// (a one-download link), so the link reads used up afterwards rather than refusing mid-way.
test('a stalled worker costs a share link\'s download one hedge, and the same download is renewed', { timeout: 180_000 }, async () => {
  const row = owner.getByTestId('file-row').filter({ hasText: 'stalled.bin' });
  await row.getByTestId('share').click();
  const dialog = owner.getByTestId('share-dialog');
  await dialog.getByTestId('share-limit').fill('1');
  await dialog.getByTestId('share-create').click();
  const link = await dialog.getByTestId('share-link').inputValue();
  await owner.keyboard.press('Escape');

  const stranger = await chromium.browser.newContext({ acceptDownloads: true });
  await stranger.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await stranger.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(link);
  await page.getByTestId('shared-name').waitFor({ timeout: 60_000 });
  const stalled = await holder(0, 0);
  stalled.child.kill('SIGSTOP');
  try {
    const { got, seconds } = await timedDownload(page, () => page.getByTestId('shared-download').click());
    console.log(`a share download past a stalled worker took ${seconds.toFixed(1)} s`);
    assert.equal(got, sha, 'the shared download differs from the upload');
    assert.ok(seconds < BOUND_S, `the download took ${seconds.toFixed(1)} s`);
  } finally {
    await resume(stalled);
  }
  await page.getByTestId('shared-done').waitFor({ timeout: 30_000 });
  const again = await stranger.newPage();
  await again.goto(link);
  await again.getByTestId('share-gone').waitFor({ timeout: 30_000 });
  assert.deepEqual(errors, []);
  await stranger.close();
});
