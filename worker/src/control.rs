//! Talking to the control server: registration with the join token, then heartbeats.
//!
//! ```text
//! POST {server}/api/v1/nodes/register   Registration  → Registered   (signed by the node key)
//! POST {server}/api/v1/nodes/heartbeat  Heartbeat     → HeartbeatAck (signed by the node key)
//! ```
//!
//! Both bodies are JSON, signed with the node's Ed25519 key over the exact body bytes (domains
//! `"register"` and `"heartbeat"`, signature in the [`api::SIGNATURE_HEADER`] header as hex), so
//! the server knows the node holds the key its id derives from, and a heartbeat carries its own
//! timestamp against replay.
//!
//! The server's public key comes back at registration and is **pinned** in `server.pub` in the
//! data directory: a later answer with another key is refused (logged), since that key decides
//! which tokens the worker obeys. A worker started with `--issuer-key` holds the server to it.
//!
//! The loop never stops the worker: while the server is unreachable the worker keeps serving
//! stored shards with the key it has, retries with backoff, and registers again when the server
//! answers a heartbeat with 401 or 404 (it forgot the node, or restarted on a new database).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use disktro_core::ShardId;
use disktro_core::keys::PublicKey;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use disktro_core::api::node as api;
use disktro_core::inventory::{self, BucketListing, Inventory};
use disktro_net::durable;
use disktro_net::unix_now;

use crate::node::Node;

/// What the control loop needs besides the node.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    pub server: String,
    pub join_token: String,
    pub url: String,
    pub zone: String,
    pub operator: String,
    pub data_dir: PathBuf,
    pub interval: Duration,
    /// A heartbeat carries an inventory summary when this long has passed since the last one.
    pub inventory_interval: Duration,
    /// Set by `--issuer-key`: the server must present this key.
    pub expected_server_key: Option<PublicKey>,
}

pub const PINNED_KEY_FILE: &str = "server.pub";

