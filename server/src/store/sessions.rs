//! Browser sessions (`sessions`) and the CLI's API tokens (`api_tokens`), both stored as the
//! BLAKE3 hash of their secret, never the secret.

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
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO api_tokens (id_hash, account_id, name, created_at) VALUES ($1, $2, $3, $4)")
        .bind(id_hash)
        .bind(account_id)
        .bind(name)
        .bind(now)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The account an API token belongs to.
pub async fn api_token_account(db: &Db, id_hash: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT account_id FROM api_tokens WHERE id_hash = $1")
        .bind(id_hash)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.try_get("account_id")).transpose()?)
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
