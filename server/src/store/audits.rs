//! The audit log (`audits`), containment of unanswered challenges (`audit_containment`), and
//! which shards of a node are challenged next (`file_shards.audited_at`, least recent first).

use disktro_core::{FileId, ShardId};
use sqlx::Row as _;

use super::{Db, StoreError, parse, to_u64};

/// A shard to challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challengeable {
    pub file: FileId,
    pub shard: ShardId,
    pub size: u64,
    /// Unanswered challenges so far (0 when not contained).
    pub attempts: i64,
}

fn challengeable(row: &sqlx::any::AnyRow, attempts: i64) -> Result<Challengeable, StoreError> {
    Ok(Challengeable {
        file: parse(&row.try_get::<String, _>("file_id")?, "file id")?,
        shard: parse(&row.try_get::<String, _>("shard_id")?, "shard id")?,
        size: to_u64(row.try_get("size")?),
        attempts,
    })
}

/// The node's contained shards that are still placed there (containment of shards that moved
/// away is dropped first).
pub async fn contained(db: &Db, node: &str) -> Result<Vec<Challengeable>, StoreError> {
    sqlx::query(
        "DELETE FROM audit_containment WHERE node_id = $1 AND NOT EXISTS \
         (SELECT 1 FROM file_shards s WHERE s.node_id = audit_containment.node_id \
          AND s.shard_id = audit_containment.shard_id)",
    )
    .bind(node)
    .execute(&db.pool)
    .await?;
    let rows = sqlx::query(
        "SELECT s.file_id, s.shard_id, s.size, a.attempts FROM audit_containment a \
         JOIN file_shards s ON s.node_id = a.node_id AND s.shard_id = a.shard_id WHERE a.node_id = $1",
    )
    .bind(node)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| challengeable(r, r.try_get("attempts")?)).collect()
}

/// Up to `limit` of the node's least recently audited shards, neither reported lost nor
/// contained (ties broken at random).
pub async fn least_recent(db: &Db, node: &str, limit: i64) -> Result<Vec<Challengeable>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.file_id, s.shard_id, s.size FROM file_shards s WHERE s.node_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM corrupt_reports c WHERE c.node_id = s.node_id AND c.shard_id = s.shard_id) \
         AND NOT EXISTS (SELECT 1 FROM audit_containment a WHERE a.node_id = s.node_id AND a.shard_id = s.shard_id) \
         ORDER BY s.audited_at, random() LIMIT $2",
    )
    .bind(node)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(|r| challengeable(r, 0)).collect()
}

/// Log one challenge (`outcome`: 'pass', 'fail' or 'timeout') and mark the shard audited.
pub async fn log(db: &Db, node: &str, shard: &str, outcome: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audits (node_id, at, shard_id, outcome) VALUES ($1, $2, $3, $4)")
        .bind(node)
        .bind(now)
        .bind(shard)
        .bind(outcome)
        .execute(&db.pool)
        .await?;
    sqlx::query("UPDATE file_shards SET audited_at = $3 WHERE node_id = $1 AND shard_id = $2")
        .bind(node)
        .bind(shard)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Put the shard in containment, or count one more unanswered challenge if it is there.
pub async fn contain(db: &Db, node: &str, shard: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_containment (node_id, shard_id, attempts, since) VALUES ($1, $2, 1, $3) \
         ON CONFLICT (node_id, shard_id) DO UPDATE SET attempts = audit_containment.attempts + 1",
    )
    .bind(node)
    .bind(shard)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Take the shard out of containment (its audit resolved).
pub async fn release(db: &Db, node: &str, shard: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM audit_containment WHERE node_id = $1 AND shard_id = $2")
        .bind(node)
        .bind(shard)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Failed audits of the node in `(after, until]`.
pub async fn failures_between(
    conn: &mut sqlx::AnyConnection,
    node: &str,
    after: i64,
    until: i64,
) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM audits WHERE node_id = $1 AND at > $2 AND at <= $3 AND outcome = 'fail'",
    )
    .bind(node)
    .bind(after)
    .bind(until)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("n")?)
}