/// The server key pinned at an earlier registration, if any.
pub fn pinned_server_key(data_dir: &Path) -> Result<Option<PublicKey>, PinnedKeyError> {
    let path = data_dir.join(PINNED_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => disktro_core::ids::from_hex::<32>(text.trim())
            .map(|b| Some(PublicKey(b)))
            .map_err(|_| PinnedKeyError::Damaged(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PinnedKeyError::Read { path, source }),
    }
}

/// The pinned server key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PinnedKeyError {
    #[error("{0} is damaged; remove it to register afresh")]
    Damaged(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
}

fn pin_server_key(data_dir: &Path, key: &PublicKey) -> std::io::Result<()> {
    let hex = disktro_core::ids::to_hex(key.as_bytes());
    durable::replace(&data_dir.join(PINNED_KEY_FILE), format!("{hex}\n").as_bytes())
}

/// Free bytes for unprivileged users on the file system holding `dir`.
pub fn free_disk(dir: &Path) -> u64 {
    rustix::fs::statvfs(dir).map_or(0, |s| s.f_bavail.saturating_mul(s.f_frsize))
}

#[derive(Debug)]
enum Failure {
    /// The server does not know this node (any more): register again.
    Unknown,
    /// The server refused for good (bad join token, key mismatch): log and retry slowly.
    Refused(String),
    /// Unreachable or failing: retry with backoff.
    Unavailable(String),
}

struct Control {
    node: Arc<Node>,
    config: ControlConfig,
    http: reqwest::Client,
    /// When the last inventory summary was delivered (`None`: not yet).
    summarized: std::sync::Mutex<Option<std::time::Instant>>,
    /// Buckets the server asked to have listed.
    wanted: std::sync::Mutex<Vec<u8>>,
    /// The `revoked_at` of the newest revocation applied (0: none since start-up).
    revocations_since: AtomicU64,
}

impl Control {
    async fn post<T: Serialize>(&self, path: &str, domain: &str, body: &T) -> Result<reqwest::Response, Failure> {
        let bytes = serde_json::to_vec(body).expect("plain structs serialize");
        let signature = self.node.keypair.sign(domain, &bytes);
        let response = self
            .http
            .post(format!("{}{path}", self.config.server))
            .header("content-type", "application/json")
            .header(api::SIGNATURE_HEADER, disktro_core::ids::to_hex(&signature))
            .body(bytes)
            .send()
            .await
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = response.text().await.unwrap_or_default();
        Err(match status.as_u16() {
            401 | 404 => Failure::Unknown,
            400..=499 => Failure::Refused(format!("{status}: {}", text.trim())),
            _ => Failure::Unavailable(format!("{status}")),
        })
    }

    async fn register(&self) -> Result<Duration, Failure> {
        let registration = api::Registration {
            join_token: self.config.join_token.clone(),
            public_key: self.node.keypair.public(),
            url: self.config.url.clone(),
            zone: self.config.zone.clone(),
            operator: self.config.operator.clone(),
            capacity: self.node.store.stats().capacity,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            sent_at: unix_now(),
        };
        let response = self.post(api::REGISTER_PATH, api::REGISTER_DOMAIN, &registration).await;
        let registered: api::Registered = match response {
            Ok(r) => r.json().await.map_err(|e| Failure::Unavailable(e.to_string()))?,
            Err(Failure::Unknown) => return Err(Failure::Refused("join token refused".to_owned())),
            Err(e) => return Err(e),
        };
        let key = registered.server_key;
        let known = self.node.admission.issuer().or(self.config.expected_server_key);
        if let Some(known) = known
            && known != key
        {
            return Err(Failure::Refused(format!(
                "server presented key {} but this worker is pinned to {}; refusing to obey it",
                key.fingerprint(),
                known.fingerprint()
            )));
        }
        if known.is_none() {
            let dir = self.config.data_dir.clone();
            tokio::task::spawn_blocking(move || pin_server_key(&dir, &key))
                .await
                .map_err(|e| Failure::Unavailable(e.to_string()))?
                .map_err(|e| Failure::Refused(format!("cannot pin the server key: {e}")))?;
            self.node.admission.set_issuer(key);
        }
        tracing::info!(node_id = %self.node.node_id, server = %self.config.server, "registered with the server");
        Ok(Duration::from_secs(registered.heartbeat_interval_secs.clamp(1, 3600)))
    }

    /// The summary (first, then once per inventory interval) and the listings asked for, read
    /// from the disk.
    async fn holdings(&self) -> (Option<Inventory>, Vec<BucketListing>) {
        let wanted = self.wanted.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let summarize = self
            .summarized
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none_or(|at| at.elapsed() >= self.config.inventory_interval);
        if !summarize && wanted.is_empty() {
            return (None, Vec::new());
        }
        let node = Arc::clone(&self.node);
        let ids = match tokio::task::spawn_blocking(move || node.store.ids()).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot list the store for the inventory");
                return (None, Vec::new());
            }
            Err(_) => return (None, Vec::new()),
        };
        let summary = summarize.then(|| inventory::summarize(&ids));
        (summary, inventory::list(&ids, &wanted))
    }

    /// Revoke the put tokens the server withdrew and delete the shards they stored newly.
    async fn apply(&self, revoked: &[api::Revocation]) {
        let now = unix_now();
        let mut doomed = Vec::new();
        for r in revoked {
            doomed.extend(self.node.admission.revoke(r.serial, r.expires_at, now));
            self.revocations_since.fetch_max(r.revoked_at, Ordering::Relaxed);
        }
        if doomed.is_empty() {
            return;
        }
        let node = Arc::clone(&self.node);
        let count = doomed.len();
        let deleted = tokio::task::spawn_blocking(move || {
            doomed
                .iter()
                .filter(|shard| match node.store.delete(shard) {
                    Ok(gone) => gone,
                    Err(e) => {
                        tracing::warn!(shard = %shard, error = %e, "cannot delete a shard of a revoked upload");
                        false
                    }
                })
                .count()
        })
        .await
        .unwrap_or(0);
        tracing::info!(
            shards = count,
            deleted,
            "deleted shards stored under revoked put tokens"
        );
    }

    async fn heartbeat(&self) -> Result<Duration, Failure> {
        let stats = self.node.store.stats();
        let corrupt: Vec<ShardId> = self.node.pending_reports();
        let claims = self.node.pending_claims();
        let (inventory, listings) = self.holdings().await;
        let dir = self.config.data_dir.clone();
        let beat = api::Heartbeat {
            node_id: self.node.node_id,
            sent_at: unix_now(),
            url: self.config.url.clone(),
            zone: self.config.zone.clone(),
            operator: self.config.operator.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: self.node.started.elapsed().as_secs(),
            capacity: stats.capacity,
            used: stats.used,
            free_disk: tokio::task::spawn_blocking(move || free_disk(&dir)).await.unwrap_or(0),
            shards: stats.shards,
            quarantined: stats.quarantined,
            ingress_bytes: self.node.metrics.received_bytes.get(),
            egress_bytes: self.node.metrics.sent_bytes.get(),
            scrub: self.node.scrub.snapshot(),
            corrupt_shards: corrupt.clone(),
            inventory,
            listings,
            egress_claims: claims
                .iter()
                .map(|c| api::EgressClaim {
                    serial: c.serial,
                    served: c.served,
                    order: c.order.as_deref().map(disktro_core::api::Base64::from),
                    token: c.token.as_deref().map(disktro_core::api::Base64::from),
                })
                .collect(),
            revocations_since: self.revocations_since.load(Ordering::Relaxed),
        };
        let ack: api::HeartbeatAck = self
            .post(api::HEARTBEAT_PATH, api::HEARTBEAT_DOMAIN, &beat)
            .await?
            .json()
            .await
            .map_err(|e| Failure::Unavailable(e.to_string()))?;
        self.node.reported(&corrupt);
        self.node.claimed(&claims, unix_now());
        if beat.inventory.is_some() {
            *self.summarized.lock().unwrap_or_else(PoisonError::into_inner) = Some(std::time::Instant::now());
        }
        *self.wanted.lock().unwrap_or_else(PoisonError::into_inner) = ack.list_buckets;
        self.apply(&ack.revoked).await;
        Ok(Duration::from_secs(ack.heartbeat_interval_secs.clamp(1, 3600)))
    }
}

