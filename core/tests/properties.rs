//! Property tests (native only: proptest does not run under wasm32).
//!
//! Sizes are drawn around the edges that matter, with the reason for each: 0 (the empty file is
//! one empty chunk), 1, chunk − 1, chunk, chunk + 1 (the held-back last chunk), several chunks
//! and odd tails. Chunks are 1 KiB here so thousands of cases stay fast; `roundtrip.rs` covers the
//! real 4 MiB size.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;
use disktro_core::keys::{self, KdfSetup, KeyPurpose, MasterKey, WrapContext};
use disktro_core::metadata::FileMetadata;
use disktro_core::seal::{BodyLayout, ChunkKey, Sealer};
use disktro_core::token::{Receipt, Token};
use disktro_core::wire::{Body, ErrorCode, Frame};
use disktro_core::{Decoder, Encoder, Error, FileId, FileKey, Redundancy, ShardId, SignedManifest, audit};
use proptest::prelude::*;

const CS: usize = 1024;

fn edge_size() -> impl Strategy<Value = usize> {
    prop_oneof![
        Just(0),
        Just(1),
        Just(CS - 1),
        Just(CS),
        Just(CS + 1),
        Just(3 * CS),
        (0..6 * CS),
        (1..5usize).prop_flat_map(|n| n * CS - 3..n * CS + 4),
    ]
}

