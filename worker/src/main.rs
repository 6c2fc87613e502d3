//! `disktro-worker`: run a storage worker until SIGTERM or Ctrl-C.

use clap::Parser as _;
use disktro_worker::config::Args;

/// Threads for disk I/O and hashing.
const BLOCKING_THREADS: usize = 8;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let config = match Args::parse().into_config() {
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
