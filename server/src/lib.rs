//! `disktro-server`: the control plane. It serves the web app and the JSON API, keeps the node
//! registry in the database (SQLite or PostgreSQL) and can run local workers in-process.
//!
//! - [`store`]: every SQL statement, with the pool and migrations ([`db`]); [`context`]: what handlers share (database, token key, join
//!   token); [`nodes`]: registration, heartbeats and health; [`accounts`], [`sessions`],
//!   [`throttle`]: zero-knowledge accounts, cookies/CSRF/API tokens, log-in throttling;
//!   [`placement`]: which workers hold which shards; [`uploads`]: begin, renew, cancel and
//!   commit; [`files`]: list, read and delete; [`folders`]: the account's tree (names sealed); [`grants`]: the tokens handed to clients for workers; [`shares`]: share links;
//!   [`jobs`]: background jobs as named workers with their status; [`leases`]: which replica
//!   runs a background job, and the janitor; [`durability`]: audits,
//!   reputation, repair and garbage collection; [`rewards`]: the operators' ledger; [`api`]: the
//!   `/api/v1` routes and their OpenAPI document; [`local_workers`]: `--local-workers`.

// The app's pages are deeply nested view types; rendering them in release builds needs more
// than the default query depth.
#![recursion_limit = "256"]

pub mod accounts;
pub mod api;
pub mod client_addr;
pub mod config;
pub mod context;
/// The connection pool and migrations live with the statements, in [`store::db`].
pub use store::db;
pub mod durability;
pub mod error;
pub mod files;
pub mod folders;
pub mod grants;
pub mod https;
pub mod jobs;
pub mod leases;
pub mod local_workers;
pub mod metrics;
pub mod nodes;
pub mod placement;
pub mod rewards;
pub mod roster;
pub mod sessions;
pub mod shares;
pub mod store;
pub mod throttle;
pub mod uploads;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use disktro_app::{App, shell};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes as _, generate_route_list};
use tower_http::set_header::SetResponseHeaderLayer;

pub use context::Context;

/// Equal-time comparison of two secrets: their BLAKE3 hashes are compared, so neither the
/// position of the first difference nor the lengths show in the timing.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    blake3::hash(a) == blake3::hash(b)
}

/// Leptos options for the site under `site_root`, served at `addr`.
pub fn site_options(site_root: &str, addr: SocketAddr) -> LeptosOptions {
    let env = match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV") => leptos::config::Env::DEV,
        _ => leptos::config::Env::PROD,
    };
    LeptosOptions::builder()
        .output_name("disktro")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .env(env)
        .build()
}

/// The most a server function's request body may hold: the app's server functions take no
/// arguments, so this only has to leave room for the encoding.
const SERVER_FN_BODY_LIMIT: usize = 64 * 1024;

/// Server function bodies (`/api/…` outside `/api/v1`) are read here, within
/// [`SERVER_FN_BODY_LIMIT`], so that an oversized one is `413` in the API's error shape: leptos
/// answers 500 to a body it cannot read.
async fn limit_server_fn_bodies(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    let path = request.uri().path();
    if !path.starts_with("/api/") || path.starts_with("/api/v1/") {
        return next.run(request).await;
    }
    let too_large = || {
        error::ServerError::Body {
            status: axum::http::StatusCode::PAYLOAD_TOO_LARGE.as_u16(),
            message: format!("request bodies here are at most {} KiB", SERVER_FN_BODY_LIMIT / 1024),
        }
        .into_response()
    };
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > SERVER_FN_BODY_LIMIT as u64) {
        return too_large();
    }
    let (parts, body) = request.into_parts();
    match axum::body::to_bytes(body, SERVER_FN_BODY_LIMIT).await {
        Ok(bytes) => next.run(axum::extract::Request::from_parts(parts, bytes.into())).await,
        Err(_) => too_large(),
    }
}

/// The whole HTTP application: API, server functions, pages and static files.
pub fn app(options: LeptosOptions, ctx: Arc<Context>) -> Router {
    let routes = generate_route_list(App);
    let metrics = Router::new()
        .route("/metrics", axum::routing::get(metrics::scrape))
        .with_state(Arc::clone(&ctx));
    // The pages' security policy depends on how they are served.
    let https = disktro_app::ServedOverHttps(ctx.secure_cookies);
    Router::new()
        .nest("/api/v1", api::router(Arc::clone(&ctx)))
        .merge(metrics)
        .leptos_routes_with_context(&options, routes, move || leptos::prelude::provide_context(https), {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context(
            move || leptos::prelude::provide_context(https),
            shell,
        ))
        .with_state(options)
        .layer(axum::middleware::from_fn(limit_server_fn_bodies))
        .layer(axum::middleware::from_fn_with_state(ctx, metrics::count_requests))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
}
