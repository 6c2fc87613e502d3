//! HTTPS without a reverse proxy (`--tls-cert`, `--tls-key`): a listener that hands axum
//! connections whose TLS handshake has finished, and the optional plain-HTTP port
//! (`--http-redirect`) that sends every request to the same path over HTTPS.
//!
//! Handshakes run each in a task of its own, at most [`MAX_HANDSHAKES`] at once and each within
//! [`HANDSHAKE_TIMEOUT`], so a client that connects and never speaks holds one task for seconds,
//! never the accept loop. The certificate files are read the way the workers read theirs
//! (`disktro_net::tls`, rustls with ring), or obtained over ACME (`disktro_net::acme`), whose
//! validation handshakes are closed here.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes under way at once; more connections wait in the kernel's backlog.
pub const MAX_HANDSHAKES: usize = 256;

/// Connections with their handshake done, for `axum::serve`.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Accept on `tcp`, shake hands with `acceptor`. The accept loop ends with the listener.
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<Self> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
                    return;
                };
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    let _ = stream.set_nodelay(true);
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            // A CA's tls-alpn-01 validation ends with the handshake.
                            if disktro_net::acme::is_challenge(tls.get_ref().1.alpn_protocol()) {
                                return;
                            }
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop ended: nothing more will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// The HTTPS URL of what `request` asked for over plain HTTP: the same path and query on
/// `https_base` (the public URL).
pub fn redirect_target(https_base: &str, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{}{path}", https_base.trim_end_matches('/'))
}

/// Serve the redirect on `listener` until `shutdown`.
pub async fn serve_redirect(
    listener: TcpListener,
    https_base: String,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let base = Arc::new(https_base);
    let app = axum::Router::new().fallback(move |request: Request| {
        let base = Arc::clone(&base);
        async move { redirect(&base, request.uri()) }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

fn redirect(base: &str, uri: &Uri) -> Response {
    let target = redirect_target(base, uri);
    match HeaderValue::from_str(&target) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_keeps_the_path_and_query() {
        let uri: Uri = "/s/abc?x=1".parse().unwrap();
        assert_eq!(
            redirect_target("https://disktro.example/", &uri),
            "https://disktro.example/s/abc?x=1"
        );
        let root: Uri = "/".parse().unwrap();
        assert_eq!(
            redirect_target("https://disktro.example", &root),
            "https://disktro.example/"
        );
    }
}
