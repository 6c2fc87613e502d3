//! What each worker holds against what the placement table says it should.
//!
//! Workers send [`Inventory`] summaries with some heartbeats; the server summarizes the same way
//! the shards it expects there (placed, plus those waiting for garbage collection) and answers
//! with the buckets that differ. The worker lists those buckets in its next heartbeat, and the
//! listing is compared id by id:
//!
//! - held but not expected: an **orphan candidate** (an upload not yet committed looks the same,
//!   so it is removed only after `orphan_grace`, by [`super::gc`]);
//! - placed there but not held: **missing**, reported like a corrupt shard, so repair rebuilds it,
//!   and counted against the node as a failed audit ([`super::reputation`]): a loss the node
//!   admits is still a loss. Shards placed after the listing may have been taken (the heartbeat's
//!   send time, less [`LISTING_SLACK`]) are left to the next listing;
//! - waiting for garbage collection but not held: nothing left to delete.

use std::collections::HashSet;

use disktro_core::ShardId;
use disktro_core::inventory::{self, BucketListing, Inventory};

use super::error::JobError;
use super::reputation;
use crate::db::Db;
use crate::store::{self, collection};

/// Seconds before a heartbeat's send time from which a placement may postdate its listings.
pub const LISTING_SLACK: i64 = 5;

/// Compare a heartbeat's summary and listings (taken at `listed_at`, server clock at the latest);
/// returns the buckets to list next time.
pub async fn on_heartbeat(
    db: &Db,
    node: &str,
    summary: Option<&Inventory>,
    listings: &[BucketListing],
    listed_at: i64,
    now: i64,
) -> Result<Vec<u8>, JobError> {
    if summary.is_none() && listings.is_empty() {
        return Ok(Vec::new());
    }
    let placed = collection::placed(db, node).await?;
    let settling = if listings.is_empty() {
        HashSet::new()
    } else {
        collection::placed_since(db, node, listed_at.min(now) - LISTING_SLACK).await?
    };
    let collecting = collection::collecting(db, node).await?;
    // Copies of hot files' shards are expected there too, but count for nothing: one missing
    // is forgotten, not a loss.
    let copied = store::copies::on_node(db, node).await?;
    let candidates = if listings.is_empty() {
        HashSet::new()
    } else {
        collection::orphan_candidates(db, node).await?
    };
    for listing in listings {
        let held: HashSet<ShardId> = listing.shards.iter().filter_map(|s| s.parse().ok()).collect();
        let in_bucket = |id: &&ShardId| inventory::bucket_of(id) == listing.bucket;
        let mut tx = db.begin_write().await?;
        // Candidates of this bucket that are no longer orphans are forgotten.
        for shard in candidates
            .iter()
            .filter(in_bucket)
            .filter(|s| !held.contains(s) || placed.contains(s) || collecting.contains(s) || copied.contains(s))
        {
            collection::drop_orphan(&mut tx, node, shard).await?;
        }
        let mut orphans = 0;
        for shard in held
            .iter()
            .filter(|s| !placed.contains(s) && !collecting.contains(s) && !copied.contains(s))
        {
            orphans += u64::from(collection::add_orphan(&mut tx, node, shard, now).await?);
        }
        let mut missing = 0;
        for shard in placed
            .iter()
            .filter(in_bucket)
            .filter(|s| !held.contains(s) && !settling.contains(s))
        {
            missing += u64::from(store::health::mark_lost(&mut tx, node, &shard.to_hex(), "missing", now).await?);
        }
        for shard in collecting.iter().filter(in_bucket).filter(|s| !held.contains(s)) {
            collection::forget(&mut tx, node, shard).await?;
        }
        for shard in copied
            .iter()
            .filter(in_bucket)
            .filter(|s| !held.contains(s) && !settling.contains(s) && !placed.contains(s))
        {
            store::copies::forget(&mut tx, node, shard).await?;
        }
        tx.commit().await?;
        reputation::record_losses(db, node, missing, now).await?;
        if orphans > 0 || missing > 0 {
            tracing::warn!(
                node_id = node,
                bucket = listing.bucket,
                orphans,
                missing,
                "worker holdings differ"
            );
        }
    }
    let Some(summary) = summary else { return Ok(Vec::new()) };
    let all: Vec<ShardId> = placed
        .iter()
        .chain(&collecting)
        .chain(&copied)
        .copied()
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    Ok(inventory::differing(summary, &inventory::summarize(&all)))
}
