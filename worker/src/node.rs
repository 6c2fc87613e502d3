//! One running worker's shared state: its store, identity, token admission, limits, traffic
//! counters, the memory budget ([`crate::memory`]), and what waits for the next
//! heartbeat: corrupt shards to report and egress to claim.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use disktro_core::keys::Keypair;
use std::collections::HashMap;

use disktro_core::api::node::MAX_CLAIMS_PER_HEARTBEAT;
use disktro_core::{NodeId, Serial, ShardId};

use crate::admission::Admission;
use crate::config::Limits;
use crate::memory::Memory;
use crate::scrub::ScrubStatus;
use crate::store::ShardStore;

/// Corrupt shards remembered for the next heartbeat; beyond this the oldest are dropped (the
/// scrubber and the server's audits find them again).
const MAX_PENDING_REPORTS: usize = 10_000;

/// Bytes served under one get token, and how much of that the server has acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Served {
    bytes: u64,
    reported: u64,
    expires_at: u64,
}

/// Bytes moved since start.
#[derive(Debug, Default)]
pub struct Traffic {
    pub ingress: AtomicU64,
    pub egress: AtomicU64,
}

#[derive(Debug)]
pub struct Node {
    pub store: ShardStore,
    pub keypair: Keypair,
    pub node_id: NodeId,
    pub admission: Admission,
    pub limits: Limits,
    pub traffic: Traffic,
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
            traffic: Traffic::default(),
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
        self.traffic.ingress.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn add_egress(&self, bytes: u64) {
        self.traffic.egress.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Count `bytes` served under the get token `serial`, to be claimed for egress rewards.
    pub fn record_served(&self, serial: Serial, expires_at: u64, bytes: u64) {
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = served.entry(serial).or_insert(Served {
            bytes: 0,
            reported: 0,
            expires_at,
        });
        entry.bytes = entry.bytes.saturating_add(bytes);
    }

    /// Claims not yet acknowledged: (serial, total bytes served under it).
    pub fn pending_claims(&self) -> Vec<(Serial, u64)> {
        let served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        served
            .iter()
            .filter(|(_, s)| s.bytes > s.reported)
            .take(MAX_CLAIMS_PER_HEARTBEAT)
            .map(|(serial, s)| (*serial, s.bytes))
            .collect()
    }

    /// The server took these claims; forget tokens that have expired and are fully claimed.
    pub fn claimed(&self, delivered: &[(Serial, u64)], now: u64) {
        let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        for (serial, bytes) in delivered {
            if let Some(s) = served.get_mut(serial) {
                s.reported = s.reported.max(*bytes);
            }
        }
        served.retain(|_, s| s.bytes > s.reported || s.expires_at > now);
    }
}
