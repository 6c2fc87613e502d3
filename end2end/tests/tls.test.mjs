// The product as a real deployment runs it: HTTPS pages and wss:// workers on other hosts. The
// server and 10 workers each run on a host of its own (a network namespace with its own address
// in 198.18.0.0/15, scripts/netns), with certificates from a CA the test makes (openssl); the
// workers trust it for their heartbeats (--ca-cert) and Chromium trusts the certificate by its
// key (--ignore-certificate-errors-spki-list). Needs root for the namespaces; skipped otherwise.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dropTestFile, launchBrowser, makeFileInPage, sha256File, signUp, spawnUntil } from './support.mjs';

const MiB = 1024 * 1024;
const root = path.resolve(import.meta.dirname, '..', '..');
const netns = path.join(root, 'scripts', 'netns');
const isRoot = process.getuid?.() === 0;
const name = `dw${process.pid % 100000}`;
const subnet = `198.19.${20 + (process.pid % 200)}`;
const join = 'e2e-tls-join';

let dir;
let hosts;
let ca;
let server;
let url;
const workers = [];
let chromium;

/** GET `url` as JSON, trusting the test's CA. */
function getJson(address) {
  return new Promise((resolve, reject) => {
    https.get(address, { ca }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => {
        try { resolve(JSON.parse(body)); } catch (e) { reject(e); }
      });
    }).on('error', reject);
  });
}

before(async () => {
  if (!isRoot) return;
  dir = mkdtempSync(path.join(tmpdir(), 'disktro-e2e-tls-'));
  const names = ['server', ...Array.from({ length: 10 }, (_, i) => `w${i}`)];
  execFileSync(netns, ['down', name]);
  hosts = Object.fromEntries(execFileSync(netns, ['up', name, subnet, ...names], { encoding: 'utf8' })
    .trim().split('\n').map((l) => l.split(' ')));

  // A CA, and one certificate for every host's address signed by it (an end-entity certificate:
  // rustls refuses a CA certificate presented as a server's).
  const file = (f) => path.join(dir, f);
  const ssl = (...args) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=disktro test CA', '-keyout', file('ca.key'), '-out', file('ca.pem'));
  ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=disktro test hosts',
    '-keyout', file('key.pem'), '-out', file('hosts.csr'));
  const sans = Object.values(hosts).map((a) => `IP:${a}`).join(',');
  writeFileSync(file('ext.cnf'), `subjectAltName=${sans}\nbasicConstraints=critical,CA:FALSE\n`
    + 'keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n');
  ssl('x509', '-req', '-in', file('hosts.csr'), '-CA', file('ca.pem'), '-CAkey', file('ca.key'),
    '-CAcreateserial', '-days', '1', '-extfile', file('ext.cnf'), '-out', file('cert.pem'));
  ca = execFileSync('cat', [file('ca.pem')], { encoding: 'utf8' });
  const spki = execFileSync('sh', ['-c',
    `openssl x509 -in '${file('cert.pem')}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`,
  ], { encoding: 'utf8' }).trim();

  const serverBin = process.env.DISKTRO_SERVER_BIN ?? path.join(root, 'target', 'release', 'disktro-server');
  const workerBin = process.env.DISKTRO_WORKER_BIN ?? path.join(root, 'target', 'release', 'disktro-worker');
  const siteRoot = process.env.LEPTOS_SITE_ROOT ?? path.join(root, 'target', 'site');
  const tls = ['--tls-cert', file('cert.pem'), '--tls-key', file('key.pem')];
  server = spawnUntil('ip', ['netns', 'exec', `${name}-server`, serverBin, '--listen', `${hosts.server}:0`,
    '--site-root', siteRoot, '--data-dir', file('server'), '--join-token', join, '--heartbeat-interval', '1s', ...tls],
  /listening on (https:\/\/\S+)/, 'server');
  url = (await server.ready)[1];
  for (let i = 0; i < 10; i++) {
    const w = spawnUntil('ip', ['netns', 'exec', `${name}-w${i}`, workerBin, '--listen', `${hosts[`w${i}`]}:4000`,
      '--data-dir', file(`w${i}`), '--capacity', '4GiB', '--server', url, '--join-token', join,
      '--heartbeat-interval', '1s', '--ca-cert', file('ca.pem'), ...tls], /node_id=([0-9a-f]{64})/, `worker ${i}`);
    await w.ready;
    workers.push(w);
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    const nodes = await getJson(`${url}/api/v1/nodes`);
    if (nodes.filter((n) => n.status === 'online').length === 10) break;
    if (Date.now() > deadline) throw new Error('the workers did not come online over HTTPS');
    await new Promise((r) => setTimeout(r, 200));
  }
  chromium = await launchBrowser([`--ignore-certificate-errors-spki-list=${spki}`]);
});

