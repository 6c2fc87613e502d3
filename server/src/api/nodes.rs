//! `/api/v1/nodes`: worker registration and heartbeats (signed by node keys), and the node list.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use disktro_worker::control::api::{HeartbeatAck, Registered, SIGNATURE_HEADER};

use crate::api::error::ApiError;
use crate::context::{Context, unix_now};
use crate::nodes::{self, NodeView};

fn signature(headers: &HeaderMap) -> Option<[u8; 64]> {
    let hex = headers.get(SIGNATURE_HEADER)?.to_str().ok()?;
    disktro_core::ids::from_hex::<64>(hex).ok()
}

pub async fn register(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Registered>, ApiError> {
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

pub async fn heartbeat(
    State(ctx): State<Arc<Context>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<HeartbeatAck>, ApiError> {
    let ack = nodes::heartbeat(&ctx.db, ctx.heartbeat_interval, &body, signature(&headers), unix_now()).await?;
    Ok(Json(ack))
}

pub async fn list(State(ctx): State<Arc<Context>>) -> Result<Json<Vec<NodeView>>, ApiError> {
    Ok(Json(nodes::list(&ctx.db, ctx.heartbeat_interval, unix_now()).await?))
}
