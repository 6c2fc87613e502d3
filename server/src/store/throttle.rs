//! Failure counters of the log-in and share-password throttle (`login_failures`), one per key.

use sqlx::Row as _;

use super::{Db, StoreError};

/// The key's failures and when its window started, if it has a counter.
pub async fn counter(db: &Db, key: &str) -> Result<Option<(i64, i64)>, StoreError> {
    let row = sqlx::query("SELECT failures, window_start FROM login_failures WHERE key = $1")
        .bind(key)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row
        .map(|r| Ok::<_, sqlx::Error>((r.try_get("failures")?, r.try_get("window_start")?)))
        .transpose()?)
}

/// Set the key's counter. (Read then written by the caller, so concurrent failures can be
/// counted once; see DESIGN.md.)
pub async fn set(db: &Db, key: &str, failures: i64, window_start: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO login_failures (key, failures, window_start) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, window_start = excluded.window_start",
    )
    .bind(key)
    .bind(failures)
    .bind(window_start)
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn clear(db: &Db, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}
