//! `disktro-server`: serves the web app and the JSON API, keeps the node registry, and with
//! `--local-workers N` runs N storage workers in-process.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use clap::Parser as _;
use disktro_server::config::Args;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut args = Args::parse();
    if let Some(disktro_server::config::Command::Durability(model)) = args.command.take() {
        let report = disktro_server::durability::model::report(&model).map_err(anyhow::Error::msg)?;
        // The report is the command's output, not a log line.
        #[allow(clippy::print_stdout)]
        {
            print!("{report}");
        }
        return Ok(());
    }
    let args = args.into_settings()?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create the data directory {}", args.data_dir.display()))?;
    disktro_net::tls::install_default_provider();
    if let Some(path) = &args.ca_cert {
        disktro_net::tls::trust(path).context("--ca-cert")?;
    }
    let acme = match &args.acme {
        Some(settings) => Some(Arc::new(
            disktro_net::acme::Acme::open(settings.clone(), &args.data_dir).context("cannot set up ACME")?,
        )),
        None => None,
    };
    let database_url = args
        .database_url
        .clone()
        .unwrap_or_else(|| disktro_server::db::sqlite_url(&args.data_dir));
    let mut ctx = disktro_server::Context::open(
        &args.data_dir,
        &database_url,
        args.join_token.clone(),
        args.heartbeat_interval,
    )
    .await?;
    ctx.get_token_ttl = args.get_token_ttl;
    ctx.default_quota = i64::try_from(args.default_quota).unwrap_or(i64::MAX);
    ctx.durability = args.durability.clone();
    ctx.trusted_proxies = args.trusted_proxies.clone();
    ctx.signups_per_source = args.signups_per_address;
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
    let acceptor = match (&args.tls, &acme) {
        (Some(files), _) => Some(
            disktro_net::tls::acceptor(files)
                .with_context(|| format!("cannot use the certificate {}", files.cert.display()))?,
        ),
        (None, Some(acme)) => Some(acme.acceptor()),
        (None, None) => None,
    };
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    let public_url = args.public_url.clone().unwrap_or_else(|| match &acme {
        // The certificate names the domain, not the address: that is what people must dial.
        Some(acme) if addr.port() == 443 => format!("https://{}", acme.settings().public_name()),
        Some(acme) => format!("https://{}:{}", acme.settings().public_name(), addr.port()),
        None => format!("{scheme}://{addr}"),
    });
    ctx.secure_cookies = public_url.starts_with("https://");
    let ctx = Arc::new(ctx);
    let app = disktro_server::app(disktro_server::site_options(site_root, addr), Arc::clone(&ctx));
    let stop = disktro_net::shutdown::signal();
    tracing::info!(
        database = %disktro_server::db::redact(&database_url),
        key = %ctx.key.public().fingerprint(),
        "listening on {scheme}://{addr}"
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
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        match acceptor {
            Some(acceptor) => {
                // `tap_io` gives axum the peer address of a listener of ours.
                let listener = disktro_server::https::TlsListener::new(listener, acceptor)?.tap_io(|_| {});
                tokio::spawn(async move {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(shutdown.cancelled_owned())
                        .await
                })
            }
            None => tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
            }),
        }
    };
    if let Some(acme) = &acme {
        // Started once the listener accepts: the CA connects to it to validate the domain.
        tokio::spawn(Arc::clone(acme).run(shutdown.clone()));
    }
    let redirect = match args.http_redirect {
        Some(plain) => {
            let listener = tokio::net::TcpListener::bind(plain)
                .await
                .with_context(|| format!("cannot listen on {plain}"))?;
            tracing::info!("redirecting http://{} to {public_url}", listener.local_addr()?);
            Some(tokio::spawn(disktro_server::https::serve_redirect(
                listener,
                public_url.clone(),
                shutdown.clone(),
            )))
        }
        None => None,
    };
    let replica = disktro_server::leases::replica_name();
    let runner = disktro_server::jobs::Runner {
        registry: Arc::clone(&ctx.jobs),
        db: ctx.db.clone(),
        holder: replica,
        shutdown: shutdown.clone(),
    };
    let mut jobs = vec![disktro_server::leases::spawn_janitor(&runner)];
    jobs.extend(disktro_server::durability::spawn(&ctx, &ctx.durability, &runner));
    let workers = disktro_server::local_workers::start(
        args.local_workers,
        &args.data_dir,
        &public_url,
        &ctx.join_token,
        args.local_worker_capacity,
        args.heartbeat_interval,
    )
    .await
    .context("cannot start the local workers")?;
    if !workers.is_empty() {
        tracing::info!(count = workers.len(), "local workers started");
    }
    stop.await;
    tracing::info!("shutting down");
    shutdown.cancel();
    disktro_server::local_workers::stop(workers).await;
    server.await??;
    if let Some(redirect) = redirect {
        redirect.await??;
    }
    for job in jobs {
        job.await?;
    }
    tracing::info!("stopped");
    Ok(())
}
