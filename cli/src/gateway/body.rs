//! Bodies between HTTP and the codec, in bounded memory.
//!
//! - [`CheckedReader`]: a request body as the blocking `Read` the upload pipeline takes, a few
//!   frames at a time. It hashes what passes (MD5 for the ETag, SHA-256 when the signature
//!   declared one) and fails before handing over the last bytes when the body is shorter or
//!   longer than its `Content-Length`, or does not match `Content-MD5` or the signed hash: the
//!   upload then fails and is cancelled, so nothing half-checked is ever committed.
//! - [`ChannelWriter`]: the blocking `Write` the download pipeline fills, as a response body
//!   stream, a few frames at a time.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::{Body, Bytes};
use futures_util::StreamExt as _;
use md5::Md5;
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;

/// Frames of a body in flight between its task and the pipeline's thread.
const FRAMES_QUEUED: usize = 8;
/// Most bytes in one frame of a response body.
const FRAME: usize = 256 << 10;

/// What a body must match.
#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub length: u64,
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
}

/// Digests of a body that arrived whole.
#[derive(Debug, Clone, Copy, Default)]
pub struct Digests {
    pub md5: [u8; 16],
}

/// A request body read on a blocking thread, checked as it passes.
pub struct CheckedReader {
    frames: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
    expect: Expect,
    received: u64,
    md5: Md5,
    sha256: Option<Sha256>,
    /// Sent when the body checked out whole.
    done: Option<tokio::sync::oneshot::Sender<Digests>>,
}

impl std::fmt::Debug for CheckedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedReader")
            .field("received", &self.received)
            .finish()
    }
}

impl CheckedReader {
    /// Read `body` (on a task of the current runtime) expecting `expect`; the receiver learns the
    /// body's digests once it arrived whole and checked.
    pub fn new(body: Body, expect: Expect) -> (Self, tokio::sync::oneshot::Receiver<Digests>) {
        let (tx, frames) = mpsc::channel(FRAMES_QUEUED);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            while let Some(frame) = stream.next().await {
                let frame = frame.map_err(|e| format!("the request body broke off: {e}"));
                let failed = frame.is_err();
                if tx.send(frame).await.is_err() || failed {
                    return;
                }
            }
        });
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let sha256 = expect.sha256.map(|_| Sha256::new());
        let reader = Self {
            frames,
            current: Bytes::new(),
            expect,
            received: 0,
            md5: Md5::new(),
            sha256,
            done: Some(done_tx),
        };
        (reader, done_rx)
    }

    /// Take the next frame, hashing it; at the declared length, check the whole body.
    fn next_frame(&mut self) -> io::Result<bool> {
        let Some(frame) = self.frames.blocking_recv() else {
            if self.received < self.expect.length {
                return Err(invalid(format!(
                    "IncompleteBody: the body ended after {} of its {} bytes",
                    self.received, self.expect.length
                )));
            }
            return Ok(false);
        };
        let frame = frame.map_err(invalid)?;
        self.received += frame.len() as u64;
        if self.received > self.expect.length {
            return Err(invalid(format!(
                "IncompleteBody: the body is longer than its Content-Length of {}",
                self.expect.length
            )));
        }
        self.md5.update(&frame);
        if let Some(sha) = &mut self.sha256 {
            sha.update(&frame);
        }
        if self.received == self.expect.length {
            self.check()?;
        }
        self.current = frame;
        Ok(true)
    }

    fn check(&mut self) -> io::Result<()> {
        let md5: [u8; 16] = std::mem::take(&mut self.md5).finalize().into();
        if self.expect.md5.is_some_and(|want| want != md5) {
            return Err(invalid("BadDigest: the body does not match its Content-MD5".to_owned()));
        }
        if let (Some(want), Some(sha)) = (self.expect.sha256, self.sha256.take())
            && <[u8; 32]>::from(sha.finalize()) != want
        {
            return Err(invalid(
                "XAmzContentSHA256Mismatch: the body does not match its x-amz-content-sha256".to_owned(),
            ));
        }
        if let Some(done) = self.done.take() {
            let _ = done.send(Digests { md5 });
        }
        Ok(())
    }
}

impl Read for CheckedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.expect.length == 0 && self.done.is_some() {
            self.check()?;
        }
        while self.current.is_empty() {
            if self.received == self.expect.length || !self.next_frame()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The download pipeline's output as a response body: written on a blocking thread, streamed by
/// the runtime. Bytes before `skip` are dropped and the stream ends after `take` bytes (a range).
pub struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    skip: u64,
    remaining: Arc<AtomicU64>,
}

impl std::fmt::Debug for ChannelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelWriter")
            .field("remaining", &self.remaining)
            .finish()
    }
}

/// The error a writer returns once its range is complete, which ends the download early.
const RANGE_DONE: &str = "the requested range is complete";

/// What the gateway keeps of a [`ChannelWriter`] it handed to a download: to end the body with
/// an error when the download fails before the body is complete.
#[derive(Debug)]
pub struct BodyEnd {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    remaining: Arc<AtomicU64>,
}

impl BodyEnd {
    /// The download failed: unless every byte of the body went out (a range ends downloads
    /// early, on purpose), cut the body so the client sees a short read, never a wrong one.
    pub async fn failed(self, message: String) {
        if self.remaining.load(Ordering::Relaxed) > 0 {
            let _ = self.tx.send(Err(io::Error::other(message))).await;
        }
    }
}

impl ChannelWriter {
    /// A writer, the body it feeds, and its end for failures.
    pub fn new(skip: u64, take: u64) -> (Self, Body, BodyEnd) {
        let (tx, rx) = mpsc::channel::<Result<Bytes, io::Error>>(FRAMES_QUEUED);
        let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        let remaining = Arc::new(AtomicU64::new(take));
        let end = BodyEnd {
            tx: tx.clone(),
            remaining: Arc::clone(&remaining),
        };
        (Self { tx, skip, remaining }, Body::from_stream(stream), end)
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Both at most buf.len(), a usize.
        let dropped = usize::try_from(self.skip).map_or(buf.len(), |skip| skip.min(buf.len()));
        self.skip -= dropped as u64;
        let part = &buf[dropped..];
        if part.is_empty() {
            return Ok(buf.len());
        }
        let remaining = self.remaining.load(Ordering::Relaxed);
        if remaining == 0 {
            return Err(io::Error::other(RANGE_DONE));
        }
        let kept = usize::try_from(remaining).map_or(part.len(), |r| r.min(part.len()));
        // In frames of at most FRAME bytes: a queue of whole 4 MiB chunks per download would
        // cost 32 MiB for each reader of a large object.
        for frame in part[..kept].chunks(FRAME) {
            self.tx
                .blocking_send(Ok(Bytes::copy_from_slice(frame)))
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        }
        self.remaining.store(remaining - kept as u64, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
