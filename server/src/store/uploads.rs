//! Uploads in progress (`uploads`, with their plans), the put tokens handed out for them
//! (`upload_tokens`, each at its slot in the plan), the storage they reserve
//! (`accounts.reserved_bytes`) and the tokens withdrawn when they end without a commit
//! (`revoked_tokens`).

use std::collections::HashMap;

use disktro_core::api::PutGrant;
use disktro_core::api::node::Revocation;
use disktro_core::{FileId, FolderId, NodeId, Redundancy, Serial};
use sqlx::Row as _;

use super::{Db, StoreError, Tx, parse, to_i64, to_u64};

/// An upload as begun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    pub file_id: FileId,
    pub size: u64,
    pub redundancy: Redundancy,
    pub chunk_size: u32,
    /// Re-encodes the stored file `file_id` ([`crate::durability::policy`]): its commit replaces
    /// the file's manifest and shards.
    pub restripe: bool,
    /// The folder the file goes in at commit (a new upload's; none: the top of the tree).
    pub folder_id: Option<FolderId>,
}

/// What [`reserve`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    Yes,
    /// `used + reserved + bytes` would pass the quota; `left` is what remains.
    OverQuota {
        left: i64,
    },
    /// The account already has the most uploads open it may.
    TooManyOpen,
}

/// Reserve `bytes` of the account's quota for an upload about to be created in `tx`, unless that
/// would pass the quota or the account has `max_open` uploads open. The reserving `UPDATE` comes
/// first: on PostgreSQL its row lock orders concurrent begins of one account, so the count after
/// it sees theirs (SQLite's write transactions are serial anyway). A refusal leaves the
/// transaction to be dropped, which takes the reservation back.
pub async fn reserve(tx: &mut Tx, account_id: &str, bytes: u64, max_open: u32) -> Result<Reserved, StoreError> {
    let reserved = sqlx::query(
        "UPDATE accounts SET reserved_bytes = reserved_bytes + $1 \
         WHERE id = $2 AND used_bytes + reserved_bytes + $1 <= quota_bytes",
    )
    .bind(to_i64(bytes))
    .bind(account_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if reserved == 0 {
        return Ok(Reserved::OverQuota {
            left: quota_left(tx, account_id).await?,
        });
    }
    let open: i64 = sqlx::query("SELECT COUNT(*) AS n FROM uploads WHERE account_id = $1")
        .bind(account_id)
        .fetch_one(&mut **tx)
        .await?
        .try_get("n")?;
    if open >= i64::from(max_open) {
        return Ok(Reserved::TooManyOpen);
    }
    Ok(Reserved::Yes)
}

/// What the account's quota leaves after its files and its open uploads' reservations.
async fn quota_left(tx: &mut Tx, account_id: &str) -> Result<i64, StoreError> {
    Ok(
        sqlx::query("SELECT quota_bytes - used_bytes - reserved_bytes AS left_bytes FROM accounts WHERE id = $1")
            .bind(account_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("left_bytes")?,
    )
}

/// Record a new upload with its plan (`placement`, see [`Plan`]), unless a file (for an upload
/// that is not a restripe) or an upload already has its file id (then `false`).
#[allow(clippy::too_many_arguments)]
pub async fn create(
    tx: &mut Tx,
    upload_id: &str,
    account_id: &str,
    up: &UploadRow,
    placement: &str,
    reserved: u64,
    now: i64,
    expires_at: i64,
) -> Result<bool, StoreError> {
    let file_hex = up.file_id.to_hex();
    let taken = if up.restripe {
        sqlx::query("SELECT 1 AS x FROM uploads WHERE file_id = $1")
    } else {
        sqlx::query("SELECT 1 AS x FROM files WHERE id = $1 UNION ALL SELECT 1 AS x FROM uploads WHERE file_id = $1")
    }
    .bind(&file_hex)
    .fetch_optional(&mut **tx)
    .await?;
    if taken.is_some() {
        return Ok(false);
    }
    let inserted = sqlx::query(
        "INSERT INTO uploads (id, account_id, file_id, size, data_shards, parity_shards, chunk_size, created_at, \
         expires_at, reserved_bytes, placement, restripe, folder_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
    .bind(to_i64(reserved))
    .bind(placement)
    .bind(i64::from(up.restripe))
    .bind(up.folder_id.map(|f| f.to_hex()))
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        // A concurrent begin with the same file id won the race.
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Remember the put tokens handed out, so receipts can be matched to this upload at commit;
/// `grants[i]` is the plan's slot `first_slot + i`. A renewed token keeps its serial (so the
/// worker counts one budget for both) and its slot: its row gets the later expiry.
pub async fn record_grants(
    tx: &mut Tx,
    upload_id: &str,
    first_slot: usize,
    grants: &[PutGrant],
) -> Result<(), StoreError> {
    for (i, g) in grants.iter().enumerate() {
        sqlx::query(
            "INSERT INTO upload_tokens (serial, upload_id, node_id, budget, expires_at, slot) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (serial) DO UPDATE SET expires_at = excluded.expires_at",
        )
        .bind(g.serial.to_hex())
        .bind(upload_id)
        .bind(g.node_id.to_hex())
        .bind(to_i64(g.budget))
        .bind(to_i64(g.expires_at))
        .bind(to_i64((first_slot + i) as u64))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The account's upload `id`, if it exists and has not expired.
pub async fn open(db: &Db, account_id: &str, id: &str, now: i64) -> Result<Option<UploadRow>, StoreError> {
    let Some(row) = sqlx::query(
        "SELECT file_id, size, data_shards, parity_shards, chunk_size, restripe, folder_id FROM uploads \
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
        restripe: row.try_get::<i64, _>("restripe")? != 0,
        folder_id: row
            .try_get::<Option<String>, _>("folder_id")?
            .map(|f| parse(&f, "folder id"))
            .transpose()?,
    }))
}

/// The account's open upload of file `file_hex` that re-encodes it, if any.
pub async fn open_restripe(db: &Db, account_id: &str, file_hex: &str) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query("SELECT id FROM uploads WHERE file_id = $1 AND account_id = $2 AND restripe = 1")
            .bind(file_hex)
            .bind(account_id)
            .fetch_optional(&db.pool)
            .await?
            .map(|r| r.try_get("id"))
            .transpose()?,
    )
}

/// A put token an upload holds, with its worker's URL and failure domains now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantTarget {
    pub serial: Serial,
    pub node_id: NodeId,
    pub url: String,
    pub budget: u64,
    pub zone: String,
    pub operator: String,
}

/// Every put token of upload `id`, in slot order (the plan's `nodes`).
pub async fn grant_targets(db: &Db, id: &str) -> Result<Vec<GrantTarget>, StoreError> {
    let rows = sqlx::query(
        "SELECT t.serial, t.node_id, t.budget, n.url, n.zone, n.operator FROM upload_tokens t \
         JOIN nodes n ON n.node_id = t.node_id WHERE t.upload_id = $1 ORDER BY t.slot, t.node_id",
    )
    .bind(id)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(GrantTarget {
                serial: parse(&row.try_get::<String, _>("serial")?, "serial")?,
                node_id: parse(&row.try_get::<String, _>("node_id")?, "node id")?,
                url: row.try_get("url")?,
                budget: to_u64(row.try_get("budget")?),
                zone: row.try_get("zone")?,
                operator: row.try_get("operator")?,
            })
        })
        .collect()
}

