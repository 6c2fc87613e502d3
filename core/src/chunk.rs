//! Chunking: the streaming encoder and decoder that run the whole data path.
//!
//! [`Encoder`] takes a file's bytes in slices of any size and emits [`EncodedChunk`]s (squeezed,
//! padded, sealed, sharded) as soon as each is complete, holding at most one chunk of plaintext.
//! Because the last chunk is sealed differently (STREAM's last flag) and padded to the file's
//! size class, a full chunk is held back until more bytes arrive or [`Encoder::finish`] says the
//! file ended. An empty file is one empty chunk.
//!
//! [`Decoder`] walks a verified manifest chunk by chunk: it checks every offered shard against its
//! id, rebuilds from any k, opens, reads the body's header, unsqueezes and returns the plaintext,
//! refusing chunks out of order, lengths the file's size does not give, and a stream that ends
//! early. It reads version-1 (unpadded) manifests too.

use std::ops::Range;

use crate::manifest::{ChunkEntry, ClearLayout, Manifest};
use crate::padding::{self, BODY_HEADER_LEN, BodyHeader};
use crate::seal::{AAD_LEN, BodyLayout, ChunkKey, NONCE_LEN, Sealer, TAG_LEN, associated_data, nonce};
use crate::shard::{Redundancy, Sharder, Shards};
use crate::squeeze::{Codec, Squeezer, unsqueeze_zstd};
use crate::{Error, FileId, FileKey, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, VerifiedShard};

/// One chunk, ready to send: its manifest entry and its k + m shards.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    pub index: u64,
    pub entry: ChunkEntry,
    pub shards: Shards,
    /// Plaintext bytes in the chunk (for the encoding client's progress; not in the manifest).
    pub plain_len: u32,
    /// How the chunk was stored (for the encoding client's statistics; sealed inside the body).
    pub codec: Codec,
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
    /// The next chunk to complete.
    next_index: u64,
    /// The next chunk to stage: [`Encoder::stage`] may run ahead of [`Encoder::complete`] (to seal
    /// one chunk while the one before is sharded), and never hands out an index twice, so no two
    /// plaintexts are ever sealed under one chunk nonce, even after a refused chunk.
    next_staged: u64,
    entries: Vec<ChunkEntry>,
    /// The last chunk has been completed: nothing may follow.
    finished: bool,
    /// Shard buffers handed back by the caller ([`Encoder::recycle`]), reused by the next chunks.
    spare: Vec<Vec<u8>>,
}

/// Spare shard buffers kept at most.
const MAX_SPARE: usize = 2;

/// A chunk body's header, length and the buffer capacity its sealing and sharding take
/// ([`Encoder::lay_out`]).
struct BodyLayoutPlan {
    header: BodyHeader,
    body_len: usize,
    needed: usize,
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
            next_staged: 0,
            entries: Vec::new(),
            finished: false,
            spare: Vec::new(),
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

