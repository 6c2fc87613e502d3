//! Browser sessions (`sessions`), the CLI's API tokens (`api_tokens`) and the devices accounts
//! logged in from (`known_devices`), all stored as the BLAKE3 hash of their secret, never the
//! secret.

use sqlx::Row as _;

use super::{Db, StoreError, Tx};

pub async fn insert_session(
    db: &Db,
    id_hash: &str,
    account_id: &str,
    csrf: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, account_id, csrf_token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(account_id)
    .bind(csrf)
    .bind(now)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The account and CSRF token of an unexpired session.
pub async fn session(db: &Db, id_hash: &str, now: i64) -> Result<Option<(String, String)>, StoreError> {
    let row = sqlx::query("SELECT account_id, csrf_token FROM sessions WHERE id_hash = $1 AND expires_at > $2")
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row
        .map(|r| Ok::<_, sqlx::Error>((r.try_get("account_id")?, r.try_get("csrf_token")?)))
        .transpose()?)
}

pub async fn end_session(db: &Db, id_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn insert_api_token(
    db: &Db,
    id_hash: &str,
    account_id: &str,
    name: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_tokens (id_hash, account_id, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(account_id)
    .bind(name)
    .bind(now)
    .bind(expires_at)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// The account an API token belongs to, while it has not expired.
pub async fn api_token_account(db: &Db, id_hash: &str, now: i64) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT account_id FROM api_tokens WHERE id_hash = $1 AND expires_at > $2")
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.try_get("account_id")).transpose()?)
}

/// An API token as listed: its hash (whose first 16 hex digits are its public id), name and times.
#[derive(Debug, Clone)]
pub struct ApiTokenRow {
    pub id_hash: String,
    pub name: String,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The account's API tokens that have not expired, newest first.
pub async fn api_tokens(db: &Db, account_id: &str, now: i64) -> Result<Vec<ApiTokenRow>, StoreError> {
    let rows = sqlx::query(
        "SELECT id_hash, name, created_at, expires_at FROM api_tokens
         WHERE account_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id_hash",
    )
    .bind(account_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ApiTokenRow {
                id_hash: r.try_get("id_hash")?,
                name: r.try_get("name")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

/// Delete the account's API token whose hash starts with `id` (its public id); whether one was.
pub async fn revoke_api_token_of(db: &Db, account_id: &str, id: &str) -> Result<bool, StoreError> {
    let done = sqlx::query("DELETE FROM api_tokens WHERE account_id = $1 AND substr(id_hash, 1, 16) = $2")
        .bind(account_id)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn revoke_api_token(db: &Db, id_hash: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM api_tokens WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// End every session and API token of the account except the one hashed `keep`.
pub async fn end_all_but(tx: &mut Tx, account_id: &str, keep: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND id_hash <> $2")
        .bind(account_id)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM api_tokens WHERE account_id = $1 AND id_hash <> $2")
        .bind(account_id)
        .bind(keep)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Remember a device of the account.
pub async fn insert_device(db: &Db, id_hash: &str, account_id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO known_devices (id_hash, account_id, created_at, last_used_at) VALUES ($1, $2, $3, $3)")
        .bind(id_hash)
        .bind(account_id)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The account a device belongs to, if it is known and was used since `used_since`.
pub async fn device_account(db: &Db, id_hash: &str, used_since: i64) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query("SELECT account_id FROM known_devices WHERE id_hash = $1 AND last_used_at > $2")
            .bind(id_hash)
            .bind(used_since)
            .fetch_optional(&db.pool)
            .await?
            .map(|row| row.try_get("account_id"))
            .transpose()?,
    )
}

/// Note a successful log-in from a known device.
pub async fn touch_device(db: &Db, id_hash: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE known_devices SET last_used_at = $2 WHERE id_hash = $1")
        .bind(id_hash)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}
