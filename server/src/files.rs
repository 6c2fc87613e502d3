//! Files: begin an upload, commit it, list, read and delete. The server stores what it cannot
//! read (the owner-signed manifest, sealed metadata, the wrapped file key) and where each shard
//! lives.
//!
//! **Begin** takes the client's file id, size and wished (k, m), chooses the redundancy the
//! network can give ([`placement::choose_redundancy`]), places every shard
//! ([`placement::place_chunk`]) and hands out one put grant per worker used. Before any bytes
//! move, the upload is refused when its size stored raw would exceed the account's remaining
//! quota (compression may make it smaller, but the server cannot know that yet).
//!
//! **Commit** is checked in full before one transaction records it: the manifest's signature is
//! the account's identity key, its file id, redundancy, chunk size and plaintext size are what
//! began; every shard of every chunk has a receipt signed by a registered worker under a put token
//! issued for this upload to that worker, of the right size, no worker twice in a chunk; the
//! sealed metadata and wrapped key have their formats; the stored bytes fit the quota. Nothing is
//! recorded for a shard without a receipt.
//!
//! **Delete** removes the file and hands its shards to garbage collection (`gc_shards`), revokes
//! its shares and returns its bytes to the quota, in one transaction.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use disktro_core::api::{
    BeginUpload, Commit, FileDownload, FileList, FileSummary, NodeStatus, PutGrant, ReadNode, RedundancyHealth,
    UploadPlan,
};
use disktro_core::keys::{PublicKey, WRAPPED_KEY_LEN};
use disktro_core::metadata::{MAX_MIME_LEN, MAX_NAME_LEN};
use disktro_core::seal::TAG_LEN;
use disktro_core::token::Receipt;
use disktro_core::{FileId, NodeId, Redundancy, Serial, ShardId, SignedManifest};
use sqlx::Row as _;

use crate::accounts::{decode_b64, encode_b64};
use crate::context::Context;
use crate::error::ServerError;
use crate::grants::{self, Placed};
use crate::nodes;
use crate::placement::{self, Candidate};
use disktro_core::api::ErrorCode;

/// How long an upload may take from begin to commit.
pub const UPLOAD_TTL: i64 = 24 * 60 * 60;
/// Largest file accepted: 64 GiB (16,384 chunks of 4 MiB; its commit is about 45 MB of JSON).
pub const MAX_FILE_SIZE: u64 = 64 << 30;
/// Longest sealed metadata: header, nonce, the longest name and type, their lengths, the tag.
pub const MAX_SEALED_METADATA: usize = 4 + 1 + 12 + 8 + 2 + MAX_NAME_LEN + 2 + MAX_MIME_LEN + TAG_LEN;
/// Body limit of a commit (manifest and receipts of the largest file, base64url in JSON).
pub const MAX_COMMIT_BODY: usize = 64 << 20;
/// Files listed per page at most.
pub const MAX_PAGE: i64 = 1000;

fn parse_hex<T: std::str::FromStr>(value: &str, code: ErrorCode, what: &str) -> Result<T, ServerError> {
    value
        .parse()
        .map_err(|_| ServerError::refused(code, format!("{what} must be lowercase hex of the right length")))
}

fn file_not_found() -> ServerError {
    ServerError::refused(ErrorCode::FileNotFound, "no such file")
}

fn upload_not_found() -> ServerError {
    ServerError::refused(
        ErrorCode::UploadNotFound,
        "no such upload in progress (it may have expired)",
    )
}

fn quota_exceeded(needed: u64, left: i64) -> ServerError {
    ServerError::refused(
        ErrorCode::QuotaExceeded,
        format!(
            "this needs {needed} bytes of storage and the account has {} left",
            left.max(0)
        ),
    )
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(u64::from(chunk_size)).max(1)
}

/// Bytes all shards of the file take when no chunk compresses (the largest it can be).
fn raw_stored_size(size: u64, chunk_size: u32, r: Redundancy) -> u64 {
    let full = size / u64::from(chunk_size);
    let tail = size % u64::from(chunk_size);
    let per_chunk =
        |plain: u64| r.shard_len(usize::try_from(plain).unwrap_or(usize::MAX) + TAG_LEN) as u64 * r.total() as u64;
    let mut total = full * per_chunk(u64::from(chunk_size));
    if tail > 0 || full == 0 {
        total += per_chunk(tail);
    }
    total
}

