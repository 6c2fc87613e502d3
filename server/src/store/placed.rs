//! Shards and bytes placed on each node (`node_placed`): what the rebalancer weighs workers by.
//!
//! Summing every shard stored per node cost the whole table at each rebalancer pass. Instead the
//! transactions that place shards (a commit), move one (repair, rebalance) and delete a file's
//! append what they changed to `node_placed_changes`, a row per node and statement; a reader
//! folds the changes into the totals first ([`totals`]), so a fold costs the changes since the
//! last one. Appending, not updating the totals in place, keeps concurrent commits that place on
//! the same nodes from queueing on those rows (PostgreSQL) or conflicting (SERIALIZABLE).

use std::collections::HashMap;

use disktro_core::NodeId;
use sqlx::Row as _;

use super::{Db, StoreError, Tx, parse};

/// Changes one fold transaction takes.
const FOLD_BATCH: i64 = 5_000;

/// A random id prefix for this statement's change rows (a row's id is the prefix and its node).
fn change_prefix() -> String {
    disktro_core::ids::to_hex(&disktro_core::random_bytes::<12>())
}

/// `shards` and `bytes` more on each node (fewer when negative): one statement (a commit's ten
/// or so nodes, one round trip).
pub(super) async fn record(tx: &mut Tx, changes: &HashMap<String, (i64, i64)>) -> Result<(), StoreError> {
    let changes: Vec<_> = changes.iter().collect();
    for batch in changes.chunks(CHANGES_PER_STATEMENT) {
        // `$1` is the id prefix; each change takes three more.
        let rows: Vec<String> = (0..batch.len())
            .map(|i| {
                let p = 2 + i * 3;
                format!("($1 || ${p}, ${p}, ${}, ${})", p + 1, p + 2)
            })
            .collect();
        let sql = format!(
            "INSERT INTO node_placed_changes (id, node_id, shards, bytes) VALUES {}",
            rows.join(", ")
        );
        // Only placeholders are formatted into the statement; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(change_prefix());
        for (node, (shards, bytes)) in batch {
            query = query.bind(*node).bind(*shards).bind(*bytes);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Nodes one statement of [`record`] takes (three parameters each, well under both databases'
/// limits).
const CHANGES_PER_STATEMENT: usize = 500;

/// The placements of file `file_hex` are about to be deleted: fewer shards and bytes on their
/// nodes.
pub(super) async fn record_file_removed(tx: &mut Tx, file_hex: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO node_placed_changes (id, node_id, shards, bytes) \
         SELECT $2 || node_id, node_id, -COUNT(*), -CAST(SUM(size) AS BIGINT) FROM file_shards \
         WHERE file_id = $1 GROUP BY node_id",
    )
    .bind(file_hex)
    .bind(change_prefix())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Every node's placed (shards, bytes), the changes folded in first.
pub async fn totals(db: &Db) -> Result<HashMap<NodeId, (i64, i64)>, StoreError> {
    fold(db).await?;
    let rows = sqlx::query("SELECT node_id, shards, bytes FROM node_placed")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                parse(&r.try_get::<String, _>("node_id")?, "node id")?,
                (r.try_get("shards")?, r.try_get("bytes")?),
            ))
        })
        .collect()
}

/// Fold the changes into the totals, a batch a transaction. Each batch deletes the changes it
/// adds (`DELETE … RETURNING`), so two folds at once never add one change twice.
async fn fold(db: &Db) -> Result<(), StoreError> {
    loop {
        let mut tx = db.begin_write().await?;
        let taken = sqlx::query(
            "DELETE FROM node_placed_changes WHERE id IN (SELECT id FROM node_placed_changes LIMIT $1) \
             RETURNING node_id, shards, bytes",
        )
        .bind(FOLD_BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut sums: HashMap<String, (i64, i64)> = HashMap::new();
        for r in &taken {
            let sum = sums.entry(r.try_get("node_id")?).or_default();
            sum.0 += r.try_get::<i64, _>("shards")?;
            sum.1 += r.try_get::<i64, _>("bytes")?;
        }
        for (node, (shards, bytes)) in &sums {
            sqlx::query(
                "INSERT INTO node_placed (node_id, shards, bytes) VALUES ($1, $2, $3) ON CONFLICT (node_id) \
                 DO UPDATE SET shards = node_placed.shards + excluded.shards, bytes = node_placed.bytes + excluded.bytes",
            )
            .bind(node)
            .bind(shards)
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        if i64::try_from(taken.len()).unwrap_or(i64::MAX) < FOLD_BATCH {
            return Ok(());
        }
    }
}
