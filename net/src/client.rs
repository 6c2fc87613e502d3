//! A client for the worker protocol, used by the CLI, the server (audits, repair, deletes) and the
//! tests: one WebSocket, many concurrent requests matched to their answers by request id (the
//! numbering and routing are `disktro_core::mux`'s, shared with the browser's links).
//!
//! Every method is safe to call from many tasks at once; the caller bounds concurrency. `get`
//! re-hashes what it receives, so a lying worker is an [`ClientError::Integrity`] error, never
//! bad bytes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use disktro_core::mux::{Heard, NotBegun, Requests};
use disktro_core::wire::{Body, ErrorCode, Frame};
use disktro_core::{ShardId, VerifiedShard};
use futures_util::{SinkExt as _, StreamExt as _};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
/// The shared bytes a put hands back ([`WorkerClient::put_kept`]).
pub use tokio_tungstenite::tungstenite::Bytes;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Why a request did not get the answer it wanted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to worker {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("worker refused ({code:?}): {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("connection to the worker closed: {0}")]
    Closed(String),
    #[error("worker sent something unexpected: {0}")]
    Protocol(String),
    #[error("worker sent bytes that do not match the shard id")]
    Integrity,
    #[error("worker did not answer within {0:?}")]
    Timeout(Duration),
}

/// How to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// TLS settings for `wss://`; by default the public web roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// An `Origin` header, as a browser would send.
    pub origin: Option<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            tls: None,
            origin: None,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// Requests in flight and why the connection ended, once it has (`disktro_core::mux`, shared
/// with the browser).
type Pending = Arc<Mutex<Requests<oneshot::Sender<Body>>>>;

/// One connection to one worker.
#[derive(Debug)]
pub struct WorkerClient {
    out: mpsc::Sender<Message>,
    pending: Pending,
    /// Whether a `Hello` went out on this connection.
    introduced: AtomicBool,
    request_timeout: Duration,
}

impl WorkerClient {
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, ClientError> {
        let fail = |reason: String| ClientError::Connect {
            url: url.to_owned(),
            reason,
        };
        let mut request = url.into_client_request().map_err(|e| fail(e.to_string()))?;
        if let Some(origin) = &options.origin {
            request
                .headers_mut()
                .insert("origin", origin.parse().map_err(|_| fail("bad origin".to_owned()))?);
        }
        let uri = request.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| fail("no host in the URL".to_owned()))?
            .to_owned();
        let secure = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(fail("expected a ws:// or wss:// URL".to_owned())),
        };
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        // Frames up to the protocol's maximum, nothing larger.
        let config = WebSocketConfig::default()
            .max_message_size(Some(disktro_core::wire::MAX_FRAME_LEN))
            .max_frame_size(Some(disktro_core::wire::MAX_FRAME_LEN));
        let connect = async {
            let host_for_tcp = host.trim_start_matches('[').trim_end_matches(']');
            let tcp = TcpStream::connect((host_for_tcp, port))
                .await
                .map_err(|e| fail(e.to_string()))?;
            let _ = tcp.set_nodelay(true);
            if secure {
                let tls = options.tls.clone().unwrap_or_else(crate::tls::client_config);
                let name = ServerName::try_from(host_for_tcp.to_owned()).map_err(|e| fail(e.to_string()))?;
                let stream = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| fail(format!("TLS: {e}")))?;
                let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                Ok(Self::start(ws, options))
            } else {
                let (ws, _) = tokio_tungstenite::client_async_with_config(request, tcp, Some(config))
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                Ok(Self::start(ws, options))
            }
        };
        tokio::time::timeout(options.connect_timeout, connect)
            .await
            .map_err(|_| fail("timed out".to_owned()))?
    }

    fn start<S>(ws: WebSocketStream<S>, options: &ConnectOptions) -> Self
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sink, mut stream) = ws.split();
        let (out, mut rx) = mpsc::channel::<Message>(64);
        let pending: Pending = Arc::default();
        tokio::spawn(async move {
            while let Some(message) = rx.recv().await {
                if sink.send(message).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        {
            let pending = Arc::clone(&pending);
            tokio::spawn(async move {
                let reason = loop {
                    match stream.next().await {
                        Some(Ok(Message::Binary(bytes))) => {
                            let heard = pending.lock().unwrap_or_else(PoisonError::into_inner).hear(&bytes);
                            match heard {
                                Heard::Answer(waiter, body) => {
                                    let _ = waiter.send(body);
                                }
                                Heard::Stray => {}
                                Heard::Broken(reason) => break reason,
                            }
                        }
                        Some(Ok(Message::Close(frame))) => {
                            break frame.map_or_else(
                                || "closed by the worker".to_owned(),
                                |f| format!("{} ({})", f.reason, u16::from(f.code)),
                            );
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break e.to_string(),
                        None => break "connection ended".to_owned(),
                    }
                };
                // Waiters see their sender dropped and report the close reason.
                pending.lock().unwrap_or_else(PoisonError::into_inner).close(reason);
            });
        }
        Self {
            out,
            pending,
            introduced: AtomicBool::new(false),
            request_timeout: options.request_timeout,
        }
    }

    fn requests(&self) -> std::sync::MutexGuard<'_, Requests<oneshot::Sender<Body>>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the connection has ended (the worker closed it, it broke, or the writer stopped):
    /// every request on it would fail, and a new connection is needed.
    pub fn is_closed(&self) -> bool {
        self.out.is_closed() || self.requests().closed().is_some()
    }

    fn closed(&self) -> ClientError {
        ClientError::Closed(self.requests().closed().unwrap_or("connection ended").to_owned())
    }

    /// Send one request and wait for its answer; an error frame becomes [`ClientError::Refused`].
    pub async fn request(&self, body: Body) -> Result<Body, ClientError> {
        let bytes = Frame { request_id: 0, body }
            .encode()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.request_encoded(bytes).await
    }

    /// Send a request encoded earlier with request id 0 (it is numbered here, in place) and wait
    /// for its answer.
    pub async fn request_encoded(&self, bytes: Vec<u8>) -> Result<Body, ClientError> {
        self.request_shared(bytes).await.0
    }

    /// [`Self::request_encoded`], handing the numbered request back, shared rather than copied,
    /// whatever the outcome: a caller that may need to send it again elsewhere keeps it only
    /// while it is on its way, not in a second copy.
    async fn request_shared(&self, mut bytes: Vec<u8>) -> (Result<Body, ClientError>, Bytes) {
        let (tx, rx) = oneshot::channel();
        let begun = self.requests().begin(&mut bytes, tx);
        let request_id = match begun {
            Ok(id) => id,
            Err(NotBegun::Closed(reason)) => return (Err(ClientError::Closed(reason)), Bytes::from(bytes)),
            Err(NotBegun::NotAFrame(e)) => return (Err(ClientError::Protocol(e)), Bytes::from(bytes)),
        };
        let shared = Bytes::from(bytes);
        if self.out.send(Message::Binary(shared.clone())).await.is_err() {
            self.forget(request_id);
            return (Err(self.closed()), shared);
        }
        let answer = tokio::time::timeout(self.request_timeout, rx).await;
        let outcome = match answer {
            Ok(Ok(Body::Error { code, message })) => Err(ClientError::Refused { code, message }),
            Ok(Ok(body)) => Ok(body),
            Ok(Err(_)) => Err(self.closed()),
            Err(_) => {
                self.forget(request_id);
                Err(ClientError::Timeout(self.request_timeout))
            }
        };
        (outcome, shared)
    }

    fn forget(&self, request_id: u32) {
        self.requests().forget(request_id);
    }

    /// Store a shard; returns the worker's signed receipt.
    pub async fn put(&self, token: &[u8], shard: ShardId, data: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        let frame =
            disktro_core::wire::encode_put(token, &shard, &data).map_err(|e| ClientError::Protocol(e.to_string()))?;
        drop(data);
        self.put_encoded(frame).await
    }

    /// Store a shard framed earlier ([`disktro_core::wire::encode_put`]), so its bytes can come
    /// straight from the chunk's buffer; returns the worker's signed receipt. The connection's
    /// first put is preceded by a `Hello` with its token (a refused token is this put's
    /// refusal): a worker reads no more than a small request from a connection that has not
    /// shown a valid token.
    pub async fn put_encoded(&self, frame: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        self.put_kept(frame).await.map_err(|(e, _)| e)
    }

    /// [`Self::put_encoded`] that hands a failed put's frame back (as sent: numbered, shared, not
    /// copied), so the shard can be framed again for another worker
    /// ([`disktro_core::wire::reframe_put`]) without the caller keeping a copy of every shard.
    pub async fn put_kept(&self, frame: Vec<u8>) -> Result<Vec<u8>, (ClientError, Bytes)> {
        if !self.introduced.swap(true, Ordering::Relaxed) {
            // Puts sent meanwhile wait at the worker until the hello's token verified.
            let hello = match disktro_core::wire::hello_for_put(&frame) {
                Ok(hello) => hello,
                Err(e) => return Err((ClientError::Protocol(e.to_string()), Bytes::from(frame))),
            };
            match self.request_encoded(hello).await {
                Ok(Body::Welcome) => {}
                Ok(other) => return Err((unexpected(&other), Bytes::from(frame))),
                Err(e) => {
                    self.introduced.store(false, Ordering::Relaxed);
                    return Err((e, Bytes::from(frame)));
                }
            }
        }
        match self.request_shared(frame).await {
            (Ok(Body::Receipt { receipt }), _) => Ok(receipt),
            (Ok(other), frame) => Err((unexpected(&other), frame)),
            (Err(e), frame) => Err((e, frame)),
        }
    }

    /// Fetch a shard; the bytes are checked against `shard`.
    pub async fn get(&self, token: &[u8], shard: ShardId) -> Result<VerifiedShard, ClientError> {
        match self
            .request(Body::Get {
                token: token.to_vec(),
                shard,
            })
            .await?
        {
            Body::ShardData { shard: got, data } if got == shard => shard.verify(data).ok_or(ClientError::Integrity),
            other => Err(unexpected(&other)),
        }
    }

    /// Hand the worker a signed order for bytes received under one of its get tokens
    /// ([`disktro_core::order`]). Sent unnumbered and not waited for: the worker's answer is a
    /// stray, and an order lost with the connection costs the worker at most what it covered.
    pub async fn order(&self, order: Vec<u8>) -> Result<(), ClientError> {
        let bytes = Frame {
            request_id: 0,
            body: Body::Order { order },
        }
        .encode()
        .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.out
            .send(Message::Binary(Bytes::from(bytes)))
            .await
            .map_err(|_| self.closed())
    }

    /// Delete shards; returns those that were stored and are now gone.
    pub async fn delete(&self, token: &[u8], shards: Vec<ShardId>) -> Result<Vec<ShardId>, ClientError> {
        match self
            .request(Body::Delete {
                token: token.to_vec(),
                shards,
            })
            .await?
        {
            Body::Deleted { shards } => Ok(shards),
            other => Err(unexpected(&other)),
        }
    }

    /// Challenge the worker to prove it holds `shard[offset .. offset + len]`; returns the proof
    /// (check it with `disktro_core::audit::verify`).
    pub async fn audit(
        &self,
        token: &[u8],
        shard: ShardId,
        offset: u64,
        len: u32,
        nonce: [u8; 32],
    ) -> Result<Vec<u8>, ClientError> {
        match self
            .request(Body::AuditChallenge {
                token: token.to_vec(),
                shard,
                offset,
                len,
                nonce,
            })
            .await?
        {
            Body::AuditProof { nonce: echoed, proof } if echoed == nonce => Ok(proof),
            other => Err(unexpected(&other)),
        }
    }
}

fn unexpected(body: &Body) -> ClientError {
    let kind = match body {
        Body::Receipt { .. } => "a receipt",
        Body::ShardData { .. } => "shard data",
        Body::Deleted { .. } => "a delete answer",
        Body::AuditProof { .. } => "an audit proof",
        _ => "a request",
    };
    ClientError::Protocol(format!("{kind} that does not answer the request"))
}
