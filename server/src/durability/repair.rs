//! The repairer: brings chunks back to full redundancy.
//!
//! Each pass finds the chunks with fewer than k + m healthy shards (see [`crate::durability`]),
//! most urgent (fewest healthy) first, and repairs up to `repair_concurrency` at a time. A chunk
//! one shard short is repaired too: waiting for a margin would leave files written or repaired
//! during an outage below their redundancy for good.
//!
//!
//! 1. copy each lost shard whose worker is draining (still online, still holding it) from there:
//!    one read, checked against its id;
//! 2. for the others, fetch k healthy shards by the readers' rule (`core::fetch`: data shards
//!    first, a failed read replaced, a hedge when nothing answers for the plan's hedge delay), each checked against its id,
//!    rebuild the sealed chunk with Reed-Solomon and encode it again; every one of the k + m
//!    shard ids must equal the owner-signed manifest's, or nothing is stored;
//! 3. put each unhealthy shard on a new worker chosen by the upload's placement rules
//!    ([`Placer`]: online, active, with room, holding no shard of this chunk, within the zone and
//!    operator caps counting the healthy shards) and verify the worker's signed receipt;
//! 4. in one transaction move the placement row, drop the loss report, and hand the old copy to
//!    garbage collection (it is deleted if its worker ever comes back).
//!
//! Before reading anything the repairer places every lost shard (step 3's rules);
//! a chunk it cannot repair (no worker to take a shard, too few shards readable) waits before the
//! next try: the repair interval, doubled after each failure, at most an hour ([`next_wait`]).
//! A chunk with fewer than k healthy shards cannot be rebuilt and is counted as lost. The server
//! never holds a key: it handles sealed bytes only.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use disktro_core::api::NodeStatus;
use disktro_core::fetch::{Ask, ChunkPlan};
use disktro_core::keys::PublicKey;
use disktro_core::shard::{Redundancy, Sharder};
use disktro_core::{FileId, NodeId, SignedManifest};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;

use super::error::JobError;
use super::fleet::{self, Fleet};
use super::secs;
use crate::context::Context;
use crate::nodes;
use crate::placement::{Candidate, Placer};
use crate::store;

/// Chunks taken per pass at most.
pub const MAX_CHUNKS_PER_PASS: i64 = 1024;
/// The longest a chunk that could not be repaired waits before the next try.
pub const MAX_BACKOFF_SECS: i64 = 3600;

/// How long a chunk waits after a failed repair: the repair interval after the first failure,
/// doubled after each further one, at most [`MAX_BACKOFF_SECS`].
pub fn next_wait(previous: Option<i64>, interval_secs: i64) -> i64 {
    previous
        .map_or(interval_secs, |w| w.saturating_mul(2))
        .clamp(1, MAX_BACKOFF_SECS.max(interval_secs))
}

/// A chunk waiting after a failed repair.
#[derive(Debug, Clone, Copy)]
struct Deferred {
    until: i64,
    wait: i64,
}

/// The repairer's progress, as `/api/v1/jobs` (and `/api/v1/durability`) show it.
pub use disktro_core::api::RepairProgress as Progress;

/// Detection and repair times kept, per kind (the most recent).
const TIMES_KEPT: usize = 1024;

/// How long losses take to be found and mended: when each chunk now short was first seen short,
/// and the most recent times to detect and to repair, in seconds.
#[derive(Debug, Default)]
struct Timings {
    first_seen: HashMap<(String, u64), i64>,
    to_detect: VecDeque<u64>,
    to_repair: VecDeque<u64>,
}

