//! FORMAT.md is the specification; this test holds the code to it. Every table marked
//! `<!-- spec: … -->` is parsed and each row checked against what the code produces, in both
//! directions where the code can enumerate its values (a code added to the protocol but not to the
//! spec fails, as does a row the code does not know). The derivations are recomputed from their
//! description with the primitive crates themselves (hkdf, aes-gcm, argon2, blake3, ed25519-dalek)
//! rather than through the functions under test.
//!
//! Runs natively and as wasm32 under Node (the spec is compiled in with `include_str!`).

#![allow(clippy::cast_possible_truncation)]

use std::collections::BTreeMap;

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use disktro_core::api::ErrorCode;
use disktro_core::keys::{self, KdfParams, KdfSetup, KeyPurpose};
use disktro_core::metadata::FileMetadata;
use disktro_core::recovery::RecoveryKey;
use disktro_core::seal::{self, BodyLayout, ChunkKey, Sealer};
use disktro_core::shard::Sharder;
use disktro_core::squeeze::Codec;
use disktro_core::token::{self, Operation, Receipt, Scope, Token};
use disktro_core::wire::{self, Body, Frame};
use disktro_core::{Manifest, Redundancy, Serial, ShardId};

mod common;

use common::fixed::{file_id, file_key, owner, server, worker};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

const SPEC: &str = include_str!("../../FORMAT.md");

/// The rows of the table after `<!-- spec: name -->`, as cells without their backquotes.
fn table(name: &str) -> Vec<Vec<String>> {
    let marker = format!("<!-- spec: {name} -->");
    let start = SPEC
        .find(&marker)
        .unwrap_or_else(|| panic!("FORMAT.md has no table {name}"));
    SPEC[start + marker.len()..]
        .lines()
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| l.starts_with('|'))
        .skip(2) // header and separator
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

/// A two-column table as a map, with every key once.
fn pairs(name: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for row in table(name) {
        assert!(
            out.insert(row[0].clone(), row[1].clone()).is_none(),
            "{name}: {} twice",
            row[0]
        );
    }
    out
}

fn hkdf(ikm: &[u8], label: &str, context: &[u8]) -> [u8; 32] {
    let mut info = b"disktro v1 ".to_vec();
    info.extend_from_slice(label.as_bytes());
    info.push(0);
    info.extend_from_slice(context);
    let mut out = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(None, ikm)
        .expand(&info, &mut out)
        .unwrap();
    out
}

fn open_gcm(key: &[u8; 32], nonce: &[u8], aad: &[u8], sealed: &[u8]) -> Vec<u8> {
    Aes256Gcm::new_from_slice(key)
        .unwrap()
        .decrypt(&Nonce::try_from(nonce).unwrap(), Payload { msg: sealed, aad })
        .expect("opens with the key, nonce and associated data FORMAT.md gives")
}

