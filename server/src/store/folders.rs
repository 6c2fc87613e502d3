//! `folders` (an account's tree: each folder's parent and sealed name) and the folder each file
//! is in (`files.folder_id`). Every statement names the account: a folder id of another account
//! is not found.

use disktro_core::api::Base64;
use disktro_core::{FileId, FolderId};
use sqlx::Row as _;

use super::{Db, StoreError, Tx, base64, parse};

/// A folder as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folder {
    pub folder_id: FolderId,
    pub parent_id: Option<FolderId>,
    pub metadata: Base64,
    pub wrapped_key: Base64,
    pub created_at: i64,
}

fn folder(row: &sqlx::any::AnyRow) -> Result<Folder, StoreError> {
    Ok(Folder {
        folder_id: parse(&row.try_get::<String, _>("id")?, "folder id")?,
        parent_id: row
            .try_get::<Option<String>, _>("parent_id")?
            .map(|p| parse(&p, "folder id"))
            .transpose()?,
        metadata: base64(row, "metadata")?,
        wrapped_key: base64(row, "wrapped_key")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Record a new folder; `false` when its id is taken (by any account).
pub async fn create(tx: &mut Tx, account_id: &str, f: &Folder) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO folders (id, account_id, parent_id, metadata, wrapped_key, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(f.folder_id.to_hex())
    .bind(account_id)
    .bind(f.parent_id.map(|p| p.to_hex()))
    .bind(f.metadata.encode())
    .bind(f.wrapped_key.encode())
    .bind(f.created_at)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Whether the account has folder `id` (in `tx`, so a check and the write it guards agree).
pub async fn exists(tx: &mut Tx, account_id: &str, id: &FolderId) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("SELECT 1 AS x FROM folders WHERE id = $1 AND account_id = $2")
            .bind(id.to_hex())
            .bind(account_id)
            .fetch_optional(&mut **tx)
            .await?
            .is_some(),
    )
}

/// The account's folder `id`.
pub async fn get(db: &Db, account_id: &str, id: &FolderId) -> Result<Option<Folder>, StoreError> {
    sqlx::query(
        "SELECT id, parent_id, metadata, wrapped_key, created_at FROM folders WHERE id = $1 AND account_id = $2",
    )
    .bind(id.to_hex())
    .bind(account_id)
    .fetch_optional(&db.pool)
    .await?
    .as_ref()
    .map(folder)
    .transpose()
}

/// Folders listed at most by one [`list`].
pub const MAX_LISTED: i64 = 100_000;

/// The account's folders in `parent` (`Some(None)`: at the top), or all of them (`None`), oldest
/// first; at most [`MAX_LISTED`] (one more tells the caller there are more).
pub async fn list(db: &Db, account_id: &str, parent: Option<Option<FolderId>>) -> Result<Vec<Folder>, StoreError> {
    const COLUMNS: &str = "SELECT id, parent_id, metadata, wrapped_key, created_at FROM folders";
    let rows = match parent {
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} WHERE account_id = $1 ORDER BY created_at, id LIMIT $2"
            )))
            .bind(account_id)
            .bind(MAX_LISTED + 1)
            .fetch_all(&db.pool)
            .await?
        }
        Some(None) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} WHERE account_id = $1 AND parent_id IS NULL ORDER BY created_at, id LIMIT $2"
            )))
            .bind(account_id)
            .bind(MAX_LISTED + 1)
            .fetch_all(&db.pool)
            .await?
        }
        Some(Some(p)) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{COLUMNS} WHERE account_id = $1 AND parent_id = $2 ORDER BY created_at, id LIMIT $3"
            )))
            .bind(account_id)
            .bind(p.to_hex())
            .bind(MAX_LISTED + 1)
            .fetch_all(&db.pool)
            .await?
        }
    };
    rows.iter().map(folder).collect()
}

