//! Garbage collection: shards no file needs are deleted from their workers.
//!
//! Two sources feed `gc_shards`: deleted files (their shards, at the delete) and repair (the old
//! copy of a moved shard, due at once). Orphans found in workers' listings ([`super::holdings`])
//! join them once they have been orphaned for `orphan_grace`. A pass sends each online worker a
//! delete token for its due shards (at most 1,024 per token) and forgets the rows it answered
//! for. A shard id still placed on that worker (the same bytes in another file) is never deleted.

use disktro_core::token::{MAX_TOKEN_SHARDS, Operation};
use disktro_core::{FileId, NodeId, ShardId};
use sqlx::Row as _;

use super::error::JobError;
use super::fleet::{self, Fleet};
use super::secs;
use crate::context::Context;
use crate::nodes;

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
    out.orphans_due = sqlx::query(
        "INSERT INTO gc_shards (node_id, shard_id, deleted_at) \
         SELECT o.node_id, o.shard_id, $2 FROM orphan_candidates o WHERE o.first_seen <= $1 \
         AND NOT EXISTS (SELECT 1 FROM file_shards s WHERE s.node_id = o.node_id AND s.shard_id = o.shard_id) \
         ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(now - secs(s.orphan_grace))
    .bind(grace_start)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query("DELETE FROM orphan_candidates WHERE first_seen <= $1")
        .bind(now - secs(s.orphan_grace))
        .execute(&mut *tx)
        .await?;
    // Rows for shards that are placed there again need no delete.
    sqlx::query(
        "DELETE FROM gc_shards WHERE EXISTS \
         (SELECT 1 FROM file_shards s WHERE s.node_id = gc_shards.node_id AND s.shard_id = gc_shards.shard_id)",
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;

    let rows = sqlx::query(
        "SELECT g.node_id, g.shard_id, n.url FROM gc_shards g JOIN nodes n ON n.node_id = g.node_id \
         WHERE g.deleted_at <= $1 AND n.last_seen >= $2 ORDER BY g.node_id, g.shard_id LIMIT $3",
    )
    .bind(grace_start)
    .bind(nodes::online_since(now, ctx.heartbeat_interval))
    .bind(MAX_PER_PASS)
    .fetch_all(&ctx.db.pool)
    .await?;
    let mut by_node: Vec<(String, String, Vec<ShardId>)> = Vec::new();
    for r in rows {
        let node: String = r.try_get("node_id")?;
        let shard: ShardId = r.try_get::<String, _>("shard_id")?.parse()?;
        match by_node.last_mut() {
            Some((n, _, shards)) if *n == node && shards.len() < MAX_TOKEN_SHARDS => shards.push(shard),
            _ => by_node.push((node, r.try_get("url")?, vec![shard])),
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
                let mut tx = ctx.db.begin_write().await?;
                for shard in &shards {
                    sqlx::query("DELETE FROM gc_shards WHERE node_id = $1 AND shard_id = $2")
                        .bind(&node)
                        .bind(shard.to_hex())
                        .execute(&mut *tx)
                        .await?;
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
