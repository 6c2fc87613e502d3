//! `/api/v1/nodes`: worker registration and heartbeats (signed by node keys), and the node list.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use disktro_core::api::node::{
    DrainRequest, DrainStatus, Heartbeat, HeartbeatAck, Registered, Registration, SIGNATURE_HEADER,
};

use crate::context::{Context, unix_now};
use crate::error::ServerError;
use crate::nodes;
use disktro_core::api::ErrorBody;
use disktro_core::api::ErrorCode;
use disktro_core::api::{NodeSample, NodeView};

fn signature(headers: &HeaderMap) -> Option<[u8; 64]> {
    let hex = headers.get(SIGNATURE_HEADER)?.to_str().ok()?;
    disktro_core::ids::from_hex::<64>(hex).ok()
}

#[utoipa::path(post, path = "/nodes/register", tag = "nodes", request_body = Registration,
    params(("x-disktro-node-signature" = String, Header, description = "Ed25519 signature of the body by the node key, hex")),
    responses((status = 200, body = Registered), (status = 400, body = ErrorBody), (status = 401, description = "wrong join token or signature", body = ErrorBody)))]
pub async fn register(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Registered>, ServerError> {
    let registered = nodes::register(
        &ctx.db,
        &ctx.join_token,
        &ctx.key.public(),
        ctx.heartbeat_interval,
        &body,
        signature(&headers),
        unix_now(),
    )
    .await?;
    Ok(Json(registered))
}

#[utoipa::path(post, path = "/nodes/heartbeat", tag = "nodes", request_body = Heartbeat,
    params(("x-disktro-node-signature" = String, Header, description = "Ed25519 signature of the body by the node key, hex")),
    responses((status = 200, body = HeartbeatAck), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "unknown node: register again", body = ErrorBody)))]
pub async fn heartbeat(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HeartbeatAck>, ServerError> {
    let ack = nodes::heartbeat(
        &ctx.db,
        &ctx.roster,
        &ctx.key.public(),
        ctx.heartbeat_interval,
        &body,
        signature(&headers),
        unix_now(),
    )
    .await?;
    Ok(Json(ack))
}

#[utoipa::path(post, path = "/nodes/drain", tag = "nodes", request_body = DrainRequest,
    params(("x-disktro-node-signature" = String, Header, description = "Ed25519 signature of the body by the node key, hex")),
    responses((status = 200, description = "the node's state and the shards still on it", body = DrainStatus), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, description = "unknown node", body = ErrorBody), (status = 409, description = "the node is disqualified", body = ErrorBody)))]
pub async fn drain(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DrainStatus>, ServerError> {
    Ok(Json(
        nodes::drain(&ctx.db, &body, signature(&headers), unix_now()).await?,
    ))
}

#[utoipa::path(get, path = "/nodes", tag = "nodes",
    responses((status = 200, description = "every registered node with its health", body = Vec<NodeView>)))]
pub async fn list(State(ctx): State<Arc<Context>>) -> Result<Json<Vec<NodeView>>, ServerError> {
    Ok(Json(nodes::list(&ctx.db, ctx.heartbeat_interval, unix_now()).await?))
}

/// `?since=` for the samples route.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct Since {
    /// Unix seconds; default: the last day.
    pub since: Option<i64>,
}

#[utoipa::path(get, path = "/nodes/{node_id}/samples", tag = "nodes",
    params(("node_id" = String, Path, description = "64 hex digits"), Since),
    responses((status = 200, description = "one sample a minute, oldest first, at most a day's", body = Vec<NodeSample>),
        (status = 404, body = ErrorBody)))]
pub async fn samples(
    State(ctx): State<Arc<Context>>,
    axum::extract::Path(node_id): axum::extract::Path<String>,
    axum::extract::Query(q): axum::extract::Query<Since>,
) -> Result<Json<Vec<NodeSample>>, ServerError> {
    let since = q.since.unwrap_or_else(|| unix_now() - 24 * 3600);
    nodes::samples(&ctx.db, &node_id, since)
        .await?
        .map(Json)
        .ok_or_else(|| ServerError::refused(ErrorCode::NodeNotFound, "no node has this id"))
}
