//! Redundancy by policy: the (k, m) every new upload gets, chosen from a durability target and
//! the network the server has now.
//!
//! The candidates are the stripes that lose at most 40% of their shards at the least storage
//! cost: k = 3j data and m = 2j parity shards (1.67× stored), narrowest first: 6 + 4, 9 + 6,
//! 12 + 8. At the same expansion, durability grows steeply with the stripe's width (the model:
//! 9.6, 15.2 and 20.7 nines a year for a 1 GiB file), while every extra shard costs the uploader
//! parity time and a connection's frames. So the policy takes the **narrowest** stripe that
//!
//! 1. fits the network: k + m workers, one shard each (a smaller network gets a smaller (k, m)
//!    that still loses 40%, as [`crate::placement::choose_redundancy`] decides);
//! 2. keeps the failure-domain promise: survives at least as many whole zones as 6 + 4 does on
//!    the same zones ([`Guarantee`]); on 10 equal zones 9 + 6 survives 3 and 6 + 4 survives 4,
//!    so 9 + 6 is skipped there;
//! 3. meets the target: at least `target` nines a year for a 1 GiB file under the stated failure
//!    model ([`model::STATED`]).
//!
//! Where no stripe meets the target (a network under 15 workers), the most durable one that fits
//! and keeps the promise is used, and `/durability` says the target is not met.
//!
//! Wider than 12 + 8 is not offered: the browser's parity costs 0.68× of 6 + 4's throughput
//! there already (BENCHMARKS.md), for 20 nines the failure model's own assumptions do not
//! support.
//!
//! Files stored with less than the policy gives now (a (k, m) reduced during an outage, or a
//! stripe the network has since outgrown) are [`below`] it: the owner's client re-encodes them
//! (a restripe, [`crate::uploads::begin_restripe`]), since only the owner may sign a manifest.

use disktro_core::shard::Redundancy;

use super::model;
use crate::placement::{self, Guarantee, PlacementError};

/// Nines a year a 1 GiB file should have by default.
pub const DEFAULT_TARGET_NINES: f64 = 11.0;

/// The stripes offered, narrowest first. Each has a parity kernel of its own in the browser
/// (`core/src/shard/parity_simd.rs`): a stripe added here should get one too.
const STRIPES: [(u8, u8); 3] = [(6, 4), (9, 6), (12, 8)];

/// The file the target speaks of: 1 GiB, in default chunks.
const REFERENCE_CHUNKS: u64 = (1 << 30) / disktro_core::DEFAULT_CHUNK_SIZE as u64;

/// What the policy gives a new upload on this network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub redundancy: Redundancy,
    /// Nines a year of a 1 GiB file at this redundancy ([`nines`]).
    pub nines: f64,
    pub meets_target: bool,
    /// Made smaller than any offered stripe because fewer workers take shards than 6 + 4 needs:
    /// an outage or a network still growing, not a redundancy to bring files to.
    pub reduced: bool,
}

/// Nines a year of a 1 GiB file stored at `redundancy`, under the stated failure model.
pub fn nines(redundancy: Redundancy) -> f64 {
    let policy = model::Policy {
        data: u32::from(redundancy.data),
        parity: u32::from(redundancy.parity),
        ..model::STATED
    };
    model::nines(model::annual_file_loss(&policy, REFERENCE_CHUNKS))
}

/// The workers per zone of `zones` (one entry per worker).
pub fn zone_sizes<'a>(zones: impl IntoIterator<Item = &'a str>) -> Vec<usize> {
    let mut sizes: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for z in zones {
        *sizes.entry(z).or_default() += 1;
    }
    sizes.into_values().collect()
}

/// The network as placement sees it now (workers per zone, from the replica's roster) and the
/// policy's choice on it (`None` when too few workers take shards for any).
pub async fn now(
    ctx: &crate::context::Context,
    now: i64,
) -> Result<(Vec<usize>, Option<Choice>), crate::store::StoreError> {
    let workers = crate::nodes::writable_now(ctx, now, 0).await?;
    let sizes = zone_sizes(workers.iter().map(|w| w.zone.as_str()));
    let choice = choose(&sizes, ctx.durability.durability_target).ok();
    Ok((sizes, choice))
}