impl Timings {
    /// A pass found `found` short at `now` (all of them when `complete`): note the new ones, and
    /// forget chunks no longer short (their worker came back, or their file went).
    fn found(&mut self, found: &[Due], complete: bool, now: i64) {
        if complete {
            let short: HashSet<(&str, u64)> = found.iter().map(|d| (d.file_hex.as_str(), d.chunk)).collect();
            self.first_seen.retain(|(f, c), _| short.contains(&(f.as_str(), *c)));
        }
        for d in found {
            if let std::collections::hash_map::Entry::Vacant(e) = self.first_seen.entry((d.file_hex.clone(), d.chunk)) {
                e.insert(now);
                if let Some(lost_at) = d.lost_at {
                    push_kept(&mut self.to_detect, u64::try_from(now - lost_at).unwrap_or(0));
                }
            }
        }
    }

    /// `key` is back at full at `now`.
    fn repaired(&mut self, key: &(String, u64), now: i64) {
        if let Some(seen) = self.first_seen.remove(key) {
            push_kept(&mut self.to_repair, u64::try_from(now - seen).unwrap_or(0));
        }
    }

    fn report(&self, p: &mut Progress) {
        (p.time_to_detect_p50_secs, p.time_to_detect_max_secs) = median_and_max(&self.to_detect);
        (p.time_to_repair_p50_secs, p.time_to_repair_max_secs) = median_and_max(&self.to_repair);
    }
}

fn push_kept(times: &mut VecDeque<u64>, t: u64) {
    if times.len() == TIMES_KEPT {
        times.pop_front();
    }
    times.push_back(t);
}

/// The median (the upper one of an even count) and the largest of `times`.
fn median_and_max(times: &VecDeque<u64>) -> (Option<u64>, Option<u64>) {
    let mut sorted: Vec<u64> = times.iter().copied().collect();
    sorted.sort_unstable();
    (sorted.get(sorted.len() / 2).copied(), sorted.last().copied())
}

use store::health::{DueChunk as Due, Slot};

/// The repairer: its connections, and its progress, which it reports to the jobs registry.
#[derive(Debug)]
pub struct Repairer {
    fleet: Arc<Fleet>,
    progress: Mutex<Progress>,
    registry: Arc<crate::jobs::Registry>,
    /// Chunks whose last repair failed, by (file, chunk), with when to try again.
    backoff: Mutex<HashMap<(String, u64), Deferred>>,
    timings: Mutex<Timings>,
}

impl Repairer {
    pub fn new(fleet: Arc<Fleet>, registry: Arc<crate::jobs::Registry>) -> Self {
        Self {
            fleet,
            progress: Mutex::default(),
            registry,
            backoff: Mutex::default(),
            timings: Mutex::default(),
        }
    }

