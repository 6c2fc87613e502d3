//! The data-access layer: SQL lives here and nowhere else, each statement behind a function that
//! takes typed values and returns typed rows, so the domain modules read as the rules they apply.
//! Statements are written once for SQLite and PostgreSQL (sqlx's `Any` driver, `$n` placeholders).
//!
//! Functions that must run inside a caller's transaction take `&mut Tx`; the others take the
//! [`Db`] and use its pool. Values that no well-behaved server wrote (an id that is not hex, a
//! redundancy out of range) come back as [`StoreError::Corrupt`].
//!
//! Moved here so far: [`accounts`], [`sessions`] (and API tokens), [`settings`], [`throttle`],
//! [`leases`] (and the janitor's sweep), [`uploads`], [`files`] and [`shares`]. The other domain
//! modules (nodes, rewards, durability) still hold their own statements and move here next.

pub mod accounts;
pub mod files;
pub mod leases;
pub mod sessions;
pub mod settings;
pub mod shares;
pub mod throttle;
pub mod uploads;

pub use crate::db::Db;

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