/// An open upload's plan as stored: the slot of every shard ([`encode_placement`]) and how many
/// times it was amended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub placement: Vec<Vec<u16>>,
    pub replans: i64,
    pub expires_at: i64,
}

/// A plan's placement as stored: base64url of each slot as a little-endian u16, chunk after chunk.
pub fn encode_placement(placement: &[Vec<u16>]) -> String {
    let bytes: Vec<u8> = placement.iter().flatten().flat_map(|s| s.to_le_bytes()).collect();
    disktro_core::api::Base64::new(bytes).encode()
}

fn decode_placement(text: &str, shards_per_chunk: usize) -> Result<Vec<Vec<u16>>, StoreError> {
    let corrupt = || StoreError::Corrupt("upload placement");
    let bytes = disktro_core::api::Base64::decode(text).map_err(|_| corrupt())?;
    if shards_per_chunk == 0 || bytes.len() % (2 * shards_per_chunk) != 0 {
        return Err(corrupt());
    }
    Ok(bytes
        .chunks_exact(2 * shards_per_chunk)
        .map(|chunk| {
            chunk
                .chunks_exact(2)
                .map(|s| u16::from_le_bytes([s[0], s[1]]))
                .collect()
        })
        .collect())
}

/// The plan of the account's open upload `id`; `None` when the upload began before plans were
/// kept (its placement is empty) or is not open.
pub async fn plan(db: &Db, account_id: &str, id: &str, shards_per_chunk: usize) -> Result<Option<Plan>, StoreError> {
    let Some(row) = sqlx::query("SELECT placement, replans, expires_at FROM uploads WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    let text: String = row.try_get("placement")?;
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(Plan {
        placement: decode_placement(&text, shards_per_chunk)?,
        replans: row.try_get("replans")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

/// Store an amended plan, unless another amendment came first (the stored `replans` is no longer
/// `seen`): then `false` and the caller drops the transaction.
/// A resize ([`resize`]) changes the size, not the count: both are checked.
pub async fn amend_plan(
    tx: &mut Tx,
    id: &str,
    placement: &[Vec<u16>],
    seen: i64,
    size: u64,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE uploads SET placement = $1, replans = replans + 1 WHERE id = $2 AND replans = $3 AND size = $4",
    )
    .bind(encode_placement(placement))
    .bind(id)
    .bind(seen)
    .bind(to_i64(size))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// What [`resize`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resized {
    Yes,
    /// The larger reservation would pass the quota; `left` is what remains.
    OverQuota {
        left: i64,
    },
    /// A replan or another resize came first.
    ChangedMeanwhile,
}

/// Give the account's upload `id` (still at `from` bytes, its plan amended `seen` times) the
/// size `to`, this placement and a reservation of `reserved` bytes, the account's reservation
/// moved by the difference (refused past the quota when it grows).
#[allow(clippy::too_many_arguments)]
pub async fn resize(
    tx: &mut Tx,
    account_id: &str,
    id: &str,
    from: u64,
    to: u64,
    placement: &[Vec<u16>],
    seen: i64,
    reserved: u64,
) -> Result<Resized, StoreError> {
    let Some(row) = sqlx::query("SELECT reserved_bytes FROM uploads WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(Resized::ChangedMeanwhile);
    };
    let delta = to_i64(reserved) - row.try_get::<i64, _>("reserved_bytes")?;
    let moved = sqlx::query(
        "UPDATE accounts SET reserved_bytes = reserved_bytes + $1 \
         WHERE id = $2 AND ($1 <= 0 OR used_bytes + reserved_bytes + $1 <= quota_bytes)",
    )
    .bind(delta)
    .bind(account_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Ok(Resized::OverQuota {
            left: quota_left(tx, account_id).await?,
        });
    }
    let changed = sqlx::query(
        "UPDATE uploads SET size = $1, placement = $2, reserved_bytes = $3 \
         WHERE id = $4 AND account_id = $5 AND replans = $6 AND size = $7",
    )
    .bind(to_i64(to))
    .bind(encode_placement(placement))
    .bind(to_i64(reserved))
    .bind(id)
    .bind(account_id)
    .bind(seen)
    .bind(to_i64(from))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(if changed == 1 {
        Resized::Yes
    } else {
        Resized::ChangedMeanwhile
    })
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

/// How an upload ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Committed,
    /// Cancelled by its owner: its unexpired put tokens are revoked.
    Cancelled,
}

/// End the account's upload `id`: its tokens and its row go, its reservation is given back, and
/// a cancelled upload's tokens are revoked. `false` when there was no such upload (another
/// request ended it first); the caller then drops the transaction.
pub async fn end(tx: &mut Tx, account_id: &str, id: &str, ending: Ending, now: i64) -> Result<bool, StoreError> {
    let Some(row) = sqlx::query("SELECT reserved_bytes FROM uploads WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(false);
    };
    let reserved: i64 = row.try_get("reserved_bytes")?;
    if ending == Ending::Cancelled {
        sqlx::query(
            "INSERT INTO revoked_tokens (serial, node_id, revoked_at, expires_at) \
             SELECT serial, node_id, $2, expires_at FROM upload_tokens WHERE upload_id = $1 AND expires_at > $2 \
             ON CONFLICT (serial) DO NOTHING",
        )
        .bind(id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
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
    if gone != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE accounts SET reserved_bytes = reserved_bytes - $1 WHERE id = $2")
        .bind(reserved)
        .bind(account_id)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

/// End every upload expired by `now` as [`end`] ends a cancelled one (tokens revoked, reservations
/// given back, rows gone), and forget revocations of tokens expired by `now`. Returns the number
/// of uploads ended.
pub async fn expire(tx: &mut Tx, now: i64) -> Result<u64, StoreError> {
    sqlx::query(
        "INSERT INTO revoked_tokens (serial, node_id, revoked_at, expires_at) \
         SELECT t.serial, t.node_id, $1, t.expires_at FROM upload_tokens t JOIN uploads u ON u.id = t.upload_id \
         WHERE u.expires_at <= $1 AND t.expires_at > $1 \
         ON CONFLICT (serial) DO NOTHING",
    )
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE accounts SET reserved_bytes = reserved_bytes - \
         (SELECT COALESCE(SUM(u.reserved_bytes), 0) FROM uploads u WHERE u.account_id = accounts.id AND u.expires_at <= $1) \
         WHERE id IN (SELECT account_id FROM uploads WHERE expires_at <= $1)",
    )
    .bind(now)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM upload_tokens WHERE upload_id IN (SELECT id FROM uploads WHERE expires_at <= $1)")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    let ended = sqlx::query("DELETE FROM uploads WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM revoked_tokens WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(ended)
}

/// The put tokens of worker `node` revoked at or after `since`, oldest first, at most `limit`.
pub async fn revocations(db: &Db, node: &NodeId, since: i64, limit: usize) -> Result<Vec<Revocation>, StoreError> {
    let rows = sqlx::query(
        "SELECT serial, revoked_at, expires_at FROM revoked_tokens WHERE node_id = $1 AND revoked_at >= $2 \
         ORDER BY revoked_at LIMIT $3",
    )
    .bind(node.to_hex())
    .bind(since)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Revocation {
                serial: parse(&row.try_get::<String, _>("serial")?, "serial")?,
                revoked_at: to_u64(row.try_get("revoked_at")?),
                expires_at: to_u64(row.try_get("expires_at")?),
            })
        })
        .collect()
}