fn redundancy() -> impl Strategy<Value = Redundancy> {
    (1u8..=8, 1u8..=5).prop_map(|(k, m)| Redundancy::new(k, m).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// encode → decode is the identity for any size, data kind, redundancy and feeding pattern,
    /// with any m shards of each chunk missing; m + 1 missing is a clear TooFewShards.
    #[test]
    fn round_trip_with_any_m_missing(
        len in edge_size(),
        compressible in any::<bool>(),
        redundancy in redundancy(),
        slice in 1usize..3000,
        seed in any::<u64>(),
    ) {
        let data = if compressible { text(seed, len) } else { noise(seed, len) };
        let key = FileKey::generate();
        let mut enc = Encoder::with_chunk_size(&key, FileId::random(), redundancy, CS as u32).unwrap();
        let mut chunks = Vec::new();
        for piece in data.chunks(slice) {
            chunks.extend(enc.push(piece).unwrap());
        }
        let (last, manifest) = enc.finish().unwrap();
        chunks.push(last);
        prop_assert_eq!(chunks.len(), len.div_ceil(CS).max(1));

        let total = redundancy.total();
        let m = usize::from(redundancy.parity);
        let mut dec = Decoder::new(&key, &manifest, len as u64).unwrap();
        let mut out = Vec::new();
        for (n, c) in chunks.iter().enumerate() {
            // A different set of m missing shards per chunk, derived from the seed.
            let start = (seed as usize).wrapping_add(n * 3) % total;
            let missing: Vec<usize> = (0..m).map(|i| (start + i * 7) % total).collect();
            let slots = offered(c, |i| !missing.contains(&i));
            out.extend_from_slice(&dec.decode_chunk(c.index, slots).unwrap());
        }
        dec.finish().unwrap();
        prop_assert_eq!(&out, &data);

        let c = &chunks[0];
        let slots = offered(c, |i| i > m);
        let mut dec = Decoder::new(&key, &manifest, len as u64).unwrap();
        let err = dec.decode_chunk(0, slots).unwrap_err();
        prop_assert_eq!(err, Error::TooFewShards { chunk: 0, available: total - m - 1, needed: total - m });
    }

    /// Any flipped bit in a shard is caught by its id.
    #[test]
    fn any_bit_flip_in_a_shard_changes_its_id(data in proptest::collection::vec(any::<u8>(), 1..4096), bit in any::<usize>()) {
        let id = ShardId::of(&data);
        let mut bad = data.clone();
        let bit = bit % (bad.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(!id.matches(&bad));
    }

    /// Any flipped bit in a sealed chunk is caught by the tag, with the one OpenError.
    #[test]
    fn any_bit_flip_in_a_sealed_chunk_fails_to_open(data in proptest::collection::vec(any::<u8>(), 0..2048), bit in any::<usize>(), index in any::<u64>(), last in any::<bool>()) {
        let id = FileId::random();
        let sealer = Sealer::new(&ChunkKey::derive(&FileKey::generate(), &id), id);
        let sealed = sealer.seal(index, last, BodyLayout::Padded, &data);
        prop_assert_eq!(sealer.open(index, last, BodyLayout::Padded, &sealed).unwrap(), data);
        let mut bad = sealed.clone();
        let bit = bit % (bad.len() * 8);
        bad[bit / 8] ^= 1 << (bit % 8);
        prop_assert_eq!(sealer.open(index, last, BodyLayout::Padded, &bad), Err(disktro_core::OpenError));
    }

    /// Every decoder returns an error, never a panic, on arbitrary bytes.
    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedManifest::decode(&bytes);
        let _ = Token::decode(&bytes);
        let _ = Receipt::verify(&bytes, &keys::Keypair::from_secret_bytes(&[1; 32]).public());
        let _ = Frame::decode(&bytes);
        let _ = KdfSetup::decode(&bytes);
        let _ = FileMetadata::open(&bytes, &FileKey::from_bytes([1; 32]), &FileId([2; 16]));
        let _ = keys::decode_link_key(&String::from_utf8_lossy(&bytes));
        let _ = String::from_utf8_lossy(&bytes).parse::<ShardId>();
        let _ = audit::verify(&ShardId::of(b"x"), 4096, 0, 1024, &bytes);
        let ctx = WrapContext { owner: b"o", purpose: KeyPurpose::File, id: b"i" };
        let _ = MasterKey::from_bytes([3; 32]).unwrap(&ctx, &bytes);
        let _ = Sealer::new(&ChunkKey::derive(&FileKey::from_bytes([1; 32]), &FileId([2; 16])), FileId([2; 16])).open(0, true, BodyLayout::Padded, &bytes);
    }

    /// ...and on valid encodings with random bytes overwritten (reaching deeper than noise).
    #[test]
    fn decoders_never_panic_on_mutated_encodings(seed in any::<u64>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let owner = keys::Keypair::from_secret_bytes(&[4; 32]);
        let key = FileKey::from_bytes([5; 32]);
        let (chunks, manifest) = disktro_core::chunk::encode_all(&key, FileId([6; 16]), Redundancy::new(2, 2).unwrap(), CS as u32, &text(seed, 2 * CS + 10)).unwrap();
        let signed = manifest.sign(&owner).unwrap();
        let frame = Frame { request_id: 1, body: Body::ShardData { shard: ShardId::of(b"s"), data: vec![1; 40] } }.encode().unwrap();
        let mutate = |mut v: Vec<u8>| {
            for (pos, byte) in &edits {
                let n = v.len();
                v[pos % n] = *byte;
            }
            v
        };
        let _ = SignedManifest::decode(&mutate(signed.as_bytes().to_vec()));
        let _ = Frame::decode(&mutate(frame));
        // The decoder given mutated shards under a valid manifest: an error or the right bytes.
        let mut dec = Decoder::new(&key, signed.manifest(), (2 * CS + 10) as u64).unwrap();
        let slots = chunks[0].shards.iter().map(|(_, b)| Some(mutate(b.to_vec()))).collect();
        if let Ok(plain) = dec.decode_chunk(0, slots) {
            prop_assert_eq!(&*plain, &text(seed, 2 * CS + 10)[..CS]);
        }
    }

    /// Every frame round-trips through its encoding.
    #[test]
    fn frames_round_trip(request_id in any::<u32>(), token in proptest::collection::vec(any::<u8>(), 0..300), data in proptest::collection::vec(any::<u8>(), 0..3000), n in 0usize..5, offset in any::<u64>(), len in any::<u32>(), msg in "\\PC{0,100}") {
        let ids: Vec<ShardId> = (0..n).map(|i| ShardId::of(&[i as u8])).collect();
        let bodies = vec![
            Body::Put { token: token.clone(), shard: ShardId::of(&data), data: data.clone() },
            Body::Get { token: token.clone(), shard: ShardId::of(&data) },
            Body::Delete { token: token.clone(), shards: ids.clone() },
            Body::AuditChallenge { token: token.clone(), shard: ShardId::of(b"a"), offset, len, nonce: [7; 32] },
            Body::Receipt { receipt: vec![9; disktro_core::token::RECEIPT_LEN] },
            Body::ShardData { shard: ShardId::of(&data), data: data.clone() },
            Body::Deleted { shards: ids },
            Body::AuditProof { nonce: [8; 32], proof: data.clone() },
            Body::Error { code: ErrorCode::Busy, message: msg },
        ];
        for body in bodies {
            let frame = Frame { request_id, body };
            let bytes = frame.encode().unwrap();
            prop_assert_eq!(Frame::decode(&bytes).unwrap(), frame.clone());
            // Every strict prefix is truncated, never a different frame.
            for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
                if cut < bytes.len() {
                    prop_assert!(Frame::decode(&bytes[..cut]).is_err());
                }
            }
            let mut long = bytes.clone();
            long.push(0);
            prop_assert!(Frame::decode(&long).is_err());
        }
    }
}

