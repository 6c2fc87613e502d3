//! Which shards of one chunk a reader asks for, and when it asks one more: the rule the CLI and
//! the browser both follow, written once and free of I/O. The caller keeps the sockets and the
//! timers and tells the plan what happened; the plan says what to ask for next.
//!
//! - **Ranking**: online workers before suspect ones before offline ones, and within each, data
//!   shards before parity (k data shards need no decoding).
//! - **Enough in flight**: as many requests run as shards are still missing.
//! - **Failure**: a failed request (refused, wrong bytes, connection lost) is replaced by the next
//!   candidate.
//! - **Hedging**: when nothing has answered for [`ChunkPlan::hedge_delay`], one more candidate is
//!   asked on top: [`HEDGE_AFTER`] until the chunk's first shard is in, then
//!   [`HEDGE_FACTOR`] times the time that first shard took (at least [`MIN_HEDGE`]). A stalled
//!   worker costs a chunk [`HEDGE_AFTER`] at most, never the connection's timeout; a slow one
//!   among fast ones, a few of their shard times.
//!   Whichever answers first counts; a late duplicate is ignored.
//! - **Stragglers**: the requests still unanswered when a chunk has its k shards name workers a
//!   reader should rank last for the chunks after ([`ChunkPlan::stragglers`]), so a stalled
//!   worker costs one window of chunks [`HEDGE_AFTER`], not every chunk.
//!
//! - **Eager start**: until k nodes have answered the download, a chunk asks every online
//!   candidate not known slow and takes the first k answers ([`ChunkPlan::eager`]).
//! - **Connections**: a worker whose connection ended is connected again, a few times and not
//!   at once after a failure ([`Reconnects`]); a chunk that ran out of candidates is asked again
//!   [`CHUNK_RETRIES`] times.
//!
//! [`Reads`] is what a download keeps across its chunks: the get tokens in hand per node, when
//! they are due for renewal (a quarter of their remaining lifetime before they expire, at most a
//! minute), the fresh ones a renewal brings, the stragglers so far, and each node's measured
//! throughput (starting from an earlier download's figures, [`Reads::remembering`]).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use crate::api::{FileDownload, NodeStatus, ReadToken};
use crate::token::Token;

/// How long a chunk waits on its requests before asking one more worker, at most.
pub const HEDGE_AFTER: Duration = Duration::from_secs(5);
/// Once a chunk has a shard, how many times that shard's time it waits for the rest before
/// asking one more worker: shards asked together arrive together from nodes equally fast.
pub const HEDGE_FACTOR: u32 = 3;
/// The shortest hedge delay, so the spread of a fast network's answers asks no one more.
pub const MIN_HEDGE: Duration = Duration::from_millis(50);
/// The shortest wait for an eager chunk's last answers ([`ChunkPlan::grace`]).
pub const MIN_GRACE: Duration = Duration::from_millis(20);

/// Times a chunk that ran out of candidates is asked again, [`CHUNK_RETRY_AFTER`] apart: workers
/// that reset their connections or are restarting may answer again in a moment.
pub const CHUNK_RETRIES: u32 = 2;
/// How long a chunk out of candidates waits before it is asked again.
pub const CHUNK_RETRY_AFTER: Duration = Duration::from_secs(2);
/// Connections a transfer opens to one worker at most: the first, and again after one ended.
pub const MAX_CONNECTS: u32 = 4;
/// After a failed connection attempt, the next to that worker waits this long times the
/// attempts so far (its requests go to other workers meanwhile).
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// When a transfer may connect to one worker (again): the first time, after a connection ended
/// (a restarted worker, or one that reset it under load, is not lost for the rest of the
/// transfer), at most [`MAX_CONNECTS`] times, and not sooner than [`RECONNECT_AFTER`] × attempts
/// after a failed attempt. Times are the caller's clock.
#[derive(Debug, Clone, Default)]
pub struct Reconnects {
    attempts: u32,
    retry_at: Option<Duration>,
}

impl Reconnects {
    /// Whether a connection may be attempted at `now`.
    pub fn may_connect(&self, now: Duration) -> bool {
        self.attempts < MAX_CONNECTS && self.retry_at.is_none_or(|at| now >= at)
    }

    /// An attempt starts.
    pub fn attempt(&mut self) {
        self.attempts += 1;
        self.retry_at = None;
    }

    /// The attempt failed at `now`.
    pub fn failed(&mut self, now: Duration) {
        self.retry_at = Some(now + RECONNECT_AFTER * self.attempts);
    }
}

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
    /// Requests started beyond those needed ([`Self::eager`]).
    eager: usize,
    got: Vec<bool>,
    have: usize,
    running: Vec<Ask>,
    /// Candidates for a slot that was asked already when their turn came (copies), kept for
    /// hedges and failures.
    spare: VecDeque<Ask>,
    failures: Vec<String>,
    /// How long the first shard took, from the chunk's first request.
    first_shard: Option<Duration>,
}

impl ChunkPlan {
    /// A plan for a chunk whose shard `slot` is on node `locations[slot]`, needing `k` of them;
    /// `status` gives each node's health as the server last saw it.
    pub fn new(locations: &[u16], k: usize, status: impl Fn(usize) -> NodeStatus) -> Self {
        Self::ranked(locations, k, |n| 2 * status_rank(status(n)))
    }

    /// [`Self::new`] with each node's tier given (lower asked first; within a tier, data shards
    /// first).
    pub fn ranked(locations: &[u16], k: usize, tier: impl Fn(usize) -> u8) -> Self {
        Self::with_copies(locations, &[], k, tier)
    }