async fn quota_left(ctx: &Context, account_id: &str) -> Result<(i64, i64), ServerError> {
    let row = sqlx::query("SELECT quota_bytes, used_bytes FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&ctx.db.pool)
        .await?;
    Ok((row.try_get("quota_bytes")?, row.try_get("used_bytes")?))
}

/// Begin an upload.
pub async fn begin(
    ctx: &Arc<Context>,
    account_id: &str,
    req: BeginUpload,
    now: i64,
) -> Result<UploadPlan, ServerError> {
    let file_id: FileId = parse_hex(&req.file_id, ErrorCode::InvalidFileId, "file_id")?;
    if req.size > MAX_FILE_SIZE {
        return Err(ServerError::refused(
            ErrorCode::FileTooLarge,
            format!("files are limited to {MAX_FILE_SIZE} bytes"),
        ));
    }
    let chunk_size = req.chunk_size.unwrap_or(disktro_core::DEFAULT_CHUNK_SIZE);
    if !(disktro_core::MIN_CHUNK_SIZE..=disktro_core::MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(ServerError::refused(
            ErrorCode::InvalidChunkSize,
            format!(
                "chunk_size must be {} to {} bytes",
                disktro_core::MIN_CHUNK_SIZE,
                disktro_core::MAX_CHUNK_SIZE
            ),
        ));
    }
    let wished = Redundancy::new(
        req.data_shards.unwrap_or(Redundancy::DEFAULT.data),
        req.parity_shards.unwrap_or(Redundancy::DEFAULT.parity),
    )
    .map_err(|e| ServerError::refused(ErrorCode::InvalidRedundancy, e.to_string()))?;
    let count = chunk_count(req.size, chunk_size);
    let max_shard = wished.shard_len(chunk_size as usize + TAG_LEN) as u64;
    let workers = nodes::writable(&ctx.db, ctx.heartbeat_interval, now, to_i64(max_shard)).await?;
    let redundancy = placement::choose_redundancy(wished, workers.len())
        .map_err(|e| ServerError::refused(ErrorCode::NotEnoughWorkers, format!("cannot store the file now: {e}")))?;
    let needed = raw_stored_size(req.size, chunk_size, redundancy);
    let (quota, used) = quota_left(ctx, account_id).await?;
    if to_i64(needed) > quota - used {
        return Err(quota_exceeded(needed, quota - used));
    }

    // Placement is CPU work proportional to chunks × workers: off the async threads.
    let candidates: Vec<Candidate> = workers
        .iter()
        .map(|w| Candidate {
            node_id: w.node_id,
            zone: w.zone.clone(),
        })
        .collect();
    let total = redundancy.total();
    let placement = tokio::task::spawn_blocking(move || {
        (0..count)
            .map(|c| placement::place_chunk(&candidates, &file_id, c, total))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|_| ServerError::internal("placement task"))?
    .map_err(|e| ServerError::refused(ErrorCode::NotEnoughWorkers, e.to_string()))?;

    // One grant per worker used, budgeted for its shards at their largest.
    let shard_max = redundancy.shard_len(chunk_size as usize + TAG_LEN) as u64;
    let mut per_worker: Vec<u64> = vec![0; workers.len()];
    for chunk in &placement {
        for &w in chunk {
            per_worker[w] += 1;
        }
    }
    let upload_id: [u8; 16] = disktro_core::random_bytes();
    let upload_hex = disktro_core::ids::to_hex(&upload_id);
    let mut grants = Vec::new();
    let mut grant_of_worker = vec![u16::MAX; workers.len()];
    for (w, shards) in per_worker.iter().enumerate().filter(|(_, n)| **n > 0) {
        grant_of_worker[w] = u16::try_from(grants.len()).expect("fewer than 65,536 workers per upload");
        grants.push(grants::put(
            &ctx.key,
            workers[w].node_id,
            &workers[w].url,
            upload_id,
            shards * shard_max,
            now,
        )?);
    }

    let mut tx = ctx.db.begin_write().await?;
    let taken =
        sqlx::query("SELECT 1 AS x FROM files WHERE id = $1 UNION ALL SELECT 1 AS x FROM uploads WHERE file_id = $1")
            .bind(file_id.to_hex())
            .fetch_optional(&mut *tx)
            .await?;
    if taken.is_some() {
        return Err(ServerError::refused(
            ErrorCode::FileExists,
            "a file or upload with this id exists; pick another random id",
        ));
    }
    sqlx::query(
        "INSERT INTO uploads (id, account_id, file_id, size, data_shards, parity_shards, chunk_size, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&upload_hex)
    .bind(account_id)
    .bind(file_id.to_hex())
    .bind(to_i64(req.size))
    .bind(i64::from(redundancy.data))
    .bind(i64::from(redundancy.parity))
    .bind(i64::from(chunk_size))
    .bind(now)
    .bind(now + UPLOAD_TTL)
    .execute(&mut *tx)
    .await
    .map_err(|e| match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            ServerError::refused(ErrorCode::FileExists, "a file or upload with this id exists; pick another random id")
        }
        _ => e.into(),
    })?;
    record_grants(&mut tx, &upload_hex, &grants).await?;
    tx.commit().await?;

    Ok(UploadPlan {
        upload_id: upload_hex,
        file_id: file_id.to_hex(),
        data_shards: redundancy.data,
        parity_shards: redundancy.parity,
        chunk_size,
        chunk_count: count,
        expires_at: now + UPLOAD_TTL,
        nodes: grants,
        placement: placement
            .into_iter()
            .map(|chunk| chunk.into_iter().map(|w| grant_of_worker[w]).collect())
            .collect(),
    })
}

async fn record_grants(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    upload: &str,
    grants: &[PutGrant],
) -> Result<(), ServerError> {
    for g in grants {
        sqlx::query(
            "INSERT INTO upload_tokens (serial, upload_id, node_id, budget, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&g.serial)
        .bind(upload)
        .bind(&g.node_id)
        .bind(to_i64(g.budget))
        .bind(to_i64(g.expires_at))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

struct Upload {
    file_id: FileId,
    size: u64,
    redundancy: Redundancy,
    chunk_size: u32,
}

/// The account's upload `id`, unexpired.
async fn upload(ctx: &Context, account_id: &str, id: &str, now: i64) -> Result<Upload, ServerError> {
    let row = sqlx::query(
        "SELECT file_id, size, data_shards, parity_shards, chunk_size FROM uploads \
         WHERE id = $1 AND account_id = $2 AND expires_at > $3",
    )
    .bind(id)
    .bind(account_id)
    .bind(now)
    .fetch_optional(&ctx.db.pool)
    .await?
    .ok_or_else(upload_not_found)?;
    let file_id: String = row.try_get("file_id")?;
    let small = |v: i64| u8::try_from(v).map_err(|_| ServerError::internal("stored redundancy out of range"));
    Ok(Upload {
        file_id: file_id.parse().map_err(|_| ServerError::internal("stored file id"))?,
        size: to_u64(row.try_get("size")?),
        redundancy: Redundancy::new(
            small(row.try_get("data_shards")?)?,
            small(row.try_get("parity_shards")?)?,
        )
        .map_err(|_| ServerError::internal("stored redundancy"))?,
        chunk_size: u32::try_from(row.try_get::<i64, _>("chunk_size")?)
            .map_err(|_| ServerError::internal("stored chunk size"))?,
    })
}

/// Fresh put tokens for every worker of an upload in progress (same workers, same budgets).
pub async fn renew(ctx: &Arc<Context>, account_id: &str, id: &str, now: i64) -> Result<Vec<PutGrant>, ServerError> {
    upload(ctx, account_id, id, now).await?;
    let upload_id: [u8; 16] = disktro_core::ids::from_hex(id).map_err(|_| upload_not_found())?;
    let rows = sqlx::query(
        "SELECT t.node_id, MAX(t.budget) AS budget, n.url FROM upload_tokens t JOIN nodes n ON n.node_id = t.node_id \
         WHERE t.upload_id = $1 GROUP BY t.node_id, n.url ORDER BY t.node_id",
    )
    .bind(id)
    .fetch_all(&ctx.db.pool)
    .await?;
    let mut grants = Vec::with_capacity(rows.len());
    for row in rows {
        let node: String = row.try_get("node_id")?;
        let url: String = row.try_get("url")?;
        let budget: i64 = row.try_get("budget")?;
        let node: NodeId = node.parse().map_err(|_| ServerError::internal("stored node id"))?;
        grants.push(grants::put(&ctx.key, node, &url, upload_id, to_u64(budget), now)?);
    }
    let mut tx = ctx.db.begin_write().await?;
    record_grants(&mut tx, id, &grants).await?;
    tx.commit().await?;
    Ok(grants)
}

/// Abandon an upload. Shards already stored become orphans for garbage collection to find.
pub async fn cancel(ctx: &Context, account_id: &str, id: &str) -> Result<(), ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    let owned = sqlx::query("SELECT id FROM uploads WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?;
    if owned.is_none() {
        return Err(upload_not_found());
    }
    sqlx::query("DELETE FROM upload_tokens WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM uploads WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// A shard row to record at commit.
struct ShardRow {
    chunk: u64,
    index: usize,
    shard: ShardId,
    node: NodeId,
    size: u32,
}

fn bad(code: ErrorCode, message: impl Into<String>) -> ServerError {
    ServerError::refused(code, message)
}

/// Every check of a commit that needs no database: signature, owner, shape, receipts.
fn check_commit(
    up: &Upload,
    owner: &PublicKey,
    manifest: &[u8],
    receipts: &[Vec<u8>],
    node_keys: &HashMap<NodeId, PublicKey>,
    serials: &HashMap<Serial, NodeId>,
) -> Result<(SignedManifest, Vec<ShardRow>), ServerError> {
    let signed = SignedManifest::decode(manifest)
        .map_err(|e| bad(ErrorCode::BadManifest, format!("the manifest is not valid: {e}")))?;
    if signed.owner() != owner {
        return Err(bad(
            ErrorCode::WrongOwner,
            "the manifest is not signed by this account's identity key",
        ));
    }
    let m = signed.manifest();
    let mismatch = |what: &str| {
        bad(
            ErrorCode::ManifestMismatch,
            format!("the manifest's {what} is not what the upload began with"),
        )
    };
    if m.file_id != up.file_id {
        return Err(mismatch("file id"));
    }
    if m.redundancy != up.redundancy {
        return Err(mismatch("redundancy"));
    }
    if m.chunk_size != up.chunk_size {
        return Err(mismatch("chunk size"));
    }
    if m.plain_size() != up.size {
        return Err(mismatch("size"));
    }
    let total = m.redundancy.total();
    if receipts.len() > m.chunks.len() * total * 2 {
        return Err(bad(
            ErrorCode::TooManyReceipts,
            "more receipts than twice the shards of the file",
        ));
    }

    // Every receipt: from a registered worker, its signature valid, under a token of this upload
    // issued to that worker. Indexed by shard id.
    let mut held: HashMap<ShardId, Vec<(NodeId, u32)>> = HashMap::with_capacity(receipts.len());
    for (i, bytes) in receipts.iter().enumerate() {
        let worker =
            Receipt::claimed_worker(bytes).map_err(|e| bad(ErrorCode::BadReceipt, format!("receipt {i}: {e}")))?;
        let key = node_keys.get(&worker).ok_or_else(|| {
            bad(
                ErrorCode::UnknownWorker,
                format!("receipt {i} names a worker that is not registered"),
            )
        })?;
        let receipt = Receipt::verify(bytes, key)
            .map_err(|_| bad(ErrorCode::BadReceipt, format!("receipt {i} does not verify")))?;
        if serials.get(&receipt.serial) != Some(&receipt.worker) {
            return Err(bad(
                ErrorCode::ReceiptNotForUpload,
                format!("receipt {i} answers no put token this upload gave that worker"),
            ));
        }
        held.entry(receipt.shard)
            .or_default()
            .push((receipt.worker, receipt.size));
    }

    let mut rows = Vec::with_capacity(m.chunks.len() * total);
    for (c, chunk) in m.chunks.iter().enumerate() {
        let expected = m.redundancy.shard_len(chunk.sealed_len as usize);
        let mut used: HashSet<NodeId> = HashSet::with_capacity(total);
        for (index, shard) in chunk.shards.iter().enumerate() {
            let holder = held
                .get(shard)
                .into_iter()
                .flatten()
                .find(|(node, size)| *size as usize == expected && !used.contains(node));
            let Some(&(node, size)) = holder else {
                return Err(bad(
                    ErrorCode::MissingReceipt,
                    format!(
                        "chunk {c} shard {index} has no receipt of the right size from a worker not already holding this chunk"
                    ),
                ));
            };
            used.insert(node);
            rows.push(ShardRow {
                chunk: c as u64,
                index,
                shard: *shard,
                node,
                size,
            });
        }
    }
    Ok((signed, rows))
}

/// Commit an upload: check everything, then record the file in one transaction.
pub async fn commit(
    ctx: &Arc<Context>,
    account_id: &str,
    id: &str,
    req: Commit,
    now: i64,
) -> Result<FileSummary, ServerError> {
    let up = upload(ctx, account_id, id, now).await?;
    let manifest = decode_b64(&req.manifest, "manifest")?;
    let metadata = decode_b64(&req.metadata, "metadata")?;
    if metadata.len() > MAX_SEALED_METADATA || !metadata.starts_with(b"DKMD") {
        return Err(bad(
            ErrorCode::BadMetadata,
            "metadata must be sealed metadata (\"DKMD\") of at most the largest name and type",
        ));
    }
    let wrapped = decode_b64(&req.wrapped_key, "wrapped_key")?;
    if wrapped.len() != WRAPPED_KEY_LEN || !wrapped.starts_with(b"DKWK") {
        return Err(bad(
            ErrorCode::BadWrappedKey,
            "wrapped_key must be a wrapped key (\"DKWK\")",
        ));
    }
    let receipts = req
        .receipts
        .iter()
        .map(|r| decode_b64(r, "receipts"))
        .collect::<Result<Vec<_>, _>>()?;

    let owner_hex: String = sqlx::query("SELECT public_key FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&ctx.db.pool)
        .await?
        .try_get("public_key")?;
    let owner =
        PublicKey(disktro_core::ids::from_hex(&owner_hex).map_err(|_| ServerError::internal("stored public key"))?);
    let node_keys = nodes::keys(&ctx.db).await?;
    let mut serials = HashMap::new();
    for row in sqlx::query("SELECT serial, node_id FROM upload_tokens WHERE upload_id = $1")
        .bind(id)
        .fetch_all(&ctx.db.pool)
        .await?
    {
        let serial: String = row.try_get("serial")?;
        let node: String = row.try_get("node_id")?;
        if let (Ok(s), Ok(n)) = (serial.parse::<Serial>(), node.parse::<NodeId>()) {
            serials.insert(s, n);
        }
    }
    // Signature checks are CPU work (one per shard): off the async threads.
    let (signed, rows) =
        tokio::task::spawn_blocking(move || check_commit(&up, &owner, &manifest, &receipts, &node_keys, &serials))
            .await
            .map_err(|_| ServerError::internal("commit check task"))??;
    let m = signed.manifest();
    let stored = m.stored_size();
    let file_hex = m.file_id.to_hex();

    let mut tx = ctx.db.begin_write().await?;
    sqlx::query("DELETE FROM upload_tokens WHERE upload_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let gone = sqlx::query("DELETE FROM uploads WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone != 1 {
        // Another request committed or cancelled it in the meantime.
        return Err(upload_not_found());
    }
    let charged = sqlx::query(
        "UPDATE accounts SET used_bytes = used_bytes + $1 WHERE id = $2 AND used_bytes + $1 <= quota_bytes",
    )
    .bind(to_i64(stored))
    .bind(account_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if charged != 1 {
        drop(tx);
        let (quota, used) = quota_left(ctx, account_id).await?;
        return Err(quota_exceeded(stored, quota - used));
    }
    sqlx::query(
        "INSERT INTO files (id, account_id, manifest, metadata, wrapped_key, size, stored_bytes, data_shards, parity_shards, chunk_count, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&file_hex)
    .bind(account_id)
    .bind(encode_b64(signed.as_bytes()))
    .bind(encode_b64(&metadata))
    .bind(encode_b64(&wrapped))
    .bind(to_i64(m.plain_size()))
    .bind(to_i64(stored))
    .bind(i64::from(m.redundancy.data))
    .bind(i64::from(m.redundancy.parity))
    .bind(m.chunks.len() as i64)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    insert_shards(&mut tx, &file_hex, &rows).await?;
    tx.commit().await?;
    tracing::info!(file = %file_hex, chunks = m.chunks.len(), stored, "file committed");

    let total = m.redundancy.total() as u64;
    Ok(FileSummary {
        file_id: file_hex,
        metadata: encode_b64(&metadata),
        wrapped_key: encode_b64(&wrapped),
        size: m.plain_size(),
        stored_bytes: stored,
        data_shards: m.redundancy.data,
        parity_shards: m.redundancy.parity,
        chunk_count: m.chunks.len() as u64,
        created_at: now,
        health: RedundancyHealth {
            weakest_chunk_healthy: total,
            shards_per_chunk: total,
            needed: u64::from(m.redundancy.data),
        },
    })
}

/// Rows per multi-row INSERT: 6 values each, well under SQLite's 32,766 bound parameters.
const SHARD_BATCH: usize = 500;

async fn insert_shards(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    file: &str,
    rows: &[ShardRow],
) -> Result<(), ServerError> {
    for batch in rows.chunks(SHARD_BATCH) {
        let mut sql = String::from("INSERT INTO file_shards (file_id, chunk, idx, shard_id, node_id, size) VALUES ");
        for i in 0..batch.len() {
            let p = i * 6;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${})",
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
                .bind(file)
                .bind(r.chunk as i64)
                .bind(r.index as i64)
                .bind(r.shard.to_hex())
                .bind(r.node.to_hex())
                .bind(i64::from(r.size));
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The weakest chunk's healthy shards ([`crate::durability::HEALTHY`]), per file of the account.
async fn health_of_files(ctx: &Context, account_id: &str, now: i64) -> Result<HashMap<String, u64>, ServerError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT file_id, MIN(healthy) AS weakest FROM ( \
           SELECT s.file_id, s.chunk, SUM(CASE WHEN {} THEN 1 ELSE 0 END) AS healthy \
           FROM file_shards s JOIN files f ON f.id = s.file_id JOIN nodes n ON n.node_id = s.node_id \
           WHERE f.account_id = $2 GROUP BY s.file_id, s.chunk) AS per_chunk \
         GROUP BY file_id",
        crate::durability::HEALTHY
    )))
    .bind(nodes::online_since(now, ctx.heartbeat_interval))
    .bind(account_id)
    .fetch_all(&ctx.db.pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        out.insert(
            row.try_get::<String, _>("file_id")?,
            to_u64(row.try_get::<i64, _>("weakest")?),
        );
    }
    Ok(out)
}

/// The account's files, newest first.
pub async fn list(ctx: &Context, account_id: &str, limit: i64, offset: i64, now: i64) -> Result<FileList, ServerError> {
    let limit = limit.clamp(1, MAX_PAGE);
    let rows = sqlx::query(
        "SELECT id, metadata, wrapped_key, size, stored_bytes, data_shards, parity_shards, chunk_count, created_at FROM files \
         WHERE account_id = $1 ORDER BY created_at DESC, id LIMIT $2 OFFSET $3",
    )
    .bind(account_id)
    .bind(limit)
    .bind(offset.max(0))
    .fetch_all(&ctx.db.pool)
    .await?;
    let health = health_of_files(ctx, account_id, now).await?;
    let mut files = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let data = to_u64(row.try_get("data_shards")?);
        let parity = to_u64(row.try_get("parity_shards")?);
        files.push(FileSummary {
            metadata: row.try_get("metadata")?,
            wrapped_key: row.try_get("wrapped_key")?,
            size: to_u64(row.try_get("size")?),
            stored_bytes: to_u64(row.try_get("stored_bytes")?),
            data_shards: u8::try_from(data).unwrap_or(0),
            parity_shards: u8::try_from(parity).unwrap_or(0),
            chunk_count: to_u64(row.try_get("chunk_count")?),
            created_at: row.try_get("created_at")?,
            health: RedundancyHealth {
                weakest_chunk_healthy: health.get(&id).copied().unwrap_or(0),
                shards_per_chunk: data + parity,
                needed: data,
            },
            file_id: id,
        });
    }
    let count = sqlx::query("SELECT COUNT(*) AS n FROM files WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(&ctx.db.pool)
        .await?;
    let (quota, used) = quota_left(ctx, account_id).await?;
    Ok(FileList {
        files,
        total: to_u64(count.try_get("n")?),
        used_bytes: to_u64(used),
        quota_bytes: to_u64(quota),
    })
}

/// What a reader gets for file `file_hex`; `owner` limits it to that account's files and adds
/// the wrapped key. Shares pass `None` (their own checks come first).
pub async fn download(
    ctx: &Context,
    file_hex: &str,
    owner: Option<&str>,
    now: i64,
) -> Result<FileDownload, ServerError> {
    let file_id: FileId = file_hex.parse().map_err(|_| file_not_found())?;
    let row =
        sqlx::query("SELECT account_id, manifest, metadata, wrapped_key, size, created_at FROM files WHERE id = $1")
            .bind(file_hex)
            .fetch_optional(&ctx.db.pool)
            .await?
            .ok_or_else(file_not_found)?;
    let account: String = row.try_get("account_id")?;
    // Another account's file is "no such file": its existence is not revealed.
    if owner.is_some_and(|o| o != account) {
        return Err(file_not_found());
    }
    let shard_rows = sqlx::query(
        "SELECT s.chunk, s.idx, s.shard_id, s.node_id, s.size, n.url, n.last_seen FROM file_shards s \
         JOIN nodes n ON n.node_id = s.node_id WHERE s.file_id = $1 ORDER BY s.chunk, s.idx",
    )
    .bind(file_hex)
    .fetch_all(&ctx.db.pool)
    .await?;

    let mut node_index: HashMap<String, usize> = HashMap::new();
    let mut node_info: Vec<(NodeId, String, i64, Vec<Placed>)> = Vec::new();
    let mut locations: Vec<Vec<u16>> = Vec::new();
    for r in &shard_rows {
        let node_hex: String = r.try_get("node_id")?;
        let chunk = to_u64(r.try_get("chunk")?);
        let shard: String = r.try_get("shard_id")?;
        let n = match node_index.get(&node_hex) {
            Some(&n) => n,
            None => {
                let id: NodeId = node_hex.parse().map_err(|_| ServerError::internal("stored node id"))?;
                node_info.push((id, r.try_get("url")?, r.try_get("last_seen")?, Vec::new()));
                node_index.insert(node_hex, node_info.len() - 1);
                node_info.len() - 1
            }
        };
        node_info[n].3.push(Placed {
            chunk,
            shard: shard.parse().map_err(|_| ServerError::internal("stored shard id"))?,
            size: to_u64(r.try_get("size")?),
        });
        let c = usize::try_from(chunk).map_err(|_| ServerError::internal("chunk index"))?;
        if locations.len() <= c {
            locations.resize_with(c + 1, Vec::new);
        }
        locations[c].push(u16::try_from(n).map_err(|_| ServerError::internal("too many workers"))?);
    }
    let mut nodes_out = Vec::with_capacity(node_info.len());
    let mut issued = Vec::new();
    for (id, url, last_seen, placed) in node_info {
        nodes_out.push(ReadNode {
            node_id: id.to_hex(),
            url,
            status: NodeStatus::of(last_seen, now, ctx.heartbeat_interval),
            tokens: grants::read(&ctx.key, id, file_id, &placed, now, &mut issued)?,
        });
    }
    crate::rewards::record_issued(&ctx.db, &issued).await?;
    Ok(FileDownload {
        file_id: file_hex.to_owned(),
        manifest: row.try_get("manifest")?,
        metadata: row.try_get("metadata")?,
        wrapped_key: if owner.is_some() {
            Some(row.try_get("wrapped_key")?)
        } else {
            None
        },
        size: to_u64(row.try_get("size")?),
        created_at: row.try_get("created_at")?,
        nodes: nodes_out,
        locations,
    })
}

/// Delete a file: shards to garbage collection, shares revoked, quota returned.
pub async fn delete(ctx: &Context, account_id: &str, file_hex: &str, now: i64) -> Result<(), ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    let row = sqlx::query("SELECT stored_bytes FROM files WHERE id = $1 AND account_id = $2")
        .bind(file_hex)
        .bind(account_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(file_not_found)?;
    let stored: i64 = row.try_get("stored_bytes")?;
    sqlx::query(
        "INSERT INTO gc_shards (node_id, shard_id, deleted_at) SELECT node_id, shard_id, $2 FROM file_shards \
         WHERE file_id = $1 ON CONFLICT (node_id, shard_id) DO NOTHING",
    )
    .bind(file_hex)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM file_shards WHERE file_id = $1")
        .bind(file_hex)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM files WHERE id = $1")
        .bind(file_hex)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE shares SET revoked_at = $2 WHERE file_id = $1 AND revoked_at IS NULL")
        .bind(file_hex)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE accounts SET used_bytes = used_bytes - $1 WHERE id = $2")
        .bind(stored)
        .bind(account_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    tracing::info!(file = %file_hex, "file deleted; shards handed to garbage collection");
    Ok(())
}
