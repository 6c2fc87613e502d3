//! Golden vectors: fixed keys and inputs → the exact bytes of every format.
//!
//! The same test runs natively and as wasm32 under Node (`make test-wasm`), against the same
//! committed file, so the browser and native builds provably produce identical bytes. A change to
//! any format shows up here as a diff to `golden/vectors.txt`, which must be deliberate:
//! regenerate with `DISKTRO_BLESS_GOLDEN=1 cargo test -p disktro-core --test golden` (native only)
//! and bump the format version if old data can no longer be read. `golden/inputs.txt` states
//! every input (keys, seeds, plaintexts, parameters) as bytes, so another implementation can
//! reproduce the vectors from it and FORMAT.md alone.

#![allow(clippy::cast_possible_truncation)]

use disktro_core::chunk::encode_all;
use disktro_core::ids::to_hex;
use disktro_core::keys::{self, KdfParams, KdfSetup, MasterKey, PublicKey};
use disktro_core::metadata::FileMetadata;
use disktro_core::seal::{self, BodyLayout, ChunkKey, Sealer};
use disktro_core::squeeze::Codec;
use disktro_core::token::{Operation, Receipt, Scope, Token};
use disktro_core::wire::{Body, Frame};
use disktro_core::{Redundancy, Serial, ShardId, audit};

mod common;

use common::fixed::{file_id, file_key, owner, server, worker};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

const VECTORS: &str = include_str!("golden/vectors.txt");
const INPUTS: &str = include_str!("golden/inputs.txt");

/// The master key the `opens_` vectors were wrapped under.
const OPENS_MASTER_KEY: [u8; 32] = [0x88; 32];
/// What the identity key is bound to in `opens_wrapped_identity` (an older binding, kept); the
/// CLI and the app bind it to its own public key (`opens_wrapped_identity_own_key`).
const EMAIL_BINDING: &[u8] = b"golden@example.com";