/// A new sealed name for the account's folder `id`; `false` when it has no such folder.
pub async fn rename(
    tx: &mut Tx,
    account_id: &str,
    id: &FolderId,
    metadata: &Base64,
    wrapped_key: &Base64,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("UPDATE folders SET metadata = $3, wrapped_key = $4 WHERE id = $1 AND account_id = $2")
            .bind(id.to_hex())
            .bind(account_id)
            .bind(metadata.encode())
            .bind(wrapped_key.encode())
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// The parent of the account's folder `id` (`Some(None)`: at the top; `None`: no such folder).
pub async fn parent_of(tx: &mut Tx, account_id: &str, id: &FolderId) -> Result<Option<Option<FolderId>>, StoreError> {
    let Some(row) = sqlx::query("SELECT parent_id FROM folders WHERE id = $1 AND account_id = $2")
        .bind(id.to_hex())
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(
        row.try_get::<Option<String>, _>("parent_id")?
            .map(|p| parse(&p, "folder id"))
            .transpose()?,
    ))
}

/// Put the account's folder `id` in `parent` (the caller has checked that this makes no cycle).
pub async fn set_parent(
    tx: &mut Tx,
    account_id: &str,
    id: &FolderId,
    parent: Option<&FolderId>,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE folders SET parent_id = $3 WHERE id = $1 AND account_id = $2")
        .bind(id.to_hex())
        .bind(account_id)
        .bind(parent.map(FolderId::to_hex))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Put the account's file in `folder`; `false` when it has no such file.
pub async fn file_into(
    tx: &mut Tx,
    account_id: &str,
    file: &FileId,
    folder: Option<&FolderId>,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("UPDATE files SET folder_id = $3 WHERE id = $1 AND account_id = $2")
            .bind(file.to_hex())
            .bind(account_id)
            .bind(folder.map(FolderId::to_hex))
            .execute(&mut **tx)
            .await?
            .rows_affected()
            == 1,
    )
}

/// The folders directly in `parents` (the account's), for walking a subtree a level at a time.
pub async fn children(tx: &mut Tx, account_id: &str, parents: &[FolderId]) -> Result<Vec<FolderId>, StoreError> {
    let mut out = Vec::new();
    // A statement per parent keeps every statement static; subtrees are walked rarely.
    for p in parents {
        let rows = sqlx::query("SELECT id FROM folders WHERE account_id = $1 AND parent_id = $2")
            .bind(account_id)
            .bind(p.to_hex())
            .fetch_all(&mut **tx)
            .await?;
        for r in &rows {
            out.push(parse(&r.try_get::<String, _>("id")?, "folder id")?);
        }
    }
    Ok(out)
}

/// The account's files in `folder`.
pub async fn files_in(tx: &mut Tx, account_id: &str, folder: &FolderId) -> Result<Vec<FileId>, StoreError> {
    let rows = sqlx::query("SELECT id FROM files WHERE account_id = $1 AND folder_id = $2")
        .bind(account_id)
        .bind(folder.to_hex())
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| parse(&r.try_get::<String, _>("id")?, "file id"))
        .collect()
}

/// Whether the account's folder holds anything (a folder or a file).
pub async fn is_empty(tx: &mut Tx, account_id: &str, id: &FolderId) -> Result<bool, StoreError> {
    let hex = id.to_hex();
    let any = sqlx::query(
        "SELECT 1 AS x FROM folders WHERE account_id = $1 AND parent_id = $2 \
         UNION ALL SELECT 1 AS x FROM files WHERE account_id = $1 AND folder_id = $2",
    )
    .bind(account_id)
    .bind(&hex)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(any.is_none())
}

/// Remove the account's (empty) folder `id`.
pub async fn delete(tx: &mut Tx, account_id: &str, id: &FolderId) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM folders WHERE id = $1 AND account_id = $2")
        .bind(id.to_hex())
        .bind(account_id)
        .execute(&mut **tx)
        .await?
        .rows_affected()
        == 1)
}
