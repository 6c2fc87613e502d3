//! `disktro-server`: the control plane. Today it serves the web app and the API's health check;
//! accounts, placement, tokens and node health grow here (see DESIGN.md).

pub mod api;

use std::net::SocketAddr;

use axum::Router;
use axum::http::{HeaderName, HeaderValue};
use disktro_app::{App, shell};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes as _, generate_route_list};
use tower_http::set_header::SetResponseHeaderLayer;

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

/// The whole HTTP application: API, server functions, pages and static files.
pub fn app(options: LeptosOptions) -> Router {
    let routes = generate_route_list(App);
    Router::new()
        .nest("/api/v1", api::router())
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler(shell))
        .with_state(options)
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("referrer-policy"),
            HeaderValue::from_static("no-referrer"),
        ))
}
