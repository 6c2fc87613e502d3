//! Hot files at the edge: extra copies of the shards of files read often, on the
//! best-connected workers, so a crowd of readers is not held to the pace of the slow ones.
//!
//! Reads are counted in memory where they are granted ([`ReadCounts`], fed by
//! `files::download`: owners' downloads, share opens and their renewals) — a read writes
//! nothing. The `hot` job ([`HotCopier::pass`], `--hot-interval`) then:
//!
//! - **cools** files read fewer than half of `--hot-reads` times in the last [`WINDOW`]: their
//!   copies go to garbage collection (after the grace, so downloads under way keep them);
//! - **heats** the files read at least `--hot-reads` times in the last [`WINDOW`] (the busiest
//!   [`FILES_PER_PASS`] of them, at most [`BYTES_PER_PASS`] copied per pass): it measures the
//!   workers holding the file's shards by timing a read of one of them (kept for [`PROBE_TTL`]),
//!   takes those at least half as fast as the fastest as the best-connected, and for every chunk
//!   with fewer than k shards on them copies shards held elsewhere onto them (data shards first,
//!   each to the fast worker holding the fewest of that chunk's shards), each read checked
//!   against its id and each write against the worker's signed receipt.
//!
//! Shards are content-addressed, so a copy is just another candidate for the same shard under
//! the same get tokens: readers get it in `FileDownload::copies` and rank it with the others
//! (`core::fetch`). Copies never count toward a chunk's redundancy: repair, audits, placement and
//! the durability figures read `file_shards` only ([`crate::store::copies`]).
//!
//! Counts are per server replica: with several, the replica running the job sees its own share.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use disktro_core::keys::PublicKey;
use disktro_core::{FileId, NodeId};

use super::error::JobError;
use super::fleet::{self, Fleet};
use crate::context::Context;
use crate::nodes::{Writable, online_since};
use crate::store::{self, copies, files::ShardLocation};

/// Reads are counted over this many seconds.
pub const WINDOW: i64 = 600;
/// Hot files heated per pass, busiest first.
pub const FILES_PER_PASS: usize = 4;
/// Bytes copied per pass at most; a bigger file is heated over several passes.
pub const BYTES_PER_PASS: u64 = 2 << 30;
/// A worker's measured speed is trusted this many seconds.
pub const PROBE_TTL: i64 = 3600;
/// Reads remembered per file: a file read this often is hot whatever the threshold.
const MAX_READS_KEPT: usize = 4096;

/// Reads granted per file, in memory.
#[derive(Debug, Default)]
pub struct ReadCounts {
    reads: Mutex<HashMap<FileId, VecDeque<i64>>>,
}

impl ReadCounts {
    /// A reader was granted `file` at `now`.
    pub fn record(&self, file: FileId, now: i64) {
        let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        let times = reads.entry(file).or_default();
        times.push_back(now);
        if times.len() > MAX_READS_KEPT {
            times.pop_front();
        }
    }

