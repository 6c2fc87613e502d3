//! Operators' rewards and the append-only ledger.
//!
//! - **Storage**: each rewards pass credits every node that is not disqualified with the bytes of
//!   the healthy-on-record shards placed on it × the seconds of the period it was present
//!   (byte-seconds), unless an audit of the node failed in that period: the period is then
//!   forfeited. Presence is counted in the minutes in which it sent a heartbeat (its chart
//!   samples, a minute each, at most the period): a node that is away is not paid for storing
//!   what it cannot serve.
//! - **Egress** is paid on evidence from the reader. Issuing get tokens records nothing (a read
//!   never writes); each get token names the order key of the download it was issued to, and
//!   the reader signs orders ([`disktro_core::order`]) for the bytes it received under each
//!   token, which it hands the worker. Workers claim in heartbeats with the largest order of
//!   each serial, and the first claim for a serial carries the token itself: the server checks
//!   its own signature, that the token is a get token issued to that worker, and that its claims
//!   are still open (before expiry plus [`CLAIM_GRACE`]), then opens the serial's row
//!   (`egress_claims`) with the token's budget, expiry and order key. An order raises the
//!   serial's figure only if it verifies against that key and names that worker and serial; what
//!   the worker says it served counts for nothing. The figure is capped by the budget, and a
//!   serial is paid once, in the first pass after its token expired plus [`CLAIM_GRACE`] (when
//!   it can no longer grow); a token presented after that is refused, so a paid serial cannot be
//!   opened again.
//!
//! Rates: storage $1.50 per TB-month (30 days), egress $2 per TB, in picodollars:
//! `floor(byte_seconds × 15 / 25,920,000)` and `bytes × 2`.
//!
//! **The ledger** (`ledger` table) is append-only by construction: entry `seq` carries the hash
//! of entry `seq − 1`, and its own hash is BLAKE3 (derived key "disktro ledger v1") over every
//! field and that previous hash. [`verify`] recomputes the chain, so changing, removing or
//! reordering any row is detected; only the lease holder of the `rewards` job appends.

use disktro_core::Serial;
use disktro_core::keys::PublicKey;
use disktro_core::order::Order;
use disktro_core::token::{Operation, Token};

use crate::db::Db;
use crate::durability::error::JobError;
use crate::store::{self, StoreError, Tx, ledger};
pub use disktro_core::api::{DailyEarnings, LedgerCheck};
use serde::Serialize;

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

/// Take a worker's claims: its readers' orders per serial (totals, capped by the budget), and its
/// own count of what it served (not paid). A claim opens its serial when it carries a get token
/// signed by `issuer` for this worker and is early enough; a claim for a serial not open (no
/// token, a forged one, another worker's, too late) or already paid is ignored, and so is an
/// order that does not verify against the token's order key. Returns the orders taken.
pub async fn record_claims(
    db: &Db,
    issuer: &PublicKey,
    node: &str,
    claims: &[disktro_core::api::node::EgressClaim],
    now: i64,
) -> Result<u64, StoreError> {
    if claims.is_empty() {
        return Ok(0);
    }
    let mut taken = 0;
    let mut tx = db.begin_write().await?;
    for c in claims {
        let serial = c.serial.to_hex();
        let order_key = if let Some(bytes) = &c.token {
            match claimable(bytes, issuer, node, &c.serial, now) {
                Some(token) => {
                    let claim = ledger::Claim {
                        serial: serial.clone(),
                        node: node.to_owned(),
                        budget: token.byte_budget,
                        expires_at: token.expires_at,
                        order_key: token
                            .order_key
                            .map(|k| disktro_core::ids::to_hex(k.as_bytes()))
                            .unwrap_or_default(),
                    };
                    ledger::open_claim(&mut tx, &claim).await?;
                    // A serial opened before keeps the key it was opened with.
                    ledger::order_key(&mut tx, &serial, node).await?
                }
                None => {
                    tracing::warn!(node, serial, "an egress claim carried a token that does not stand");
                    continue;
                }
            }
        } else {
            ledger::order_key(&mut tx, &serial, node).await?
        };
        // No open, unpaid claim of this serial by this worker: nothing to raise.
        let Some(order_key) = order_key else { continue };
        ledger::raise_served(&mut tx, &serial, node, c.served).await?;
        let Some(order) = &c.order else { continue };
        let Some(bytes) = ordered(order, &order_key, node, &c.serial) else {
            tracing::warn!(node, serial, "an egress claim's order does not verify for its token");
            continue;
        };
        taken += u64::from(ledger::raise_claim(&mut tx, &serial, node, bytes).await?);
    }
    tx.commit().await?;
    Ok(taken)
}

