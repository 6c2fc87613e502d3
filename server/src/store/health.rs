//! Chunk health: how many of each chunk's placements are healthy ([`healthy!`]), the shards
//! reported lost (`corrupt_reports`: corrupt, missing or failed an audit), and repair's move of a
//! placement to a new worker.

use disktro_core::ShardId;
use sqlx::Row as _;

use super::{Db, StoreError, Tx, parse, to_i64, to_u64};

/// Chunks by health, over every file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkCounts {
    pub chunks: i64,
    /// All k + m shards healthy.
    pub full: i64,
    /// Fewer than k + m healthy, at least k.
    pub degraded: i64,
    /// At most k + `margin` healthy (and not full): close to unreadable. Repair takes every
    /// chunk below full, fewest healthy first, so these go first.
    pub at_risk: i64,
    /// Fewer than k healthy.
    pub unreadable: i64,
}

/// Chunks by health with `online_since` the oldest heartbeat that counts as online and `margin`
/// the healthy shards above k that still count as at risk. Costs what is damaged (the chunks
/// [`due_for_repair`] searches) and a sum over accounts, never a walk of every shard stored
/// (it did, on every `GET /durability`: the dashboard's and the home page's).
pub async fn chunk_counts(db: &Db, online_since: i64, margin: u32) -> Result<ChunkCounts, StoreError> {
    // Every chunk stored, from the accounts' counters; those short of full, from the damage.
    let chunks: i64 = sqlx::query("SELECT CAST(COALESCE(SUM(chunk_count), 0) AS BIGINT) AS chunks FROM accounts")
        .fetch_one(&db.pool)
        .await?
        .try_get("chunks")?;
    let margin = i64::from(margin);
    let mut counts = ChunkCounts {
        chunks,
        ..ChunkCounts::default()
    };
    for c in short_chunks(db, online_since).await? {
        counts.degraded += i64::from(c.healthy >= c.k);
        counts.at_risk += i64::from(c.healthy <= c.k + margin);
        counts.unreadable += i64::from(c.healthy < c.k);
    }
    counts.full = chunks - counts.degraded - counts.unreadable;
    Ok(counts)
}

/// What the background jobs have queued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Shards waiting to be deleted from their workers.
    pub gc_pending: i64,
    /// Shards workers hold that no file needs, not yet past their grace.
    pub orphan_candidates: i64,
    /// Shards whose audit went unanswered and will be asked again.
    pub contained: i64,
}

pub async fn backlog(db: &Db) -> Result<Backlog, StoreError> {
    let row = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM gc_shards) AS gc, (SELECT COUNT(*) FROM orphan_candidates) AS orphans, \
             (SELECT COUNT(*) FROM audit_containment) AS contained",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(Backlog {
        gc_pending: row.try_get("gc")?,
        orphan_candidates: row.try_get("orphans")?,
        contained: row.try_get("contained")?,
    })
}

/// A chunk due for repair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueChunk {
    pub file_hex: String,
    pub chunk: u64,
    /// The last heartbeat of the earliest-gone offline worker among its unhealthy shards' (none
    /// when every unhealthy shard's worker is online: suspended, disqualified or a reported loss).
    pub lost_at: Option<i64>,
}

/// Chunks with fewer than k + m healthy shards, fewest healthy first, at most `limit`.
pub async fn due_for_repair(db: &Db, online_since: i64, limit: i64) -> Result<Vec<DueChunk>, StoreError> {
    let mut due = short_chunks(db, online_since).await?;
    due.sort_unstable_by(|a, b| (a.healthy, &a.file_hex, a.chunk).cmp(&(b.healthy, &b.file_hex, b.chunk)));
    due.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(due
        .into_iter()
        .map(|c| DueChunk {
            file_hex: c.file_hex,
            chunk: to_u64(c.chunk),
            lost_at: c.lost_at,
        })
        .collect())
}

/// A chunk short of healthy shards, and its code's k.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ShortChunk {
    file_hex: String,
    chunk: i64,
    healthy: i64,
    k: i64,
    lost_at: Option<i64>,
}

