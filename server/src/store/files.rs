//! Committed files (`files`) and where their shards live (`file_shards`). A file's bytes are
//! charged to its account's quota at commit ([`super::accounts::charge`]); deleting the file
//! returns them, hands its shards to garbage collection (`gc_shards`) and revokes its shares, in
//! one transaction.

use std::collections::HashMap;

use disktro_core::api::Base64;
use disktro_core::{FileId, FolderId, NodeId, ShardId};
use sqlx::Row as _;

use super::{Db, StoreError, Tx, base64, parse, to_i64, to_u64};

/// Whether the account owns the committed file.
pub async fn owned_by(db: &Db, account_id: &str, file_hex: &str) -> Result<bool, StoreError> {
    let owned = sqlx::query("SELECT id FROM files WHERE id = $1 AND account_id = $2")
        .bind(file_hex)
        .bind(account_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(owned.is_some())
}

/// A file as committed (binary values are stored as the API carries them: base64url).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile<'a> {
    pub file_hex: &'a str,
    pub account_id: &'a str,
    pub manifest: &'a Base64,
    pub metadata: &'a Base64,
    pub wrapped_key: &'a Base64,
    pub size: u64,
    pub stored_bytes: u64,
    pub data_shards: u8,
    pub parity_shards: u8,
    pub chunk_count: u64,
    pub created_at: i64,
    /// The folder the upload was begun for: the file goes in it if the account still has it,
    /// else at the top of the tree.
    pub folder_id: Option<FolderId>,
}

pub async fn insert(tx: &mut Tx, f: &NewFile<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO files (id, account_id, manifest, metadata, wrapped_key, size, stored_bytes, data_shards, parity_shards, chunk_count, created_at, folder_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, (SELECT id FROM folders WHERE id = $12 AND account_id = $2))",
    )
    .bind(f.file_hex)
    .bind(f.account_id)
    .bind(f.manifest.encode())
    .bind(f.metadata.encode())
    .bind(f.wrapped_key.encode())
    .bind(to_i64(f.size))
    .bind(to_i64(f.stored_bytes))
    .bind(i64::from(f.data_shards))
    .bind(i64::from(f.parity_shards))
    .bind(to_i64(f.chunk_count))
    .bind(f.created_at)
    .bind(f.folder_id.map(|id| id.to_hex()))
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE accounts SET file_count = file_count + 1, chunk_count = chunk_count + $2 WHERE id = $1")
        .bind(f.account_id)
        .bind(to_i64(f.chunk_count))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Where one shard of a file lives, as recorded at commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardRow {
    pub chunk: u64,
    pub index: usize,
    pub shard: ShardId,
    pub node: NodeId,
    pub size: u32,
}

/// Rows per multi-row INSERT: 6 values each, well under SQLite's 32,766 bound parameters.
const SHARD_BATCH: usize = 500;

/// Record where a committed file's shards live, placed at `now`.
pub async fn insert_shards(tx: &mut Tx, file_hex: &str, rows: &[ShardRow], now: i64) -> Result<(), StoreError> {
    for batch in rows.chunks(SHARD_BATCH) {
        // The commit time is the same for every row: one parameter, the last.
        let now_param = batch.len() * 6 + 1;
        let mut sql =
            String::from("INSERT INTO file_shards (file_id, chunk, idx, shard_id, node_id, size, placed_at) VALUES ");
        for i in 0..batch.len() {
            let p = i * 6;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${now_param})",
                p + 1,
                p + 2,
                p + 3,
                p + 4,
                p + 5,
                p + 6
            ));
        }
        // Only placeholders are formatted into the statement; every value is bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in batch {
            query = query
                .bind(file_hex)
                .bind(to_i64(r.chunk))
                .bind(r.index as i64)
                .bind(r.shard.to_hex())
                .bind(r.node.to_hex())
                .bind(i64::from(r.size));
        }
        query.bind(now).execute(&mut **tx).await?;
    }
    let mut per_node: HashMap<String, (i64, i64)> = HashMap::new();
    for r in rows {
        let sum = per_node.entry(r.node.to_hex()).or_default();
        sum.0 += 1;
        sum.1 += i64::from(r.size);
    }
    super::placed::record(tx, &per_node).await
}

/// One line of an account's file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    pub file_id: FileId,
    pub metadata: Base64,
    pub wrapped_key: Base64,
    pub size: u64,
    pub stored_bytes: u64,
    pub data_shards: u64,
    pub parity_shards: u64,
    pub chunk_count: u64,
    pub created_at: i64,
    pub folder_id: Option<FolderId>,
}

/// Where a page of an account's files starts: after this file, in list order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageStart {
    pub created_at: i64,
    pub file_id: FileId,
}

