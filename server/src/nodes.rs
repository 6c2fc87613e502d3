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

use disktro_core::api::node::{self as api, Heartbeat, HeartbeatAck, Registered, Registration};
use disktro_core::api::{NodeSample, NodeStatus, NodeView};
use disktro_core::keys::PublicKey;
use sqlx::Row as _;

use crate::db::Db;
use crate::error::ServerError;
use crate::store::to_i64;
use disktro_core::api::ErrorCode;

/// How far a node's clock may be from the server's.
pub const MAX_CLOCK_SKEW: u64 = 300;
/// One sample per node per this many seconds is kept for the charts.
pub const SAMPLE_EVERY: i64 = 60;
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
    let key = disktro_core::ids::from_hex::<32>(&r.public_key)
        .map(PublicKey)
        .map_err(|_| ServerError::refused(ErrorCode::InvalidField, "public_key must be 64 hex digits"))?;
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
    check_len("version", &r.version, 32)?;
    let node_id = key.node_id().to_hex();
    sqlx::query(
        "INSERT INTO nodes (node_id, public_key, url, zone, version, capacity, registered_at, last_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
         ON CONFLICT (node_id) DO UPDATE SET
             url = excluded.url, zone = excluded.zone, version = excluded.version,
             capacity = excluded.capacity, last_seen = excluded.last_seen",
    )
    .bind(&node_id)
    .bind(&r.public_key)
    .bind(&r.url)
    .bind(&r.zone)
    .bind(&r.version)
    .bind(to_i64(r.capacity))
    .bind(now)
    .execute(&db.pool)
    .await?;
    tracing::info!(%node_id, url = %r.url, zone = %r.zone, "node registered");
    Ok(Registered {
        node_id,
        server_key: disktro_core::ids::to_hex(server_key.as_bytes()),
        heartbeat_interval_secs: interval.as_secs(),
    })
}

/// Record a heartbeat. Unknown nodes get 404 (the worker then registers again).
pub async fn heartbeat(
    db: &Db,
    interval: Duration,
    body: &[u8],
    signature: Option<[u8; 64]>,
    now: i64,
) -> Result<HeartbeatAck, ServerError> {
    let beat: Heartbeat = serde_json::from_slice(body).map_err(ServerError::json)?;
    let row = sqlx::query("SELECT public_key FROM nodes WHERE node_id = $1")
        .bind(&beat.node_id)
        .fetch_optional(&db.pool)
        .await?
        .ok_or_else(|| ServerError::refused(ErrorCode::UnknownNode, "this node is not registered"))?;
    let key_hex: String = row.try_get("public_key")?;
    let key = PublicKey(
        disktro_core::ids::from_hex::<32>(&key_hex)
            .map_err(|_| ServerError::internal("a stored node key does not decode"))?,
    );
    check_signature(&key, api::HEARTBEAT_DOMAIN, body, signature)?;
    check_clock(beat.sent_at, now)?;
    check_len("url", &beat.url, 512)?;
    check_len("zone", &beat.zone, 64)?;
    check_len("version", &beat.version, 32)?;
    let reports = &beat.corrupt_shards[..beat.corrupt_shards.len().min(MAX_REPORTS_PER_HEARTBEAT)];
    if reports.iter().any(|s| s.parse::<disktro_core::ShardId>().is_err()) {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            "corrupt_shards holds a malformed id",
        ));
    }
    let scrub = serde_json::to_string(&beat.scrub).map_err(|_| ServerError::internal("scrub report"))?;
    let mut tx = db.begin_write().await?;
    let updated = sqlx::query(
        "UPDATE nodes SET url = $2, zone = $3, version = $4, capacity = $5, used = $6, free_disk = $7,
             shards = $8, quarantined = $9, ingress_bytes = $10, egress_bytes = $11, uptime_secs = $12,
             scrub = $13, last_seen = $14, last_sent_at = $15
         WHERE node_id = $1 AND last_sent_at < $15",
    )
    .bind(&beat.node_id)
    .bind(&beat.url)
    .bind(&beat.zone)
    .bind(&beat.version)
    .bind(to_i64(beat.capacity))
    .bind(to_i64(beat.used))
    .bind(to_i64(beat.free_disk))
    .bind(to_i64(beat.shards))
    .bind(to_i64(beat.quarantined))
    .bind(to_i64(beat.ingress_bytes))
    .bind(to_i64(beat.egress_bytes))
    .bind(to_i64(beat.uptime_secs))
    .bind(&scrub)
    .bind(now)
    .bind(to_i64(beat.sent_at))
    .execute(&mut *tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ServerError::refused(
            ErrorCode::StaleHeartbeat,
            "a heartbeat as new or newer was already received",
        ));
    }
    let bucket = now - now.rem_euclid(SAMPLE_EVERY);
    sqlx::query(
        "INSERT INTO node_samples (node_id, at, capacity, used, shards, ingress_bytes, egress_bytes, uptime_secs, audit_score)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, audit_score FROM nodes WHERE node_id = $1
         ON CONFLICT (node_id, at) DO NOTHING",
    )
    .bind(&beat.node_id)
    .bind(bucket)
    .bind(to_i64(beat.capacity))
    .bind(to_i64(beat.used))
    .bind(to_i64(beat.shards))
    .bind(to_i64(beat.ingress_bytes))
    .bind(to_i64(beat.egress_bytes))
    .bind(to_i64(beat.uptime_secs))
    .execute(&mut *tx)
    .await?;
    for shard in reports {
        crate::durability::mark_lost(&mut tx, &beat.node_id, shard, "corrupt", now).await?;
    }
    tx.commit().await?;
    if !beat.corrupt_shards.is_empty() {
        tracing::warn!(node_id = %beat.node_id, count = beat.corrupt_shards.len(), "node reported corrupt shards");
    }
    let claims = &beat.egress_claims[..beat
        .egress_claims
        .len()
        .min(disktro_core::api::node::MAX_CLAIMS_PER_HEARTBEAT)];
    crate::rewards::record_claims(db, &beat.node_id, claims).await?;
    let list_buckets =
        crate::durability::holdings::on_heartbeat(db, &beat.node_id, beat.inventory.as_ref(), &beat.listings, now)
            .await
            .map_err(|e| {
                tracing::warn!(node_id = %beat.node_id, error = %format!("{e:#}"), "comparing holdings");
                ServerError::internal("comparing the node's holdings failed")
            })?;
    Ok(HeartbeatAck {
        heartbeat_interval_secs: interval.as_secs(),
        list_buckets,
    })
}

