// How many fresh pages each kind of buffer costs the tab, in real Chromium (not part of
// `make bench`; run by hand: `node end2end/bench-faults.mjs`). A dedicated worker, as the upload
// pipeline is, passes 256 MiB through one kind of buffer at a time, at several sizes: Blob reads,
// WebCrypto AES-GCM calls, `new Uint8Array` left to the garbage collector or detached after use,
// WebSocket sends and received messages. Per line: the time per buffer (for received messages,
// for all of them) and the minor page faults of Chromium's renderer processes meanwhile (read
// from /proc), as MiB of fresh pages.
//
// Why it exists: page faults were a quarter of the machine's CPU in a profile of a browser
// upload, and which buffers fault decides what the pipeline can avoid. See BENCHMARKS.md for the
// figures on the benchmark machine.
import { createRequire } from 'node:module';
import { readFileSync, readdirSync } from 'node:fs';
import { runInWorker } from './bare.mjs';

const require = createRequire(import.meta.url);
// playwright-core (the tests' driver) bundles the `ws` package: a WebSocket server to send to.
const { wsServer } = require('playwright-core/lib/utilsBundle');

const TOTAL = 256 * 1024 * 1024;

const WORKER = (wsPort) => `
const MiB = 1 << 20;
const TOTAL = ${TOTAL};
const input = new Uint8Array(4 * MiB);
const sink = new Uint8Array(4 * MiB);
// One measured pass: \`steps\` buffers of one kind; the page server counts the faults around it.
async function pass(label, size, step, steps = Math.round(TOTAL / size)) {
  await fetch('/mark?start');
  const start = performance.now();
  for (let i = 0; i < steps; i++) await step(i);
  const ms = (performance.now() - start) / steps;
  const faults = await (await fetch('/mark?end')).text();
  return label + ' ' + (size / 1024).toFixed(0) + ' KiB: ' + ms.toFixed(2) + ' ms per buffer, ' + faults;
}
onmessage = async () => {
  const blob = new Blob([new Uint8Array(64 * MiB).fill(7)]);
  const key = await crypto.subtle.importKey('raw', new Uint8Array(32), 'AES-GCM', false, ['encrypt']);
  const iv = new Uint8Array(12);
  const ws = new WebSocket('ws://127.0.0.1:${wsPort}/');
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve) => { ws.onopen = resolve; });
  const lines = [];
  for (const size of [4 * MiB, 1 * MiB, 700000, 256 * 1024, 64 * 1024]) {
    const slices = Math.floor(64 * MiB / size);
    lines.push(await pass('Blob.arrayBuffer', size, async (i) => {
      sink.set(new Uint8Array(await blob.slice((i % slices) * size, (i % slices + 1) * size).arrayBuffer()));
    }));
    lines.push(await pass('AES-GCM encrypt', size, async () => {
      sink.set(new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, input.subarray(0, size)), 0, size));
    }));
    lines.push(await pass('new Uint8Array, collected', size, async () => {
      const b = new Uint8Array(size); b.set(input.subarray(0, size)); sink.set(b);
    }));
    lines.push(await pass('new Uint8Array, detached', size, async () => {
      const b = new Uint8Array(size); b.set(input.subarray(0, size)); sink.set(b); b.buffer.transfer(0);
    }));
    lines.push(await pass('WebSocket.send', size, async () => {
      ws.send(input.subarray(0, size));
      while (ws.bufferedAmount > 8 * MiB) await new Promise((resolve) => setTimeout(resolve, 1));
    }));
    let received = 0;
    let done;
    ws.onmessage = (e) => { sink.set(new Uint8Array(e.data)); received += e.data.byteLength; if (received >= TOTAL) done(); };
    lines.push(await pass('WebSocket message received', size, () => new Promise((resolve) => {
      done = resolve;
      ws.send('send ' + size);
    }), 1));
  }
  postMessage(lines.join('\\n'));
};`;

/** Minor page faults of every Chromium renderer process so far. */
function rendererFaults() {
  let faults = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      faults += Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
    } catch { /* gone */ }
  }
  return faults;
}

// Sends `TOTAL` bytes in messages of the size asked for ('send <size>'), and swallows the rest.
const sockets = new wsServer({ port: 0, host: '127.0.0.1' });
await new Promise((resolve) => sockets.once('listening', resolve));
sockets.on('connection', (socket) => socket.on('message', (message, binary) => {
  if (binary) return;
  const size = Number(String(message).split(' ')[1]);
  const bytes = Buffer.alloc(size);
  let left = Math.ceil(TOTAL / size);
  const feed = () => {
    while (left > 0 && socket.bufferedAmount < 16 * 1024 * 1024) { socket.send(bytes); left--; }
    if (left > 0) setTimeout(feed, 1);
  };
  feed();
}));

let faultsAtStart = 0;
try {
  console.log(await runInWorker(WORKER(sockets.address().port), {
    '/mark?start': () => {
      faultsAtStart = rendererFaults();
      return '';
    },
    '/mark?end': () => {
      const faults = rendererFaults() - faultsAtStart;
      return `${faults} faults (${(faults * 4096 / 1024 / 1024).toFixed(0)} MiB of fresh pages per ${TOTAL / 1024 / 1024} MiB)`;
    },
  }));
} finally {
  sockets.close();
}