/// Deterministic text: compressible, so the zstd path is covered.
fn text(len: usize) -> Vec<u8> {
    let words = [
        "alpha ", "beta ", "gamma ", "delta ", "shard ", "chunk ", "seal.\n", "key ",
    ];
    let mut out = Vec::with_capacity(len);
    let mut i = 0usize;
    while out.len() < len {
        out.extend_from_slice(words[(i * 7 + i / 3) % words.len()].as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

/// Deterministic incompressible bytes (BLAKE3 in XOF mode).
fn noise(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"golden noise")
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Every vector, computed from scratch.
fn compute() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| v.push((name.to_owned(), to_hex(bytes)));

    let key = ChunkKey::derive(&file_key(), &file_id());
    put("chunk_key", key.as_bytes());
    put("nonce_5_last", &seal::nonce(5, true));
    put(
        "aad_5_last_zstd",
        &seal::associated_data(&file_id(), 5, true, BodyLayout::Unpadded(Codec::Zstd)),
    );
    put(
        "aad_5_last_padded",
        &seal::associated_data(&file_id(), 5, true, BodyLayout::Padded),
    );
    let sealer = Sealer::new(&key, file_id());
    let raw = BodyLayout::Unpadded(Codec::Raw);
    put("sealed_raw_0", &sealer.seal(0, false, raw, b"golden chunk zero"));
    put("sealed_empty_last", &sealer.seal(0, true, raw, b""));
    put(
        "sealed_padded_0",
        &sealer.seal(0, false, BodyLayout::Padded, b"golden chunk zero"),
    );

    // Whole pipeline: 3 chunks of text (squeezed) and of noise (raw), k=3 m=2, 1 KiB chunks.
    for (name, data) in [("text", text(2500)), ("noise", noise(2500))] {
        let (chunks, manifest) =
            encode_all(&file_key(), file_id(), Redundancy::new(3, 2).unwrap(), 1024, &data).unwrap();
        for c in &chunks {
            let codec = format!("{:?}", c.codec);
            put(
                &format!("{name}_chunk{}_codec_{codec}_shard0", c.index),
                c.shards.shard(0),
            );
            let ids: Vec<u8> = c.shards.ids().iter().flat_map(|id| id.0).collect();
            put(&format!("{name}_chunk{}_shard_ids", c.index), &ids);
        }
        let signed = manifest.sign(&owner()).unwrap();
        put(&format!("{name}_manifest"), signed.as_bytes());
    }
    // The default layout on one small chunk, to pin 6 + 4 as well.
    let (chunks, _) = encode_all(&file_key(), file_id(), Redundancy::DEFAULT, 1024, b"six plus four").unwrap();
    let ids: Vec<u8> = chunks[0].shards.ids().iter().flat_map(|id| id.0).collect();
    put("default_6_4_shard_ids", &ids);

    let token = Token {
        operation: Operation::Get,
        issuer: server().public(),
        worker: worker().public().node_id(),
        scope: Scope::File(file_id()),
        serial: Serial([0x66; 16]),
        expires_at: 1_900_000_000,
        byte_budget: 1 << 20,
        order_key: Some(owner().public()),
        shards: vec![ShardId::of(b"b"), ShardId::of(b"a")],
    };
    put("token_get", &token.clone().sign(&server()).unwrap());
    // Two tokens signed together: the second's leaf 1 of depth 1.
    let pair = vec![
        token.clone(),
        Token {
            serial: Serial([0x67; 16]),
            order_key: None,
            ..token
        },
    ];
    put("token_batch_second", &Token::sign_all(pair, &server()).unwrap()[1]);
    let order = disktro_core::order::Order {
        serial: Serial([0x66; 16]),
        worker: worker().public().node_id(),
        bytes: 1000,
    };
    put("order", &order.sign(&owner()));
    let receipt = Receipt {
        worker: worker().public().node_id(),
        shard: ShardId::of(b"a"),
        size: 1,
        serial: Serial([0x66; 16]),
    };
    put("receipt", &receipt.sign(&worker()).unwrap());
    let frame = Frame {
        request_id: 7,
        body: Body::Put {
            token: vec![1, 2, 3],
            shard: ShardId::of(b"xyz"),
            data: b"xyz".to_vec().into(),
        },
    };
    put("frame_put", &frame.encode().unwrap());
    let frame = Frame {
        request_id: 8,
        body: Body::Error {
            code: disktro_core::wire::ErrorCode::HashMismatch,
            message: "hash mismatch".into(),
        },
    };
    put("frame_error", &frame.encode().unwrap());

    let setup = KdfSetup {
        params: KdfParams::MINIMUM,
        salt: [0x77; 16],
        form: keys::PasswordForm::AsTyped,
    };
    put("kdf_setup", &setup.encode());
    let account = keys::derive_account_keys("correct horse battery staple", &setup).unwrap();
    put("auth_key", account.auth_key.as_bytes());
    put("master_key", account.master_key.as_bytes());
    put("link_key", keys::encode_link_key(&file_key()).as_bytes());
    put("owner_public_key", owner().public().as_bytes());
    put("node_id", worker().public().node_id().as_bytes());

    let shard = noise(5000);
    put("audit_proof_1000_1500", &audit::prove(&shard, 1000, 1500).unwrap());
    v
}

/// Every input the vectors are computed from, as `name hex`: with these (and FORMAT.md) another
/// implementation reproduces vectors.txt without reading this file.
fn inputs() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| v.push((name.to_owned(), to_hex(bytes)));
    put("file_key", file_key().as_bytes());
    put("file_id", file_id().as_bytes());
    put("owner_seed", owner().secret_bytes().as_ref());
    put("server_seed", server().secret_bytes().as_ref());
    put("worker_seed", worker().secret_bytes().as_ref());
    put("sealed_raw_0_plaintext", b"golden chunk zero");
    put("pipeline_redundancy_k_m", &[3, 2]);
    put("pipeline_chunk_size_u32", &1024u32.to_be_bytes());
    put("text_2500", &text(2500));
    put("noise_2500", &noise(2500));
    put("default_6_4_plaintext", b"six plus four");
    put("token_serial", &[0x66; 16]);
    put("token_expires_at_u64", &1_900_000_000u64.to_be_bytes());
    put("token_byte_budget_u64", &(1u64 << 20).to_be_bytes());
    put("token_and_receipt_shards_are_blake3_of", b"b,a");
    put("frame_put_token", &[1, 2, 3]);
    put("frame_put_data", b"xyz");
    put("kdf_password", b"correct horse battery staple");
    put("kdf_salt", &[0x77; 16]);
    put("audit_shard_5000", &noise(5000));
    put("opens_master_key", &OPENS_MASTER_KEY);
    put("opens_identity_binding_email", EMAIL_BINDING);
    put("opens_identity_binding_own_key", owner().public().as_bytes());
    v
}

fn parse_lines(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, hex) = l.split_once(' ').expect("lines are `name hex`");
            (name.to_owned(), hex.to_owned())
        })
        .collect()
}