    /// Hand back a chunk's shard buffer ([`crate::shard::Shards::into_buffer`]) once its shards
    /// are sent: the next chunks are built in it instead of a fresh allocation. A streaming
    /// upload that recycles allocates its few chunk buffers once, so its memory stays put instead
    /// of growing with the allocator's leftovers.
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Encode the next chunk when the caller does the chunking (it reads whole chunks and knows
    /// which is the last): no copy into the encoder's own buffer. Every chunk but the last must be
    /// exactly the chunk size; end with [`Self::into_manifest`]. Not to be mixed with
    /// [`Self::push`].
    pub fn encode(&mut self, plain: &[u8], last: bool) -> Result<EncodedChunk, Error> {
        if !self.pending.is_empty() {
            return Err(Error::InvalidParams("encode after push: bytes are still held"));
        }
        self.encode_chunk(plain, last)
    }

    fn encode_chunk(&mut self, plain: &[u8], last: bool) -> Result<EncodedChunk, Error> {
        let staged = self.stage(plain, last);
        self.seal_and_complete(staged)
    }

    fn seal_and_complete(&mut self, mut staged: StagedChunk) -> Result<EncodedChunk, Error> {
        let last = staged.last;
        // Sealed in place in the staged buffer, which already has room for the tag and parity.
        let mut sealed = std::mem::take(&mut staged.body);
        let tag = self
            .sealer
            .seal_in_place(staged.index, last, BodyLayout::Padded, &mut sealed);
        sealed.extend_from_slice(&tag);
        self.complete(staged, sealed)
    }

    /// First half of encoding the next chunk, for callers that seal elsewhere (the browser seals
    /// through WebCrypto, which is asynchronous and hardware-accelerated): squeeze `plain` and say
    /// what to seal it with. Seal `body` under [`ChunkKey::derive`] with [`StagedChunk::nonce`] and
    /// [`StagedChunk::associated_data`], then hand the ciphertext-and-tag to [`Self::complete`].
    /// The caller does the chunking: every chunk but the last is exactly the chunk size. Chunks
    /// may be staged ahead of those not yet completed (to seal one while the one before is
    /// sharded); complete them in the order staged. A chunk refused by `complete` leaves the
    /// encoder unusable (every later chunk is out of turn): start the file again.
    pub fn stage(&mut self, plain: &[u8], last: bool) -> StagedChunk {
        let squeezed = self.squeezer.squeeze(plain);
        self.stage_squeezed(plain, last, squeezed)
    }

    /// A squeezer for chunks after the first, making this encoder's choices on another thread
    /// (see [`Squeezer::sibling`]); hand what it returns to [`Self::encode_squeezed`] with the
    /// same plaintext. `None` before the first chunk is encoded.
    pub fn sibling_squeezer(&self) -> Option<Squeezer> {
        self.squeezer.sibling()
    }

    /// [`Self::encode`] for a chunk already squeezed by a [`Self::sibling_squeezer`]: callers
    /// squeeze several chunks at once (the slowest step on compressible data) and encode them in
    /// order here. The bytes are exactly those [`Self::encode`] gives.
    pub fn encode_squeezed(
        &mut self,
        plain: &[u8],
        last: bool,
        squeezed: (Codec, Option<Vec<u8>>),
    ) -> Result<EncodedChunk, Error> {
        if !self.pending.is_empty() {
            return Err(Error::InvalidParams("encode after push: bytes are still held"));
        }
        if self.next_index == 0 {
            return Err(Error::InvalidParams(
                "the first chunk is squeezed by the encoder itself",
            ));
        }
        if (squeezed.0 == Codec::Zstd) != squeezed.1.is_some() {
            return Err(Error::InvalidParams(
                "a squeezed chunk's codec does not match its bytes",
            ));
        }
        let staged = self.stage_squeezed(plain, last, squeezed);
        self.seal_and_complete(staged)
    }

    fn stage_squeezed(&mut self, plain: &[u8], last: bool, squeezed: (Codec, Option<Vec<u8>>)) -> StagedChunk {
        let layout = self.lay_out(plain.len(), last, &squeezed);
        let mut body = self.body_buffer(layout.needed);
        body.extend_from_slice(&layout.header.encode());
        body.extend_from_slice(match (layout.header.codec, squeezed.1.as_deref()) {
            (Codec::Zstd, Some(z)) => z,
            _ => plain,
        });
        body.resize(layout.body_len, 0);
        self.staged(&layout, last, body)
    }

    /// A buffer to read the next chunk's plaintext into, at [`BODY_HEADER_LEN`] (the chunk size
    /// after it), for [`Self::encode_read`]: a recycled shard buffer when one is at hand, with
    /// room for the whole chunk's shards.
    pub fn read_buffer(&mut self) -> Vec<u8> {
        let most = BODY_HEADER_LEN + self.chunk_size;
        let mut buf = self.body_buffer(self.room_for(most));
        buf.resize(most, 0);
        buf
    }

    /// [`Self::encode`] of the `plain_len` bytes read into `buf` at [`BODY_HEADER_LEN`]
    /// ([`Self::read_buffer`]): the chunk is sealed and sharded in that same buffer, so a caller
    /// that reads chunks holds no second chunk-sized buffer. The bytes are exactly those
    /// [`Self::encode`] gives.
    pub fn encode_read(&mut self, buf: Vec<u8>, plain_len: usize, last: bool) -> Result<EncodedChunk, Error> {
        if !self.pending.is_empty() {
            return Err(Error::InvalidParams("encode after push: bytes are still held"));
        }
        let staged = self.stage_read(buf, plain_len, last)?;
        self.seal_and_complete(staged)
    }

    /// [`Self::stage`] of the `plain_len` bytes read into `buf` at [`BODY_HEADER_LEN`]
    /// ([`Self::read_buffer`]): the body is laid out in that same buffer, without the copy
    /// `stage` makes. Seal and complete it as after `stage`.
    pub fn stage_read(&mut self, mut buf: Vec<u8>, plain_len: usize, last: bool) -> Result<StagedChunk, Error> {
        let Some(plain) = buf.get(BODY_HEADER_LEN..BODY_HEADER_LEN + plain_len) else {
            return Err(Error::InvalidParams("the read buffer is shorter than the chunk read"));
        };
        let squeezed = self.squeezer.squeeze(plain);
        let layout = self.lay_out(plain_len, last, &squeezed);
        // The plaintext is in place; a squeezed payload replaces it (it is the shorter).
        let payload_len = match (layout.header.codec, squeezed.1.as_deref()) {
            (Codec::Zstd, Some(z)) => {
                if buf.len() < BODY_HEADER_LEN + z.len() {
                    buf.resize(BODY_HEADER_LEN + z.len(), 0);
                }
                buf[BODY_HEADER_LEN..BODY_HEADER_LEN + z.len()].copy_from_slice(z);
                z.len()
            }
            _ => plain_len,
        };
        buf.truncate(BODY_HEADER_LEN + payload_len);
        buf[..BODY_HEADER_LEN].copy_from_slice(&layout.header.encode());
        buf.resize(layout.body_len, 0);
        buf.reserve_exact(layout.needed.saturating_sub(buf.len()));
        Ok(self.staged(&layout, last, buf))
    }

    /// How the next chunk's body is laid out, from the plaintext's length and what squeezing it
    /// gave.
    fn lay_out(&self, plain_len: usize, last: bool, (codec, squeezed): &(Codec, Option<Vec<u8>>)) -> BodyLayoutPlan {
        let index = self.next_staged;
        let chunk_size = u32::try_from(self.chunk_size).expect("checked against MAX_CHUNK_SIZE");
        // A raw chunk fills what its place in the file's size class leaves it: a whole chunk, or
        // for the last the rest of the class.
        let capacity = if last {
            let size = index
                .saturating_mul(u64::from(chunk_size))
                .saturating_add(plain_len as u64);
            padding::class_capacity(size, chunk_size, index)
        } else {
            u64::from(chunk_size)
        };
        let raw_len = padding::body_len(Codec::Raw, plain_len, capacity);
        // Squeezed only if that still pays once both are padded.
        let (codec, payload_len) = match squeezed.as_deref() {
            Some(z) if *codec == Codec::Zstd && padding::body_len(Codec::Zstd, z.len(), capacity) < raw_len => {
                (Codec::Zstd, z.len())
            }
            _ => (Codec::Raw, plain_len),
        };
        let body_len = padding::body_len(codec, payload_len, capacity).max(BODY_HEADER_LEN + payload_len);
        BodyLayoutPlan {
            header: BodyHeader {
                codec,
                plain_len: u32::try_from(plain_len).unwrap_or(u32::MAX),
                payload_len: u32::try_from(payload_len).unwrap_or(u32::MAX),
            },
            body_len,
            needed: self.room_for(body_len),
        }
    }

    /// The bytes a body of `body_len` takes once sealed and sharded: room for the tag and the
    /// parity shards too, so sealing and sharding in its buffer never reallocate.
    fn room_for(&self, body_len: usize) -> usize {
        let redundancy = self.sharder.redundancy();
        redundancy.shard_len(body_len + TAG_LEN) * redundancy.total()
    }

    /// An empty buffer of at least `needed` bytes' capacity: a spare one if it fits.
    fn body_buffer(&mut self, needed: usize) -> Vec<u8> {
        match self.spare.iter().position(|b| b.capacity() >= needed) {
            Some(i) => {
                let mut buf = self.spare.swap_remove(i);
                buf.clear();
                buf
            }
            None => Vec::with_capacity(needed),
        }
    }

    /// The next chunk staged with `body` laid out by `layout`.
    fn staged(&mut self, layout: &BodyLayoutPlan, last: bool, body: Vec<u8>) -> StagedChunk {
        let index = self.next_staged;
        self.next_staged += 1;
        StagedChunk {
            index,
            last,
            codec: layout.header.codec,
            plain_len: layout.header.plain_len,
            aad: associated_data(&self.file_id, index, last, BodyLayout::Padded),
            body_len: body.len(),
            body,
        }
    }

    /// Second half: shard the sealed bytes of the oldest chunk [`Self::stage`] gave out and not
    /// yet completed, and record it in the manifest. Refuses a chunk out of turn, one longer than
    /// the chunk size, a short last-but-one chunk (only the last may be short) and sealed bytes of
    /// the wrong length.
    pub fn complete(&mut self, staged: StagedChunk, mut sealed: Vec<u8>) -> Result<EncodedChunk, Error> {
        if staged.index != self.next_index {
            return Err(Error::ChunkOutOfOrder {
                index: staged.index,
                expected: self.next_index,
            });
        }
        let plain_len = staged.plain_len as usize;
        if plain_len > self.chunk_size || (!staged.last && plain_len != self.chunk_size) {
            return Err(Error::InvalidParams(
                "only the last chunk may be shorter than the chunk size",
            ));
        }
        if self.finished {
            return Err(Error::StreamExtended);
        }
        let sealed_len = sealed.len();
        if sealed_len != staged.body_len + TAG_LEN {
            return Err(Error::InvalidParams("sealed bytes are not the staged body plus a tag"));
        }
        let redundancy = self.sharder.redundancy();
        let shard_len = redundancy.shard_len(sealed_len);
        sealed.reserve_exact((shard_len * redundancy.total()).saturating_sub(sealed_len));
        let shards = self.sharder.encode_buffer(sealed, shard_len);
        let entry = ChunkEntry {
            sealed_len: u32::try_from(sealed_len).expect("sealed chunks are at most a chunk plus header and tag"),
            shards: shards.ids().to_vec(),
            clear: None,
        };
        self.entries.push(entry.clone());
        self.next_index += 1;
        self.finished = staged.last;
        Ok(EncodedChunk {
            index: staged.index,
            entry,
            shards,
            plain_len: staged.plain_len,
            codec: staged.codec,
        })
    }

    /// The manifest of the chunks completed so far, once the last one is (for [`Self::stage`]
    /// callers; [`Self::finish`] does this itself).
    pub fn into_manifest(self) -> Result<Manifest, Error> {
        if !self.finished {
            return Err(Error::StreamTruncated);
        }
        Ok(Manifest {
            file_id: self.file_id,
            redundancy: self.sharder.redundancy(),
            chunk_size: u32::try_from(self.chunk_size).expect("checked against MAX_CHUNK_SIZE"),
            chunks: self.entries,
        })
    }
}

/// A squeezed chunk waiting to be sealed outside this crate (see [`Encoder::stage`]).
#[derive(Debug)]
pub struct StagedChunk {
    pub index: u64,
    pub last: bool,
    /// How the body holds the chunk (inside the body's header, so only the sealing client knows).
    pub codec: Codec,
    pub plain_len: u32,
    /// The associated data AES-GCM must authenticate: binds the chunk to its file, position and
    /// layout.
    pub aad: [u8; AAD_LEN],
    /// The bytes to seal: the body's header, the squeezed chunk (or the plain chunk when squeezing
    /// did not pay) and zeros to the padded length.
    pub body: Vec<u8>,
    /// `body`'s length when staged (the body may be moved out to seal it in place).
    body_len: usize,
}

/// A chunk rebuilt from its shards, waiting to be opened outside this crate (see
/// [`Decoder::rebuild`]).
#[derive(Debug)]
pub struct RebuiltChunk {
    pub index: u64,
    pub last: bool,
    pub aad: [u8; AAD_LEN],
    /// Ciphertext followed by the 16-byte tag.
    pub sealed: Vec<u8>,
    layout: BodyLayout,
}

/// A chunk's plaintext where it was opened: a range of the opened body's buffer. The body's
/// header before it and the padding after it stay where they are: moving the plaintext to the
/// front would copy the whole chunk. Reads as the plaintext's bytes (`Deref`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plaintext {
    buf: Vec<u8>,
    range: Range<usize>,
}

