//! The operators' ledger (`ledger`, append-only, hash-chained by [`crate::rewards`]) and the
//! egress claims it settles (`egress_claims`: one row per get token a worker has claimed for).

use sqlx::Row as _;

use super::{Db, StoreError, Tx, to_i64};
use crate::rewards::{DailyEarnings, Entry};

/// A get token a worker claims for, as the server signed it: serial, worker, budget, expiry, and
/// the key its reader's orders verify against (hex; empty when it named none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub serial: String,
    pub node: String,
    pub budget: u64,
    pub expires_at: u64,
    pub order_key: String,
}

/// Open the claim row of a token a worker presented (its signature checked by the caller); a
/// serial already open is kept as it is.
pub async fn open_claim(tx: &mut Tx, c: &Claim) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO egress_claims (serial, node_id, budget, expires_at, order_key) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (serial) DO NOTHING",
    )
    .bind(&c.serial)
    .bind(&c.node)
    .bind(to_i64(c.budget))
    .bind(to_i64(c.expires_at))
    .bind(&c.order_key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The order key of the open, unpaid claim of `serial` by `node` (hex), if there is one.
pub async fn order_key(tx: &mut Tx, serial: &str, node: &str) -> Result<Option<String>, StoreError> {
    let row = sqlx::query("SELECT order_key FROM egress_claims WHERE serial = $1 AND node_id = $2 AND paid = 0")
        .bind(serial)
        .bind(node)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.map(|r| r.try_get("order_key")).transpose()?)
}

/// Raise the bytes claimed under `serial` by `node` to `bytes` (capped by its budget), if the
/// serial was issued to that node, is unpaid and the figure grows. `true` when taken.
pub async fn raise_claim(tx: &mut Tx, serial: &str, node: &str, bytes: u64) -> Result<bool, StoreError> {
    let bytes = to_i64(bytes);
    let taken = sqlx::query(
        "UPDATE egress_claims SET bytes = CASE WHEN $3 > budget THEN budget ELSE $3 END \
         WHERE serial = $1 AND node_id = $2 AND paid = 0 AND bytes < $3 AND bytes < budget",
    )
    .bind(serial)
    .bind(node)
    .bind(bytes)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(taken == 1)
}

/// Raise the bytes `node` says it served under `serial` to `served` (capped by the budget), if
/// the serial was issued to that node and is unpaid: not what is paid, only what judges a share
/// link's unreported download ([`super::shares`]).
pub async fn raise_served(tx: &mut Tx, serial: &str, node: &str, served: u64) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE egress_claims SET served = CASE WHEN $3 > budget THEN budget ELSE $3 END \
         WHERE serial = $1 AND node_id = $2 AND paid = 0 AND served < $3",
    )
    .bind(serial)
    .bind(node)
    .bind(to_i64(served))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// An unpaid claim whose token has expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settleable {
    pub serial: String,
    pub node: String,
    pub bytes: i64,
    pub expires_at: i64,
}

/// Unpaid claims of tokens expired at or before `expired_by`, oldest first.
/// Up to `limit` unpaid claims whose tokens expired by `expired_by`, the oldest first.
pub async fn settleable(tx: &mut Tx, expired_by: i64, limit: i64) -> Result<Vec<Settleable>, StoreError> {
    let rows = sqlx::query(
        "SELECT serial, node_id, bytes, expires_at FROM egress_claims WHERE paid = 0 AND expires_at <= $1 \
         ORDER BY expires_at, serial LIMIT $2",
    )
    .bind(expired_by)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Settleable {
                serial: r.try_get("serial")?,
                node: r.try_get("node_id")?,
                bytes: r.try_get("bytes")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .collect()
}

pub async fn mark_paid(tx: &mut Tx, serial: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE egress_claims SET paid = 1 WHERE serial = $1")
        .bind(serial)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Drop paid claims of tokens expired at or before `expired_by` (the ledger has them).
pub async fn prune_paid(tx: &mut Tx, expired_by: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM egress_claims WHERE paid = 1 AND expires_at <= $1")
        .bind(expired_by)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A node as the storage accrual sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accruing {
    pub node: String,
    /// Storage is paid up to this time (0: never).
    pub accrued_until: i64,
    pub state: String,
}

/// Up to `limit` nodes after node id `after` ("" for the first), in node id order.
pub async fn accruing(tx: &mut Tx, after: &str, limit: i64) -> Result<Vec<Accruing>, StoreError> {
    let rows =
        sqlx::query("SELECT node_id, accrued_until, state FROM nodes WHERE node_id > $1 ORDER BY node_id LIMIT $2")
            .bind(after)
            .bind(limit)
            .fetch_all(&mut **tx)
            .await?;
    rows.iter()
        .map(|r| {
            Ok(Accruing {
                node: r.try_get("node_id")?,
                accrued_until: r.try_get("accrued_until")?,
                state: r.try_get("state")?,
            })
        })
        .collect()
}

pub async fn set_accrued_until(tx: &mut Tx, node: &str, until: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE nodes SET accrued_until = $2 WHERE node_id = $1")
        .bind(node)
        .bind(until)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The node's chart samples (one per minute in which it sent a heartbeat,
/// [`crate::nodes::SAMPLE_EVERY`]) whose minute overlaps [`from`, `to`).
pub async fn minutes_seen(tx: &mut Tx, node: &str, from: i64, to: i64) -> Result<i64, StoreError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM node_samples WHERE node_id = $1 AND at > $2 AND at < $3")
        .bind(node)
        .bind(from - crate::nodes::SAMPLE_EVERY)
        .bind(to)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get("n")?)
}

/// Bytes of each node's shards reported lost there (`corrupt_reports`), by node: what its
/// placed bytes count that it is not paid for.
pub async fn reported_bytes(db: &Db) -> Result<Vec<(String, i64)>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.node_id, CAST(SUM(s.size) AS BIGINT) AS bytes FROM corrupt_reports c \
         JOIN file_shards s ON s.node_id = c.node_id AND s.shard_id = c.shard_id GROUP BY c.node_id",
    )
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("node_id")?, r.try_get("bytes")?)))
        .collect()
}

