//! Chunking: the streaming encoder and decoder that run the whole data path.
//!
//! [`Encoder`] takes a file's bytes in slices of any size and emits [`EncodedChunk`]s (squeezed,
//! sealed, sharded) as soon as each is complete, holding at most one chunk of plaintext. Because
//! the last chunk is sealed differently (STREAM's last flag), a full chunk is held back until more
//! bytes arrive or [`Encoder::finish`] says the file ended. An empty file is one empty chunk.
//!
//! [`Decoder`] walks a verified manifest chunk by chunk: it checks every offered shard against its
//! id, rebuilds from any k, opens, unsqueezes and returns the plaintext, refusing chunks out of
//! order and a stream that ends early.

use crate::manifest::{ChunkEntry, Manifest};
use crate::seal::{ChunkKey, Sealer, TAG_LEN};
use crate::shard::{Redundancy, Sharder, Shards};
use crate::squeeze::{Codec, Squeezer, unsqueeze_zstd};
use crate::{Error, FileId, FileKey, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE};

/// One chunk, ready to send: its manifest entry and its k + m shards.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    pub index: u64,
    pub entry: ChunkEntry,
    pub shards: Shards,
}

/// Streaming encoder for one file.
#[derive(Debug)]
pub struct Encoder {
    file_id: FileId,
    chunk_size: usize,
    sealer: Sealer,
    sharder: Sharder,
    squeezer: Squeezer,
    pending: Vec<u8>,
    next_index: u64,
    entries: Vec<ChunkEntry>,
}

impl Encoder {
    /// An encoder with the default 4 MiB chunks.
    pub fn new(file_key: &FileKey, file_id: FileId, redundancy: Redundancy) -> Self {
        Self::with_chunk_size(file_key, file_id, redundancy, crate::DEFAULT_CHUNK_SIZE)
            .expect("the default chunk size is in range")
    }

    pub fn with_chunk_size(
        file_key: &FileKey,
        file_id: FileId,
        redundancy: Redundancy,
        chunk_size: u32,
    ) -> Result<Self, Error> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(Error::InvalidParams("chunk size out of range"));
        }
        let redundancy = Redundancy::new(redundancy.data, redundancy.parity)?;
        let chunk_size = chunk_size as usize;
        Ok(Self {
            file_id,
            chunk_size,
            sealer: Sealer::new(&ChunkKey::derive(file_key, &file_id), file_id),
            sharder: Sharder::new(redundancy),
            squeezer: Squeezer::new(),
            pending: Vec::with_capacity(chunk_size),
            next_index: 0,
            entries: Vec::new(),
        })
    }

    /// Feed the next bytes of the file; returns every chunk completed by them (often none).
    /// Memory stays at about one chunk as long as callers feed slices of about a chunk or less
    /// and send what comes back before feeding more; one huge slice returns all its chunks at once.
    pub fn push(&mut self, mut data: &[u8]) -> Result<Vec<EncodedChunk>, Error> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.pending.len() == self.chunk_size {
                // More bytes follow, so the held chunk is not the last.
                let chunk = std::mem::take(&mut self.pending);
                out.push(self.encode_chunk(&chunk, false)?);
                self.pending = chunk;
                self.pending.clear();
            }
            let take = (self.chunk_size - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(out)
    }

    /// The file ended: seal the held bytes as the last chunk and return the unsigned manifest.
    pub fn finish(mut self) -> Result<(EncodedChunk, Manifest), Error> {
        let chunk = std::mem::take(&mut self.pending);
        let last = self.encode_chunk(&chunk, true)?;
        let manifest = Manifest {
            file_id: self.file_id,
            redundancy: self.sharder.redundancy(),
            chunk_size: u32::try_from(self.chunk_size).expect("checked against MAX_CHUNK_SIZE"),
            chunks: self.entries,
        };
        Ok((last, manifest))
    }

    fn encode_chunk(&mut self, plain: &[u8], last: bool) -> Result<EncodedChunk, Error> {
        let index = self.next_index;
        let (codec, squeezed) = self.squeezer.squeeze(plain);
        let body = squeezed.as_deref().unwrap_or(plain);
        let sealed_len = body.len() + TAG_LEN;
        let redundancy = self.sharder.redundancy();
        let shard_len = redundancy.shard_len(sealed_len);
        // Seal straight into the shard buffer: one copy of the plaintext, no more.
        let mut buf = Vec::with_capacity(shard_len * redundancy.total());
        buf.extend_from_slice(body);
        let tag = self.sealer.seal_in_place(index, last, codec, &mut buf);
        buf.extend_from_slice(&tag);
        let shards = self.sharder.encode_buffer(buf, shard_len);
        let entry = ChunkEntry {
            plain_len: u32::try_from(plain.len()).expect("chunks are at most MAX_CHUNK_SIZE"),
            sealed_len: u32::try_from(sealed_len).expect("sealed chunks are at most MAX_CHUNK_SIZE + 16"),
            codec,
            shards: shards.ids().to_vec(),
        };
        self.entries.push(entry.clone());
        self.next_index += 1;
        Ok(EncodedChunk { index, entry, shards })
    }
}