impl std::ops::Deref for Plaintext {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[self.range.clone()]
    }
}

impl Plaintext {
    /// The whole buffer, to hand back to [`Decoder::recycle`] once the bytes are written.
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The plaintext as a vector of its own (moved to the front: a copy, for callers that keep
    /// the bytes rather than write them out).
    pub fn into_vec(mut self) -> Vec<u8> {
        self.buf.truncate(self.range.end);
        self.buf.drain(..self.range.start);
        self.buf
    }
}

/// Where an opened body keeps the chunk ([`Decoder::read_body`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedBody {
    pub codec: Codec,
    pub plain_len: usize,
    /// The payload's bytes within the opened body: the plaintext when raw, the zstd frame when
    /// squeezed.
    pub payload: Range<usize>,
}

impl RebuiltChunk {
    /// The AES-GCM nonce: chunk counter and last flag (STREAM).
    pub fn nonce(&self) -> [u8; NONCE_LEN] {
        nonce(self.index, self.last)
    }
}

impl StagedChunk {
    /// The AES-GCM nonce: chunk counter and last flag (STREAM).
    pub fn nonce(&self) -> [u8; NONCE_LEN] {
        nonce(self.index, self.last)
    }
}

#[derive(Debug)]
pub struct Decoder {
    manifest: Manifest,
    /// The file's size (from its sealed metadata): gives every chunk's plaintext length.
    size: u64,
    sealer: Sealer,
    sharder: Sharder,
    /// The next chunk to complete.
    next_index: u64,
    /// The next chunk to rebuild: ahead of `next_index` by the chunks being opened outside this
    /// crate ([`Decoder::rebuild`] then [`Decoder::complete`]), so a caller can rebuild one chunk
    /// while the one before it is being opened.
    next_rebuild: u64,
    /// Plaintext buffers handed back by the caller ([`Decoder::recycle`]), reused by the next chunks.
    spare: Vec<Vec<u8>>,
}

