//! `disktro`: the command-line client. It will upload, download and share files on the same
//! codec as the browser (see DESIGN.md); today it only states its version and format.

use clap::Parser;

/// Disktro command-line client.
#[derive(Debug, Parser)]
#[command(version, about, long_about = None)]
struct Args {}

fn main() -> std::process::ExitCode {
    Args::parse();
    eprintln!(
        "disktro {} (format v{}) has no commands yet; use the web app (`make run`)",
        env!("CARGO_PKG_VERSION"),
        disktro_core::FORMAT_VERSION
    );
    std::process::ExitCode::from(2)
}
