//! Attempt counters of the log-in and share-password throttle (`login_failures`), one per key.

use sqlx::Row as _;

use super::{Db, StoreError};

/// Count one attempt under `key` at `now` in one statement, and return the attempts in the
/// key's window (this one included) and when the window started; a window older than `window`
/// seconds starts again at this attempt. One statement, so concurrent attempts are each counted
/// (in a counter's transaction, [`Db::begin_counter`]).
pub async fn count_attempt(db: &Db, key: &str, now: i64, window: i64) -> Result<(i64, i64), StoreError> {
    let mut tx = db.begin_counter().await?;
    let row = sqlx::query(
        "INSERT INTO login_failures (key, failures, window_start) VALUES ($1, 1, $2)
         ON CONFLICT (key) DO UPDATE SET
             failures = CASE WHEN $2 - login_failures.window_start >= $3 THEN 1
                             ELSE login_failures.failures + 1 END,
             window_start = CASE WHEN $2 - login_failures.window_start >= $3 THEN $2
                                 ELSE login_failures.window_start END
         RETURNING failures, window_start",
    )
    .bind(key)
    .bind(now)
    .bind(window)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((row.try_get("failures")?, row.try_get("window_start")?))
}

/// Take back one attempt counted under `key` (it turned out not to be a failure).
pub async fn uncount_attempt(db: &Db, key: &str) -> Result<(), StoreError> {
    let mut tx = db.begin_counter().await?;
    sqlx::query("UPDATE login_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn clear(db: &Db, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM login_failures WHERE key = $1")
        .bind(key)
        .execute(&db.pool)
        .await?;
    Ok(())
}