/// The bytes `order` says were received, if it verifies against the claim's order key (hex) and
/// names this worker and serial.
fn ordered(order: &[u8], key: &str, node: &str, serial: &Serial) -> Option<u64> {
    let key = PublicKey(disktro_core::ids::from_hex::<32>(key).ok()?);
    let order = Order::verify(order, &key).ok()?;
    (order.worker.to_hex() == node && order.serial == *serial).then_some(order.bytes)
}

/// The get token in `bytes`, if it is signed by `issuer`, issued to `node` under `serial`, and
/// its claims are still open at `now`.
fn claimable(bytes: &[u8], issuer: &PublicKey, node: &str, serial: &Serial, now: i64) -> Option<Token> {
    let token = Token::decode(bytes).ok()?;
    let open_until = i64::try_from(token.expires_at).ok()?.saturating_add(CLAIM_GRACE);
    (token.issuer == *issuer
        && token.operation == Operation::Get
        && token.worker.to_hex() == node
        && token.serial == *serial
        && now < open_until)
        .then_some(token)
}

/// Write `e` as it is (its hashes already set). Only [`accrue`] appends; tests use this to put
/// back a row they removed.
pub async fn insert(conn: &mut sqlx::AnyConnection, e: &Entry) -> Result<(), StoreError> {
    ledger::insert(conn, e).await
}

async fn append(tx: &mut Tx, head: &mut (i64, String), mut e: Entry) -> Result<(), StoreError> {
    e.seq = head.0 + 1;
    e.prev_hash = head.1.clone();
    e.hash = e.compute_hash();
    ledger::insert(tx, &e).await?;
    *head = (e.seq, e.hash);
    Ok(())
}

/// Nodes accrued per write transaction, and claims settled per write transaction: a pass over
/// 1,000 workers in one transaction held SQLite's one writer for seconds (every heartbeat and
/// upload of the network waited; `make bench-scale`). Each batch moves its nodes'
/// `accrued_until` (or marks its claims paid) together with their entries, so a pass cut off
/// after any batch leaves nothing paid twice or skipped: the next pass takes up the rest.
const NODES_PER_TX: i64 = 50;
const CLAIMS_PER_TX: i64 = 500;

