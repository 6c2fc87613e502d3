// The home page, hydrated in real Chromium: the browser's wasm codec must produce exactly the
// server's native bytes for the codec sample.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, startServer } from './support.mjs';

let server;
let chromium;

before(async () => {
  server = await startServer();
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await server?.stop();
});

test('the page hydrates and the browser codec matches the native one', { timeout: 120_000 }, async () => {
  const page = await chromium.browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });

  const response = await page.goto(server.url);
  assert.equal(response.status(), 200);
  assert.match(await page.title(), /Disktro/);
  // The native digest arrives from the server function; 64 hex digits.
  const native = await page.getByTestId('native-digest').textContent({ timeout: 60_000 });
  assert.match(native, /^[0-9a-f]{64}$/);

  // The first screen says what this is and where to start; the check is folded away below.
  assert.equal(await page.getByTestId('cta-signup').getAttribute('href'), '/signup');
  assert.equal(await page.getByTestId('run-codec').isVisible(), false);
  await page.getByTestId('codec-details').locator('summary').click();
  // Clicking only does something once the wasm bundle has hydrated the page.
  await page.getByTestId('run-codec').click();
  const verdict = page.getByTestId('verdict');
  await verdict.waitFor({ timeout: 90_000 });
  // The bytes sealed by WebCrypto (the upload path), by the aes-gcm crate (the fallback) and by
  // the one-call encoder must all be the server's native bytes.
  assert.equal(await page.getByTestId('browser-digest').textContent(), native);
  assert.equal(await page.getByTestId('browser-digest-fallback').textContent(), native);
  assert.equal(await page.getByTestId('browser-digest-whole').textContent(), native);
  assert.match(await verdict.textContent(), /^Identical/);
  // The page declares a strict policy: scripts from here or with the response's nonce only.
  const csp = response.headers()['content-security-policy'];
  assert.match(csp, /script-src 'self' 'nonce-[^']+' 'wasm-unsafe-eval'/);
  assert.match(csp, /object-src 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  console.log(`in-browser codec (wasm32, WebCrypto seal): ${await page.getByTestId('browser-speed').textContent()}`);
  assert.deepEqual(errors, []);
});

test('health is JSON and unknown pages are 404', async () => {
  const health = await fetch(`${server.url}/api/v1/health`);
  assert.equal(health.status, 200);
  const body = await health.json();
  assert.equal(body.status, 'ok');
  assert.equal(body.format_version, 1);
  const missing = await fetch(`${server.url}/no/such/page`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /Not found/);
});