    /// [`Self::ranked`] with extra copies of some shards (`[slot, node]`, a hot file's): more
    /// candidates for the same slots. Within a tier, the nodes holding copies (the server put
    /// them on the workers it measured best-connected) are asked first, then data shards first.
    /// One request per slot runs at a time, but for a hedge.
    pub fn with_copies(locations: &[u16], copies: &[[u16; 2]], k: usize, tier: impl Fn(usize) -> u8) -> Self {
        let mut queue: Vec<Ask> = locations
            .iter()
            .enumerate()
            .map(|(slot, &node)| Ask {
                slot,
                node: usize::from(node),
            })
            .chain(
                copies
                    .iter()
                    .filter(|[slot, _]| usize::from(*slot) < locations.len())
                    .map(|&[slot, node]| Ask {
                        slot: usize::from(slot),
                        node: usize::from(node),
                    }),
            )
            .collect();
        // The server put copies on the workers it measured best-connected: within a tier, what
        // they hold (their placements too) is asked first.
        let copy_holders: HashSet<usize> = copies.iter().map(|[_, node]| usize::from(*node)).collect();
        queue.sort_by_key(|a| (tier(a.node), !copy_holders.contains(&a.node), a.slot));
        Self {
            queue: queue.into(),
            need: k,
            eager: 0,
            got: vec![false; locations.len()],
            have: 0,
            running: Vec::new(),
            spare: VecDeque::new(),
            failures: Vec::new(),
            first_shard: None,
        }
    }

    /// Start `extra` requests beyond those needed, and take the first answers: for a chunk asked
    /// before the reader knows which workers are fast.
    #[must_use]
    pub fn eager(mut self, extra: usize) -> Self {
        self.eager = extra;
        self
    }

    /// A shard arrived `since_start` after the chunk's first request (any shard; only the first
    /// counts).
    pub fn arrived_after(&mut self, since_start: Duration) {
        self.first_shard.get_or_insert(since_start);
    }

    /// How long to wait for an answer before [`Self::hedge`]: [`HEDGE_AFTER`], or once a shard
    /// is in, [`HEDGE_FACTOR`] times its time (between [`MIN_HEDGE`] and [`HEDGE_AFTER`]).
    pub fn hedge_delay(&self) -> Duration {
        self.first_shard.map_or(HEDGE_AFTER, |first| {
            (first * HEDGE_FACTOR).clamp(MIN_HEDGE, HEDGE_AFTER)
        })
    }

    /// Requests to start now so that, with those running, the missing shards are all asked for.
    pub fn to_start(&mut self) -> Vec<Ask> {
        let mut out = Vec::new();
        while self.have + self.running.len() < self.need + self.eager {
            // A copy set aside whose slot's request failed comes first (it was ranked earlier).
            let ask = match self.spare.iter().position(|a| self.is_free(a)) {
                Some(i) => self.spare.remove(i),
                None => self.queue.pop_front(),
            };
            let Some(ask) = ask else { break };
            // Another candidate for a slot already asked (a copy) waits for a hedge or a failure.
            if !self.is_free(&ask) {
                if !self.had(ask.slot) {
                    self.spare.push_back(ask);
                }
                continue;
            }
            self.running.push(ask);
            out.push(ask);
        }
        out
    }

    fn had(&self, slot: usize) -> bool {
        self.got.get(slot).copied().unwrap_or(true)
    }

    /// Neither had nor asked already.
    fn is_free(&self, ask: &Ask) -> bool {
        !self.had(ask.slot) && !self.running.iter().any(|r| r.slot == ask.slot)
    }

    /// Nothing answered for [`Self::hedge_delay`]: one more request, if a candidate is left.
    pub fn hedge(&mut self) -> Option<Ask> {
        if self.is_done() {
            return None;
        }
        // A slot not had yet: from the queue first (the next in rank), else a copy set aside.
        let ask = loop {
            let ask = self.queue.pop_front().or_else(|| self.spare.pop_front())?;
            if !self.had(ask.slot) {
                break ask;
            }
        };
        self.running.push(ask);
        Some(ask)
    }

    /// The request for `slot` brought its verified shard. `false` for a duplicate (the slot was
    /// already had), which the caller drops.
    pub fn got(&mut self, slot: usize) -> bool {
        // Any other request for the slot (a hedge) is left to straggle: its answer is dropped.
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
        // One request for the slot ended; another (a copy asked as a hedge) may still run.
        if let Some(i) = self.running.iter().position(|a| a.slot == slot) {
            self.running.remove(i);
        }
        self.failures.push(why.into());
    }

