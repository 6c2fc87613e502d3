//! The auditor: every round, each online node that is not disqualified is challenged on its least
//! recently audited shards, enough of them that every shard is audited once per audit window,
//! plus every shard it has in containment.
//!
//! A challenge names a random range (up to 4 KiB) at a random offset and a random nonce; the
//! worker answers with a BLAKE3 verified slice, checked against the shard id and the shard's size
//! from the placement table ([`disktro_core::audit::verify`]). Outcomes:
//!
//! - **pass**: the proof verifies.
//! - **fail**: a wrong proof, "not found", or "corrupt": the shard is marked lost
//!   (`corrupt_reports`, reason `audit`) and repaired elsewhere.
//! - **timeout** (no answer in time, a connection that closes under the challenge, or any other
//!   refusal such as "busy"): the shard goes into **containment** and is re-challenged in the
//!   next rounds; it counts as a pass once answered, and as a failure after `audit_retries` more
//!   timeouts. Going slow on missing shards therefore buys a cheating node a few rounds, never a
//!   pass.
//! - **unreachable** (the worker cannot be connected to at all): nothing is recorded. Offline is
//!   not a failed audit: a worker that is down is judged by its online score
//!   ([`super::reputation`]), and its contained shards wait for it to come back. A node cannot
//!   choose this per shard: the connection is made before it learns which shard is asked.
//!
//! Resolved outcomes feed the node's audit score ([`super::reputation`]); every challenge is
//! recorded in `audits` for the dashboard.

use std::time::Duration;

use disktro_core::NodeId;
use disktro_core::audit::verify;
use disktro_core::token::Operation;
use disktro_core::wire::ErrorCode;
use disktro_net::client::ClientError;
use futures_util::StreamExt as _;

use super::error::JobError;
use super::fleet::{self, Fleet};
use super::reputation;
use crate::context::Context;
use crate::nodes;
use crate::store::{self, StoreError};

/// Longest range challenged.
pub const MAX_RANGE: u64 = 4096;
/// Most shards challenged per node per round (beyond contained ones).
pub const MAX_PER_ROUND: i64 = 256;
/// Challenges in flight per node.
const PER_NODE: usize = 8;
/// Nodes audited at once.
const NODES_AT_ONCE: usize = 16;

/// What one challenge came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Timeout,
    /// The worker could not be connected to: not recorded, not counted.
    Unreachable,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Counts of one round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub nodes: usize,
    pub passed: usize,
    pub failed: usize,
    pub timeouts: usize,
    /// Challenges not made because the worker could not be connected to.
    pub unreachable: usize,
}

/// A shard to challenge, with its earlier timeouts (0 when not contained).
type Challenge = store::audits::Challengeable;

/// The auditor and its connections (their request timeout is the audit timeout).
#[derive(Debug)]
pub struct Auditor {
    fleet: Fleet,
}

fn random_below(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        u64::from_le_bytes(disktro_core::random_bytes::<8>()) % n
    }
}

/// How many shards of `held` to challenge per round so each is reached once per `window`.
pub fn per_round(held: i64, interval: Duration, window: Duration) -> i64 {
    if held == 0 {
        return 0;
    }
    let rounds = (window.as_secs_f64() / interval.as_secs_f64().max(0.001)).max(1.0);
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let n = (held as f64 / rounds).ceil() as i64;
    n.clamp(1, MAX_PER_ROUND)
}

impl Auditor {
    pub fn new(timeout: Duration) -> Self {
        Self {
            fleet: Fleet::new(timeout),
        }
    }

    /// One round over every auditable node; online scores are brought up to date first.
    pub async fn round(&self, ctx: &Context, now: i64) -> Result<Round, JobError> {
        let since = nodes::online_since(now, ctx.heartbeat_interval);
        reputation::update_online(&ctx.db, since, now).await?;
        let targets = store::nodes::auditable(&ctx.db, since).await?;
        // Each node's shard count sizes its challenges: the per-node totals the placements keep
        // (counting each node's index entries every round grew with every shard stored).
        let placed = &store::placed::totals(&ctx.db).await?;
        let results: Vec<Result<Round, JobError>> = futures_util::stream::iter(targets)
            .map(|(id, url)| async move {
                let held = placed.get(&id).map_or(0, |(shards, _)| *shards);
                self.audit_node(ctx, id, &url, held, now).await
            })
            .buffer_unordered(NODES_AT_ONCE)
            .collect()
            .await;
        let mut total = Round::default();
        for r in results {
            let r = r?;
            total.nodes += 1;
            total.passed += r.passed;
            total.failed += r.failed;
            total.timeouts += r.timeouts;
            total.unreachable += r.unreachable;
        }
        if total.failed > 0 || total.timeouts > 0 || total.unreachable > 0 {
            tracing::info!(?total, "audit round");
        }
        Ok(total)
    }

