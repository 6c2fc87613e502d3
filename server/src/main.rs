//! `disktro-server`: serves the web app (SSR + hydration bundle) and the JSON API.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// Disktro server: the web app and the JSON API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "DISKTRO_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Directory holding the built site (the `pkg/` bundle and static assets).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    site_root: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,disktro_server=info".into()),
        )
        .init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let addr = listener.local_addr()?;
    let site_root = args.site_root.to_str().context("the site root must be valid UTF-8")?;
    if !args.site_root.join("pkg").is_dir() {
        tracing::warn!(
            site_root,
            "no built web bundle here: pages render, but will not hydrate (run `make run`)"
        );
    }
    let app = disktro_server::app(disktro_server::site_options(site_root, addr));
    tracing::info!(%addr, "listening on http://{addr}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
