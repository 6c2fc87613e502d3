//! The node registry: registration with the join token, heartbeats, health states and history.
//!
//! Health is judged from the last heartbeat the server received (server clock), against the
//! heartbeat interval the server hands out (`--heartbeat-interval`, default 10 s):
//!
//! | state | last heartbeat within |
//! | --- | --- |
//! | online | 3 intervals (30 s) |
//! | suspect | 12 intervals (2 min) |
//! | offline | longer |
//!
//! Every request is signed by the node key over the exact body (see `disktro_core::api::node` and the worker's `control`);
//! heartbeats must carry a `sent_at` newer than the last one accepted, and both kinds must be
//! within [`MAX_CLOCK_SKEW`] of the server's clock, so a captured request cannot be replayed.

use std::time::Duration;

use disktro_core::api::node::{
    self as api, DrainRequest, DrainStatus, Heartbeat, HeartbeatAck, Registered, Registration,
};
use disktro_core::api::{NodeSample, NodeStatus, NodeView};
use disktro_core::keys::PublicKey;

use crate::db::Db;
use crate::error::ServerError;
use crate::store::{self, StoreError};
use disktro_core::api::ErrorCode;

/// How far a node's clock may be from the server's.
pub const MAX_CLOCK_SKEW: u64 = 300;
/// One sample per node per this many seconds is kept for the charts.
pub const SAMPLE_EVERY: i64 = 60;
/// How long a node's samples are kept (the charts show at most a day, the audit trend looks an
/// hour back); samples the rewards have not yet accounted for are kept longer.
pub const SAMPLE_RETENTION: i64 = 7 * 24 * 3600;
/// Corrupt shard ids taken from one heartbeat.
pub const MAX_REPORTS_PER_HEARTBEAT: usize = 10_000;

fn check_signature(key: &PublicKey, domain: &str, body: &[u8], signature: Option<[u8; 64]>) -> Result<(), ServerError> {
    let signature = signature.ok_or_else(|| {
        ServerError::refused(
            ErrorCode::MissingSignature,
            format!("the {} header is required", api::SIGNATURE_HEADER),
        )
    })?;
    key.verify(domain, body, &signature)
        .map_err(|_| ServerError::refused(ErrorCode::BadSignature, "the node signature does not verify"))
}

fn check_clock(sent_at: u64, now: i64) -> Result<(), ServerError> {
    let now = u64::try_from(now).unwrap_or(0);
    if sent_at.abs_diff(now) > MAX_CLOCK_SKEW {
        return Err(ServerError::refused(
            ErrorCode::ClockSkew,
            format!("the node's clock is more than {MAX_CLOCK_SKEW} seconds from the server's"),
        ));
    }
    Ok(())
}

fn check_len(what: &str, value: &str, max: usize) -> Result<(), ServerError> {
    if value.is_empty() || value.len() > max {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            format!("{what} must be 1 to {max} bytes"),
        ));
    }
    Ok(())
}

/// Register (or re-register) a node. `body` is the exact request body the signature covers.
pub async fn register(
    db: &Db,
    expected_join_token: &str,
    server_key: &PublicKey,
    interval: Duration,
    body: &[u8],
    signature: Option<[u8; 64]>,
    now: i64,
) -> Result<Registered, ServerError> {
    let r: Registration = serde_json::from_slice(body).map_err(ServerError::json)?;
    if !crate::same_secret(r.join_token.as_bytes(), expected_join_token.as_bytes()) {
        return Err(ServerError::refused(
            ErrorCode::JoinTokenRefused,
            "the join token is not valid",
        ));
    }
    let key = r.public_key;
    check_signature(&key, api::REGISTER_DOMAIN, body, signature)?;
    check_clock(r.sent_at, now)?;
    check_len("url", &r.url, 512)?;
    if !(r.url.starts_with("ws://") || r.url.starts_with("wss://")) {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            "url must be ws:// or wss://",
        ));
    }
    check_len("zone", &r.zone, 64)?;
    if !r.operator.is_empty() {
        check_len("operator", &r.operator, 64)?;
    }
    check_len("version", &r.version, 32)?;
    let node_id = key.node_id();
    store::nodes::register(db, &node_id.to_hex(), &r, now).await?;
    tracing::info!(%node_id, url = %r.url, zone = %r.zone, "node registered");
    Ok(Registered {
        node_id,
        server_key: *server_key,
        heartbeat_interval_secs: interval.as_secs(),
    })
}

