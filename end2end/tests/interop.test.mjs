// The browser and the CLI are two clients of one format: a file uploaded in the browser
// downloads byte-identical with the `disktro` CLI (by id, and through a share link the browser
// made), and a file uploaded with the CLI downloads byte-identical in the browser; the account
// page lists the CLI's log-in and revokes it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  dropTestFile, launchBrowser, makeFileInPage, runCli, sha256File, signUp, startNetwork, writeTestFile,
} from './support.mjs';

const MiB = 1024 * 1024;
const email = 'carol@example.org';
const password = 'interop password 2026';
let net;
let chromium;
let work;

function cli(args, input) {
  return runCli(net.url, path.join(work, 'config'), args, input);
}

before(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'disktro-interop-'));
  net = await startNetwork({ workers: 10, heartbeat: 1 });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await net?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('browser → CLI and CLI → browser, byte-identical', { timeout: 300_000 }, async () => {
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  await signUp(page, net.url, email, password);

  // Browser uploads (text: the squeezed path; several chunks and a short last one).
  const fromBrowser = 'notes from the browser.txt';
  const browserSha = await makeFileInPage(page, { name: fromBrowser, size: 9 * MiB + 12_345, text: true });
  await dropTestFile(page);
  const row = page.getByTestId('file-row').filter({ hasText: fromBrowser });
  await row.waitFor({ timeout: 120_000 });

  // The CLI logs in to the same account, finds it by its (decrypted) name and downloads it.
  cli(['login', '--email', email, '--password-stdin'], `${password}\n`);
  const listing = JSON.parse(cli(['--json', 'ls']));
  const entry = listing.files.find((f) => f.name === fromBrowser);
  assert.ok(entry, `the CLI does not list ${fromBrowser}: ${JSON.stringify(listing)}`);
  const out = path.join(work, 'from-browser.txt');
  cli(['download', entry.file_id, '-o', out]);
  assert.equal(await sha256File(out), browserSha, 'the CLI read different bytes than the browser wrote');

  // A share link made in the browser opens with the CLI.
  await row.getByTestId('share').click();
  await page.getByTestId('share-create').click();
  const link = await page.getByTestId('share-link').inputValue();
  const viaLink = path.join(work, 'via-link.txt');
  cli(['get', link, '-o', viaLink]);
  assert.equal(await sha256File(viaLink), browserSha, 'the CLI read different bytes through the link');
  await page.keyboard.press('Escape');

  // The CLI uploads (random: the raw path); the browser lists and downloads it.
  const cliFile = await writeTestFile('from the cli.bin', 7 * MiB + 777);
  const cliSha = await sha256File(cliFile);
  cli(['upload', cliFile]);
  await page.goto(`${net.url}/files`);
  const cliRow = page.getByTestId('file-row').filter({ hasText: 'from the cli.bin' });
  await cliRow.waitFor({ timeout: 60_000 });
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    cliRow.getByTestId('download').click(),
  ]);
  assert.equal(await download.failure(), null);
  assert.equal(await sha256File(await download.path()), cliSha, 'the browser read different bytes than the CLI wrote');
  rmSync(cliFile);

  // The account page lists the CLI's log-in; revoking it there logs the CLI out (exit 4).
  await page.goto(`${net.url}/account`);
  const tokenRow = page.getByTestId('token-row');
  await tokenRow.first().waitFor({ timeout: 60_000 });
  assert.equal(await tokenRow.count(), 1, 'one CLI log-in');
  await tokenRow.first().getByTestId('revoke-token').click();
  await page.getByTestId('no-tokens').waitFor({ timeout: 60_000 });
  assert.throws(() => cli(['ls']), (e) => e.status === 4, 'the revoked CLI still works');
  await context.close();
});