    fn timings(&self) -> std::sync::MutexGuard<'_, Timings> {
        self.timings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn backoff(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Deferred>> {
        self.backoff.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn progress(&self, f: impl FnOnce(&mut Progress)) {
        let mut p = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut p);
        self.registry.report("repair", &*p);
    }

    /// One repair pass. Returns the number of chunks repaired.
    pub async fn pass(&self, ctx: &Context, now: i64) -> Result<u64, JobError> {
        let fleet = &*self.fleet;
        let since = nodes::online_since(now, ctx.heartbeat_interval);
        let found = store::health::due_for_repair(&ctx.db, since, MAX_CHUNKS_PER_PASS).await?;
        let complete = (found.len() as i64) < MAX_CHUNKS_PER_PASS;
        self.timings().found(&found, complete, now);
        let (due, deferred): (Vec<Due>, Vec<Due>) = {
            let backoff = self.backoff();
            found.into_iter().partition(|d| {
                backoff
                    .get(&(d.file_hex.clone(), d.chunk))
                    .is_none_or(|w| w.until <= now)
            })
        };
        self.progress(|p| {
            p.running = true;
            p.last_pass_started = Some(now);
            p.queued = due.len() as u64;
            p.done = 0;
            p.deferred = deferred.len() as u64;
        });
        let interval = secs(ctx.durability.repair_interval);
        if !due.is_empty() {
            tracing::info!(chunks = due.len(), "repair pass");
        }
        let keys = &nodes::keys(&ctx.db).await?;
        // Where rebuilt shards may go, read once a pass (not once a chunk: a pass would read
        // every node a thousand times); each chunk keeps those with room for its shards.
        let writable = &nodes::writable(&ctx.db, ctx.heartbeat_interval, now, 0).await?;
        let bytes_before = self
            .progress
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes_rebuilt;
        let results: Vec<bool> = futures_util::stream::iter(due)
            .map(|d| async move {
                let result = repair_chunk(ctx, fleet, keys, writable, &d, now).await;
                let key = (d.file_hex.clone(), d.chunk);
                let ok = match result {
                    Ok(rebuilt) => {
                        self.backoff().remove(&key);
                        let mut timings = self.timings();
                        timings.repaired(&key, crate::context::unix_now());
                        self.progress(|p| {
                            p.shards_rebuilt += rebuilt.shards;
                            p.bytes_rebuilt += rebuilt.bytes;
                            ctx.metrics.repaired_shards.inc_by(rebuilt.shards);
                            ctx.metrics.repaired_bytes.inc_by(rebuilt.bytes);
                            p.chunks_repaired += 1;
                            timings.report(p);
                        });
                        true
                    }
                    Err(e) => {
                        let mut backoff = self.backoff();
                        let wait = next_wait(backoff.get(&key).map(|w| w.wait), interval);
                        backoff.insert(key, Deferred { until: now + wait, wait });
                        drop(backoff);
                        tracing::warn!(file = %d.file_hex, chunk = d.chunk, error = %e, retry_in_secs = wait, "chunk not repaired");
                        self.progress(|p| p.chunks_failed += 1);
                        false
                    }
                };
                self.progress(|p| p.done += 1);
                ok
            })
            .buffer_unordered(ctx.durability.repair_concurrency.max(1))
            .collect()
            .await;
        let finished = crate::context::unix_now();
        let timings = self.timings();
        self.progress(|p| {
            p.running = false;
            p.last_pass_finished = Some(finished);
            let bytes = p.bytes_rebuilt - bytes_before;
            if bytes > 0 {
                // Whole seconds on both ends: a pass shorter than one counts as one.
                let took = u64::try_from(finished - now).unwrap_or(0).max(1);
                p.last_pass_bytes_per_sec = bytes / took;
            }
            timings.report(p);
        });
        Ok(results.iter().filter(|ok| **ok).count() as u64)
    }
}

/// What one chunk's repair stored anew.
#[derive(Debug, Clone, Copy, Default)]
struct Rebuilt {
    shards: u64,
    bytes: u64,
}

/// Repair one chunk; returns the shards rebuilt (or copied) and re-placed. `keys` are the nodes'
/// public keys, to check receipts with.
async fn repair_chunk(
    ctx: &Context,
    fleet: &Fleet,
    keys: &HashMap<NodeId, PublicKey>,
    writable: &[nodes::Writable],
    d: &Due,
    now: i64,
) -> Result<Rebuilt, JobError> {
    let stored = store::files::read(&ctx.db, &d.file_hex)
        .await?
        .ok_or(JobError::FileDeleted)?;
    let signed = SignedManifest::decode(&stored.manifest)?;
    let manifest = signed.manifest();
    let file: FileId = d.file_hex.parse()?;
    let chunk_no = d.chunk;
    let entry = manifest
        .chunks
        .get(usize::try_from(d.chunk)?)
        .ok_or(JobError::ChunkNotInManifest(d.chunk))?;
    let redundancy: Redundancy = manifest.redundancy;
    let shard_len = redundancy.shard_len(entry.sealed_len as usize);
    let since = nodes::online_since(now, ctx.heartbeat_interval);
    let slots = store::health::slots(&ctx.db, since, &d.file_hex, d.chunk).await?;
    let lost: Vec<&Slot> = slots.iter().filter(|s| !s.healthy).collect();
    if lost.is_empty() {
        return Ok(Rebuilt::default());
    }

    // 0. Where the rebuilt shards can go, before any byte is read: active, online, with room,
    // holding nothing of this chunk, within the failure-domain caps counting the healthy shards
    // (the upload's rules, [`Placer`]). No placement: nothing is read (the chunk is retried later).
    let taken: HashSet<&str> = slots.iter().map(|s| s.node.as_str()).collect();
    let room = i64::try_from(shard_len)?;
    let mut targets: Vec<nodes::Writable> = writable
        .iter()
        .filter(|w| w.free >= room && !taken.contains(w.node_id.to_hex().as_str()))
        .cloned()
        .collect();
    let mut held = holders(slots.iter().filter(|s| s.healthy))?;
    let lost_indices: Vec<usize> = lost.iter().map(|s| s.idx).collect();
    plan(&targets, &held, redundancy.total(), &file, chunk_no, &lost_indices)?;

    // 1. A lost shard still readable where it is (its worker is draining, not gone) is copied
    // from there: one read instead of k.
    let mut copies: HashMap<usize, Vec<u8>> = HashMap::new();
    for slot in lost.iter().filter(|s| s.draining) {
        if let Some(data) = read_slot(ctx, fleet, entry, slot, file, shard_len as u64, now).await? {
            copies.insert(slot.idx, data);
        }
    }
    let rebuilt_shards = if lost.iter().all(|s| copies.contains_key(&s.idx)) {
        None
    } else {
        // 2. Otherwise k healthy shards rebuild the chunk.
        Some(rebuild(ctx, fleet, &slots, entry, redundancy, file, chunk_no, now).await?)
    };

    // 2. (In `rebuild`.) 3. New homes, one shard at a time under the same rules; a worker that
    // fails the write is dropped and the shard placed again without it.
    let mut rebuilt = 0;
    for slot in lost {
        let data = match copies.remove(&slot.idx) {
            Some(copy) => copy,
            None => rebuilt_shards
                .as_ref()
                .expect("the chunk is rebuilt when a copy is missing")
                .shard(slot.idx)
                .to_vec(),
        };
        let target = loop {
            let i = plan(&targets, &held, redundancy.total(), &file, chunk_no, &[slot.idx])?[0];
            let target = targets.remove(i);
            let stored = fleet
                .store(
                    &ctx.key,
                    target.node_id,
                    &target.url,
                    file,
                    slot.shard,
                    data.clone(),
                    now,
                )
                .await;
            match stored {
                Ok(receipt) => {
                    if fleet::receipt_holds(keys, &receipt, target.node_id, slot.shard, data.len() as u64) {
                        break target;
                    }
                    tracing::warn!(node = %target.node_id, "repair write answered with an invalid receipt");
                }
                Err(e) => {
                    tracing::debug!(node = %target.node_id, error = %e, "repair write failed; trying another");
                }
            }
        };
        // 4. Move the row, forget the loss, collect the old copy.
        rehome(ctx, &d.file_hex, d.chunk, slot, target.node_id, now).await?;
        held.push(Candidate::from(&target));
        rebuilt += 1;
    }
    tracing::info!(file = %d.file_hex, chunk = d.chunk, rebuilt, "chunk repaired");
    Ok(Rebuilt {
        shards: rebuilt,
        bytes: rebuilt * shard_len as u64,
    })
}

/// Read the shard of `slot` from its worker, checked against its id; `None` when the worker
/// does not give it (the caller tries another way). The placement must be the manifest's.
async fn read_slot(
    ctx: &Context,
    fleet: &Fleet,
    entry: &disktro_core::ChunkEntry,
    slot: &Slot,
    file: FileId,
    size: u64,
    now: i64,
) -> Result<Option<Vec<u8>>, JobError> {
    if entry.shards.get(slot.idx) != Some(&slot.shard) {
        return Err(JobError::PlacementMismatch(slot.idx));
    }
    let node: NodeId = slot.node.parse()?;
    match fleet
        .fetch(&ctx.key, node, &slot.url, file, slot.shard, size, now)
        .await
    {
        Ok(data) => Ok(Some(data)),
        Err(e) => {
            tracing::debug!(node = %slot.node, shard = %slot.shard, error = %e, "repair read failed; trying another way");
            Ok(None)
        }
    }
}

/// Step 2 of a repair: fetch k healthy shards of the chunk by the readers' rule
/// ([`ChunkPlan`], the CLI's and the browser's too: data shards first, so no Reed-Solomon work
/// when they are all there; as many reads at once as shards missing; a failed read replaced by
/// the next healthy shard; one more asked when nothing answers for the plan's hedge delay (5 s,
/// or once a shard is in, a few times its time), so a stalled worker costs a repair seconds, not
/// the connection's timeout), each checked against its id;
/// rebuild the sealed chunk and encode it again; every shard id must be the owner-signed
/// manifest's.
#[allow(clippy::too_many_arguments)]
async fn rebuild(
    ctx: &Context,
    fleet: &Fleet,
    slots: &[Slot],
    entry: &disktro_core::ChunkEntry,
    redundancy: Redundancy,
    file: FileId,
    chunk_no: u64,
    now: i64,
) -> Result<disktro_core::shard::Shards, JobError> {
    let k = usize::from(redundancy.data);
    let total = redundancy.total();
    let shard_len = redundancy.shard_len(entry.sealed_len as usize);
    // Candidates by shard index: the healthy slots; the others rank last and fail unasked.
    let healthy: Vec<Option<&Slot>> = (0..total)
        .map(|i| slots.iter().find(|s| s.idx == i && s.healthy))
        .collect();
    let locations: Vec<u16> = (0..total).map(|i| u16::try_from(i).unwrap_or(u16::MAX)).collect();
    let mut plan = ChunkPlan::new(&locations, k, |i| {
        if healthy.get(i).copied().flatten().is_some() {
            NodeStatus::Online
        } else {
            NodeStatus::Offline
        }
    });
    let mut have: Vec<Option<Vec<u8>>> = vec![None; total];
    let mut got = 0;
    let mut running = FuturesUnordered::new();
    let ask = |a: Ask| {
        let slot = healthy.get(a.slot).copied().flatten();
        async move {
            let read = match slot {
                Some(slot) => read_slot(ctx, fleet, entry, slot, file, shard_len as u64, now).await,
                None => Ok(None),
            };
            (a.slot, read)
        }
    };
    let started = tokio::time::Instant::now();
    let mut waiting_since = started;
    while !plan.is_done() {
        for a in plan.to_start() {
            running.push(ask(a));
        }
        if plan.exhausted().is_some() {
            return Err(JobError::TooFewShards { got, needed: k });
        }
        tokio::select! {
            Some((index, read)) = running.next() => match read? {
                Some(data) => {
                    waiting_since = tokio::time::Instant::now();
                    plan.arrived_after(started.elapsed());
                    if plan.got(index) {
                        have[index] = Some(data);
                        got += 1;
                    }
                }
                None => plan.failed(index, "unreadable"),
            },
            () = tokio::time::sleep_until(waiting_since + plan.hedge_delay()) => {
                waiting_since = tokio::time::Instant::now();
                if let Some(a) = plan.hedge() {
                    running.push(ask(a));
                }
            }
        }
    }
    drop(running);
    let sharder = Sharder::new(redundancy);
    let sealed = sharder.rebuild(chunk_no, &mut have, entry.sealed_len as usize)?;
    let shards = sharder.encode(&sealed);
    if shards.ids() != entry.shards.as_slice() {
        return Err(JobError::RebuiltMismatch);
    }
    Ok(shards)
}

/// Move the placement `slot` of a chunk to `to` in one transaction: its loss report and
/// containment are dropped and the old copy goes to garbage collection at once. `false` when
/// the placement had already moved.
pub(super) async fn rehome(
    ctx: &Context,
    file_hex: &str,
    chunk: u64,
    slot: &Slot,
    to: NodeId,
    now: i64,
) -> Result<bool, JobError> {
    let mut tx = ctx.db.begin_write().await?;
    let gc_deleted_at = now - secs(ctx.durability.gc_grace);
    let moved = store::health::move_shard(&mut tx, file_hex, chunk, slot, &to.to_hex(), gc_deleted_at, now).await?;
    tx.commit().await?;
    Ok(moved)
}

/// The workers of `slots`, as the placement rules count them.
pub(super) fn holders<'a>(slots: impl Iterator<Item = &'a Slot>) -> Result<Vec<Candidate>, JobError> {
    slots
        .map(|s| {
            Ok(Candidate {
                node_id: s.node.parse()?,
                zone: s.zone.clone(),
                operator: s.operator.clone(),
            })
        })
        .collect()
}

