//! One WebSocket connection: many requests multiplexed by request id, answered concurrently, with
//! backpressure so that neither a fast client nor a slow disk grows memory without bound.
//!
//! ```text
//!  socket ──reader──▶ [in-flight permit] [memory permit] ──spawn──▶ handler ──▶ queue ──writer──▶ socket
//! ```
//!
//! - The reader takes a per-connection **in-flight** permit before it reads the next message, so
//!   at most `max_in_flight` requests (being handled or waiting to be written) exist per
//!   connection; beyond that the worker stops reading and TCP pushes back on the client.
//! - Each message's bytes are charged to the memory budget while they arrive ([`crate::gate`])
//!   and held, within the connection's share ([`crate::memory`]), until it is answered (a get
//!   reserves its response the same way), so all connections together hold at most the budget
//!   and one stalled connection at most its share.
//! - Until one of its requests carries a valid token (a `Hello`, or any request), a connection is
//!   a stranger: it is read only up to the introduction limit, is the first to be evicted when
//!   connection slots run out ([`crate::slots`]), and is closed (1008) if no valid token comes
//!   within the introduction timeout.
//! - The writer sends responses in completion order; a client that stops reading for longer than
//!   the write timeout is disconnected, which releases everything it held.
//! - A connection with nothing in flight that sends nothing for the idle timeout is closed.
//! - On shutdown the reader stops, in-flight requests finish (within the write timeout) and the
//!   connection closes with 1001 "going away".
//!
//! Undecodable frames get an error frame (the request id is echoed when the header is readable)
//! and the connection stays open; an oversized message closes it with 1009.

use std::sync::Arc;

use disktro_core::wire::{Body, ErrorCode, Frame};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::CancellationToken;

use crate::gate::Gate;
use crate::handler;
use crate::memory::Reservation;
use crate::node::Node;
use crate::slots::Slot;

/// How often a connection checks for a half-sent message.
const STALL_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What the writer sends, with the permits released once it is on the wire.
#[derive(Debug)]
enum Outgoing {
    Frame {
        bytes: Vec<u8>,
        _in_flight: OwnedSemaphorePermit,
        _memory: Option<Reservation>,
    },
    Close(CloseCode, &'static str),
}

fn error_frame(request_id: u32, code: ErrorCode, message: impl Into<String>) -> Vec<u8> {
    Frame {
        request_id,
        body: Body::Error {
            code,
            message: message.into(),
        },
    }
    .encode()
    .expect("error frames are within limits")
}

/// The request id of a frame whose body did not decode, when its header is there.
fn request_id_of(bytes: &[u8]) -> u32 {
    bytes
        .get(2..6)
        .map_or(0, |b| u32::from_be_bytes(b.try_into().expect("4 bytes")))
}

/// The token a request carries.
fn token_of(body: &Body) -> Option<&[u8]> {
    match body {
        Body::Put { token, .. }
        | Body::Get { token, .. }
        | Body::Delete { token, .. }
        | Body::AuditChallenge { token, .. }
        | Body::Hello { token } => Some(token),
        _ => None,
    }
}

/// Serve one accepted WebSocket until the client leaves, misbehaves, idles out, is evicted or
/// `shutdown`. `gate` meters its socket and `slot` is its place among the worker's connections.
pub async fn serve<S>(ws: WebSocketStream<S>, node: Arc<Node>, shutdown: CancellationToken, gate: Arc<Gate>, slot: Slot)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let _connected = crate::metrics::Connected::new(&node.metrics);
    let limits = node.limits;
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::channel::<Outgoing>(limits.max_in_flight + 1);
    // Cancelled when the connection must end now (write timeout, socket error).
    let dead = CancellationToken::new();

