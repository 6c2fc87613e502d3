// The socket relay: the pipeline worker's WebSockets to storage workers, on a thread that does
// nothing else (`app/src/browser/link.rs` says why). It opens, sends and closes what the pipeline
// asks, and passes on what arrives. Frames come in transferred buffers, which go back once sent
// (WebSocket.send has copied them by then) so the pipeline can reuse them.
//
// From the pipeline: {op: 'open', id, url}, {op: 'send', id, data, len}, {op: 'close', id},
// {op: 'stop'} (no links left: end).
// To the pipeline: {op: 'open', id}, {op: 'message', id, data, buffered},
// {op: 'sent', id, data, buffered}, {op: 'close', id, code, reason}.
const sockets = new Map();

function open(id, url) {
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (e) {
    self.postMessage({ op: 'close', id, code: 1006, reason: String(e && e.message ? e.message : e) });
    return;
  }
  ws.binaryType = 'arraybuffer';
  sockets.set(id, ws);
  ws.onopen = () => self.postMessage({ op: 'open', id });
  ws.onmessage = (e) => {
    // Workers answer in binary frames; a text frame is passed on for the pipeline to refuse.
    const transfer = e.data instanceof ArrayBuffer ? [e.data] : [];
    self.postMessage({ op: 'message', id, data: e.data, buffered: ws.bufferedAmount }, transfer);
  };
  ws.onclose = (e) => {
    sockets.delete(id);
    self.postMessage({ op: 'close', id, code: e.code, reason: e.reason });
  };
}

self.onmessage = ({ data: m }) => {
  if (m.op === 'open') {
    open(m.id, m.url);
  } else if (m.op === 'send') {
    const ws = sockets.get(m.id);
    // A socket that closed meanwhile has told the pipeline so; the frame is dropped.
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(new Uint8Array(m.data, 0, m.len));
    self.postMessage({ op: 'sent', id: m.id, data: m.data, buffered: ws ? ws.bufferedAmount : 0 }, [m.data]);
  } else if (m.op === 'close') {
    const ws = sockets.get(m.id);
    sockets.delete(m.id);
    if (ws) {
      ws.onclose = null;
      ws.close();
    }
  } else if (m.op === 'stop') {
    // The pipeline has no links left: close whatever is still open and end this thread.
    for (const ws of sockets.values()) {
      ws.onclose = null;
      ws.close();
    }
    sockets.clear();
    self.close();
  }
};