fn bytes16(b: &[u8]) -> Vec<u8> {
    let mut out = (b.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(b);
    out
}

fn verify_domain(public: &keys::PublicKey, domain: &str, message: &[u8], signature: &[u8]) {
    let mut signed = format!("disktro v1 {domain}").into_bytes();
    signed.push(0);
    signed.extend_from_slice(message);
    let key = ed25519_dalek::VerifyingKey::from_bytes(public.as_bytes()).unwrap();
    let signature = ed25519_dalek::Signature::from_slice(signature).unwrap();
    key.verify_strict(&signed, &signature)
        .unwrap_or_else(|_| panic!("not signed under domain {domain:?} as FORMAT.md says"));
}

fn token(operation: Operation, scope: Scope) -> Vec<u8> {
    Token {
        operation,
        issuer: server().public(),
        worker: worker().public().node_id(),
        scope,
        serial: Serial([0x66; 16]),
        expires_at: 1_900_000_000,
        byte_budget: 1 << 20,
        order_key: None,
        shards: vec![ShardId::of(b"a")],
    }
    .sign(&server())
    .unwrap()
}

fn receipt() -> Vec<u8> {
    Receipt {
        worker: worker().public().node_id(),
        shard: ShardId::of(b"a"),
        size: 1,
        serial: Serial([0x66; 16]),
    }
    .sign(&worker())
    .unwrap()
}

fn order() -> Vec<u8> {
    disktro_core::order::Order {
        serial: Serial([0x66; 16]),
        worker: worker().public().node_id(),
        bytes: 1000,
    }
    .sign(&owner())
}

fn manifest() -> Vec<u8> {
    // One whole raw chunk: header, 1024 bytes, tag.
    let shards = Sharder::new(Redundancy::DEFAULT).encode(&[7u8; 1049]);
    Manifest {
        file_id: file_id(),
        redundancy: Redundancy::DEFAULT,
        chunk_size: 1024,
        chunks: vec![disktro_core::ChunkEntry {
            sealed_len: 1049,
            shards: shards.ids().to_vec(),
            clear: None,
        }],
    }
    .sign(&owner())
    .unwrap()
    .as_bytes()
    .to_vec()
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn constants_are_the_codes() {
    let d = KdfParams::DEFAULT;
    let (min, max) = (KdfParams::MINIMUM, KdfParams::MAXIMUM);
    let code: BTreeMap<&str, u64> = [
        ("format version", u64::from(disktro_core::FORMAT_VERSION)),
        ("default chunk size", u64::from(disktro_core::DEFAULT_CHUNK_SIZE)),
        ("minimum chunk size", u64::from(disktro_core::MIN_CHUNK_SIZE)),
        ("maximum chunk size", u64::from(disktro_core::MAX_CHUNK_SIZE)),
        ("AES-GCM tag length", seal::TAG_LEN as u64),
        ("AES-GCM nonce length", seal::NONCE_LEN as u64),
        ("default data shards (k)", u64::from(Redundancy::DEFAULT.data)),
        ("default parity shards (m)", u64::from(Redundancy::DEFAULT.parity)),
        ("Argon2id default memory KiB", u64::from(d.memory_kib)),
        ("Argon2id default passes", u64::from(d.iterations)),
        ("Argon2id default lanes", u64::from(d.parallelism)),
        ("Argon2id minimum memory KiB", u64::from(min.memory_kib)),
        ("Argon2id minimum passes", u64::from(min.iterations)),
        ("Argon2id maximum memory KiB", u64::from(max.memory_kib)),
        ("Argon2id maximum passes", u64::from(max.iterations)),
        ("Argon2id maximum lanes", u64::from(max.parallelism)),
        ("wrapped key length", keys::WRAPPED_KEY_LEN as u64),
        ("token: most shards", token::MAX_TOKEN_SHARDS as u64),
        ("token: deepest batch", token::MAX_BATCH_DEPTH as u64),
        ("receipt length", token::RECEIPT_LEN as u64),
        ("order length", disktro_core::order::ORDER_LEN as u64),
        ("metadata: longest name", disktro_core::metadata::MAX_NAME_LEN as u64),
        (
            "metadata: longest MIME type",
            disktro_core::metadata::MAX_MIME_LEN as u64,
        ),
        ("wire: longest error message", wire::MAX_ERROR_MESSAGE_LEN as u64),
        ("wire: longest audit proof", wire::MAX_PROOF_LEN as u64),
        ("inventory buckets", disktro_core::inventory::BUCKETS as u64),
    ]
    .into_iter()
    .collect();
    let spec = pairs("constants");
    assert_eq!(
        spec.keys().map(String::as_str).collect::<Vec<_>>(),
        code.keys().copied().collect::<Vec<_>>(),
        "the constants FORMAT.md lists are the ones checked here"
    );
    for (name, value) in &spec {
        assert_eq!(value.parse::<u64>().unwrap(), code[name.as_str()], "FORMAT.md: {name}");
    }
    assert_eq!(receipt().len() as u64, code["receipt length"]);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn magics_start_their_formats() {
    let wrapped = keys::MasterKey::from_bytes([1; 32])
        .wrap_identity(owner().public().as_bytes(), &owner())
        .unwrap();
    let metadata = FileMetadata {
        name: "a".into(),
        mime: "text/plain".into(),
        size: 1,
        attributes: Vec::new(),
    }
    .seal(&file_key(), &file_id())
    .unwrap();
    let produced: BTreeMap<&str, Vec<u8>> = [
        ("signed manifest", manifest()),
        ("KDF set-up", KdfSetup::generate().encode()),
        ("wrapped key", wrapped),
        ("sealed metadata", metadata),
        (
            "chunk associated data",
            seal::associated_data(&file_id(), 0, true, BodyLayout::Padded).to_vec(),
        ),
        ("token", token(Operation::Get, Scope::File(file_id()))),
        ("receipt", receipt()),
        ("order", order()),
    ]
    .into_iter()
    .collect();
    for (format, magic) in pairs("magics") {
        // The node key file is written by disktro-net, whose own test checks this row.
        if format == "node key file" {
            continue;
        }
        let bytes = produced
            .get(format.as_str())
            .unwrap_or_else(|| panic!("FORMAT.md names a format {format:?} this test cannot produce"));
        assert_eq!(&bytes[..4], magic.as_bytes(), "{format}");
        // The KDF set-up's version says how passwords are read: 2 (NFKC) for every new one. The
        // file's formats are at 2 since padding (version 1 is still read).
        let padded = ["signed manifest", "sealed metadata", "chunk associated data"];
        let version = if format == "KDF set-up" || format == "token" || padded.contains(&format.as_str()) {
            2
        } else {
            disktro_core::FORMAT_VERSION
        };
        assert_eq!(bytes[4], version, "{format}: version byte");
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn key_derivations_are_as_specified() {
    let labels: Vec<String> = table("hkdf-labels").into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        labels,
        [
            "auth key",
            "master key",
            "wrapping key",
            "file wrapping key",
            "chunk key",
            "metadata key",
            "share password",
            "recovery auth key",
            "recovery master key"
        ]
    );

    // Account keys: Argon2id root, then HKDF "auth key" / "master key".
    let setup = KdfSetup {
        params: KdfParams::MINIMUM,
        salt: [0x77; 16],
        form: keys::PasswordForm::Nfkc,
    };
    let account = keys::derive_account_keys("pw", &setup).unwrap();
    let p = KdfParams::MINIMUM;
    let mut root = [0u8; 32];
    argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32)).unwrap(),
    )
    .hash_password_into(b"pw", &setup.salt, &mut root)
    .unwrap();
    assert_eq!(account.auth_key.as_bytes(), &hkdf(&root, "auth key", &[]));
    assert_eq!(account.master_key.as_bytes(), &hkdf(&root, "master key", &[]));
    let encoded = setup.encode();
    assert_eq!(&encoded[5..9], &p.memory_kib.to_be_bytes());
    assert_eq!(&encoded[9..13], &p.iterations.to_be_bytes());
    assert_eq!(&encoded[13..17], &p.parallelism.to_be_bytes());
    assert_eq!(&encoded[17..], &setup.salt);

    // Recovery keys: HKDF of the 32 random bytes; text = Crockford base32 of them and a 3-byte
    // BLAKE3 check, in groups of 4 after "DKRK".
    let recovery = RecoveryKey::from_bytes([0x42; 32]);
    assert_eq!(
        recovery.auth_key().as_bytes(),
        &hkdf(&[0x42; 32], "recovery auth key", &[])
    );
    assert_eq!(
        recovery.master_key().as_bytes(),
        &hkdf(&[0x42; 32], "recovery master key", &[])
    );
    let check = blake3::derive_key("disktro v1 recovery key checksum", &[0x42; 32]);
    let bits: Vec<u8> = [[0x42; 32].as_slice(), &check[..3]]
        .concat()
        .iter()
        .flat_map(|b| (0..8).rev().map(move |i| (b >> i) & 1))
        .collect();
    assert_eq!(bits.len(), 280);
    let digits: String = bits
        .chunks(5)
        .map(|c| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ"[c.iter().fold(0, |a, b| a * 2 + usize::from(*b))] as char)
        .collect();
    let groups: Vec<&str> = (0..14).map(|i| &digits[i * 4..i * 4 + 4]).collect();
    assert_eq!(recovery.to_text(), format!("DKRK-{}", groups.join("-")));

    // Chunk key, nonce and associated data; a sealed chunk opens with them.
    let chunk_key = hkdf(file_key().as_bytes(), "chunk key", file_id().as_bytes());
    assert_eq!(ChunkKey::derive(&file_key(), &file_id()).as_bytes(), &chunk_key);
    let mut nonce = [0u8; 12];
    nonce[3..11].copy_from_slice(&5u64.to_be_bytes());
    nonce[11] = 1;
    assert_eq!(seal::nonce(5, true), nonce);
    let mut aad = b"DKCH\x02".to_vec();
    aad.extend_from_slice(file_id().as_bytes());
    aad.extend_from_slice(&5u64.to_be_bytes());
    aad.extend_from_slice(&[1, 0xff]);
    assert_eq!(
        seal::associated_data(&file_id(), 5, true, BodyLayout::Padded).to_vec(),
        aad
    );
    let sealer = Sealer::new(&ChunkKey::derive(&file_key(), &file_id()), file_id());
    let sealed = sealer.seal(5, true, BodyLayout::Padded, b"chunk");
    assert_eq!(open_gcm(&chunk_key, &nonce, &aad, &sealed), b"chunk");
    // Version 1 (still read): version byte 1 and the codec in the last byte.
    let mut aad = b"DKCH\x01".to_vec();
    aad.extend_from_slice(file_id().as_bytes());
    aad.extend_from_slice(&5u64.to_be_bytes());
    aad.extend_from_slice(&[1, Codec::Zstd.to_byte()]);
    let sealed = sealer.seal(5, true, BodyLayout::Unpadded(Codec::Zstd), b"chunk");
    assert_eq!(open_gcm(&chunk_key, &nonce, &aad, &sealed), b"chunk");

    // A whole file's chunk bodies: header, payload, zeros to the padded length. A 5,000-byte raw
    // file in 4 KiB chunks: class = Padmé(5000) = 5120, so the last chunk holds 904 bytes and is
    // padded to 1024; the first is whole.
    let data: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let (chunks, manifest) =
        disktro_core::chunk::encode_all(&file_key(), file_id(), Redundancy::new(1, 1).unwrap(), 4096, &data).unwrap();
    for (c, (plain, padded)) in chunks.iter().zip([(4096usize, 4096usize), (904, 1024)]) {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&c.index.to_be_bytes());
        nonce[11] = u8::from(c.index == 1);
        let mut aad = b"DKCH\x02".to_vec();
        aad.extend_from_slice(file_id().as_bytes());
        aad.extend_from_slice(&c.index.to_be_bytes());
        aad.extend_from_slice(&[nonce[11], 0xff]);
        let body = open_gcm(&chunk_key, &nonce, &aad, c.shards.shard(0));
        let mut expected = vec![Codec::Raw.to_byte()];
        expected.extend_from_slice(&(plain as u32).to_be_bytes());
        expected.extend_from_slice(&(plain as u32).to_be_bytes());
        let start = usize::try_from(c.index).unwrap() * 4096;
        expected.extend_from_slice(&data[start..start + plain]);
        expected.resize(9 + padded, 0);
        assert_eq!(body, expected, "chunk {}", c.index);
    }
    assert_eq!(disktro_core::padding::size_class(5000, 4096), 5120);
    assert!(manifest.admits_size(5000));

    // Sealed metadata.
    let sealed = FileMetadata {
        name: "notes.txt".into(),
        mime: "text/plain".into(),
        size: 42,
        attributes: Vec::new(),
    }
    .seal(&file_key(), &file_id())
    .unwrap();
    let mut aad = b"DKMD\x02".to_vec();
    aad.extend_from_slice(file_id().as_bytes());
    let key = hkdf(file_key().as_bytes(), "metadata key", file_id().as_bytes());
    let plain = open_gcm(&key, &sealed[5..17], &aad, &sealed[17..]);
    let mut expected = 42u64.to_be_bytes().to_vec();
    expected.extend(bytes16(b"notes.txt"));
    expected.extend(bytes16(b"text/plain"));
    expected.resize(256, 0);
    assert_eq!(plain, expected);

    // Wrapped identity: under HKDF(master, "wrapping key"), bound to its own public key.
    let purposes = pairs("key-purposes");
    assert_eq!(purposes["identity"], (KeyPurpose::Identity as u8).to_string());
    assert_eq!(purposes["file"], (KeyPurpose::File as u8).to_string());
    assert_eq!(purposes["folder"], (KeyPurpose::Folder as u8).to_string());
    let me = owner();
    let public = me.public();
    let wrapped = account.master_key.wrap_identity(public.as_bytes(), &me).unwrap();
    let mut aad = b"DKWK\x01".to_vec();
    aad.push(KeyPurpose::Identity as u8);
    aad.extend(bytes16(public.as_bytes()));
    aad.extend(bytes16(&[]));
    let wrapping = hkdf(account.master_key.as_bytes(), "wrapping key", &[]);
    assert_eq!(
        open_gcm(&wrapping, &wrapped[5..17], &aad, &wrapped[17..]),
        me.secret_bytes().to_vec()
    );

    // Wrapped file key: under HKDF(HKDF(identity seed, "file wrapping key"), "wrapping key").
    let wrapped = me.wrap_file_key(&file_id(), &file_key());
    let mut aad = b"DKWK\x01".to_vec();
    aad.push(KeyPurpose::File as u8);
    aad.extend(bytes16(public.as_bytes()));
    aad.extend(bytes16(file_id().as_bytes()));
    let wrapping = hkdf(
        &hkdf(me.secret_bytes().as_ref(), "file wrapping key", &[]),
        "wrapping key",
        &[],
    );
    assert_eq!(
        open_gcm(&wrapping, &wrapped[5..17], &aad, &wrapped[17..]),
        file_key().as_bytes().to_vec()
    );

    // Share password proof.
    let mut ikm = file_key().as_bytes().to_vec();
    ikm.extend_from_slice("pässword".as_bytes());
    assert_eq!(
        keys::share_password_proof(&file_key(), "pässword"),
        hkdf(&ikm, "share password", &[])
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn blake3_contexts_and_signature_domains_are_as_specified() {
    let contexts: Vec<String> = table("blake3-contexts").into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        contexts,
        [
            "disktro v1 node id",
            "disktro v1 fingerprint",
            "disktro inventory v1",
            "disktro v1 recovery key checksum",
            "disktro v2 token leaf",
            "disktro v2 token node",
        ]
    );
    let public = worker().public();
    assert_eq!(
        public.node_id().as_bytes(),
        &blake3::derive_key("disktro v1 node id", public.as_bytes())
    );
    let hash = blake3::derive_key("disktro v1 fingerprint", public.as_bytes());
    let hex: String = hash[..10].iter().map(|b| format!("{b:02x}")).collect();
    let grouped: Vec<&str> = (0..5).map(|i| &hex[i * 4..i * 4 + 4]).collect();
    assert_eq!(public.fingerprint(), grouped.join("-"));
    let (a, b) = (ShardId::of(b"x"), ShardId::of(b"y"));
    let mut ids = vec![a, b];
    ids.retain(|id| disktro_core::inventory::bucket_of(id) == disktro_core::inventory::bucket_of(&a));
    ids.sort_unstable();
    let mut hasher = blake3::Hasher::new_derive_key("disktro inventory v1");
    for id in &ids {
        hasher.update(id.as_bytes());
    }
    let summary = disktro_core::inventory::summarize(&[a, b]);
    let bucket = &summary.buckets[usize::from(disktro_core::inventory::bucket_of(&a))];
    assert_eq!(bucket.digest, hasher.finalize().to_hex().to_string());
    assert_eq!(ShardId::of(b"x").as_bytes(), blake3::hash(b"x").as_bytes());

    let domains: Vec<String> = table("signature-domains").into_iter().map(|r| r[0].clone()).collect();
    assert_eq!(
        domains,
        [
            "manifest",
            "token",
            "receipt",
            "register",
            "heartbeat",
            "drain",
            "order"
        ]
    );
    let m = manifest();
    verify_domain(&owner().public(), "manifest", &m[..m.len() - 64], &m[m.len() - 64..]);
    // A token signed alone: depth 0 (leaf 0, no siblings), the root its leaf.
    let t = token(Operation::Get, Scope::File(file_id()));
    let body = &t[..t.len() - 64 - 3];
    assert_eq!(&t[t.len() - 64 - 3..t.len() - 64], &[0, 0, 0]);
    let root = blake3::derive_key("disktro v2 token leaf", body);
    verify_domain(&server().public(), "token", &root, &t[t.len() - 64..]);
    // A batch of three: padded to four leaves, the third's path is the zero leaf, then the
    // first two's parent; all three carry the one signature over the root.
    let batch: Vec<Token> = (0..3u8)
        .map(|i| Token {
            serial: Serial([i; 16]),
            ..Token::claimed(&t).unwrap()
        })
        .collect();
    let signed = Token::sign_all(batch, &server()).unwrap();
    let leaf = |t: &[u8]| blake3::derive_key("disktro v2 token leaf", &t[..t.len() - 64 - 3 - 64]);
    let node = |l: &[u8; 32], r: &[u8; 32]| {
        let mut pair = l.to_vec();
        pair.extend_from_slice(r);
        blake3::derive_key("disktro v2 token node", &pair)
    };
    let leaves: Vec<[u8; 32]> = signed.iter().map(|t| leaf(t)).collect();
    let root = node(&node(&leaves[0], &leaves[1]), &node(&leaves[2], &[0; 32]));
    let third = &signed[2];
    let proof = &third[third.len() - 64 - 3 - 64..third.len() - 64];
    assert_eq!(&proof[..3], &[0, 2, 2], "leaf 2, depth 2");
    assert_eq!(&proof[3..35], &[0; 32], "its sibling is the padding");
    assert_eq!(&proof[35..], &node(&leaves[0], &leaves[1]));
    for t in &signed {
        verify_domain(&server().public(), "token", &root, &t[t.len() - 64..]);
        Token::decode(t).unwrap();
    }
    let o = order();
    verify_domain(&owner().public(), "order", &o[..o.len() - 64], &o[o.len() - 64..]);
    let r = receipt();
    verify_domain(&worker().public(), "receipt", &r[..r.len() - 64], &r[r.len() - 64..]);
    assert_eq!(disktro_core::api::node::REGISTER_DOMAIN, "register");
    assert_eq!(disktro_core::api::node::HEARTBEAT_DOMAIN, "heartbeat");
    assert_eq!(disktro_core::api::node::DRAIN_DOMAIN, "drain");
    let sig = worker().sign("heartbeat", b"{}");
    verify_domain(&worker().public(), "heartbeat", b"{}", &sig);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn codes_are_as_specified() {
    let codecs = pairs("codecs");
    assert_eq!(codecs.len(), 2);
    assert_eq!(codecs["raw"], Codec::Raw.to_byte().to_string());
    assert_eq!(codecs["zstd"], Codec::Zstd.to_byte().to_string());

    let operations = pairs("token-operations");
    let all = [Operation::Put, Operation::Get, Operation::Delete, Operation::Audit];
    assert_eq!(operations.len(), all.len());
    for op in all {
        let name = format!("{op:?}").to_lowercase();
        assert_eq!(operations[&name], (op as u8).to_string(), "operation {name}");
        assert_eq!(
            token(op, Scope::Upload([9; 16]))[5],
            op as u8,
            "operation {name} is byte 5"
        );
    }

    // The scope kind is the byte after magic, version, operation, issuer and worker.
    let scopes = pairs("scope-kinds");
    assert_eq!(scopes.len(), 2);
    assert_eq!(
        token(Operation::Put, Scope::Upload([9; 16]))[70].to_string(),
        scopes["upload"]
    );
    assert_eq!(
        token(Operation::Get, Scope::File(file_id()))[70].to_string(),
        scopes["file"]
    );

    // Frame kinds: each body encodes with the kind FORMAT.md gives it.
    let shard = ShardId::of(b"a");
    let t = token(Operation::Get, Scope::File(file_id()));
    let bodies = [
        (
            "Put",
            Body::Put {
                token: t.clone(),
                shard,
                data: b"a".to_vec().into(),
            },
        ),
        (
            "Get",
            Body::Get {
                token: t.clone(),
                shard,
            },
        ),
        (
            "Delete",
            Body::Delete {
                token: t.clone(),
                shards: vec![shard],
            },
        ),
        ("Hello", Body::Hello { token: t.clone() }),
        (
            "AuditChallenge",
            Body::AuditChallenge {
                token: t,
                shard,
                offset: 0,
                len: 1,
                nonce: [1; 32],
            },
        ),
        ("Receipt", Body::Receipt { receipt: receipt() }),
        (
            "ShardData",
            Body::ShardData {
                shard,
                data: b"a".to_vec(),
            },
        ),
        ("Deleted", Body::Deleted { shards: vec![shard] }),
        ("Welcome", Body::Welcome),
        ("Order", Body::Order { order: order() }),
        ("OrderTaken", Body::OrderTaken),
        (
            "AuditProof",
            Body::AuditProof {
                nonce: [1; 32],
                proof: vec![0; 8],
            },
        ),
        (
            "Error",
            Body::Error {
                code: wire::ErrorCode::Busy,
                message: "busy".into(),
            },
        ),
    ];
    assert!(
        SPEC.contains(&format!(
            "<!-- spec: introduction-len -->{} bytes",
            wire::MAX_INTRODUCTION_LEN
        )),
        "FORMAT.md states the introduction limit"
    );
    let kinds = table("frame-kinds");
    assert_eq!(kinds.len(), bodies.len());
    for (name, body) in bodies {
        let row = kinds
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("no row {name}"));
        let bytes = Frame { request_id: 7, body }.encode().unwrap();
        assert_eq!(bytes[0], disktro_core::FORMAT_VERSION);
        assert_eq!(bytes[1].to_string(), row[1], "frame kind of {name}");
        assert_eq!(&bytes[2..6], &7u32.to_be_bytes());
    }

    // Worker error codes: every code that decodes is in the table with its name, and no other.
    let spec = pairs("wire-errors");
    let mut decoded = BTreeMap::new();
    for code in 0u16..=255 {
        let mut frame = vec![1, 31, 0, 0, 0, 1];
        frame.extend_from_slice(&code.to_be_bytes());
        frame.extend_from_slice(&0u16.to_be_bytes());
        if let Ok(Frame {
            body: Body::Error { code: c, .. },
            ..
        }) = Frame::decode(&frame)
        {
            decoded.insert(format!("{c:?}"), code.to_string());
        }
    }
    assert_eq!(decoded, spec, "worker error codes");
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn api_error_codes_are_as_specified() {
    let spec = table("api-errors");
    let listed: Vec<(String, String)> = spec.into_iter().map(|r| (r[0].clone(), r[1].clone())).collect();
    let code: Vec<(String, String)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.status().to_string()))
        .collect();
    assert_eq!(listed, code, "FORMAT.md's API error table is ErrorCode::ALL, in order");
    for c in ErrorCode::ALL {
        assert_eq!(serde_json::to_string(c).unwrap(), format!("\"{}\"", c.as_str()));
        assert_eq!(serde_json::from_str::<ErrorCode>(&format!("\"{c}\"")).unwrap(), *c);
    }
    // Tried: a code a newer server might send. Must hold: it reads as Unknown, not an error.
    assert_eq!(
        serde_json::from_str::<ErrorCode>("\"brand_new_code\"").unwrap(),
        ErrorCode::Unknown
    );
}

/// Multiplication in GF(2^8) with the polynomial FORMAT.md names (0x11D).
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1D;
        }
        b >>= 1;
    }
    p
}