fn stored() -> Vec<(String, String)> {
    parse_lines(VECTORS)
}

fn stored_value(name: &str) -> Vec<u8> {
    let hex = stored()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("vector {name} missing"))
        .1;
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(not(target_arch = "wasm32"))]
fn bless(computed: &[(String, String)]) {
    // Values that are random when produced (wrapped keys, sealed metadata) are kept from the
    // existing file, so blessing does not churn them.
    let keep: Vec<(String, String)> = stored().into_iter().filter(|(n, _)| n.starts_with("opens_")).collect();
    let mut text = String::from("# Golden vectors of disktro-core: `name hex`. See core/tests/golden.rs.\n");
    for (n, h) in computed.iter().chain(&keep) {
        text.push_str(&format!("{n} {h}\n"));
    }
    let have = |n: &str| keep.iter().any(|(k, _)| k == n);
    let master = MasterKey::from_bytes(OPENS_MASTER_KEY);
    if !have("opens_wrapped_file_key") {
        let w = master.wrap_file_key(&owner().public(), &file_id(), &file_key());
        text.push_str(&format!("opens_wrapped_file_key {}\n", to_hex(&w)));
    }
    if !have("opens_wrapped_identity") {
        let w = master.wrap_identity(EMAIL_BINDING, &owner()).unwrap();
        text.push_str(&format!("opens_wrapped_identity {}\n", to_hex(&w)));
    }
    if !have("opens_wrapped_identity_own_key") {
        let w = master.wrap_identity(owner().public().as_bytes(), &owner()).unwrap();
        text.push_str(&format!("opens_wrapped_identity_own_key {}\n", to_hex(&w)));
    }
    if !have("opens_sealed_metadata_v2") {
        let meta = FileMetadata {
            name: "golden.txt".into(),
            mime: "text/plain".into(),
            size: 2500,
            attributes: Vec::new(),
        };
        text.push_str(&format!(
            "opens_sealed_metadata_v2 {}\n",
            to_hex(&meta.seal(&file_key(), &file_id()).unwrap())
        ));
    }
    if !have("opens_sealed_metadata") {
        let meta = FileMetadata {
            name: "golden.txt".into(),
            mime: "text/plain".into(),
            size: 2500,
            attributes: Vec::new(),
        };
        text.push_str(&format!(
            "opens_sealed_metadata {}\n",
            to_hex(&meta.seal(&file_key(), &file_id()).unwrap())
        ));
    }
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/vectors.txt"), text).unwrap();
    let mut stated = String::from(
        "# The inputs of vectors.txt: `name hex` (text inputs as their UTF-8 bytes). See core/tests/golden.rs.\n",
    );
    for (n, h) in inputs() {
        stated.push_str(&format!("{n} {h}\n"));
    }
    std::fs::write(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/inputs.txt"), stated).unwrap();
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn every_format_matches_its_golden_bytes() {
    let computed = compute();
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("DISKTRO_BLESS_GOLDEN").is_some() {
        bless(&computed);
        return;
    }
    let stored = stored();
    for (name, hex) in &computed {
        let want = stored.iter().find(|(n, _)| n == name).map(|(_, h)| h.as_str());
        assert_eq!(Some(hex.as_str()), want, "golden vector {name} differs");
    }
    let computed_names: Vec<&str> = computed.iter().map(|(n, _)| n.as_str()).collect();
    for (name, _) in &stored {
        assert!(
            name.starts_with("opens_") || computed_names.contains(&name.as_str()),
            "stale vector {name}"
        );
    }
}

/// inputs.txt states exactly the inputs the vectors are computed from.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn the_inputs_are_stated() {
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("DISKTRO_BLESS_GOLDEN").is_some() {
        return;
    }
    assert_eq!(
        parse_lines(INPUTS),
        inputs(),
        "golden/inputs.txt is out of date: bless again"
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn golden_sealed_values_open() {
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("DISKTRO_BLESS_GOLDEN").is_some() {
        return;
    }
    let master = MasterKey::from_bytes(OPENS_MASTER_KEY);
    let key = master
        .unwrap_file_key(&owner().public(), &file_id(), &stored_value("opens_wrapped_file_key"))
        .unwrap();
    assert_eq!(key, file_key());
    let id = master
        .unwrap_identity(EMAIL_BINDING, &stored_value("opens_wrapped_identity"))
        .unwrap();
    assert_eq!(id.public(), owner().public());
    // The binding real clients use: the identity key's own public key. Bound to anything else it
    // does not open.
    let own = stored_value("opens_wrapped_identity_own_key");
    let id = master.unwrap_identity(owner().public().as_bytes(), &own).unwrap();
    assert_eq!(id.public(), owner().public());
    assert!(master.unwrap_identity(EMAIL_BINDING, &own).is_err());
    let meta = FileMetadata::open(&stored_value("opens_sealed_metadata_v2"), &file_key(), &file_id()).unwrap();
    assert_eq!(
        meta,
        FileMetadata {
            name: "golden.txt".into(),
            mime: "text/plain".into(),
            size: 2500,
            attributes: Vec::new(),
        }
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn golden_manifests_decode_back_to_the_original_bytes() {
    for name in ["text", "noise"] {
        let bytes = stored_value(&format!("{name}_manifest"));
        let signed = disktro_core::SignedManifest::decode(&bytes).unwrap();
        assert_eq!(signed.owner(), &owner().public());
        assert!(signed.manifest().admits_size(2500));
        let data = if name == "text" { text(2500) } else { noise(2500) };
        let (chunks, _) = encode_all(&file_key(), file_id(), Redundancy::new(3, 2).unwrap(), 1024, &data).unwrap();
        let back = disktro_core::chunk::decode_all(&file_key(), signed.manifest(), 2500, &chunks).unwrap();
        assert_eq!(back, data);
    }
    let token = Token::decode(&stored_value("token_get")).unwrap();
    assert_eq!(token.issuer, PublicKey(*server().public().as_bytes()));
    assert!(token.covers(&ShardId::of(b"a")) && !token.covers(&ShardId::of(b"c")));
    assert_eq!(token.order_key, Some(owner().public()));
    let second = Token::decode(&stored_value("token_batch_second")).unwrap();
    assert_eq!((second.serial, second.order_key), (Serial([0x67; 16]), None));
    let order = disktro_core::order::Order::verify(&stored_value("order"), &owner().public()).unwrap();
    assert_eq!(order.bytes, 1000);
}

/// Files stored before padding (format version 1: manifest, chunk bodies, metadata) still read.
/// Tried: the version-1 text and noise files, from 3 of their 5 shards per chunk (two data, one
/// parity), and the version-1 sealed metadata. Must hold: byte-identical plaintext; a size that
/// disagrees with the version-1 manifest is refused.
#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn version_one_files_still_read() {
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("DISKTRO_BLESS_GOLDEN").is_some() {
        return;
    }
    for name in ["text", "noise"] {
        let signed = disktro_core::SignedManifest::decode(&stored_value(&format!("opens_v1_{name}_manifest"))).unwrap();
        let manifest = signed.manifest();
        assert_eq!(manifest.version(), 1);
        assert!(disktro_core::Decoder::new(&file_key(), manifest, 2501).is_err());
        let mut decoder = disktro_core::Decoder::new(&file_key(), manifest, 2500).unwrap();
        let mut out = Vec::new();
        while let Some((index, _)) = decoder.next_chunk() {
            let slots = (0..5)
                .map(|j| {
                    [1, 2, 4]
                        .contains(&j)
                        .then(|| stored_value(&format!("opens_v1_{name}_chunk{index}_shard{j}")))
                })
                .collect();
            out.extend_from_slice(&decoder.decode_chunk(index, slots).unwrap());
        }
        decoder.finish().unwrap();
        assert_eq!(out, if name == "text" { text(2500) } else { noise(2500) });
    }
    let meta = FileMetadata::open(&stored_value("opens_sealed_metadata"), &file_key(), &file_id()).unwrap();
    assert_eq!(meta.size, 2500);
}