impl Decoder {
    /// `manifest` must come from a [`crate::SignedManifest`] the caller has accepted, and `size`
    /// is the file's size from its sealed metadata.
    pub fn new(file_key: &FileKey, manifest: &Manifest, size: u64) -> Result<Self, Error> {
        manifest.validate()?;
        if !manifest.admits_size(size) {
            return Err(Error::SizeMismatch);
        }
        Ok(Self {
            size,
            sealer: Sealer::new(&ChunkKey::derive(file_key, &manifest.file_id), manifest.file_id),
            sharder: Sharder::new(manifest.redundancy),
            manifest: manifest.clone(),
            next_index: 0,
            next_rebuild: 0,
            spare: Vec::new(),
        })
    }

    /// Hand back a chunk's plaintext once it is written: the next chunks are rebuilt in it
    /// instead of a fresh allocation, so a streaming download's memory stays put (as with
    /// [`Encoder::recycle`]).
    pub fn recycle(&mut self, mut buf: Vec<u8>) {
        if self.spare.len() < MAX_SPARE {
            buf.clear();
            self.spare.push(buf);
        }
    }

    /// Begin at chunk `index` instead of the first (forward only): for a reader of a byte range.
    /// Every chunk is sealed with its index and whether it is the last, so a chunk decoded here is
    /// the one asked for; only [`Decoder::finish`]'s "nothing is missing" no longer holds.
    pub fn skip_to(&mut self, index: u64) {
        if index > self.next_index && self.next_index == self.next_rebuild {
            self.next_index = index;
            self.next_rebuild = index;
        }
    }

