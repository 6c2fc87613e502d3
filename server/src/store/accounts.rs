//! Accounts (`accounts`): what the server keeps of each (never a password or a key it can use),
//! the one guarded swap of key material a password change makes, and the quota files charge.

use disktro_core::api::Base64;
use disktro_core::keys::PublicKey;
use sqlx::Row as _;

use super::{Db, StoreError, Tx, base64, to_i64};

/// An account as stored.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: String,
    pub kdf_setup: Base64,
    pub auth_hash: String,
    pub wrapped_identity: Base64,
    pub public_key: PublicKey,
    pub quota_bytes: i64,
    pub used_bytes: i64,
    /// The hash of the recovery auth key and the recovery-wrapped identity, if set.
    pub recovery: Option<(String, Base64)>,
}

fn from_row(row: &sqlx::any::AnyRow) -> Result<Account, StoreError> {
    Ok(Account {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        kdf_setup: base64(row, "kdf_setup")?,
        auth_hash: row.try_get("auth_hash")?,
        wrapped_identity: base64(row, "wrapped_identity")?,
        public_key: PublicKey(
            disktro_core::ids::from_hex(&row.try_get::<String, _>("public_key")?)
                .map_err(|_| StoreError::Corrupt("public key"))?,
        ),
        quota_bytes: row.try_get("quota_bytes")?,
        used_bytes: row.try_get("used_bytes")?,
        recovery: match row.try_get::<Option<String>, _>("recovery_hash")? {
            Some(hash) => Some((hash, base64(row, "recovery_wrapped_identity")?)),
            None => None,
        },
    })
}

/// The columns [`from_row`] reads, for `concat!` (statements stay `&'static str`).
macro_rules! account_columns {
    () => {
        "id, email, kdf_setup, auth_hash, wrapped_identity, public_key, quota_bytes, used_bytes, \
         recovery_hash, recovery_wrapped_identity"
    };
}

pub async fn by_email(db: &Db, email: &str) -> Result<Option<Account>, StoreError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        account_columns!(),
        " FROM accounts WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(&db.pool)
    .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_id(db: &Db, id: &str) -> Result<Option<Account>, StoreError> {
    let row = sqlx::query(concat!("SELECT ", account_columns!(), " FROM accounts WHERE id = $1"))
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// What a new account starts with.
#[derive(Debug, Clone)]
pub struct NewAccount<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub kdf_setup: &'a Base64,
    pub auth_hash: &'a str,
    pub wrapped_identity: &'a Base64,
    pub public_key: &'a PublicKey,
    pub quota_bytes: i64,
    pub created_at: i64,
    /// The recovery auth key's hash and the recovery-wrapped identity.
    pub recovery: Option<(&'a str, &'a Base64)>,
}

/// Insert; `false` when the address is taken.
pub async fn create(db: &Db, a: &NewAccount<'_>) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO accounts (id, email, kdf_setup, auth_hash, wrapped_identity, public_key, quota_bytes, created_at,
         recovery_hash, recovery_wrapped_identity)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (email) DO NOTHING",
    )
    .bind(a.id)
    .bind(a.email)
    .bind(a.kdf_setup.encode())
    .bind(a.auth_hash)
    .bind(a.wrapped_identity.encode())
    .bind(disktro_core::ids::to_hex(a.public_key.as_bytes()))
    .bind(a.quota_bytes)
    .bind(a.created_at)
    .bind(a.recovery.map(|(hash, _)| hash))
    .bind(a.recovery.map(|(_, wrapped)| wrapped.encode()))
    .execute(&db.pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Replace the account's key material, only if its auth hash is still `old_hash` (`false` when
/// another change came first).
pub async fn swap_keys(
    tx: &mut Tx,
    account_id: &str,
    old_hash: &str,
    kdf_setup: &Base64,
    auth_hash: &str,
    wrapped_identity: &Base64,
) -> Result<bool, StoreError> {
    let swapped = sqlx::query(
        "UPDATE accounts SET kdf_setup = $2, auth_hash = $3, wrapped_identity = $4 WHERE id = $1 AND auth_hash = $5",
    )
    .bind(account_id)
    .bind(kdf_setup.encode())
    .bind(auth_hash)
    .bind(wrapped_identity.encode())
    .bind(old_hash)
    .execute(&mut **tx)
    .await?;
    Ok(swapped.rows_affected() == 1)
}

/// Set or replace the account's recovery key.
pub async fn set_recovery(db: &Db, account_id: &str, hash: &str, wrapped_identity: &Base64) -> Result<(), StoreError> {
    sqlx::query("UPDATE accounts SET recovery_hash = $2, recovery_wrapped_identity = $3 WHERE id = $1")
        .bind(account_id)
        .bind(hash)
        .bind(wrapped_identity.encode())
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The account's quota and what its files use, in bytes.
pub async fn quota(db: &Db, account_id: &str) -> Result<(i64, i64), StoreError> {
    let row = sqlx::query("SELECT quota_bytes, used_bytes FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&db.pool)
        .await?;
    Ok((row.try_get("quota_bytes")?, row.try_get("used_bytes")?))
}

/// Add `bytes` to what the account uses, if that and what its open uploads reserve stay within
/// its quota (`false` otherwise).
pub async fn charge(tx: &mut Tx, account_id: &str, bytes: u64) -> Result<bool, StoreError> {
    let charged = sqlx::query(
        "UPDATE accounts SET used_bytes = used_bytes + $1 WHERE id = $2 AND used_bytes + reserved_bytes + $1 <= quota_bytes",
    )
    .bind(to_i64(bytes))
    .bind(account_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(charged == 1)
}

/// The account's identity public key: what its manifests must be signed by.
pub async fn owner_key(db: &Db, account_id: &str) -> Result<PublicKey, StoreError> {
    let hex: String = sqlx::query("SELECT public_key FROM accounts WHERE id = $1")
        .bind(account_id)
        .fetch_one(&db.pool)
        .await?
        .try_get("public_key")?;
    Ok(PublicKey(
        disktro_core::ids::from_hex(&hex).map_err(|_| StoreError::Corrupt("public key"))?,
    ))
}