after(async () => {
  await chromium?.close();
  for (const p of [...workers, server].filter(Boolean)) {
    p.child.removeAllListeners('exit');
    p.child.kill('SIGKILL');
  }
  if (isRoot) execFileSync(netns, ['down', name]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Tried: sign up on the HTTPS site, drop a 64 MiB file, download it, with every worker on its own
// host behind wss://.
// Must hold: every worker advertises wss:// on its host's address; the page's CSP lets it open
// wss: sockets only; the upload finishes and the download is byte-identical; no page error.
test('over HTTPS and wss:// across hosts: a 64 MiB upload and download', { timeout: 300_000, skip: !isRoot && 'needs root for network namespaces' }, async () => {
  const nodes = await getJson(`${url}/api/v1/nodes`);
  for (let i = 0; i < 10; i++) {
    assert.ok(nodes.some((n) => n.url === `wss://${hosts[`w${i}`]}:4000`), `no worker at wss://${hosts[`w${i}`]}:4000`);
  }
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  const errors = [];
  const consoleErrors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  const home = await page.goto(url);
  assert.match(home.headers()['content-security-policy'], /connect-src 'self' wss:;/);
  await signUp(page, url, 'mary@example.org');
  await page.getByTestId('dropzone').waitFor();
  const sha = await makeFileInPage(page, { name: 'across.bin', size: 64 * MiB });
  await dropTestFile(page);
  const row = page.getByTestId('transfer');
  await page.locator('[data-testid=transfer]:not([data-state=running])').waitFor({ timeout: 240_000 });
  assert.equal(await row.getAttribute('data-state'), 'done', `the upload did not finish: ${await row.textContent()}`);
  const file = page.getByTestId('file-row').filter({ hasText: 'across.bin' });
  await file.waitFor({ timeout: 30_000 });
  // Large files stream through the download helper (a service worker), which the page waits
  // at most 5 s for; on a loaded machine its first install over HTTPS can take longer.
  await page.waitForFunction(() => navigator.serviceWorker?.controller != null, null, { timeout: 60_000 });
  // The download, or the transfer row's failure with what the page said (a bare timeout would
  // tell nothing).
  const downloadRow = page.locator('[data-testid=transfer]').first();
  const failed = page.locator('[data-testid=transfer][data-state=failed]').first();
  const [outcome] = await Promise.all([
    Promise.race([
      page.waitForEvent('download', { timeout: 120_000 }),
      failed.waitFor({ timeout: 120_000 }).then(async () => new Error(`the download failed: ${await failed.textContent()}`)),
    ]),
    file.getByTestId('download').click(),
  ]).catch(async (e) => {
    throw new Error(`${e.message}; transfer: ${await downloadRow.textContent().catch(() => '?')}; console: ${consoleErrors.join(' | ')}`);
  });
  if (outcome instanceof Error) throw new Error(`${outcome.message}; console: ${consoleErrors.join(' | ')}`);
  const download = outcome;
  assert.equal(await download.failure(), null);
  assert.equal(await sha256File(await download.path()), sha, 'the download differs from the upload');
  assert.deepEqual(errors, []);
  await context.close();
});
