// A bare DevTools-protocol driver for the browser benchmark: Chromium over
// `--remote-debugging-pipe`, with only the Page, Runtime, DOM and Browser commands a benchmark
// needs.
//
// Why not Playwright, as the tests use: Playwright enables the Network domain on every page and
// worker it attaches to, and Chromium then sends each WebSocket frame, base64-encoded, to the
// driver. On this machine that capped a tab's WebSocket sends at 70–85 MB/s (the browser process
// and the driver each busy most of a core) against 376–576 MB/s for the same sends with no
// Network domain. A benchmark must see the tab as a person's tab is; the tests keep Playwright.
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const FLAGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--remote-debugging-pipe',
  // More flags for a run looked into, e.g. `--js-flags=--perf-basic-prof` so that `perf` names
  // the WebAssembly functions it samples (space-separated).
  ...(process.env.BENCH_CHROMIUM_FLAGS ?? '').split(' ').filter(Boolean),
];

/** Launch headless Chromium with a fresh profile; downloads are saved under `downloads`. */
export async function launchBare({ downloads }) {
  const profile = mkdtempSync(path.join(tmpdir(), 'disktro-chromium-'));
  const child = spawn(process.env.CHROMIUM ?? '/usr/bin/chromium', [...FLAGS, `--user-data-dir=${profile}`, 'about:blank'], {
    // The protocol runs over fds 3 (to Chromium) and 4 (from it), one JSON message per NUL.
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, XDG_CONFIG_HOME: profile, HOME: profile },
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const waiting = new Map();
  const listeners = new Set();
  let nextId = 1;
  let pending = Buffer.alloc(0);
  child.stdio[4].on('data', (data) => {
    pending = Buffer.concat([pending, data]);
    for (let end; (end = pending.indexOf(0)) >= 0;) {
      const message = JSON.parse(pending.subarray(0, end).toString('utf8'));
      pending = pending.subarray(end + 1);
      if (message.id !== undefined) {
        const { resolve, reject, method } = waiting.get(message.id);
        waiting.delete(message.id);
        if (message.error) reject(new Error(`${method}: ${message.error.message}`));
        else resolve(message.result);
      } else {
        for (const listener of listeners) listener(message);
      }
    }
  });
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.on('exit', (code) => {
    for (const { reject, method } of waiting.values()) reject(new Error(`${method}: Chromium exited (${code}): ${stderr}`));
    waiting.clear();
  });

  const send = (method, params = {}, sessionId = undefined) => new Promise((resolve, reject) => {
    const id = nextId++;
    waiting.set(id, { resolve, reject, method });
    child.stdio[3].write(`${JSON.stringify({ id, method, params, sessionId })}\0`);
  });
  /** The next event `method` (of `sessionId`, when given) for which `accept(params)` holds. */
  const nextEvent = (method, accept = () => true, timeoutMs = 600_000) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      listeners.delete(listener);
      reject(new Error(`no ${method} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const listener = (m) => {
      if (m.method === method && accept(m.params, m.sessionId)) {
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(m.params);
      }
    };
    listeners.add(listener);
  });

  // The tab Chromium opens at start is closed: each benchmark page is a tab of its own.
  const { targetInfos } = await send('Target.getTargets');
  for (const target of targetInfos.filter((t) => t.type === 'page')) await send('Target.closeTarget', { targetId: target.targetId });
  await send('Browser.setDownloadBehavior', { behavior: 'allowAndName', downloadPath: downloads, eventsEnabled: true });
  // Dialogs (the delete confirmation) are accepted.
  listeners.add((m) => {
    if (m.method === 'Page.javascriptDialogOpening') send('Page.handleJavaScriptDialog', { accept: true }, m.sessionId);
  });

  return {
    pid: child.pid,
    /** A new tab; `initScript` runs in every document it loads, before the page's own. */
    async newPage({ initScript, onConsole } = {}) {
      const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
      const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
      const call = (method, params) => send(method, params, sessionId);
      await call('Page.enable');
      if (onConsole) {
        // The page's and its workers' console lines (for working on the pipeline).
        listeners.add((m) => {
          if (m.method === 'Target.attachedToTarget') send('Runtime.enable', {}, m.params.sessionId);
          if (m.method === 'Runtime.consoleAPICalled') onConsole(m.params.args.map((a) => a.value ?? a.description).join(' '));
        });
        await call('Target.setAutoAttach', { autoAttach: true, waitForDebuggerOnStart: false, flatten: true });
        await call('Runtime.enable');
      }
      if (initScript) await call('Page.addScriptToEvaluateOnNewDocument', { source: initScript });
      const page = {
        /** `fn(arg)` in the page, awaited; its JSON-able result. */
        async evaluate(fn, arg) {
          const { result, exceptionDetails } = await call('Runtime.evaluate', {
            expression: `(${fn})(${JSON.stringify(arg)})`,
            awaitPromise: true,
            returnByValue: true,
          });
          if (exceptionDetails) {
            throw new Error(`in the page: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
          }
          return result.value;
        },
        async goto(url) {
          const loaded = nextEvent('Page.loadEventFired', (_, s) => s === sessionId, 60_000);
          await call('Page.navigate', { url });
          await loaded;
        },
        /** Resolve once `selector` matches (watched with a MutationObserver, so no polling lag). */
        waitFor(selector, timeoutMs = 600_000) {
          return page.evaluate(({ selector, timeoutMs }) => new Promise((resolve, reject) => {
            const observer = new MutationObserver(() => check());
            const timer = setTimeout(() => {
              observer.disconnect();
              reject(new Error(`${selector} did not appear within ${timeoutMs / 1000} s`));
            }, timeoutMs);
            const check = () => {
              if (!document.querySelector(selector)) return;
              observer.disconnect();
              clearTimeout(timer);
              resolve(true);
            };
            observer.observe(document, { subtree: true, childList: true, attributes: true });
            check();
          }), { selector, timeoutMs });
        },
        async setInputFiles(selector, files) {
          const { root } = await call('DOM.getDocument', { depth: 0 });
          const { nodeId } = await call('DOM.querySelector', { nodeId: root.nodeId, selector });
          if (!nodeId) throw new Error(`no ${selector} to set files on`);
          await call('DOM.setFileInputFiles', { nodeId, files });
        },
      };
      return page;
    },
    /** Run `start`, then resolve with the path of the download it began, once complete. */
    async download(start, timeoutMs = 600_000) {
      const begun = nextEvent('Browser.downloadWillBegin', () => true, timeoutMs);
      await start();
      const { guid } = await begun;
      const end = await nextEvent('Browser.downloadProgress', (p) => p.guid === guid && p.state !== 'inProgress', timeoutMs);
      if (end.state !== 'completed') throw new Error(`the download ended ${end.state}`);
      return path.join(downloads, guid);
    },
    async close() {
      // Asked to close, Chromium ends its helper processes before it exits; killed, they would
      // go on writing into the profile while it is removed.
      await Promise.race([send('Browser.close').catch(() => {}), exited]);
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
      rmSync(profile, { recursive: true, force: true, maxRetries: 10 });
    },
  };
}

/**
 * Run `worker` (JavaScript source) in a dedicated worker of a page on 127.0.0.1 (a secure
 * context, so `crypto.subtle` exists, as on the app's own origin) and resolve to what it posts
 * back once, after being posted 'go'. `routes` answers further paths the worker fetches
 * (`path → () => text`). For the hand-run microbenchmarks.
 */
export async function runInWorker(worker, routes = {}) {
  const files = {
    '/': '<!doctype html><script src="/run.js"></script>',
    '/run.js': `window.result = new Promise((resolve) => {
      const worker = new Worker('/worker.js');
      worker.onmessage = (e) => resolve(e.data);
      worker.postMessage('go');
    });`,
    '/worker.js': worker,
  };
  const server = createServer((request, response) => {
    const body = files[request.url] ?? routes[request.url]?.();
    response.writeHead(body === undefined ? 404 : 200, {
      'content-type': request.url === '/' ? 'text/html' : 'text/javascript',
    });
    response.end(body ?? '');
  }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const chromium = await launchBare({ downloads: tmpdir() });
  try {
    const page = await chromium.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    return await page.evaluate(() => window.result);
  } finally {
    await chromium.close();
    server.close();
  }
}