/// Record a heartbeat. Unknown nodes get 404 (the worker then registers again).
pub async fn heartbeat(
    db: &Db,
    roster: &crate::roster::Roster,
    issuer: &PublicKey,
    interval: Duration,
    body: &[u8],
    signature: Option<[u8; 64]>,
    now: i64,
) -> Result<HeartbeatAck, ServerError> {
    let beat: Heartbeat = serde_json::from_slice(body).map_err(ServerError::json)?;
    let node = beat.node_id.to_hex();
    let key = store::nodes::public_key(db, &node)
        .await?
        .ok_or_else(|| ServerError::refused(ErrorCode::UnknownNode, "this node is not registered"))?;
    check_signature(&key, api::HEARTBEAT_DOMAIN, body, signature)?;
    check_clock(beat.sent_at, now)?;
    check_len("url", &beat.url, 512)?;
    check_len("zone", &beat.zone, 64)?;
    if !beat.operator.is_empty() {
        check_len("operator", &beat.operator, 64)?;
    }
    check_len("version", &beat.version, 32)?;
    let reports = &beat.corrupt_shards[..beat.corrupt_shards.len().min(MAX_REPORTS_PER_HEARTBEAT)];
    let scrub = serde_json::to_string(&beat.scrub).map_err(|_| ServerError::internal("scrub report"))?;
    let mut tx = db.begin_write().await?;
    if !store::nodes::record_heartbeat(&mut tx, &beat, &scrub, now).await? {
        return Err(ServerError::refused(
            ErrorCode::StaleHeartbeat,
            "a heartbeat as new or newer was already received",
        ));
    }
    if store::nodes::add_sample(&mut tx, &beat, now - now.rem_euclid(SAMPLE_EVERY)).await? {
        // Once a minute per node (when its sample is new), its oldest samples go: the table stays
        // at a week per node, whatever the network's age.
        store::nodes::prune_samples(&mut tx, &node, now - SAMPLE_RETENTION).await?;
    }
    let mut losses = 0;
    for shard in reports {
        losses += u64::from(store::health::mark_reported_corrupt(&mut tx, &node, &shard.to_hex(), now).await?);
    }
    if store::nodes::finish_drain(&mut tx, &node, now).await? {
        tracing::info!(node_id = %node, "node drained and exited");
    }
    tx.commit().await?;
    roster.heartbeat(&beat, now);
    // Bit rot the node found itself still counts as a loss, at the same weight as a failed
    // audit: rare rot is earned back, sustained loss is not (see reputation).
    crate::durability::reputation::record_losses(db, &node, losses, now).await?;
    if !beat.corrupt_shards.is_empty() {
        tracing::warn!(node_id = %beat.node_id, count = beat.corrupt_shards.len(), "node reported corrupt shards");
    }
    let claims = &beat.egress_claims[..beat
        .egress_claims
        .len()
        .min(disktro_core::api::node::MAX_CLAIMS_PER_HEARTBEAT)];
    crate::rewards::record_claims(db, issuer, &node, claims, now).await?;
    let list_buckets = crate::durability::holdings::on_heartbeat(
        db,
        &node,
        beat.inventory.as_ref(),
        &beat.listings,
        i64::try_from(beat.sent_at).unwrap_or(now),
        now,
    )
    .await
    .map_err(|e| {
        tracing::warn!(node_id = %beat.node_id, error = %format!("{e:#}"), "comparing holdings");
        ServerError::internal("comparing the node's holdings failed")
    })?;
    let revoked = store::uploads::revocations(
        db,
        &beat.node_id,
        i64::try_from(beat.revocations_since).unwrap_or(i64::MAX),
        api::MAX_REVOCATIONS_PER_ACK,
    )
    .await?;
    Ok(HeartbeatAck {
        heartbeat_interval_secs: interval.as_secs(),
        list_buckets,
        revoked,
    })
}

