//! Job leases: which replica runs a background job.
//!
//! Replicas share one database and nothing else, so a job (the janitor, and the durability jobs
//! of [`crate::durability`]) runs only where its lease row names this replica and has not expired.
//! Taking a lease is one conditional upsert, atomic on SQLite and PostgreSQL alike: it succeeds
//! when no row exists, when the row's lease has expired, or when this replica already holds it
//! (renewal). A replica that dies simply stops renewing; another takes over after the TTL.

use std::sync::Arc;
use std::time::Duration;

use crate::context::{Context, unix_now};
use crate::db::Db;
use crate::durability::error::JobError;
use crate::store::{self, StoreError};

/// Take or renew the lease `name` for `holder` until `now + ttl`. True when `holder` now holds it.
pub async fn try_acquire(db: &Db, name: &str, holder: &str, ttl: Duration, now: i64) -> Result<bool, StoreError> {
    let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
    store::leases::try_acquire(db, name, holder, expires_at, now).await
}

/// Give the lease up (on shutdown), so another replica need not wait for the TTL.
pub async fn release(db: &Db, name: &str, holder: &str) -> Result<(), StoreError> {
    store::leases::release(db, name, holder).await
}

/// A random name for this replica's lifetime.
pub fn replica_name() -> String {
    format!(
        "replica-{}",
        disktro_core::ids::to_hex(&disktro_core::random_bytes::<8>())
    )
}

/// How often the janitor runs.
pub const JANITOR_EVERY: Duration = Duration::from_secs(60);

/// Run `pass` every `every` while this replica holds the lease `name` (its TTL is three periods,
/// so a dead holder is replaced after three missed passes). A failed pass is logged and the next
/// one runs on schedule. The lease is released on shutdown.
pub fn spawn_periodic<F, Fut>(
    ctx: &Arc<Context>,
    name: &'static str,
    every: Duration,
    holder: &str,
    shutdown: &tokio_util::sync::CancellationToken,
    pass: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Arc<Context>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), JobError>> + Send + 'static,
{
    let ctx = Arc::clone(ctx);
    let holder = holder.to_owned();
    let shutdown = shutdown.clone();
    let every = every.max(Duration::from_millis(100));
    let ttl = (every * 3).max(Duration::from_secs(3));
    tokio::spawn(async move {
        loop {
            match try_acquire(&ctx.db, name, &holder, ttl, unix_now()).await {
                Ok(true) => {
                    let run = pass(Arc::clone(&ctx));
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        result = run => if let Err(e) = result {
                            tracing::warn!(job = name, error = %e, "background pass failed");
                        }
                    }
                }
                Ok(false) => tracing::debug!(job = name, "another replica holds the lease"),
                Err(e) => tracing::warn!(job = name, error = %e, "lease"),
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
        }
        if let Err(e) = release(&ctx.db, name, &holder).await {
            tracing::warn!(job = name, error = %e, "releasing the lease");
        }
    })
}

/// The janitor: removes expired uploads (their put tokens go with them), expired sessions and old
/// log-in failure windows, every [`JANITOR_EVERY`].
pub fn spawn_janitor(
    ctx: &Arc<Context>,
    holder: &str,
    shutdown: &tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    spawn_periodic(ctx, "janitor", JANITOR_EVERY, holder, shutdown, |ctx| async move {
        sweep(&ctx.db, unix_now()).await?;
        Ok(())
    })
}

/// One janitor pass. Returns the number of expired uploads removed.
pub async fn sweep(db: &Db, now: i64) -> Result<u64, StoreError> {
    let uploads = store::leases::sweep(db, now, now - crate::throttle::WINDOW).await?;
    if uploads > 0 {
        tracing::info!(uploads, "removed expired uploads");
    }
    Ok(uploads)
}