/// Every node with its health, most recently seen first.
pub async fn list(db: &Db, interval: Duration, now: i64) -> Result<Vec<NodeView>, ServerError> {
    let rows = sqlx::query(
        "SELECT node_id, url, zone, version, capacity, used, free_disk, shards, quarantined,
                ingress_bytes, egress_bytes, uptime_secs, registered_at, last_seen, scrub,
                audit_score, online_score, audits_passed, audits_failed, state, state_reason,
                COALESCE((SELECT p.audit_score FROM node_samples p WHERE p.node_id = nodes.node_id AND p.at <= $1
                          ORDER BY p.at DESC LIMIT 1), audit_score) AS audit_score_before
         FROM nodes ORDER BY last_seen DESC, node_id",
    )
    .bind(now - 3600)
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter()
        .map(|row| {
            let last_seen: i64 = row.try_get("last_seen")?;
            let scrub: String = row.try_get("scrub")?;
            Ok(NodeView {
                node_id: row.try_get("node_id")?,
                url: row.try_get("url")?,
                zone: row.try_get("zone")?,
                version: row.try_get("version")?,
                status: NodeStatus::of(last_seen, now, interval),
                capacity: row.try_get("capacity")?,
                used: row.try_get("used")?,
                free_disk: row.try_get("free_disk")?,
                shards: row.try_get("shards")?,
                quarantined: row.try_get("quarantined")?,
                ingress_bytes: row.try_get("ingress_bytes")?,
                egress_bytes: row.try_get("egress_bytes")?,
                uptime_secs: row.try_get("uptime_secs")?,
                registered_at: row.try_get("registered_at")?,
                last_seen,
                scrub: serde_json::from_str(&scrub).unwrap_or(serde_json::Value::Null),
                audit_score: row.try_get("audit_score")?,
                online_score: row.try_get("online_score")?,
                audit_score_before: row.try_get("audit_score_before")?,
                audits_passed: row.try_get("audits_passed")?,
                audits_failed: row.try_get("audits_failed")?,
                state: row.try_get("state")?,
                state_reason: row.try_get("state_reason")?,
            })
        })
        .collect()
}

