// Browser benchmark (`make bench`): in-browser upload and download of 256 MiB random and 256 MiB
// text through a local network (server + 10 worker processes: 6 + 4 shards), in real Chromium,
// and the upload of 256 MiB random on 15 workers, where the redundancy policy gives 9 + 6. Prints one
// `browser/...` line per figure: MB/s (10^6 bytes per second, wall clock from picking the file
// to the commit, and from the click to the last byte saved) and the peak memory of the browser's
// renderer processes (the tab, its pipeline worker and the download service worker, and the
// spare renderer Chromium keeps ready) sampled every 100 ms: private memory, and resident memory
// with the shared executable pages. Each line ends with the CPU the run used, in cores, for the
// machine and for the tab, the rest of Chromium, the workers and the server: on this 2-core
// machine the figures move by ±15% from run to run, the CPU per byte much less, so it is what
// tells a change to the pipeline apart from noise; an indented line under each names the tab's
// busiest threads, in cores. Chromium is driven over a bare DevTools pipe
// (`bare.mjs`), not Playwright: see there why.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { launchBare } from './bare.mjs';
import { sha256File, startNetwork, writeTestFile } from './tests/support.mjs';

const MiB = 1024 * 1024;
const SIZE = Number(process.env.BENCH_BROWSER_MIB ?? 256) * MiB;
// `BENCH_BROWSER_KINDS=random` measures one kind only (while working on the pipeline).
const KINDS = (process.env.BENCH_BROWSER_KINDS ?? 'random,text').split(',');

const TICKS_PER_SECOND = 100; // USER_HZ, the unit of /proc's CPU times

/**
 * A `/proc/<pid>/stat` (or a thread's) line: the name in parentheses (which may hold spaces), the
 * fields after it (`fields[1]` is the parent's pid), the CPU time used in seconds (user +
 * system) and the minor page faults taken (fresh memory touched: each costs the kernel a zeroed
 * page).
 */