/// The newest entry's sequence number and hash; `None` for an empty ledger.
pub async fn head(tx: &mut Tx) -> Result<Option<(i64, String)>, StoreError> {
    let row = sqlx::query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|r| Ok((r.try_get("seq")?, r.try_get("hash")?))).transpose()
}

/// Write `e` as it is (its hashes already set).
pub async fn insert(conn: &mut sqlx::AnyConnection, e: &Entry) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO ledger (seq, node_id, kind, period_start, period_end, quantity, amount, reference, created_at, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(e.seq)
    .bind(&e.node_id)
    .bind(&e.kind)
    .bind(e.period_start)
    .bind(e.period_end)
    .bind(e.quantity)
    .bind(e.amount)
    .bind(&e.reference)
    .bind(e.created_at)
    .bind(&e.prev_hash)
    .bind(&e.hash)
    .execute(conn)
    .await?;
    Ok(())
}

macro_rules! select_entry {
    () => {
        "SELECT seq, node_id, kind, period_start, period_end, quantity, amount, reference, created_at, prev_hash, hash \
         FROM ledger"
    };
}

fn entry_of(r: &sqlx::any::AnyRow) -> Result<Entry, StoreError> {
    Ok(Entry {
        seq: r.try_get("seq")?,
        node_id: r.try_get("node_id")?,
        kind: r.try_get("kind")?,
        period_start: r.try_get("period_start")?,
        period_end: r.try_get("period_end")?,
        quantity: r.try_get("quantity")?,
        amount: r.try_get("amount")?,
        reference: r.try_get("reference")?,
        created_at: r.try_get("created_at")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

/// Entry `seq`, if there is one.
pub async fn entry(db: &Db, seq: i64) -> Result<Option<Entry>, StoreError> {
    let row = sqlx::query(concat!(select_entry!(), " WHERE seq = $1"))
        .bind(seq)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(entry_of).transpose()
}

/// Up to `limit` entries from `from_seq` on, in order.
pub async fn page(db: &Db, from_seq: i64, limit: i64) -> Result<Vec<Entry>, StoreError> {
    let rows = sqlx::query(concat!(select_entry!(), " WHERE seq >= $1 ORDER BY seq LIMIT $2"))
        .bind(from_seq)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter().map(entry_of).collect()
}

/// A node's earnings per day (by the end of each entry's period), newest first, at most `days`.
pub async fn earnings(db: &Db, node: &str, days: i64) -> Result<Vec<DailyEarnings>, StoreError> {
    let rows = sqlx::query(
        "SELECT period_end - (period_end % 86400) AS day, \
             CAST(SUM(CASE WHEN kind = 'storage' THEN quantity ELSE 0 END) AS BIGINT) AS storage, \
             CAST(SUM(CASE WHEN kind = 'egress' THEN quantity ELSE 0 END) AS BIGINT) AS egress, \
             CAST(SUM(amount) AS BIGINT) AS amount \
         FROM ledger WHERE node_id = $1 GROUP BY period_end - (period_end % 86400) ORDER BY day DESC LIMIT $2",
    )
    .bind(node)
    .bind(days)
    .fetch_all(&db.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DailyEarnings {
                day: r.try_get("day")?,
                storage_byte_seconds: r.try_get("storage")?,
                egress_bytes: r.try_get("egress")?,
                amount: r.try_get("amount")?,
            })
        })
        .collect()
}
