//! Garbage collection: shards no file needs are deleted from their workers.
//!
//! Two sources feed `gc_shards`: deleted files (their shards, at the delete) and repair (the old
//! copy of a moved shard, due at once). Orphans found in workers' listings ([`super::holdings`])
//! join them once they have been orphaned for `orphan_grace`. A pass sends each online worker a
//! delete token for its due shards (at most 1,024 per token) and forgets the rows it answered
//! for. A shard id still placed on that worker (the same bytes in another file) is never deleted.

use disktro_core::token::{MAX_TOKEN_SHARDS, Operation};
use disktro_core::{FileId, NodeId, ShardId};

use super::error::JobError;
use super::fleet::{self, Fleet};
use super::secs;
use crate::context::Context;
use crate::nodes;
use crate::store::collection;

/// Rows handled per pass at most.
pub const MAX_PER_PASS: i64 = 100_000;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Collected {
    pub orphans_due: u64,
    pub deleted: u64,
}

/// One pass at `now`.
pub async fn pass(ctx: &Context, fleet: &Fleet, now: i64) -> Result<Collected, JobError> {
    let s = &ctx.durability;
    let grace_start = now - secs(s.gc_grace);
    let mut out = Collected::default();

    // Orphans past their grace, still orphaned, become due at once.
    let mut tx = ctx.db.begin_write().await?;
    out.orphans_due = collection::promote_orphans(&mut tx, now - secs(s.orphan_grace), grace_start).await?;
    tx.commit().await?;

    let since = nodes::online_since(now, ctx.heartbeat_interval);
    let mut by_node: Vec<(String, String, Vec<ShardId>)> = Vec::new();
    for due in collection::due(&ctx.db, grace_start, since, MAX_PER_PASS).await? {
        match by_node.last_mut() {
            Some((n, _, shards)) if *n == due.node && shards.len() < MAX_TOKEN_SHARDS => shards.push(due.shard),
            _ => by_node.push((due.node, due.url, vec![due.shard])),
        }
    }
    for (node, url, shards) in by_node {
        let node_id: NodeId = node.parse()?;
        // The scope names no file: these shards belong to none any more.
        let token = fleet::token(
            &ctx.key,
            Operation::Delete,
            node_id,
            FileId([0; 16]),
            shards.clone(),
            0,
            now,
        );
        let result = match fleet.client(node_id, &url).await {
            Ok(c) => c.delete(&token, shards.clone()).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(removed) => {
                out.deleted += removed.len() as u64;
                ctx.metrics.collected_shards.inc_by(removed.len() as u64);
                let mut tx = ctx.db.begin_write().await?;
                for shard in &shards {
                    collection::forget(&mut tx, &node, shard).await?;
                }
                tx.commit().await?;
            }
            Err(e) => {
                fleet.failed(node_id, &e).await;
                tracing::warn!(node_id = %node, error = %e, "garbage collection on this worker failed; retrying next pass");
            }
        }
    }
    if out.deleted > 0 || out.orphans_due > 0 {
        tracing::info!(deleted = out.deleted, orphans = out.orphans_due, "garbage collected");
    }
    Ok(out)
}