    let writer = {
        let dead = dead.clone();
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                let (message, closing) = match out {
                    Outgoing::Frame { bytes, .. } => (Message::Binary(bytes.into()), false),
                    Outgoing::Close(code, reason) => (
                        Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.into(),
                        })),
                        true,
                    ),
                };
                match tokio::time::timeout(limits.write_timeout, sink.send(message)).await {
                    Ok(Ok(())) if !closing => {}
                    Ok(Ok(())) => break,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "connection lost while writing");
                        dead.cancel();
                        return;
                    }
                    Err(_) => {
                        tracing::info!("client stopped reading; disconnecting it");
                        dead.cancel();
                        return;
                    }
                }
            }
            let _ = tokio::time::timeout(limits.write_timeout, sink.close()).await;
        })
    };

    let in_flight = Arc::new(Semaphore::new(limits.max_in_flight));
    let memory = Arc::new(node.memory.connection());
    let introduce_by = tokio::time::Instant::now() + limits.introduce_timeout;
    let mut introduced = false;
    let close = 'serve: loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break Some((CloseCode::Away, "worker shutting down")),
            () = dead.cancelled() => break None,
            () = slot.evicted.cancelled() => break Some((CloseCode::Again, "evicted: too many connections without a token")),
            p = Arc::clone(&in_flight).acquire_owned() => p.expect("never closed"),
        };
        let idle_at = tokio::time::Instant::now() + limits.idle_timeout;
        let next = loop {
            tokio::select! {
                () = shutdown.cancelled() => break 'serve Some((CloseCode::Away, "worker shutting down")),
                () = dead.cancelled() => break 'serve None,
                () = slot.evicted.cancelled() => {
                    break 'serve Some((CloseCode::Again, "evicted: too many connections without a token"));
                }
                () = tokio::time::sleep_until(introduce_by), if !introduced => {
                    tracing::debug!("no valid token in time; closing the connection");
                    break 'serve Some((CloseCode::Policy, "no request with a valid token in time"));
                }
                () = tokio::time::sleep(STALL_CHECK) => {
                    if gate.stalled_for(limits.stall_timeout) {
                        tracing::info!("a message was left half-sent; closing the connection");
                        break 'serve Some((CloseCode::Policy, "message stalled"));
                    }
                    if gate.waited_for(limits.memory_wait) {
                        tracing::info!("memory budget spent for too long; closing a connection");
                        break 'serve Some((CloseCode::Again, "worker memory is busy; try again later"));
                    }
                }
                // `next` is cancel-safe: a tick in between loses nothing.
                next = tokio::time::timeout_at(idle_at, stream.next()) => break next,
            }
        };
        let message = match next {
            Err(_idle) => {
                // `permit` is ours, so all permits free means nothing else is in flight.
                if in_flight.available_permits() + 1 == limits.max_in_flight {
                    break Some((CloseCode::Normal, "idle timeout"));
                }
                continue;
            }
            Ok(None) => break None,
            Ok(Some(Err(WsError::Capacity(e)))) => {
                tracing::info!(error = %e, "oversized message; closing the connection");
                break Some((CloseCode::Size, "message too large"));
            }
            Ok(Some(Err(WsError::Protocol(e)))) => {
                tracing::info!(error = %e, "WebSocket protocol violation; closing the connection");
                break Some((CloseCode::Protocol, "protocol error"));
            }
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "connection lost while reading");
                break None;
            }
            Ok(Some(Ok(message))) => message,
        };
        let bytes = match message {
            Message::Binary(bytes) => bytes,
            Message::Text(text) => {
                drop(gate.consume(text.len()));
                let reply = error_frame(0, ErrorCode::Malformed, "frames are binary WebSocket messages");
                if queue(&tx, reply, permit, None).await.is_err() {
                    break None;
                }
                continue;
            }
            Message::Close(_) => break None,
            // Pings are answered by tungstenite itself.
            Message::Ping(b) | Message::Pong(b) => {
                drop(gate.consume(b.len()));
                continue;
            }
            Message::Frame(_) => continue,
        };
        let charged = gate.consume(bytes.len());
        // A put's shard stays in the message's buffer (no copy); the reservation below is for
        // the whole message, which that buffer is.
        let frame = match Frame::decode_shared(&bytes) {
            Ok(frame) => frame,
            Err(e) => {
                let code = ErrorCode::for_error(&e);
                let reply = error_frame(request_id_of(&bytes), code, format!("bad frame: {e}"));
                drop((bytes, charged));
                if queue(&tx, reply, permit, None).await.is_err() {
                    break None;
                }
                continue;
            }
        };
        if !introduced
            && let Some(token) = token_of(&frame.body)
            && node.admission.introduce(token, disktro_net::unix_now()).is_ok()
        {
            introduced = true;
            gate.introduce();
            slot.introduced();
        }
        let reserved = tokio::select! {
            () = dead.cancelled() => break None,
            r = async {
                if matches!(frame.body, Body::Put { .. }) {
                    memory.reserve(bytes.len(), charged).await
                } else {
                    memory.hold_request(bytes.len(), charged).await
                }
            } => r,
        };
        drop(bytes);
        let held = match reserved {
            Ok(held) => held,
            Err(busy) => {
                let reply = error_frame(frame.request_id, busy.code, busy.message);
                if queue(&tx, reply, permit, None).await.is_err() {
                    break None;
                }
                continue;
            }
        };
        let (node, tx, memory) = (Arc::clone(&node), tx.clone(), Arc::clone(&memory));
        tokio::spawn(async move {
            let request_id = frame.request_id;
            let response = handler::handle(&node, &memory, frame.body).await;
            drop(held);
            let bytes = Frame {
                request_id,
                body: response.body,
            }
            .encode()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "response did not encode");
                error_frame(request_id, ErrorCode::Internal, "internal error on the worker")
            });
            let _ = queue(&tx, bytes, permit, response.memory).await;
        });
    };

    if let Some((code, reason)) = close {
        // Let in-flight requests finish and their answers go out first, within the write timeout.
        let all = u32::try_from(limits.max_in_flight).unwrap_or(u32::MAX);
        let drained = tokio::select! {
            () = dead.cancelled() => false,
            r = tokio::time::timeout(limits.write_timeout, in_flight.acquire_many(all)) => r.is_ok(),
        };
        if drained {
            let _ = tx.send(Outgoing::Close(code, reason)).await;
        }
    } else {
        dead.cancel();
    }
    drop(tx);
    if dead.is_cancelled() {
        writer.abort();
    }
    let _ = writer.await;
}

async fn queue(
    tx: &mpsc::Sender<Outgoing>,
    bytes: Vec<u8>,
    in_flight: OwnedSemaphorePermit,
    memory: Option<Reservation>,
) -> Result<(), ()> {
    tx.send(Outgoing::Frame {
        bytes,
        _in_flight: in_flight,
        _memory: memory,
    })
    .await
    .map_err(|_| ())
}
