//! Placement: which workers hold which shards.
//!
//! Every shard has a key, `BLAKE3(file id ‖ chunk ‖ shard index)`, and workers are ranked for it
//! by the XOR distance between their node id and that key (as in Kademlia): the ranking is
//! deterministic, spreads load evenly, and changes little when a worker joins or leaves. Within a
//! chunk, two rules come first:
//!
//! 1. never two shards of one chunk on one worker (a worker's loss costs a chunk one shard);
//! 2. spread over zones first: each shard goes to the zone holding the fewest of this chunk's
//!    shards so far, and within it to the closest worker.
//!
//! XOR ranking is not perfectly even on small networks: with 14 workers and 2,000 shards the
//! busiest worker got 1.25 times the mean and the idlest 0.61 times (the placement test).
//!
//! When fewer healthy workers exist than the k + m asked for, [`choose_redundancy`] picks a
//! smaller (k, m) that still tolerates the loss of 40% of the shards, or refuses.

use disktro_core::shard::Redundancy;
use disktro_core::{FileId, NodeId};

/// A worker that may receive shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub node_id: NodeId,
    pub zone: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    #[error("{have} healthy workers, at least {need} needed")]
    NotEnoughWorkers { have: usize, need: usize },
}

/// Share of a chunk's shards that may be lost when the network is too small for the request.
const MIN_LOSS_TOLERANCE: (usize, usize) = (2, 5);

/// The placement key of one shard.
pub fn shard_key(file: &FileId, chunk: u64, index: usize) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("disktro placement v1");
    h.update(file.as_bytes());
    h.update(&chunk.to_be_bytes());
    h.update(&u16::try_from(index).unwrap_or(u16::MAX).to_be_bytes());
    *h.finalize().as_bytes()
}

/// XOR distance between a node id and a placement key; smaller ranks first.
pub fn distance(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// The requested redundancy, or a smaller one that fits `healthy` workers and still tolerates
/// losing 40% of the shards.
pub fn choose_redundancy(requested: Redundancy, healthy: usize) -> Result<Redundancy, PlacementError> {
    if healthy >= requested.total() {
        return Ok(requested);
    }
    let (num, den) = MIN_LOSS_TOLERANCE;
    let parity = (healthy * num).div_ceil(den);
    let data = healthy.saturating_sub(parity);
    let fits = |v: usize| u8::try_from(v).ok().filter(|v| *v >= 1);
    match (fits(data), fits(parity)) {
        (Some(d), Some(p)) => {
            Redundancy::new(d, p).map_err(|_| PlacementError::NotEnoughWorkers { have: healthy, need: 2 })
        }
        _ => Err(PlacementError::NotEnoughWorkers { have: healthy, need: 2 }),
    }
}

/// Indices into `candidates` for shards `0..total` of `chunk`.
pub fn place_chunk(
    candidates: &[Candidate],
    file: &FileId,
    chunk: u64,
    total: usize,
) -> Result<Vec<usize>, PlacementError> {
    if candidates.len() < total {
        return Err(PlacementError::NotEnoughWorkers {
            have: candidates.len(),
            need: total,
        });
    }
    let mut used = vec![false; candidates.len()];
    let mut zone_load: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(total);
    for index in 0..total {
        let key = shard_key(file, chunk, index);
        let best = (0..candidates.len())
            .filter(|&c| !used[c])
            .min_by_key(|&c| {
                let zone = zone_load.get(candidates[c].zone.as_str()).copied().unwrap_or(0);
                (zone, distance(candidates[c].node_id.as_bytes(), &key))
            })
            .expect("enough candidates were checked above");
        used[best] = true;
        *zone_load.entry(candidates[best].zone.as_str()).or_default() += 1;
        out.push(best);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(n: usize, zones: usize) -> Vec<Candidate> {
        (0..n)
            .map(|i| Candidate {
                node_id: NodeId(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                zone: format!("z{}", i % zones),
            })
            .collect()
    }

    #[test]
    fn one_shard_per_worker_per_chunk_and_zones_spread() {
        let file = FileId([3; 16]);
        let candidates = nodes(14, 3);
        for chunk in 0..50 {
            let placed = place_chunk(&candidates, &file, chunk, 10).unwrap();
            let mut distinct = placed.clone();
            distinct.sort_unstable();
            distinct.dedup();
            assert_eq!(distinct.len(), 10, "chunk {chunk}: a worker got two shards");
            // 10 shards over 3 zones: 4/3/3 at most.
            let mut per_zone = std::collections::HashMap::new();
            for c in &placed {
                *per_zone.entry(&candidates[*c].zone).or_insert(0) += 1;
            }
            assert!(per_zone.values().all(|&n| n <= 4), "chunk {chunk}: {per_zone:?}");
            // Deterministic.
            assert_eq!(placed, place_chunk(&candidates, &file, chunk, 10).unwrap());
        }
    }

    #[test]
    fn load_spreads_over_all_workers() {
        let candidates = nodes(14, 1);
        let mut load = vec![0; 14];
        for f in 0..200u8 {
            for c in place_chunk(&candidates, &FileId([f; 16]), 0, 10).unwrap() {
                load[c] += 1;
            }
        }
        // 2,000 shards over 14 workers: about 143 each. XOR ranking is not perfectly even (node
        // ids in sparse regions of the id space win more keys); measured 87 to 179 here. Must
        // hold: nobody starved or swamped, within half and one and a half times the mean.
        assert!(load.iter().all(|&n| (72..=214).contains(&n)), "{load:?}");
    }

    #[test]
    fn a_worker_leaving_moves_only_its_own_shards() {
        let file = FileId([9; 16]);
        let all = nodes(14, 1);
        let before = place_chunk(&all, &file, 0, 10).unwrap();
        let unused = (0..14).find(|i| !before.contains(i)).unwrap();
        let mut fewer = all.clone();
        fewer.remove(unused);
        let after: Vec<NodeId> = place_chunk(&fewer, &file, 0, 10)
            .unwrap()
            .into_iter()
            .map(|i| fewer[i].node_id)
            .collect();
        let before: Vec<NodeId> = before.into_iter().map(|i| all[i].node_id).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn small_networks_get_smaller_redundancy_or_a_clear_refusal() {
        let six_four = Redundancy::new(6, 4).unwrap();
        assert_eq!(choose_redundancy(six_four, 10).unwrap(), six_four);
        assert_eq!(choose_redundancy(six_four, 12).unwrap(), six_four);
        for healthy in 2..10 {
            let r = choose_redundancy(six_four, healthy).unwrap();
            assert_eq!(r.total(), healthy);
            assert!(
                r.parity as usize * 5 >= healthy * 2,
                "{healthy}: {r:?} tolerates less than 40%"
            );
        }
        // Tried: one worker, none. Must hold: NotEnoughWorkers.
        assert!(choose_redundancy(six_four, 1).is_err());
        assert!(choose_redundancy(six_four, 0).is_err());
        assert!(place_chunk(&nodes(3, 1), &FileId([0; 16]), 0, 10).is_err());
    }
}
