//! The server's own connections to workers, for audits, repair and garbage collection.
//!
//! One multiplexed WebSocket per worker, opened on first use and dropped after an error so the
//! next call reconnects. The server signs its own tokens for these requests, exactly as it does
//! for clients: short-lived, naming one worker and the shards concerned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use disktro_core::keys::Keypair;
use disktro_core::token::{Operation, Scope, Token};
use disktro_core::{FileId, NodeId, Serial, ShardId};
use disktro_net::client::{ClientError, ConnectOptions, WorkerClient};
use tokio::sync::Mutex;

/// Request timeout for moving shards (repair reads and writes, deletes).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(60);
/// Lifetime of the tokens the server signs for itself.
const TOKEN_TTL: u64 = 10 * 60;

/// Connections by node, with one request timeout for all.
#[derive(Debug)]
pub struct Fleet {
    options: ConnectOptions,
    clients: Mutex<HashMap<NodeId, Arc<WorkerClient>>>,
}

impl Fleet {
    pub fn new(request_timeout: Duration) -> Self {
        Self {
            options: ConnectOptions {
                connect_timeout: request_timeout.min(Duration::from_secs(10)),
                request_timeout,
                ..ConnectOptions::default()
            },
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The connection to `node` at `url`, opened if needed.
    pub async fn client(&self, node: NodeId, url: &str) -> Result<Arc<WorkerClient>, ClientError> {
        if let Some(c) = self.clients.lock().await.get(&node) {
            return Ok(Arc::clone(c));
        }
        let client = Arc::new(WorkerClient::connect(url, &self.options).await?);
        self.clients.lock().await.insert(node, Arc::clone(&client));
        Ok(client)
    }

    /// Forget the connection to `node` after `error`, unless the worker merely refused.
    pub async fn failed(&self, node: NodeId, error: &ClientError) {
        if !matches!(error, ClientError::Refused { .. }) {
            self.clients.lock().await.remove(&node);
        }
    }
}

/// A token for the server's own request to `worker`.
pub fn token(
    server: &Keypair,
    operation: Operation,
    worker: NodeId,
    file: FileId,
    mut shards: Vec<ShardId>,
    byte_budget: u64,
    now: i64,
) -> Vec<u8> {
    shards.sort_unstable();
    shards.dedup();
    Token {
        operation,
        issuer: server.public(),
        worker,
        scope: Scope::File(file),
        serial: Serial::random(),
        expires_at: u64::try_from(now).unwrap_or(0) + TOKEN_TTL,
        byte_budget,
        shards,
    }
    .sign(server)
    .expect("the server signs with its own key and lists at most one batch of shards")
}
