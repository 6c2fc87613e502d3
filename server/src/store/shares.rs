//! Share links (`shares`): their policy (expiry, download limit, revocation, the password
//! verifier) and the download count, which is checked and counted in one statement.

use disktro_core::api::ShareView;
use sqlx::Row as _;

use super::{Db, StoreError, parse, to_u64};

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

/// Count one download if the policy still allows it, in one statement, so two racing downloads
/// of the last allowed one cannot both pass. `false` when it does not.
pub async fn count_download(db: &Db, share_id: &str, now: i64) -> Result<bool, StoreError> {
    let counted = sqlx::query(
        "UPDATE shares SET downloads = downloads + 1 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2 \
         AND (max_downloads IS NULL OR downloads < max_downloads)",
    )
    .bind(share_id)
    .bind(now)
    .execute(&db.pool)
    .await?
    .rows_affected();
    Ok(counted == 1)
}
