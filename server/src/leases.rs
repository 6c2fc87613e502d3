//! Job leases: which replica runs a background job.
//!
//! Replicas share one database and nothing else, so a job (the janitor today; audits, repair and
//! garbage collection next) runs only where its lease row names this replica and has not expired.
//! Taking a lease is one conditional upsert, atomic on SQLite and PostgreSQL alike: it succeeds
//! when no row exists, when the row's lease has expired, or when this replica already holds it
//! (renewal). A replica that dies simply stops renewing; another takes over after the TTL.

use std::sync::Arc;
use std::time::Duration;

use crate::context::{Context, unix_now};
use crate::db::Db;

/// Take or renew the lease `name` for `holder` until `now + ttl`. True when `holder` now holds it.
pub async fn try_acquire(db: &Db, name: &str, holder: &str, ttl: Duration, now: i64) -> Result<bool, sqlx::Error> {
    let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
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

/// Give the lease up (on shutdown), so another replica need not wait for the TTL.
pub async fn release(db: &Db, name: &str, holder: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
        .bind(name)
        .bind(holder)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A random name for this replica's lifetime.
pub fn replica_name() -> String {
    format!(
        "replica-{}",
        disktro_core::ids::to_hex(&disktro_core::random_bytes::<8>())
    )
}

/// How often the janitor runs, and how long its lease lasts (three missed runs).
pub const JANITOR_EVERY: Duration = Duration::from_secs(60);

/// The janitor: removes expired uploads (their put tokens go with them), expired sessions and old
/// log-in failure windows. Runs every [`JANITOR_EVERY`] on whichever replica holds its lease.
pub async fn run_janitor(ctx: Arc<Context>, holder: String, shutdown: tokio_util::sync::CancellationToken) {
    let ttl = JANITOR_EVERY * 3;
    loop {
        match try_acquire(&ctx.db, "janitor", &holder, ttl, unix_now()).await {
            Ok(true) => {
                if let Err(e) = sweep(&ctx.db, unix_now()).await {
                    tracing::warn!(error = %e, "janitor sweep failed");
                }
            }
            Ok(false) => tracing::debug!("another replica holds the janitor lease"),
            Err(e) => tracing::warn!(error = %e, "janitor lease"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(JANITOR_EVERY) => {}
        }
    }
    if let Err(e) = release(&ctx.db, "janitor", &holder).await {
        tracing::warn!(error = %e, "releasing the janitor lease");
    }
}

/// One janitor pass. Returns the number of expired uploads removed.
pub async fn sweep(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query("DELETE FROM upload_tokens WHERE upload_id IN (SELECT id FROM uploads WHERE expires_at <= $1)")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    let uploads = sqlx::query("DELETE FROM uploads WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM login_failures WHERE window_start <= $1")
        .bind(now - crate::throttle::WINDOW)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    if uploads > 0 {
        tracing::info!(uploads, "removed expired uploads");
    }
    Ok(uploads)
}
