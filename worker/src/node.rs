//! One running worker's shared state: its store, identity, token admission, limits, traffic
//! counters, the memory budget ([`crate::memory`]), and what waits for the next
//! heartbeat: corrupt shards to report and egress to claim (the largest order each get token's
//! reader signed, [`disktro_core::order`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use disktro_core::keys::{Keypair, PublicKey};
use std::collections::HashMap;

use disktro_core::api::node::{MAX_CLAIM_TOKEN_BYTES, MAX_CLAIMS_PER_HEARTBEAT};
use disktro_core::{NodeId, Serial, ShardId};

use crate::admission::Admission;
use crate::config::Limits;
use crate::memory::Memory;
use crate::scrub::ScrubStatus;
use crate::store::ShardStore;

/// Corrupt shards remembered for the next heartbeat; beyond this the oldest are dropped (the
/// scrubber and the server's audits find them again).
const MAX_PENDING_REPORTS: usize = 10_000;

/// Orders are still taken this long after their token expired: a reader signs its last order
/// when its download ends, and the server takes claims up to five minutes after expiry too.
pub const ORDER_GRACE: u64 = 5 * 60;

/// What was served under one get token: the bytes by this worker's count, the reader's largest
/// order for it, and how much of each the server has acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Served {
    bytes: u64,
    reported_bytes: u64,
    /// Bytes the reader's largest order says it received (0: no order yet).
    ordered: u64,
    order: Option<Arc<[u8]>>,
    reported: u64,
    expires_at: u64,
    /// The key the reader signs its orders with (from the token).
    order_key: Option<PublicKey>,
    /// The token, sent with the claims until a heartbeat carrying it is answered (the server
    /// opens the serial's claim from it); then `None`.
    token: Option<Arc<[u8]>>,
}

/// A claim for the next heartbeat: the bytes served under a serial so far, the reader's largest
/// order for them, and the token when the server has not had it yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingClaim {
    pub serial: Serial,
    pub served: u64,
    /// What the order says was received, in all (0: no order).
    pub ordered: u64,
    pub order: Option<Arc<[u8]>>,
    pub token: Option<Arc<[u8]>>,
}

#[derive(Debug)]
pub struct Node {
    pub store: ShardStore,
    pub keypair: Keypair,
    pub node_id: NodeId,
    pub admission: Admission,
    pub limits: Limits,
    /// What `GET /metrics` shows ([`crate::metrics`]); its byte counters are also the
    /// heartbeat's traffic figures.
    pub metrics: crate::metrics::Metrics,
    pub scrub: ScrubStatus,
    pub started: Instant,
    pub memory: Arc<Memory>,
    corrupt: Mutex<Vec<ShardId>>,
    served: Mutex<HashMap<Serial, Served>>,
}

impl Node {
    pub fn new(store: ShardStore, keypair: Keypair, admission: Admission, limits: Limits) -> Self {
        Self {
            store,
            node_id: keypair.public().node_id(),
            keypair,
            admission,
            memory: Arc::new(Memory::new(limits.memory_budget, limits.memory_wait)),
            limits,
            metrics: crate::metrics::Metrics::default(),
            scrub: ScrubStatus::default(),
            started: Instant::now(),
            corrupt: Mutex::new(Vec::new()),
            served: Mutex::new(HashMap::new()),
        }
    }

    pub fn report_corrupt(&self, id: ShardId) {
        tracing::warn!(shard = %id, "shard failed verification and was quarantined");
        let mut pending = self.corrupt.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.len() == MAX_PENDING_REPORTS {
            pending.remove(0);
        }
        pending.push(id);
    }

    /// The corrupt shards not yet reported; [`Node::reported`] removes them once delivered.
    pub fn pending_reports(&self) -> Vec<ShardId> {
        self.corrupt.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn reported(&self, delivered: &[ShardId]) {
        self.corrupt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|id| !delivered.contains(id));
    }

    pub fn add_ingress(&self, bytes: u64) {
        self.metrics.received_bytes.inc_by(bytes);
    }

    pub fn add_egress(&self, bytes: u64) {
        self.metrics.sent_bytes.inc_by(bytes);
    }

    /// Count `bytes` served under the token `token` (its signed bytes `signed`), to be claimed;
    /// its reader may send orders for them ([`Self::order_key`], [`Self::keep_order`]).
    pub fn record_served(&self, token: &disktro_core::token::Token, signed: &[u8], bytes: u64) {
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = served.entry(token.serial).or_insert_with(|| Served {
            bytes: 0,
            reported_bytes: 0,
            ordered: 0,
            order: None,
            reported: 0,
            expires_at: token.expires_at,
            order_key: token.order_key,
            token: Some(Arc::from(signed)),
        });
        entry.bytes = entry.bytes.saturating_add(bytes);
    }

    /// The order key of the get token `serial` this worker served under, if it names one.
    pub fn order_key(&self, serial: &Serial) -> Option<PublicKey> {
        let served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        served.get(serial).and_then(|s| s.order_key)
    }

    /// Keep `order` (verified against the token's order key) for `bytes` under `serial`, unless
    /// an order for more was kept before.
    pub fn keep_order(&self, serial: &Serial, bytes: u64, order: &[u8]) {
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = served.get_mut(serial)
            && bytes > s.ordered
        {
            s.ordered = bytes;
            s.order = Some(Arc::from(order));
        }
    }

    /// Claims not yet acknowledged, with their tokens while the server has not had them (at most
    /// [`MAX_CLAIM_TOKEN_BYTES`] of tokens: the rest wait for the next heartbeat).
    pub fn pending_claims(&self) -> Vec<PendingClaim> {
        let served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let mut token_bytes = 0;
        served
            .iter()
            .filter(|(_, s)| s.ordered > s.reported || s.bytes > s.reported_bytes)
            .filter(|(_, s)| {
                let len = s.token.as_ref().map_or(0, |t| t.len());
                token_bytes += len;
                len == 0 || token_bytes <= MAX_CLAIM_TOKEN_BYTES
            })
            .take(MAX_CLAIMS_PER_HEARTBEAT)
            .map(|(serial, s)| PendingClaim {
                serial: *serial,
                served: s.bytes,
                ordered: s.ordered,
                order: s.order.clone(),
                token: s.token.clone(),
            })
            .collect()
    }

    /// The server took these claims (and so has their tokens); forget tokens that are fully
    /// claimed and past the time their orders may come ([`ORDER_GRACE`]).
    pub fn claimed(&self, delivered: &[PendingClaim], now: u64) {
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        for claim in delivered {
            if let Some(s) = served.get_mut(&claim.serial) {
                s.reported = s.reported.max(claim.ordered);
                s.reported_bytes = s.reported_bytes.max(claim.served);
                s.token = None;
            }
        }
        served.retain(|_, s| {
            s.ordered > s.reported || s.bytes > s.reported_bytes || s.expires_at.saturating_add(ORDER_GRACE) > now
        });
    }
}
