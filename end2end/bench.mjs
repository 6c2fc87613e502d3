// Browser benchmark (`make bench`): in-browser upload and download of 256 MiB random and 256 MiB
// text through a local network (server + 10 worker processes), in real Chromium. Prints one
// `browser/...` line per figure: MB/s (10^6 bytes per second, wall clock from picking the file
// to the commit, and from the click to the last byte saved) and the peak resident memory of the
// browser's renderer processes (the tab, its pipeline worker and the download service worker)
// sampled every 100 ms.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { launchBrowser, sha256File, signUp, startNetwork, writeTestFile } from './tests/support.mjs';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_BROWSER_MIB ?? 256) * MiB;

function childrenOf(pid) {
  const out = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push(Number(entry));
    } catch { /* gone */ }
  }
  return out;
}

/** Resident MiB of every Chromium renderer process below `browserPid`. */
function rendererRss(browserPid) {
  let total = 0;
  const stack = [browserPid];
  while (stack.length) {
    const pid = stack.pop();
    for (const child of childrenOf(pid)) {
      stack.push(child);
      try {
        const cmd = readFileSync(`/proc/${child}/cmdline`, 'utf8');
        if (!cmd.includes('--type=renderer')) continue;
        const status = readFileSync(`/proc/${child}/status`, 'utf8');
        total += Number(status.match(/VmRSS:\s+(\d+)/)[1]) / 1024;
      } catch { /* gone */ }
    }
  }
  return total;
}

async function measure(browserPid, run) {
  let peak = 0;
  const timer = setInterval(() => { peak = Math.max(peak, rendererRss(browserPid)); }, 100);
  const start = Date.now();
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, rendererRss(browserPid));
  return { seconds: (Date.now() - start) / 1000, peakMiB: peak };
}

const net = await startNetwork({ workers: 10, heartbeat: 2 });
const chromium = await launchBrowser();
try {
  // Chromium is a child of this process; its renderers are further down.
  const browserPid = process.pid;
  const context = await chromium.browser.newContext({ acceptDownloads: true });
  await context.addInitScript(() => { delete window.showSaveFilePicker; });
  const page = await context.newPage();
  await signUp(page, net.url, 'bench@example.org');
  for (const kind of ['random', 'text']) {
    const file = await writeTestFile(`bench-${kind}.bin`, SIZE, { text: kind === 'text' });
    const want = await sha256File(file);
    await page.goto(`${net.url}/files`);
    await page.getByTestId('dropzone').waitFor();
    const up = await measure(browserPid, async () => {
      await page.getByTestId('file-input').setInputFiles(file);
      await page.locator('[data-testid=transfer][data-state=done]').first().waitFor({ timeout: 600_000 });
    });
    console.log(`browser/upload/${kind}: ${(SIZE / 1e6 / up.seconds).toFixed(1)} MB/s, peak tab memory ${up.peakMiB.toFixed(0)} MiB (${SIZE / MiB} MiB)`);
    const row = page.getByTestId('file-row').filter({ hasText: `bench-${kind}.bin` });
    let saved;
    const down = await measure(browserPid, async () => {
      const [download] = await Promise.all([
        page.waitForEvent('download', { timeout: 600_000 }),
        row.getByTestId('download').click(),
      ]);
      saved = await download.path();
    });
    const got = await sha256File(saved);
    if (got !== want) throw new Error(`browser bench: the ${kind} download differs from the upload`);
    console.log(`browser/download/${kind}: ${(SIZE / 1e6 / down.seconds).toFixed(1)} MB/s, peak tab memory ${down.peakMiB.toFixed(0)} MiB (${SIZE / MiB} MiB)`);
    rmSync(file);
    // Delete it again so the next run starts from the same state.
    page.once('dialog', (d) => d.accept());
    await row.getByTestId('delete').click();
    await row.waitFor({ state: 'detached' });
  }
} finally {
  await chromium.close();
  await net.stop();
}