/// The client for the control server's API: the public web roots and the CA given with
/// `--ca-cert` trusted, requests bounded to 10 s.
pub fn http_client() -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("disktro-worker/", env!("CARGO_PKG_VERSION")));
    for root in disktro_net::tls::extra_roots() {
        builder = builder.add_root_certificate(reqwest::Certificate::from_der(root)?);
    }
    builder.build()
}

/// Register, then heartbeat, until `shutdown`.
pub async fn run(node: Arc<Node>, config: ControlConfig, shutdown: CancellationToken) {
    let http = match http_client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build an HTTP client; not registering");
            return;
        }
    };
    let control = Control {
        node,
        config,
        http,
        summarized: std::sync::Mutex::new(None),
        wanted: std::sync::Mutex::new(Vec::new()),
        revocations_since: AtomicU64::new(0),
    };
    let mut registered = false;
    let mut interval = control.config.interval;
    let mut backoff = Duration::from_secs(1);
    loop {
        let result = if registered {
            control.heartbeat().await
        } else {
            control.register().await
        };
        let wait = match result {
            Ok(next) => {
                backoff = Duration::from_secs(1);
                if !registered {
                    registered = true;
                    interval = next;
                    // Heartbeat right away so the server sees the node's state at once.
                    Duration::ZERO
                } else {
                    interval = next;
                    next
                }
            }
            Err(Failure::Unknown) => {
                tracing::warn!("the server does not know this node; registering again");
                registered = false;
                Duration::ZERO
            }
            Err(Failure::Refused(reason)) => {
                tracing::error!(%reason, "the server refused this worker; still serving stored shards");
                Duration::from_secs(60).max(interval)
            }
            Err(Failure::Unavailable(reason)) => {
                tracing::warn!(%reason, retry_in = ?backoff, "server unreachable; still serving stored shards");
                let wait = backoff;
                backoff = (backoff * 2)
                    .min(Duration::from_secs(30))
                    .min(interval.max(Duration::from_secs(1)));
                wait
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