/// One thing that happens to a chunk's fetch: the oldest request running answers with its
/// shard, or fails, or nothing answers for the hedging delay.
#[derive(Debug, Clone, Copy)]
enum FetchEvent {
    Answer,
    Fail,
    Stall,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Tried: random codes (k of n), random node health, and random schedules of answers,
    /// failures and stalls driven through the readers' plan.
    /// Must hold: no shard is asked for twice; no more requests run than shards are missing,
    /// except one per stall; the plan is done exactly when k shards are in, and says it is
    /// exhausted only when nothing runs and no candidate is left short of k.
    #[test]
    fn the_fetch_plan_asks_each_shard_once_and_ends_right(
        k in 1usize..8,
        extra in 0usize..6,
        health in proptest::collection::vec(0u8..3, 14),
        events in proptest::collection::vec(prop_oneof![3 => Just(FetchEvent::Answer), 1 => Just(FetchEvent::Fail), 1 => Just(FetchEvent::Stall)], 0..40),
    ) {
        use disktro_core::api::NodeStatus;
        use disktro_core::fetch::ChunkPlan;
        let n = k + extra;
        let locations: Vec<u16> = (0..n as u16).collect();
        let status = |node: usize| match health[node] {
            0 => NodeStatus::Online,
            1 => NodeStatus::Suspect,
            _ => NodeStatus::Offline,
        };
        let mut plan = ChunkPlan::new(&locations, k, status);
        let mut asked = std::collections::HashSet::new();
        let mut running: std::collections::VecDeque<usize> = std::collections::VecDeque::new();
        let (mut have, mut hedges) = (0usize, 0usize);
        for event in events {
            for a in plan.to_start() {
                prop_assert!(asked.insert(a.slot), "shard {} asked twice", a.slot);
                running.push_back(a.slot);
            }
            prop_assert!(running.len() + have <= k + hedges, "more in flight than missing");
            if plan.is_done() {
                break;
            }
            match event {
                FetchEvent::Answer => {
                    if let Some(slot) = running.pop_front() {
                        prop_assert!(plan.got(slot));
                        have += 1;
                    }
                }
                FetchEvent::Fail => {
                    if let Some(slot) = running.pop_front() {
                        plan.failed(slot, "refused");
                    }
                }
                FetchEvent::Stall => {
                    if let Some(a) = plan.hedge() {
                        prop_assert!(asked.insert(a.slot), "a hedge asked a shard twice");
                        running.push_back(a.slot);
                        hedges += 1;
                    }
                }
            }
            prop_assert_eq!(plan.is_done(), have >= k);
            let exhausted = plan.exhausted().is_some();
            prop_assert_eq!(exhausted, !plan.is_done() && running.is_empty() && asked.len() == n);
        }
    }
}
