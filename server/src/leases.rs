//! Job leases: which replica runs a background job.
//!
//! Replicas share one database and nothing else, so a job (the janitor, and the durability jobs
//! of [`crate::durability`], run by [`crate::jobs::Runner`]) runs only where its lease row names
//! this replica and has not expired.
//! Taking a lease is one conditional upsert, atomic on SQLite and PostgreSQL alike: it succeeds
//! when no row exists, when the row's lease has expired, or when this replica already holds it
//! (renewal). A replica that dies simply stops renewing; another takes over after the TTL.

use std::time::Duration;

use crate::context::unix_now;
use crate::db::Db;
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

/// The janitor: removes expired uploads (their put tokens go with them), expired sessions and API
/// tokens, and old log-in failure windows, every [`JANITOR_EVERY`].
pub fn spawn_janitor(runner: &crate::jobs::Runner) -> tokio::task::JoinHandle<()> {
    let db = runner.db.clone();
    runner.spawn("janitor", JANITOR_EVERY, move || {
        let db = db.clone();
        async move { sweep(&db, unix_now()).await.map(|_| ()) }
    })
}

/// One janitor pass. Returns the number of expired uploads removed.
pub async fn sweep(db: &Db, now: i64) -> Result<u64, StoreError> {
    let uploads = store::leases::sweep(
        db,
        now,
        now - crate::throttle::WINDOW,
        now - crate::sessions::DEVICE_TTL,
    )
    .await?;
    if uploads > 0 {
        tracing::info!(uploads, "removed expired uploads");
    }
    Ok(uploads)
}
