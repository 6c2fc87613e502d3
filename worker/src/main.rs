//! `disktro-worker`: the storage worker binary. The shard store exists (`disktro_worker::store`);
//! the WebSocket service that serves it under server-signed tokens does not yet (see DESIGN.md),
//! so the binary only states its version and the wire format it speaks.

use clap::Parser;

/// Disktro storage worker.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {}

fn main() -> std::process::ExitCode {
    Args::parse();
    eprintln!(
        "disktro-worker {} (wire format v{}) cannot store shards yet; run `make run` for the web app",
        env!("CARGO_PKG_VERSION"),
        disktro_core::FORMAT_VERSION
    );
    std::process::ExitCode::from(2)
}
