//! Manifest: the owner-signed list of a file's chunks and the shards of each.
//!
//! Encoding (canonical: fixed-width big-endian integers, exactly one encoding per value):
//!
//! ```text
//! "DKMF" version:u8 owner:[32] file_id:[16] k:u8 m:u8 chunk_size:u32 chunk_count:u32
//!   version 2: chunk_count × ( sealed_len:u32 shard_id:[32] × (k+m) )
//!   version 1: chunk_count × ( plain_len:u32 sealed_len:u32 codec:u8 shard_id:[32] × (k+m) )
//! signature:[64]    Ed25519 by `owner` over everything before it, domain "manifest"
//! ```
//!
//! Version 2 (written since padding) states only padded lengths: a chunk's plaintext length and
//! codec are inside its sealed body ([`crate::padding`]). Version 1 manifests (files stored
//! before) are still read.
//!
//! Decoding checks the signature and every structural rule ([`Manifest::validate`]): unknown
//! versions, trailing bytes, impossible lengths and non-canonical layouts are rejected, so a
//! server cannot hand a reader a manifest the owner's encoder could not have produced. Whether
//! the owner is the *expected* owner is the reader's decision ([`SignedManifest::owner`]).

use crate::encoding::{Reader, Writer as _};
use crate::keys::{Keypair, PublicKey};
use crate::padding::{self, BODY_HEADER_LEN};
use crate::seal::{BodyLayout, TAG_LEN};
use crate::shard::Redundancy;
use crate::squeeze::Codec;
use crate::{Error, FileId, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, ShardId};

const MAGIC: &[u8; 4] = b"DKMF";
const SIGNING_DOMAIN: &str = "manifest";
/// Bytes of the fixed part before the chunk table.
const HEADER_LEN: usize = 4 + 1 + 32 + 16 + 1 + 1 + 4 + 4;
/// The version written: padded chunks.
const VERSION_PADDED: u8 = 2;
/// The version of files stored before padding, still read.
const VERSION_UNPADDED: u8 = 1;

/// One chunk: its sealed length and the ids of its k + m shards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkEntry {
    /// Bytes after squeeze, padding and seal (what the shards encode).
    pub sealed_len: u32,
    /// Data shards first, then parity.
    pub shards: Vec<ShardId>,
    /// Version 1 only: the plaintext length and codec, stated in the clear. `None` in version 2,
    /// where they are inside the sealed body.
    pub clear: Option<ClearLayout>,
}

/// What a version-1 manifest states in the clear about a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClearLayout {
    pub plain_len: u32,
    pub codec: Codec,
}

impl ChunkEntry {
    /// How the chunk's body is sealed.
    pub fn layout(&self) -> BodyLayout {
        match self.clear {
            Some(c) => BodyLayout::Unpadded(c.codec),
            None => BodyLayout::Padded,
        }
    }
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
    /// 2 for padded chunks (what is written), 1 for files stored before.
    pub fn version(&self) -> u8 {
        self.chunks.first().map_or(VERSION_PADDED, |c| c.layout().version())
    }

