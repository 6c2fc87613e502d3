//! Job leases (`leases`) and the janitor's sweep of what expired (uploads with their put tokens,
//! sessions, old log-in failure windows).

use super::{Db, StoreError};

/// Take or renew the lease `name` for `holder` until `expires_at`: one conditional upsert,
/// atomic on SQLite and PostgreSQL alike. True when `holder` now holds it.
pub async fn try_acquire(db: &Db, name: &str, holder: &str, expires_at: i64, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
         WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
    )
    .bind(name)
    .bind(holder)
    .bind(expires_at)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn release(db: &Db, name: &str, holder: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// End uploads expired by `now` ([`super::uploads::expire`]), forget devices unused since
/// `devices_before`, remove sessions expired by `now`, and log-in
/// failure windows that started before `failures_before`, in one transaction. Returns the
/// number of uploads removed.
pub async fn sweep(db: &Db, now: i64, failures_before: i64, devices_before: i64) -> Result<u64, StoreError> {
    let mut tx = db.begin_write().await?;
    let uploads = super::uploads::expire(&mut tx, now).await?;
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM api_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM known_devices WHERE last_used_at <= $1")
        .bind(devices_before)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM login_failures WHERE window_start <= $1")
        .bind(failures_before)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(uploads)
}
