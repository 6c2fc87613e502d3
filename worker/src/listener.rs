//! The accept loop: TCP, a connection slot ([`crate::slots`]), optional TLS, the metered socket
//! ([`crate::gate`]) and the WebSocket handshake with its Origin check. Each accepted connection
//! is served by [`crate::connection::serve`].
//!
//! - Handshakes (TLS and WebSocket together) must finish within the handshake timeout, so a
//!   client that connects and never speaks costs a socket for seconds, not forever.
//! - A browser's `Origin` must be on the allowed list (`*` allows any); requests without one come
//!   from programs and are let through, since tokens, not origins, authorize every request.
//! - A client refused a slot (its address holds too many, or every slot belongs to a connection
//!   that presented a token) still completes the handshake, then gets close code 1013 ("try
//!   again later") with the reason instead of a silent reset.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::connection;
use crate::gate::{Gate, Metered};
use crate::node::Node;
use crate::slots::{NoSlot, Slot, Slots};

/// Largest WebSocket message: one put frame of the largest shard this worker takes.
fn websocket_config(node: &Node) -> WebSocketConfig {
    let max = node.limits.max_shard_len + (disktro_core::wire::MAX_FRAME_LEN - disktro_core::wire::MAX_SHARD_LEN);
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
}

/// Whether a handshake with this `Origin` header may proceed.
pub fn origin_allowed(allowed: &[String], origin: Option<&str>) -> bool {
    match origin {
        None => true,
        Some(origin) => {
            let origin = origin.trim_end_matches('/');
            allowed.iter().any(|a| a == "*" || a.trim_end_matches('/') == origin)
        }
    }
}

/// Accept connections until `shutdown`, then wait for the connections to wind down.
pub async fn run(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    node: Arc<Node>,
    allowed_origins: Arc<Vec<String>>,
    shutdown: CancellationToken,
) {
    let slots = Slots::new(node.limits.max_connections, node.limits.max_connections_per_address);
    let tracker = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let slot = slots.admit(peer.ip());
        let gate = Arc::new(Gate::default());
        let pool = node.memory.client_pool();
        let (node, origins, shutdown, tls) = (
            Arc::clone(&node),
            Arc::clone(&allowed_origins),
            shutdown.clone(),
            tls.clone(),
        );
        tracker.spawn(async move {
            let timeout = node.limits.handshake_timeout;
            let result = match tls {
                Some(tls) => {
                    let handshake = async {
                        let stream = tls.accept(tcp).await.map_err(HandshakeError::Tls)?;
                        if disktro_net::acme::is_challenge(stream.get_ref().1.alpn_protocol()) {
                            return Err(HandshakeError::AcmeValidation);
                        }
                        websocket(Metered::new(stream, Arc::clone(&gate), pool), &node, &origins).await
                    };
                    match tokio::time::timeout(timeout, handshake).await {
                        Ok(Ok(ws)) => {
                            serve_or_refuse(ws, node, slot, gate, shutdown).await;
                            Ok(())
                        }
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(HandshakeError::TimedOut),
                    }
                }
                None => match tokio::time::timeout(
                    timeout,
                    websocket(Metered::new(tcp, Arc::clone(&gate), pool), &node, &origins),
                )
                .await
                {
                    Ok(Ok(ws)) => {
                        serve_or_refuse(ws, node, slot, gate, shutdown).await;
                        Ok(())
                    }
                    Ok(Err(e)) => Err(e),
                    Err(_) => Err(HandshakeError::TimedOut),
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "handshake failed");
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

async fn websocket<S>(
    stream: S,
    node: &Node,
    allowed: &[String],
) -> Result<tokio_tungstenite::WebSocketStream<S>, HandshakeError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // The callback's error type is tungstenite's; its size is not ours to change.
    #[allow(clippy::result_large_err)]
    let check_origin = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
        let origin = request.headers().get("origin").and_then(|v| v.to_str().ok());
        if origin_allowed(allowed, origin) {
            Ok(response)
        } else {
            tracing::info!(
                origin = origin.unwrap_or(""),
                "refused a WebSocket from a disallowed origin"
            );
            let mut refusal = ErrorResponse::new(Some("origin not allowed".to_owned()));
            *refusal.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::FORBIDDEN;
            Err(refusal)
        }
    };
    tokio_tungstenite::accept_hdr_async_with_config(stream, check_origin, Some(websocket_config(node)))
        .await
        .map_err(|e| HandshakeError::WebSocket(Box::new(e)))
}

/// Why a connection never got to its first request (logged at debug: scanners and closed tabs
/// are common and not the operator's problem).
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("WebSocket: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    #[error("handshake timed out")]
    TimedOut,
    /// A CA's tls-alpn-01 validation: it ends with the TLS handshake.
    #[error("ACME validation (closed after the handshake)")]
    AcmeValidation,
}

async fn serve_or_refuse<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    node: Arc<Node>,
    slot: Result<Slot, NoSlot>,
    gate: Arc<Gate>,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match slot {
        Ok(slot) => connection::serve(ws, node, shutdown, gate, slot).await,
        Err(refusal) => {
            tracing::info!(reason = %refusal, "connection limit reached; refusing a connection");
            let close = CloseFrame {
                code: CloseCode::Again,
                reason: refusal.to_string().into(),
            };
            let _ = ws.close(Some(close)).await;
        }
    }
}
