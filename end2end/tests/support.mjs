// Shared set-up for the browser tests: start the real disktro-server on a free port, and launch
// Debian's Chromium through playwright-core (browsers are never downloaded).
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '..', '..');
/** The `disktro` CLI the browser tests drive beside the browser. */
export const cliBin = process.env.DISKTRO_CLI_BIN ?? path.join(root, 'target', 'release', 'disktro');

/** Run `disktro` against `serverUrl` with its config (its log-in) in `configDir`; its stdout. */
export function runCli(serverUrl, configDir, args, input) {
  return execFileSync(cliBin, ['--server', serverUrl, ...args], {
    input,
    env: { ...process.env, DISKTRO_CONFIG_DIR: configDir, NO_COLOR: '1' },
    encoding: 'utf8',
    timeout: 120_000,
  });
}

/** Start disktro-server on 127.0.0.1:0 and resolve with its base URL once it listens. */
export async function startServer(extraArgs = []) {
  const bin = process.env.DISKTRO_SERVER_BIN ?? path.join(root, 'target', 'release', 'disktro-server');
  const siteRoot = process.env.LEPTOS_SITE_ROOT ?? path.join(root, 'target', 'site');
  // A fresh data dir (database, server key) per server, removed when it stops.
  const dataDir = mkdtempSync(path.join(tmpdir(), 'disktro-e2e-'));
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--site-root', siteRoot, '--data-dir', dataDir, ...extraArgs], {
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${log}`)), 30_000);
    const onData = (chunk) => {
      log += chunk;
      const m = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${log}`)));
  });
  return {
    url,
    log: () => log,
    stop: () => new Promise((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', () => {
        rmSync(dataDir, { recursive: true, force: true });
        resolve();
      });
      child.kill('SIGTERM');
    }),
  };
}