    /// Whether a file of `size` bytes (or, on the server, of size class `size`) can have this
    /// manifest: version 1 states its chunks' lengths, which must add up to it; version 2 must
    /// have the size's chunk count, and its last chunk no more than the size class leaves it.
    pub fn admits_size(&self, size: u64) -> bool {
        if self.version() == VERSION_UNPADDED {
            return self
                .chunks
                .iter()
                .filter_map(|c| c.clear)
                .map(|c| u64::from(c.plain_len))
                .sum::<u64>()
                == size;
        }
        let count = self.chunks.len() as u64;
        let Some(last) = self.chunks.last() else {
            return false;
        };
        let room = padding::class_capacity(size, self.chunk_size, count - 1);
        padding::chunk_count(size, self.chunk_size) == count
            && u64::from(last.sealed_len) <= (BODY_HEADER_LEN + TAG_LEN) as u64 + room
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
        let version = self.version();
        for (i, c) in self.chunks.iter().enumerate() {
            let last = i + 1 == count;
            if c.shards.len() != self.redundancy.total() {
                return Err(Error::NonCanonical("chunk does not list k + m shards"));
            }
            if c.layout().version() != version {
                return Err(Error::NonCanonical("a manifest mixes chunk layouts"));
            }
            let Some(clear) = c.clear else {
                self.validate_padded(i as u64, last, c.sealed_len)?;
                continue;
            };
            if !last && clear.plain_len != self.chunk_size {
                return Err(Error::NonCanonical("only the last chunk may be short"));
            }
            if clear.plain_len > self.chunk_size || (last && count > 1 && clear.plain_len == 0) {
                return Err(Error::NonCanonical("last chunk length out of range"));
            }
            let sealed = u64::from(c.sealed_len);
            let plain = u64::from(clear.plain_len);
            let tag = TAG_LEN as u64;
            let ok = match clear.codec {
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

    /// A padded chunk's sealed length is one the encoder produces: a whole chunk; Padmé of a
    /// squeezed body; or, for the last chunk, a raw body ending its size class with the file's
    /// chunk count.
    fn validate_padded(&self, index: u64, last: bool, sealed_len: u32) -> Result<(), Error> {
        let body = u64::from(sealed_len).saturating_sub(TAG_LEN as u64);
        let (header, chunk) = (BODY_HEADER_LEN as u64, u64::from(self.chunk_size));
        if body < header || body > header + chunk {
            return Err(Error::NonCanonical("sealed length out of range"));
        }
        let squeezed = padding::padme(body) == body && body < header + chunk;
        let raw_end = index * chunk + (body - header);
        let ends_class = last
            && padding::is_size_class(raw_end, self.chunk_size)
            && padding::chunk_count(raw_end, self.chunk_size) == index + 1;
        if body == header + chunk || squeezed || ends_class {
            Ok(())
        } else {
            Err(Error::NonCanonical("sealed length is not a padded length"))
        }
    }

    fn encode_unsigned(&self, owner: &PublicKey) -> Vec<u8> {
        let version = self.version();
        let entry_len = if version == VERSION_UNPADDED { 9 } else { 4 } + 32 * self.redundancy.total();
        let mut out = Vec::with_capacity(HEADER_LEN + entry_len * self.chunks.len() + 64);
        out.put_versioned_header(MAGIC, version);
        out.extend_from_slice(owner.as_bytes());
        out.extend_from_slice(self.file_id.as_bytes());
        out.push(self.redundancy.data);
        out.push(self.redundancy.parity);
        out.put_u32(self.chunk_size);
        out.put_u32(u32::try_from(self.chunks.len()).expect("validated chunk count"));
        for c in &self.chunks {
            match c.clear {
                Some(clear) => {
                    out.put_u32(clear.plain_len);
                    out.put_u32(c.sealed_len);
                    out.push(clear.codec.to_byte());
                }
                None => out.put_u32(c.sealed_len),
            }
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
        let version = r.versioned_header(MAGIC, &[VERSION_UNPADDED, VERSION_PADDED])?;
        let owner = PublicKey(r.array()?);
        let file_id = FileId(r.array()?);
        let redundancy = Redundancy::new(r.u8()?, r.u8()?)?;
        let chunk_size = r.u32()?;
        let count = r.u32()? as usize;
        let total = redundancy.total();
        let entry_len = if version == VERSION_UNPADDED { 9 } else { 4 } + 32 * total;
        // Check the length before allocating: a forged count must not reserve memory.
        r.expect_remaining(count.checked_mul(entry_len).and_then(|n| n.checked_add(64)))?;
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            let (sealed_len, clear) = if version == VERSION_UNPADDED {
                let plain_len = r.u32()?;
                let sealed_len = r.u32()?;
                let codec = Codec::from_byte(r.u8()?)?;
                (sealed_len, Some(ClearLayout { plain_len, codec }))
            } else {
                (r.u32()?, None)
            };
            let shards = (0..total).map(|_| r.array().map(ShardId)).collect::<Result<_, _>>()?;
            chunks.push(ChunkEntry {
                sealed_len,
                shards,
                clear,
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
