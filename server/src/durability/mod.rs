//! Durability: files outlive workers, and workers that lose data are found out.
//!
//! Four background jobs, each run by whichever replica holds its lease ([`crate::leases`]):
//!
//! | job | module | what it does |
//! | --- | --- | --- |
//! | `audit` | [`audit`] | challenges stored shards with random ranges; scores nodes ([`reputation`]) |
//! | `repair` | [`repair`] | rebuilds shards of chunks down to k + margin healthy and re-places them |
//! | `gc` | [`gc`] | deletes shards of deleted files and orphans from workers after a grace |
//! | `rewards` | [`crate::rewards`] | accrues storage and settles egress into the operators' ledger |
//!
//! What each worker holds is compared from its heartbeats ([`holdings`]); [`fleet`] is the
//! server's own connections to workers, with tokens it signs for itself. None of it needs a file
//! key: shards are rebuilt from shards, and checked against the ids the owner signed.
//!
//! **A healthy shard** is a placement row whose node is online, active (not suspended, not
//! disqualified), and not reported as corrupt, missing or failed (`healthy!` in [`crate::store`]).

pub mod audit;
pub mod error;
pub mod fleet;
pub mod gc;
pub mod holdings;
pub mod repair;
pub mod reputation;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::context::Context;
use crate::store::{self, StoreError};

/// The durability jobs' settings (flags of the same names on `disktro-server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Time between audit rounds.
    pub audit_interval: Duration,
    /// Every stored shard is challenged at least once per this window.
    pub audit_window: Duration,
    /// An audit not answered within this long is a timeout (the shard is contained).
    pub audit_timeout: Duration,
    /// Re-challenges of a contained shard before its audit counts as failed.
    pub audit_retries: u32,
    pub repair_interval: Duration,
    /// Chunks with at most k + this many healthy shards are repaired.
    pub repair_margin: u32,
    /// Chunks repaired at once.
    pub repair_concurrency: usize,
    pub gc_interval: Duration,
    /// Shards of deleted files stay on workers this long (an undo window, and time for every
    /// reader of a manifest fetched before the delete).
    pub gc_grace: Duration,
    /// A shard a worker holds but no file needs is removed once it has been orphaned this long
    /// (longer than an upload may take before its commit).
    pub orphan_grace: Duration,
    pub reward_interval: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            audit_interval: Duration::from_secs(30),
            audit_window: Duration::from_secs(24 * 3600),
            audit_timeout: Duration::from_secs(10),
            audit_retries: 3,
            repair_interval: Duration::from_secs(60),
            repair_margin: 2,
            repair_concurrency: 4,
            gc_interval: Duration::from_secs(600),
            gc_grace: Duration::from_secs(24 * 3600),
            orphan_grace: Duration::from_secs(48 * 3600),
            reward_interval: Duration::from_secs(3600),
        }
    }
}

/// Start every durability job; they stop when `shutdown` fires.
pub fn spawn(ctx: &Arc<Context>, holder: &str, shutdown: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
    let s = &ctx.durability;
    let auditor = Arc::new(audit::Auditor::new(s.audit_timeout));
    // Repair and garbage collection move shards over the same connections.
    let data = Arc::new(fleet::Fleet::new(fleet::DATA_TIMEOUT));
    let collector = Arc::clone(&data);
    vec![
        crate::leases::spawn_periodic(ctx, "audit", s.audit_interval, holder, shutdown, move |ctx| {
            let auditor = Arc::clone(&auditor);
            async move { auditor.round(&ctx, crate::context::unix_now()).await.map(|_| ()) }
        }),
        crate::leases::spawn_periodic(ctx, "repair", s.repair_interval, holder, shutdown, move |ctx| {
            let fleet = Arc::clone(&data);
            async move { repair::pass(&ctx, &fleet, crate::context::unix_now()).await.map(|_| ()) }
        }),
        crate::leases::spawn_periodic(ctx, "gc", s.gc_interval, holder, shutdown, move |ctx| {
            let fleet = Arc::clone(&collector);
            async move { gc::pass(&ctx, &fleet, crate::context::unix_now()).await.map(|_| ()) }
        }),
        crate::leases::spawn_periodic(ctx, "rewards", s.reward_interval, holder, shutdown, |ctx| async move {
            crate::rewards::accrue(&ctx.db, crate::context::unix_now())
                .await
                .map(|_| ())
        }),
    ]
}

/// Seconds of a duration as the database's integers.
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub use disktro_core::api::DurabilityStatus as Status;

/// Count chunks by health, and what the jobs have queued.
pub async fn status(ctx: &Context, now: i64) -> Result<Status, StoreError> {
    let since = crate::nodes::online_since(now, ctx.heartbeat_interval);
    let chunks = store::health::chunk_counts(&ctx.db, since, ctx.durability.repair_margin).await?;
    let backlog = store::health::backlog(&ctx.db).await?;
    let repair = ctx
        .repair_progress
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Ok(Status {
        chunks: chunks.chunks,
        full: chunks.full,
        degraded: chunks.degraded,
        at_risk: chunks.at_risk,
        unreadable: chunks.unreadable,
        gc_pending: backlog.gc_pending,
        orphan_candidates: backlog.orphan_candidates,
        contained: backlog.contained,
        repair: serde_json::to_value(repair).unwrap_or_default(),
    })
}
