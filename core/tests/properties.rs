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
            Body::Put { token: token.clone(), shard: ShardId::of(&data), data: data.clone().into() },
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
            // The worker's decode, which leaves a put's data in the message, reads the same.
            let shared = bytes::Bytes::from(bytes.clone());
            prop_assert_eq!(Frame::decode_shared(&shared).unwrap(), frame.clone());
            // Every strict prefix is truncated, never a different frame.
            for cut in [0, 1, 5, bytes.len() / 2, bytes.len() - 1] {
                if cut < bytes.len() {
                    prop_assert!(Frame::decode(&bytes[..cut]).is_err());
                    prop_assert!(Frame::decode_shared(&shared.slice(..cut)).is_err());
                }
            }
            let mut long = bytes.clone();
            long.push(0);
            prop_assert!(Frame::decode(&long).is_err());
            prop_assert!(Frame::decode_shared(&bytes::Bytes::from(long)).is_err());
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

/// A worker of the simulated network the upload session is driven against.
fn sim_grant(worker: usize, slot: usize) -> disktro_core::api::PutGrant {
    disktro_core::api::PutGrant {
        node_id: disktro_core::NodeId([worker as u8; 32]),
        url: format!("ws://worker-{worker}"),
        token: disktro_core::api::Base64::new(vec![slot as u8]),
        serial: disktro_core::Serial([slot as u8; 16]),
        budget: 1,
        expires_at: 1000,
    }
}

