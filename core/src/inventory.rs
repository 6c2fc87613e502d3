//! What a worker holds, in a form the server can compare without listing everything each time.
//!
//! Shard ids are split into [`BUCKETS`] buckets by their first hex digit; each bucket is
//! summarized by its count and the BLAKE3 hash of its ids in sorted order. A heartbeat carries
//! the 16 summaries now and then (about 1.3 KB of JSON); the server computes the same summaries
//! from its placement table and asks for the full listing of only the buckets that differ, in the
//! next heartbeat. The listing is what finds orphaned shards (held, but no file needs them here)
//! and missing ones (needed, but not held).
//!
//! This is bookkeeping, not proof: audits are what a dishonest worker cannot answer. The
//! summary is recomputed from the disk, so it also sees shards removed behind the worker's back.

use crate::ShardId;
use serde::{Deserialize, Serialize};

/// Buckets per summary: shard ids by their first hex digit.
pub const BUCKETS: usize = 16;
/// Most ids one heartbeat lists (about 4.3 MB of JSON); a larger bucket is listed over several.
pub const MAX_LISTED: usize = 65_536;

/// The bucket of a shard id.
pub fn bucket_of(id: &ShardId) -> u8 {
    id.as_bytes()[0] >> 4
}

/// One bucket: how many ids, and BLAKE3 over them in sorted order (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BucketSummary {
    pub count: u64,
    pub digest: String,
}

/// The summaries of all [`BUCKETS`] buckets, in bucket order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Inventory {
    pub buckets: Vec<BucketSummary>,
}

/// Every id of one bucket, sorted, hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BucketListing {
    pub bucket: u8,
    pub shards: Vec<String>,
}

/// Summarize a set of ids (any order, duplicates counted once).
pub fn summarize(ids: &[ShardId]) -> Inventory {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut hashers: Vec<(u64, blake3::Hasher)> = (0..BUCKETS)
        .map(|_| (0, blake3::Hasher::new_derive_key("disktro inventory v1")))
        .collect();
    for id in &sorted {
        let (count, hasher) = &mut hashers[usize::from(bucket_of(id))];
        *count += 1;
        hasher.update(id.as_bytes());
    }
    Inventory {
        buckets: hashers
            .into_iter()
            .map(|(count, h)| BucketSummary {
                count,
                digest: h.finalize().to_hex().to_string(),
            })
            .collect(),
    }
}

/// The listings of `wanted` buckets, at most [`MAX_LISTED`] ids in all.
pub fn list(ids: &[ShardId], wanted: &[u8]) -> Vec<BucketListing> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut budget = MAX_LISTED;
    let mut out = Vec::new();
    for &bucket in wanted {
        if usize::from(bucket) >= BUCKETS || out.iter().any(|l: &BucketListing| l.bucket == bucket) {
            continue;
        }
        let shards: Vec<String> = sorted
            .iter()
            .filter(|id| bucket_of(id) == bucket)
            .map(ShardId::to_hex)
            .collect();
        if shards.len() > budget {
            break;
        }
        budget -= shards.len();
        out.push(BucketListing { bucket, shards });
    }
    out
}

/// Buckets whose summaries differ.
pub fn differing(a: &Inventory, b: &Inventory) -> Vec<u8> {
    (0..BUCKETS)
        .filter(|&i| a.buckets.get(i) != b.buckets.get(i))
        .filter_map(|i| u8::try_from(i).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_find_the_differing_bucket_only() {
        let ids: Vec<ShardId> = (0..500u32).map(|i| ShardId::of(&i.to_le_bytes())).collect();
        let a = summarize(&ids);
        let mut reversed = ids.clone();
        reversed.reverse();
        assert_eq!(a, summarize(&reversed), "order does not matter");
        assert_eq!(a.buckets.iter().map(|b| b.count).sum::<u64>(), 500);
        // Tried: one id removed, one planted. Must hold: exactly its bucket differs, and the
        // listing of that bucket shows the difference.
        let removed = ids[17];
        let fewer: Vec<ShardId> = ids.iter().copied().filter(|i| *i != removed).collect();
        assert_eq!(differing(&a, &summarize(&fewer)), vec![bucket_of(&removed)]);
        let planted = ShardId::of(b"planted");
        let mut more = ids.clone();
        more.push(planted);
        assert_eq!(differing(&a, &summarize(&more)), vec![bucket_of(&planted)]);
        let listing = list(&more, &[bucket_of(&planted), 99]);
        assert_eq!(listing.len(), 1, "an out-of-range bucket is ignored");
        assert!(listing[0].shards.contains(&planted.to_hex()));
        assert!(listing[0].shards.windows(2).all(|w| w[0] < w[1]));
    }
}
