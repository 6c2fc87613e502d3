//! `disktro-worker`: run a storage worker until SIGTERM or Ctrl-C.

use clap::Parser as _;
use disktro_worker::config::{Args, Command, WorkerConfig};

/// Threads for disk I/O and hashing.
const BLOCKING_THREADS: usize = 8;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let mut args = Args::parse();
    let command = args.command.take();
    let config = match args.into_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    // Disk work runs on the blocking pool; a few threads keep the disk busy, and fewer threads
    // mean fewer malloc arenas holding freed shard buffers (resident memory).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .expect("a tokio runtime");
    if let Some(Command::Drain { cancel, no_wait }) = command {
        return runtime.block_on(drain(&config, !cancel, !no_wait));
    }
    runtime.block_on(async {
        // Before `start` announces the address: a SIGTERM from then on is a clean shutdown.
        let stop = disktro_net::shutdown::signal();
        let worker = match disktro_worker::start(config).await {
            Ok(w) => w,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        stop.await;
        tracing::info!("shutting down: finishing in-flight requests");
        worker.shutdown().await;
        tracing::info!("stopped");
        std::process::ExitCode::SUCCESS
    })
}

/// `disktro-worker drain`: ask, then follow the moves (progress on stderr, the outcome on stdout).
async fn drain(config: &WorkerConfig, drain: bool, follow: bool) -> std::process::ExitCode {
    let progress = |s: &disktro_core::api::node::DrainStatus| {
        eprintln!("{}: {} ({} shards left on it)", s.node_id, s.state, s.shards_left);
    };
    if let Some(path) = &config.ca_cert
        && let Err(e) = disktro_net::tls::trust(path)
    {
        eprintln!("error: --ca-cert: {e}");
        return std::process::ExitCode::from(2);
    }
    match disktro_worker::drain::run(config.server.as_deref(), &config.data_dir, drain, follow, &progress).await {
        Ok(status) => {
            let outcome = match status.state.as_str() {
                "exited" => "drained: every shard is on other nodes; the worker can be stopped",
                "draining" => "draining: the server is moving this node's shards; keep the worker running",
                _ => "staying: the node gets new shards again",
            };
            #[allow(clippy::print_stdout)]
            {
                println!("{outcome}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