/// Up to `limit` of the account's files, newest first (ties by id, descending), after `after`:
/// read by keyset from the `files_by_account` index, so a page costs the same however deep it
/// is. The order is the index's read backwards and `created_at <= $2` bounds the range, so both
/// databases start the page at the cursor (with `created_at < $2 OR …` alone, PostgreSQL walked
/// the index from the newest file: a page half-way down 100,000 files took 64 ms, not 10).
pub async fn list(
    db: &Db,
    account_id: &str,
    limit: usize,
    after: Option<&PageStart>,
    folder: Option<Option<FolderId>>,
) -> Result<Vec<ListedFile>, StoreError> {
    const COLUMNS: &str = "SELECT id, metadata, wrapped_key, size, stored_bytes, data_shards, parity_shards, chunk_count, created_at, folder_id FROM files";
    // One folder's files come from `files_by_folder` the same way; the top of the tree is
    // `folder_id IS NULL`. Only placeholders are formatted into the statement; every value is
    // bound, in the order they are numbered.
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut sql = format!("{COLUMNS} WHERE account_id = $1");
    let mut next = 2;
    if after.is_some() {
        sql.push_str(" AND created_at <= $2 AND (created_at < $2 OR id < $3)");
        next = 4;
    }
    match folder {
        None => {}
        Some(None) => sql.push_str(" AND folder_id IS NULL"),
        Some(Some(_)) => {
            sql.push_str(&format!(" AND folder_id = ${next}"));
            next += 1;
        }
    }
    sql.push_str(&format!(" ORDER BY created_at DESC, id DESC LIMIT ${next}"));
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(account_id);
    if let Some(start) = after {
        query = query.bind(start.created_at).bind(start.file_id.to_string());
    }
    if let Some(Some(f)) = folder {
        query = query.bind(f.to_hex());
    }
    let rows = query.bind(limit).fetch_all(&db.pool).await?;
    rows.iter()
        .map(|row| {
            Ok(ListedFile {
                file_id: parse(&row.try_get::<String, _>("id")?, "file id")?,
                metadata: base64(row, "metadata")?,
                wrapped_key: base64(row, "wrapped_key")?,
                size: to_u64(row.try_get("size")?),
                stored_bytes: to_u64(row.try_get("stored_bytes")?),
                data_shards: to_u64(row.try_get("data_shards")?),
                parity_shards: to_u64(row.try_get("parity_shards")?),
                chunk_count: to_u64(row.try_get("chunk_count")?),
                created_at: row.try_get("created_at")?,
                folder_id: row
                    .try_get::<Option<String>, _>("folder_id")?
                    .map(|f| parse(&f, "folder id"))
                    .transpose()?,
            })
        })
        .collect()
}

/// New sealed metadata (a new name) for the account's file; `false` when it has no such file.
pub async fn rename(tx: &mut Tx, account_id: &str, file: &FileId, metadata: &Base64) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("UPDATE files SET metadata = $3 WHERE id = $1 AND account_id = $2")
            .bind(file.to_hex())
            .bind(account_id)
            .bind(metadata.encode())
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// How many files the account has: its counter, kept by [`insert`] and [`delete`] (a count of
/// its rows would cost each page of a long list a walk of the whole list).
pub async fn count(db: &Db, account_id: &str) -> Result<u64, StoreError> {
    let row = sqlx::query("SELECT file_count FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.try_get("file_count")).transpose()?.map_or(0, to_u64))
}

/// Per file of `files` (hex ids: a page of a list): the healthy shards of its weakest chunk
/// ([`healthy!`], with `online_since` the oldest heartbeat that counts as online), and the most
/// healthy shards any of its chunks has in one zone. One statement over the page's placements
/// (two, one per figure, read each placement twice).
pub async fn page_health(
    db: &Db,
    files: &[String],
    online_since: i64,
) -> Result<HashMap<FileId, PageHealth>, StoreError> {
    if files.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        concat!(
            "SELECT file_id, MIN(chunk_healthy) AS weakest, MAX(zone_most) AS most FROM ( \
               SELECT file_id, chunk, CAST(SUM(in_zone) AS BIGINT) AS chunk_healthy, MAX(in_zone) AS zone_most FROM ( \
                 SELECT s.file_id, s.chunk, n.zone, SUM(CASE WHEN ",
            healthy!(),
            " THEN 1 ELSE 0 END) AS in_zone \
                 FROM file_shards s JOIN nodes n ON n.node_id = s.node_id \
                 WHERE s.file_id IN ({}) GROUP BY s.file_id, s.chunk, n.zone) AS per_zone \
               GROUP BY file_id, chunk) AS per_chunk \
             GROUP BY file_id"
        ),
        placeholders(2, files.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(online_since);
    for file in files {
        query = query.bind(file);
    }
    query
        .fetch_all(&db.pool)
        .await?
        .iter()
        .map(|row| {
            Ok((
                parse(&row.try_get::<String, _>("file_id")?, "file id")?,
                PageHealth {
                    weakest_chunk: to_u64(row.try_get::<i64, _>("weakest")?),
                    most_in_one_zone: to_u64(row.try_get::<i64, _>("most")?),
                },
            ))
        })
        .collect()
}

/// A listed file's health ([`page_health`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PageHealth {
    pub weakest_chunk: u64,
    pub most_in_one_zone: u64,
}

/// `$first, $first + 1, …` for `count` values bound in a row (an `IN` list).
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A committed file as a reader gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub account_id: String,
    pub manifest: Base64,
    pub metadata: Base64,
    pub wrapped_key: Base64,
    pub size: u64,
    pub created_at: i64,
    /// Bytes its shards take on workers.
    pub stored_bytes: u64,
    /// Bytes a reader fetches at the least: the data shards' share of all stored bytes.
    pub data_bytes: u64,
    /// k: shards a chunk is read from.
    pub data_shards: u64,
    pub folder_id: Option<FolderId>,
}

