//! An upload's bookkeeping, written once and free of I/O: where each shard of each chunk goes
//! (the server's plan, amended when workers fail), which shards have receipts, when to ask the
//! server for a replan, and what the commit carries. The CLI and the browser keep the sockets,
//! the file and the timers and tell the session what happened; the session says what to send
//! where.
//!
//! - **Sending**: [`UploadSession::next_puts`] names the shards of a chunk still without a
//!   receipt and the plan slot (put token and worker) each goes to now.
//! - **Failure**: a put that fails (refused, timed out, connection lost) marks its worker failed
//!   for the rest of the upload: nothing is sent to it again.
//! - **Replan**: shards waiting on failed workers are moved by the server
//!   ([`UploadSession::replan_request`], `POST /uploads/{id}/replan`,
//!   [`UploadSession::apply_plan`]) under its placement rules; the chunk then sends them to their
//!   new slots. Concurrent chunks share one replan: after it, no waiting shard names a failed
//!   worker, so the request is `None` until another worker fails.
//! - **Unplaced shards**: when no worker is left that may take a failed worker's shard (every
//!   other worker holds one of the chunk already), the server marks its slot [`UNPLACED`]: it is
//!   not sent, the commit records it lost where it was planned, and repair restores it once the
//!   network has room. A chunk keeps at least [`min_stored`] shards; the server refuses a replan
//!   that would leave fewer.
//! - **Limits**: a shard is tried on at most [`MAX_ATTEMPTS`] workers before the upload fails
//!   with the last worker's error.
//! - **Tokens**: renewed tokens are matched to slots by serial ([`UploadSession::renew`]).
//! - **Continuing**: receipts kept from an earlier run are given back with
//!   [`UploadSession::on_receipt`]; each chunk encoded again is checked against them
//!   ([`UploadSession::check_stored`]: same key and bytes make the same shards) and only what
//!   lacks a receipt is sent.
//! - **Commit**: [`UploadSession::take_receipts`] gives one receipt per shard, once every chunk
//!   has all of its own.

use std::collections::HashSet;
use std::fmt;

use crate::NodeId;
use crate::api::{Base64, PutGrant, Replan, UploadPlan};

/// Workers a shard is tried on before the upload gives up.
pub const MAX_ATTEMPTS: u8 = 4;

/// The bit of a placement slot that says no worker could take the shard after its worker
/// failed (the rest of the value is the failed worker's slot).
pub const UNPLACED: u16 = 0x8000;

/// Shards of a chunk an upload must store: k and at least half the parity, so a chunk whose
/// failed workers could not be replaced still survives the loss of `m / 2` workers until repair
/// restores the rest.
pub fn min_stored(redundancy: crate::Redundancy) -> usize {
    usize::from(redundancy.data) + usize::from(redundancy.parity).div_ceil(2)
}

/// One put to make: shard `index` of the chunk to plan slot `slot` (an index into the plan's
/// `nodes`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Put {
    pub index: usize,
    pub slot: usize,
}

/// What a chunk does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// Send these shards (never empty).
    Send(Vec<Put>),
    /// A shard waits on a failed worker: replan first.
    Replan,
    /// Every shard has its receipt.
    Done,
}

/// Why an upload cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The server's plan contradicts itself or the upload (the message says how).
    BadPlan(String),
    /// A shard failed on [`MAX_ATTEMPTS`] workers; `last` is the last worker's error.
    Exhausted { chunk: u64, index: usize, last: String },
    /// The commit was asked for while a chunk still lacks receipts.
    Incomplete { chunk: u64 },
    /// A chunk encoded again (to continue an upload) is not what was stored before: the file
    /// changed since the upload began.
    Changed { chunk: u64 },
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadPlan(why) => write!(f, "the server's upload plan is not usable: {why}"),
            Self::Exhausted { chunk, index, last } => write!(
                f,
                "shard {index} of chunk {chunk} could not be stored on {MAX_ATTEMPTS} workers; the last said: {last}"
            ),
            Self::Incomplete { chunk } => write!(f, "chunk {chunk} is missing receipts"),
            Self::Changed { chunk } => write!(
                f,
                "chunk {chunk} is not what was stored before: the file changed since the upload began"
            ),
        }
    }
}

impl std::error::Error for SessionError {}

fn bad(why: impl Into<String>) -> SessionError {
    SessionError::BadPlan(why.into())
}

/// The state of one upload between begin and commit.
#[derive(Debug)]
pub struct UploadSession {
    plan: UploadPlan,
    /// Per chunk, per shard: its receipt once stored.
    receipts: Vec<Vec<Option<Base64>>>,
    /// Per chunk, per shard: workers tried.
    attempts: Vec<Vec<u8>>,
    failed: HashSet<NodeId>,
    complete: Vec<bool>,
    last_failure: Option<String>,
}

