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
//! - Each message's bytes are reserved from the worker-wide **memory budget** before it is handled
//!   (a get reserves its response the same way), so all connections together hold at most the
//!   budget, plus one message per connection being read.
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

use crate::handler;
use crate::node::Node;

/// What the writer sends, with the permits released once it is on the wire.
#[derive(Debug)]
enum Outgoing {
    Frame {
        bytes: Vec<u8>,
        _in_flight: OwnedSemaphorePermit,
        _memory: Option<OwnedSemaphorePermit>,
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

/// Serve one accepted WebSocket until the client leaves, misbehaves, idles out or `shutdown`.
pub async fn serve<S>(ws: WebSocketStream<S>, node: Arc<Node>, shutdown: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
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
    let close = loop {
        let permit = tokio::select! {
            () = shutdown.cancelled() => break Some((CloseCode::Away, "worker shutting down")),
            () = dead.cancelled() => break None,
            p = Arc::clone(&in_flight).acquire_owned() => p.expect("never closed"),
        };
        let next = tokio::select! {
            () = shutdown.cancelled() => break Some((CloseCode::Away, "worker shutting down")),
            () = dead.cancelled() => break None,
            next = tokio::time::timeout(limits.idle_timeout, stream.next()) => next,
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
            Message::Text(_) => {
                let reply = error_frame(0, ErrorCode::Malformed, "frames are binary WebSocket messages");
                if queue(&tx, reply, permit, None).await.is_err() {
                    break None;
                }
                continue;
            }
            Message::Close(_) => break None,
            // Pings are answered by tungstenite itself.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        let memory = tokio::select! {
            () = dead.cancelled() => break None,
            m = node.reserve_memory(bytes.len()) => m,
        };
        let frame = match Frame::decode(&bytes) {
            Ok(frame) => frame,
            Err(e) => {
                let code = ErrorCode::for_error(&e);
                let reply = error_frame(request_id_of(&bytes), code, format!("bad frame: {e}"));
                drop((bytes, memory));
                if queue(&tx, reply, permit, None).await.is_err() {
                    break None;
                }
                continue;
            }
        };
        drop(bytes);
        let (node, tx) = (Arc::clone(&node), tx.clone());
        tokio::spawn(async move {
            let request_id = frame.request_id;
            let response = handler::handle(&node, frame.body).await;
            drop(memory);
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
    memory: Option<OwnedSemaphorePermit>,
) -> Result<(), ()> {
    tx.send(Outgoing::Frame {
        bytes,
        _in_flight: in_flight,
        _memory: memory,
    })
    .await
    .map_err(|_| ())
}
