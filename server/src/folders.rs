//! Folders: the account's tree. Clients make folders with random ids and sealed names
//! (`disktro_core::folder`); the server keeps who is in which folder and checks what only it can:
//! that every folder and file named is the account's, that a move makes no cycle, that a sealed
//! name has the padded shape (so its length tells nothing). Moving and renaming a file change its
//! row only, never its shards. Deleting a folder that holds anything needs `recursive`: then
//! every file below it is deleted as `DELETE /files/{id}` deletes one (shards to garbage
//! collection, shares revoked) and the folders go, deepest first, in one transaction.

use disktro_core::api::{ErrorCode, FolderList, FolderSummary, MoveTo, NewFolder, Removed, Rename};
use disktro_core::keys::WRAPPED_KEY_LEN;
use disktro_core::{FileId, FolderId};

use crate::context::Context;
use crate::error::ServerError;
use crate::store::{self, folders::Folder};

fn folder_not_found() -> ServerError {
    ServerError::refused(ErrorCode::FolderNotFound, "no such folder")
}

/// A folder named in a query: its id, or `root` for the top of the tree (`Some(None)`).
pub fn parse_parent(text: &str) -> Result<Option<FolderId>, ServerError> {
    if text == "root" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        ServerError::refused(
            ErrorCode::InvalidField,
            "a folder is its id (32 lowercase hex digits) or `root`",
        )
    })
}

/// A sealed name as every client seals one: padded metadata and a wrapped key.
fn check_sealed(metadata: &[u8], wrapped_key: Option<&[u8]>) -> Result<(), ServerError> {
    if !disktro_core::metadata::is_padded_shape(metadata) {
        return Err(ServerError::refused(
            ErrorCode::BadMetadata,
            "metadata must be padded sealed metadata (\"DKMD\" version 2)",
        ));
    }
    if let Some(w) = wrapped_key
        && (w.len() != WRAPPED_KEY_LEN || !w.starts_with(b"DKWK"))
    {
        return Err(ServerError::refused(
            ErrorCode::BadWrappedKey,
            "wrapped_key must be a wrapped key (\"DKWK\")",
        ));
    }
    Ok(())
}

fn summary(f: Folder) -> FolderSummary {
    FolderSummary {
        folder_id: f.folder_id,
        parent_id: f.parent_id,
        metadata: f.metadata,
        wrapped_key: f.wrapped_key,
        created_at: f.created_at,
    }
}

/// Make the folder the client named, in its parent (which must be the account's).
pub async fn create(ctx: &Context, account_id: &str, req: NewFolder, now: i64) -> Result<FolderSummary, ServerError> {
    check_sealed(&req.metadata, Some(&req.wrapped_key))?;
    let folder = Folder {
        folder_id: req.folder_id,
        parent_id: req.parent_id,
        metadata: req.metadata,
        wrapped_key: req.wrapped_key,
        created_at: now,
    };
    let mut tx = ctx.db.begin_write().await?;
    if let Some(parent) = &folder.parent_id
        && !store::folders::exists(&mut tx, account_id, parent).await?
    {
        return Err(folder_not_found());
    }
    if !store::folders::create(&mut tx, account_id, &folder).await? {
        return Err(ServerError::refused(
            ErrorCode::FileExists,
            "a folder with this id exists; pick another random id",
        ));
    }
    tx.commit().await?;
    Ok(summary(folder))
}

/// The account's folders: all of them, or those in `parent` (`Some(None)`: at the top).
pub async fn list(
    ctx: &Context,
    account_id: &str,
    parent: Option<Option<FolderId>>,
) -> Result<FolderList, ServerError> {
    if let Some(Some(p)) = &parent
        && store::folders::get(&ctx.db, account_id, p).await?.is_none()
    {
        return Err(folder_not_found());
    }
    let folders = store::folders::list(&ctx.db, account_id, parent).await?;
    if folders.len() as i64 > store::folders::MAX_LISTED {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            format!(
                "more than {} folders: list them a folder at a time (`parent`)",
                store::folders::MAX_LISTED
            ),
        ));
    }
    Ok(FolderList {
        folders: folders.into_iter().map(summary).collect(),
    })
}

