//! The data-access layer: SQL lives here and nowhere else, each statement behind a function that
//! takes typed values and returns typed rows, so the domain modules read as the rules they apply.
//! Statements are written once for SQLite and PostgreSQL (sqlx's `Any` driver, `$n` placeholders).
//!
//! Functions that must run inside a caller's transaction take `&mut Tx`; the others take the
//! [`Db`] and use its pool. Values that no well-behaved server wrote (an id that is not hex, a
//! redundancy out of range) come back as [`StoreError::Corrupt`].
//!
//! Every statement is a `&'static str`: the one condition shared by several statements (a healthy
//! placement, [`healthy!`]) is joined in with `concat!` at compile time, never with `format!`.
//!
//! | module | tables |
//! | --- | --- |
//! | [`db`] | the pool, its migrations (`migrations/`) and SQLite's settings |
//! | [`accounts`] | `accounts` (quota and usage, keys) |
//! | [`sessions`] | `sessions`, `api_tokens`, `known_devices` |
//! | [`settings`] | `settings` (the join token; the nodes' epoch is [`nodes`]') |
//! | [`throttle`] | `login_failures` |
//! | [`leases`] | `leases`, and the janitor's sweep |
//! | [`uploads`] | `uploads`, `upload_tokens` |
//! | [`files`] | `files`, `file_shards` |
//! | [`folders`] | `folders` (an account's tree, names sealed), `files.folder_id` |
//! | [`shares`] | `shares` |
//! | [`nodes`] | `nodes`, `node_samples` (registry, heartbeats, reputation columns) |
//! | [`placed`] | `node_placed`, `node_placed_changes` (shards and bytes placed per node) |
//! | [`health`] | chunk health over `file_shards` × `nodes`, `corrupt_reports` (lost shards), repair's moves |
//! | [`audits`] | `audits`, `audit_containment`, `file_shards.audited_at` |
//! | [`collection`] | `gc_shards`, `orphan_candidates` (garbage collection and holdings) |
//! | [`copies`] | `hot_copies` (extra copies of hot files' shards; never counted toward redundancy) |
//! | [`ledger`] | `ledger`, `egress_claims` (operators' rewards) |

/// The SQL condition for a healthy placement row `s` joined to its node `n`, with `$1` the oldest
/// `last_seen` that counts as online ([`crate::nodes::online_since`]): the node is online and
/// active (neither suspended nor disqualified), and the shard is not reported lost there.
macro_rules! healthy {
    () => {
        "(n.last_seen >= $1 AND n.state = 'active' AND NOT EXISTS \
          (SELECT 1 FROM corrupt_reports c WHERE c.node_id = s.node_id AND c.shard_id = s.shard_id))"
    };
}

pub mod accounts;
pub mod audits;
pub mod collection;
pub mod copies;
pub mod db;
pub mod files;
pub mod folders;
pub mod health;
pub mod leases;
pub mod ledger;
pub mod nodes;
pub mod placed;
pub mod sessions;
pub mod settings;
pub mod shares;
pub mod throttle;
pub mod uploads;

pub use db::{Conflict, Db, is_serialization_failure};

/// A write transaction (see [`Db::begin_write`]).
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Why a stored value could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A stored value does not decode: the database holds what this server did not write.
    #[error("stored {0} does not decode")]
    Corrupt(&'static str),
}

impl From<StoreError> for crate::error::ServerError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Database(e) => Self::Database(e),
            StoreError::Corrupt(what) => Self::internal(format!("stored {what} does not decode")),
        }
    }
}

/// Counts and sizes are `u64` in the domain and `BIGINT` in the database; values past `i64::MAX`
/// cannot occur (sizes are limited far below) and saturate.
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The other way: a negative stored count reads as 0.
pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn parse<T: std::str::FromStr>(text: &str, what: &'static str) -> Result<T, StoreError> {
    text.parse().map_err(|_| StoreError::Corrupt(what))
}

/// Binary values are stored as the API carries them (base64url text); this reads one back.
fn base64(row: &sqlx::any::AnyRow, column: &'static str) -> Result<disktro_core::api::Base64, StoreError> {
    use sqlx::Row as _;
    let text: String = row.try_get(column)?;
    disktro_core::api::Base64::decode(&text).map_err(|_| StoreError::Corrupt(column))
}
