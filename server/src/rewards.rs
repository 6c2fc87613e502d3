//! Operators' rewards and the append-only ledger.
//!
//! - **Storage**: each rewards pass credits every node that is not disqualified with the bytes of
//!   the healthy-on-record shards placed on it × the seconds since its last pass (byte-seconds),
//!   unless an audit of the node failed in that period: the period is then forfeited.
//! - **Egress**: every get token the server issues is recorded with its worker and byte budget
//!   (`egress_claims`); workers report the bytes they served under each serial in heartbeats;
//!   the figure is capped by the budget, and a serial is paid once, in the first pass after its
//!   token expired plus [`CLAIM_GRACE`] (when it can no longer grow).
//!
//! Rates: storage $1.50 per TB-month (30 days), egress $2 per TB, in picodollars:
//! `floor(byte_seconds × 15 / 25,920,000)` and `bytes × 2`.
//!
//! **The ledger** (`ledger` table) is append-only by construction: entry `seq` carries the hash
//! of entry `seq − 1`, and its own hash is BLAKE3 (derived key "disktro ledger v1") over every
//! field and that previous hash. [`verify`] recomputes the chain, so changing, removing or
//! reordering any row is detected; only the lease holder of the `rewards` job appends.

pub use disktro_core::api::{DailyEarnings, LedgerCheck};
use serde::Serialize;
use sqlx::Row as _;

use crate::db::Db;
use crate::durability::error::JobError;

/// Claims are settled this long after their token expired.
pub const CLAIM_GRACE: i64 = 5 * 60;
/// The `prev_hash` of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Picodollars for `byte_seconds` of storage.
pub fn storage_amount(byte_seconds: i64) -> i64 {
    i64::try_from(i128::from(byte_seconds) * 15 / 25_920_000).unwrap_or(i64::MAX)
}

/// Picodollars for `bytes` of egress.
pub fn egress_amount(bytes: i64) -> i64 {
    bytes.saturating_mul(2)
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub seq: i64,
    pub node_id: String,
    /// `storage` (quantity in byte-seconds) or `egress` (bytes).
    pub kind: String,
    pub period_start: i64,
    pub period_end: i64,
    pub quantity: i64,
    /// Picodollars.
    pub amount: i64,
    /// The token serial of an egress entry; empty for storage.
    pub reference: String,
    pub created_at: i64,
    pub prev_hash: String,
    pub hash: String,
}

impl Entry {
    /// The hash this entry must carry.
    pub fn compute_hash(&self) -> String {
        let mut h = blake3::Hasher::new_derive_key("disktro ledger v1");
        h.update(&self.seq.to_be_bytes());
        for text in [&self.node_id, &self.kind] {
            h.update(&(text.len() as u64).to_be_bytes());
            h.update(text.as_bytes());
        }
        for n in [self.period_start, self.period_end, self.quantity, self.amount] {
            h.update(&n.to_be_bytes());
        }
        h.update(&(self.reference.len() as u64).to_be_bytes());
        h.update(self.reference.as_bytes());
        h.update(&self.created_at.to_be_bytes());
        h.update(self.prev_hash.as_bytes());
        h.finalize().to_hex().to_string()
    }
}

/// What [`accrue`] appended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accrued {
    pub storage_entries: u64,
    pub egress_entries: u64,
}

