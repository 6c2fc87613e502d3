//! `/api/v1/folders`, and moving and renaming files: the account's tree. The rules live in
//! `folders.rs`; these handlers only extract and answer.

// utoipa expands `params(T)` into a qualified path the lint flags.
#![allow(unused_qualifications)]

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::api::error::JsonBody;
use crate::context::{Context, unix_now};
use crate::error::ServerError;
use crate::folders;
use crate::sessions::{Auth, Writer};
use disktro_core::api::{ErrorBody, ErrorCode, FolderList, FolderSummary, MoveTo, NewFolder, Removed, Rename};
use disktro_core::{FileId, FolderId};

fn folder_id(text: &str) -> Result<FolderId, ServerError> {
    text.parse()
        .map_err(|_| ServerError::refused(ErrorCode::FolderNotFound, "no such folder"))
}

fn file_id(text: &str) -> Result<FileId, ServerError> {
    text.parse()
        .map_err(|_| ServerError::refused(ErrorCode::InvalidFileId, "a file id is 32 lowercase hex digits"))
}

/// Make a folder (the client's random id and sealed name) at the top or in a folder.
#[utoipa::path(post, path = "/folders", tag = "folders", request_body = NewFolder,
    responses((status = 201, body = FolderSummary),
        (status = 400, description = "metadata or wrapped key malformed", body = ErrorBody),
        (status = 404, description = "no such parent folder", body = ErrorBody),
        (status = 409, description = "folder id taken", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    JsonBody(req): JsonBody<NewFolder>,
) -> Result<(StatusCode, Json<FolderSummary>), ServerError> {
    let folder = folders::create(&ctx, &auth.account_id, req, unix_now()).await?;
    Ok((StatusCode::CREATED, Json(folder)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Parent {
    /// Only the folders in this folder (its id), or `root` for those at the top; without it,
    /// every folder of the account.
    pub parent: Option<String>,
}

/// The account's folders: the whole tree, or one folder's children. Names are sealed: the client
/// opens them with the account's keys.
#[utoipa::path(get, path = "/folders", tag = "folders", params(Parent),
    responses((status = 200, body = FolderList), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list(
    State(ctx): State<Arc<Context>>,
    auth: Auth,
    Query(q): Query<Parent>,
) -> Result<Json<FolderList>, ServerError> {
    let parent = q.parent.as_deref().map(folders::parse_parent).transpose()?;
    Ok(Json(folders::list(&ctx, &auth.account_id, parent).await?))
}

/// A new sealed name for a folder (with the key it is sealed under).
#[utoipa::path(post, path = "/folders/{id}/rename", tag = "folders", request_body = Rename,
    params(("id" = String, Path, description = "folder id")),
    responses((status = 200, body = FolderSummary), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn rename(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Rename>,
) -> Result<Json<FolderSummary>, ServerError> {
    Ok(Json(
        folders::rename(&ctx, &auth.account_id, &folder_id(&id)?, req).await?,
    ))
}

/// Put a folder in another, or at the top (`parent_id` null).
#[utoipa::path(post, path = "/folders/{id}/move", tag = "folders", request_body = MoveTo,
    params(("id" = String, Path, description = "folder id")),
    responses((status = 200, body = FolderSummary),
        (status = 400, description = "into itself or below itself", body = ErrorBody),
        (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn move_folder(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<MoveTo>,
) -> Result<Json<FolderSummary>, ServerError> {
    Ok(Json(
        folders::move_folder(&ctx, &auth.account_id, &folder_id(&id)?, req).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Recursive {
    /// Delete what the folder holds too (every file below it: shards to garbage collection,
    /// shares revoked). Without it, only an empty folder is deleted.
    #[serde(default)]
    pub recursive: bool,
}

/// Delete a folder: an empty one, or with `recursive=true` everything below it.
#[utoipa::path(delete, path = "/folders/{id}", tag = "folders", params(("id" = String, Path, description = "folder id"), Recursive),
    responses((status = 200, body = Removed), (status = 404, body = ErrorBody),
        (status = 409, description = "not empty (`folder_not_empty`)", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    Query(q): Query<Recursive>,
) -> Result<Json<Removed>, ServerError> {
    Ok(Json(
        folders::delete(&ctx, &auth.account_id, &folder_id(&id)?, q.recursive, unix_now()).await?,
    ))
}

/// Put a file in a folder, or at the top (`parent_id` null): metadata only, never its shards.
#[utoipa::path(post, path = "/files/{id}/move", tag = "folders", request_body = MoveTo,
    params(("id" = String, Path, description = "file id")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn move_file(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<MoveTo>,
) -> Result<StatusCode, ServerError> {
    folders::move_file(&ctx, &auth.account_id, &file_id(&id)?, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A file's new name: its metadata sealed anew under the file's own key.
#[utoipa::path(post, path = "/files/{id}/rename", tag = "folders", request_body = Rename,
    params(("id" = String, Path, description = "file id")),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn rename_file(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Rename>,
) -> Result<StatusCode, ServerError> {
    folders::rename_file(&ctx, &auth.account_id, &file_id(&id)?, req).await?;
    Ok(StatusCode::NO_CONTENT)
}