    /// How much longer to wait, once the chunk is done after `done_after`, for the requests
    /// still out before dropping them: for an eager chunk ([`Self::eager`]), half its time (at
    /// least [`MIN_GRACE`]), so that workers that lost the race by a little are measured (and not
    /// taken for stragglers, which would leave a fast network's reads to k fixed workers,
    /// decoding parity); `None` otherwise.
    pub fn grace(&self, done_after: Duration) -> Option<Duration> {
        (self.eager > 0 && self.is_done() && !self.running.is_empty()).then(|| (done_after / 2).max(MIN_GRACE))
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
        let spare_left = self.spare.iter().any(|a| !self.had(a.slot));
        (!self.is_done() && self.running.is_empty() && self.queue.is_empty() && !spare_left).then(|| {
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

fn status_rank(status: NodeStatus) -> u8 {
    match status {
        NodeStatus::Online => 0,
        NodeStatus::Suspect => 1,
        NodeStatus::Offline => 2,
    }
}

/// A node is slow when its measured throughput is under this share of the fastest node's.
const SLOW_SHARE: f64 = 0.5;
/// A node measured this many times slower than the fastest is known slow enough not to be asked
/// eagerly ([`ChunkPlan::eager`]): one a few times slower costs an eager chunk nothing (its
/// answer is not waited for), and figures that close apart are often noise (a figure from an
/// earlier download, a busy moment), while leaving out a fast node can leave a chunk a shard
/// short until its hedge.
const FAR_SLOWER: f64 = 8.0;
/// The last of the online nodes' tiers ([`lateness_tier`]).
const SLOWEST_ONLINE_TIER: u8 = 3;

/// An online node's tier from when its next shard would arrive, in multiples of the soonest
/// node's: 0 within [`SLOW_SHARE`]'s factor of it, then one tier per factor of four (up to 8×,
/// up to 32×, later), so nodes of about one pace share a tier and are asked data shards first.
fn lateness_tier(late_by: f64) -> u8 {
    if !late_by.is_finite() || late_by > 32.0 {
        SLOWEST_ONLINE_TIER
    } else if late_by > FAR_SLOWER {
        2
    } else {
        u8::from(late_by > 1.0 / SLOW_SHARE)
    }
}
/// Weight of a new measurement in a node's throughput estimate.
const SPEED_WEIGHT: f64 = 0.3;

/// What one download keeps across its chunks, free of I/O: the get tokens per node of the
/// download's answer (by index), when they are due for renewal, the nodes that straggled, and
/// each node's measured throughput. Times are durations since the Unix epoch (the caller's
/// clock).
///
/// Ranking ([`Reads::plan`]): online nodes first, and among them those measured at least half as
/// fast as the fastest (or not measured yet and not being measured: every node gets its chance,
/// one request at a time) before the slower ones and those whose first answer is still out,
/// the slower ones in tiers by how much slower ([`lateness_tier`]); then suspect nodes and nodes
/// that straggled; offline last. Within a tier, data shards first. Half, not "the fastest k":
/// measurements are noisy, and a node half as fast still delivers its shard while the others do.
#[derive(Debug, Clone)]
pub struct Reads {
    file_id: crate::FileId,
    nodes: Vec<(crate::NodeId, NodeStatus)>,
    tokens: Vec<Vec<ReadToken>>,
    renew_at: Option<Duration>,
    slow: HashSet<usize>,
    /// Bytes per second, a moving average of the gets answered.
    speed: Vec<Option<f64>>,
    /// Gets out to each node now: a node is ranked by when it would deliver one more shard,
    /// its queue included, so a slow node (or one not measured yet) is not handed a whole window
    /// of chunks at once.
    pending: Vec<u32>,
    /// Nodes that answered this download (the others' speeds, if any, are remembered ones).
    answered: Vec<bool>,
    /// Rank by measured speed (off: by health and straggling alone, to measure what the speed
    /// ranking is worth).
    rank_by_speed: bool,
}

impl Reads {
    /// The tokens of `answer`, read at `now`.
    pub fn new(answer: &FileDownload, now: Duration) -> Self {
        let tokens: Vec<Vec<ReadToken>> = answer.nodes.iter().map(|n| n.tokens.clone()).collect();
        Self {
            file_id: answer.file_id,
            nodes: answer.nodes.iter().map(|n| (n.node_id, n.status)).collect(),
            renew_at: renewal_due(&tokens, now),
            speed: vec![None; tokens.len()],
            pending: vec![0; tokens.len()],
            answered: vec![false; tokens.len()],
            tokens,
            slow: HashSet::new(),
            rank_by_speed: true,
        }
    }

    /// Rank by health and straggling alone, as before speeds were measured (`make bench`
    /// measures what the speed ranking is worth with it).
    #[must_use]
    pub fn without_speed_ranking(mut self) -> Self {
        self.rank_by_speed = false;
        self
    }

    /// Take throughputs measured by earlier downloads (bytes per second, by node id) as this
    /// download's first estimates: a node known slow is not handed the first chunks, and
    /// nodes known are not asked all at once to learn which are fast. This download's own
    /// answers replace them as they come.
    #[must_use]
    pub fn remembering(mut self, known: impl Fn(&crate::NodeId) -> Option<f64>) -> Self {
        for ((id, _), speed) in self.nodes.iter().zip(&mut self.speed) {
            *speed = known(id).filter(|s| s.is_finite() && *s > 0.0);
        }
        self
    }

    /// The throughput of each node that answered this download, by id (a remembered figure
    /// updated by what it delivered): for the next download to start from
    /// ([`Self::remembering`]).
    pub fn speeds(&self) -> impl Iterator<Item = (crate::NodeId, f64)> + '_ {
        self.nodes
            .iter()
            .zip(&self.speed)
            .zip(&self.answered)
            .filter(|(_, answered)| **answered)
            .filter_map(|(((id, _), speed), _)| speed.map(|s| (*id, s)))
    }

    /// Node `node`'s get token for chunk `chunk`, if one covers it.
    pub fn token(&self, node: usize, chunk: u64) -> Option<&[u8]> {
        self.tokens
            .get(node)?
            .iter()
            .find(|t| t.first_chunk <= chunk && chunk <= t.last_chunk)
            .map(|t| t.token.as_bytes())
    }

    /// Whether fresh tokens should be asked for now.
    pub fn renewal_due(&self, now: Duration) -> bool {
        self.renew_at.is_some_and(|at| now >= at)
    }

    /// Take the tokens of a fresh answer for the same file: each node the first answer named
    /// gets its new tokens (shards placed elsewhere since are reached through the other
    /// candidates). `false`, and nothing changed, when `fresh` is about another file.
    pub fn renewed(&mut self, fresh: FileDownload, now: Duration) -> bool {
        if fresh.file_id != self.file_id {
            return false;
        }
        for node in fresh.nodes {
            if let Some(n) = self.nodes.iter().position(|(id, _)| *id == node.node_id) {
                self.nodes[n].1 = node.status;
                self.tokens[n] = node.tokens;
            }
        }
        self.renew_at = renewal_due(&self.tokens, now);
        true
    }

    /// Nodes left unanswered by a finished chunk ([`ChunkPlan::stragglers`]), whose gets the
    /// caller drops now: they are no longer out, and the nodes rank with the suspect ones.
    pub fn straggled(&mut self, nodes: impl IntoIterator<Item = usize>) {
        for node in nodes {
            self.unanswered(node);
            self.slow.insert(node);
            // A figure remembered from an earlier download that this one has not confirmed is
            // wrong now: it must not set the pace the others are measured against, nor be
            // remembered again ([`Self::disproved`]).
            if !self.answered.get(node).copied().unwrap_or(true) {
                self.speed[node] = None;
            }
        }
    }

    /// Nodes that straggled without answering this download once: whatever an earlier
    /// download measured of them is to be forgotten (the next download asks them afresh).
    pub fn disproved(&self) -> impl Iterator<Item = crate::NodeId> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(n, _)| self.slow.contains(n) && !self.answered[*n])
            .map(|(_, (id, _))| *id)
    }

    /// A get goes out to `node` now: returns how many were out to it already, for
    /// [`Self::observed`] (a failure goes to [`Self::unanswered`]).
    pub fn asking(&mut self, node: usize) -> u32 {
        self.pending.get_mut(node).map_or(0, |p| {
            *p += 1;
            *p - 1
        })
    }

    /// The get to `node` failed: it measured nothing.
    pub fn unanswered(&mut self, node: usize) {
        if let Some(p) = self.pending.get_mut(node) {
            *p = p.saturating_sub(1);
        }
    }

    /// Node `node` answered a get of `bytes` in `elapsed` (from the request to its answer),
    /// asked with `queued` gets to it already out ([`Self::asking`]): the node's throughput is
    /// what it delivered over that time, theirs included.
    pub fn observed(&mut self, node: usize, bytes: u64, elapsed: Duration, queued: u32) {
        self.unanswered(node);
        let Some(speed) = self.speed.get_mut(node) else { return };
        self.answered[node] = true;
        // It answered: no longer a straggler (its speed says where it ranks).
        self.slow.remove(&node);
        #[allow(clippy::cast_precision_loss)]
        let measured = (bytes as f64) * f64::from(queued + 1) / elapsed.as_secs_f64().max(1e-6);
        *speed = Some(speed.map_or(measured, |s| s + SPEED_WEIGHT * (measured - s)));
    }

    /// Not measured yet, and a get is out to it: its first answer will tell.
    fn probing(&self, node: usize) -> bool {
        self.speed.get(node).is_some_and(Option::is_none) && self.pending.get(node).is_some_and(|p| *p > 0)
    }

    fn fastest(&self) -> f64 {
        self.speed.iter().flatten().copied().fold(0.0, f64::max)
    }

    fn slower_than(&self, node: usize, bar: f64) -> bool {
        self.speed.get(node).copied().flatten().is_some_and(|s| s < bar)
    }

    /// Whether `node` is measured at under half the fastest node's throughput.
    pub fn is_slow(&self, node: usize) -> bool {
        self.slower_than(node, SLOW_SHARE * self.fastest())
    }

    /// The plan for a chunk located at `locations`, needing `k`, ranked as the type says.
    pub fn plan(&self, locations: &[u16], k: usize) -> ChunkPlan {
        self.plan_with_copies(locations, &[], k)
    }

    /// [`Self::plan`] with a hot file's extra copies of some shards (`FileDownload::copies`).
    pub fn plan_with_copies(&self, locations: &[u16], copies: &[[u16; 2]], k: usize) -> ChunkPlan {
        // Once per chunk, not once per candidate.
        let fastest = self.fastest();
        // When one more shard would arrive from node `n`, its queue included, in units of the
        // fastest node's shard time; a node not measured yet counts as fast as the fastest.
        let due = |n: usize| {
            let speed = self
                .speed
                .get(n)
                .copied()
                .flatten()
                .unwrap_or(fastest)
                .max(f64::MIN_POSITIVE);
            let queue = self.pending.get(n).copied().unwrap_or(0);
            f64::from(queue + 1) * if fastest > 0.0 { fastest / speed } else { 1.0 }
        };
        // A hot file's copies are on the workers the server measured best-connected: until this
        // reader has measured a node itself, those are taken as fast and the others as slow
        // (slower than any holder measured, however many gets are out to it: the server put no
        // copy there for a reason).
        let holders: HashSet<usize> = copies.iter().map(|[_, n]| usize::from(*n)).collect();
        let unmeasured = |n: usize| self.speed.get(n).is_some_and(Option::is_none);
        let presumed_slow =
            |n: usize| self.rank_by_speed && !holders.is_empty() && unmeasured(n) && !holders.contains(&n);
        let soonest = locations
            .iter()
            .copied()
            .chain(copies.iter().map(|[_, n]| *n))
            .map(usize::from)
            .filter(|n| {
                matches!(self.nodes.get(*n), Some((_, NodeStatus::Online)))
                    && !self.slow.contains(n)
                    && !presumed_slow(*n)
            })
            .map(due)
            .fold(f64::INFINITY, f64::min);
        // Until k workers have answered this download, a chunk of a file without hot copies asks
        // every online candidate not known far slower (measured, or remembered; `FAR_SLOWER`) at
        // once and takes the first k answers: the first chunks are not held to the slowest
        // workers' pace, nor to a remembered figure that is no longer true (a few chunks' extra
        // shards, once per download). Suspect, offline and straggling nodes are still asked only
        // as fallbacks.
        // A hot file's copy holders were measured by the server: no need to ask everyone.
        let answered = self.answered.iter().filter(|a| **a).count();
        let eager = if self.rank_by_speed && answered < k && copies.is_empty() {
            let ready = locations
                .iter()
                .map(|n| usize::from(*n))
                .filter(|n| {
                    matches!(self.nodes.get(*n), Some((_, NodeStatus::Online)))
                        && !self.slow.contains(n)
                        && !self.slower_than(*n, fastest / FAR_SLOWER)
                })
                .count();
            ready.saturating_sub(k)
        } else {
            0
        };
        // Tiers: online nodes 0 ..= SLOWEST_ONLINE_TIER by when they would deliver, then
        // suspect nodes and stragglers, then offline ones.
        let below_online = |status: NodeStatus| SLOWEST_ONLINE_TIER + 2 * status_rank(status);
        let plan = ChunkPlan::with_copies(locations, copies, k, |n| match self.nodes.get(n) {
            None => below_online(NodeStatus::Offline),
            // A straggler ranks with the suspect nodes; one measured fast (it lost a race) with
            // the slow online ones, before them.
            Some((_, NodeStatus::Online)) if self.slow.contains(&n) => {
                let measured_fast =
                    self.speed.get(n).copied().flatten().is_some() && !self.slower_than(n, SLOW_SHARE * fastest);
                if measured_fast {
                    1
                } else {
                    below_online(NodeStatus::Suspect)
                }
            }
            Some((_, NodeStatus::Online)) if presumed_slow(n) => SLOWEST_ONLINE_TIER,
            Some((_, NodeStatus::Online)) if self.rank_by_speed && !holders.is_empty() && unmeasured(n) => 0,
            Some((_, NodeStatus::Online)) if !self.rank_by_speed => 0,
            // Not measured yet with a get already out: with the slow ones (its first answer
            // will tell), after those only somewhat late.
            Some((_, NodeStatus::Online)) if self.probing(n) => 2,
            // Later than twice the soonest (half the speed, as `is_slow` says, or a queue twice
            // as long): after the others, and among the late ones the sooner first — a node
            // twice as slow as the fastest is not to wait behind a data shard on a node fifty
            // times as slow (data shards first holds only among nodes of about one pace).
            Some((_, NodeStatus::Online)) => lateness_tier(due(n) / soonest),
            Some((_, status)) => below_online(*status),
        });
        plan.eager(eager)
    }
}

/// When the earliest-expiring of `tokens` is due for renewal at `now`: with a quarter of its
/// remaining lifetime (at most a minute) left, so a slow download renews a few times an hour
/// and a short lifetime still leaves time to renew. `None` when no token names a future expiry.
fn renewal_due(tokens: &[Vec<ReadToken>], now: Duration) -> Option<Duration> {
    let earliest = tokens
        .iter()
        .flatten()
        .filter_map(|t| Token::decode(t.token.as_bytes()).ok())
        .map(|t| Duration::from_secs(t.expires_at))
        .filter(|&at| at > now)
        .min()?;
    let left = earliest - now;
    Some(now + left - (left / 4).min(Duration::from_secs(60)))
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

    /// A download answer for `file` from 3 nodes, each with one get token for chunks 0..=9
    /// expiring at `expires_at` (unix seconds), node 2 seen suspect.
    fn answer(file: crate::FileId, nodes: &[crate::NodeId], expires_at: u64) -> FileDownload {
        let server = crate::keys::Keypair::generate();
        let token = |worker: crate::NodeId| {
            Token {
                operation: crate::token::Operation::Get,
                issuer: server.public(),
                worker,
                scope: crate::token::Scope::File(file),
                serial: crate::Serial::random(),
                expires_at,
                byte_budget: 1 << 20,
                order_key: None,
                shards: vec![crate::ShardId([7; 32])],
            }
            .sign(&server)
            .unwrap()
        };
        FileDownload {
            file_id: file,
            manifest: crate::api::Base64::new(Vec::new()),
            metadata: crate::api::Base64::new(Vec::new()),
            wrapped_key: None,
            size: 0,
            created_at: 0,
            nodes: nodes
                .iter()
                .enumerate()
                .map(|(i, &node_id)| crate::api::ReadNode {
                    node_id,
                    url: format!("ws://127.0.0.1:{}", 9000 + i),
                    status: if i == 2 {
                        NodeStatus::Suspect
                    } else {
                        NodeStatus::Online
                    },
                    tokens: vec![ReadToken {
                        first_chunk: 0,
                        last_chunk: 9,
                        token: crate::api::Base64::new(token(node_id)),
                    }],
                })
                .collect(),
            locations: vec![vec![0, 1, 2]; 10],
            copies: Vec::new(),
            download_id: None,
        }
    }

    #[test]
    fn tokens_are_due_for_renewal_a_quarter_of_their_life_before_they_expire() {
        // Tried: tokens with 40 s left, then 1 h left; a fresh answer for another file; one for
        // the same file naming the nodes in another order, and a node the first did not name.
        // Must hold: due at 30 s (a quarter of 40 s before expiry) and at 59 min (at most a
        // minute before); the other file's answer changes nothing; the same file's gives each
        // node its own fresh token; the unknown node is ignored.
        let file = crate::FileId::random();
        let nodes: Vec<crate::NodeId> = (0..4).map(|i| crate::NodeId([i; 32])).collect();
        let now = Duration::from_secs(1_000_000);
        let first = answer(file, &nodes[..3], 1_000_040);
        let mut reads = Reads::new(&first, now);
        assert_eq!(reads.token(1, 9), Some(first.nodes[1].tokens[0].token.as_bytes()));
        assert_eq!(reads.token(1, 10), None, "no token covers chunk 10");
        assert!(!reads.renewal_due(now + Duration::from_secs(29)));
        assert!(reads.renewal_due(now + Duration::from_secs(30)));

        assert!(!reads.renewed(answer(crate::FileId::random(), &nodes[..3], 1_003_600), now));
        assert!(
            reads.renewal_due(now + Duration::from_secs(30)),
            "another file's tokens were taken"
        );

        let mut fresh = answer(file, &[nodes[2], nodes[0], nodes[3]], 1_003_600);
        fresh.nodes[0].status = NodeStatus::Online;
        let expected = fresh.nodes[0].tokens[0].token.clone();
        assert!(reads.renewed(fresh, now));
        assert_eq!(
            reads.token(2, 0),
            Some(expected.as_bytes()),
            "node 2 has its own fresh token"
        );
        assert_eq!(
            reads.token(1, 0),
            Some(first.nodes[1].tokens[0].token.as_bytes()),
            "node 1 keeps its old one"
        );
        // Node 1's old token still expires first: due a quarter of its 40 s before.
        assert!(reads.renewal_due(now + Duration::from_secs(30)));
        let mut all_fresh = answer(file, &nodes[..3], 1_003_600);
        all_fresh.nodes[2].status = NodeStatus::Online;
        assert!(reads.renewed(all_fresh, now));
        assert!(!reads.renewal_due(now + Duration::from_secs(3_539)));
        assert!(
            reads.renewal_due(now + Duration::from_secs(3_540)),
            "at most a minute before"
        );
    }

    /// An answer naming 10 online nodes (ids `[i; 32]`), tokens valid until 1,003,600 s.
    fn ten_online() -> (Vec<crate::NodeId>, FileDownload) {
        let nodes: Vec<crate::NodeId> = (0..10).map(|i| crate::NodeId([i; 32])).collect();
        let mut answer = answer(crate::FileId::random(), &nodes[..1], 1_003_600);
        for node in &nodes[1..] {
            let mut n = answer.nodes[0].clone();
            n.node_id = *node;
            answer.nodes.push(n);
        }
        for n in &mut answer.nodes {
            n.status = NodeStatus::Online;
        }
        (nodes, answer)
    }

    #[test]
    fn a_chunk_asks_every_online_candidate_until_k_workers_have_answered() {
        // Tried: a download's first chunk (10 shards on 10 nodes, k = 6, nothing measured), also
        // as a hot file's with a copy, then one asked after 6 nodes answered, then the same with
        // the speed ranking off.
        // Must hold: the first asks all 10 at once and is done with the first 6 answers, the 4
        // unanswered gets no longer count as out; once 6 nodes are measured a chunk asks 6;
        // without the ranking, 6 from the start.
        let (_, answer) = ten_online();
        let now = Duration::from_secs(1_000_000);
        let locations: Vec<u16> = (0..10).collect();
        let mut reads = Reads::new(&answer, now);
        // A hot file's chunk with a copy on node 0: the server measured its holders, so 6.
        assert_eq!(reads.plan_with_copies(&locations, &[[0, 0]], 6).to_start().len(), 6);
        let mut first = reads.plan(&locations, 6);
        let asked = first.to_start();
        assert_eq!(asked.len(), 10);
        for a in &asked {
            reads.asking(a.node);
        }
        for a in asked.iter().take(6) {
            assert!(first.got(a.slot));
            reads.observed(a.node, 1_000_000, Duration::from_millis(10), 0);
        }
        assert!(first.is_done());
        // The last 4 are waited for a little (half the chunk's time, at least MIN_GRACE).
        assert_eq!(first.grace(Duration::from_millis(100)), Some(Duration::from_millis(50)));
        assert_eq!(first.grace(Duration::from_millis(10)), Some(MIN_GRACE));
        // The 4 gets left out are dropped with the chunk: none stays counted as out.
        reads.straggled(first.stragglers());
        assert!(reads.pending.iter().all(|p| *p == 0), "{:?}", reads.pending);
        let mut second = reads.plan(&locations, 6);
        assert_eq!(second.to_start().len(), 6);
        for slot in 0..6 {
            second.got(slot);
        }
        assert_eq!(
            second.grace(Duration::from_millis(100)),
            None,
            "not eager: nothing to wait for"
        );
        let unranked = Reads::new(&answer, now).without_speed_ranking();
        assert_eq!(unranked.plan(&locations, 6).to_start().len(), 6);
    }

    #[test]
    fn speeds_remembered_from_an_earlier_download_rank_the_first_chunk() {
        // Tried: 10 online nodes holding a chunk's 10 shards, k = 6; an earlier download measured
        // nodes 0..4 at 1 MB/s and the other six at 100 MB/s.
        // Must hold: the first chunk asks the six fast ones, and only them (the slow ones are
        // not asked eagerly); what the next download starts from is only what it measured.
        let (nodes, answer) = ten_online();
        let now = Duration::from_secs(1_000_000);
        let slow: HashSet<crate::NodeId> = nodes[..4].iter().copied().collect();
        let mut reads = Reads::new(&answer, now).remembering(|id| Some(if slow.contains(id) { 1e6 } else { 1e8 }));
        let locations: Vec<u16> = (0..10).collect();
        let mut asked: Vec<usize> = reads.plan(&locations, 6).to_start().iter().map(|a| a.node).collect();
        asked.sort_unstable();
        assert_eq!(asked, vec![4, 5, 6, 7, 8, 9]);
        assert_eq!(reads.speeds().count(), 0);
        reads.observed(5, 1_000_000, Duration::from_millis(10), 0);
        let learned: Vec<crate::NodeId> = reads.speeds().map(|(id, _)| id).collect();
        assert_eq!(learned, vec![nodes[5]]);

        // Tried: the remembered figures are stale: node 0, remembered at 1 GB/s (faster than
        // all), straggles. Must hold: it no longer sets the pace (the six answering nodes are
        // not taken as slow beside it), and it is to be forgotten.
        let mut stale = Reads::new(&answer, now).remembering(|id| Some(if *id == nodes[0] { 1e9 } else { 1e8 }));
        stale.straggled([0]);
        assert!(!stale.is_slow(5));
        assert_eq!(stale.disproved().collect::<Vec<_>>(), vec![nodes[0]]);
        assert!(reads.disproved().next().is_none());
    }

    #[test]
    fn the_first_chunk_leaves_out_only_workers_remembered_far_slower() {
        // Tried: 10 online nodes holding a chunk's 10 shards, k = 6; an earlier download
        // measured nodes 0 and 1 at 2.5 MB/s (a 20 Mbit/s link), nodes 2..8 at 100 MB/s and
        // nodes 8 and 9 at 40 MB/s (under half the fastest, as figures of one busy moment are).
        // Must hold: the first chunk asks the 8 not far slower at once (the two at 40 MB/s may
        // well be fast now, and leaving them out would leave a chunk whose data sits there a
        // shard short until its hedge), not the two 40 times slower.
        let (nodes, answer) = ten_online();
        let remembered = |id: &crate::NodeId| {
            let n = nodes.iter().position(|node| node == id).expect("a node of the answer");
            Some(match n {
                0 | 1 => 2.5e6,
                8 | 9 => 4e7,
                _ => 1e8,
            })
        };
        let reads = Reads::new(&answer, Duration::from_secs(1_000_000)).remembering(remembered);
        let locations: Vec<u16> = (0..10).collect();
        let mut asked: Vec<usize> = reads.plan(&locations, 6).to_start().iter().map(|a| a.node).collect();
        asked.sort_unstable();
        assert_eq!(asked, (2..10).collect::<Vec<_>>());
    }

    #[test]
    fn a_worker_is_connected_again_a_few_times_and_not_at_once_after_a_failure() {
        // Tried: a worker connected, its connection ended, a second attempt failed, then more.
        // Must hold: the first connect and a reconnect after an end are allowed at once; after
        // a failure the next waits 1 s × attempts; never more than MAX_CONNECTS attempts.
        let t = Duration::from_secs(100);
        let mut link = Reconnects::default();
        assert!(link.may_connect(t));
        link.attempt();
        assert!(link.may_connect(t), "after a connection that ended");
        link.attempt();
        link.failed(t);
        assert!(!link.may_connect(t + Duration::from_millis(1_999)));
        assert!(link.may_connect(t + Duration::from_secs(2)));
        link.attempt();
        link.attempt();
        assert!(
            !link.may_connect(t + Duration::from_secs(3_600)),
            "at most {MAX_CONNECTS}"
        );
    }

    #[test]
    fn copies_are_more_candidates_for_the_same_shards() {
        // Tried: 4 shards on nodes 0..3, k = 2, nodes 0 and 1 offline; copies of slot 0 on node 4
        // and of slot 1 on node 5 (online). Then a copy request fails, and a hedge.
        // Must hold: the copies are asked first (online), one request per slot; a failed copy
        // brings the next candidate for a missing slot; a slot had is never asked again.
        let locations: Vec<u16> = (0..4).collect();
        let copies = [[0, 4], [1, 5], [0, 6]];
        let mut plan = ChunkPlan::with_copies(&locations, &copies, 2, |n| u8::from(n < 2) * 4);
        let first = plan.to_start();
        assert_eq!(first, [Ask { slot: 0, node: 4 }, Ask { slot: 1, node: 5 }]);
        assert!(plan.got(0));
        plan.failed(1, "refused");
        // Next: node 6's copy of slot 0 is had already, so node 2's slot 2 (online) before node
        // 1's slot 1 (offline).
        assert_eq!(plan.to_start(), [Ask { slot: 2, node: 2 }]);
        // A hedge: never slot 0 again (node 6's copy), slot 3 next.
        assert_eq!(plan.hedge(), Some(Ask { slot: 3, node: 3 }));
        assert!(plan.got(3));
        assert!(plan.is_done());
    }

    #[test]
    fn a_hot_files_copy_holders_stay_first_while_busy() {
        // Tried: a hot file's chunk, 10 shards on nodes 0..10 (k = 6); copies of slots 3..6 on
        // nodes 0..3, so nodes 0..3 hold six slots; nodes 0..3 measured fast with many gets
        // out to each (a window of chunks ahead), nodes 3..10 never measured.
        // Must hold: the six asked are the copy holders' six slots, not the unmeasured nodes
        // (the server measured those slow, which is why it put no copies there), however long
        // the holders' queues.
        let (_, answer) = ten_online();
        let mut reads = Reads::new(&answer, Duration::from_secs(1_000_000));
        for node in 0..3 {
            reads.observed(node, 50_000_000, Duration::from_secs(1), 0);
            for _ in 0..12 {
                reads.asking(node);
            }
        }
        let locations: Vec<u16> = (0..10).collect();
        let copies = [[3, 0], [4, 1], [5, 2]];
        let mut asked: Vec<(usize, usize)> = reads
            .plan_with_copies(&locations, &copies, 6)
            .to_start()
            .iter()
            .map(|a| (a.slot, a.node))
            .collect();
        asked.sort_unstable();
        assert_eq!(asked, [(0, 0), (1, 1), (2, 2), (3, 0), (4, 1), (5, 2)]);
    }

    #[test]
    fn the_hedge_comes_sooner_once_a_shard_is_in() {
        // Tried: a chunk of 10 shards needing 6; its first shard 30 ms after its first request,
        // then one after 2 s; and a chunk whose first shard took 10 s.
        // Must hold: 5 s before any shard; then 3 × 30 ms = 90 ms; only the first shard
        // counts; never under 50 ms nor over 5 s.
        let locations: Vec<u16> = (0..10).collect();
        let mut plan = ChunkPlan::new(&locations, 6, status(&[], &[]));
        assert_eq!(plan.hedge_delay(), HEDGE_AFTER);
        plan.arrived_after(Duration::from_millis(30));
        plan.arrived_after(Duration::from_secs(2));
        assert_eq!(plan.hedge_delay(), Duration::from_millis(90));
        let mut quick = ChunkPlan::new(&locations, 6, status(&[], &[]));
        quick.arrived_after(Duration::from_millis(1));
        assert_eq!(quick.hedge_delay(), MIN_HEDGE);
        let mut slow = ChunkPlan::new(&locations, 6, status(&[], &[]));
        slow.arrived_after(Duration::from_secs(10));
        assert_eq!(slow.hedge_delay(), HEDGE_AFTER);
    }

    #[test]
    fn nodes_measured_slow_are_asked_after_the_fast_ones() {
        // Tried: 4 nodes holding one shard each, k = 2; nodes 0 and 1 (data shards first) measured
        // at 1 MB/s, node 2 at 10 MB/s, node 3 not measured yet; then node 0 speeds up.
        // Must hold: nodes 2 and 3 are asked first (the unmeasured one gets its chance); once
        // node 0's average passes half the fastest it is asked before node 3 again (data first).
        let file = crate::FileId::random();
        let nodes: Vec<crate::NodeId> = (0..4).map(|i| crate::NodeId([i; 32])).collect();
        let now = Duration::from_secs(1_000_000);
        let mut answer = answer(file, &nodes[..3], 1_003_600);
        answer.nodes.push(answer.nodes[0].clone());
        answer.nodes[3].node_id = nodes[3];
        answer.nodes[2].status = NodeStatus::Online;
        let mut reads = Reads::new(&answer, now);
        let second = Duration::from_secs(1);
        reads.observed(0, 1_000_000, second, 0);
        reads.observed(1, 1_000_000, second, 0);
        reads.observed(2, 10_000_000, second, 0);
        let asked =
            |reads: &Reads| -> Vec<usize> { reads.plan(&[0, 1, 2, 3], 2).to_start().iter().map(|a| a.node).collect() };
        assert!(reads.is_slow(0) && !reads.is_slow(2) && !reads.is_slow(3));
        assert_eq!(asked(&reads), vec![2, 3]);
        // Without the speed ranking the slow ones are asked in their data-first places.
        assert_eq!(asked(&reads.clone().without_speed_ranking()), vec![0, 1]);
        // Two gets are out to node 3 (not measured yet, so its first answer is awaited): the
        // next chunk asks node 0 (data first) before it. The second answer, 10 MB in a second
        // behind the first, measures it at 20 MB/s and the remaining get puts it level with
        // node 2.
        assert_eq!((reads.asking(3), reads.asking(3)), (0, 1));
        assert_eq!(asked(&reads), vec![2, 0]);
        reads.observed(3, 10_000_000, second, 1);
        assert_eq!(asked(&reads), vec![2, 3]);
        reads.unanswered(3);
        assert_eq!(asked(&reads), vec![2, 3], "level with node 2: in slot order");
        for _ in 0..10 {
            reads.observed(0, 20_000_000, second, 0);
        }
        assert!(!reads.is_slow(0));

        assert_eq!(asked(&reads), vec![0, 2]);
    }

    #[test]
    fn among_the_slower_workers_the_less_slow_are_asked_before_data_shards_far_slower() {
        // Tried: 10 online nodes holding a chunk's 10 shards (slot i on node i, data shards on
        // 0..6), k = 6; nodes 0..4 measured at 2.5 MB/s (a 20 Mbit/s link), nodes 4, 5, 6, 9 at
        // 100 MB/s, nodes 7 and 8 at 40 and 45 MB/s (under half the fastest: a noisy figure, or
        // a busier worker).
        // Must hold: the six asked are the six fast-enough ones, not the data shards of the
        // 40-times slower nodes (which data-first would pick among "the slower ones"); without
        // the speed ranking, the data shards.
        let (_, answer) = ten_online();
        let mut reads = Reads::new(&answer, Duration::from_secs(1_000_000));
        let speeds: [u64; 10] = [
            2_500_000,
            2_500_000,
            2_500_000,
            2_500_000,
            100_000_000,
            100_000_000,
            100_000_000,
            40_000_000,
            45_000_000,
            100_000_000,
        ];
        for (node, bytes) in speeds.iter().enumerate() {
            reads.observed(node, *bytes, Duration::from_secs(1), 0);
        }
        assert!(reads.is_slow(7) && reads.is_slow(8));
        let locations: Vec<u16> = (0..10).collect();
        let asked = |reads: &Reads| -> Vec<usize> {
            let mut nodes: Vec<usize> = reads.plan(&locations, 6).to_start().iter().map(|a| a.node).collect();
            nodes.sort_unstable();
            nodes
        };
        assert_eq!(asked(&reads), vec![4, 5, 6, 7, 8, 9]);
        assert_eq!(asked(&reads.clone().without_speed_ranking()), vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn a_straggler_is_asked_after_the_other_online_workers() {
        // Tried: 3 nodes holding one shard each, k = 2; node 0 straggled on an earlier chunk;
        // node 2 is suspect at the server.
        // Must hold: nodes 1 then 0 are asked (a straggler ranks with the suspect, data shards
        // first among them) until node 0 answers again; a fresh answer's status replaces the
        // old.
        let file = crate::FileId::random();
        let nodes: Vec<crate::NodeId> = (0..3).map(|i| crate::NodeId([i; 32])).collect();
        let now = Duration::from_secs(1_000_000);
        let mut reads = Reads::new(&answer(file, &nodes, 1_003_600), now);
        let asked =
            |reads: &Reads| -> Vec<usize> { reads.plan(&[0, 1, 2], 2).to_start().iter().map(|a| a.node).collect() };
        assert_eq!(asked(&reads), vec![0, 1]);
        reads.straggled([0]);
        assert_eq!(asked(&reads), vec![1, 0]);
        // It answers a later get quickly: a straggler no more.
        reads.observed(0, 1_000_000, Duration::from_millis(10), 0);
        assert_eq!(asked(&reads), vec![0, 1]);
        // It straggles again, measured fast: after node 1, still before the suspect node 2.
        reads.straggled([0]);
        assert_eq!(asked(&reads), vec![1, 0]);
        let mut fresh = answer(file, &nodes, 1_003_600);
        fresh.nodes[0].status = NodeStatus::Offline;
        fresh.nodes[2].status = NodeStatus::Online;
        assert!(reads.renewed(fresh, now));
        assert_eq!(asked(&reads), vec![1, 2]);
    }
}
