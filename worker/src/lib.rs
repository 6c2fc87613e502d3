//! `disktro-worker`: the storage worker as a library, so the server can embed local workers.
//!
//! [`store`] keeps shards durably and content-addressed on disk; the WebSocket service, token
//! checks, heartbeats and background workers build on it.

pub mod store;
