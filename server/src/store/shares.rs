//! Share links (`shares`): their policy (expiry, download limit, revocation, the password
//! verifier) and the download count, which is checked and counted in one statement; and the
//! downloads in progress (`share_downloads`), which hold a reservation until they are done.

use disktro_core::api::ShareView;
use sqlx::Row as _;

use super::{Db, StoreError, parse, to_i64, to_u64};

/// A share as stored: what its owner sees, and the password verifier if it has one.
#[derive(Debug, Clone)]
pub struct ShareRow {
    pub view: ShareView,
    pub password_hash: Option<String>,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<ShareRow, StoreError> {
    let max: Option<i64> = row.try_get("max_downloads")?;
    let password_hash: Option<String> = row.try_get("password_hash")?;
    let revoked: Option<i64> = row.try_get("revoked_at")?;
    Ok(ShareRow {
        view: ShareView {
            share_id: row.try_get("id")?,
            file_id: parse(&row.try_get::<String, _>("file_id")?, "file id")?,
            created_at: row.try_get("created_at")?,
            expires_at: row.try_get("expires_at")?,
            max_downloads: max.map(to_u64),
            downloads: to_u64(row.try_get("downloads")?),
            password: password_hash.is_some(),
            revoked: revoked.is_some(),
        },
        password_hash,
    })
}

/// A new share.
#[derive(Debug, Clone)]
pub struct NewShare<'a> {
    pub id: &'a str,
    pub file_hex: &'a str,
    pub account_id: &'a str,
    pub created_at: i64,
    pub expires_at: i64,
    pub max_downloads: Option<u32>,
    pub password_hash: Option<&'a str>,
}

pub async fn insert(db: &Db, s: &NewShare<'_>) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO shares (id, file_id, account_id, created_at, expires_at, max_downloads, password_hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(s.id)
    .bind(s.file_hex)
    .bind(s.account_id)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.max_downloads.map(i64::from))
    .bind(s.password_hash)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The account's shares, newest first; of one file when `file_hex` is given.
pub async fn list(db: &Db, account_id: &str, file_hex: Option<&str>) -> Result<Vec<ShareRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, file_id, created_at, expires_at, max_downloads, downloads, password_hash, revoked_at FROM shares \
         WHERE account_id = $1 AND ($2 = '' OR file_id = $2) ORDER BY created_at DESC, id",
    )
    .bind(account_id)
    .bind(file_hex.unwrap_or(""))
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(from_row).collect()
}

/// One share; of `account_id` only when given.
pub async fn get(db: &Db, share_id: &str, account_id: Option<&str>) -> Result<Option<ShareRow>, StoreError> {
    let row = sqlx::query(
        "SELECT id, file_id, created_at, expires_at, max_downloads, downloads, password_hash, revoked_at FROM shares \
         WHERE id = $1 AND ($2 = '' OR account_id = $2)",
    )
    .bind(share_id)
    .bind(account_id.unwrap_or(""))
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Revoke one of the account's shares (idempotent: an earlier revocation's time is kept).
pub async fn revoke(db: &Db, account_id: &str, share_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE shares SET revoked_at = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL")
        .bind(share_id)
        .bind(account_id)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// A share download being started ([`crate::shares`]).
#[derive(Debug, Clone)]
pub struct NewDownload<'a> {
    pub id_hash: &'a str,
    pub share_id: &'a str,
    pub tag: &'a str,
    pub needed: u64,
    pub started_at: i64,
    pub expires_at: i64,
}

/// Reserve one download of the share if the policy still allows it (checked and counted in one
/// statement, so two racing downloads of the last allowed one cannot both pass) and record it
/// as open. `false` when the policy refuses.
pub async fn start_download(db: &Db, d: &NewDownload<'_>) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    let counted = sqlx::query(
        "UPDATE shares SET downloads = downloads + 1 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         AND (max_downloads IS NULL OR downloads < max_downloads)",
    )
    .bind(d.share_id)
    .bind(d.started_at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if counted != 1 {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO share_downloads (id_hash, share_id, tag, needed, state, started_at, expires_at) \
         VALUES ($1, $2, $3, $4, 'open', $5, $6)",
    )
    .bind(d.id_hash)
    .bind(d.share_id)
    .bind(d.tag)
    .bind(to_i64(d.needed))
    .bind(d.started_at)
    .bind(d.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Give an unfinished download of the share fresh tokens until `expires_at`: its serial tag, or
/// `None` when there is no such download, it is finished or lapsed, or it has been continued
/// `max_continues` times.
pub async fn continue_download(
    db: &Db,
    share_id: &str,
    id_hash: &str,
    expires_at: i64,
    max_continues: u32,
) -> Result<Option<String>, StoreError> {
    let row = sqlx::query(
        "UPDATE share_downloads SET expires_at = $3, continued = continued + 1 \
         WHERE id_hash = $1 AND share_id = $2 AND state IN ('open', 'fetched') AND continued < $4 RETURNING tag",
    )
    .bind(id_hash)
    .bind(share_id)
    .bind(expires_at)
    .bind(i64::from(max_continues))
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| r.try_get("tag")).transpose()?)
}

