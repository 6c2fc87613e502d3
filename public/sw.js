// The download helper (service worker). A page announces a download with a MessagePort, then
// navigates to /_download/<id>; this answers with a stream the pipeline worker feeds through that
// port, so the browser saves the file as it arrives and memory stays at a few chunks. Nothing is
// cached and no other request is touched.
const announced = new Map();

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('message', (event) => {
  const d = event.data;
  if (!d || d.type !== 'download' || typeof d.id !== 'string' || event.ports.length !== 2) return;
  const [port, ack] = event.ports;
  announced.set(d.id, { port, name: String(d.name), mime: String(d.mime), size: Number(d.size) });
  // Forgotten if the page never asks for it.
  setTimeout(() => announced.delete(d.id), 60_000);
  ack.postMessage('ok');
});

function attachment(name) {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

self.addEventListener('fetch', (event) => {
  const url = new URL(event.request.url);
  if (url.origin !== self.location.origin || !url.pathname.startsWith('/_download/')) return;
  const id = url.pathname.slice('/_download/'.length);
  const d = announced.get(id);
  if (!d) return;
  announced.delete(id);
  let wake = null;
  const stream = new ReadableStream({
    start(controller) {
      d.port.onmessage = (m) => {
        const msg = m.data || {};
        // A view (possibly of part of a transferred buffer): enqueued as it is, not copied.
        if (msg.chunk) controller.enqueue(msg.chunk);
        else if (msg.done) controller.close();
        else if (msg.error) controller.error(new Error(msg.error));
        if (wake) { const w = wake; wake = null; w(); }
      };
    },
    // One chunk asked for per pull; the stream buffers at most its high-water mark.
    pull() {
      return new Promise((resolve) => { wake = resolve; d.port.postMessage({ pull: true }); });
    },
    cancel() { d.port.postMessage({ cancel: true }); },
  }, { highWaterMark: 4 });
  const headers = {
    'Content-Type': 'application/octet-stream',
    'Content-Disposition': attachment(d.name),
    'X-Content-Type-Options': 'nosniff',
  };
  if (Number.isFinite(d.size)) headers['Content-Length'] = String(d.size);
  event.respondWith(new Response(stream, { headers }));
});
