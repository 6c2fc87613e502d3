//! What every request handler shares: the database, the server's token-signing key, the join
//! token and the heartbeat interval. Nothing here lives outside the database except the key file,
//! so replicas sharing one PostgreSQL (and one key file) behave as one server.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use disktro_core::keys::Keypair;

use crate::db::{Db, DbError};

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug)]
pub struct Context {
    pub db: Db,
    /// Signs worker tokens; workers pin its public half at registration.
    pub key: Keypair,
    pub join_token: String,
    pub heartbeat_interval: Duration,
    /// Lifetime of get tokens (`--get-token-ttl`).
    pub get_token_ttl: Duration,
    /// `Secure` and `__Host-` session cookies: on when the public URL is `https://`.
    pub secure_cookies: bool,
    /// Storage quota of new accounts, bytes.
    pub default_quota: i64,
    /// Audits, repair, garbage collection and rewards.
    pub durability: crate::config::Durability,
    /// What this replica's background jobs are doing (`/api/v1/jobs`).
    pub jobs: std::sync::Arc<crate::jobs::Registry>,
    /// Reverse proxies whose `X-Forwarded-For` names the client ([`crate::client_addr`]).
    pub trusted_proxies: Vec<crate::client_addr::Cidr>,
    /// Sign-ups accepted per client source per throttle window (0: no limit).
    pub signups_per_source: u32,
    /// What `GET /metrics` shows ([`crate::metrics`]).
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Reads granted per file, for the hot-files job ([`crate::durability::hot`]).
    pub reads: std::sync::Arc<crate::durability::hot::ReadCounts>,
    /// The nodes uploads are placed on ([`crate::roster`]).
    pub roster: crate::roster::Roster,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Key(#[from] disktro_net::keyfile::KeyFileError),
}

/// Storage quota of new accounts unless `--default-quota` says otherwise.
pub const DEFAULT_QUOTA: i64 = 10 << 30;

/// The server key file in the data directory (same format as a worker's node key).
pub const KEY_FILE: &str = "server.key";

impl Context {
    /// Load the key from `data_dir`, open the database, and settle the join token: the one given,
    /// else the one stored in the database, else a new one (stored, so replicas and restarts
    /// agree on it).
    pub async fn open(
        data_dir: &Path,
        database_url: &str,
        join_token: Option<String>,
        heartbeat_interval: Duration,
    ) -> Result<Self, ContextError> {
        let dir = data_dir.to_owned();
        let (key, created) =
            tokio::task::spawn_blocking(move || disktro_net::keyfile::load_or_create_file(&dir, KEY_FILE))
                .await
                .expect("key loading does not panic")?;
        if created {
            tracing::info!(fingerprint = %key.public().fingerprint(), "created the server's token key");
        }
        let db = Db::open(database_url).await?;
        let join_token = match join_token {
            Some(token) => token,
            None => {
                let fresh = format!("dkj_{}", disktro_core::ids::to_hex(&disktro_core::random_bytes::<20>()));
                crate::store::settings::join_token(&db, &fresh).await?
            }
        };
        Ok(Self {
            db,
            key,
            join_token,
            heartbeat_interval,
            get_token_ttl: crate::grants::GET_TOKEN_TTL,
            secure_cookies: false,
            default_quota: DEFAULT_QUOTA,
            durability: crate::config::Durability::default(),
            jobs: std::sync::Arc::default(),
            trusted_proxies: Vec::new(),
            signups_per_source: crate::throttle::SIGNUPS_PER_SOURCE,
            metrics: std::sync::Arc::default(),
            reads: std::sync::Arc::default(),
            roster: crate::roster::Roster::default(),
        })
    }
}
