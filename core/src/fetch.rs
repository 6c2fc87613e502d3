//! Which shards of one chunk a reader asks for, and when it asks one more: the rule the CLI and
//! the browser both follow, written once and free of I/O. The caller keeps the sockets and the
//! timers and tells the plan what happened; the plan says what to ask for next.
//!
//! - **Ranking**: online workers before suspect ones before offline ones, and within each, data
//!   shards before parity (k data shards need no decoding).
//! - **Enough in flight**: as many requests run as shards are still missing.
//! - **Failure**: a failed request (refused, wrong bytes, connection lost) is replaced by the next
//!   candidate.
//! - **Hedging**: when nothing has answered for [`HEDGE_AFTER`], one more candidate is asked on
//!   top, so a stalled worker costs a chunk [`HEDGE_AFTER`] and not the connection's timeout.
//!   Whichever answers first counts; a late duplicate is ignored.
//! - **Stragglers**: the requests still unanswered when a chunk has its k shards name workers a
//!   reader should rank last for the chunks after ([`ChunkPlan::stragglers`]), so a stalled
//!   worker costs one window of chunks [`HEDGE_AFTER`], not every chunk.

use std::collections::VecDeque;
use std::time::Duration;

use crate::api::NodeStatus;

/// How long a chunk waits on its requests before asking one more worker.
pub const HEDGE_AFTER: Duration = Duration::from_secs(5);

/// A request to make: shard `slot` of the chunk, from node `node` (indexes into the download's
/// answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub slot: usize,
    pub node: usize,
}

/// The plan for one chunk.
#[derive(Debug, Clone)]
pub struct ChunkPlan {
    queue: VecDeque<Ask>,
    need: usize,
    got: Vec<bool>,
    have: usize,
    running: Vec<Ask>,
    failures: Vec<String>,
}

impl ChunkPlan {
    /// A plan for a chunk whose shard `slot` is on node `locations[slot]`, needing `k` of them;
    /// `status` gives each node's health as the server last saw it.
    pub fn new(locations: &[u16], k: usize, status: impl Fn(usize) -> NodeStatus) -> Self {
        let mut queue: Vec<Ask> = locations
            .iter()
            .enumerate()
            .map(|(slot, &node)| Ask {
                slot,
                node: usize::from(node),
            })
            .collect();
        queue.sort_by_key(|a| {
            let rank = match status(a.node) {
                NodeStatus::Online => 0,
                NodeStatus::Suspect => 1,
                NodeStatus::Offline => 2,
            };
            (rank, a.slot)
        });
        Self {
            queue: queue.into(),
            need: k,
            got: vec![false; locations.len()],
            have: 0,
            running: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Requests to start now so that, with those running, the missing shards are all asked for.
    pub fn to_start(&mut self) -> Vec<Ask> {
        let mut out = Vec::new();
        while self.have + self.running.len() < self.need {
            let Some(ask) = self.queue.pop_front() else { break };
            self.running.push(ask);
            out.push(ask);
        }
        out
    }

    /// Nothing answered for [`HEDGE_AFTER`]: one more request, if a candidate is left.
    pub fn hedge(&mut self) -> Option<Ask> {
        if self.is_done() {
            return None;
        }
        let ask = self.queue.pop_front()?;
        self.running.push(ask);
        Some(ask)
    }

    /// The request for `slot` brought its verified shard. `false` for a duplicate (the slot was
    /// already had), which the caller drops.
    pub fn got(&mut self, slot: usize) -> bool {
        self.running.retain(|a| a.slot != slot);
        match self.got.get_mut(slot) {
            Some(had) if !*had => {
                *had = true;
                self.have += 1;
                true
            }
            _ => false,
        }
    }

    /// The request for `slot` failed with `why`.
    pub fn failed(&mut self, slot: usize, why: impl Into<String>) {
        self.running.retain(|a| a.slot != slot);
        self.failures.push(why.into());
    }

    /// Nodes still asked and unanswered: once the chunk is done, the slow ones.
    pub fn stragglers(&self) -> impl Iterator<Item = usize> + '_ {
        self.running.iter().map(|a| a.node)
    }

    /// k verified shards are in.
    pub fn is_done(&self) -> bool {
        self.have >= self.need
    }

    /// Nothing is running and no candidate is left while shards are still missing: why, in one
    /// line.
    pub fn exhausted(&self) -> Option<String> {
        (!self.is_done() && self.running.is_empty() && self.queue.is_empty()).then(|| {
            let why = if self.failures.is_empty() {
                "no worker holding its shards is reachable".to_owned()
            } else {
                self.failures.join("; ")
            };
            format!(
                "only {} of the {} shards needed could be fetched ({why})",
                self.have, self.need
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(offline: &[usize], suspect: &[usize]) -> impl Fn(usize) -> NodeStatus {
        let (offline, suspect) = (offline.to_vec(), suspect.to_vec());
        move |n| {
            if offline.contains(&n) {
                NodeStatus::Offline
            } else if suspect.contains(&n) {
                NodeStatus::Suspect
            } else {
                NodeStatus::Online
            }
        }
    }

    #[test]
    fn data_shards_of_online_workers_go_first_then_suspect_then_offline() {
        // Tried: 6 + 4 shards on nodes 0..10; node 1 offline, node 2 suspect.
        // Must hold: the first k asked are online, data before parity; suspect before offline.
        let locations: Vec<u16> = (0..10).collect();
        let mut plan = ChunkPlan::new(&locations, 6, status(&[1], &[2]));
        let first: Vec<usize> = plan.to_start().iter().map(|a| a.slot).collect();
        assert_eq!(first, vec![0, 3, 4, 5, 6, 7]);
        for slot in [0, 3, 4, 5, 6] {
            assert!(plan.got(slot));
        }
        plan.failed(7, "wrong bytes");
        let next: Vec<usize> = [plan.to_start(), plan.to_start()]
            .concat()
            .iter()
            .map(|a| a.slot)
            .collect();
        assert_eq!(next, vec![8], "one missing, one asked");
    }

    #[test]
    fn a_stall_asks_one_more_and_a_late_duplicate_is_dropped() {
        let locations: Vec<u16> = (0..5).collect();
        let mut plan = ChunkPlan::new(&locations, 2, status(&[], &[]));
        assert_eq!(plan.to_start().len(), 2);
        let extra = plan.hedge().expect("a candidate left");
        assert_eq!(extra.slot, 2);
        assert!(plan.got(2) && plan.got(0));
        assert!(plan.is_done());
        assert_eq!(plan.stragglers().collect::<Vec<_>>(), vec![1], "node 1 never answered");
        assert_eq!(plan.hedge(), None, "nothing more once done");
        assert!(!plan.got(0), "a duplicate is not counted twice");
    }

    #[test]
    fn running_out_of_candidates_says_why() {
        let locations: Vec<u16> = vec![0, 1, 2];
        let mut plan = ChunkPlan::new(&locations, 2, status(&[], &[]));
        plan.to_start();
        assert!(plan.got(0));
        plan.failed(1, "token expired");
        assert_eq!(plan.exhausted(), None, "a candidate is left");
        assert_eq!(plan.to_start().len(), 1);
        plan.failed(2, "connection lost");
        let why = plan.exhausted().expect("nothing left");
        assert!(
            why.contains("only 1 of the 2") && why.contains("connection lost"),
            "{why}"
        );
    }
}
