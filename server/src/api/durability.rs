//! `/api/v1/durability`, `/api/v1/jobs`, `/api/v1/ledger/verify` and `/api/v1/nodes/{id}/earnings`: what the
//! operators' dashboard and `disktro ledger verify` read. Aggregates only: no file is named.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};

use crate::context::{Context, unix_now};
use crate::durability::{self, Status};
use crate::error::ServerError;
use crate::jobs::JobStatus;
use crate::rewards::{self, DailyEarnings, LedgerCheck};
use disktro_core::api::ErrorBody;
use disktro_core::api::ErrorCode;

#[utoipa::path(get, path = "/durability", tag = "durability",
    responses((status = 200, description = "chunks by health, and the repair and collection queues", body = Status)))]
pub async fn status(State(ctx): State<Arc<Context>>) -> Result<Json<Status>, ServerError> {
    Ok(Json(durability::status(&ctx, unix_now()).await?))
}

#[utoipa::path(get, path = "/jobs", tag = "durability",
    responses((status = 200, description = "this replica's background jobs: state, runs, failures and the last error", body = Vec<JobStatus>)))]
pub async fn jobs(State(ctx): State<Arc<Context>>) -> Json<Vec<JobStatus>> {
    Json(ctx.jobs.list())
}

#[utoipa::path(get, path = "/ledger/verify", tag = "durability",
    responses((status = 200, description = "the hash chain of the rewards ledger, recomputed", body = LedgerCheck)))]
pub async fn verify_ledger(State(ctx): State<Arc<Context>>) -> Result<Json<LedgerCheck>, ServerError> {
    Ok(Json(rewards::verify(&ctx.db).await?))
}

/// `?days=` for the earnings route.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct Days {
    /// Days to return, newest first [default: 30, at most 366].
    pub days: Option<i64>,
}

#[utoipa::path(get, path = "/nodes/{node_id}/earnings", tag = "durability",
    params(("node_id" = String, Path, description = "64 hex digits"), Days),
    responses((status = 200, description = "the node's ledger per UTC day, newest first", body = Vec<DailyEarnings>),
        (status = 404, body = ErrorBody)))]
pub async fn earnings(
    State(ctx): State<Arc<Context>>,
    Path(node_id): Path<String>,
    Query(q): Query<Days>,
) -> Result<Json<Vec<DailyEarnings>>, ServerError> {
    if !crate::nodes::known(&ctx.db, &node_id).await? {
        return Err(ServerError::refused(ErrorCode::NodeNotFound, "no node has this id"));
    }
    let days = q.days.unwrap_or(30).clamp(1, 366);
    Ok(Json(rewards::earnings(&ctx.db, &node_id, days).await?))
}
