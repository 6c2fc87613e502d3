//! What a connection can make the worker buffer, counted at the socket, below the WebSocket
//! layer (which gathers a whole message before anyone sees it).
//!
//! The gate reads each WebSocket frame's header itself (RFC 6455 §5.2: flags, length, mask) and
//! lets the payload through only once it is allowed in whole:
//!
//! - **Before introduction** (no request with a valid token yet) the frames read and not yet
//!   handed on may hold at most [`MAX_INTRODUCTION_LEN`] bytes; a frame that would pass that
//!   waits (unread, in the kernel) until the connection is introduced, so a stranger's 16 MiB
//!   message costs the worker nothing. The WebSocket handshake is read under the same limit.
//! - **After introduction** a frame's whole payload is charged to the clients' memory pool
//!   before its first byte is read; when the pool is spent the worker stops reading (TCP pushes
//!   back). Whole frames, not bytes, so half-read frames never hold the pool between them and
//!   wait for each other. The message takes the charge over ([`Gate::consume`]).
//! - A frame whose sender stops in the middle pins its charge, so a connection whose socket
//!   gives nothing for the stall timeout in the middle of a frame is closed
//!   ([`Gate::stalled_for`]); so is one whose frame waited for the pool longer than the memory
//!   wait ([`Gate::waited_for`]), told to try again later.
//! - A message may come in several frames (Chromium sends large ones so), each charged as it
//!   comes. Messages whose first frames hold the pool while their next frame waits for it could
//!   wait on each other; the memory-wait rule closes such a connection, which breaks the wait.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use disktro_core::wire::MAX_INTRODUCTION_LEN;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::PollSemaphore;

/// The most charged for one frame: a frame larger than any message is refused by the WebSocket
/// layer as soon as it reads the header, before its payload is asked for.
const MAX_CHARGE: u64 = disktro_core::wire::MAX_FRAME_LEN as u64;

/// The shared state of one connection's gate.
#[derive(Debug, Default)]
pub struct Gate {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    introduced: bool,
    /// Payload bytes of frames let in and not yet handed on as messages.
    unconsumed: usize,
    /// The pool's bytes held for `unconsumed` (after introduction).
    held: Option<OwnedSemaphorePermit>,
    /// The reader, parked at the introduction limit.
    waker: Option<Waker>,
    /// When the socket last gave bytes.
    last_arrival: Option<Instant>,
    /// Whether the payload being read is incomplete (the sender owes bytes).
    mid_frame: bool,
    /// Since when a frame waits for the pool.
    waiting_since: Option<Instant>,
}

