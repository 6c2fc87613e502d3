//! The node registry (`nodes`), its chart samples (`node_samples`) and the nodes' reputation
//! columns (audit and online scores, state). Health is not stored: it is judged from `last_seen`
//! against a bound `online_since` (see [`crate::nodes::online_since`]).

use std::collections::HashMap;

use disktro_core::NodeId;
use disktro_core::api::node::{Heartbeat, Registration};
use disktro_core::api::{NodeSample, NodeStatus, NodeView};
use disktro_core::keys::PublicKey;
use sqlx::Row as _;

use super::{Db, StoreError, Tx, parse, to_i64};

/// Insert a node, or update the one registered under this id (its key cannot change: the id is
/// derived from it).
pub async fn register(db: &Db, node_id: &str, r: &Registration, now: i64) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO nodes (node_id, public_key, url, zone, version, capacity, registered_at, last_seen, operator)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)
         ON CONFLICT (node_id) DO UPDATE SET
             url = excluded.url, zone = excluded.zone, operator = excluded.operator, version = excluded.version,
             capacity = excluded.capacity, last_seen = excluded.last_seen",
    )
    .bind(node_id)
    .bind(disktro_core::ids::to_hex(r.public_key.as_bytes()))
    .bind(&r.url)
    .bind(&r.zone)
    .bind(&r.version)
    .bind(to_i64(r.capacity))
    .bind(now)
    .bind(&r.operator)
    .execute(&db.pool)
    .await?;
    bump_epoch(&db.pool).await
}

/// The nodes' epoch: a value that changes whenever a node registers or changes state, so a
/// replica's copy of the placeable nodes ([`crate::roster`]) knows when to read them again.
/// `None` before the first change.
pub async fn epoch(db: &Db) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT value FROM settings WHERE name = 'nodes_epoch'")
        .fetch_optional(&db.pool)
        .await?;
    row.map(|r| r.try_get("value").map_err(StoreError::from)).transpose()
}

/// A new [`epoch`] (random, so replicas need not read it to change it).
async fn bump_epoch<'e>(on: impl sqlx::Executor<'e, Database = sqlx::Any>) -> Result<(), StoreError> {
    let fresh = disktro_core::ids::to_hex(&disktro_core::random_bytes::<8>());
    sqlx::query(
        "INSERT INTO settings (name, value) VALUES ('nodes_epoch', $1) \
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )
    .bind(fresh)
    .execute(on)
    .await?;
    Ok(())
}

/// The public key a node registered with; `None` for an unknown node.
pub async fn public_key(db: &Db, node_id: &str) -> Result<Option<PublicKey>, StoreError> {
    let Some(row) = sqlx::query("SELECT public_key FROM nodes WHERE node_id = $1")
        .bind(node_id)
        .fetch_optional(&db.pool)
        .await?
    else {
        return Ok(None);
    };
    let hex: String = row.try_get("public_key")?;
    disktro_core::ids::from_hex::<32>(&hex)
        .map(|k| Some(PublicKey(k)))
        .map_err(|_| StoreError::Corrupt("node key"))
}

/// Take a heartbeat's figures, unless one sent as late or later was already taken (`false`).
/// `scrub` is the scrub report as JSON.
pub async fn record_heartbeat(tx: &mut Tx, beat: &Heartbeat, scrub: &str, now: i64) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE nodes SET url = $2, zone = $3, version = $4, capacity = $5, used = $6, free_disk = $7,
             shards = $8, quarantined = $9, ingress_bytes = $10, egress_bytes = $11, uptime_secs = $12,
             scrub = $13, last_seen = $14, last_sent_at = $15, operator = $16
         WHERE node_id = $1 AND last_sent_at < $15",
    )
    .bind(beat.node_id.to_hex())
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
    .bind(scrub)
    .bind(now)
    .bind(to_i64(beat.sent_at))
    .bind(&beat.operator)
    .execute(&mut **tx)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Keep the heartbeat's figures as the sample of the chart bucket starting at `bucket`, unless
/// that bucket has one already. Whether it was added.
pub async fn add_sample(tx: &mut Tx, beat: &Heartbeat, bucket: i64) -> Result<bool, StoreError> {
    let added = sqlx::query(
        "INSERT INTO node_samples (node_id, at, capacity, used, shards, ingress_bytes, egress_bytes, uptime_secs, audit_score)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, audit_score FROM nodes WHERE node_id = $1
         ON CONFLICT (node_id, at) DO NOTHING",
    )
    .bind(beat.node_id.to_hex())
    .bind(bucket)
    .bind(to_i64(beat.capacity))
    .bind(to_i64(beat.used))
    .bind(to_i64(beat.shards))
    .bind(to_i64(beat.ingress_bytes))
    .bind(to_i64(beat.egress_bytes))
    .bind(to_i64(beat.uptime_secs))
    .execute(&mut **tx)
    .await?;
    Ok(added.rows_affected() == 1)
}