/// Every chunk with fewer than k + m healthy shards, in no order.
///
/// Only chunks with a shard that is not healthy can be short of healthy shards (every chunk has
/// a row per shard; one no worker took is recorded lost where it was planned), so the search
/// starts from those, worker by worker and by index: the shards of workers offline or not
/// active, and the shards reported lost. The chunks found are then counted a batch of files at a
/// time. A search costs what is degraded, never a walk of every shard stored (one statement
/// joining it all lets the planner choose that walk: PostgreSQL did, at every size).
async fn short_chunks(db: &Db, online_since: i64) -> Result<Vec<ShortChunk>, StoreError> {
    let unhealthy_nodes: Vec<String> =
        sqlx::query("SELECT node_id FROM nodes WHERE last_seen < $1 OR state <> 'active'")
            .bind(online_since)
            .fetch_all(&db.pool)
            .await?
            .iter()
            .map(|r| r.try_get("node_id"))
            .collect::<Result<_, _>>()?;
    let mut degraded: std::collections::BTreeSet<(String, i64)> = std::collections::BTreeSet::new();
    for node in &unhealthy_nodes {
        let rows = sqlx::query("SELECT file_id, chunk FROM file_shards WHERE node_id = $1")
            .bind(node)
            .fetch_all(&db.pool)
            .await?;
        for r in &rows {
            degraded.insert((r.try_get("file_id")?, r.try_get("chunk")?));
        }
    }
    let reported = sqlx::query(
        "SELECT s.file_id, s.chunk FROM corrupt_reports c \
         JOIN file_shards s ON s.node_id = c.node_id AND s.shard_id = c.shard_id",
    )
    .fetch_all(&db.pool)
    .await?;
    for r in &reported {
        degraded.insert((r.try_get("file_id")?, r.try_get("chunk")?));
    }
    let files: Vec<String> = degraded
        .iter()
        .map(|(file, _)| file.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut short = Vec::new();
    for batch in files.chunks(FILES_PER_COUNT) {
        let sql = format!(
            concat!(
                "SELECT file_id, chunk, healthy, k, lost_at FROM (SELECT s.file_id, s.chunk, f.data_shards AS k, \
                     f.parity_shards AS m, MIN(CASE WHEN n.last_seen < $1 THEN n.last_seen END) AS lost_at, SUM(CASE WHEN ",
                healthy!(),
                " THEN 1 ELSE 0 END) AS healthy \
                 FROM file_shards s JOIN files f ON f.id = s.file_id JOIN nodes n ON n.node_id = s.node_id \
                 WHERE s.file_id IN ({}) \
                 GROUP BY s.file_id, s.chunk, f.data_shards, f.parity_shards) AS per_chunk \
                 WHERE healthy < k + m"
            ),
            super::files::placeholders(2, batch.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(online_since);
        for file in batch {
            query = query.bind(file);
        }
        for r in &query.fetch_all(&db.pool).await? {
            let key: (String, i64) = (r.try_get("file_id")?, r.try_get("chunk")?);
            if degraded.contains(&key) {
                short.push(ShortChunk {
                    file_hex: key.0,
                    chunk: key.1,
                    healthy: r.try_get("healthy")?,
                    k: r.try_get("k")?,
                    lost_at: r.try_get("lost_at")?,
                });
            }
        }
    }
    Ok(short)
}

/// Files whose chunks one statement of [`due_for_repair`] counts: few enough that PostgreSQL
/// reads them by index (with 500, it walked the table at the smallest size of `make bench-scale`).
const FILES_PER_COUNT: usize = 100;

/// A placement the rebalancer may move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movable {
    pub file_hex: String,
    pub chunk: u64,
    pub idx: usize,
    pub shard: ShardId,
    pub size: i64,
}

/// Up to `limit` placements on `node`, in shard id order from `start` (wrapping around), so
/// successive passes start at different shards.
pub async fn movable(db: &Db, node: &str, start: &str, limit: usize) -> Result<Vec<Movable>, StoreError> {
    let mut out = Vec::new();
    for statement in [
        "SELECT file_id, chunk, idx, shard_id, size FROM file_shards WHERE node_id = $1 AND shard_id >= $2 \
         ORDER BY shard_id LIMIT $3",
        "SELECT file_id, chunk, idx, shard_id, size FROM file_shards WHERE node_id = $1 AND shard_id < $2 \
         ORDER BY shard_id LIMIT $3",
    ] {
        let left = limit.saturating_sub(out.len());
        if left == 0 {
            break;
        }
        let rows = sqlx::query(statement)
            .bind(node)
            .bind(start)
            .bind(i64::try_from(left).unwrap_or(i64::MAX))
            .fetch_all(&db.pool)
            .await?;
        for r in &rows {
            out.push(Movable {
                file_hex: r.try_get("file_id")?,
                chunk: to_u64(r.try_get("chunk")?),
                idx: usize::try_from(r.try_get::<i64, _>("idx")?).map_err(|_| StoreError::Corrupt("shard index"))?,
                shard: parse(&r.try_get::<String, _>("shard_id")?, "shard id")?,
                size: r.try_get("size")?,
            });
        }
    }
    Ok(out)
}

/// One placement of a chunk, with its worker and whether it is healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub idx: usize,
    pub shard: ShardId,
    pub node: String,
    pub url: String,
    pub zone: String,
    pub operator: String,
    pub healthy: bool,
    /// Unhealthy only because its online worker is draining: the bytes can still be read there.
    pub draining: bool,
}

/// Every placement of one chunk, in shard order.
pub async fn slots(db: &Db, online_since: i64, file_hex: &str, chunk: u64) -> Result<Vec<Slot>, StoreError> {
    let rows = sqlx::query(concat!(
        "SELECT s.idx, s.shard_id, s.node_id, n.url, n.zone, n.operator, \
         CASE WHEN n.state = 'draining' AND n.last_seen >= $1 THEN 1 ELSE 0 END AS draining, CASE WHEN ",
        healthy!(),
        " THEN 1 ELSE 0 END AS healthy \
         FROM file_shards s JOIN nodes n ON n.node_id = s.node_id WHERE s.file_id = $2 AND s.chunk = $3 ORDER BY s.idx"
    ))
    .bind(online_since)
    .bind(file_hex)
    .bind(to_i64(chunk))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Slot {
                idx: usize::try_from(r.try_get::<i64, _>("idx")?).map_err(|_| StoreError::Corrupt("shard index"))?,
                shard: parse(&r.try_get::<String, _>("shard_id")?, "shard id")?,
                node: r.try_get("node_id")?,
                url: r.try_get("url")?,
                zone: r.try_get("zone")?,
                operator: r.try_get("operator")?,
                healthy: r.try_get::<i64, _>("healthy")? == 1,
                draining: r.try_get::<i64, _>("draining")? == 1,
            })
        })
        .collect()
}

