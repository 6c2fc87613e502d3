//! `disktro-server`: serves the web app and the JSON API, keeps the node registry, and with
//! `--local-workers N` runs N storage workers in-process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;

/// Disktro server: the web app, the JSON API and the control plane of a storage network.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the bound address is logged).
    #[arg(long, env = "DISKTRO_LISTEN", default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Directory for the SQLite database, the server key and local workers' data.
    #[arg(long, env = "DISKTRO_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// Database URL; `postgres://user:password@host/db` for PostgreSQL [default: SQLite in the data dir].
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Token workers present to register [default: generated once, kept in the database, printed].
    #[arg(long, env = "DISKTRO_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// Start this many storage workers in-process on 127.0.0.1.
    #[arg(long, env = "DISKTRO_LOCAL_WORKERS", default_value_t = 0)]
    local_workers: usize,
    /// Capacity of each local worker, e.g. `10GiB`.
    #[arg(long, env = "DISKTRO_LOCAL_WORKER_CAPACITY", default_value = "10GiB")]
    local_worker_capacity: String,
    /// URL people and workers reach this server at [default: http://<listen address>].
    #[arg(long, env = "DISKTRO_PUBLIC_URL")]
    public_url: Option<String>,
    /// Storage quota of each new account, e.g. `10GiB`.
    #[arg(long, env = "DISKTRO_DEFAULT_QUOTA", default_value = "10GiB")]
    default_quota: String,
    /// Heartbeat period asked of workers; node health thresholds are multiples of it.
    #[arg(long, env = "DISKTRO_HEARTBEAT_INTERVAL", default_value = "10s")]
    heartbeat_interval: String,
    /// Directory holding the built site (the `pkg/` bundle and static assets).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    site_root: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let args = Args::parse();
    let heartbeat_interval = disktro_worker::units::parse_duration(&args.heartbeat_interval)
        .map_err(|e| anyhow::anyhow!("--heartbeat-interval: {e}"))?;
    let capacity = disktro_worker::units::parse_size(&args.local_worker_capacity)
        .map_err(|e| anyhow::anyhow!("--local-worker-capacity: {e}"))?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data directory {}", args.data_dir.display()))?;
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| disktro_server::db::sqlite_url(&args.data_dir));
    let default_quota =
        disktro_worker::units::parse_size(&args.default_quota).map_err(|e| anyhow::anyhow!("--default-quota: {e}"))?;
    let mut ctx = disktro_server::Context::open(
        &args.data_dir,
        &database_url,
        args.join_token.clone(),
        heartbeat_interval,
    )
    .await?;
    ctx.default_quota = i64::try_from(default_quota).unwrap_or(i64::MAX);
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
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    ctx.secure_cookies = public_url.starts_with("https://");
    let ctx = Arc::new(ctx);
    let app = disktro_server::app(disktro_server::site_options(site_root, addr), Arc::clone(&ctx));
    tracing::info!(
        database = %disktro_server::db::redact(&database_url),
        key = %ctx.key.public().fingerprint(),
        "listening on http://{addr}"
    );
    if args.join_token.is_none() {
        // Printed, not logged: it is a secret, and it is what an operator needs to add a worker.
        eprintln!(
            "join token for workers: {}\n  disktro-worker --server {public_url} --join-token {}",
            ctx.join_token, ctx.join_token
        );
    }
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
        })
    };
    let janitor = tokio::spawn(disktro_server::leases::run_janitor(
        Arc::clone(&ctx),
        disktro_server::leases::replica_name(),
        shutdown.clone(),
    ));
    let workers = disktro_server::local_workers::start(
        args.local_workers,
        &args.data_dir,
        &public_url,
        &ctx.join_token,
        capacity,
        heartbeat_interval,
    )
    .await
    .context("cannot start the local workers")?;
    if !workers.is_empty() {
        tracing::info!(count = workers.len(), "local workers started");
    }
    disktro_worker::shutdown_signal().await;
    tracing::info!("shutting down");
    shutdown.cancel();
    disktro_server::local_workers::stop(workers).await;
    server.await??;
    janitor.await?;
    tracing::info!("stopped");
    Ok(())
}
