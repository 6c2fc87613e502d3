// Accounts in the browser: a taken e-mail and a wrong password get clear messages; changing the
// password keeps every file readable (file keys hang off the identity, not the password); the
// old password stops working; a forgotten password is replaced with the recovery key shown at
// sign-up. Argon2id runs in the pipeline worker; the page shows it running.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  dropTestFile, launchBrowser, logIn as logInAs, makeFileInPage, saveRecoveryKey, sha256File, signUp, startNetwork,
} from './support.mjs';

let net;
let chromium;
const email = 'dora@example.org';
const oldPassword = 'first password 1234';
const newPassword = 'second password 5678';

before(async () => {
  net = await startNetwork({ workers: 4, heartbeat: 1 });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await net?.stop();
});

function logIn(page, password) {
  return logInAs(page, net.url, email, password);
}

test('taken e-mail, wrong password, and a password change that keeps the files', { timeout: 300_000 }, async () => {
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  await signUp(page, net.url, email, oldPassword);
  const sha = await makeFileInPage(page, { name: 'diary.txt', size: 3 * 1024 * 1024 + 5, text: true });
  await dropTestFile(page);
  await page.getByTestId('file-row').filter({ hasText: 'diary.txt' }).waitFor({ timeout: 60_000 });

  // Tried: signing up again with the same address. Must hold: a plain message, no account made.
  const other = await (await chromium.browser.newContext()).newPage();
  await other.goto(`${net.url}/signup`);
  await other.getByLabel('E-mail').fill(email);
  await other.getByLabel('Password', { exact: true }).fill('another password 999');
  await other.getByLabel('Password again').fill('another password 999');
  await other.waitForFunction(() => !document.querySelector('[data-testid=auth-submit]').disabled);
  await other.getByTestId('auth-submit').click();
  assert.match(await other.getByTestId('form-error').textContent({ timeout: 60_000 }), /already has an account/);

  // Change the password on the account page.
  await page.goto(`${net.url}/account`);
  await page.getByLabel('Current password').fill(oldPassword);
  await page.getByLabel('New password').fill(newPassword);
  await page.getByRole('button', { name: 'Change password' }).click();
  await page.getByText('Password changed').waitFor({ timeout: 120_000 });
  await page.getByTestId('logout').click();
  await page.waitForURL(`${net.url}/`);

  // Tried: the old password. Must hold: "Wrong e-mail or password", still on the log-in page.
  await logIn(page, oldPassword);
  assert.match(await page.getByTestId('form-error').textContent({ timeout: 120_000 }), /Wrong e-mail or password/);

  // The new one opens the account, and the file (name and bytes) is still readable.
  await logIn(page, newPassword);
  await page.waitForURL(`${net.url}/files`, { timeout: 120_000 });
  const row = page.getByTestId('file-row').filter({ hasText: 'diary.txt' });
  await row.waitFor({ timeout: 60_000 });
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    row.getByTestId('download').click(),
  ]);
  assert.equal(await sha256File(await download.path()), sha, 'the file changed across the password change');
  await context.close();
});

test('what is typed before the app hydrates is what signs up', { timeout: 300_000 }, async () => {
  // Tried: filling the sign-up form while the app's WebAssembly is held back (a fast typist, or a
  // password manager filling the page as it appears), then letting it load. Must hold: the button
  // stays disabled until the app runs, and the account is made with what was typed.
  const context = await chromium.browser.newContext();
  const page = await context.newPage();
  let release;
  const held = new Promise((resolve) => { release = resolve; });
  await page.route('**/*.wasm', async (route) => { await held; await route.continue(); });
  await page.goto(`${net.url}/signup`, { waitUntil: 'domcontentloaded' });
  await page.getByLabel('E-mail').fill('early@example.org');
  await page.getByLabel('Password', { exact: true }).fill(oldPassword);
  await page.getByLabel('Password again').fill(oldPassword);
  assert.equal(await page.getByTestId('auth-submit').isDisabled(), true, 'the button works before the app does');
  release();
  await page.getByTestId('auth-submit').click({ timeout: 120_000 });
  await saveRecoveryKey(page, net.url);
  await page.getByText('early@example.org').first().waitFor({ timeout: 60_000 });
  await context.close();
});