impl State {
    fn held(&self) -> usize {
        self.held.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

impl Gate {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A request carried a valid token: frames beyond the introduction limit may come in.
    pub fn introduce(&self) {
        let waker = {
            let mut state = self.state();
            state.introduced = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Whether a frame has been left half-sent: it was let in, its sender owes bytes and the
    /// socket gave nothing for `limit`. Such a frame pins its charge, so the connection is
    /// closed.
    pub fn stalled_for(&self, limit: Duration) -> bool {
        let state = self.state();
        state.mid_frame && state.last_arrival.is_some_and(|t| t.elapsed() > limit)
    }

    /// Whether a frame has waited for the pool longer than `limit`: the worker is overloaded
    /// (or held by stalled senders, who are closed meanwhile), and the client is better told
    /// to try again than left waiting in line.
    pub fn waited_for(&self, limit: Duration) -> bool {
        self.state().waiting_since.is_some_and(|t| t.elapsed() > limit)
    }

    /// A message of `len` payload bytes was handed on: returns the pool's bytes charged for it,
    /// which the message now holds.
    pub fn consume(&self, len: usize) -> Option<OwnedSemaphorePermit> {
        let mut state = self.state();
        state.unconsumed = state.unconsumed.saturating_sub(len);
        let take = len.min(state.held());
        let taken = match state.held.as_mut() {
            Some(held) if take == held.num_permits() => state.held.take(),
            Some(held) if take > 0 => held.split(take),
            _ => None,
        };
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        taken
    }

    /// Let a frame of `len` payload bytes in: within the introduction limit, or charged to the
    /// pool. `Pending` leaves it unread.
    fn admit(&self, len: u64, pool: &mut PollSemaphore, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let len = usize::try_from(len.min(MAX_CHARGE)).unwrap_or(usize::MAX);
        let mut state = self.state();
        if state.introduced {
            if len > 0 {
                match pool.poll_acquire_many(cx, u32::try_from(len).unwrap_or(u32::MAX)) {
                    Poll::Pending => {
                        state.waiting_since.get_or_insert_with(Instant::now);
                        return Poll::Pending;
                    }
                    Poll::Ready(None) => return Poll::Ready(Err(std::io::Error::other("memory pool closed"))),
                    Poll::Ready(Some(permit)) => match state.held.as_mut() {
                        Some(held) => held.merge(permit),
                        None => state.held = Some(permit),
                    },
                }
            }
        } else if state.unconsumed + len > MAX_INTRODUCTION_LEN {
            state.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
        state.unconsumed += len;
        state.waiting_since = None;
        // The sender's time to deliver the payload starts now, not at its header.
        state.last_arrival = Some(Instant::now());
        Poll::Ready(Ok(()))
    }
}

/// Where the reader is in the stream of frames.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// Reading a header: `have` of its bytes so far, `need` in all (2 until the length says).
    Header { bytes: [u8; 14], have: usize, need: usize },
    /// A header was read; its payload is not yet let in (`already` of its bytes came with the
    /// handshake's last read, before anything could be decided).
    Admit { len: u64, already: u64 },
    /// Reading a payload let in; `left` bytes of it to come.
    Payload { left: u64 },
}

const FIRST_HEADER: Framing = Framing::Header {
    bytes: [0; 14],
    have: 0,
    need: 2,
};

/// The header's full length once its first two bytes are known.
fn header_len(first_two: [u8; 2]) -> usize {
    let extended = match first_two[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if first_two[1] & 0x80 == 0 { 0 } else { 4 };
    2 + extended + mask
}

/// Walk bytes already read (the tail of the handshake's last read) through the framing. Returns
/// the payload bytes of frames that ended within them, counted as let in; a frame they end
/// inside of is left to be admitted whole (`Admit` with what it already has), so nothing more of
/// it is read unless it may be.
fn walk(framing: &mut Framing, mut bytes: &[u8]) -> usize {
    let mut complete = 0u64;
    while !bytes.is_empty() {
        match *framing {
            Framing::Header {
                bytes: header,
                have,
                need,
            } => {
                let (next, taken) = take_header(header, have, need, bytes);
                *framing = next;
                bytes = &bytes[taken..];
            }
            Framing::Admit { len, already } => {
                let n = (len - already).min(bytes.len() as u64);
                bytes = &bytes[usize::try_from(n).expect("at most the slice")..];
                let already = already + n;
                if already == len {
                    complete += len;
                    *framing = FIRST_HEADER;
                } else {
                    *framing = Framing::Admit { len, already };
                }
            }
            Framing::Payload { .. } => unreachable!("payloads start only once admitted"),
        }
    }
    // A frame with no payload that the bytes ended on is complete too.
    if let Framing::Admit { len: 0, .. } = framing {
        *framing = FIRST_HEADER;
    }
    usize::try_from(complete).unwrap_or(usize::MAX)
}

/// Add `input`'s first bytes to a header being read (as many as it lacks): the next state, and
/// how many bytes were taken.
fn take_header(mut header: [u8; 14], have: usize, need: usize, input: &[u8]) -> (Framing, usize) {
    let n = (need - have).min(input.len());
    header[have..have + n].copy_from_slice(&input[..n]);
    let have = have + n;
    let need = if have >= 2 {
        header_len([header[0], header[1]])
    } else {
        need
    };
    let next = if have == need {
        Framing::Admit {
            len: payload_len(&header[..need]),
            already: 0,
        }
    } else {
        Framing::Header {
            bytes: header,
            have,
            need,
        }
    };
    (next, n)
}

/// The payload length a complete header declares.
fn payload_len(header: &[u8]) -> u64 {
    match header[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([header[2], header[3]])),
        127 => u64::from_be_bytes(header[2..10].try_into().expect("8 bytes")),
        n => u64::from(n),
    }
}

/// A socket read through a [`Gate`].
#[derive(Debug)]
pub struct Metered<S> {
    inner: S,
    gate: Arc<Gate>,
    pool: PollSemaphore,
    /// `None` during the HTTP handshake, which is read under the introduction limit as is.
    framing: Option<Framing>,
    /// During the handshake, how much of the blank line ending the request was just read.
    end_of_request: usize,
}

impl<S> Metered<S> {
    pub fn new(inner: S, gate: Arc<Gate>, pool: Arc<Semaphore>) -> Self {
        Self {
            inner,
            gate,
            pool: PollSemaphore::new(pool),
            framing: None,
            end_of_request: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> Metered<S> {
    /// Read at most `room` bytes into `buf`, returning how many (0 at the end of the stream).
    fn read_some(&mut self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>, room: usize) -> Poll<std::io::Result<usize>> {
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(room.min(buf.remaining())));
        match Pin::new(&mut self.inner).poll_read(cx, &mut limited) {
            Poll::Ready(Ok(())) => {
                let n = limited.filled().len();
                buf.advance(n);
                if n > 0 {
                    self.gate.state().last_arrival = Some(Instant::now());
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let Some(framing) = this.framing else {
            // The handshake's HTTP request, read within the introduction limit (in reads of any
            // size: tungstenite takes many tiny reads for an attack). Bytes read past its blank
            // line are frames, and are walked through the framing here at once.
            let room = {
                let mut state = this.gate.state();
                let room = MAX_INTRODUCTION_LEN.saturating_sub(state.unconsumed);
                if room == 0 {
                    state.waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                room
            };
            let start = buf.filled().len();
            let n = std::task::ready!(this.read_some(cx, buf, room))?;
            let read = &buf.filled()[start..start + n];
            let end = read.iter().position(|&byte| {
                this.end_of_request = match (this.end_of_request, byte) {
                    (0 | 2, b'\r') | (1 | 3, b'\n') => this.end_of_request + 1,
                    (_, b'\r') => 1,
                    _ => 0,
                };
                this.end_of_request == 4
            });
            match end {
                Some(at) => {
                    this.gate.state().unconsumed = 0;
                    let mut framing = FIRST_HEADER;
                    let surplus = read[at + 1..].to_vec();
                    this.gate.state().unconsumed += walk(&mut framing, &surplus);
                    this.framing = Some(framing);
                }
                None => this.gate.state().unconsumed += n,
            }
            return Poll::Ready(Ok(()));
        };
        match framing {
            Framing::Header { bytes, have, need } => {
                let start = buf.filled().len();
                let n = std::task::ready!(this.read_some(cx, buf, need - have))?;
                this.framing = Some(take_header(bytes, have, need, &buf.filled()[start..start + n]).0);
                Poll::Ready(Ok(()))
            }
            Framing::Admit { len, already } => {
                std::task::ready!(this.gate.admit(len, &mut this.pool, cx))?;
                let left = len - already;
                this.framing = Some(if left == 0 {
                    FIRST_HEADER
                } else {
                    Framing::Payload { left }
                });
                this.gate.state().mid_frame = left > 0;
                // Go on to the payload (or, for an empty one, the next header).
                Pin::new(this).poll_read(cx, buf)
            }
            Framing::Payload { left } => {
                let room = usize::try_from(left).unwrap_or(usize::MAX);
                let n = std::task::ready!(this.read_some(cx, buf, room))?;
                let left = left - n as u64;
                if left == 0 {
                    this.framing = Some(FIRST_HEADER);
                    this.gate.state().mid_frame = false;
                } else {
                    this.framing = Some(Framing::Payload { left });
                }
                Poll::Ready(Ok(()))
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, bytes)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: w\r\n\r\n";

    fn header(len: u64, fin: bool) -> Vec<u8> {
        let mut h = vec![if fin { 0x82 } else { 0x02 }, 0x80 | 127];
        h.extend_from_slice(&len.to_be_bytes());
        h.extend_from_slice(&[0; 4]);
        h
    }

    /// Read whatever comes within 100 ms.
    async fn drain<S: AsyncRead + Unpin>(metered: &mut Metered<S>) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0; 1 << 20];
        while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(100), metered.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    }

    fn metered(
        pool: usize,
    ) -> (
        tokio::io::DuplexStream,
        Metered<tokio::io::DuplexStream>,
        Arc<Gate>,
        Arc<Semaphore>,
    ) {
        let (client, server) = tokio::io::duplex(1 << 20);
        let gate = Arc::new(Gate::default());
        let pool = Arc::new(Semaphore::new(pool));
        let metered = Metered::new(server, Arc::clone(&gate), Arc::clone(&pool));
        (client, metered, gate, pool)
    }

    #[tokio::test]
    async fn a_strangers_large_frame_is_not_read_until_it_is_introduced() {
        let (mut client, mut metered, gate, pool) = metered(1 << 20);
        // The request with a large frame right behind it, in one write.
        let mut sent = REQUEST.to_vec();
        sent.extend_from_slice(&header(200_000, true));
        sent.extend_from_slice(&vec![7; 200_000]);
        client.write_all(&sent).await.unwrap();
        let got = drain(&mut metered).await;
        assert_eq!(
            got.len(),
            MAX_INTRODUCTION_LEN,
            "one read within the limit, then nothing"
        );
        assert_eq!(got, sent[..got.len()]);
        assert_eq!(
            pool.available_permits(),
            1 << 20,
            "strangers are held back, not charged"
        );
        gate.introduce();
        let rest = drain(&mut metered).await;
        assert_eq!(got.len() + rest.len(), sent.len());
        assert_eq!(pool.available_permits(), (1 << 20) - 200_000, "charged until handed on");
        drop(gate.consume(200_000));
        assert_eq!(pool.available_permits(), 1 << 20, "every charged byte comes back");
    }

    #[tokio::test]
    async fn frames_read_with_the_handshake_are_walked_not_skipped() {
        let (mut client, mut metered, gate, _pool) = metered(1 << 20);
        // The request, two small frames and the header of a large one, in one write.
        let mut sent = REQUEST.to_vec();
        for len in [100u64, 200] {
            sent.extend_from_slice(&header(len, true));
            sent.extend_from_slice(&vec![1; usize::try_from(len).unwrap()]);
        }
        sent.extend_from_slice(&header(100_000, true));
        client.write_all(&sent).await.unwrap();
        let got = drain(&mut metered).await;
        assert_eq!(got, sent, "all of it: the large frame's payload has not come yet");
        client.write_all(&vec![2; 100_000]).await.unwrap();
        assert!(drain(&mut metered).await.is_empty(), "a stranger's large frame waits");
        drop(gate.consume(100));
        drop(gate.consume(200));
        gate.introduce();
        assert_eq!(drain(&mut metered).await.len(), 100_000);
    }

    #[tokio::test]
    async fn a_frame_comes_in_only_when_the_pool_holds_all_of_it() {
        let (mut client, mut metered, gate, pool) = metered(100_000);
        gate.introduce();
        client.write_all(REQUEST).await.unwrap();
        assert_eq!(drain(&mut metered).await, REQUEST);
        client.write_all(&header(60_000, true)).await.unwrap();
        client.write_all(&vec![1; 60_000]).await.unwrap();
        client.write_all(&header(60_000, true)).await.unwrap();
        client.write_all(&vec![2; 60_000]).await.unwrap();
        let got = drain(&mut metered).await;
        assert_eq!(got.len(), 14 + 60_000 + 14, "the second payload waits whole");
        // The waiting frame collects what is free (first in line, it is served first).
        assert_eq!(pool.available_permits(), 0);
        let first = gate.consume(60_000);
        assert_eq!(first.as_ref().map(OwnedSemaphorePermit::num_permits), Some(60_000));
        drop(first);
        assert_eq!(drain(&mut metered).await.len(), 60_000);
    }

    #[tokio::test]
    async fn fragments_are_charged_as_they_come_and_stalls_are_seen() {
        let (mut client, mut metered, gate, pool) = metered(1 << 20);
        gate.introduce();
        client.write_all(REQUEST).await.unwrap();
        client.write_all(&header(10, true)).await.unwrap();
        client.write_all(&[0; 5]).await.unwrap();
        drain(&mut metered).await;
        assert!(
            gate.stalled_for(Duration::from_millis(50)),
            "5 bytes owed and nothing for 100 ms"
        );
        assert!(!gate.stalled_for(Duration::from_secs(5)));
        client.write_all(&[0; 5]).await.unwrap();
        drain(&mut metered).await;
        assert!(!gate.stalled_for(Duration::ZERO), "the frame is complete");
        drop(gate.consume(10));
        // A message in two frames (not final, then a continuation): each charged as it comes.
        let mut first = header(1000, false);
        first.extend_from_slice(&[1; 1000]);
        let mut last = header(500, true);
        last[0] = 0x80;
        last.extend_from_slice(&[2; 500]);
        client.write_all(&first).await.unwrap();
        client.write_all(&last).await.unwrap();
        assert_eq!(drain(&mut metered).await.len(), 14 + 1000 + 14 + 500);
        assert_eq!(pool.available_permits(), (1 << 20) - 1500);
        drop(gate.consume(1500));
        assert_eq!(pool.available_permits(), 1 << 20);
    }
}