pub async fn read(db: &Db, file_hex: &str) -> Result<Option<StoredFile>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT account_id, manifest, metadata, wrapped_key, size, created_at, stored_bytes, data_shards, \
             parity_shards, folder_id FROM files WHERE id = $1",
    )
    .bind(file_hex)
    .fetch_optional(&db.pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(StoredFile {
        account_id: row.try_get("account_id")?,
        manifest: base64(&row, "manifest")?,
        metadata: base64(&row, "metadata")?,
        wrapped_key: base64(&row, "wrapped_key")?,
        size: to_u64(row.try_get("size")?),
        created_at: row.try_get("created_at")?,
        stored_bytes: to_u64(row.try_get("stored_bytes")?),
        data_bytes: {
            let stored = u128::from(to_u64(row.try_get("stored_bytes")?));
            let data = u128::from(to_u64(row.try_get("data_shards")?));
            let all = (data + u128::from(to_u64(row.try_get("parity_shards")?))).max(1);
            u64::try_from(stored * data / all).unwrap_or(u64::MAX)
        },
        data_shards: to_u64(row.try_get("data_shards")?),
        folder_id: row
            .try_get::<Option<String>, _>("folder_id")?
            .map(|f| parse(&f, "folder id"))
            .transpose()?,
    }))
}

/// One shard of a file with the worker that holds it, as a reader needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardLocation {
    pub chunk: u64,
    pub shard: ShardId,
    pub size: u64,
    pub node: NodeId,
    pub url: String,
    pub last_seen: i64,
}

/// Every shard of the file, in chunk and index order.
pub async fn locations(db: &Db, file_hex: &str) -> Result<Vec<ShardLocation>, StoreError> {
    let rows = sqlx::query(
        "SELECT s.chunk, s.idx, s.shard_id, s.node_id, s.size, n.url, n.last_seen FROM file_shards s \
         JOIN nodes n ON n.node_id = s.node_id WHERE s.file_id = $1 ORDER BY s.chunk, s.idx",
    )
    .bind(file_hex)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(shard_location).collect()
}

/// Every shard of the file (in chunk and index order) and every copy of a hot file's shards (on
/// workers registered now): what a reader is given, in one query (a manifest read is three
/// round trips to the database in all: the caller's credentials, the file, this).
pub async fn reading(db: &Db, file_hex: &str) -> Result<(Vec<ShardLocation>, Vec<super::copies::HotCopy>), StoreError> {
    let rows = sqlx::query(
        "SELECT CAST(0 AS BIGINT) AS is_copy, s.chunk AS chunk, s.idx AS idx, s.shard_id AS shard_id, \
         s.node_id AS node_id, s.size AS size, n.url AS url, n.last_seen AS last_seen \
         FROM file_shards s JOIN nodes n ON n.node_id = s.node_id WHERE s.file_id = $1 \
         UNION ALL \
         SELECT CAST(1 AS BIGINT) AS is_copy, c.chunk, c.idx, c.shard_id, c.node_id, c.size, n.url, n.last_seen \
         FROM hot_copies c JOIN nodes n ON n.node_id = c.node_id WHERE c.file_id = $1 \
         ORDER BY is_copy, chunk, idx, node_id",
    )
    .bind(file_hex)
    .fetch_all(&db.pool)
    .await?;
    let (mut shards, mut copies) = (Vec::with_capacity(rows.len()), Vec::new());
    for r in &rows {
        if r.try_get::<i64, _>("is_copy")? == 0 {
            shards.push(shard_location(r)?);
        } else {
            copies.push(super::copies::HotCopy {
                idx: to_u64(r.try_get("idx")?),
                location: shard_location(r)?,
            });
        }
    }
    Ok((shards, copies))
}

