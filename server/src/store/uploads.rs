//! Uploads in progress (`uploads`) and the put tokens handed out for them (`upload_tokens`).

use std::collections::HashMap;

use disktro_core::api::PutGrant;
use disktro_core::{FileId, NodeId, Redundancy, Serial};
use sqlx::Row as _;

use super::{Db, StoreError, Tx, parse, to_i64, to_u64};

/// An upload as begun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub file_id: FileId,
    pub size: u64,
    pub redundancy: Redundancy,
    pub chunk_size: u32,
}

/// Record a new upload, unless a file or upload already has its file id (then `false`).
pub async fn create(
    tx: &mut Tx,
    upload_id: &str,
    account_id: &str,
    up: &UploadRow,
    now: i64,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let file_hex = up.file_id.to_hex();
    let taken =
        sqlx::query("SELECT 1 AS x FROM files WHERE id = $1 UNION ALL SELECT 1 AS x FROM uploads WHERE file_id = $1")
            .bind(&file_hex)
            .fetch_optional(&mut **tx)
            .await?;
    if taken.is_some() {
        return Ok(false);
    }
    let inserted = sqlx::query(
        "INSERT INTO uploads (id, account_id, file_id, size, data_shards, parity_shards, chunk_size, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(upload_id)
    .bind(account_id)
    .bind(&file_hex)
    .bind(to_i64(up.size))
    .bind(i64::from(up.redundancy.data))
    .bind(i64::from(up.redundancy.parity))
    .bind(i64::from(up.chunk_size))
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        // A concurrent begin with the same file id won the race.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Remember the put tokens handed out, so receipts can be matched to this upload at commit.
pub async fn record_grants(tx: &mut Tx, upload_id: &str, grants: &[PutGrant]) -> Result<(), StoreError> {
    for g in grants {
        sqlx::query(
            "INSERT INTO upload_tokens (serial, upload_id, node_id, budget, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(g.serial.to_hex())
        .bind(upload_id)
        .bind(g.node_id.to_hex())
        .bind(to_i64(g.budget))
        .bind(to_i64(g.expires_at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The account's upload `id`, if it exists and has not expired.
pub async fn open(db: &Db, account_id: &str, id: &str, now: i64) -> Result<Option<UploadRow>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT file_id, size, data_shards, parity_shards, chunk_size FROM uploads \
         WHERE id = $1 AND account_id = $2 AND expires_at > $3",
    )
    .bind(id)
    .bind(account_id)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    let small = |v: i64| u8::try_from(v).map_err(|_| StoreError::Corrupt("redundancy"));
    Ok(Some(UploadRow {
        file_id: parse(&row.try_get::<String, _>("file_id")?, "file id")?,
        size: to_u64(row.try_get("size")?),
        redundancy: Redundancy::new(
            small(row.try_get("data_shards")?)?,
            small(row.try_get("parity_shards")?)?,
        )
        .map_err(|_| StoreError::Corrupt("redundancy"))?,
        chunk_size: u32::try_from(row.try_get::<i64, _>("chunk_size")?)
            .map_err(|_| StoreError::Corrupt("chunk size"))?,
    }))
}

/// A worker an upload was granted, with its URL now and the largest budget it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTarget {
    pub node_id: NodeId,
    pub url: String,
    pub budget: u64,
}

/// Every worker upload `id` holds put tokens for, by node id.
pub async fn grant_targets(db: &Db, id: &str) -> Result<Vec<GrantTarget>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.node_id, MAX(t.budget) AS budget, n.url FROM upload_tokens t JOIN nodes n ON n.node_id = t.node_id \
         WHERE t.upload_id = $1 GROUP BY t.node_id, n.url ORDER BY t.node_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(GrantTarget {
                node_id: parse(&row.try_get::<String, _>("node_id")?, "node id")?,
                url: row.try_get("url")?,
                budget: to_u64(row.try_get("budget")?),
            })
        })
        .collect()
}

/// Which worker each put token of upload `id` was issued to. Rows that do not decode are left
/// out: a receipt under them is then refused, which is the safe side.
pub async fn serials(db: &Db, id: &str) -> Result<HashMap<Serial, NodeId>, StoreError> {
    let mut out = HashMap::new();
    for row in sqlx::query("SELECT serial, node_id FROM upload_tokens WHERE upload_id = $1")
        .bind(id)
        .fetch_all(&db.pool)
        .await?
    {
        let serial: String = row.try_get("serial")?;
        let node: String = row.try_get("node_id")?;
        if let (Ok(s), Ok(n)) = (serial.parse::<Serial>(), node.parse::<NodeId>()) {
            out.insert(s, n);
        }
    }
    Ok(out)
}

/// End the account's upload `id` (cancelled or committed): its tokens and its row go. `false`
/// when there was no such upload (another request ended it first).
pub async fn end(tx: &mut Tx, account_id: &str, id: &str) -> Result<bool, StoreError> {
    let owned = sqlx::query("SELECT id FROM uploads WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?;
    if owned.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM upload_tokens WHERE upload_id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    let gone = sqlx::query("DELETE FROM uploads WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    Ok(gone == 1)
}