    /// The node's contained shards and enough of its `held` to reach each once per window.
    async fn challenges(&self, ctx: &Context, node: &str, held: i64) -> Result<Vec<Challenge>, JobError> {
        let s = &ctx.durability;
        // Contained shards first; then the least recently audited, enough for the window.
        let mut out = store::audits::contained(&ctx.db, node).await?;
        let n = per_round(held, s.audit_interval, s.audit_window);
        out.extend(store::audits::least_recent(&ctx.db, node, n).await?);
        Ok(out)
    }

    async fn audit_node(
        &self,
        ctx: &Context,
        node_id: NodeId,
        url: &str,
        held: i64,
        now: i64,
    ) -> Result<Round, JobError> {
        let node = &node_id.to_hex();
        let challenges = self.challenges(ctx, node, held).await?;
        let mut round = Round::default();
        if challenges.is_empty() {
            return Ok(round);
        }
        let outcomes: Vec<(Challenge, Outcome)> = futures_util::stream::iter(challenges)
            .map(|c| async move {
                let outcome = self.challenge(ctx, node_id, url, &c, now).await;
                (c, outcome)
            })
            .buffer_unordered(PER_NODE)
            .collect()
            .await;
        for (c, outcome) in outcomes {
            ctx.metrics.audit(outcome.as_str());
            if outcome == Outcome::Unreachable {
                round.unreachable += 1;
                continue;
            }
            let resolved = match outcome {
                Outcome::Timeout if c.attempts >= i64::from(ctx.durability.audit_retries) => Outcome::Fail,
                other => other,
            };
            record(ctx, node, &c, outcome, resolved, now).await?;
            match resolved {
                Outcome::Pass => round.passed += 1,
                Outcome::Fail => round.failed += 1,
                Outcome::Timeout => round.timeouts += 1,
                Outcome::Unreachable => round.unreachable += 1,
            }
        }
        Ok(round)
    }

    async fn challenge(&self, ctx: &Context, node: NodeId, url: &str, c: &Challenge, now: i64) -> Outcome {
        let len = c.size.min(MAX_RANGE);
        let offset = random_below(c.size - len + 1);
        let nonce = disktro_core::random_bytes::<32>();
        let token = fleet::token(&ctx.key, Operation::Audit, node, c.file, vec![c.shard], 0, now);
        let len32 = u32::try_from(len).expect("ranges are at most MAX_RANGE");
        let client = match self.fleet.client(node, url).await {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!(%node, error = %e, "worker unreachable; not audited this round");
                return Outcome::Unreachable;
            }
        };
        let answer = client.audit(&token, c.shard, offset, len32, nonce).await;
        match answer {
            Ok(proof) => match verify(&c.shard, c.size, offset, len32, &proof) {
                Ok(_) => Outcome::Pass,
                Err(_) => Outcome::Fail,
            },
            Err(ClientError::Refused {
                code: ErrorCode::NotFound | ErrorCode::Corrupt,
                ..
            }) => Outcome::Fail,
            Err(e) => {
                self.fleet.failed(node, &e).await;
                tracing::debug!(%node, shard = %c.shard, error = %e, "audit unanswered");
                Outcome::Timeout
            }
        }
    }
}

/// Write one challenge's outcome: the audit log, containment, a lost shard, the score.
async fn record(
    ctx: &Context,
    node: &str,
    c: &Challenge,
    outcome: Outcome,
    resolved: Outcome,
    now: i64,
) -> Result<(), StoreError> {
    let shard = c.shard.to_hex();
    store::audits::log(&ctx.db, node, &shard, outcome.as_str(), now).await?;
    match resolved {
        Outcome::Timeout => store::audits::contain(&ctx.db, node, &shard, now).await?,
        Outcome::Pass | Outcome::Fail => {
            store::audits::release(&ctx.db, node, &shard).await?;
            if resolved == Outcome::Fail {
                let mut conn = ctx.db.pool.acquire().await.map_err(StoreError::Database)?;
                store::health::mark_lost(&mut conn, node, &shard, "audit", now).await?;
            }
            reputation::record_audit(&ctx.db, node, resolved == Outcome::Pass, now).await?;
        }
        // Never recorded: skipped before this point.
        Outcome::Unreachable => {}
    }
    Ok(())
}