/// How many samples a chart gets at most: a day at one a minute.
pub const MAX_SAMPLES: i64 = 24 * 60;

/// Whether a node with this id is registered.
pub async fn known(db: &Db, node_id: &str) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 AS one FROM nodes WHERE node_id = $1")
        .bind(node_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.is_some())
}

/// One node's samples since `since` (unix seconds), oldest first; `None` for an unknown node.
pub async fn samples(db: &Db, node_id: &str, since: i64) -> Result<Option<Vec<NodeSample>>, ServerError> {
    if !known(db, node_id).await? {
        return Ok(None);
    }
    // The newest MAX_SAMPLES, then put back in time order.
    let rows = sqlx::query(
        "SELECT at, capacity, used, shards, ingress_bytes, egress_bytes, audit_score FROM node_samples
         WHERE node_id = $1 AND at >= $2 ORDER BY at DESC LIMIT $3",
    )
    .bind(node_id)
    .bind(since)
    .bind(MAX_SAMPLES)
    .fetch_all(&db.pool)
    .await?;
    let mut out = rows
        .into_iter()
        .map(|r| {
            Ok(NodeSample {
                at: r.try_get("at")?,
                capacity: r.try_get("capacity")?,
                used: r.try_get("used")?,
                shards: r.try_get("shards")?,
                ingress_bytes: r.try_get("ingress_bytes")?,
                egress_bytes: r.try_get("egress_bytes")?,
                audit_score: r.try_get("audit_score")?,
            })
        })
        .collect::<Result<Vec<_>, ServerError>>()?;
    out.reverse();
    Ok(Some(out))
}

/// Corrupt shards reported by nodes, for repair.
pub async fn corrupt_reports(db: &Db) -> Result<Vec<(String, String)>, ServerError> {
    let rows = sqlx::query("SELECT node_id, shard_id FROM corrupt_reports ORDER BY reported_at, node_id, shard_id")
        .fetch_all(&db.pool)
        .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get("node_id")?, r.try_get("shard_id")?)))
        .collect()
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

/// Oldest `last_seen` that still counts as online at `now` (the SQL form of [`NodeStatus::of`]).
pub fn online_since(now: i64, interval: Duration) -> i64 {
    let interval = i64::try_from(interval.as_secs().max(1)).unwrap_or(i64::MAX);
    now.saturating_sub(interval.saturating_mul(NodeStatus::ONLINE_WITHIN))
}

/// A worker that may receive new shards: online, active (neither suspended nor disqualified),
/// with room for at least `min_free` more bytes.
#[derive(Debug, Clone)]
pub struct Writable {
    pub node_id: disktro_core::NodeId,
    pub url: String,
    pub zone: String,
}

/// Workers that may receive new shards now, in node-id order.
pub async fn writable(db: &Db, interval: Duration, now: i64, min_free: i64) -> Result<Vec<Writable>, ServerError> {
    let rows = sqlx::query(
        "SELECT node_id, url, zone FROM nodes WHERE last_seen >= $1 AND capacity - used >= $2 AND state = 'active' \
         ORDER BY node_id",
    )
    .bind(online_since(now, interval))
    .bind(min_free)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get("node_id")?;
            Ok(Writable {
                node_id: id
                    .parse()
                    .map_err(|_| ServerError::internal("a stored node id is not hex"))?,
                url: row.try_get("url")?,
                zone: row.try_get("zone")?,
            })
        })
        .collect()
}

/// Public keys of every registered node, to verify receipts with.
pub async fn keys(db: &Db) -> Result<std::collections::HashMap<disktro_core::NodeId, PublicKey>, ServerError> {
    let rows = sqlx::query("SELECT node_id, public_key FROM nodes")
        .fetch_all(&db.pool)
        .await?;
    let mut out = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("node_id")?;
        let key: String = row.try_get("public_key")?;
        let parse = || -> Option<(disktro_core::NodeId, PublicKey)> {
            Some((id.parse().ok()?, PublicKey(disktro_core::ids::from_hex(&key).ok()?)))
        };
        let (id, key) = parse().ok_or_else(|| ServerError::internal("a stored node key is not hex"))?;
        out.insert(id, key);
    }
    Ok(out)
}
