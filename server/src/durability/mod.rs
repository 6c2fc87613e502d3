//! Durability: files outlive workers, and workers that lose data are found out.
//!
//! Background jobs ([`crate::jobs`]), each run by whichever replica holds its lease
//! ([`crate::leases`]):
//!
//! | job | module | what it does |
//! | --- | --- | --- |
//! | `audit` | [`audit`] | challenges stored shards with random ranges; scores nodes ([`reputation`]) |
//! | `repair` | [`repair`] | rebuilds the lost shards of chunks below k + m healthy and re-places them |
//! | `gc` | [`gc`] | deletes shards of deleted files and orphans from workers after a grace |
//! | `rebalance` | [`rebalance`] | moves shards from workers above their capacity-proportional share to those below |
//! | `rewards` | [`crate::rewards`] | accrues storage and settles egress into the operators' ledger |
//! | `hot` | [`hot`] | copies the shards of files read often to the best-connected workers, drops them when the files cool |
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
pub mod hot;
pub mod model;
pub mod policy;
pub mod rebalance;
pub mod repair;
pub mod reputation;

use crate::context::{Context, unix_now};
use crate::jobs::Runner;
use crate::store::{self, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// The durability jobs' settings (defined with the other settings, in [`crate::config`]).
pub use crate::config::Durability as Settings;

/// Start every durability job with `settings`; they stop when the runner's shutdown fires.
pub fn spawn(ctx: &Arc<Context>, settings: &Settings, runner: &Runner) -> Vec<tokio::task::JoinHandle<()>> {
    let auditor = Arc::new(audit::Auditor::new(settings.audit_timeout));
    // Repair and garbage collection move shards over the same connections.
    let data = Arc::new(fleet::Fleet::new(fleet::DATA_TIMEOUT));
    let repairer = Arc::new(repair::Repairer::new(Arc::clone(&data), Arc::clone(&runner.registry)));
    let rebalancer = Arc::new(rebalance::Rebalancer::new(
        Arc::clone(&data),
        Arc::clone(&runner.registry),
    ));
    let hot = Arc::new(hot::HotCopier::new(Arc::clone(&data)));
    vec![
        runner.spawn("hot", settings.hot_interval, {
            let ctx = Arc::clone(ctx);
            move || {
                let (ctx, hot) = (Arc::clone(&ctx), Arc::clone(&hot));
                async move { hot.pass(&ctx, unix_now()).await.map(|_| ()) }
            }
        }),
        runner.spawn("audit", settings.audit_interval, {
            let ctx = Arc::clone(ctx);
            move || {
                let (ctx, auditor) = (Arc::clone(&ctx), Arc::clone(&auditor));
                async move { auditor.round(&ctx, unix_now()).await.map(|_| ()) }
            }
        }),
        runner.spawn("repair", settings.repair_interval, {
            let ctx = Arc::clone(ctx);
            move || {
                let (ctx, repairer) = (Arc::clone(&ctx), Arc::clone(&repairer));
                async move { repairer.pass(&ctx, unix_now()).await.map(|_| ()) }
            }
        }),
        runner.spawn("rebalance", settings.rebalance_interval, {
            let ctx = Arc::clone(ctx);
            move || {
                let (ctx, rebalancer) = (Arc::clone(&ctx), Arc::clone(&rebalancer));
                async move { rebalancer.pass(&ctx, unix_now()).await.map(|_| ()) }
            }
        }),
        runner.spawn("gc", settings.gc_interval, {
            let ctx = Arc::clone(ctx);
            move || {
                let (ctx, fleet) = (Arc::clone(&ctx), Arc::clone(&data));
                async move { gc::pass(&ctx, &fleet, unix_now()).await.map(|_| ()) }
            }
        }),
        runner.spawn("rewards", settings.reward_interval, {
            let ctx = Arc::clone(ctx);
            move || {
                let ctx = Arc::clone(&ctx);
                async move {
                    let accrued = crate::rewards::accrue(&ctx.db, unix_now()).await?;
                    ctx.metrics.ledger_entries_appended(accrued);
                    Ok::<(), error::JobError>(())
                }
            }
        }),
    ]
}

/// Seconds of a duration as the database's integers.
pub fn secs(d: Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX)
}

pub use disktro_core::api::DurabilityStatus as Status;

/// A job's progress as it reported it to the registry, read back as its type (the default before
/// its first report, or on a replica that does not run it).
pub(crate) fn progress<T: serde::de::DeserializeOwned + Default>(ctx: &Context, name: &str) -> T {
    ctx.jobs
        .get(name)
        .and_then(|j| serde_json::from_value(j.progress).ok())
        .unwrap_or_default()
}

/// Count chunks by health, and what the jobs have queued.
pub async fn status(ctx: &Context, now: i64) -> Result<Status, StoreError> {
    let since = crate::nodes::online_since(now, ctx.heartbeat_interval);
    let chunks = store::health::chunk_counts(&ctx.db, since, ctx.durability.repair_margin).await?;
    let backlog = store::health::backlog(&ctx.db).await?;

    let target = ctx.durability.durability_target;
    let (sizes, choice) = policy::now(ctx, now).await?;
    let guarantee = choice.and_then(|c| crate::placement::Guarantee::of(c.redundancy, &sizes));
    Ok(Status {
        chunks: chunks.chunks,
        full: chunks.full,
        degraded: chunks.degraded,
        at_risk: chunks.at_risk,
        unreadable: chunks.unreadable,
        gc_pending: backlog.gc_pending,
        orphan_candidates: backlog.orphan_candidates,
        contained: backlog.contained,
        zones: sizes.len() as u64,
        zones_survivable: guarantee.map_or(0, |g| g.zones_lost as u64),
        policy: disktro_core::api::RedundancyPolicy {
            data_shards: choice.map_or(0, |c| c.redundancy.data),
            parity_shards: choice.map_or(0, |c| c.redundancy.parity),
            nines: choice.map_or(0.0, |c| c.nines),
            target_nines: target,
            meets_target: choice.is_some_and(|c| c.meets_target),
            model: model::STATED_IN_WORDS.to_owned(),
        },
        repair: progress(ctx, "repair"),
        rebalance: progress(ctx, "rebalance"),
    })
}
