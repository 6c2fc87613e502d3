// The web app on a phone and a laptop, and its share dialog as a modal, in real Chromium against a
// real network (server + 10 workers). Tried: the files and nodes pages at 390 px and 1280 px
// (screenshots saved under end2end/screenshots/ to look at); the share dialog opened from the
// keyboard's point of view; a node's charts after a minute of samples.
// Must hold: at 390 px every file's Download, Share and Delete button lies inside the window and no
// page scrolls sideways; usage names the files' bytes and the stored bytes apart; the dialog takes
// the focus, lists each link with a "Copy link" that copies the whole link again, closes on Escape
// and gives the focus back to the Share button; a chart's y axis labels start inside the chart.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { dropTestFile, launchBrowser, makeFileInPage, screenshots, signUp, startNetwork } from './support.mjs';

let net;
let chromium;

before(async () => {
  net = await startNetwork({ workers: 10, heartbeat: 1 });
  chromium = await launchBrowser();
  mkdirSync(screenshots, { recursive: true });
});

after(async () => {
  await chromium?.close();
  await net?.stop();
});

/** Whether the page scrolls sideways (content wider than the window). */
const scrollsSideways = (page) => page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);

test('files and nodes fit a phone, usage is explained, the share dialog is a modal', { timeout: 180_000 }, async () => {
  const context = await chromium.browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: net.url });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signUp(page, net.url, 'grace@example.org');
  await page.getByTestId('dropzone').waitFor();
  await makeFileInPage(page, { name: 'a rather long file name for a small phone screen.pdf', size: 3 * 1024 * 1024 });
  await dropTestFile(page);
  await page.locator('[data-testid=transfer][data-state=done]').waitFor({ timeout: 120_000 });
  const row = page.getByTestId('file-row').first();
  await row.waitFor();

  // Usage: the files' own bytes first, the stored bytes apart, the tooltip says why they differ.
  const usage = page.getByTestId('usage');
  assert.match(await usage.textContent(), /^3\.0 MiB in your files · [\d.]+ MiB stored of 10(\.0)? GiB$/);
  assert.match(await usage.getAttribute('title'), /erasure-coded/);
  await page.screenshot({ path: path.join(screenshots, 'files-1280.png'), fullPage: true });

  // The share dialog, as a keyboard user meets it.
  const share = row.getByTestId('share');
  await share.focus();
  await share.press('Enter');
  const dialog = page.getByTestId('share-dialog');
  await dialog.waitFor();
  assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), 'the dialog did not take the focus');
  await dialog.getByTestId('share-create').click();
  await dialog.getByTestId('share-link').waitFor({ timeout: 30_000 });
  const made = await dialog.getByTestId('share-link').inputValue();
  assert.match(made, /\/s\/[A-Za-z0-9_-]+#[A-Za-z0-9_-]{43}$/);
  await dialog.getByTestId('share-copy').first().click();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), made, 'Copy link did not copy the whole link');
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.equal(await share.evaluate((b) => b === document.activeElement), true, 'the focus did not return to Share');

  // A folder beside the file, for its row's actions.
  page.once('dialog', (d) => d.accept('Holiday photos'));
  await page.getByTestId('new-folder').click();
  const folderRow = page.getByTestId('folder-row').first();
  await folderRow.waitFor();

  // A phone.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await row.waitFor();
  for (const [at, name] of [[row, 'download'], [row, 'share'], [row, 'delete'], [folderRow, 'rename-folder'], [folderRow, 'move-folder'], [folderRow, 'delete-folder']]) {
    const box = await at.getByTestId(name).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${name} lies outside the window: ${JSON.stringify(box)}`);
  }
  assert.equal(await scrollsSideways(page), false, 'the files page scrolls sideways at 390 px');
  await page.screenshot({ path: path.join(screenshots, 'files-390.png'), fullPage: true });

  await page.goto(`${net.url}/nodes`);
  await page.getByTestId('node-row').first().waitFor();
  assert.equal(await scrollsSideways(page), false, 'the nodes page scrolls sideways at 390 px');
  // Every value of every node lies inside the window (cards, not a table cut at its right edge).
  const outside = await page.evaluate(() => [...document.querySelectorAll('[data-testid=node-row] td')]
    .filter((td) => td.getBoundingClientRect().right > window.innerWidth + 1).length);
  assert.equal(outside, 0, `${outside} node values lie outside the window at 390 px`);
  await page.screenshot({ path: path.join(screenshots, 'nodes-390.png'), fullPage: true });
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: path.join(screenshots, 'nodes-1280.png'), fullPage: true });

  // A node's charts, once it has two samples (one a minute): the y axis's top label starts
  // inside the chart's box.
  await page.getByTestId('node-row').first().locator('a').first().click();
  const ymax = page.getByTestId('chart-ymax').first();
  await ymax.waitFor({ timeout: 150_000 });
  const inside = await ymax.evaluate((t) => t.getBBox().x >= 0);
  assert.ok(inside, 'the y axis label is cut at the chart\'s left edge');
  await page.screenshot({ path: path.join(screenshots, 'node-1280.png'), fullPage: true });
  assert.deepEqual(errors, []);
  await context.close();
});
