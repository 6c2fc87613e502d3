// What reading a file on disk costs the tab in fresh memory, the two ways the browser upload can
// read it (app/src/browser/file_read.rs): 512 MiB as 4 MiB `Blob.slice(…).arrayBuffer()`s (each
// a fresh buffer; the fallback where a file's stream has no BYOB reader), and through the file's
// stream into one reused 4 MiB buffer with a BYOB reader (what it does otherwise). Prints, for
// each, the time, the renderers' CPU and the MiB of pages they faulted in (each a page the kernel
// maps and zeroes). The other buffers of the pipeline (WebCrypto's, WebSocket messages, fresh
// `ArrayBuffer`s, at several sizes) are `end2end/bench-faults.mjs`'s, on an in-memory Blob.
// Run by hand: `node end2end/faults-probe.mjs` (Chromium at /usr/bin/chromium or $CHROMIUM).
import { launchBare } from './bare.mjs';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

// A 64 MiB file on disk, read 8 times over.
const dir = mkdtempSync(path.join(tmpdir(), 'disktro-faults-'));
const file = path.join(dir, 'probe.bin');
writeFileSync(file, randomBytes(64 << 20));

const server = createServer((req, res) => { res.setHeader('content-type', 'text/html'); res.end('<!doctype html><title>p</title><input type=file id=f>'); });
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;
const chromium = await launchBare({ downloads: tmpdir() });
const page = await chromium.newPage();
await page.goto(url);
await page.setInputFiles('#f', [file]);
function renderers() {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try { const c = readFileSync(`/proc/${e}/cmdline`, 'utf8'); if (c.includes('--type=renderer')) out.push(Number(e)); } catch {}
  }
  return out;
}
function stat(pid) {
  let s;
  try { s = readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return { faults: 0, cpu: 0 }; }
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { faults: Number(f[7]), cpu: (Number(f[11]) + Number(f[12])) / 100 };
}
let pids = renderers();
async function probe(name, fn, arg) {
  pids = renderers();
  const before = pids.map(stat);
  const t0 = Date.now();
  const r = await page.evaluate(fn, arg);
  const ms = Date.now() - t0;
  const after = pids.map(stat);
  const faults = after.reduce((a, s, i) => a + s.faults - before[i].faults, 0);
  const cpu = after.reduce((a, s, i) => a + s.cpu - before[i].cpu, 0);
  console.log(`${name}: ${ms} ms, renderer CPU ${cpu.toFixed(2)} s, faulted ${(faults * 4096 / 2 ** 20).toFixed(0)} MiB ${r ?? ''}`);
}
const TOTAL = 512 * 2 ** 20;
for (const slice of [4 << 20]) {
  await probe(`read ${slice >> 10} KiB slices`, async ({ slice, TOTAL }) => {
    const blob = document.getElementById('f').files[0];
    const size = blob.size;
    let done = 0; let sum = 0;
    const reads = [];
    let off = 0;
    while (done < TOTAL) {
      while (reads.length * slice < (12 << 20) && done + reads.length * slice < TOTAL) {
        const s = off % size; off += slice;
        reads.push(blob.slice(s, s + slice).arrayBuffer());
      }
      const b = await reads.shift();
      sum += b.byteLength; done += slice;
    }
    return sum;
  }, { slice, TOTAL });
}
await probe('stream byob into one 4 MiB buffer', async ({ TOTAL }) => {
  const blob = document.getElementById('f').files[0];
  let buf = new ArrayBuffer(4 << 20);
  let sum = 0; let chunks = 0;
  while (sum < TOTAL) {
    const reader = blob.stream().getReader({ mode: 'byob' });
    for (;;) {
      let filled = 0;
      while (filled < buf.byteLength) {
        const { value, done } = await reader.read(new Uint8Array(buf, filled));
        buf = value.buffer;
        if (done) break;
        filled += value.byteLength; chunks++;
      }
      sum += filled;
      if (filled < buf.byteLength) break;
    }
  }
  return `${sum} in ${chunks} reads`;
}, { TOTAL });
await chromium.close();
server.close();
rmSync(dir, { recursive: true, force: true });
