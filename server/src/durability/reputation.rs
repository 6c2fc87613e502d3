//! Reputation: an audit score and an online score per node, and the state they lead to.
//!
//! Both are exponentially weighted averages in fixed point (1,000,000 = 1.0), starting at 1.0:
//!
//! - **audit score** ← 0.95 · score + 0.05 · outcome (1 pass, 0 fail), per resolved audit: about
//!   the last 20 audits weigh. Below **0.90** the node is **disqualified**: its shards count as
//!   lost and are repaired elsewhere, it gets no new ones, and it stays so. Three failures in a
//!   row do it from a clean record (1 → 0.95 → 0.903 → 0.857); a node missing every tenth shard
//!   crosses 0.90 at its fourth failure (about 40 audits), and one missing 10% at random within
//!   one audit window of its shards. An honest node fails an audit only on bit rot its scrubber
//!   had not found yet, one at a time: a single failure costs 0.05 and is earned back.
//! - **online score** ← w · score + (1 − w) · online, with w = exp(−Δt / 12 h) for the time Δt since
//!   the last update (each audit round), so a node is judged by about its last half day. Below
//!   **0.6** the node is **suspended** (no new shards; its shards count as unhealthy, so they are
//!   repaired elsewhere); at **0.7** or more it is active again.
//!
//! A timed-out audit does not count until it resolves ([`super::audit`]: containment).

use crate::db::Db;
use crate::store::{StoreError, nodes};

/// 1.0 in fixed point.
pub const ONE: i64 = 1_000_000;
/// Disqualified below this audit score.
pub const DISQUALIFY_BELOW: i64 = 900_000;
/// Suspended below this online score, active again from [`REINSTATE_AT`].
pub const SUSPEND_BELOW: i64 = 600_000;
pub const REINSTATE_AT: i64 = 700_000;
/// Time constant of the online score, seconds.
pub const ONLINE_TAU: f64 = 12.0 * 3600.0;

pub const ACTIVE: &str = "active";
pub const SUSPENDED: &str = "suspended";
pub const DISQUALIFIED: &str = "disqualified";

/// The audit score after one more outcome.
pub fn next_audit_score(score: i64, passed: bool) -> i64 {
    score * 19 / 20 + if passed { ONE / 20 } else { 0 }
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
    let mut tx = db.begin_write().await?;
    let Some(standing) = nodes::standing(&mut tx, node).await? else {
        return Ok(0);
    };
    let score = next_audit_score(standing.audit_score, passed);
    let passed_n = standing.audits_passed + i64::from(passed);
    let failed_n = standing.audits_failed + i64::from(!passed);
    nodes::set_audit_score(&mut tx, node, score, passed_n, failed_n).await?;
    if score < DISQUALIFY_BELOW && standing.state != DISQUALIFIED {
        let reason = format!(
            "audit score {} fell below {} ({failed_n} of {} audits failed)",
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
    let mut tx = db.begin_write().await?;
    for n in standings {
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
        // Three failures in a row from a clean record disqualify; two do not.
        let two = next_audit_score(next_audit_score(ONE, false), false);
        assert!(two >= DISQUALIFY_BELOW, "{two}");
        assert!(next_audit_score(two, false) < DISQUALIFY_BELOW);
        // One failure in 100 (an honest node with some bit rot) never gets close.
        let mut s = ONE;
        for i in 0..10_000 {
            s = next_audit_score(s, i % 100 != 0);
            assert!(s > 930_000, "{s} at {i}");
        }
        // Every tenth shard missing: crosses the bar within 40 audits.
        let mut s = ONE;
        let crossed = (0..1000).position(|i| {
            s = next_audit_score(s, i % 10 != 9);
            s < DISQUALIFY_BELOW
        });
        assert!(crossed.is_some_and(|n| n < 40), "{crossed:?}");
        // Online: half a day offline from 1.0 ends near e^-1 ≈ 0.37 (suspended); an hour
        // offline costs under 8%.
        assert!(next_online_score(ONE, 12 * 3600, false) < SUSPEND_BELOW);
        assert!(next_online_score(ONE, 3600, false) > 920_000);
        assert_eq!(next_online_score(ONE, 3600, true), ONE);
    }
}