/// Where shards `indices` of a chunk go among `targets`, given the workers `held` that keep its
/// healthy shards: indices into `targets`, or why there is no such placement.
pub(super) fn plan(
    targets: &[nodes::Writable],
    held: &[Candidate],
    total: usize,
    file: &FileId,
    chunk: u64,
    indices: &[usize],
) -> Result<Vec<usize>, JobError> {
    let candidates: Vec<Candidate> = targets.iter().map(Candidate::from).collect();
    Placer::new(&candidates, held, total)
        .and_then(|p| p.place(file, chunk, indices))
        .map_err(|source| JobError::Placement { chunk, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(file: &str, chunk: u64, lost_at: Option<i64>) -> Due {
        Due {
            file_hex: file.to_owned(),
            chunk,
            lost_at,
        }
    }

    /// Tried: a chunk found short 30 s after its worker's last heartbeat and repaired 20 s later,
    /// seen again by a pass in between; one short for a reason other than an offline worker; one
    /// that healed without a repair (its worker came back). Must hold: detection 30 s, repair
    /// 20 s (counted from the first sighting only), no detection time without an offline worker,
    /// and the healed chunk forgotten by the next complete pass.
    #[test]
    fn times_to_detect_and_to_repair_are_measured_from_the_first_sighting() {
        let mut t = Timings::default();
        t.found(
            &[due("a", 0, Some(70)), due("b", 1, None), due("c", 2, Some(90))],
            true,
            100,
        );
        t.found(
            &[due("a", 0, Some(70)), due("b", 1, None), due("c", 2, Some(90))],
            true,
            110,
        );
        t.repaired(&("a".to_owned(), 0), 120);
        t.found(&[due("b", 1, None)], true, 130);
        assert!(
            !t.first_seen.contains_key(&("c".to_owned(), 2)),
            "a healed chunk is forgotten"
        );
        // A pass that saw only part of the queue forgets nothing.
        t.found(&[], false, 140);
        assert!(t.first_seen.contains_key(&("b".to_owned(), 1)));
        let mut p = Progress::default();
        t.report(&mut p);
        assert_eq!(
            (p.time_to_detect_p50_secs, p.time_to_detect_max_secs),
            (Some(30), Some(30))
        );
        assert_eq!(
            (p.time_to_repair_p50_secs, p.time_to_repair_max_secs),
            (Some(20), Some(20))
        );
        for i in 0..2000 {
            push_kept(&mut t.to_repair, i);
        }
        assert_eq!(t.to_repair.len(), TIMES_KEPT);
        assert_eq!(median_and_max(&t.to_repair), (Some(1488), Some(1999)));
    }

    #[test]
    fn a_chunk_that_cannot_be_repaired_waits_longer_each_time() {
        assert_eq!(next_wait(None, 60), 60);
        assert_eq!(next_wait(Some(60), 60), 120);
        assert_eq!(next_wait(Some(2400), 60), MAX_BACKOFF_SECS);
        assert_eq!(next_wait(Some(MAX_BACKOFF_SECS), 60), MAX_BACKOFF_SECS);
        // Fast test settings (1 s) start at 1 s; a repair interval above the cap is the wait.
        assert_eq!(next_wait(None, 1), 1);
        assert_eq!(next_wait(None, 7200), 7200);
    }
}