/// Settle the share's open downloads whose tokens expired at or before `expired_by` (by which
/// time the workers have claimed what they served under them): `fetched` when the claims under
/// the download's serial tag add up to its `needed` bytes, else `lapsed`, and its reservation
/// is given back. Finished downloads are forgotten `keep` seconds after their tokens expired.
/// Returns how many downloads are still under way.
pub async fn settle_downloads(db: &Db, share_id: &str, expired_by: i64, keep: i64) -> Result<u64, StoreError> {
    let open = sqlx::query(
        "SELECT id_hash, tag, needed, expires_at FROM share_downloads WHERE share_id = $1 AND state = 'open'",
    )
    .bind(share_id)
    .fetch_all(&db.pool)
    .await?;
    let mut due = Vec::new();
    for row in open.iter() {
        if row.try_get::<i64, _>("expires_at")? <= expired_by {
            due.push(row);
        }
    }
    let under_way = (open.len() - due.len()) as u64;
    if due.is_empty() {
        return Ok(under_way);
    }
    let mut tx = db.begin_write().await?;
    for row in due {
        let id_hash: String = row.try_get("id_hash")?;
        let tag: String = row.try_get("tag")?;
        let needed: i64 = row.try_get("needed")?;
        // Serials are lowercase hex, so every serial with the tag sorts in [tag, tag + "g").
        let served: i64 = sqlx::query(
            "SELECT CAST(COALESCE(SUM(served), 0) AS BIGINT) AS served FROM egress_claims \
             WHERE serial >= $1 AND serial < $2",
        )
        .bind(&tag)
        .bind(format!("{tag}g"))
        .fetch_one(&mut *tx)
        .await?
        .try_get("served")?;
        let state = if served >= needed { "fetched" } else { "lapsed" };
        let changed = sqlx::query("UPDATE share_downloads SET state = $2 WHERE id_hash = $1 AND state = 'open'")
            .bind(&id_hash)
            .bind(state)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 1 && state == "lapsed" {
            sqlx::query("UPDATE shares SET downloads = downloads - 1 WHERE id = $1 AND downloads > 0")
                .bind(share_id)
                .execute(&mut *tx)
                .await?;
        }
    }
    sqlx::query("DELETE FROM share_downloads WHERE share_id = $1 AND state <> 'open' AND expires_at <= $2")
        .bind(share_id)
        .bind(expired_by.saturating_sub(keep))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(under_way)
}

/// The recipient's client finished the download. One that had lapsed meanwhile (its tokens
/// outlived by a slow finish) counts again, without the limit: it did happen. `false` when the
/// share has no such download.
pub async fn complete_download(db: &Db, share_id: &str, id_hash: &str) -> Result<bool, StoreError> {
    let mut tx = db.begin_write().await?;
    // Each statement changes the row only from the state it names, so two racing reports of a
    // lapsed download count it once.
    let revived = sqlx::query(
        "UPDATE share_downloads SET state = 'completed' WHERE id_hash = $1 AND share_id = $2 AND state = 'lapsed'",
    )
    .bind(id_hash)
    .bind(share_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if revived == 1 {
        sqlx::query("UPDATE shares SET downloads = downloads + 1 WHERE id = $1")
            .bind(share_id)
            .execute(&mut *tx)
            .await?;
    }
    let known = sqlx::query("UPDATE share_downloads SET state = 'completed' WHERE id_hash = $1 AND share_id = $2")
        .bind(id_hash)
        .bind(share_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(known == 1)
}