/// The server's side of a replan, reduced to its contract: each waiting shard of a named chunk
/// on a failed worker moves to a worker that is neither failed nor in the chunk already, as a new
/// slot after the old ones; with no such worker left it is marked unplaced, as long as the chunk
/// keeps `min_stored` shards. `None` when it would not.
fn sim_replan(
    plan: &disktro_core::api::UploadPlan,
    req: &disktro_core::api::Replan,
    workers: usize,
) -> Option<disktro_core::api::UploadPlan> {
    let mut next = plan.clone();
    let worker_of = |p: &disktro_core::api::UploadPlan, slot: u16| p.nodes[usize::from(slot)].node_id.0[0] as usize;
    for &c in &req.chunks {
        let c = c as usize;
        for index in 0..next.placement[c].len() {
            let slot = next.placement[c][index];
            if slot & disktro_core::upload::UNPLACED != 0
                || !req.failed.contains(&next.nodes[usize::from(slot)].node_id)
            {
                continue;
            }
            let in_chunk: Vec<usize> = next.placement[c]
                .iter()
                .map(|&s| worker_of(&next, s & !disktro_core::upload::UNPLACED))
                .collect();
            let free = (0..workers)
                .find(|w| !in_chunk.contains(w) && !req.failed.contains(&disktro_core::NodeId([*w as u8; 32])));
            let Some(w) = free else {
                let total = next.placement[c].len();
                let unplaced = next.placement[c]
                    .iter()
                    .filter(|&&s| s & disktro_core::upload::UNPLACED != 0)
                    .count();
                let r = Redundancy::new(plan.data_shards, plan.parity_shards).unwrap();
                if total - unplaced - 1 < disktro_core::upload::min_stored(r) {
                    return None;
                }
                next.placement[c][index] = slot | disktro_core::upload::UNPLACED;
                continue;
            };
            let slot = next.nodes.len();
            next.nodes.push(sim_grant(w, slot));
            next.placement[c][index] = slot as u16;
        }
    }
    Some(next)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Tried: uploads of 1–6 chunks of random codes over 6–16 workers, where each put fails or
    /// succeeds at random (a failing worker stays failed), driven with replans through a server
    /// that keeps the placement contract.
    /// Must hold: nothing is sent to a worker after it failed; no chunk asks for a replan when
    /// none is needed; a chunk never places two shards on one worker; every shard ends with
    /// exactly one receipt or unplaced, at least min_stored stored per chunk, unless a shard
    /// failed on MAX_ATTEMPTS workers or too few workers are left; the commit has one receipt
    /// per stored shard, in order.
    #[test]
    fn the_upload_session_moves_failed_shards_and_commits_each_once(
        k in 1u8..6,
        m in 1u8..4,
        chunks in 1usize..6,
        spare in 0usize..8,
        outcomes in proptest::collection::vec(0u8..10, 0..400),
    ) {
        use disktro_core::upload::{Next, SessionError, UploadSession};
        let total = usize::from(k + m);
        let workers = total + spare;
        let plan = disktro_core::api::UploadPlan {
            upload_id: "u".to_owned(),
            file_id: FileId([1; 16]),
            data_shards: k,
            parity_shards: m,
            chunk_size: 1024,
            chunk_count: chunks as u64,
            expires_at: 1000,
            nodes: (0..workers).map(|w| sim_grant(w, w)).collect(),
            placement: (0..chunks).map(|c| (0..total).map(|i| ((c + i) % workers) as u16).collect()).collect(),
        };
        let mut session = UploadSession::new(plan).unwrap();
        let mut failed_workers = std::collections::HashSet::new();
        let mut outcomes = outcomes.into_iter();
        let mut ended = None;
        'chunks: for c in 0..chunks as u64 {
            loop {
                match session.next_puts(c) {
                    Next::Done => break,
                    Next::Replan => {
                        let req = session.replan_request().expect("a chunk that waits on a failed worker asks a replan");
                        prop_assert!(req.chunks.contains(&c));
                        match sim_replan(session.plan(), &req, workers) {
                            Some(next) => session.apply_plan(next).unwrap(),
                            None => { ended = Some("no worker left"); break 'chunks; }
                        }
                        prop_assert!(session.replan_request().is_none(), "a replan left a shard on a failed worker");
                    }
                    Next::Send(puts) => {
                        prop_assert!(!puts.is_empty());
                        let row: Vec<_> = session.plan().placement[c as usize].iter().map(|&s| session.grant(usize::from(s & !disktro_core::upload::UNPLACED)).node_id).collect();
                        let distinct: std::collections::HashSet<_> = row.iter().collect();
                        prop_assert_eq!(distinct.len(), total, "two shards of a chunk planned on one worker");
                        for put in puts {
                            let node = session.grant(put.slot).node_id;
                            prop_assert!(!failed_workers.contains(&node), "sent to a failed worker");
                            // One draw in ten fails; a worker's failure is for good.
                            if outcomes.next().unwrap_or(5) == 0 {
                                failed_workers.insert(node);
                                if let Err(e) = session.on_failure(c, put.index, put.slot, "gone") {
                                    prop_assert!(matches!(e, SessionError::Exhausted { .. }), "{}", e);
                                    ended = Some("exhausted");
                                    break 'chunks;
                                }
                            } else {
                                session.on_receipt(c, put.index, vec![c as u8, put.index as u8]);
                            }
                        }
                    }
                }
            }
            prop_assert!(session.is_complete(c));
        }
        match ended {
            Some(_) => prop_assert!(session.take_receipts().is_err()),
            None => {
                let placement = session.plan().placement.clone();
                let receipts = session.take_receipts().unwrap();
                let stored: Vec<(u8, u8)> = (0..chunks)
                    .flat_map(|c| (0..total).map(move |i| (c, i)))
                    .filter(|&(c, i)| placement[c][i] & disktro_core::upload::UNPLACED == 0)
                    .map(|(c, i)| (c as u8, i as u8))
                    .collect();
                prop_assert_eq!(receipts.len(), stored.len());
                for (r, (c, i)) in receipts.iter().zip(stored) {
                    prop_assert_eq!(r.as_bytes(), &[c, i][..]);
                }
                let r = Redundancy::new(k, m).unwrap();
                for row in &placement {
                    let kept = row.iter().filter(|&&s| s & disktro_core::upload::UNPLACED == 0).count();
                    prop_assert!(kept >= disktro_core::upload::min_stored(r), "a chunk kept {} shards", kept);
                }
            }
        }
    }
}
