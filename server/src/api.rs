//! The JSON API under `/api/v1`, used by the CLI and the app.

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

/// `GET /api/v1/health` answer.
#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    /// Version byte of every codec format this server speaks.
    pub format_version: u8,
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        format_version: disktro_core::FORMAT_VERSION,
    })
}

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/health", get(health))
}
