//! Reading a picked or dropped file chunk by chunk, for the upload: its byte stream read ahead
//! into a few reused buffers.
//!
//! `Blob.slice(…).arrayBuffer()` gives every chunk a fresh `ArrayBuffer`, which Chromium maps
//! page by page from the kernel (a zeroed page per 4 KiB) and unmaps once collected: on this
//! 2-core machine that cost the pipeline thread more than the reading itself (512 MiB in 4 MiB
//! slices: 1.0 s of CPU, 560 MiB of pages faulted in). The file's stream read with a BYOB
//! ("bring your own buffer") reader fills buffers the reader hands back each time, so a few are
//! allocated once (the same 512 MiB: 0.4 s, 16 MiB faulted). A task of its own reads
//! [`READS_AHEAD`] chunks ahead of the one being encoded, whenever the pipeline thread awaits.
//! Where a file's stream is not a byte stream (Safari before 26.4 has no BYOB readers), each
//! chunk is read with `Blob.slice` as before and copied into the reused buffer.

use futures_channel::mpsc;
use futures_util::StreamExt as _;
use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::JsCast as _;
use wasm_bindgen_futures::JsFuture;

use super::js;
use crate::browser::Failure;

/// Chunks read ahead of the one being encoded, each in a buffer of its own.
pub const READS_AHEAD: usize = 3;

/// A filled buffer and how many of its bytes are the chunk's.
type Filled = Result<(ArrayBuffer, usize), Failure>;

/// The chunks of one file, in order.
#[derive(Debug)]
pub struct ChunkReader {
    filled: mpsc::UnboundedReceiver<Filled>,
    /// Buffers copied out, back to the reading task.
    empty: mpsc::UnboundedSender<ArrayBuffer>,
}

impl ChunkReader {
    /// Start reading `file` (`size` bytes) as `chunk_count` chunks of `chunk_size` bytes (the
    /// last one shorter); reading ends with the last chunk or when the reader is dropped.
    pub fn new(file: &web_sys::Blob, size: u64, chunk_size: u64, chunk_count: u64) -> Self {
        let (filled_tx, filled) = mpsc::unbounded();
        let (empty, empty_rx) = mpsc::unbounded();
        let buffers = usize::try_from(chunk_count).unwrap_or(usize::MAX).min(READS_AHEAD);
        let buffer_len = u32::try_from(chunk_size.min(size)).unwrap_or(u32::MAX);
        for _ in 0..buffers {
            let _ = empty.unbounded_send(ArrayBuffer::new(buffer_len));
        }
        let stream = Stream::open(file);
        wasm_bindgen_futures::spawn_local(read_ahead(stream, size, chunk_size, chunk_count, empty_rx, filled_tx));
        Self { filled, empty }
    }

    /// The next chunk's bytes into the start of `into`, and how many; a chunk shorter than its
    /// place in the file (or a file the browser can no longer read) means the file changed
    /// while being read.
    pub async fn next_into(&mut self, into: &mut [u8]) -> Result<usize, Failure> {
        let (buffer, len) = self
            .filled
            .next()
            .await
            .ok_or_else(|| Failure::browser("read past the file's last chunk"))??;
        let into = into
            .get_mut(..len)
            .ok_or_else(|| Failure::browser("a chunk is larger than its buffer"))?;
        Uint8Array::new_with_byte_offset_and_length(&buffer, 0, u32::try_from(len).unwrap_or(u32::MAX)).copy_to(into);
        let _ = self.empty.unbounded_send(buffer);
        Ok(len)
    }
}

/// Fill each buffer handed back with the next chunk, until the last chunk or until the
/// [`ChunkReader`] is gone.
async fn read_ahead(
    mut stream: Stream,
    size: u64,
    chunk_size: u64,
    chunk_count: u64,
    mut empty: mpsc::UnboundedReceiver<ArrayBuffer>,
    filled: mpsc::UnboundedSender<Filled>,
) {
    for index in 0..chunk_count {
        let Some(buffer) = empty.next().await else {
            break;
        };
        let start = index.saturating_mul(chunk_size);
        let len = usize::try_from(chunk_size.min(size.saturating_sub(start))).unwrap_or(usize::MAX);
        let read = stream.fill(buffer, start, len).await;
        let failed = read.is_err();
        if filled.unbounded_send(read.map(|buffer| (buffer, len))).is_err() || failed {
            break;
        }
    }
    stream.cancel();
}

