// Shared set-up for the browser tests: start the real disktro-server on a free port, and launch
// Debian's Chromium through playwright-core (browsers are never downloaded).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const root = path.resolve(import.meta.dirname, '..', '..');

/** Start disktro-server on 127.0.0.1:0 and resolve with its base URL once it listens. */
export async function startServer() {
  const bin = process.env.DISKTRO_SERVER_BIN ?? path.join(root, 'target', 'release', 'disktro-server');
  const siteRoot = process.env.LEPTOS_SITE_ROOT ?? path.join(root, 'target', 'site');
  // A fresh data dir (database, server key) per server, removed when it stops.
  const dataDir = mkdtempSync(path.join(tmpdir(), 'disktro-e2e-'));
  const child = spawn(bin, ['--listen', '127.0.0.1:0', '--site-root', siteRoot, '--data-dir', dataDir], {
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

/** Headless Debian Chromium with the flags this closed network needs. */
export async function launchBrowser() {
  const profile = mkdtempSync(path.join(tmpdir(), 'disktro-chromium-'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
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
