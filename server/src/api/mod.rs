//! The JSON API under `/api/v1`, used by the CLI, the app and the workers.
//!
//! | route | who |
//! | --- | --- |
//! | `GET /health` | anyone |
//! | `POST /nodes/register`, `POST /nodes/heartbeat` | workers (join token; node-key signatures) |
//! | `GET /nodes` | anyone: node ids, URLs, zones and health are not secret |

pub mod error;
pub mod nodes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::context::Context;

/// Node requests are small JSON documents; a heartbeat with many corrupt-shard reports is the
/// largest (10,000 ids ≈ 700 kB).
const NODE_BODY_LIMIT: usize = 1 << 20;

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

async fn no_such_route() -> error::ApiError {
    error::ApiError::not_found("no_such_route", "no such API route")
}

pub fn router<S: Clone + Send + Sync + 'static>(ctx: Arc<Context>) -> Router<S> {
    Router::new()
        .route("/health", get(health))
        .route("/nodes", get(nodes::list))
        .route("/nodes/register", post(nodes::register))
        .route("/nodes/heartbeat", post(nodes::heartbeat))
        .layer(DefaultBodyLimit::max(NODE_BODY_LIMIT))
        .fallback(no_such_route)
        .with_state(ctx)
}