impl UploadSession {
    /// A session for `plan` as `POST /uploads` answered it; a plan whose shape contradicts itself
    /// (a chunk without a slot for every shard, a slot past `nodes`) is refused.
    pub fn new(plan: UploadPlan) -> Result<Self, SessionError> {
        let total = usize::from(plan.data_shards) + usize::from(plan.parity_shards);
        check_shape(&plan, total)?;
        let chunks = plan.placement.len();
        Ok(Self {
            receipts: vec![vec![None; total]; chunks],
            attempts: vec![vec![0; total]; chunks],
            complete: vec![false; chunks],
            failed: HashSet::new(),
            last_failure: None,
            plan,
        })
    }

    pub fn plan(&self) -> &UploadPlan {
        &self.plan
    }

    /// The put grant of plan slot `slot`.
    pub fn grant(&self, slot: usize) -> &PutGrant {
        &self.plan.nodes[slot]
    }

    /// When the first of the tokens expires (unix seconds).
    pub fn tokens_expire_at(&self) -> u64 {
        self.plan.nodes.iter().map(|g| g.expires_at).min().unwrap_or(0)
    }

    /// Whether every shard of `chunk` has its receipt.
    pub fn is_complete(&self, chunk: u64) -> bool {
        self.complete.get(at(chunk)).copied().unwrap_or(false)
    }

    /// Check the receipts held for `chunk` (kept from an earlier run) against its shards encoded
    /// now (`ids`, by index): each must name the same shard, or the file changed.
    pub fn check_stored(&self, chunk: u64, ids: &[crate::ShardId]) -> Result<(), SessionError> {
        for (index, receipt) in self.receipts[at(chunk)].iter().enumerate() {
            let Some(receipt) = receipt else { continue };
            let same = crate::token::Receipt::claimed(receipt).is_ok_and(|r| ids.get(index) == Some(&r.shard));
            if !same {
                return Err(SessionError::Changed { chunk });
            }
        }
        Ok(())
    }

    /// The reason the last failed put gave: what a user is told when no replan can help.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Workers marked failed so far.
    pub fn failed(&self) -> &HashSet<NodeId> {
        &self.failed
    }

    /// What `chunk` does next.
    pub fn next_puts(&self, chunk: u64) -> Next {
        let c = at(chunk);
        if self.complete[c] {
            return Next::Done;
        }
        let mut puts = Vec::new();
        for (index, receipt) in self.receipts[c].iter().enumerate() {
            let slot = self.plan.placement[c][index];
            if receipt.is_some() || slot & UNPLACED != 0 {
                continue;
            }
            let slot = usize::from(slot);
            if self.failed.contains(&self.plan.nodes[slot].node_id) {
                return Next::Replan;
            }
            puts.push(Put { index, slot });
        }
        if puts.is_empty() {
            // Only unplaced shards were left: what could be stored is.
            return Next::Done;
        }
        Next::Send(puts)
    }

    /// Shard `index` of `chunk` was stored; `receipt` is the worker's signed receipt.
    pub fn on_receipt(&mut self, chunk: u64, index: usize, receipt: Vec<u8>) {
        let c = at(chunk);
        self.receipts[c][index] = Some(Base64::new(receipt));
        self.update_complete(c);
    }

    fn update_complete(&mut self, c: usize) {
        self.complete[c] = self.receipts[c]
            .iter()
            .zip(&self.plan.placement[c])
            .all(|(receipt, slot)| receipt.is_some() || slot & UNPLACED != 0);
    }

    /// The put of shard `index` of `chunk` to `slot` failed with `reason`: its worker is failed
    /// for the rest of the upload. An error when the shard has now failed on
    /// [`MAX_ATTEMPTS`] workers.
    pub fn on_failure(&mut self, chunk: u64, index: usize, slot: usize, reason: &str) -> Result<(), SessionError> {
        let c = at(chunk);
        self.failed.insert(self.plan.nodes[slot].node_id);
        self.last_failure = Some(reason.to_owned());
        let tried = &mut self.attempts[c][index];
        *tried = tried.saturating_add(1);
        if *tried >= MAX_ATTEMPTS {
            return Err(SessionError::Exhausted {
                chunk,
                index,
                last: reason.to_owned(),
            });
        }
        Ok(())
    }

