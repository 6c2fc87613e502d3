//! Log-in throttling, kept in the database so every replica counts the same failures.
//!
//! Failures are counted per account (`email:…`) and per client address (`addr:…`) in a
//! [`WINDOW`]. From [`SLOW_AFTER`] failures on, each attempt waits a growing delay before it is
//! checked; from [`REFUSE_AFTER`] on, attempts are refused with 429 until the window ends, even
//! with the right password. An address gets [`ADDRESS_FACTOR`] times more room, since many
//! people can share one. A successful log-in clears its account's count.

use std::time::Duration;

use crate::db::Db;
use crate::error::ServerError;
use crate::store::{self, StoreError};
use disktro_core::api::ErrorCode;

pub const WINDOW: i64 = 15 * 60;
pub const SLOW_AFTER: i64 = 5;
pub const REFUSE_AFTER: i64 = 10;
pub const ADDRESS_FACTOR: i64 = 4;
/// Added per failure past [`SLOW_AFTER`], up to [`MAX_DELAY`].
pub const DELAY_STEP: Duration = Duration::from_millis(200);
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// The key's failures in its current window and when that window started; a window that has
/// ended counts as none, starting now.
async fn failures(db: &Db, key: &str, now: i64) -> Result<(i64, i64), StoreError> {
    Ok(match store::throttle::counter(db, key).await? {
        Some((failures, start)) if now - start < WINDOW => (failures, start),
        _ => (0, now),
    })
}

/// Before checking credentials: how long to wait, or a refusal.
pub async fn admit(db: &Db, account_key: &str, address_key: Option<&str>, now: i64) -> Result<Duration, ServerError> {
    let (account, account_start) = failures(db, account_key, now).await?;
    let (address, address_start) = match address_key {
        Some(k) => failures(db, k, now).await?,
        None => (0, now),
    };
    let weight = account.max(address / ADDRESS_FACTOR);
    if weight >= REFUSE_AFTER {
        let start = if account >= REFUSE_AFTER {
            account_start
        } else {
            address_start
        };
        let retry = (start + WINDOW - now).max(1);
        return Err(ServerError::refused(
            ErrorCode::TooManyAttempts,
            format!("too many failed attempts; try again in {} minutes", (retry + 59) / 60),
        ));
    }
    let extra = u32::try_from((weight - SLOW_AFTER + 1).max(0)).unwrap_or(u32::MAX);
    Ok((DELAY_STEP * extra).min(MAX_DELAY))
}

pub async fn record_failure(db: &Db, keys: &[&str], now: i64) -> Result<(), StoreError> {
    for key in keys {
        let (count, start) = failures(db, key, now).await?;
        store::throttle::set(db, key, count + 1, start).await?;
    }
    Ok(())
}

pub async fn clear(db: &Db, key: &str) -> Result<(), StoreError> {
    store::throttle::clear(db, key).await
}