/// Record issued get tokens (serial, worker, budget, expiry), so claims can be capped and paid.
pub async fn record_issued(db: &Db, issued: &[crate::grants::Issued]) -> Result<(), sqlx::Error> {
    if issued.is_empty() {
        return Ok(());
    }
    let mut tx = db.begin_write().await?;
    for i in issued {
        sqlx::query(
            "INSERT INTO egress_claims (serial, node_id, budget, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (serial) DO NOTHING",
        )
        .bind(i.serial.to_hex())
        .bind(i.node.to_hex())
        .bind(i64::try_from(i.budget).unwrap_or(i64::MAX))
        .bind(i64::try_from(i.expires_at).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// Take a worker's claims: the bytes it served per serial (totals, capped by the budget; a
/// serial issued to another worker, unknown or already paid is ignored). Returns claims taken.
pub async fn record_claims(
    db: &Db,
    node: &str,
    claims: &[disktro_core::api::node::EgressClaim],
) -> Result<u64, sqlx::Error> {
    if claims.is_empty() {
        return Ok(0);
    }
    let mut taken = 0;
    let mut tx = db.begin_write().await?;
    for c in claims {
        let bytes = i64::try_from(c.bytes).unwrap_or(i64::MAX);
        taken += sqlx::query(
            "UPDATE egress_claims SET bytes = CASE WHEN $3 > budget THEN budget ELSE $3 END \
             WHERE serial = $1 AND node_id = $2 AND paid = 0 AND bytes < $3 AND bytes < budget",
        )
        .bind(&c.serial)
        .bind(node)
        .bind(bytes)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    }
    tx.commit().await?;
    Ok(taken)
}

async fn last(tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<(i64, String), sqlx::Error> {
    let row = sqlx::query("SELECT seq, hash FROM ledger ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        Some(r) => Ok((r.try_get("seq")?, r.try_get("hash")?)),
        None => Ok((0, GENESIS.to_owned())),
    }
}

/// Write `e` as it is (its hashes already set). Only [`accrue`] appends; tests use this to put
/// back a row they removed.
pub async fn insert(conn: &mut sqlx::AnyConnection, e: &Entry) -> Result<(), sqlx::Error> {
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

async fn append(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    head: &mut (i64, String),
    mut e: Entry,
) -> Result<(), sqlx::Error> {
    e.seq = head.0 + 1;
    e.prev_hash = head.1.clone();
    e.hash = e.compute_hash();
    insert(tx, &e).await?;
    *head = (e.seq, e.hash);
    Ok(())
}

/// One rewards pass at `now`: storage up to `now`, egress of tokens expired long enough.
pub async fn accrue(db: &Db, now: i64) -> Result<Accrued, JobError> {
    let mut out = Accrued::default();
    let mut tx = db.begin_write().await?;
    let mut head = last(&mut tx).await?;
    let nodes = sqlx::query("SELECT node_id, accrued_until, state FROM nodes ORDER BY node_id")
        .fetch_all(&mut *tx)
        .await?;
    for n in nodes {
        let node: String = n.try_get("node_id")?;
        let start: i64 = n.try_get("accrued_until")?;
        let state: String = n.try_get("state")?;
        if start > 0 && now > start && state != crate::durability::reputation::DISQUALIFIED {
            let failed: i64 = sqlx::query(
                "SELECT COUNT(*) AS n FROM audits WHERE node_id = $1 AND at > $2 AND at <= $3 AND outcome = 'fail'",
            )
            .bind(&node)
            .bind(start)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
            let held: i64 = sqlx::query(
                "SELECT CAST(COALESCE(SUM(s.size), 0) AS BIGINT) AS held FROM file_shards s WHERE s.node_id = $1 AND NOT EXISTS \
                 (SELECT 1 FROM corrupt_reports c WHERE c.node_id = s.node_id AND c.shard_id = s.shard_id)",
            )
            .bind(&node)
            .fetch_one(&mut *tx)
            .await?
            .try_get("held")?;
            if failed == 0 && held > 0 {
                let quantity = held.saturating_mul(now - start);
                let entry = Entry {
                    seq: 0,
                    node_id: node.clone(),
                    kind: "storage".to_owned(),
                    period_start: start,
                    period_end: now,
                    quantity,
                    amount: storage_amount(quantity),
                    reference: String::new(),
                    created_at: now,
                    prev_hash: String::new(),
                    hash: String::new(),
                };
                append(&mut tx, &mut head, entry).await?;
                out.storage_entries += 1;
            }
        }
        if now > start {
            sqlx::query("UPDATE nodes SET accrued_until = $2 WHERE node_id = $1")
                .bind(&node)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
    }
    let settled = sqlx::query(
        "SELECT serial, node_id, bytes, expires_at FROM egress_claims WHERE paid = 0 AND expires_at <= $1 \
         ORDER BY expires_at, serial",
    )
    .bind(now - CLAIM_GRACE)
    .fetch_all(&mut *tx)
    .await?;
    for c in settled {
        let bytes: i64 = c.try_get("bytes")?;
        let serial: String = c.try_get("serial")?;
        if bytes > 0 {
            let expires_at: i64 = c.try_get("expires_at")?;
            let entry = Entry {
                seq: 0,
                node_id: c.try_get("node_id")?,
                kind: "egress".to_owned(),
                period_start: expires_at - i64::try_from(crate::grants::GET_TOKEN_TTL.as_secs()).unwrap_or(0),
                period_end: expires_at,
                quantity: bytes,
                amount: egress_amount(bytes),
                reference: serial.clone(),
                created_at: now,
                prev_hash: String::new(),
                hash: String::new(),
            };
            append(&mut tx, &mut head, entry).await?;
            out.egress_entries += 1;
        }
        sqlx::query("UPDATE egress_claims SET paid = 1 WHERE serial = $1")
            .bind(&serial)
            .execute(&mut *tx)
            .await?;
    }
    // Paid or unused claims are kept a day for the record, then dropped (the ledger has them).
    sqlx::query("DELETE FROM egress_claims WHERE paid = 1 AND expires_at <= $1")
        .bind(now - 24 * 3600)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(out)
}

fn entry_of(r: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
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
pub async fn entry(db: &Db, seq: i64) -> Result<Option<Entry>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM ledger WHERE seq = $1")
        .bind(seq)
        .fetch_optional(&db.pool)
        .await?;
    row.as_ref().map(entry_of).transpose()
}

/// Walk the whole chain.
pub async fn verify(db: &Db) -> Result<LedgerCheck, sqlx::Error> {
    const PAGE: i64 = 10_000;
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    let mut entries = 0;
    loop {
        let rows = sqlx::query(
            "SELECT seq, node_id, kind, period_start, period_end, quantity, amount, reference, created_at, prev_hash, hash \
             FROM ledger WHERE seq >= $1 ORDER BY seq LIMIT $2",
        )
        .bind(expected_seq)
        .bind(PAGE)
        .fetch_all(&db.pool)
        .await?;
        let done = (rows.len() as i64) < PAGE;
        for r in &rows {
            let e = entry_of(r)?;
            let problem = if e.seq != expected_seq {
                Some(format!("entry {expected_seq} is missing"))
            } else if e.prev_hash != prev {
                Some("its previous hash does not match the entry before it".to_owned())
            } else if e.hash != e.compute_hash() {
                Some("its contents do not match its hash".to_owned())
            } else {
                None
            };
            if let Some(problem) = problem {
                return Ok(LedgerCheck {
                    entries,
                    valid: false,
                    first_bad_seq: Some(expected_seq.min(e.seq)),
                    problem: Some(problem),
                    head: prev,
                });
            }
            prev = e.hash;
            expected_seq += 1;
            entries += 1;
        }
        if done {
            break;
        }
    }
    Ok(LedgerCheck {
        entries,
        valid: true,
        first_bad_seq: None,
        problem: None,
        head: prev,
    })
}

/// A node's earnings per day (by the end of each entry's period), newest first, at most `days`.
pub async fn earnings(db: &Db, node: &str, days: i64) -> Result<Vec<DailyEarnings>, sqlx::Error> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_as_documented() {
        // 1 TB for 30 days is $1.50; 1 TB out is $2.
        assert_eq!(storage_amount(1_000_000_000_000 * 2_592_000), 1_500_000_000_000);
        assert_eq!(egress_amount(1_000_000_000_000), 2_000_000_000_000);
    }
}
