//! Manifest: the owner-signed list of a file's chunks and the shards of each.
//!
//! Encoding (canonical: fixed-width big-endian integers, exactly one encoding per value):
//!
//! ```text
//! "DKMF" version:u8 owner:[32] file_id:[16] k:u8 m:u8 chunk_size:u32 chunk_count:u32
//!   chunk_count × ( plain_len:u32 sealed_len:u32 codec:u8 shard_id:[32] × (k+m) )
//! signature:[64]    Ed25519 by `owner` over everything before it, domain "manifest"
//! ```
//!
//! Decoding checks the signature and every structural rule ([`Manifest::validate`]): unknown
//! versions, trailing bytes, impossible lengths and non-canonical layouts are rejected, so a
//! server cannot hand a reader a manifest the owner's encoder could not have produced. Whether
//! the owner is the *expected* owner is the reader's decision ([`SignedManifest::owner`]).

use crate::encoding::{Reader, Writer as _};
use crate::keys::{Keypair, PublicKey};
use crate::seal::TAG_LEN;
use crate::shard::Redundancy;
use crate::squeeze::Codec;
use crate::{Error, FileId, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, ShardId};

const MAGIC: &[u8; 4] = b"DKMF";
const SIGNING_DOMAIN: &str = "manifest";
/// Bytes of the fixed part before the chunk table.
const HEADER_LEN: usize = 4 + 1 + 32 + 16 + 1 + 1 + 4 + 4;

/// One chunk: its lengths, codec and the ids of its k + m shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkEntry {
    /// Plaintext bytes in the chunk.
    pub plain_len: u32,
    /// Bytes after squeeze and seal (what the shards encode, before padding).
    pub sealed_len: u32,
    pub codec: Codec,
    /// Data shards first, then parity.
    pub shards: Vec<ShardId>,
}

/// Everything a reader needs to fetch and rebuild a file, except its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub file_id: FileId,
    pub redundancy: Redundancy,
    pub chunk_size: u32,
    pub chunks: Vec<ChunkEntry>,
}

impl Manifest {
    /// Plaintext size of the whole file.
    pub fn plain_size(&self) -> u64 {
        self.chunks.iter().map(|c| u64::from(c.plain_len)).sum()
    }

    /// Bytes stored on workers (all shards of all chunks).
    pub fn stored_size(&self) -> u64 {
        let total = self.redundancy.total() as u64;
        self.chunks
            .iter()
            .map(|c| self.redundancy.shard_len(c.sealed_len as usize) as u64 * total)
            .sum()
    }

    /// The structural rules every manifest obeys; exactly what [`crate::Encoder`] produces.
    pub fn validate(&self) -> Result<(), Error> {
        Redundancy::new(self.redundancy.data, self.redundancy.parity)?;
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&self.chunk_size) {
            return Err(Error::InvalidParams("chunk size out of range"));
        }
        let count = self.chunks.len();
        if count == 0 || u32::try_from(count).is_err() {
            return Err(Error::NonCanonical("a manifest lists at least one chunk"));
        }
        for (i, c) in self.chunks.iter().enumerate() {
            let last = i + 1 == count;
            if c.shards.len() != self.redundancy.total() {
                return Err(Error::NonCanonical("chunk does not list k + m shards"));
            }
            if !last && c.plain_len != self.chunk_size {
                return Err(Error::NonCanonical("only the last chunk may be short"));
            }
            if c.plain_len > self.chunk_size || (last && count > 1 && c.plain_len == 0) {
                return Err(Error::NonCanonical("last chunk length out of range"));
            }
            let sealed = u64::from(c.sealed_len);
            let plain = u64::from(c.plain_len);
            let tag = TAG_LEN as u64;
            let ok = match c.codec {
                Codec::Raw => sealed == plain + tag,
                // zstd is kept only when clearly smaller, and a frame is never empty.
                Codec::Zstd => sealed > tag && sealed < plain + tag,
            };
            if !ok {
                return Err(Error::NonCanonical("sealed length does not fit the codec"));
            }
        }
        Ok(())
    }

    fn encode_unsigned(&self, owner: &PublicKey) -> Vec<u8> {
        let entry_len = 9 + 32 * self.redundancy.total();
        let mut out = Vec::with_capacity(HEADER_LEN + entry_len * self.chunks.len() + 64);
        out.put_header(MAGIC);
        out.extend_from_slice(owner.as_bytes());
        out.extend_from_slice(self.file_id.as_bytes());
        out.push(self.redundancy.data);
        out.push(self.redundancy.parity);
        out.put_u32(self.chunk_size);
        out.put_u32(u32::try_from(self.chunks.len()).expect("validated chunk count"));
        for c in &self.chunks {
            out.put_u32(c.plain_len);
            out.put_u32(c.sealed_len);
            out.push(c.codec.to_byte());
            for id in &c.shards {
                out.extend_from_slice(id.as_bytes());
            }
        }
        out
    }

    /// Validate, encode and sign with the owner's identity key.
    pub fn sign(self, owner: &Keypair) -> Result<SignedManifest, Error> {
        self.validate()?;
        let mut bytes = self.encode_unsigned(&owner.public());
        let signature = owner.sign(SIGNING_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        Ok(SignedManifest {
            owner: owner.public(),
            manifest: self,
            bytes,
        })
    }
}

/// A manifest whose signature has been checked (the only way to hold one is to have signed it or
/// to have decoded and verified it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedManifest {
    owner: PublicKey,
    manifest: Manifest,
    bytes: Vec<u8>,
}

impl SignedManifest {
    /// Decode, verify the signature against the embedded owner key and validate the structure.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "manifest");
        r.header(MAGIC)?;
        let owner = PublicKey(r.array()?);
        let file_id = FileId(r.array()?);
        let redundancy = Redundancy::new(r.u8()?, r.u8()?)?;
        let chunk_size = r.u32()?;
        let count = r.u32()? as usize;
        let total = redundancy.total();
        let entry_len = 9 + 32 * total;
        // Check the length before allocating: a forged count must not reserve memory.
        r.expect_remaining(count.checked_mul(entry_len).and_then(|n| n.checked_add(64)))?;
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            let plain_len = r.u32()?;
            let sealed_len = r.u32()?;
            let codec = Codec::from_byte(r.u8()?)?;
            let shards = (0..total).map(|_| r.array().map(ShardId)).collect::<Result<_, _>>()?;
            chunks.push(ChunkEntry {
                plain_len,
                sealed_len,
                codec,
                shards,
            });
        }
        let signed_len = bytes.len() - r.remaining();
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        owner.verify(SIGNING_DOMAIN, &bytes[..signed_len], &signature)?;
        let manifest = Manifest {
            file_id,
            redundancy,
            chunk_size,
            chunks,
        };
        manifest.validate()?;
        Ok(Self {
            owner,
            manifest,
            bytes: bytes.to_vec(),
        })
    }

    /// Who signed it. Readers compare this with the owner they expect (or show its fingerprint).
    pub fn owner(&self) -> &PublicKey {
        &self.owner
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The canonical signed encoding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}