    /// Reads of each file in the [`WINDOW`] ending at `now`; files read in none are forgotten.
    pub fn recent(&self, now: i64) -> HashMap<FileId, usize> {
        let mut reads = self.reads.lock().unwrap_or_else(PoisonError::into_inner);
        reads.retain(|_, times| {
            while times.front().is_some_and(|&t| t <= now - WINDOW) {
                times.pop_front();
            }
            !times.is_empty()
        });
        reads.iter().map(|(f, t)| (*f, t.len())).collect()
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HotPass {
    pub files_heated: u64,
    pub copies_made: u64,
    pub bytes_copied: u64,
    pub copies_dropped: u64,
}

/// The `hot` job: its connections and the speeds it measured.
#[derive(Debug)]
pub struct HotCopier {
    fleet: Arc<Fleet>,
    /// Bytes per second of a read from each worker, and when measured.
    speeds: tokio::sync::Mutex<HashMap<NodeId, (f64, i64)>>,
}

impl HotCopier {
    pub fn new(fleet: Arc<Fleet>) -> Self {
        Self {
            fleet,
            speeds: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Cool the files read little, heat the files read often.
    pub async fn pass(&self, ctx: &Context, now: i64) -> Result<HotPass, JobError> {
        let threshold = usize::try_from(ctx.durability.hot_reads).unwrap_or(usize::MAX);
        let recent = if threshold == 0 {
            HashMap::new()
        } else {
            ctx.reads.recent(now)
        };
        let mut done = HotPass::default();
        for (file_hex, _) in copies::files(&ctx.db).await? {
            let reads = file_hex
                .parse::<FileId>()
                .ok()
                .and_then(|f| recent.get(&f).copied())
                .unwrap_or(0);
            if threshold == 0 || reads * 2 < threshold {
                let mut tx = ctx.db.begin_write().await?;
                done.copies_dropped += copies::drop_file(&mut tx, &file_hex, now).await?;
                tx.commit().await?;
                tracing::info!(file = %file_hex, reads, "hot file cooled down; its copies go");
            }
        }
        if threshold == 0 {
            return Ok(done);
        }
        let mut hot: Vec<(FileId, usize)> = recent.into_iter().filter(|(_, n)| *n >= threshold).collect();
        hot.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.to_hex().cmp(&b.0.to_hex())));
        if hot.is_empty() {
            return Ok(done);
        }
        let targets = store::nodes::writable(&ctx.db, online_since(now, ctx.heartbeat_interval), 0).await?;
        let keys = store::nodes::keys(&ctx.db).await?;
        let mut budget = BYTES_PER_PASS;
        for (file, reads) in hot.into_iter().take(FILES_PER_PASS) {
            let (made, bytes) = self.heat(ctx, &targets, &keys, file, budget, now).await?;
            if made > 0 {
                done.files_heated += 1;
                tracing::info!(file = %file.to_hex(), reads, copies = made, bytes, "hot file copied to the best-connected workers");
            }
            done.copies_made += made;
            done.bytes_copied += bytes;
            budget = budget.saturating_sub(bytes);
            if budget == 0 {
                break;
            }
        }
        Ok(done)
    }

    /// Bring every chunk of `file` to k shards on the best-connected workers; returns the copies
    /// made and their bytes.
    async fn heat(
        &self,
        ctx: &Context,
        targets: &[Writable],
        keys: &HashMap<NodeId, PublicKey>,
        file: FileId,
        budget: u64,
        now: i64,
    ) -> Result<(u64, u64), JobError> {
        let hex = file.to_hex();
        let Some(stored) = store::files::read(&ctx.db, &hex).await? else {
            return Ok((0, 0));
        };
        let k = usize::try_from(stored.data_shards)?;
        let shards = store::files::locations(&ctx.db, &hex).await?;
        let fast = self.best_connected(ctx, targets, &shards, file, now).await;
        if fast.is_empty() {
            return Ok((0, 0));
        }
        let copied = copies::of_file(&ctx.db, &hex).await?;
        // Per chunk: (index, location) of every shard, and the nodes holding a copy of which.
        let mut chunks: Vec<Vec<(usize, &ShardLocation)>> = Vec::new();
        for s in &shards {
            let c = usize::try_from(s.chunk)?;
            if chunks.len() <= c {
                chunks.resize_with(c + 1, Vec::new);
            }
            let idx = chunks[c].len();
            chunks[c].push((idx, s));
        }
        let (mut made, mut bytes) = (0u64, 0u64);
        // Spread the copies: the least used fast worker first.
        let mut load: HashMap<NodeId, u64> = fast.iter().map(|w| (w.node_id, 0)).collect();
        for (c, located) in chunks.iter().enumerate() {
            let chunk = c as u64;
            // Shards of this chunk each worker holds (placed or copied): a worker may hold
            // several (copies count for nothing), but never one twice, and the fewest first.
            let mut holding: HashMap<NodeId, HashSet<usize>> = HashMap::new();
            for (i, s) in located {
                holding.entry(s.node).or_default().insert(*i);
            }
            let mut readable_fast: HashSet<usize> = located
                .iter()
                .filter(|(_, s)| load.contains_key(&s.node))
                .map(|(i, _)| *i)
                .collect();
            for copy in copied.iter().filter(|cp| cp.location.chunk == chunk) {
                let idx = usize::try_from(copy.idx)?;
                holding.entry(copy.location.node).or_default().insert(idx);
                if load.contains_key(&copy.location.node) {
                    readable_fast.insert(idx);
                }
            }
            // Data shards first: k of them need no decoding.
            for (idx, source) in located {
                if readable_fast.len() >= k {
                    break;
                }
                if readable_fast.contains(idx) {
                    continue;
                }
                if bytes + source.size > budget {
                    return Ok((made, bytes));
                }
                let held = |w: &Writable| holding.get(&w.node_id).map_or(0, HashSet::len);
                let Some(target) = fast
                    .iter()
                    .filter(|w| !holding.get(&w.node_id).is_some_and(|h| h.contains(idx)))
                    .min_by_key(|w| (held(w), load.get(&w.node_id).copied().unwrap_or(0)))
                else {
                    break;
                };
                let data = match self
                    .fleet
                    .fetch(&ctx.key, source.node, &source.url, file, source.shard, source.size, now)
                    .await
                {
                    Ok(data) => data,
                    Err(e) => {
                        tracing::debug!(node = %source.node, error = %e, "hot copy: read failed");
                        continue;
                    }
                };
                let size = data.len() as u64;
                let receipt = self
                    .fleet
                    .store(&ctx.key, target.node_id, &target.url, file, source.shard, data, now)
                    .await;
                match receipt {
                    Ok(r) if fleet::receipt_holds(keys, &r, target.node_id, source.shard, size) => {
                        copies::add(
                            &ctx.db,
                            &hex,
                            chunk,
                            *idx as u64,
                            &source.shard,
                            &target.node_id,
                            size,
                            now,
                        )
                        .await?;
                        holding.entry(target.node_id).or_default().insert(*idx);
                        readable_fast.insert(*idx);
                        *load.entry(target.node_id).or_default() += 1;
                        made += 1;
                        bytes += size;
                    }
                    Ok(_) => tracing::warn!(node = %target.node_id, "hot copy answered with an invalid receipt"),
                    Err(e) => tracing::debug!(node = %target.node_id, error = %e, "hot copy: write failed"),
                }
            }
        }
        Ok((made, bytes))
    }

    /// The writable workers at least half as fast as the fastest, by a timed read of one shard
    /// of `file` each holds (measured once per [`PROBE_TTL`]); workers holding none of it keep
    /// the speed measured before, if any.
    async fn best_connected<'a>(
        &self,
        ctx: &Context,
        targets: &'a [Writable],
        shards: &[ShardLocation],
        file: FileId,
        now: i64,
    ) -> Vec<&'a Writable> {
        let stale: Vec<&ShardLocation> = {
            let speeds = self.speeds.lock().await;
            let mut seen = HashSet::new();
            shards
                .iter()
                .filter(|s| targets.iter().any(|t| t.node_id == s.node))
                .filter(|s| speeds.get(&s.node).is_none_or(|(_, at)| now - at > PROBE_TTL))
                .filter(|s| seen.insert(s.node))
                .collect()
        };
        let probes = stale.into_iter().map(|s| async move {
            let started = Instant::now();
            let read = self
                .fleet
                .fetch(&ctx.key, s.node, &s.url, file, s.shard, s.size, now)
                .await;
            read.ok().map(|data| {
                #[allow(clippy::cast_precision_loss)]
                let speed = data.len() as f64 / started.elapsed().as_secs_f64().max(1e-6);
                (s.node, speed)
            })
        });
        let measured = futures_util::future::join_all(probes).await;
        let mut speeds = self.speeds.lock().await;
        for (node, speed) in measured.into_iter().flatten() {
            speeds.insert(node, (speed, now));
        }
        let fastest = targets
            .iter()
            .filter_map(|t| speeds.get(&t.node_id).map(|(s, _)| *s))
            .fold(0.0, f64::max);
        targets
            .iter()
            .filter(|t| speeds.get(&t.node_id).is_some_and(|(s, _)| *s >= fastest / 2.0))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_counted_over_the_window_and_then_forgotten() {
        let counts = ReadCounts::default();
        let (a, b) = (FileId::random(), FileId::random());
        for t in 0..30 {
            counts.record(a, 1_000 + t);
        }
        counts.record(b, 1_000);
        let now = 1_000 + WINDOW;
        let recent = counts.recent(now);
        assert_eq!(recent.get(&a), Some(&29), "the read at the window's start is out");
        assert_eq!(recent.get(&b), None);
        assert!(counts.recent(now + WINDOW).is_empty());
    }
}