test('a forgotten password is replaced with the recovery key from sign-up', { timeout: 300_000 }, async () => {
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  const who = 'forgetful@example.org';
  await page.goto(`${net.url}/signup`);
  await page.getByLabel('E-mail').fill(who);
  await page.getByLabel('Password', { exact: true }).fill(oldPassword);
  await page.getByLabel('Password again').fill(oldPassword);
  await page.waitForFunction(() => !document.querySelector('[data-testid=auth-submit]').disabled);
  await page.getByTestId('auth-submit').click();
  // The key is shown once, can be downloaded as a file, and "Continue" waits for "saved".
  await page.getByTestId('recovery-panel').waitFor({ timeout: 120_000 });
  assert.equal(await page.getByTestId('recovery-done').isDisabled(), true);
  const [keyFile] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('recovery-download').click(),
  ]);
  const { readFile } = await import('node:fs/promises');
  const saved = (await readFile(await keyFile.path(), 'utf8')).trim();
  const key = await saveRecoveryKey(page, net.url);
  assert.match(key, /^DKRK(-[0-9A-Z]{4}){14}$/);
  assert.equal(saved, key, 'the downloaded file holds the key shown');
  const sha = await makeFileInPage(page, { name: 'letters.txt', size: 200_000, text: true });
  await dropTestFile(page);
  await page.getByTestId('file-row').filter({ hasText: 'letters.txt' }).waitFor({ timeout: 60_000 });
  await page.goto(`${net.url}/account`);
  await page.getByTestId('logout').click();
  await page.waitForURL(`${net.url}/`);

  // Tried: a recovery key with a typo. Must hold: it says so, and nothing changes.
  const recover = async (text) => {
    await page.goto(`${net.url}/recover`);
    await page.getByLabel('E-mail').fill(who);
    await page.getByTestId('recovery-key-input').fill(text);
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('New password again').fill(newPassword);
    await page.waitForFunction(() => !document.querySelector('[data-testid=recover-submit]').disabled);
    await page.getByTestId('recover-submit').click();
  };
  const typo = key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A');
  await recover(typo);
  assert.match(await page.getByTestId('form-error').textContent({ timeout: 60_000 }), /typo/);

  // The key, typed in lower case with spaces: a new password, and the file is still there.
  await recover(key.toLowerCase().replaceAll('-', ' '));
  await page.waitForURL(`${net.url}/files`, { timeout: 120_000 });
  const row = page.getByTestId('file-row').filter({ hasText: 'letters.txt' });
  await row.waitFor({ timeout: 60_000 });
  const [download] = await Promise.all([
    page.waitForEvent('download', { timeout: 120_000 }),
    row.getByTestId('download').click(),
  ]);
  assert.equal(await sha256File(await download.path()), sha, 'the file changed across the recovery');

  // The old password no longer opens the account; the new one does.
  await page.goto(`${net.url}/account`);
  await page.getByTestId('logout').click();
  await page.waitForURL(`${net.url}/`);
  await page.goto(`${net.url}/login`);
  await page.getByLabel('E-mail').fill(who);
  await page.getByLabel('Password').fill(oldPassword);
  await page.waitForFunction(() => !document.querySelector('[data-testid=auth-submit]').disabled);
  await page.getByTestId('auth-submit').click();
  assert.match(await page.getByTestId('form-error').textContent({ timeout: 120_000 }), /Wrong e-mail or password/);
  await page.getByLabel('Password').fill(newPassword);
  await page.getByTestId('auth-submit').click();
  await page.waitForURL(`${net.url}/files`, { timeout: 120_000 });
  await context.close();
});