fn gf_pow(a: u8, n: usize) -> u8 {
    (0..n).fold(1, |acc, _| gf_mul(acc, a))
}

fn gf_inv(a: u8) -> u8 {
    (1..=255u8)
        .find(|&b| gf_mul(a, b) == 1)
        .expect("non-zero elements have inverses")
}

/// The inverse of a square matrix over GF(2^8), by Gauss–Jordan elimination.
fn invert(mut m: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let n = m.len();
    let mut inv: Vec<Vec<u8>> = (0..n).map(|i| (0..n).map(|j| u8::from(i == j)).collect()).collect();
    for col in 0..n {
        let pivot = (col..n).find(|&r| m[r][col] != 0).expect("invertible");
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let scale = gf_inv(m[col][col]);
        for j in 0..n {
            m[col][j] = gf_mul(m[col][j], scale);
            inv[col][j] = gf_mul(inv[col][j], scale);
        }
        for r in 0..n {
            if r != col && m[r][col] != 0 {
                let f = m[r][col];
                for j in 0..n {
                    m[r][j] ^= gf_mul(f, m[col][j]);
                    inv[r][j] ^= gf_mul(f, inv[col][j]);
                }
            }
        }
    }
    inv
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn reed_solomon_matrix_is_as_specified() {
    // Two shapes: the default and a wide one, each rebuilt from FORMAT.md's description alone.
    for (k, m) in [(6usize, 4usize), (10, 6)] {
        let total = k + m;
        let vandermonde: Vec<Vec<u8>> = (0..total)
            .map(|r| (0..k).map(|c| gf_pow(r as u8, c)).collect())
            .collect();
        let top_inverse = invert(vandermonde[..k].to_vec());
        let matrix: Vec<Vec<u8>> = vandermonde
            .iter()
            .map(|row| {
                (0..k)
                    .map(|c| (0..k).fold(0u8, |acc, i| acc ^ gf_mul(row[i], top_inverse[i][c])))
                    .collect()
            })
            .collect();
        let sealed: Vec<u8> = (0..1000u32).map(|i| (i * 31 + 7) as u8).collect();
        let redundancy = Redundancy::new(k as u8, m as u8).unwrap();
        let shards = Sharder::new(redundancy).encode(&sealed);
        let len = sealed.len().div_ceil(k);
        assert_eq!(shards.shard_len(), len);
        let mut padded = sealed.clone();
        padded.resize(len * k, 0);
        for (r, row) in matrix.iter().enumerate() {
            let expected: Vec<u8> = (0..len)
                .map(|b| (0..k).fold(0u8, |acc, c| acc ^ gf_mul(row[c], padded[c * len + b])))
                .collect();
            assert_eq!(shards.shard(r), expected.as_slice(), "({k}, {m}) shard {r}");
            assert_eq!(shards.ids()[r].as_bytes(), blake3::hash(&expected).as_bytes());
        }
    }
}
