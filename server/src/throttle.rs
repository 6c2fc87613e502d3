//! Log-in throttling, kept in the database so every replica counts the same failures.
//!
//! Attempts are counted per account (`email:…`) and per client address (`addr:…`) in a
//! [`WINDOW`], atomically and before the credentials are checked. From [`SLOW_AFTER`] failures
//! on, each attempt waits a growing delay before it is checked; from [`REFUSE_AFTER`] on,
//! attempts are refused with 429 until the window ends, even with the right password. An address
//! gets [`ADDRESS_FACTOR`] times more room, since many people can share one. A successful log-in
//! clears its account's count and takes its attempt back from the address's.
//!
//! **Sign-ups** are counted per client source ([`sign_up`]): each costs Argon2 memory and a
//! quota, so one network gets [`SIGNUPS_PER_SOURCE`] per window.
//!
//! A **known device** (one the account logged in from before, [`crate::sessions::Device`]) is
//! counted under its own key (`device:…`) instead, with the same limits: ten wrong guesses by
//! strangers lock the account against new devices for the window, never against its owner's.

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
/// Sign-ups accepted from one client source per [`WINDOW`] unless `--signups-per-address` says
/// otherwise.
pub const SIGNUPS_PER_SOURCE: u32 = 5;

/// Count this attempt under the account's key and the address's, then decide: how long to wait
/// before checking it, or a refusal. Counted *before* the check, in one statement per key, so
/// that concurrent guesses cannot all be checked while the count lags: at most
/// [`REFUSE_AFTER`] attempts per window are ever checked. A success takes its count back
/// ([`succeeded`]); a failure leaves it.
pub async fn attempt(db: &Db, account_key: &str, address_key: Option<&str>, now: i64) -> Result<Duration, ServerError> {
    let (account, account_start) = store::throttle::count_attempt(db, account_key, now, WINDOW).await?;
    let (address, address_start) = match address_key {
        Some(k) => store::throttle::count_attempt(db, k, now, WINDOW).await?,
        None => (0, now),
    };
    // The attempts before this one, as failures were counted before.
    let (account, address) = (account - 1, (address - 1).max(0));
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

/// The attempt was right: the account's count is cleared and the address's attempt taken back.
pub async fn succeeded(db: &Db, account_key: &str, address_key: Option<&str>) -> Result<(), StoreError> {
    store::throttle::clear(db, account_key).await?;
    if let Some(k) = address_key {
        store::throttle::uncount_attempt(db, k).await?;
    }
    Ok(())
}

/// Count a sign-up from `source` (a [`crate::client_addr::ClientAddr::source`]) and refuse it
/// past `limit` per [`WINDOW`] (0: no limit). Counted before anything else is done, whatever
/// becomes of the sign-up, so probing which addresses have accounts costs a sign-up each too.
pub async fn sign_up(db: &Db, source: Option<&str>, limit: u32, now: i64) -> Result<(), ServerError> {
    let Some(source) = source.filter(|_| limit > 0) else {
        return Ok(());
    };
    let (count, start) = store::throttle::count_attempt(db, &format!("signup:{source}"), now, WINDOW).await?;
    if count > i64::from(limit) {
        let retry = (start + WINDOW - now).max(1);
        return Err(ServerError::refused(
            ErrorCode::TooManyAttempts,
            format!(
                "too many new accounts from this network; try again in {} minutes",
                (retry + 59) / 60
            ),
        ));
    }
    Ok(())
}
