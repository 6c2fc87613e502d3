//! `/api/v1/uploads` and `/api/v1/files`: begin, renew, replan, cancel and commit uploads; list, read and
//! delete files. The rules live in `files.rs`; these handlers only extract and answer.

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
use crate::sessions::{Auth, Writer};
use crate::{files, uploads};
use disktro_core::api::ErrorBody;
use disktro_core::api::ErrorCode;
use disktro_core::api::{
    BeginUpload, Commit, FileDownload, FileList, FileSummary, PutGrant, Replan, Resize, UploadPlan,
};

/// Begin an upload: placement and put tokens for every shard.
#[utoipa::path(post, path = "/uploads", tag = "files", request_body = BeginUpload,
    responses(
        (status = 201, body = UploadPlan),
        (status = 400, description = "invalid file id, size, chunk size or redundancy", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, description = "CSRF token missing", body = ErrorBody),
        (status = 409, description = "file id taken", body = ErrorBody),
        (status = 413, description = "over quota or too large", body = ErrorBody),
        (status = 503, description = "not enough workers online", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn begin(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    JsonBody(req): JsonBody<BeginUpload>,
) -> Result<(StatusCode, Json<UploadPlan>), ServerError> {
    let plan = uploads::begin(&ctx, &auth.account_id, req, unix_now()).await?;
    ctx.metrics.uploads_begun.inc();
    Ok((StatusCode::CREATED, Json(plan)))
}

/// Fresh put tokens for an upload in progress (same workers and budgets).
#[utoipa::path(post, path = "/uploads/{id}/renew", tag = "files",
    params(("id" = String, Path, description = "upload id")),
    responses((status = 200, body = Vec<PutGrant>), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn renew(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
) -> Result<Json<Vec<PutGrant>>, ServerError> {
    Ok(Json(uploads::renew(&ctx, &auth.account_id, &id, unix_now()).await?))
}

/// The plan of an upload in progress (as amended by replans), every token fresh: how a client
/// continues an upload it lost track of.
#[utoipa::path(get, path = "/uploads/{id}", tag = "files",
    params(("id" = String, Path, description = "upload id")),
    responses((status = 200, body = UploadPlan), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn plan(
    State(ctx): State<Arc<Context>>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<UploadPlan>, ServerError> {
    Ok(Json(uploads::plan(&ctx, &auth.account_id, &id, unix_now()).await?))
}

/// Place again the shards that failed workers were to store: the whole amended plan, every
/// token fresh.
#[utoipa::path(post, path = "/uploads/{id}/replan", tag = "files", request_body = Replan,
    params(("id" = String, Path, description = "upload id")),
    responses((status = 200, body = UploadPlan),
        (status = 400, description = "a worker not of this upload, a chunk it does not have", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "another replan came first", body = ErrorBody),
        (status = 429, description = "replanned as often as an upload may", body = ErrorBody),
        (status = 503, description = "no workers left to take the shards", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn replan(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Replan>,
) -> Result<Json<UploadPlan>, ServerError> {
    let plan = uploads::replan(&ctx, &auth.account_id, &id, req, unix_now()).await?;
    ctx.metrics.upload_replans.inc();
    Ok(Json(plan))
}

/// Give an upload another size class, for a client that streams a file whose size it learns
/// only at its end: the whole amended plan, every token fresh.
#[utoipa::path(post, path = "/uploads/{id}/resize", tag = "files", request_body = Resize,
    params(("id" = String, Path, description = "upload id")),
    responses((status = 200, body = UploadPlan),
        (status = 400, description = "not a size class, a restripe, or growth from a part of a chunk", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "a replan or resize came first", body = ErrorBody),
        (status = 413, description = "past the largest file or the account's quota", body = ErrorBody),
        (status = 503, description = "no workers to take the added chunks", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn resize(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Resize>,
) -> Result<Json<UploadPlan>, ServerError> {
    Ok(Json(
        uploads::resize(&ctx, &auth.account_id, &id, req, unix_now()).await?,
    ))
}

/// Abandon an upload in progress.
#[utoipa::path(delete, path = "/uploads/{id}", tag = "files",
    params(("id" = String, Path, description = "upload id")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn cancel(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
) -> Result<StatusCode, ServerError> {
    uploads::cancel(&ctx, &auth.account_id, &id, unix_now()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Commit an upload: the signed manifest, a receipt for every shard, sealed metadata and the
/// wrapped key, checked and recorded in one transaction.
#[utoipa::path(post, path = "/uploads/{id}/commit", tag = "files", request_body = Commit,
    params(("id" = String, Path, description = "upload id")),
    responses(
        (status = 201, body = FileSummary),
        (status = 400, description = "manifest, receipts, metadata or key do not check out", body = ErrorBody),
        (status = 404, description = "no such upload", body = ErrorBody),
        (status = 413, description = "over quota", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn commit(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<Commit>,
) -> Result<(StatusCode, Json<FileSummary>), ServerError> {
    let summary = uploads::commit(&ctx, &auth.account_id, &id, req, unix_now()).await?;
    ctx.metrics.uploads_committed.inc();
    Ok((StatusCode::CREATED, Json(summary)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// Files per page (1 to 1000, default 200).
    pub limit: Option<i64>,
    /// Where the page starts: the `next` of the page before (the first page without it).
    pub after: Option<String>,
    /// Only the files in this folder (its id), or `root` for those at the top of the tree;
    /// without it, every file of the account.
    pub folder: Option<String>,
}

/// The account's files, newest first, with redundancy health, a page at a time: each page's
/// `next` is where the following one starts (a file added or deleted meanwhile neither repeats
/// nor hides another).
#[utoipa::path(get, path = "/files", tag = "files", params(Page),
    responses((status = 200, body = FileList), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list(
    State(ctx): State<Arc<Context>>,
    auth: Auth,
    Query(page): Query<Page>,
) -> Result<Json<FileList>, ServerError> {
    let folder = page.folder.as_deref().map(crate::folders::parse_parent).transpose()?;
    let list = files::list(
        &ctx,
        &auth.account_id,
        page.limit.unwrap_or(200),
        page.after.as_deref(),
        folder,
        unix_now(),
    )
    .await?;
    Ok(Json(list))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Reading {
    /// The key (hex) the reader signs its orders with: what it received from each worker, which
    /// is what the workers are paid for. Without it, nothing served under these tokens is paid.
    pub order_key: Option<String>,
}

/// A file's manifest, metadata, wrapped key, shard locations and get tokens.
#[utoipa::path(get, path = "/files/{id}", tag = "files",
    params(("id" = String, Path, description = "file id"), Reading),
    responses((status = 200, body = FileDownload), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn get(
    State(ctx): State<Arc<Context>>,
    auth: Auth,
    Path(id): Path<String>,
    Query(reading): Query<Reading>,
) -> Result<Json<FileDownload>, ServerError> {
    let order_key = reading
        .order_key
        .map(|hex| {
            disktro_core::ids::from_hex::<32>(&hex)
                .map(disktro_core::keys::PublicKey)
                .map_err(|_| ServerError::refused(ErrorCode::InvalidField, "`order_key` is not 64 hex digits"))
        })
        .transpose()?;
    Ok(Json(
        files::download(&ctx, &id, Some(&auth.account_id), None, order_key, unix_now()).await?,
    ))
}

/// Begin re-encoding a stored file at the redundancy the policy gives now (its list entry says
/// `below_policy`): a plan like an upload's for the file's own sealed chunks. The owner's client
/// fetches them, encodes them at the plan's (k, m), stores the shards and commits the re-signed
/// manifest at `/uploads/{id}/commit`, which replaces the file's shards (its metadata, key and
/// shares stay). A restripe of the file left open by a client that stopped is cancelled.
#[utoipa::path(post, path = "/files/{id}/restripe", tag = "files",
    params(("id" = String, Path, description = "file id")),
    responses(
        (status = 201, body = UploadPlan),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the file is at the policy's redundancy already (`at_policy`)", body = ErrorBody),
        (status = 413, description = "over quota", body = ErrorBody),
        (status = 503, description = "not enough workers online", body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn restripe(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<UploadPlan>), ServerError> {
    let plan = uploads::begin_restripe(&ctx, &auth.account_id, &id, unix_now()).await?;
    Ok((StatusCode::CREATED, Json(plan)))
}

/// Delete a file: its shares are revoked and its shards go to garbage collection.
#[utoipa::path(delete, path = "/files/{id}", tag = "files",
    params(("id" = String, Path, description = "file id")),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn delete(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
) -> Result<StatusCode, ServerError> {
    files::delete(&ctx, &auth.account_id, &id, unix_now()).await?;
    Ok(StatusCode::NO_CONTENT)
}
