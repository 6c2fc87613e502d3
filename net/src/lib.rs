//! `disktro-net`: the native plumbing that the storage worker, the server and the CLI share, so
//! none of them reaches into another's binary crate.
//!
//! - [`client`]: the worker protocol's client (one multiplexed WebSocket per worker), for the
//!   CLI's transfers and the server's audits, repair and deletes;
//! - [`tls`]: rustls with the ring provider, server acceptors from PEM files and client configs;
//! - [`acme`]: certificates obtained and renewed over ACME (`tls-alpn-01`), for the server and
//!   workers alike;
//! - [`durable`]: crash-safe file writes (temp file, sync, rename, directory sync);
//! - [`keyfile`]: Ed25519 keys kept in a data directory (a worker's node key, the server's token
//!   key);
//! - [`config`]: the one way a process layers flags over a TOML file over defaults;
//! - [`units`] (from `core`): sizes (`10GiB`) and durations (`30s`) as people write them;
//! - [`shutdown`]: SIGTERM and Ctrl-C.
//!
//! The graph is `core ← net ← {worker, cli, server}`: the formats live in `disktro-core` (no I/O,
//! also built for the browser); everything here does I/O and is native only.

pub mod acme;
pub mod client;
pub mod config;
pub mod durable;
pub mod keyfile;
pub mod shutdown;
pub mod tls;

/// Sizes and durations with units, shared with the browser (so they live in `core`).
pub use disktro_core::units;

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds now (0 on a clock set before 1970, which every expiry check then treats as old).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