    /// The next chunk to complete (the one [`Decoder::decode_chunk`] expects next unless a
    /// caller rebuilt ahead), or `None` when the file is complete.
    pub fn next_chunk(&self) -> Option<(u64, &ChunkEntry)> {
        let i = usize::try_from(self.next_index).ok()?;
        self.manifest.chunks.get(i).map(|e| (self.next_index, e))
    }

    /// Decode chunk `index` (which must be the next one) from the shards at hand: slot `i` holds
    /// shard `i` if it was fetched. Shards whose bytes do not match their id are discarded;
    /// any k good ones suffice.
    pub fn decode_chunk(&mut self, index: u64, shards: Vec<Option<Vec<u8>>>) -> Result<Plaintext, Error> {
        let verified = self.verify_offered(index, shards)?;
        self.decode_verified(index, verified)
    }

    /// [`Self::decode_chunk`] from shards verified as they arrived: not hashed again.
    pub fn decode_verified(&mut self, index: u64, shards: Vec<Option<VerifiedShard>>) -> Result<Plaintext, Error> {
        let mut rebuilt = self.rebuild_verified(index, shards)?;
        let mut sealed = std::mem::take(&mut rebuilt.sealed);
        let body_len = self
            .sealer
            .open_in_place(index, rebuilt.last, rebuilt.layout, &mut sealed)?
            .len();
        sealed.truncate(body_len);
        self.complete(rebuilt, sealed)
    }