function parseStat(stat) {
  const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { name, fields, cpu: (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND, faults: Number(fields[7]) };
}

/**
 * The processes below `rootPid` (one pass over /proc), each with its command line and the CPU
 * time it has used (seconds, user + system).
 */
function processesBelow(rootPid) {
  const children = new Map();
  const cpu = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const { fields, cpu: used } = parseStat(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      const ppid = Number(fields[1]);
      cpu.set(Number(entry), used);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch { /* gone */ }
  }
  const below = [];
  const stack = [rootPid];
  while (stack.length) {
    for (const pid of children.get(stack.pop()) ?? []) {
      stack.push(pid);
      try {
        below.push({ pid, cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8'), cpu: cpu.get(pid) });
      } catch { /* gone */ }
    }
  }
  return below;
}

/**
 * Whether a command line is a Chromium renderer that can hold the tab: not the one that renders
 * the browser's own interface (`--top-chrome-webui`, about 50 MiB, the same with no page open),
 * which runs `make bench` before this one counted as the tab's.
 */
const isTabRenderer = (cmdline) => cmdline.includes('--type=renderer') && !cmdline.includes('--top-chrome-webui');

/** The Chromium renderer processes below `browserPid` that can hold the tab. */
function rendererPids(browserPid) {
  return processesBelow(browserPid).filter((p) => isTabRenderer(p.cmdline)).map((p) => p.pid);
}

/**
 * Memory of the renderer processes `pids`, in MiB: `private` is what the tab costs (anonymous
 * and shared-memory pages: the JS heaps, WebAssembly memories, socket and IPC buffers; what
 * Chrome's task manager calls the memory footprint), `rss` adds the pages of the Chromium
 * executable each renderer maps (the same file pages, counted once per process).
 */
function rendererMemory(pids) {
  const total = { private: 0, rss: 0 };
  for (const pid of pids) {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kib = (field) => Number(status.match(new RegExp(`${field}:\\s+(\\d+)`))[1]);
      total.private += (kib('RssAnon') + kib('RssShmem')) / 1024;
      total.rss += kib('VmRSS') / 1024;
    } catch { /* gone */ }
  }
  return total;
}

/**
 * CPU time used so far, in seconds: by the whole machine (from /proc/stat, all cores), and by the
 * processes below `rootPid` by kind: the tab (Chromium's renderers), the rest of Chromium (its
 * browser, network and GPU processes), the storage workers and the server. Processes that exit in
 * between are not counted; none of these do during a run.
 */
function cpuSeconds(rootPid) {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal: all but idle and iowait are busy.
  const busy = fields.slice(0, 8).reduce((a, b) => a + b, 0) - fields[3] - fields[4];
  const used = { machine: busy / TICKS_PER_SECOND, tab: 0, chromium: 0, workers: 0, server: 0 };
  for (const { cmdline, cpu } of processesBelow(rootPid)) {
    const kind = cmdline.includes('disktro-worker') ? 'workers'
      : cmdline.includes('disktro-server') ? 'server'
        : isTabRenderer(cmdline) ? 'tab'
          : cmdline.includes('chrom') ? 'chromium' : undefined;
    if (kind) used[kind] += cpu ?? 0;
  }
  return used;
}

/** What `cpuSeconds` counted between `before` and `after`, per second of `seconds`, in cores. */
function cpuShare(before, after, seconds) {
  const cores = (kind) => ((after[kind] - before[kind]) / seconds).toFixed(2);
  return `CPU ${cores('machine')} of ${cpus().length} cores: tab ${cores('tab')}, rest of Chromium ${cores('chromium')}, `
    + `workers ${cores('workers')}, server ${cores('server')}`;
}

/**
 * CPU time used so far by each thread of the renderer processes `pids` (seconds), keyed by
 * thread id, with the thread's name: the tab's main thread (`chromium`), the pipeline's Web
 * Worker (`DedicatedWorker`), the download's service worker, Chromium's thread pool (where
 * WebCrypto runs) and IO thread.
 */
function threadSeconds(pids) {
  const threads = new Map();
  for (const pid of pids) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch { /* gone */ }
    for (const tid of tids) {
      try {
        const { name, cpu, faults } = parseStat(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8'));
        threads.set(tid, { name, cpu, faults });
      } catch { /* gone */ }
    }
  }
  return threads;
}

/**
 * The tab's busiest threads between `before` and `after`, in cores (≥ 0.05 only), each with the
 * MiB of fresh pages it touched per second (a page fault each: new buffers the kernel maps and
 * zeroes, where reused ones would cost nothing).
 */
function threadShare(before, after, seconds) {
  const busy = [...after].map(([tid, { name, cpu, faults }]) => {
    const was = before.get(tid);
    return {
      name,
      cores: (cpu - (was?.cpu ?? 0)) / seconds,
      faultMiB: ((faults - (was?.faults ?? 0)) * 4096) / MiB / seconds,
    };
  })
    .filter((t) => t.cores >= 0.05)
    .sort((a, b) => b.cores - a.cores);
  const line = busy.map((t) => `${t.name} ${t.cores.toFixed(2)} (${t.faultMiB.toFixed(0)} MiB/s faulted)`).join(', ');
  return `tab threads: ${line || 'none busy'}`;
}

/**
 * Run `run`, sampling the renderers' memory every 100 ms. The process tree is walked once a
 * second only: walking /proc at every sample cost the bench itself 40% of a core, taken from
 * the browser it measures.
 */
async function measure(browserPid, run) {
  const peak = { private: 0, rss: 0 };
  let pids = rendererPids(browserPid);
  let samples = 0;
  const sample = () => {
    if (++samples % 10 === 0) pids = rendererPids(browserPid);
    const now = rendererMemory(pids);
    peak.private = Math.max(peak.private, now.private);
    peak.rss = Math.max(peak.rss, now.rss);
  };
  const timer = setInterval(sample, 100);
  const threadsBefore = threadSeconds(pids);
  const cpuBefore = cpuSeconds(browserPid);
  const start = Date.now();
  try {
    await run();
  } finally {
    clearInterval(timer);
  }
  const seconds = (Date.now() - start) / 1000;
  const cpu = cpuShare(cpuBefore, cpuSeconds(browserPid), seconds);
  pids = rendererPids(browserPid);
  const threads = threadShare(threadsBefore, threadSeconds(pids), seconds);
  sample();
  return { seconds, peak, cpu, threads };
}

/** Sign up through the form, as a person would, past the recovery key; resolves on the files page. */
async function signUp(page, baseUrl, email, password = 'correct horse battery staple') {
  await page.goto(`${baseUrl}/signup`);
  // Enabled once the page has hydrated.
  await page.waitFor('[data-testid=auth-submit]:not([disabled])', 60_000);
  await page.evaluate(({ email, password }) => {
    for (const [name, value] of [['email', email], ['password', password], ['confirm', password]]) {
      const input = document.querySelector(`input[name=${name}]`);
      input.value = value;
      input.dispatchEvent(new Event('input', { bubbles: true }));
    }
    document.querySelector('[data-testid=auth-submit]').click();
  }, { email, password });
  // The recovery key panel comes first: confirm the key was saved, then go on to the files.
  await page.waitFor('[data-testid=recovery-saved]', 120_000);
  await page.evaluate(() => {
    const saved = document.querySelector('[data-testid=recovery-saved]');
    if (!saved.checked) saved.click();
  });
  // "Continue" is enabled once the tick has been taken.
  await page.waitFor('[data-testid=recovery-done]:not([disabled])', 10_000);
  await page.evaluate(() => document.querySelector('[data-testid=recovery-done]').click());
  await page.waitFor('[data-testid=dropzone]', 120_000);
}

/**
 * Wait (up to 60 s) until the files list shows a row for `name`, then click its `click` button
 * (test id); with `gone`, wait until it shows none.
 */
function onRow(page, name, { click, gone = false }) {
  return page.evaluate(({ name, click, gone }) => new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      const row = [...document.querySelectorAll('[data-testid=file-row]')].find((r) => r.textContent.includes(name));
      if (Boolean(row) !== gone) {
        clearInterval(timer);
        if (click) row.querySelector(`[data-testid=${click}]`).click();
        resolve(true);
      } else if (Date.now() - started > 60_000) {
        clearInterval(timer);
        reject(new Error(`the files list ${gone ? 'still shows' : 'shows no'} row for ${name}`));
      }
    }, 20);
  }), { name, click, gone });
}

