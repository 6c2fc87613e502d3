//! The replica's copy of the nodes an upload may be placed on.
//!
//! Every upload's begin (and every re-plan) needs the writable workers; reading them from the
//! database made each begin cost the size of the network (1,000 rows a request at 1,000
//! workers: 4–10 ms on SQLite, `make bench-scale`). The roster keeps every active node with
//! what placement needs and when it was last seen, and each request filters that copy by its
//! own clock (online, room for its shards), so a copy is never wrong about time passing.
//!
//! The copy is read again when
//! - the nodes' epoch changed ([`store::nodes::epoch`], one single-row read per request): every
//!   registration and every change of a node's state (drain, suspension, disqualification,
//!   exit) sets a new one, on any replica, so no upload lands on a node that left or was
//!   disqualified;
//! - it is older than [`REFRESH`]: what heartbeats change (room, address, last seen) reaches the
//!   copies of other replicas within that; on this replica each heartbeat is applied to the copy
//!   as it is taken ([`Roster::heartbeat`]).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use disktro_core::api::node::Heartbeat;

use crate::store::{self, StoreError, to_i64};
use crate::store::{Db, nodes::Writable};

/// Longest a copy is used before it is read again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The copy: active nodes in id order, with their last heartbeat's time.
#[derive(Debug)]
struct Snapshot {
    epoch: Option<String>,
    read_at: Instant,
    nodes: Vec<(Writable, i64)>,
}

#[derive(Debug, Default)]
pub struct Roster {
    copy: Mutex<Option<Snapshot>>,
}

impl Roster {
    /// Nodes seen since `online_since`, active, with at least `min_free` bytes of room, in id
    /// order: what [`store::nodes::writable`] answers, from the copy while it is current.
    pub async fn writable(&self, db: &Db, online_since: i64, min_free: i64) -> Result<Vec<Writable>, StoreError> {
        let epoch = store::nodes::epoch(db).await?;
        let pick = |nodes: &[(Writable, i64)]| -> Vec<Writable> {
            nodes
                .iter()
                .filter(|(w, seen)| *seen >= online_since && w.free >= min_free)
                .map(|(w, _)| w.clone())
                .collect()
        };
        {
            let copy = self.lock();
            if let Some(c) = copy
                .as_ref()
                .filter(|c| c.epoch == epoch && c.read_at.elapsed() < REFRESH)
            {
                return Ok(pick(&c.nodes));
            }
        }
        // Read after the epoch: a change between the two is in the rows, and the next request
        // sees the newer epoch and reads again.
        let read_at = Instant::now();
        let nodes = store::nodes::active(db).await?;
        let chosen = pick(&nodes);
        let mut copy = self.lock();
        // Concurrent requests may each read; the one read last is kept.
        if copy.as_ref().is_none_or(|c| c.read_at <= read_at) {
            *copy = Some(Snapshot { epoch, read_at, nodes });
        }
        Ok(chosen)
    }

    /// A heartbeat this replica took: its figures replace the node's in the copy.
    pub fn heartbeat(&self, beat: &Heartbeat, now: i64) {
        let mut copy = self.lock();
        let Some(c) = copy.as_mut() else { return };
        if let Ok(i) = c.nodes.binary_search_by(|(w, _)| w.node_id.cmp(&beat.node_id)) {
            let (w, seen) = &mut c.nodes[i];
            w.url.clone_from(&beat.url);
            w.zone.clone_from(&beat.zone);
            w.operator.clone_from(&beat.operator);
            w.capacity = to_i64(beat.capacity);
            w.free = to_i64(beat.capacity) - to_i64(beat.used);
            *seen = now;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Snapshot>> {
        self.copy.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