/** Run `bin args…` until a line of its output matches `pattern`; resolve with the match. */
export function spawnUntil(bin, args, pattern, what) {
  const child = spawn(bin, args, {
    env: { ...process.env, RUST_LOG: 'info', NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 30 s:\n${log}`)), 30_000);
    const onData = (chunk) => {
      // Colour codes, should a logger add them, would split the fields matched.
      log += String(chunk).replace(/\x1b\[[0-9;]*m/g, '');
      const m = log.match(pattern);
      if (m) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`${what} exited with ${code}:\n${log}`)));
  });
  return { child, ready, log: () => log };
}

/**
 * A storage network on loopback: the server plus `workers` separate `disktro-worker` processes
 * (so a test can stop some), heartbeats every `heartbeat` seconds.
 */
export async function startNetwork({ workers = 10, heartbeat = 1, serverArgs = [] } = {}) {
  const joinToken = 'e2e-join-token';
  const server = await startServer(['--join-token', joinToken, '--heartbeat-interval', `${heartbeat}s`, ...serverArgs]);
  const bin = process.env.DISKTRO_WORKER_BIN ?? path.join(root, 'target', 'release', 'disktro-worker');
  const nodes = [];
  const addWorkers = async (count) => {
    for (let i = 0; i < count; i++) {
      const dataDir = mkdtempSync(path.join(tmpdir(), 'disktro-e2e-worker-'));
      const w = spawnUntil(bin, [
        '--listen', '127.0.0.1:0', '--data-dir', dataDir, '--capacity', '4GiB', '--server', server.url,
        '--join-token', joinToken, '--heartbeat-interval', `${heartbeat}s`,
      ], /node_id=([0-9a-f]{64})/, `worker ${nodes.length}`);
      const m = await w.ready;
      w.child.removeAllListeners('exit');
      nodes.push({ nodeId: m[1], child: w.child, dataDir, log: w.log });
    }
    // Wait until the server sees them all online.
    const deadline = Date.now() + 30_000;
    for (;;) {
      const list = await (await fetch(`${server.url}/api/v1/nodes`)).json();
      if (list.filter((n) => n.status === 'online').length >= nodes.length) break;
      if (Date.now() > deadline) throw new Error(`only ${list.length} nodes registered`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  await addWorkers(workers);
  const stopNode = (node) => new Promise((resolve) => {
    if (node.child.exitCode !== null || node.child.signalCode !== null) return resolve();
    node.child.on('exit', () => resolve());
    node.child.kill('SIGKILL');
  });
  return {
    url: server.url,
    server,
    nodes,
    heartbeat,
    stopNode,
    /** Start `count` more workers and wait until every worker is online. */
    addWorkers,
    stop: async () => {
      await Promise.all(nodes.map(stopNode));
      for (const n of nodes) rmSync(n.dataDir, { recursive: true, force: true });
      await server.stop();
    },
  };
}

/** SHA-256 of a file on disk, hex. */
export async function sha256File(file) {
  const { createHash } = await import('node:crypto');
  const { createReadStream } = await import('node:fs');
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk);
  return hash.digest('hex');
}

/**
 * Write a `size`-byte test file (random, or repetitive text when `text`) under the temp dir;
 * resolves with its path. Written in 1 MiB pieces.
 */
export async function writeTestFile(name, size, { text = false } = {}) {
  const { randomBytes } = await import('node:crypto');
  const { open } = await import('node:fs/promises');
  const dir = mkdtempSync(path.join(tmpdir(), 'disktro-e2e-file-'));
  const file = path.join(dir, name);
  const handle = await open(file, 'w');
  const words = Buffer.from('erasure coded shards sealed in your browser stored across independent workers\n');
  const piece = 1 << 20;
  for (let done = 0; done < size; done += piece) {
    const n = Math.min(piece, size - done);
    let buf;
    if (text) {
      buf = Buffer.alloc(n);
      for (let i = 0; i < n; i++) buf[i] = words[(done + i + ((done + i) >> 12)) % words.length];
    } else {
      buf = randomBytes(n);
    }
    await handle.write(buf);
  }
  await handle.close();
  return file;
}

/** Where the tests save screenshots (kept out of git). */
export const screenshots = path.join(root, 'end2end', 'screenshots');

/**
 * In the page: make a `size`-byte File called `name` (pseudo-random, or repetitive text when
 * `text`), generated inside the browser so nothing large crosses the test protocol. Returns its
 * SHA-256 (hex) and leaves it at `window.__testFile`.
 */
export async function makeFileInPage(page, { name, size, text = false }) {
  return page.evaluate(async ({ name, size, text }) => {
    const parts = [];
    const piece = 1 << 20;
    let x = 0x9e3779b9;
    const words = 'erasure coded shards sealed in your browser stored across independent workers ';
    for (let done = 0; done < size; done += piece) {
      const n = Math.min(piece, size - done);
      const buf = new Uint8Array(n);
      if (text) {
        for (let i = 0; i < n; i++) buf[i] = words.charCodeAt((done + i + ((done + i) >> 12)) % words.length);
      } else {
        const view = new Uint32Array(buf.buffer, 0, n >> 2);
        for (let i = 0; i < view.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; view[i] = x >>> 0; }
      }
      parts.push(buf);
    }
    const file = new File(parts, name, { type: text ? 'text/plain' : 'application/octet-stream' });
    window.__testFile = file;
    const digest = await crypto.subtle.digest('SHA-256', await file.arrayBuffer());
    return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
  }, { name, size, text });
}

/** Drop `window.__testFile` on the drop zone, as a person dragging it from the desktop would. */
export async function dropTestFile(page) {
  await page.getByTestId('dropzone').evaluate((zone) => {
    const dt = new DataTransfer();
    dt.items.add(window.__testFile);
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
}

/** Sign up through the form, confirm the recovery key was saved; resolves on the files page with
 * the recovery key's text. */
export async function signUp(page, baseUrl, email, password = 'correct horse battery staple') {
  await page.goto(`${baseUrl}/signup`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByLabel('Password again').fill(password);
  const submit = page.getByTestId('auth-submit');
  await submit.waitFor();
  await page.waitForFunction(() => !document.querySelector('[data-testid=auth-submit]').disabled);
  await submit.click();
  return saveRecoveryKey(page, baseUrl);
}

/** Log in on the log-in page. */
export async function logIn(page, baseUrl, email, password) {
  await page.goto(`${baseUrl}/login`);
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.waitForFunction(() => !document.querySelector('[data-testid=auth-submit]').disabled);
  await page.getByTestId('auth-submit').click();
}

/** On the recovery key panel (after sign-up): read the key, tick "saved", continue to the files. */
export async function saveRecoveryKey(page, baseUrl) {
  const key = (await page.getByTestId('recovery-key').textContent({ timeout: 120_000 })).trim();
  await page.getByTestId('recovery-saved').check();
  await page.getByTestId('recovery-done').click();
  await page.waitForURL(`${baseUrl}/files`, { timeout: 120_000 });
  return key;
}

/** Headless Debian Chromium with the flags this closed network needs (and `extraArgs`). */
export async function launchBrowser(extraArgs = []) {
  const profile = mkdtempSync(path.join(tmpdir(), 'disktro-chromium-'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs,
    ],
    env: { ...process.env, XDG_CONFIG_HOME: profile, HOME: profile },
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Bytes the workers of `net` have received, as their heartbeats report it (waits two heartbeats
 * and a half first, so that what was just sent is counted). */
export async function ingress(net) {
  await new Promise((r) => setTimeout(r, 2500 * net.heartbeat));
  const nodes = await (await fetch(`${net.url}/api/v1/nodes`)).json();
  return nodes.reduce((sum, n) => sum + n.ingress_bytes, 0);
}