/// A new sealed name for the account's folder.
pub async fn rename(ctx: &Context, account_id: &str, id: &FolderId, req: Rename) -> Result<FolderSummary, ServerError> {
    let Some(wrapped_key) = req.wrapped_key else {
        return Err(ServerError::refused(
            ErrorCode::BadWrappedKey,
            "a folder's new name comes with the key it is sealed under (`wrapped_key`)",
        ));
    };
    check_sealed(&req.metadata, Some(&wrapped_key))?;
    let mut tx = ctx.db.begin_write().await?;
    if !store::folders::rename(&mut tx, account_id, id, &req.metadata, &wrapped_key).await? {
        return Err(folder_not_found());
    }
    tx.commit().await?;
    store::folders::get(&ctx.db, account_id, id)
        .await?
        .map(summary)
        .ok_or_else(folder_not_found)
}

/// Put the account's folder in another (or at the top). Refused when the destination is the
/// folder itself or below it: the tree stays a tree.
pub async fn move_folder(
    ctx: &Context,
    account_id: &str,
    id: &FolderId,
    to: MoveTo,
) -> Result<FolderSummary, ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    if store::folders::parent_of(&mut tx, account_id, id).await?.is_none() {
        return Err(folder_not_found());
    }
    // Walk up from the destination: meeting the folder would make it its own ancestor.
    let mut above = to.parent_id;
    while let Some(f) = above {
        if f == *id {
            return Err(ServerError::refused(
                ErrorCode::InvalidField,
                "a folder cannot be moved into itself or into a folder below it",
            ));
        }
        above = store::folders::parent_of(&mut tx, account_id, &f)
            .await?
            .ok_or_else(folder_not_found)?;
    }
    store::folders::set_parent(&mut tx, account_id, id, to.parent_id.as_ref()).await?;
    tx.commit().await?;
    store::folders::get(&ctx.db, account_id, id)
        .await?
        .map(summary)
        .ok_or_else(folder_not_found)
}

/// Put the account's file in a folder (or at the top): its row changes, its shards do not.
pub async fn move_file(ctx: &Context, account_id: &str, file: &FileId, to: MoveTo) -> Result<(), ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    if let Some(f) = &to.parent_id
        && !store::folders::exists(&mut tx, account_id, f).await?
    {
        return Err(folder_not_found());
    }
    if !store::folders::file_into(&mut tx, account_id, file, to.parent_id.as_ref()).await? {
        return Err(ServerError::refused(ErrorCode::FileNotFound, "no such file"));
    }
    tx.commit().await?;
    Ok(())
}

/// New sealed metadata for the account's file (a new name, under the file's own key).
pub async fn rename_file(ctx: &Context, account_id: &str, file: &FileId, req: Rename) -> Result<(), ServerError> {
    if req.wrapped_key.is_some() {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            "a file's name is sealed under its own key: send `metadata` only",
        ));
    }
    check_sealed(&req.metadata, None)?;
    let mut tx = ctx.db.begin_write().await?;
    if !store::files::rename(&mut tx, account_id, file, &req.metadata).await? {
        return Err(ServerError::refused(ErrorCode::FileNotFound, "no such file"));
    }
    tx.commit().await?;
    Ok(())
}

/// Delete the account's folder: an empty one, or with `recursive` everything below it.
pub async fn delete(
    ctx: &Context,
    account_id: &str,
    id: &FolderId,
    recursive: bool,
    now: i64,
) -> Result<Removed, ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    if store::folders::parent_of(&mut tx, account_id, id).await?.is_none() {
        return Err(folder_not_found());
    }
    if !recursive && !store::folders::is_empty(&mut tx, account_id, id).await? {
        return Err(ServerError::refused(
            ErrorCode::FolderNotEmpty,
            "the folder is not empty: delete it with `recursive=true` to delete what it holds",
        ));
    }
    // The subtree, a level at a time, top first.
    let mut levels = vec![vec![*id]];
    loop {
        let below = store::folders::children(&mut tx, account_id, levels.last().expect("one level at least")).await?;
        if below.is_empty() {
            break;
        }
        levels.push(below);
    }
    let mut removed = Removed::default();
    for folder in levels.iter().flatten() {
        for file in store::folders::files_in(&mut tx, account_id, folder).await? {
            if store::files::delete(&mut tx, account_id, &file.to_hex(), now).await? {
                removed.files += 1;
            }
        }
    }
    // Deepest first: a folder goes once nothing names it as a parent.
    for folder in levels.iter().rev().flatten() {
        if store::folders::delete(&mut tx, account_id, folder).await? {
            removed.folders += 1;
        }
    }
    tx.commit().await?;
    Ok(removed)
}
