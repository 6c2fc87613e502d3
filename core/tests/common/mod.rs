//! Helpers shared by the core integration tests.
#![allow(dead_code)]

use std::collections::HashMap;

use disktro_core::chunk::encode_all;
use disktro_core::keys::Keypair;
use disktro_core::{Decoder, EncodedChunk, Error, FileId, FileKey, Manifest, Redundancy, ShardId};

/// Deterministic incompressible bytes.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

/// Deterministic compressible text.
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "storage ", "network ", "shard ", "the ", "of ", "worker ", "erasure ", "code, ", "and ", "file ", "key.\n",
        "a ",
    ];
    let mut out = Vec::with_capacity(len + 16);
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    while out.len() < len {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        out.extend_from_slice(WORDS[(x >> 59) as usize % WORDS.len()].as_bytes());
    }
    out.truncate(len);
    out
}

/// A file encoded with small chunks, with every shard kept in a content-addressed "store"
/// (what the workers would hold).
pub struct Stored {
    pub key: FileKey,
    pub manifest: Manifest,
    pub chunks: Vec<EncodedChunk>,
    /// The plaintext size (the sealed metadata's, which readers give the decoder).
    pub size: u64,
}

pub fn store(key: FileKey, id: FileId, redundancy: Redundancy, chunk_size: u32, data: &[u8]) -> Stored {
    let (chunks, manifest) = encode_all(&key, id, redundancy, chunk_size, data).unwrap();
    Stored {
        key,
        manifest,
        chunks,
        size: data.len() as u64,
    }
}

/// The shards of `chunk` a download would offer, slot by slot: those `keep` accepts (by shard
/// index), the others missing.
pub fn offered(chunk: &EncodedChunk, keep: impl Fn(usize) -> bool) -> Vec<Option<Vec<u8>>> {
    chunk
        .shards
        .iter()
        .enumerate()
        .map(|(i, (_, bytes))| keep(i).then(|| bytes.to_vec()))
        .collect()
}

pub fn shard_store<'a>(files: impl IntoIterator<Item = &'a Stored>) -> HashMap<ShardId, Vec<u8>> {
    files
        .into_iter()
        .flat_map(|f| f.chunks.iter())
        .flat_map(|c| c.shards.iter().map(|(id, b)| (id, b.to_vec())))
        .collect()
}

/// Decode a manifest fetching every shard from the store by id, as a reader would.
pub fn decode_from_store(
    key: &FileKey,
    manifest: &Manifest,
    size: u64,
    store: &HashMap<ShardId, Vec<u8>>,
) -> Result<Vec<u8>, Error> {
    let mut decoder = Decoder::new(key, manifest, size)?;
    let mut out = Vec::new();
    while let Some((index, entry)) = decoder.next_chunk() {
        let shards = entry.shards.iter().map(|id| store.get(id).cloned()).collect();
        out.extend_from_slice(&decoder.decode_chunk(index, shards)?);
    }
    decoder.finish()?;
    Ok(out)
}

/// Re-sign a rearranged manifest with an attacker's key: signatures stop forgery of *who* signed,
/// so these tests show what the seal alone still catches.
pub fn forged(manifest: Manifest) -> Manifest {
    manifest
        .sign(&Keypair::from_secret_bytes(&[0xEE; 32]))
        .unwrap()
        .manifest()
        .clone()
}

/// The fixed keys and ids the golden vectors and the FORMAT.md check are made with.
pub mod fixed {
    use disktro_core::keys::Keypair;
    use disktro_core::{FileId, FileKey};

    pub fn file_key() -> FileKey {
        FileKey::from_bytes([0x11; 32])
    }
    pub fn file_id() -> FileId {
        FileId([0x22; 16])
    }
    pub fn owner() -> Keypair {
        Keypair::from_secret_bytes(&[0x33; 32])
    }
    pub fn server() -> Keypair {
        Keypair::from_secret_bytes(&[0x44; 32])
    }
    pub fn worker() -> Keypair {
        Keypair::from_secret_bytes(&[0x55; 32])
    }
}
