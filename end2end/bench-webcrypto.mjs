// What one WebCrypto call costs the calling thread, by input size, in real Chromium (not part of
// `make bench`; run by hand: `node end2end/bench-webcrypto.mjs`). A dedicated worker, as the
// upload pipeline is, seals 256 MiB through AES-256-GCM and AES-CTR in calls of each size, four
// calls in flight, and reads a 64 MiB Blob in slices of each size. Per line: the time spent
// inside the calls themselves on the worker's thread (ms per MiB; WebCrypto copies its input
// there) and the throughput with the results awaited.
//
// Why it exists: in a profile of a browser upload, the pipeline thread spent about 40% of its
// time in page faults, most under `crypto.subtle.encrypt` of 4 MiB chunks. Chromium maps a fresh
// buffer for each allocation over about 1 MiB, so each such call faults its copies in page by
// page; see BENCHMARKS.md for the figures on the benchmark machine.
import { runInWorker } from './bare.mjs';

const WORKER = `
const MiB = 1 << 20;
async function calls(label, size, total, call) {
  const input = new Uint8Array(size);
  const n = Math.round(total / size);
  let inside = 0;
  const inFlight = [];
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    inFlight.push(call(input));
    inside += performance.now() - t;
    if (inFlight.length >= 4) await inFlight.shift();
  }
  await Promise.all(inFlight);
  const seconds = (performance.now() - start) / 1000;
  return label + ' ' + size / 1024 + ' KiB: ' + (inside / (total / MiB)).toFixed(2) + ' ms/MiB inside the calls, ' +
    (total / 1e6 / seconds).toFixed(0) + ' MB/s';
}
onmessage = async () => {
  const total = 256 * MiB;
  const sizes = [4 * MiB, 2 * MiB, 1 * MiB, 960 * 1024, 768 * 1024, 512 * 1024, 256 * 1024];
  const gcm = await crypto.subtle.importKey('raw', new Uint8Array(32), 'AES-GCM', false, ['encrypt']);
  const ctr = await crypto.subtle.importKey('raw', new Uint8Array(32), 'AES-CTR', false, ['encrypt']);
  const iv = new Uint8Array(12);
  const counter = new Uint8Array(16);
  const blob = new Blob([new Uint8Array(64 * MiB)]);
  const lines = [];
  for (const size of sizes) lines.push(await calls('AES-GCM', size, total, (d) => crypto.subtle.encrypt({ name: 'AES-GCM', iv }, gcm, d)));
  for (const size of sizes) lines.push(await calls('AES-CTR', size, total, (d) => crypto.subtle.encrypt({ name: 'AES-CTR', counter, length: 32 }, ctr, d)));
  for (const size of sizes) {
    let offset = 0;
    lines.push(await calls('Blob.arrayBuffer', size, total, () => {
      const slice = blob.slice(offset, offset + size);
      offset = (offset + size) % (64 * MiB);
      return slice.arrayBuffer();
    }));
  }
  postMessage(lines.join('\\n'));
};`;

console.log(await runInWorker(WORKER));