    /// First half of decoding the next chunk, for callers that open elsewhere (the browser, through
    /// WebCrypto): check the offered shards against their ids and rebuild the sealed chunk from any
    /// k. Open [`RebuiltChunk::sealed`] under [`ChunkKey::derive`] with [`RebuiltChunk::nonce`]
    /// and [`RebuiltChunk::aad`], then hand the opened body to [`Self::complete`]. The next chunk
    /// may be rebuilt before this one is completed; chunks are completed in order.
    pub fn rebuild(&mut self, index: u64, shards: Vec<Option<Vec<u8>>>) -> Result<RebuiltChunk, Error> {
        let verified = self.verify_offered(index, shards)?;
        self.rebuild_verified(index, verified)
    }

    /// [`Self::rebuild`] from shards verified as they arrived. A shard verified under another id
    /// than its slot's (misplaced) counts as missing.
    pub fn rebuild_verified(&mut self, index: u64, shards: Vec<Option<VerifiedShard>>) -> Result<RebuiltChunk, Error> {
        let entry = self.expect_next(index, shards.len())?;
        let k = usize::from(self.manifest.redundancy.data);
        let mut good = 0;
        let mut slots: Vec<Option<Vec<u8>>> = shards
            .into_iter()
            .zip(&entry.shards)
            .map(|(slot, id)| {
                let bytes = slot.filter(|s| good < k && s.id() == *id)?.into_bytes();
                good += 1;
                Some(bytes)
            })
            .collect();
        let last = index + 1 == self.manifest.chunks.len() as u64;
        let (sealed_len, layout) = (entry.sealed_len as usize, entry.layout());
        let spare = self.spare.pop().unwrap_or_default();
        let sealed = self.sharder.rebuild_into(index, &mut slots, sealed_len, spare)?;
        self.next_rebuild += 1;
        Ok(RebuiltChunk {
            index,
            last,
            aad: associated_data(&self.manifest.file_id, index, last, layout),
            sealed,
            layout,
        })
    }

    /// Check raw offered shards against their ids, hashing only until k are good.
    fn verify_offered(&self, index: u64, shards: Vec<Option<Vec<u8>>>) -> Result<Vec<Option<VerifiedShard>>, Error> {
        let entry = self.expect_next(index, shards.len())?;
        let k = usize::from(self.manifest.redundancy.data);
        let mut good = 0;
        Ok(shards
            .into_iter()
            .zip(&entry.shards)
            .map(|(slot, id)| {
                let verified = slot.filter(|_| good < k).and_then(|bytes| id.verify(bytes))?;
                good += 1;
                Some(verified)
            })
            .collect())
    }

    /// The entry of chunk `index` if it is the one to rebuild next and `slots` fits its shards.
    fn expect_next(&self, index: u64, slots: usize) -> Result<&ChunkEntry, Error> {
        let expected = self.next_rebuild;
        let Some(entry) = usize::try_from(expected).ok().and_then(|i| self.manifest.chunks.get(i)) else {
            return Err(Error::StreamExtended);
        };
        if index != expected {
            return Err(Error::ChunkOutOfOrder { index, expected });
        }
        if slots != entry.shards.len() {
            return Err(Error::InvalidParams("wrong number of shard slots for the redundancy"));
        }
        Ok(entry)
    }

    /// Plaintext bytes of chunk `index`, from the file's size: the chunk size for all but the
    /// last.
    fn plain_len_of(&self, index: u64) -> u64 {
        padding::raw_capacity(self.size, self.manifest.chunk_size, index)
    }