/// A row's `chunk, shard_id, size, node_id, url, last_seen`.
pub(super) fn shard_location(r: &sqlx::any::AnyRow) -> Result<ShardLocation, StoreError> {
    Ok(ShardLocation {
        chunk: to_u64(r.try_get("chunk")?),
        shard: parse(&r.try_get::<String, _>("shard_id")?, "shard id")?,
        size: to_u64(r.try_get("size")?),
        node: parse(&r.try_get::<String, _>("node_id")?, "node id")?,
        url: r.try_get("url")?,
        last_seen: r.try_get("last_seen")?,
    })
}

/// Hand every shard of file `file_hex` (and a hot file's copies) to garbage collection, deleted
/// at `now`, and take its placements out of the per-node totals and the table.
async fn release_shards(tx: &mut Tx, file_hex: &str, now: i64) -> Result<(), StoreError> {
    // Copies of a hot file's shards are collected with it (the rows go with the file).
    super::copies::drop_file(tx, file_hex, now).await?;
    sqlx::query(
        "INSERT INTO gc_shards (node_id, shard_id, deleted_at) SELECT node_id, shard_id, $2 FROM file_shards \
         WHERE file_id = $1 ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(file_hex)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    super::placed::record_file_removed(tx, file_hex).await?;
    sqlx::query("DELETE FROM file_shards WHERE file_id = $1")
        .bind(file_hex)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A restripe's new manifest and shape, for [`restripe`].
#[derive(Debug)]
pub struct Restripe<'a> {
    pub file_hex: &'a str,
    pub account_id: &'a str,
    pub manifest: &'a Base64,
    pub stored_bytes: u64,
    pub data_shards: u8,
    pub parity_shards: u8,
}

/// What [`restripe`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restriped {
    Yes,
    /// The account has no such file (deleted meanwhile).
    NoFile,
    /// The new shards take more than the old and the account has no room for the difference.
    OverQuota,
}

/// Put a restripe's manifest in place of the account's file's: the old shards (and a hot file's
/// copies) to garbage collection and out of the per-node totals, the account charged (or
/// refunded) the difference in stored bytes. The caller records the new shards
/// ([`insert_shards`]) in the same transaction. Shares, metadata and key stay as they are.
pub async fn restripe(tx: &mut Tx, r: &Restripe<'_>, now: i64) -> Result<Restriped, StoreError> {
    let Some(row) = sqlx::query("SELECT stored_bytes FROM files WHERE id = $1 AND account_id = $2")
        .bind(r.file_hex)
        .bind(r.account_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(Restriped::NoFile);
    };
    let grows_by = to_i64(r.stored_bytes) - row.try_get::<i64, _>("stored_bytes")?;
    let charged = sqlx::query(
        "UPDATE accounts SET used_bytes = used_bytes + $1 \
         WHERE id = $2 AND ($1 <= 0 OR used_bytes + reserved_bytes + $1 <= quota_bytes)",
    )
    .bind(grows_by)
    .bind(r.account_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if charged != 1 {
        return Ok(Restriped::OverQuota);
    }
    release_shards(tx, r.file_hex, now).await?;
    sqlx::query(
        "UPDATE files SET manifest = $2, stored_bytes = $3, data_shards = $4, parity_shards = $5 WHERE id = $1",
    )
    .bind(r.file_hex)
    .bind(r.manifest.encode())
    .bind(to_i64(r.stored_bytes))
    .bind(i64::from(r.data_shards))
    .bind(i64::from(r.parity_shards))
    .execute(&mut **tx)
    .await?;
    Ok(Restriped::Yes)
}

/// Delete the account's file: its shards to garbage collection, its shares revoked, its bytes
/// returned to the quota. `false` when the account has no such file.
pub async fn delete(tx: &mut Tx, account_id: &str, file_hex: &str, now: i64) -> Result<bool, StoreError> {
    let Some(row) = sqlx::query("SELECT stored_bytes, chunk_count FROM files WHERE id = $1 AND account_id = $2")
        .bind(file_hex)
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(false);
    };
    let stored: i64 = row.try_get("stored_bytes")?;
    let chunks: i64 = row.try_get("chunk_count")?;
    release_shards(tx, file_hex, now).await?;
    sqlx::query("DELETE FROM files WHERE id = $1")
        .bind(file_hex)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE shares SET revoked_at = $2 WHERE file_id = $1 AND revoked_at IS NULL")
        .bind(file_hex)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE accounts SET used_bytes = used_bytes - $1, file_count = file_count - 1, chunk_count = chunk_count - $3 \
         WHERE id = $2",
    )
    .bind(stored)
    .bind(account_id)
    .bind(chunks)
    .execute(&mut **tx)
    .await?;
    Ok(true)
}