/// The policy's redundancy for workers in zones of `zone_sizes`, toward `target` nines.
pub fn choose(zone_sizes: &[usize], target: f64) -> Result<Choice, PlacementError> {
    let workers: usize = zone_sizes.iter().sum();
    let base = Redundancy::DEFAULT;
    let choice = |redundancy| {
        let nines = nines(redundancy);
        Choice {
            redundancy,
            nines,
            meets_target: nines >= target,
            reduced: false,
        }
    };
    if workers < base.total() {
        return placement::choose_redundancy(base, workers).map(|r| Choice {
            reduced: true,
            ..choice(r)
        });
    }
    let zones_lost = |r| Guarantee::of(r, zone_sizes).map_or(0, |g| g.zones_lost);
    let promised = zones_lost(base);
    let mut best = choice(base);
    for (data, parity) in STRIPES {
        let r = Redundancy::new(data, parity).expect("the offered stripes are valid");
        if r.total() > workers {
            break;
        }
        if zones_lost(r) < promised {
            continue;
        }
        let c = choice(r);
        if c.meets_target {
            return Ok(c);
        }
        if c.nines > best.nines {
            best = c;
        }
    }
    Ok(best)
}

/// The redundancy of a new upload: what the client asked for (made smaller on a network too
/// small for it), or else the policy's.
pub fn for_upload(
    requested: Option<Redundancy>,
    zone_sizes: &[usize],
    target: f64,
) -> Result<Redundancy, PlacementError> {
    match requested {
        Some(r) => placement::choose_redundancy(r, zone_sizes.iter().sum()),
        None => choose(zone_sizes, target).map(|c| c.redundancy),
    }
}