/// A file read in order: its byte stream under a BYOB reader, or slice by slice where the
/// browser has no BYOB reader for it.
struct Stream {
    file: web_sys::Blob,
    reader: Option<web_sys::ReadableStreamByobReader>,
}

impl Stream {
    fn open(file: &web_sys::Blob) -> Self {
        Self {
            file: file.clone(),
            reader: byob_reader(file),
        }
    }

    /// Read the `len` bytes at `start` into the start of `buffer` and hand it back (a BYOB read
    /// detaches the buffer it is given and returns it in the view it resolves with). Chunks are
    /// read in order: the stream's position is the chunk's start.
    async fn fill(&mut self, buffer: ArrayBuffer, start: u64, len: usize) -> Result<ArrayBuffer, Failure> {
        let len = u32::try_from(len).map_err(|_| Failure::browser("a chunk is larger than 4 GiB"))?;
        match &self.reader {
            Some(reader) => fill_from_stream(reader, buffer, len).await,
            None => fill_from_slice(&self.file, buffer, start, len).await,
        }
    }

    /// Stop reading: the browser lets go of the file. A stream that failed (the file changed)
    /// rejects the cancel with its error, which is already reported: awaited and dropped, not
    /// left to surface as an unhandled rejection.
    fn cancel(&self) {
        if let Some(reader) = &self.reader {
            let cancelled = JsFuture::from(reader.cancel());
            wasm_bindgen_futures::spawn_local(async move {
                let _ = cancelled.await;
            });
        }
    }
}

/// A BYOB reader of `file`'s stream, or `None` where the browser's file streams are not byte
/// streams (`getReader({mode: "byob"})` throws there).
fn byob_reader(file: &web_sys::Blob) -> Option<web_sys::ReadableStreamByobReader> {
    let stream = file.stream();
    let options = web_sys::ReadableStreamGetReaderOptions::new();
    options.set_mode(web_sys::ReadableStreamReaderMode::Byob);
    let get_reader = js::field(&stream, "getReader")?.dyn_into::<js_sys::Function>().ok()?;
    get_reader.call1(&stream, &options).ok()?.dyn_into().ok()
}

fn read_failed(e: &wasm_bindgen::JsValue) -> Failure {
    // Chromium says only "network error" when the file changed after it was picked.
    Failure::browser(format!(
        "cannot read the file ({}): was it changed, moved or deleted after it was picked?",
        js::describe(e)
    ))
}

fn file_changed() -> Failure {
    Failure::browser("the file changed while being read")
}

async fn fill_from_stream(
    reader: &web_sys::ReadableStreamByobReader,
    mut buffer: ArrayBuffer,
    len: u32,
) -> Result<ArrayBuffer, Failure> {
    let mut at = 0;
    while at < len {
        let view = Uint8Array::new_with_byte_offset_and_length(&buffer, at, len - at);
        let result = JsFuture::from(reader.read_with_array_buffer_view(&view))
            .await
            .map_err(|e| read_failed(&e))?;
        // The stream ended before the chunk did: the file is shorter than when picked.
        if js::field(&result, "done").and_then(|d| d.as_bool()).unwrap_or(false) {
            return Err(file_changed());
        }
        let value = js::field(&result, "value")
            .and_then(|v| v.dyn_into::<Uint8Array>().ok())
            .ok_or_else(|| Failure::browser("the file's stream gave no buffer back"))?;
        buffer = value.buffer();
        at += value.byte_length();
    }
    Ok(buffer)
}

async fn fill_from_slice(
    file: &web_sys::Blob,
    buffer: ArrayBuffer,
    start: u64,
    len: u32,
) -> Result<ArrayBuffer, Failure> {
    let end = start + u64::from(len);
    let slice = file
        .slice_with_f64_and_f64(start as f64, end as f64)
        .map_err(|e| Failure::js(&e))?;
    let read = JsFuture::from(slice.array_buffer())
        .await
        .map_err(|e| read_failed(&e))?;
    let read = Uint8Array::new(&read);
    if read.length() != len {
        return Err(file_changed());
    }
    Uint8Array::new_with_byte_offset_and_length(&buffer, 0, len).set(&read, 0);
    Ok(buffer)
}