/// An operator's drain request (or its withdrawal), signed by the node key. A draining node gets
/// no new shards and its shards count as unhealthy, so repair moves every one of them elsewhere
/// under the placement rules; once none is left it is `exited` (checked here and at each of its
/// heartbeats). Withdrawing makes a draining or exited node active again. A disqualified node
/// can do neither.
pub async fn drain(db: &Db, body: &[u8], signature: Option<[u8; 64]>, now: i64) -> Result<DrainStatus, ServerError> {
    use crate::durability::reputation::{ACTIVE, DISQUALIFIED, DRAINING, EXITED, SUSPENDED};
    let request: DrainRequest = serde_json::from_slice(body).map_err(ServerError::json)?;
    let node = request.node_id.to_hex();
    let key = store::nodes::public_key(db, &node)
        .await?
        .ok_or_else(|| ServerError::refused(ErrorCode::UnknownNode, "this node is not registered"))?;
    check_signature(&key, api::DRAIN_DOMAIN, body, signature)?;
    check_clock(request.sent_at, now)?;
    let mut tx = db.begin_write().await?;
    let state = store::nodes::standing(&mut tx, &node)
        .await?
        .map(|s| s.state)
        .unwrap_or_default();
    let next = match (state.as_str(), request.drain) {
        (DISQUALIFIED, _) => {
            return Err(ServerError::refused(
                ErrorCode::NodeDisqualified,
                "this node is disqualified: it can neither drain nor return",
            ));
        }
        (ACTIVE | SUSPENDED, true) => Some((DRAINING, "the operator is draining it")),
        (DRAINING | EXITED, false) => Some((ACTIVE, "")),
        _ => None,
    };
    let mut state = state;
    if let Some((next, reason)) = next {
        store::nodes::set_state(&mut tx, &node, next, reason, now).await?;
        tracing::info!(node_id = %node, from = %state, to = next, "drain requested");
        next.clone_into(&mut state);
    }
    if store::nodes::finish_drain(&mut tx, &node, now).await? {
        tracing::info!(node_id = %node, "node drained and exited");
        EXITED.clone_into(&mut state);
    }
    tx.commit().await?;
    Ok(DrainStatus {
        node_id: request.node_id,
        state,
        shards_left: store::to_u64(store::nodes::placed_count(db, &node).await?),
    })
}

/// Every node with its health, most recently seen first.
pub async fn list(db: &Db, interval: Duration, now: i64) -> Result<Vec<NodeView>, ServerError> {
    Ok(store::nodes::list(db, now, |last_seen| NodeStatus::of(last_seen, now, interval)).await?)
}

/// How many samples a chart gets at most: a day at one a minute.
pub const MAX_SAMPLES: i64 = 24 * 60;

/// Whether a node with this id is registered.
pub async fn known(db: &Db, node_id: &str) -> Result<bool, StoreError> {
    store::nodes::known(db, node_id).await
}

/// One node's samples since `since` (unix seconds), oldest first; `None` for an unknown node.
pub async fn samples(db: &Db, node_id: &str, since: i64) -> Result<Option<Vec<NodeSample>>, ServerError> {
    if !known(db, node_id).await? {
        return Ok(None);
    }
    // The newest MAX_SAMPLES, then put back in time order.
    let mut out = store::nodes::samples(db, node_id, since, MAX_SAMPLES).await?;
    out.reverse();
    Ok(Some(out))
}

/// Corrupt shards reported by nodes, for repair.
pub async fn corrupt_reports(db: &Db) -> Result<Vec<(String, String)>, ServerError> {
    Ok(store::health::lost_shards(db).await?)
}

/// Oldest `last_seen` that still counts as online at `now` (the SQL form of [`NodeStatus::of`]).
pub fn online_since(now: i64, interval: Duration) -> i64 {
    let interval = i64::try_from(interval.as_secs().max(1)).unwrap_or(i64::MAX);
    now.saturating_sub(interval.saturating_mul(NodeStatus::ONLINE_WITHIN))
}

pub use store::nodes::Writable;

/// Workers that may receive new shards now (online, active, with room for at least `min_free`
/// more bytes), in node-id order, as the database has them (background passes, once a pass).
pub async fn writable(db: &Db, interval: Duration, now: i64, min_free: i64) -> Result<Vec<Writable>, StoreError> {
    store::nodes::writable(db, online_since(now, interval), min_free).await
}

/// [`writable`] for a request: from the replica's [`crate::roster::Roster`], which reads the
/// database only when a node changed state or its copy is a second old.
pub async fn writable_now(ctx: &crate::context::Context, now: i64, min_free: i64) -> Result<Vec<Writable>, StoreError> {
    ctx.roster
        .writable(&ctx.db, online_since(now, ctx.heartbeat_interval), min_free)
        .await
}

/// Public keys of every registered node, to verify receipts with.
pub async fn keys(db: &Db) -> Result<std::collections::HashMap<disktro_core::NodeId, PublicKey>, StoreError> {
    store::nodes::keys(db).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_thresholds() {
        let i = Duration::from_secs(10);
        assert_eq!(NodeStatus::of(100, 130, i), NodeStatus::Online);
        assert_eq!(NodeStatus::of(100, 131, i), NodeStatus::Suspect);
        assert_eq!(NodeStatus::of(100, 220, i), NodeStatus::Suspect);
        assert_eq!(NodeStatus::of(100, 221, i), NodeStatus::Offline);
    }
}
