//! The JSON API under `/api/v1`, used by the CLI, the app and the workers.
//!
//! | route | who |
//! | --- | --- |
//! | `GET /health` | anyone |
//! | `POST /nodes/register`, `POST /nodes/heartbeat` | workers (join token; node-key signatures) |
//! | `GET /nodes` | anyone: node ids, URLs, zones and health are not secret |
//! | `POST /auth/prelogin`, `/auth/signup`, `/auth/login` | anyone (log-in throttled) |
//! | `POST /auth/logout`, `/auth/password`, `/auth/tokens` | a session with its CSRF token, or an API token |
//! | `GET /account` | a session or an API token |

pub mod auth;
pub mod error;
pub mod nodes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use crate::context::Context;

/// API requests are small JSON documents; a heartbeat with many corrupt-shard reports is the
/// largest (10,000 ids ≈ 700 kB).
const BODY_LIMIT: usize = 1 << 20;

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
        .route("/auth/prelogin", post(auth::prelogin))
        .route("/auth/signup", post(auth::signup))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/password", post(auth::change_password))
        .route("/auth/tokens", post(auth::create_token))
        .route("/account", get(auth::account))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .fallback(no_such_route)
        .with_state(ctx)
}