/// Streaming decoder for one file, driven by its (verified) manifest.
#[derive(Debug)]
pub struct Decoder {
    manifest: Manifest,
    sealer: Sealer,
    sharder: Sharder,
    next_index: u64,
}

impl Decoder {
    /// `manifest` must come from a [`crate::SignedManifest`] the caller has accepted.
    pub fn new(file_key: &FileKey, manifest: &Manifest) -> Result<Self, Error> {
        manifest.validate()?;
        Ok(Self {
            sealer: Sealer::new(&ChunkKey::derive(file_key, &manifest.file_id), manifest.file_id),
            sharder: Sharder::new(manifest.redundancy),
            manifest: manifest.clone(),
            next_index: 0,
        })
    }

    /// The chunk [`Decoder::decode_chunk`] expects next, or `None` when the file is complete.
    pub fn next_chunk(&self) -> Option<(u64, &ChunkEntry)> {
        let i = usize::try_from(self.next_index).ok()?;
        self.manifest.chunks.get(i).map(|e| (self.next_index, e))
    }

    /// Decode chunk `index` (which must be the next one) from the shards at hand: slot `i` holds
    /// shard `i` if it was fetched. Shards whose bytes do not match their id are discarded;
    /// any k good ones suffice.
    pub fn decode_chunk(&mut self, index: u64, mut shards: Vec<Option<Vec<u8>>>) -> Result<Vec<u8>, Error> {
        let Some((expected, entry)) = self.next_chunk() else {
            return Err(Error::StreamExtended);
        };
        if index != expected {
            return Err(Error::ChunkOutOfOrder { index, expected });
        }
        if shards.len() != entry.shards.len() {
            return Err(Error::InvalidParams("wrong number of shard slots for the redundancy"));
        }
        let k = usize::from(self.manifest.redundancy.data);
        // Verify only as many as needed, data shards first: with all data shards good, parity
        // shards are neither hashed nor used.
        let mut good = 0;
        for (slot, id) in shards.iter_mut().zip(&entry.shards) {
            if good == k {
                *slot = None;
            } else if let Some(bytes) = slot {
                if id.matches(bytes) {
                    good += 1;
                } else {
                    *slot = None;
                }
            }
        }
        let last = index + 1 == self.manifest.chunks.len() as u64;
        let (plain_len, sealed_len, codec) = (entry.plain_len as usize, entry.sealed_len as usize, entry.codec);
        let mut sealed = self.sharder.rebuild(index, &mut shards, sealed_len)?;
        let body_len = self.sealer.open_in_place(index, last, codec, &mut sealed)?.len();
        sealed.truncate(body_len);
        let plain = match codec {
            Codec::Raw => sealed,
            Codec::Zstd => unsqueeze_zstd(&sealed, plain_len, index)?,
        };
        if plain.len() != plain_len {
            return Err(Error::CorruptChunk(index));
        }
        self.next_index += 1;
        Ok(plain)
    }

    /// Succeeds only once every chunk of the manifest has been decoded.
    pub fn finish(self) -> Result<(), Error> {
        if self.next_chunk().is_some() {
            Err(Error::StreamTruncated)
        } else {
            Ok(())
        }
    }
}

/// Convenience for whole buffers (tests, small files): encode `data` in one call.
pub fn encode_all(
    file_key: &FileKey,
    file_id: FileId,
    redundancy: Redundancy,
    chunk_size: u32,
    data: &[u8],
) -> Result<(Vec<EncodedChunk>, Manifest), Error> {
    let mut encoder = Encoder::with_chunk_size(file_key, file_id, redundancy, chunk_size)?;
    let mut chunks = encoder.push(data)?;
    let (last, manifest) = encoder.finish()?;
    chunks.push(last);
    Ok((chunks, manifest))
}

/// Convenience for whole buffers: decode every chunk with all its shards offered.
pub fn decode_all(file_key: &FileKey, manifest: &Manifest, chunks: &[EncodedChunk]) -> Result<Vec<u8>, Error> {
    let mut decoder = Decoder::new(file_key, manifest)?;
    let mut out = Vec::new();
    for c in chunks {
        let shards = c.shards.iter().map(|(_, b)| Some(b.to_vec())).collect();
        out.extend(decoder.decode_chunk(c.index, shards)?);
    }
    decoder.finish()?;
    Ok(out)
}