    /// What to ask the server when some waiting shard names a failed worker: every failed
    /// worker, and every chunk with a shard waiting on one. `None` when nothing waits on one.
    pub fn replan_request(&self) -> Option<Replan> {
        if self.failed.is_empty() {
            return None;
        }
        let chunks: Vec<u64> = (0..self.plan.placement.len())
            .filter(|&c| matches!(self.next_puts(c as u64), Next::Replan))
            .map(|c| c as u64)
            .collect();
        if chunks.is_empty() {
            return None;
        }
        let mut failed: Vec<NodeId> = self.failed.iter().copied().collect();
        failed.sort_unstable();
        Some(Replan { failed, chunks })
    }

    /// Take the server's amended plan: the same upload and shape, every old slot kept (same
    /// worker, same serial), new slots after them. Receipts already held stay.
    pub fn apply_plan(&mut self, plan: UploadPlan) -> Result<(), SessionError> {
        if plan.placement.len() != self.plan.placement.len() {
            return Err(bad("the amended plan is for another upload or shape"));
        }
        self.check_amendment(&plan)?;
        self.take(plan);
        Ok(())
    }

    /// Take the server's plan for the upload at another size (`POST /uploads/{id}/resize`): as
    /// [`UploadSession::apply_plan`], but chunks may be added after the last or dropped from the
    /// end. The chunks both plans have keep their placement, and a dropped chunk must hold no
    /// receipt.
    pub fn apply_resize(&mut self, plan: UploadPlan) -> Result<(), SessionError> {
        let kept = plan.placement.len().min(self.plan.placement.len());
        if plan.placement[..kept] != self.plan.placement[..kept] {
            return Err(bad("the resized plan moved a chunk it kept"));
        }
        if self.receipts[kept..].iter().flatten().any(Option::is_some) {
            return Err(bad("the resized plan dropped a chunk with stored shards"));
        }
        self.check_amendment(&plan)?;
        let total = usize::from(plan.data_shards) + usize::from(plan.parity_shards);
        let chunks = plan.placement.len();
        self.receipts.resize(chunks, vec![None; total]);
        self.attempts.resize(chunks, vec![0; total]);
        self.complete.resize(chunks, false);
        self.take(plan);
        Ok(())
    }

    /// Whether `plan` amends this upload's: the same upload and shape, every old slot kept.
    fn check_amendment(&self, plan: &UploadPlan) -> Result<(), SessionError> {
        if plan.upload_id != self.plan.upload_id
            || plan.file_id != self.plan.file_id
            || plan.data_shards != self.plan.data_shards
            || plan.parity_shards != self.plan.parity_shards
            || plan.chunk_size != self.plan.chunk_size
        {
            return Err(bad("the amended plan is for another upload or shape"));
        }
        let kept = plan
            .nodes
            .iter()
            .zip(&self.plan.nodes)
            .all(|(new, old)| new.serial == old.serial && new.node_id == old.node_id);
        if plan.nodes.len() < self.plan.nodes.len() || !kept {
            return Err(bad("the amended plan dropped or moved a slot"));
        }
        check_shape(plan, usize::from(plan.data_shards) + usize::from(plan.parity_shards))
    }

    fn take(&mut self, plan: UploadPlan) {
        self.plan = plan;
        for c in 0..self.complete.len() {
            self.update_complete(c);
        }
    }

    /// Take renewed tokens (any order; matched to slots by serial).
    pub fn renew(&mut self, grants: Vec<PutGrant>) -> Result<(), SessionError> {
        for fresh in grants {
            let slot = self
                .plan
                .nodes
                .iter_mut()
                .find(|g| g.serial == fresh.serial && g.node_id == fresh.node_id)
                .ok_or_else(|| bad("a renewed token answers no slot of the plan"))?;
            *slot = fresh;
        }
        Ok(())
    }

    /// The receipts held for `chunk`, with their shard's index: what a client notes to continue
    /// the upload later.
    pub fn receipts(&self, chunk: u64) -> impl Iterator<Item = (usize, &Base64)> {
        self.receipts[at(chunk)]
            .iter()
            .enumerate()
            .filter_map(|(index, r)| r.as_ref().map(|r| (index, r)))
    }

    /// Every receipt, chunk by chunk, for the commit (none for unplaced shards); the session
    /// keeps none.
    pub fn take_receipts(&mut self) -> Result<Vec<Base64>, SessionError> {
        if let Some(c) = self.complete.iter().position(|done| !done) {
            return Err(SessionError::Incomplete { chunk: c as u64 });
        }
        Ok(std::mem::take(&mut self.receipts)
            .into_iter()
            .flatten()
            .flatten()
            .collect())
    }
}

/// A chunk's place in the session's tables (chunks past the plan panic there, as out of range).
fn at(chunk: u64) -> usize {
    usize::try_from(chunk).unwrap_or(usize::MAX)
}