/// Forget the node's samples from before `before` that the rewards have accounted for (their
/// minute ends before the node's `accrued_until`: storage is paid for the minutes a node was
/// seen, [`crate::store::ledger::minutes_seen`]). One node's range of the primary key, so the
/// cost is the rows removed, not the table.
pub async fn prune_samples(tx: &mut Tx, node: &str, before: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "DELETE FROM node_samples WHERE node_id = $1 AND at < $2 \
         AND at <= (SELECT accrued_until FROM nodes WHERE node_id = $1) - $3",
    )
    .bind(node)
    .bind(before)
    .bind(crate::nodes::SAMPLE_EVERY)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// Every node as the dashboard shows it, most recently seen first; `status` judges health from
/// `last_seen`, and the audit score of an hour before `now` comes from the samples.
pub async fn list(db: &Db, now: i64, status: impl Fn(i64) -> NodeStatus) -> Result<Vec<NodeView>, StoreError> {
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
                node_id: parse(&row.try_get::<String, _>("node_id")?, "node id")?,
                url: row.try_get("url")?,
                zone: row.try_get("zone")?,
                version: row.try_get("version")?,
                status: status(last_seen),
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

/// Whether a node with this id is registered.
pub async fn known(db: &Db, node_id: &str) -> Result<bool, StoreError> {
    let row = sqlx::query("SELECT 1 AS one FROM nodes WHERE node_id = $1")
        .bind(node_id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.is_some())
}

/// The newest `limit` samples of a node since `since`, newest first.
pub async fn samples(db: &Db, node_id: &str, since: i64, limit: i64) -> Result<Vec<NodeSample>, StoreError> {
    let rows = sqlx::query(
        "SELECT at, capacity, used, shards, ingress_bytes, egress_bytes, audit_score FROM node_samples
         WHERE node_id = $1 AND at >= $2 ORDER BY at DESC LIMIT $3",
    )
    .bind(node_id)
    .bind(since)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    rows.into_iter()
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
        .collect()
}

/// A node that may receive new shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writable {
    pub node_id: NodeId,
    pub url: String,
    pub zone: String,
    /// Empty: the node is its own operator.
    pub operator: String,
    pub capacity: i64,
    /// Room left as its last heartbeat said: capacity less what it stores.
    pub free: i64,
}

/// Every active node as placement sees it, with when it was last seen, in id order (what
/// [`crate::roster`] keeps).
pub async fn active(db: &Db) -> Result<Vec<(Writable, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT node_id, url, zone, operator, capacity, capacity - used AS free, last_seen FROM nodes \
         WHERE state = 'active' ORDER BY node_id",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| Ok((writable_row(row)?, row.try_get("last_seen")?)))
        .collect()
}

fn writable_row(row: &sqlx::any::AnyRow) -> Result<Writable, StoreError> {
    Ok(Writable {
        node_id: parse(&row.try_get::<String, _>("node_id")?, "node id")?,
        url: row.try_get("url")?,
        zone: row.try_get("zone")?,
        operator: row.try_get("operator")?,
        capacity: row.try_get("capacity")?,
        free: row.try_get("free")?,
    })
}

/// Nodes seen since `online_since`, active, with at least `min_free` bytes of room, in id order.
pub async fn writable(db: &Db, online_since: i64, min_free: i64) -> Result<Vec<Writable>, StoreError> {
    let rows = sqlx::query(
        "SELECT node_id, url, zone, operator, capacity, capacity - used AS free FROM nodes \
         WHERE last_seen >= $1 AND capacity - used >= $2 AND state = 'active' \
         ORDER BY node_id",
    )
    .bind(online_since)
    .bind(min_free)
    .fetch_all(&db.pool)
    .await?;
    rows.iter().map(writable_row).collect()
}

/// A draining node with nothing placed on it any more becomes `exited` (one conditional
/// statement); `true` when it did now.
pub async fn finish_drain(tx: &mut Tx, node_id: &str, now: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE nodes SET state = 'exited', state_reason = 'drained: every shard moved to other nodes', \
         state_since = $2 WHERE node_id = $1 AND state = 'draining' \
         AND NOT EXISTS (SELECT 1 FROM file_shards s WHERE s.node_id = $1)",
    )
    .bind(node_id)
    .bind(now)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if done == 1 {
        bump_epoch(&mut **tx).await?;
    }
    Ok(done == 1)
}

/// Shards placed on the node.
pub async fn placed_count(db: &Db, node_id: &str) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM file_shards WHERE node_id = $1")
        .bind(node_id)
        .fetch_one(&db.pool)
        .await?;
    Ok(row.try_get("n")?)
}

