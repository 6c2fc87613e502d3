//! Share links: the owner's side (`/files/{id}/shares`, `/shares`) and the public side
//! (`/public/shares/{id}`), which needs no account. Rules in `shares.rs`.

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
use crate::shares;
use disktro_core::api::ErrorBody;
use disktro_core::api::{FileDownload, NewShare, ShareAccess, ShareInfo, ShareView};

/// Share a file: a link id with expiry, download limit and optional password.
#[utoipa::path(post, path = "/files/{id}/shares", tag = "shares", request_body = NewShare,
    params(("id" = String, Path, description = "file id")),
    responses((status = 201, body = ShareView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn create(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<NewShare>,
) -> Result<(StatusCode, Json<ShareView>), ServerError> {
    let share = shares::create(&ctx, &auth.account_id, &id, req, unix_now()).await?;
    Ok((StatusCode::CREATED, Json(share)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShareFilter {
    /// Only the shares of this file.
    pub file_id: Option<String>,
}

/// The account's shares, newest first.
#[utoipa::path(get, path = "/shares", tag = "shares", params(ShareFilter),
    responses((status = 200, body = Vec<ShareView>), (status = 401, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn list(
    State(ctx): State<Arc<Context>>,
    auth: Auth,
    Query(filter): Query<ShareFilter>,
) -> Result<Json<Vec<ShareView>>, ServerError> {
    Ok(Json(
        shares::list(&ctx, &auth.account_id, filter.file_id.as_deref()).await?,
    ))
}

/// Revoke a share: its link stops working at once.
#[utoipa::path(delete, path = "/shares/{id}", tag = "shares",
    params(("id" = String, Path, description = "share id")),
    responses((status = 200, body = ShareView), (status = 404, body = ErrorBody)),
    security(("session" = []), ("token" = [])))]
pub async fn revoke(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    Path(id): Path<String>,
) -> Result<Json<ShareView>, ServerError> {
    Ok(Json(shares::revoke(&ctx, &auth.account_id, &id, unix_now()).await?))
}

/// What a link points at (sealed metadata, size, expiry), without counting a download.
#[utoipa::path(post, path = "/public/shares/{id}", tag = "shares", request_body = ShareAccess,
    params(("id" = String, Path, description = "share id")),
    responses(
        (status = 200, body = ShareInfo),
        (status = 401, description = "password needed or wrong", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 410, description = "revoked, expired or out of downloads", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn open(
    State(ctx): State<Arc<Context>>,
    Path(id): Path<String>,
    JsonBody(access): JsonBody<ShareAccess>,
) -> Result<Json<ShareInfo>, ServerError> {
    Ok(Json(shares::open(&ctx, &id, &access, unix_now()).await?))
}

/// Start a download (reserving one of a limited link's) or continue the one `download_id` names,
/// and return the manifest, locations and get tokens.
#[utoipa::path(post, path = "/public/shares/{id}/download", tag = "shares", request_body = ShareAccess,
    params(("id" = String, Path, description = "share id")),
    responses(
        (status = 200, body = FileDownload),
        (status = 401, description = "password needed or wrong", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 410, description = "revoked, expired or out of downloads", body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub async fn download(
    State(ctx): State<Arc<Context>>,
    Path(id): Path<String>,
    JsonBody(access): JsonBody<ShareAccess>,
) -> Result<Json<FileDownload>, ServerError> {
    Ok(Json(shares::download(&ctx, &id, &access, unix_now()).await?))
}

/// The recipient finished a download: it counts for good. Until then (or until its tokens run out
/// with too little served) it holds a reservation, so an interrupted download does not use up
/// the link.
#[utoipa::path(post, path = "/public/shares/{id}/downloads/{download_id}/complete", tag = "shares",
    params(("id" = String, Path, description = "share id"),
           ("download_id" = String, Path, description = "from the download's answer")),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn complete(
    State(ctx): State<Arc<Context>>,
    Path((id, download_id)): Path<(String, String)>,
) -> Result<StatusCode, ServerError> {
    shares::complete(&ctx, &id, &download_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
