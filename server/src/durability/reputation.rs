//! Reputation: an audit score and an online score per node, and the state they lead to.
//!
//! Being offline and losing data are judged apart, as trusted storage networks do: a node that
//! cannot be reached is never charged a failed audit ([`super::audit`]: unreachable), and a node
//! that answers is never suspended for it.
//!
//! - **audit score**: the α–β (beta) reputation model with forgetting factor λ = 0.99, started
//!   at α = 1/(1 − λ), β = 0. Every confirmed loss (a failed audit, a shard its own inventory no
//!   longer lists, a shard its own scrubber found corrupt) is one failure; every passed audit one
//!   success. With α + β starting at 1/(1 − λ) the score α/(α + β) is the same as
//!   score ← 0.99 · score + 0.01 · outcome, in fixed point (1,000,000 = 1.0): about the last 100
//!   outcomes weigh. Below **0.95** the node is **disqualified**: its shards count as lost and
//!   are repaired elsewhere, it gets no new ones, and it stays so. It takes sustained evidence:
//!   6 losses in a row from a clean record (0.99⁶ ≈ 0.941), or a loss rate above 5% kept up
//!   (a node silently missing 10% of its shards crosses at about its 70th audit; its inventory
//!   reporting 10% of a few hundred shards missing does it at once). Rare honest bit rot (one
//!   shard in hundreds) costs 0.01 per rotten shard and is earned back.
//! - **online score** ← w · score + (1 − w) · online, with w = exp(−Δt / 12 h) for the time Δt since
//!   the last update (each audit round), so a node is judged by about its last half day. Below
//!   **0.6** the node is **suspended** (no new shards; its shards count as unhealthy, so they are
//!   repaired elsewhere); at **0.7** or more it is active again. A node suspended for
//!   [`MAX_SUSPENSION_SECS`] (30 days) without coming back is **disqualified**: a node that
//!   returns after a crash or a week's outage keeps its standing and its data.
//!
//! A timed-out audit does not count until it resolves ([`super::audit`]: containment).

use crate::db::Db;
use crate::store::{StoreError, nodes};

/// 1.0 in fixed point.
pub const ONE: i64 = 1_000_000;
/// Forgetting factor λ of the audit score, as a fraction: λ = 99/100.
const LAMBDA: (i64, i64) = (99, 100);
/// Disqualified below this audit score.
pub const DISQUALIFY_BELOW: i64 = 950_000;
/// Suspended below this online score, active again from [`REINSTATE_AT`].
pub const SUSPEND_BELOW: i64 = 600_000;
pub const REINSTATE_AT: i64 = 700_000;
/// Time constant of the online score, seconds.
pub const ONLINE_TAU: f64 = 12.0 * 3600.0;
/// The longest a node may stay suspended before it is disqualified.
pub const MAX_SUSPENSION_SECS: i64 = 30 * 24 * 3600;

pub const ACTIVE: &str = "active";
pub const SUSPENDED: &str = "suspended";
pub const DISQUALIFIED: &str = "disqualified";
/// The operator asked the node to leave: no new shards, its shards are moved elsewhere (they
/// count as unhealthy, so repair takes them), its storage is still paid until they are.
pub const DRAINING: &str = "draining";
/// A drained node: nothing is placed on it any more.
pub const EXITED: &str = "exited";

/// The audit score after one more outcome: α/(α + β) after α ← λα + passed, β ← λβ + failed.
pub fn next_audit_score(score: i64, passed: bool) -> i64 {
    let (num, den) = LAMBDA;
    score * num / den + if passed { ONE * (den - num) / den } else { 0 }
}

