//! Requests the database asked to run again. At SERIALIZABLE isolation (PostgreSQL here, and what
//! CockroachDB always runs) a transaction that conflicts with a concurrent one fails with SQLSTATE
//! 40001 (or 40P01, a deadlock) and nothing of it is kept: the client is expected to run it again.
//! Every request's writes are one transaction (or single statements), so running the whole request
//! again is running its transaction again: this layer does that, up to [`ATTEMPTS`] times with a
//! short random pause, before the client sees `503 database_unavailable`.
//!
//! The body is kept to send again only when it is small enough to hold (a length up to the largest
//! route limit, the commit's); a request with a larger or unknown length goes through once.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::Response;

/// Runs of one request in all, the first included: a dozen requests contending for one row (one
/// account's uploads begun at once) each get through in fewer.
pub const ATTEMPTS: u32 = 10;

/// Marks a response made from a serialization failure ([`crate::store::is_serialization_failure`]),
/// for this layer alone (an extension: the client sees the 503).
#[derive(Debug, Clone, Copy)]
pub struct SerializationFailure;

/// The layer: run `request` again while its answer is a serialization failure.
pub async fn serialization_failures(request: Request, next: Next) -> Response {
    let length = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let keepable = match length {
        Some(len) => len <= crate::uploads::MAX_COMMIT_BODY,
        // No body to keep (GET, DELETE) reads as length 0; an unknown length is not kept.
        None => request.method() == axum::http::Method::GET || request.method() == axum::http::Method::DELETE,
    };
    if !keepable {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, crate::uploads::MAX_COMMIT_BODY).await else {
        // Longer than its stated length, or the client went away while sending it.
        return axum::response::IntoResponse::into_response(crate::error::ServerError::Body {
            status: 400,
            message: "the request body could not be read as its Content-Length says".to_owned(),
        });
    };
    let mut attempt = 1;
    loop {
        let again = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
        let response = next.clone().run(again).await;
        if response.extensions().get::<SerializationFailure>().is_none() {
            return response;
        }
        if attempt >= ATTEMPTS {
            tracing::warn!(path = %parts.uri.path(), attempts = attempt, "serialization failures every time; the client is told to try again");
            return response;
        }
        tracing::info!(path = %parts.uri.path(), attempt, "serialization failure; running the request again");
        tokio::time::sleep(pause(attempt)).await;
        attempt += 1;
    }
}

/// A random pause growing with the attempt (1–10 ms, then up to 20, 40, 80, 160 ms): concurrent
/// requests that conflicted do not meet again at once.
fn pause(attempt: u32) -> Duration {
    let ceiling = 10u64 << attempt.saturating_sub(1).min(4);
    let [b] = disktro_core::random_bytes::<1>();
    Duration::from_millis(1 + u64::from(b) % ceiling)
}
