//! Shards no file needs: those waiting to be deleted from their workers (`gc_shards`) and those
//! workers hold that nothing placed there (`orphan_candidates`), with what each worker is expected
//! to hold, for the holdings comparison.

use std::collections::HashSet;

use disktro_core::ShardId;
use sqlx::Row as _;

use super::{Db, StoreError, Tx, parse};

/// Orphans first seen at or before `orphaned_before`, still placed nowhere on their worker and
/// past every upload that could still commit them become due for deletion (as deleted at
/// `deleted_at`); their candidate rows are dropped; rows of shards that are placed on their
/// worker again are forgotten. Returns the orphans made due.
///
/// An open upload's shards look like orphans until it commits, however long it runs: a shard
/// first seen while an upload granted on that worker and begun before then is still open waits
/// for that upload to end (commit places it; cancel and expiry revoke its tokens, and the worker
/// deletes what they stored).
pub async fn promote_orphans(tx: &mut Tx, orphaned_before: i64, deleted_at: i64) -> Result<u64, StoreError> {
    let due = sqlx::query(
        "INSERT INTO gc_shards (node_id, shard_id, deleted_at) \
         SELECT o.node_id, o.shard_id, $2 FROM orphan_candidates o WHERE o.first_seen <= $1 \
         AND NOT EXISTS (SELECT 1 FROM file_shards s WHERE s.node_id = o.node_id AND s.shard_id = o.shard_id) \
         AND NOT EXISTS (SELECT 1 FROM hot_copies c WHERE c.node_id = o.node_id AND c.shard_id = o.shard_id) \
         AND NOT EXISTS (SELECT 1 FROM upload_tokens t JOIN uploads u ON u.id = t.upload_id \
             WHERE t.node_id = o.node_id AND u.created_at <= o.first_seen) \
         ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(orphaned_before)
    .bind(deleted_at)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    sqlx::query(
        "DELETE FROM orphan_candidates WHERE first_seen <= $1 \
         AND NOT EXISTS (SELECT 1 FROM upload_tokens t JOIN uploads u ON u.id = t.upload_id \
             WHERE t.node_id = orphan_candidates.node_id AND u.created_at <= orphan_candidates.first_seen)",
    )
    .bind(orphaned_before)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM gc_shards WHERE EXISTS \
         (SELECT 1 FROM file_shards s WHERE s.node_id = gc_shards.node_id AND s.shard_id = gc_shards.shard_id) \
         OR EXISTS (SELECT 1 FROM hot_copies c WHERE c.node_id = gc_shards.node_id AND c.shard_id = gc_shards.shard_id)",
    )
    .execute(&mut **tx)
    .await?;
    Ok(due)
}

/// A shard due for deletion on an online worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelete {
    pub node: String,
    pub url: String,
    pub shard: ShardId,
}

/// Up to `limit` shards deleted at or before `deleted_before` on workers seen since
/// `online_since`, by worker.
pub async fn due(db: &Db, deleted_before: i64, online_since: i64, limit: i64) -> Result<Vec<DueDelete>, StoreError> {
    let rows = sqlx::query(
        "SELECT g.node_id, g.shard_id, n.url FROM gc_shards g JOIN nodes n ON n.node_id = g.node_id \
         WHERE g.deleted_at <= $1 AND n.last_seen >= $2 ORDER BY g.node_id, g.shard_id LIMIT $3",
    )
    .bind(deleted_before)
    .bind(online_since)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueDelete {
                node: r.try_get("node_id")?,
                url: r.try_get("url")?,
                shard: parse(&r.try_get::<String, _>("shard_id")?, "shard id")?,
            })
        })
        .collect()
}

/// Forget the deletion of `shard` on `node` (done, or nothing left to delete).
pub async fn forget(tx: &mut Tx, node: &str, shard: &ShardId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM gc_shards WHERE node_id = $1 AND shard_id = $2")
        .bind(node)
        .bind(shard.to_hex())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn shard_set(db: &Db, statement: &'static str, node: &str) -> Result<HashSet<ShardId>, StoreError> {
    shard_ids(&sqlx::query(statement).bind(node).fetch_all(&db.pool).await?)
}

fn shard_ids(rows: &[sqlx::any::AnyRow]) -> Result<HashSet<ShardId>, StoreError> {
    rows.iter()
        .map(|r| parse(&r.try_get::<String, _>("shard_id")?, "shard id"))
        .collect()
}

/// The shards placed on the node.
pub async fn placed(db: &Db, node: &str) -> Result<HashSet<ShardId>, StoreError> {
    shard_set(db, "SELECT shard_id FROM file_shards WHERE node_id = $1", node).await
}

/// The shards placed on the node at or after `since` (a listing taken before may lack them).
pub async fn placed_since(db: &Db, node: &str, since: i64) -> Result<HashSet<ShardId>, StoreError> {
    let rows = sqlx::query("SELECT shard_id FROM file_shards WHERE node_id = $1 AND placed_at >= $2")
        .bind(node)
        .bind(since)
        .fetch_all(&db.pool)
        .await?;
    shard_ids(&rows)
}

/// The shards waiting to be deleted from the node.
pub async fn collecting(db: &Db, node: &str) -> Result<HashSet<ShardId>, StoreError> {
    shard_set(db, "SELECT shard_id FROM gc_shards WHERE node_id = $1", node).await
}

/// The node's orphan candidates.
pub async fn orphan_candidates(db: &Db, node: &str) -> Result<HashSet<ShardId>, StoreError> {
    shard_set(db, "SELECT shard_id FROM orphan_candidates WHERE node_id = $1", node).await
}

/// Note `shard` on `node` as an orphan first seen at `now`; `true` when it was not noted yet.
pub async fn add_orphan(tx: &mut Tx, node: &str, shard: &ShardId, now: i64) -> Result<bool, StoreError> {
    let added = sqlx::query(
        "INSERT INTO orphan_candidates (node_id, shard_id, first_seen) VALUES ($1, $2, $3) \
         ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(node)
    .bind(shard.to_hex())
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(added == 1)
}

/// `shard` on `node` is no orphan (any more).
pub async fn drop_orphan(tx: &mut Tx, node: &str, shard: &ShardId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM orphan_candidates WHERE node_id = $1 AND shard_id = $2")
        .bind(node)
        .bind(shard.to_hex())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