    /// Where the opened body of `rebuilt` keeps its chunk, from the body's first
    /// [`BODY_HEADER_LEN`] bytes (`head`; ignored for version 1, whose manifest states it) and its
    /// length. Checks that the chunk has the plaintext length the file's size gives it, and that
    /// the body is padded exactly as the encoder pads it; [`Self::complete`] also checks that the
    /// padding is zeros.
    pub fn read_body(&self, rebuilt: &RebuiltChunk, head: &[u8], opened_len: usize) -> Result<OpenedBody, Error> {
        let index = rebuilt.index;
        let corrupt = || Error::CorruptChunk(index);
        let expected = self.plain_len_of(index);
        if let BodyLayout::Unpadded(codec) = rebuilt.layout {
            let entry = usize::try_from(index).ok().and_then(|i| self.manifest.chunks.get(i));
            let clear: ClearLayout = entry.and_then(|e| e.clear).ok_or_else(corrupt)?;
            let raw_fits = codec == Codec::Zstd || opened_len == clear.plain_len as usize;
            if u64::from(clear.plain_len) != expected || !raw_fits {
                return Err(corrupt());
            }
            return Ok(OpenedBody {
                codec,
                plain_len: clear.plain_len as usize,
                payload: 0..opened_len,
            });
        }
        let header = BodyHeader::decode(head, opened_len, index)?;
        let capacity = padding::class_capacity(self.size, self.manifest.chunk_size, index);
        let padded_len = padding::body_len(header.codec, header.payload_len as usize, capacity);
        if u64::from(header.plain_len) != expected || padded_len != opened_len {
            return Err(corrupt());
        }
        Ok(OpenedBody {
            codec: header.codec,
            plain_len: header.plain_len as usize,
            payload: header.payload(),
        })
    }

    /// Second half: take the plaintext out of the opened body of the oldest chunk
    /// [`Self::rebuild`] gave out and not yet completed (unsqueezing it if it was squeezed).
    pub fn complete(&mut self, rebuilt: RebuiltChunk, opened: Vec<u8>) -> Result<Plaintext, Error> {
        self.expect_completion(&rebuilt)?;
        let body = self.read_body(&rebuilt, &opened, opened.len())?;
        // Exactly one encoding per chunk: what follows the payload is zeros.
        if rebuilt.layout == BodyLayout::Padded && opened[body.payload.end..].iter().any(|&b| b != 0) {
            return Err(Error::CorruptChunk(rebuilt.index));
        }
        let plain = match body.codec {
            Codec::Raw => Plaintext {
                buf: opened,
                range: body.payload,
            },
            Codec::Zstd => {
                let plain = unsqueeze_zstd(&opened[body.payload], body.plain_len, rebuilt.index)?;
                self.recycle(opened);
                Plaintext {
                    range: 0..plain.len(),
                    buf: plain,
                }
            }
        };
        if plain.len() != body.plain_len {
            return Err(Error::CorruptChunk(rebuilt.index));
        }
        self.next_index += 1;
        Ok(plain)
    }

    /// [`Self::complete`] for a chunk stored raw (not squeezed) whose opened body stays where it
    /// was opened, outside WebAssembly memory: the browser hands WebCrypto's output to the file
    /// as it is instead of copying it in and out again. `head` is the body's first
    /// [`BODY_HEADER_LEN`] bytes; returns the range of the body to write. Everything
    /// [`Self::read_body`] checks is checked; the padding's zeros are not (they stay outside, and
    /// only the file's own authenticated writer could have put anything else there). A squeezed
    /// chunk is refused: it must be unsqueezed here.
    pub fn complete_outside(
        &mut self,
        rebuilt: RebuiltChunk,
        head: &[u8],
        opened_len: usize,
    ) -> Result<Range<usize>, Error> {
        self.expect_completion(&rebuilt)?;
        let body = self.read_body(&rebuilt, head, opened_len)?;
        if body.codec != Codec::Raw {
            return Err(Error::InvalidParams("a squeezed chunk needs its bytes"));
        }
        self.next_index += 1;
        Ok(body.payload)
    }

    fn expect_completion(&self, rebuilt: &RebuiltChunk) -> Result<(), Error> {
        if rebuilt.index != self.next_index {
            return Err(Error::ChunkOutOfOrder {
                index: rebuilt.index,
                expected: self.next_index,
            });
        }
        Ok(())
    }

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

/// Convenience for whole buffers: decode every chunk of a file of `size` bytes with all its
/// shards offered.
pub fn decode_all(
    file_key: &FileKey,
    manifest: &Manifest,
    size: u64,
    chunks: &[EncodedChunk],
) -> Result<Vec<u8>, Error> {
    let mut decoder = Decoder::new(file_key, manifest, size)?;
    let mut out = Vec::new();
    for c in chunks {
        let shards = c.shards.iter().map(|(_, b)| Some(b.to_vec())).collect();
        out.extend_from_slice(&decoder.decode_chunk(c.index, shards)?);
    }
    decoder.finish()?;
    Ok(out)
}
