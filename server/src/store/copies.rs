//! `hot_copies`: extra copies of the shards of files read often, on well-connected workers. A
//! copy is another place to read a shard from and nothing else: nothing here is read by repair,
//! audits, placement or the durability figures, which count `file_shards` alone.

use std::collections::HashSet;

use disktro_core::{NodeId, ShardId};
use sqlx::Row as _;

use super::files::ShardLocation;
use super::{Db, StoreError, Tx, parse, to_u64};

/// A copy of shard `idx` of chunk `location.chunk`, where a reader finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotCopy {
    pub idx: u64,
    pub location: ShardLocation,
}

/// The copies of the file's shards, on workers registered now, in chunk and index order.
pub async fn of_file(db: &Db, file_hex: &str) -> Result<Vec<HotCopy>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.chunk, c.idx, c.shard_id, c.node_id, c.size, n.url, n.last_seen FROM hot_copies c \
         JOIN nodes n ON n.node_id = c.node_id WHERE c.file_id = $1 ORDER BY c.chunk, c.idx, c.node_id",
    )
    .bind(file_hex)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(HotCopy {
                idx: to_u64(r.try_get("idx")?),
                location: super::files::shard_location(r)?,
            })
        })
        .collect()
}

/// Note a copy of shard `idx` of chunk `chunk` of the file, stored on `node` (its receipt
/// checked); a copy already noted there stays as it was.
#[allow(clippy::too_many_arguments)]
pub async fn add(
    db: &Db,
    file_hex: &str,
    chunk: u64,
    idx: u64,
    shard: &ShardId,
    node: &NodeId,
    size: u64,
    now: i64,
) -> Result<(), StoreError> {
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO hot_copies (file_id, chunk, idx, shard_id, node_id, size, created_at) \
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM files WHERE id = $1) \
         ON CONFLICT (file_id, chunk, idx, node_id) DO NOTHING",
    )
    .bind(file_hex)
    .bind(i64::try_from(chunk).unwrap_or(i64::MAX))
    .bind(i64::try_from(idx).unwrap_or(i64::MAX))
    .bind(shard.to_hex())
    .bind(node.to_hex())
    .bind(i64::try_from(size).unwrap_or(i64::MAX))
    .bind(now)
    .execute(&mut *tx)
    .await?;
    // A shard waiting to be collected from that worker is wanted there again.
    sqlx::query("DELETE FROM gc_shards WHERE node_id = $1 AND shard_id = $2")
        .bind(node.to_hex())
        .bind(shard.to_hex())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The files that have copies, each with how many.
pub async fn files(db: &Db) -> Result<Vec<(String, u64)>, StoreError> {
    let rows = sqlx::query("SELECT file_id, COUNT(*) AS copies FROM hot_copies GROUP BY file_id ORDER BY file_id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("file_id")?, to_u64(r.try_get("copies")?))))
        .collect()
}

/// Drop the file's copies: their shards go to garbage collection (as deleted at `now`, so
/// downloads under way keep them for the grace period). Returns how many were dropped.
pub async fn drop_file(tx: &mut Tx, file_hex: &str, now: i64) -> Result<u64, StoreError> {
    sqlx::query(
        "INSERT INTO gc_shards (node_id, shard_id, deleted_at) SELECT c.node_id, c.shard_id, $2 FROM hot_copies c \
         WHERE c.file_id = $1 AND NOT EXISTS \
             (SELECT 1 FROM file_shards s WHERE s.node_id = c.node_id AND s.shard_id = c.shard_id) \
         ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(file_hex)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let dropped = sqlx::query("DELETE FROM hot_copies WHERE file_id = $1")
        .bind(file_hex)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(dropped)
}

/// The copies held on `node`, for the holdings comparison.
pub async fn on_node(db: &Db, node: &str) -> Result<HashSet<ShardId>, StoreError> {
    let rows = sqlx::query("SELECT shard_id FROM hot_copies WHERE node_id = $1")
        .bind(node)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| parse(&r.try_get::<String, _>("shard_id")?, "shard id"))
        .collect()
}

/// `node` no longer holds copies of `shard`: forget them (no loss: copies count for nothing).
pub async fn forget(tx: &mut Tx, node: &str, shard: &ShardId) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM hot_copies WHERE node_id = $1 AND shard_id = $2")
        .bind(node)
        .bind(shard.to_hex())
        .execute(&mut **tx)
        .await?;
    Ok(())
}
