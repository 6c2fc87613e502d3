//! `disktro-worker`: the storage worker as a library, so the server can embed local workers.
//!
//! [`store`] keeps shards durably and content-addressed on disk, [`identity`] is the node's key,
//! [`size`] reads capacities with units, [`durable`] is the crash-safe write both use. The
//! WebSocket service, token checks, heartbeats and background workers build on these.

pub mod durable;
pub mod identity;
pub mod size;
pub mod store;