/// Whether a file stored at `stored` is below what the policy gives now: less durable than the
/// target and than a new upload would be. A file at the target or above stays as it is, even
/// when the network could do more; and while the network is too small for 6 + 4 nothing is below
/// it (a reduced (k, m) is what fits an outage, not a redundancy to re-encode files to: 4 + 4 on
/// 8 workers beats 6 + 4 in the model only by storing twice the bytes).
pub fn below(stored: Redundancy, now: &Choice, target: f64) -> bool {
    if now.reduced {
        return false;
    }
    // A tenth of a nine of slack: the same stripe compares equal whatever the rounding.
    let have = nines(stored);
    // The same k would make the same data shards (the same ids, maybe on the same workers): a
    // file asked for at k + fewer parity is not restriped to k + m, which could not be told apart
    // from its old shards by the workers that hold both.
    have < target && have + 0.1 < now.nines && stored.data != now.redundancy.data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(data: u8, parity: u8) -> Redundancy {
        Redundancy::new(data, parity).unwrap()
    }

    #[test]
    fn the_narrowest_stripe_that_meets_the_target_and_keeps_the_zone_promise() {
        // 10 to 14 workers: only 6 + 4 fits; the target is not met and the answer says so.
        let small = choose(&[10], DEFAULT_TARGET_NINES).unwrap();
        assert_eq!(small.redundancy, r(6, 4));
        assert!(!small.meets_target, "6 + 4 gives {:.1} nines", small.nines);
        assert_eq!(choose(&[14], DEFAULT_TARGET_NINES).unwrap().redundancy, r(6, 4));
        // 15 workers and up: 9 + 6 is the narrowest at 11 nines.
        for n in [15, 20, 100, 1000] {
            let c = choose(&[n], DEFAULT_TARGET_NINES).unwrap();
            assert_eq!(c.redundancy, r(9, 6), "{n} workers");
            assert!(c.meets_target && c.nines > 15.0, "{c:?}");
        }
        // 5 equal zones: 9 + 6 still survives any 2 (3 shards a zone).
        assert_eq!(choose(&[4; 5], DEFAULT_TARGET_NINES).unwrap().redundancy, r(9, 6));
        // 10 equal zones of 2: 9 + 6 would survive 3 zones where 6 + 4 survives 4, so 12 + 8.
        assert_eq!(choose(&[2; 10], DEFAULT_TARGET_NINES).unwrap().redundancy, r(12, 8));
        // 10 zones of 1 and 5 more in one: 12 + 8 does not fit (15 workers), 9 + 6 breaks the
        // promise: 6 + 4, short of the target.
        let lopsided = choose(&[1, 1, 1, 1, 1, 1, 1, 1, 1, 6], DEFAULT_TARGET_NINES).unwrap();
        assert_eq!(lopsided.redundancy, r(6, 4));
        // A stricter target takes a wider stripe where it fits.
        assert_eq!(choose(&[20], 18.0).unwrap().redundancy, r(12, 8));
        let unmet = choose(&[20], 25.0).unwrap();
        assert_eq!(unmet.redundancy, r(12, 8), "the most durable that fits");
        assert!(!unmet.meets_target);
        // A laxer one keeps 6 + 4.
        assert_eq!(choose(&[100], 9.0).unwrap().redundancy, r(6, 4));
    }

    #[test]
    fn small_networks_still_lose_forty_percent_or_are_refused() {
        for n in 2..10 {
            let c = choose(&[n], DEFAULT_TARGET_NINES).unwrap();
            assert_eq!(c.redundancy.total(), n);
            assert!(usize::from(c.redundancy.parity) * 5 >= n * 2);
        }
        // Tried: one worker. Must hold: a refusal, not a stripe without parity.
        assert!(choose(&[1], DEFAULT_TARGET_NINES).is_err());
        // An explicit request is honoured where it fits, made smaller where it does not.
        assert_eq!(for_upload(Some(r(4, 2)), &[20], DEFAULT_TARGET_NINES).unwrap(), r(4, 2));
        assert_eq!(
            for_upload(Some(r(12, 8)), &[10], DEFAULT_TARGET_NINES).unwrap().total(),
            10
        );
        assert_eq!(for_upload(None, &[20], DEFAULT_TARGET_NINES).unwrap(), r(9, 6));
    }

    #[test]
    fn files_below_the_policy_are_those_a_new_upload_would_beat_under_the_target() {
        let wide = choose(&[20], DEFAULT_TARGET_NINES).unwrap();
        let narrow = choose(&[10], DEFAULT_TARGET_NINES).unwrap();
        // Written at 4 + 3 during an outage: below, once 10 workers are back.
        assert!(below(r(4, 3), &narrow, DEFAULT_TARGET_NINES));
        // Tried: 6 + 4 while 2 of 10 workers are down (the policy gives 4 + 4 on 8, more nines
        // at twice the bytes). Must hold: not below: an outage re-encodes nothing.
        let outage = choose(&[8], DEFAULT_TARGET_NINES).unwrap();
        assert!(outage.reduced && outage.nines > nines(r(6, 4)), "{outage:?}");
        assert!(!below(r(6, 4), &outage, DEFAULT_TARGET_NINES));
        assert!(!below(r(3, 2), &outage, DEFAULT_TARGET_NINES));
        // 6 + 4 on a network that still gives 6 + 4: not below.
        assert!(!below(r(6, 4), &narrow, DEFAULT_TARGET_NINES));
        // 6 + 4 once the network gives 9 + 6: below (9.6 nines against 11).
        assert!(below(r(6, 4), &wide, DEFAULT_TARGET_NINES));
        // 9 + 6 when the network shrank to 6 + 4, and 12 + 8 anywhere: never below.
        assert!(!below(r(9, 6), &narrow, DEFAULT_TARGET_NINES));
        assert!(!below(r(12, 8), &wide, DEFAULT_TARGET_NINES));
        // At the target already: left alone, however wide the network could go.
        assert!(!below(r(6, 4), &wide, 9.0));
        // Asked for at 6 + 2 where the policy gives 6 + 4: the same data shards, so not below.
        assert!(!below(r(6, 2), &narrow, DEFAULT_TARGET_NINES));
        assert!(below(r(6, 2), &wide, DEFAULT_TARGET_NINES));
    }
}