/// Record that `shard` on `node` no longer counts (`reason`: 'corrupt', 'missing' or 'audit'), so
/// repair rebuilds it elsewhere. Returns whether it was news (not already reported).
pub async fn mark_lost(
    conn: &mut sqlx::AnyConnection,
    node: &str,
    shard: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let added = sqlx::query(
        "INSERT INTO corrupt_reports (node_id, shard_id, reported_at, reason) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(node)
    .bind(shard)
    .bind(now)
    .bind(reason)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(added == 1)
}

/// [`mark_lost`] for a shard the node itself reports corrupt: only if it is placed there (a
/// worker's orphans and collected copies are nobody's loss). Returns whether it was news.
pub async fn mark_reported_corrupt(tx: &mut Tx, node: &str, shard: &str, now: i64) -> Result<bool, StoreError> {
    let added = sqlx::query(
        "INSERT INTO corrupt_reports (node_id, shard_id, reported_at, reason) \
         SELECT $1, $2, $3, 'corrupt' WHERE EXISTS (SELECT 1 FROM file_shards WHERE node_id = $1 AND shard_id = $2) \
         ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(node)
    .bind(shard)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(added == 1)
}

/// Every shard reported lost, as (node, shard), oldest report first.
pub async fn lost_shards(db: &Db) -> Result<Vec<(String, String)>, StoreError> {
    let rows = sqlx::query("SELECT node_id, shard_id FROM corrupt_reports ORDER BY reported_at, node_id, shard_id")
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("node_id")?, r.try_get("shard_id")?)))
        .collect()
}

/// A rebuilt shard's new home: the placement `(file, chunk, idx)` moves from `from` to `to` (its
/// audits start over), the loss report and containment on `from` are dropped, and the old copy is
/// handed to garbage collection as deleted at `gc_deleted_at`. `false` (and nothing changed) when
/// the placement is no longer on `from`. The row counts as placed at `now`.
pub async fn move_shard(
    tx: &mut Tx,
    file_hex: &str,
    chunk: u64,
    slot: &Slot,
    to: &str,
    gc_deleted_at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let moved = sqlx::query(
        "UPDATE file_shards SET node_id = $4, audited_at = 0, placed_at = $6 \
         WHERE file_id = $1 AND chunk = $2 AND idx = $3 AND node_id = $5",
    )
    .bind(file_hex)
    .bind(to_i64(chunk))
    .bind(to_i64(slot.idx as u64))
    .bind(to)
    .bind(&slot.node)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved != 1 {
        return Ok(false);
    }
    let size: i64 = sqlx::query("SELECT size FROM file_shards WHERE file_id = $1 AND chunk = $2 AND idx = $3")
        .bind(file_hex)
        .bind(to_i64(chunk))
        .bind(to_i64(slot.idx as u64))
        .fetch_one(&mut **tx)
        .await?
        .try_get("size")?;
    super::placed::record(
        tx,
        &std::collections::HashMap::from([(slot.node.clone(), (-1, -size)), (to.to_owned(), (1, size))]),
    )
    .await?;
    let shard = slot.shard.to_hex();
    for q in [
        "DELETE FROM corrupt_reports WHERE node_id = $1 AND shard_id = $2",
        "DELETE FROM audit_containment WHERE node_id = $1 AND shard_id = $2",
    ] {
        sqlx::query(q).bind(&slot.node).bind(&shard).execute(&mut **tx).await?;
    }
    sqlx::query(
        "INSERT INTO gc_shards (node_id, shard_id, deleted_at) VALUES ($1, $2, $3) \
         ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(&slot.node)
    .bind(&shard)
    .bind(gc_deleted_at)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