const memory = (m) => `${m.private.toFixed(0)} MiB (RSS ${m.rss.toFixed(0)} MiB)`;

/**
 * Upload (and, unless `uploadOnly`, download) 256 MiB of each kind in `kinds` through `net` in a
 * fresh tab; each figure is printed as `browser/<direction>/<kind><suffix>`.
 */
async function measureOn(net, kinds, { suffix = '', note = '', uploadOnly = false } = {}) {
  const downloads = mkdtempSync(path.join(tmpdir(), 'disktro-bench-downloads-'));
  const chromium = await launchBare({ downloads });
  try {
    // Chromium is a child of this process; its renderers are further down.
    const browserPid = process.pid;
    // No save picker: headless, nobody could answer it; downloads take the service worker stream.
    const page = await chromium.newPage({
      initScript: 'delete window.showSaveFilePicker;',
      onConsole: process.env.BENCH_BROWSER_CONSOLE ? (line) => console.log(`console: ${line}`) : undefined,
    });
    await signUp(page, net.url, 'bench@example.org');
    for (const kind of kinds) {
      const name = `bench-${kind}.bin`;
      const file = await writeTestFile(name, SIZE, { text: kind === 'text' });
      const want = await sha256File(file);
      // The file just written goes to the disk first: its writeback is the bench's, not the
      // upload's (the workers' shards share this disk).
      execFileSync('sync');
      await page.goto(`${net.url}/files`);
      await page.waitFor('[data-testid=dropzone]');
      if (kind === kinds[0] && !suffix) {
        console.log(`browser/idle: tab memory ${memory(rendererMemory(rendererPids(browserPid)))} before the first upload`);
      }
      const up = await measure(browserPid, async () => {
        await page.setInputFiles('[data-testid=file-input]', [file]);
        await page.waitFor('[data-testid=transfer][data-state=done]');
      });
      console.log(`browser/upload/${kind}${suffix}: ${(SIZE / 1e6 / up.seconds).toFixed(1)} MB/s, peak tab memory ${memory(up.peak)} (${SIZE / MiB} MiB${note}); ${up.cpu}`);
      console.log(`  ${up.threads}`);
      if (!uploadOnly) {
        let saved;
        const down = await measure(browserPid, async () => {
          saved = await chromium.download(() => onRow(page, name, { click: 'download' }));
        });
        const got = await sha256File(saved);
        if (got !== want) throw new Error(`browser bench: the ${kind} download differs from the upload`);
        console.log(`browser/download/${kind}${suffix}: ${(SIZE / 1e6 / down.seconds).toFixed(1)} MB/s, peak tab memory ${memory(down.peak)} (${SIZE / MiB} MiB${note}); ${down.cpu}`);
        console.log(`  ${down.threads}`);
        rmSync(saved);
      }
      rmSync(file);
      // Delete it again so the next run starts from the same state (the confirmation is accepted).
      await onRow(page, name, { click: 'delete' });
      await onRow(page, name, { gone: true });
    }
  } finally {
    await chromium.close();
    rmSync(downloads, { recursive: true, force: true });
  }
}

// `BENCH_BROWSER_NARROW=0` leaves out the 10-worker network (to measure 9 + 6 alone).
if (process.env.BENCH_BROWSER_NARROW !== '0') {
  const net = await startNetwork({ workers: 10, heartbeat: 2 });
  try {
    await measureOn(net, KINDS);
  } finally {
    await net.stop();
  }
}

// The redundancy policy's default on a network of 15 workers or more is 9 + 6 (15 shards per
// chunk, more parity per byte): the upload it costs the browser, on random data. `BENCH_BROWSER_WIDE=0`
// leaves it out.
if (process.env.BENCH_BROWSER_WIDE !== '0') {
  const wide = await startNetwork({ workers: 15, heartbeat: 2 });
  try {
    const policy = (await (await fetch(`${wide.url}/api/v1/durability`)).json()).policy;
    if (policy.data_shards !== 9 || policy.parity_shards !== 6) {
      throw new Error(`browser bench: 15 workers get ${policy.data_shards} + ${policy.parity_shards}, not 9 + 6`);
    }
    await measureOn(wide, ['random'], { suffix: '_9_6', note: '; 9 + 6 on 15 workers', uploadOnly: true });
  } finally {
    await wide.stop();
  }
}
