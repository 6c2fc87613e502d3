//! Server-wide settings kept in the database (`settings`), shared by every replica.

use sqlx::Row as _;

use super::{Db, StoreError};

/// The join token workers register with: `fresh` if none is stored yet. Whichever replica
/// inserts first wins; everyone reads the winner.
pub async fn join_token(db: &Db, fresh: &str) -> Result<String, StoreError> {
    sqlx::query("INSERT INTO settings (name, value) VALUES ('join_token', $1) ON CONFLICT (name) DO NOTHING")
        .bind(fresh)
        .execute(&db.pool)
        .await?;
    let row = sqlx::query("SELECT value FROM settings WHERE name = 'join_token'")
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("value")?)
}