fn check_shape(plan: &UploadPlan, total: usize) -> Result<(), SessionError> {
    if plan.placement.len() as u64 != plan.chunk_count {
        return Err(bad(format!(
            "{} chunks placed for {} chunks",
            plan.placement.len(),
            plan.chunk_count
        )));
    }
    for (c, row) in plan.placement.iter().enumerate() {
        if row.len() != total {
            return Err(bad(format!("chunk {c} has {} slots for {total} shards", row.len())));
        }
        if row.iter().any(|&s| usize::from(s & !UNPLACED) >= plan.nodes.len()) {
            return Err(bad(format!("chunk {c} names a slot without a token")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Keypair;
    use crate::token::Receipt;
    use crate::{FileId, Serial, ShardId};

    fn plan(worker: NodeId) -> UploadPlan {
        UploadPlan {
            upload_id: "u".to_owned(),
            file_id: FileId([1; 16]),
            data_shards: 1,
            parity_shards: 1,
            chunk_size: 1024,
            chunk_count: 1,
            expires_at: 0,
            nodes: vec![PutGrant {
                node_id: worker,
                url: "ws://w".to_owned(),
                token: Base64::new(vec![1]),
                serial: Serial([1; 16]),
                budget: 1,
                expires_at: 0,
            }],
            placement: vec![vec![0, 0]],
        }
    }

    /// Tried: a receipt kept from an earlier run for shard 0, checked against the chunk encoded
    /// again with the same shard, then with another. Must hold: the same passes, another is
    /// `Changed` (the file changed), and only shard 1 is left to send.
    #[test]
    fn kept_receipts_must_name_the_shards_encoded_again() {
        let worker = Keypair::generate();
        let mut session = UploadSession::new(plan(worker.public().node_id())).unwrap();
        let (same, other) = (ShardId::of(b"same"), ShardId::of(b"other"));
        let receipt = Receipt {
            worker: worker.public().node_id(),
            shard: same,
            size: 4,
            serial: Serial([1; 16]),
        }
        .sign(&worker)
        .unwrap();
        session.on_receipt(0, 0, receipt);
        assert_eq!(session.check_stored(0, &[same, other]), Ok(()));
        assert_eq!(
            session.check_stored(0, &[other, same]),
            Err(SessionError::Changed { chunk: 0 })
        );
        assert_eq!(session.next_puts(0), Next::Send(vec![Put { index: 1, slot: 0 }]));
    }

    /// Tried: a stream's upload grown from one chunk to three (a new slot), a receipt taken for
    /// chunk 2, then shrunk back to one chunk; a grown plan that moved chunk 0. Must hold: the
    /// grown plan keeps chunk 0's receipt and sends chunk 2's other shard; the shrink past a
    /// chunk with a stored shard and the moved chunk are refused, and a refused plan changes
    /// nothing.
    #[test]
    fn a_resized_plan_keeps_the_chunks_both_have_and_drops_only_unsent_ones() {
        let worker = Keypair::generate();
        let node = worker.public().node_id();
        let mut session = UploadSession::new(plan(node)).unwrap();
        let receipt = |shard: &[u8], serial| {
            Receipt {
                worker: node,
                shard: ShardId::of(shard),
                size: 4,
                serial,
            }
            .sign(&worker)
            .unwrap()
        };
        session.on_receipt(0, 0, receipt(b"a", Serial([1; 16])));
        let mut grown = plan(node);
        let mut slot = grown.nodes[0].clone();
        slot.serial = Serial([2; 16]);
        grown.nodes.push(slot);
        grown.placement = vec![vec![0, 0], vec![1, 1], vec![1, 1]];
        grown.chunk_count = 3;

        let mut moved = grown.clone();
        moved.placement[0] = vec![1, 1];
        assert!(session.apply_resize(moved).is_err());
        assert_eq!(session.plan().chunk_count, 1);

        session.apply_resize(grown).unwrap();
        assert_eq!(session.next_puts(0), Next::Send(vec![Put { index: 1, slot: 0 }]));
        session.on_receipt(2, 0, receipt(b"c", Serial([2; 16])));
        assert_eq!(session.next_puts(2), Next::Send(vec![Put { index: 1, slot: 1 }]));

        let mut shrunk = session.plan().clone();
        shrunk.placement.truncate(1);
        shrunk.chunk_count = 1;
        assert!(session.apply_resize(shrunk.clone()).is_err());
        assert_eq!(session.plan().chunk_count, 3);
        // Without chunk 2's receipt (a fresh session at three chunks), the same shrink is taken.
        let mut fresh = UploadSession::new(session.plan().clone()).unwrap();
        fresh.apply_resize(shrunk).unwrap();
        assert_eq!(fresh.plan().chunk_count, 1);
    }
}