/// Public keys of every registered node.
pub async fn keys(db: &Db) -> Result<HashMap<NodeId, PublicKey>, StoreError> {
    key_map(
        &sqlx::query("SELECT node_id, public_key FROM nodes")
            .fetch_all(&db.pool)
            .await?,
    )
}

/// Public keys of those of `nodes` that are registered: what a commit checks its receipts with
/// (reading every node's key made each commit cost the size of the network).
pub async fn keys_of(db: &Db, nodes: &[NodeId]) -> Result<HashMap<NodeId, PublicKey>, StoreError> {
    if nodes.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT node_id, public_key FROM nodes WHERE node_id IN ({})",
        super::files::placeholders(1, nodes.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for node in nodes {
        query = query.bind(node.to_hex());
    }
    key_map(&query.fetch_all(&db.pool).await?)
}

fn key_map(rows: &[sqlx::any::AnyRow]) -> Result<HashMap<NodeId, PublicKey>, StoreError> {
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: NodeId = parse(&row.try_get::<String, _>("node_id")?, "node id")?;
        let key: String = row.try_get("public_key")?;
        let key = disktro_core::ids::from_hex(&key).map_err(|_| StoreError::Corrupt("node key"))?;
        out.insert(id, PublicKey(key));
    }
    Ok(out)
}

/// Nodes seen since `online_since` and not disqualified, with their addresses, in id order: the
/// ones an audit round challenges.
pub async fn auditable(db: &Db, online_since: i64) -> Result<Vec<(NodeId, String)>, StoreError> {
    let rows = sqlx::query(
        "SELECT node_id, url FROM nodes WHERE last_seen >= $1 AND state <> 'disqualified' ORDER BY node_id",
    )
    .bind(online_since)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                parse(&row.try_get::<String, _>("node_id")?, "node id")?,
                row.try_get("url")?,
            ))
        })
        .collect()
}

/// A node's reputation columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub node_id: String,
    pub state: String,
    pub audit_score: i64,
    pub audits_passed: i64,
    pub audits_failed: i64,
    pub online_score: i64,
    /// When the online score was last brought up to date (0: never).
    pub online_checked_at: i64,
    pub last_seen: i64,
    /// When the node entered its current state.
    pub state_since: i64,
}

fn standing_of(row: &sqlx::any::AnyRow) -> Result<Standing, StoreError> {
    Ok(Standing {
        node_id: row.try_get("node_id")?,
        state: row.try_get("state")?,
        audit_score: row.try_get("audit_score")?,
        audits_passed: row.try_get("audits_passed")?,
        audits_failed: row.try_get("audits_failed")?,
        online_score: row.try_get("online_score")?,
        online_checked_at: row.try_get("online_checked_at")?,
        last_seen: row.try_get("last_seen")?,
        state_since: row.try_get("state_since")?,
    })
}

/// The columns of [`Standing`]; a macro so that statements are built by `concat!` at compile time.
macro_rules! select_standing {
    () => {
        "SELECT node_id, state, audit_score, audits_passed, audits_failed, online_score, online_checked_at, \
         last_seen, state_since FROM nodes"
    };
}

/// One node's standing, read inside the transaction that will change it.
pub async fn standing(tx: &mut Tx, node_id: &str) -> Result<Option<Standing>, StoreError> {
    let row = sqlx::query(concat!(select_standing!(), " WHERE node_id = $1"))
        .bind(node_id)
        .fetch_optional(&mut **tx)
        .await?;
    row.as_ref().map(standing_of).transpose()
}

/// Every node's standing, in id order.
pub async fn standings(db: &Db) -> Result<Vec<Standing>, StoreError> {
    let rows = sqlx::query(concat!(select_standing!(), " ORDER BY node_id"))
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(standing_of).collect()
}

pub async fn set_audit_score(
    tx: &mut Tx,
    node_id: &str,
    score: i64,
    passed: i64,
    failed: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE nodes SET audit_score = $2, audits_passed = $3, audits_failed = $4 WHERE node_id = $1")
        .bind(node_id)
        .bind(score)
        .bind(passed)
        .bind(failed)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_online_score(tx: &mut Tx, node_id: &str, score: i64, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE nodes SET online_score = $2, online_checked_at = $3 WHERE node_id = $1")
        .bind(node_id)
        .bind(score)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Put a node in `state` ('active', 'suspended' or 'disqualified') for `reason`.
pub async fn set_state(tx: &mut Tx, node_id: &str, state: &str, reason: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE nodes SET state = $2, state_reason = $3, state_since = $4 WHERE node_id = $1")
        .bind(node_id)
        .bind(state)
        .bind(reason)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    bump_epoch(&mut **tx).await
}
