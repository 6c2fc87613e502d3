//! The server's own connections to workers, for audits, repair and garbage collection.
//!
//! One multiplexed WebSocket per worker, opened on first use and dropped after an error so the
//! next call reconnects. The server signs its own tokens for these requests, exactly as it does
//! for clients: short-lived, naming one worker and the shards concerned.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use disktro_core::keys::Keypair;
use disktro_core::order::Order;
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

    /// Read `shard` of `file` from `node` at `url` under a token the server signs with `key`; the
    /// bytes are checked against the shard id, and the worker is handed the server's order for
    /// them (its egress, as a reader's). A failed connection is forgotten.
    #[allow(clippy::too_many_arguments)]
    pub async fn fetch(
        &self,
        key: &Keypair,
        node: NodeId,
        url: &str,
        file: FileId,
        shard: ShardId,
        size: u64,
        now: i64,
    ) -> Result<Vec<u8>, ClientError> {
        let token = token(key, Operation::Get, node, file, vec![shard], size, now);
        let result = match self.client(node, url).await {
            Ok(c) => match c.get(&token, shard).await {
                Ok(verified) => {
                    let bytes = verified.into_bytes();
                    let serial = Token::head(&token).map(|t| t.serial);
                    if let Ok(serial) = serial {
                        let order = Order {
                            serial,
                            worker: node,
                            bytes: bytes.len() as u64,
                        };
                        // Not waited for: an order lost with its connection costs the worker
                        // this one shard's egress, never the repair.
                        let _ = c.order(order.sign(key)).await;
                    }
                    Ok(bytes)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.settle(node, result).await
    }

    /// Put `data` as `shard` of `file` on `node` at `url`; returns the worker's receipt (check it
    /// with [`receipt_holds`]). A failed connection is forgotten.
    #[allow(clippy::too_many_arguments)]
    pub async fn store(
        &self,
        key: &Keypair,
        node: NodeId,
        url: &str,
        file: FileId,
        shard: ShardId,
        data: Vec<u8>,
        now: i64,
    ) -> Result<Vec<u8>, ClientError> {
        let token = token(key, Operation::Put, node, file, vec![shard], data.len() as u64, now);
        let result = match self.client(node, url).await {
            Ok(c) => c.put(&token, shard, data).await,
            Err(e) => Err(e),
        };
        self.settle(node, result).await
    }

    /// Pass `result` on, forgetting the connection to `node` if it failed.
    async fn settle<T>(&self, node: NodeId, result: Result<T, ClientError>) -> Result<T, ClientError> {
        if let Err(e) = &result {
            self.failed(node, e).await;
        }
        result
    }

    /// Forget the connection to `node` after `error`, unless the worker merely refused.
    pub async fn failed(&self, node: NodeId, error: &ClientError) {
        if !matches!(error, ClientError::Refused { .. }) {
            self.clients.lock().await.remove(&node);
        }
    }
}

/// Whether `receipt` is `worker`'s signed word (checked with its key among `keys`) that it stored
/// `shard` of `size` bytes.
pub fn receipt_holds(
    keys: &HashMap<NodeId, disktro_core::keys::PublicKey>,
    receipt: &[u8],
    worker: NodeId,
    shard: ShardId,
    size: u64,
) -> bool {
    keys.get(&worker)
        .and_then(|k| disktro_core::token::Receipt::verify(receipt, k).ok())
        .is_some_and(|r| r.shard == shard && r.worker == worker && u64::from(r.size) == size)
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
        // The server's own reads are paid like a reader's: it signs orders for what it received.
        order_key: (operation == Operation::Get).then(|| server.public()),
        shards,
    }
    .sign(server)
    .expect("the server signs with its own key and lists at most one batch of shards")
}