/// One rewards pass at `now`: storage up to `now`, egress of tokens expired long enough.
pub async fn accrue(db: &Db, now: i64) -> Result<Accrued, JobError> {
    let mut out = Accrued::default();
    // What each node holds on record: its placed bytes less those of its shards reported lost
    // (the per-node totals and the reports, not a sum over every shard it holds).
    let mut held: std::collections::HashMap<String, i64> = store::placed::totals(db)
        .await?
        .into_iter()
        .map(|(node, (_, bytes))| (node.to_hex(), bytes))
        .collect();
    for (node, lost) in ledger::reported_bytes(db).await? {
        *held.entry(node).or_default() -= lost;
    }
    let mut after = String::new();
    loop {
        let mut tx = db.begin_write().await?;
        let mut head = ledger::head(&mut tx).await?.unwrap_or_else(|| (0, GENESIS.to_owned()));
        let batch = ledger::accruing(&mut tx, &after, NODES_PER_TX).await?;
        for n in &batch {
            let held = held.get(&n.node).copied().unwrap_or(0);
            out.storage_entries += accrue_storage(&mut tx, &mut head, n, held, now).await?;
        }
        tx.commit().await?;
        match batch.last() {
            Some(last) if batch.len() as i64 == NODES_PER_TX => after.clone_from(&last.node),
            _ => break,
        }
    }
    loop {
        let mut tx = db.begin_write().await?;
        let mut head = ledger::head(&mut tx).await?.unwrap_or_else(|| (0, GENESIS.to_owned()));
        let batch = ledger::settleable(&mut tx, now - CLAIM_GRACE, CLAIMS_PER_TX).await?;
        for c in &batch {
            if c.bytes > 0 {
                let entry = Entry {
                    seq: 0,
                    node_id: c.node.clone(),
                    kind: "egress".to_owned(),
                    period_start: c.expires_at - i64::try_from(crate::grants::GET_TOKEN_TTL.as_secs()).unwrap_or(0),
                    period_end: c.expires_at,
                    quantity: c.bytes,
                    amount: egress_amount(c.bytes),
                    reference: c.serial.clone(),
                    created_at: now,
                    prev_hash: String::new(),
                    hash: String::new(),
                };
                append(&mut tx, &mut head, entry).await?;
                out.egress_entries += 1;
            }
            ledger::mark_paid(&mut tx, &c.serial).await?;
        }
        tx.commit().await?;
        if (batch.len() as i64) < CLAIMS_PER_TX {
            break;
        }
    }
    // Paid or unused claims are kept a day for the record, then dropped (the ledger has them).
    let mut tx = db.begin_write().await?;
    ledger::prune_paid(&mut tx, now - 24 * 3600).await?;
    tx.commit().await?;
    Ok(out)
}

/// Node `n`'s storage of `held` bytes from its `accrued_until` to `now`, appended after `head` unless it is
/// disqualified, failed an audit in the period, held nothing or was away throughout; its
/// `accrued_until` moves to `now` either way. The entries appended (0 or 1).
async fn accrue_storage(
    tx: &mut Tx,
    head: &mut (i64, String),
    n: &ledger::Accruing,
    held: i64,
    now: i64,
) -> Result<u64, JobError> {
    let start = n.accrued_until;
    if start >= now {
        return Ok(0);
    }
    let mut appended = 0;
    if start > 0 && n.state != crate::durability::reputation::DISQUALIFIED {
        let failed = store::audits::failures_between(tx, &n.node, start, now).await?;
        let seen = ledger::minutes_seen(tx, &n.node, start, now)
            .await?
            .saturating_mul(crate::nodes::SAMPLE_EVERY)
            .min(now - start);
        if failed == 0 && held > 0 && seen > 0 {
            let quantity = held.saturating_mul(seen);
            let entry = Entry {
                seq: 0,
                node_id: n.node.clone(),
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
            append(tx, head, entry).await?;
            appended = 1;
        }
    }
    ledger::set_accrued_until(tx, &n.node, now).await?;
    Ok(appended)
}

/// Entry `seq`, if there is one.
pub async fn entry(db: &Db, seq: i64) -> Result<Option<Entry>, StoreError> {
    ledger::entry(db, seq).await
}

/// Walk the whole chain.
pub async fn verify(db: &Db) -> Result<LedgerCheck, StoreError> {
    const PAGE: i64 = 10_000;
    let mut expected_seq = 1;
    let mut prev = GENESIS.to_owned();
    let mut entries = 0;
    loop {
        let page = ledger::page(db, expected_seq, PAGE).await?;
        let done = (page.len() as i64) < PAGE;
        for e in page {
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
pub async fn earnings(db: &Db, node: &str, days: i64) -> Result<Vec<DailyEarnings>, StoreError> {
    ledger::earnings(db, node, days).await
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