/// The online score after `elapsed` seconds spent `online` (or not).
pub fn next_online_score(score: i64, elapsed: i64, online: bool) -> i64 {
    if elapsed <= 0 {
        return score;
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let w = (-(elapsed as f64) / ONLINE_TAU).exp();
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let next = w * score as f64 + (1.0 - w) * if online { ONE as f64 } else { 0.0 };
    #[allow(clippy::cast_possible_truncation)]
    let next = next.round() as i64;
    next.clamp(0, ONE)
}

fn fixed(v: i64) -> String {
    format!("{}.{:03}", v / ONE, (v % ONE) / 1000)
}

/// Record one resolved audit of `node`; disqualifies it when its score falls below the bar.
/// Returns the new score.
pub async fn record_audit(db: &Db, node: &str, passed: bool, now: i64) -> Result<i64, StoreError> {
    record(db, node, u64::from(passed), u64::from(!passed), now).await
}

/// Record `count` confirmed losses the node's own heartbeat revealed (missing from its inventory,
/// corrupt by its scrubber): each weighs as a failed audit.
pub async fn record_losses(db: &Db, node: &str, count: u64, now: i64) -> Result<(), StoreError> {
    if count > 0 {
        record(db, node, 0, count, now).await?;
    }
    Ok(())
}

async fn record(db: &Db, node: &str, passes: u64, failures: u64, now: i64) -> Result<i64, StoreError> {
    let mut tx = db.begin_write().await?;
    let Some(standing) = nodes::standing(&mut tx, node).await? else {
        return Ok(0);
    };
    let mut score = standing.audit_score;
    // Failures last: a batch of losses is judged on the record it lands on.
    for passed in std::iter::repeat_n(true, usize::try_from(passes).unwrap_or(usize::MAX)).chain(std::iter::repeat_n(
        false,
        usize::try_from(failures).unwrap_or(usize::MAX),
    )) {
        score = next_audit_score(score, passed);
    }
    let passed_n = standing.audits_passed + i64::try_from(passes).unwrap_or(i64::MAX);
    let failed_n = standing.audits_failed + i64::try_from(failures).unwrap_or(i64::MAX);
    nodes::set_audit_score(&mut tx, node, score, passed_n, failed_n).await?;
    if score < DISQUALIFY_BELOW && standing.state != DISQUALIFIED {
        let reason = format!(
            "audit score {} fell below {} ({failed_n} of {} audits failed or shards lost)",
            fixed(score),
            fixed(DISQUALIFY_BELOW),
            passed_n + failed_n
        );
        nodes::set_state(&mut tx, node, DISQUALIFIED, &reason, now).await?;
        tracing::warn!(node_id = node, %reason, "node disqualified");
    }
    tx.commit().await?;
    Ok(score)
}

/// Update every node's online score to `now`, suspending and reinstating as the scores say.
pub async fn update_online(db: &Db, online_since: i64, now: i64) -> Result<(), StoreError> {
    let standings = nodes::standings(db).await?;
    // A write transaction per [`NODES_PER_TX`] nodes: one for a network of 1,000 held SQLite's
    // one writer for every node's update while heartbeats and uploads waited.
    for batch in standings.chunks(NODES_PER_TX) {
        update_online_batch(db, batch, online_since, now).await?;
    }
    Ok(())
}

/// Nodes whose online scores one write transaction updates.
const NODES_PER_TX: usize = 100;

async fn update_online_batch(
    db: &Db,
    batch: &[nodes::Standing],
    online_since: i64,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = db.begin_write().await?;
    for n in batch {
        let online = n.last_seen >= online_since;
        // The first check only starts the clock.
        let elapsed = if n.online_checked_at == 0 {
            0
        } else {
            now - n.online_checked_at
        };
        let score = next_online_score(n.online_score, elapsed, online);
        nodes::set_online_score(&mut tx, &n.node_id, score, now).await?;
        if n.state == ACTIVE && score < SUSPEND_BELOW {
            let reason = format!("online score {} fell below {}", fixed(score), fixed(SUSPEND_BELOW));
            tracing::warn!(node_id = %n.node_id, %reason, "node suspended");
            nodes::set_state(&mut tx, &n.node_id, SUSPENDED, &reason, now).await?;
        } else if n.state == SUSPENDED && score >= REINSTATE_AT {
            tracing::info!(node_id = %n.node_id, "node reinstated");
            nodes::set_state(&mut tx, &n.node_id, ACTIVE, "", now).await?;
        } else if n.state == SUSPENDED && n.state_since > 0 && now - n.state_since >= MAX_SUSPENSION_SECS {
            let reason = format!(
                "suspended for {} days without coming back",
                MAX_SUSPENSION_SECS / 86_400
            );
            tracing::warn!(node_id = %n.node_id, %reason, "node disqualified");
            nodes::set_state(&mut tx, &n.node_id, DISQUALIFIED, &reason, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_as_documented() {
        let fails = |n: usize| (0..n).fold(ONE, |s, _| next_audit_score(s, false));
        // Six losses in a row from a clean record disqualify; five do not.
        assert!(fails(5) >= DISQUALIFY_BELOW, "{}", fails(5));
        assert!(fails(6) < DISQUALIFY_BELOW, "{}", fails(6));
        // One loss in 100 (an honest node with some bit rot) never gets close; a single rotten
        // shard costs 0.01 and is earned back.
        let mut s = ONE;
        for i in 0..10_000 {
            s = next_audit_score(s, i % 100 != 0);
            assert!(s > 970_000, "{s} at {i}");
        }
        assert!((0..100).fold(fails(1), |s, _| next_audit_score(s, true)) > 995_000);
        // Every tenth shard missing: crosses the bar within about 70 audits (the model's
        // expectation is 69), never within 20.
        let mut s = ONE;
        let crossed = (0..1000).position(|i| {
            s = next_audit_score(s, i % 10 != 9);
            s < DISQUALIFY_BELOW
        });
        assert!(crossed.is_some_and(|n| (20..90).contains(&n)), "{crossed:?}");
        // Its inventory listing 10% of 140 shards missing: 14 losses at once disqualify.
        assert!(fails(14) < DISQUALIFY_BELOW);
        // Online: half a day offline from 1.0 ends near e^-1 ≈ 0.37 (suspended); an hour
        // offline costs under 8%.
        assert!(next_online_score(ONE, 12 * 3600, false) < SUSPEND_BELOW);
        assert!(next_online_score(ONE, 3600, false) > 920_000);
        assert_eq!(next_online_score(ONE, 3600, true), ONE);
        // A worker SIGKILLed and restarted 5 minutes later stays well above the suspension
        // bar (about 0.993), and a week away ends suspended, not disqualified (that takes
        // 30 days suspended, MAX_SUSPENSION_SECS).
        assert!(next_online_score(ONE, 300, false) > 990_000);
        assert!(next_online_score(ONE, 7 * 86_400, false) < SUSPEND_BELOW);
    }
}
