//! Padding: the lengths the server and workers see, rounded so that they say little about the
//! file.
//!
//! Every length that leaves a client is rounded with Padmé (Nikitin et al., "Reducing metadata
//! leakage from encrypted files and communication with PURBs", PETS 2019): a length L is rounded
//! up to a multiple of 2^(E − S), where E = ⌊log₂ L⌋ and S = ⌊log₂ E⌋ + 1. That costs at most
//! about 12% (less as L grows) and leaves O(log log L) bits of the length to an observer.
//!
//! * A file's **size class** ([`size_class`]) is what the server is told instead of its size:
//!   Padmé of the size, but never past the end of the file's last chunk, so the class has the
//!   file's chunk count. The begin request states it and the server keeps it as the file's size.
//! * Each chunk's **sealed body** ([`body_len`]) is padded: a raw chunk to the capacity its place
//!   in the size class gives it (a full chunk for all but the last), a squeezed one to Padmé of its
//!   squeezed length. The body's own header (inside the ciphertext) says which codec and how many
//!   bytes are real ([`BodyHeader`]).
//!
//! So two files of the same chunk size whose sizes have one class and whose chunks are stored raw
//! produce sealed chunks of identical lengths, shards of identical lengths and manifests of
//! identical shape. A squeezed chunk still tells its squeezed length within Padmé's rounding.

use crate::Error;
use crate::squeeze::Codec;

/// Bytes of [`BodyHeader`] at the start of every sealed chunk body.
pub const BODY_HEADER_LEN: usize = 1 + 4 + 4;

/// Sealed metadata's plaintext is padded to a multiple of this many bytes.
pub const METADATA_BLOCK: usize = 256;

/// Padmé: `len` rounded up so that only O(log log len) of its bits remain.
pub fn padme(len: u64) -> u64 {
    if len < 2 {
        return len;
    }
    let e = u64::from(len.ilog2());
    let s = u64::from(e.ilog2()) + 1;
    let mask = (1u64 << (e - s)) - 1;
    (len + mask) & !mask
}

/// Chunks a file of `size` bytes has: at least one (an empty file is one empty chunk).
pub fn chunk_count(size: u64, chunk_size: u32) -> u64 {
    size.div_ceil(u64::from(chunk_size)).max(1)
}

/// The size class of a file of `size` bytes: what the server is told in place of its size.
/// Padmé of the size, but at most the end of the file's last chunk.
pub fn size_class(size: u64, chunk_size: u32) -> u64 {
    padme(size).min(chunk_count(size, chunk_size) * u64::from(chunk_size))
}

/// Whether `size` is a size class (what the server accepts as a begun upload's size).
pub fn is_size_class(size: u64, chunk_size: u32) -> bool {
    size_class(size, chunk_size) == size
}

/// Plaintext bytes chunk `index` of a file in size class `class` holds when stored raw: the chunk
/// size for all but the last, the rest of the class for the last.
pub fn raw_capacity(class: u64, chunk_size: u32, index: u64) -> u64 {
    let before = index.saturating_mul(u64::from(chunk_size));
    class.saturating_sub(before).min(u64::from(chunk_size))
}

/// [`raw_capacity`] of chunk `index` in the size class of a file of `size` bytes: what its body
/// holds when stored raw.
pub fn class_capacity(size: u64, chunk_size: u32, index: u64) -> u64 {
    raw_capacity(size_class(size, chunk_size), chunk_size, index)
}

/// The padded body length of a chunk: `header + capacity` when raw; Padmé of `header + squeezed`
/// when squeezed. Callers store a chunk squeezed only when this is smaller than the raw body.
pub fn body_len(codec: Codec, payload_len: usize, raw_capacity: u64) -> usize {
    match codec {
        Codec::Raw => BODY_HEADER_LEN + usize::try_from(raw_capacity).expect("capacity is at most a chunk"),
        Codec::Zstd => usize::try_from(padme((BODY_HEADER_LEN + payload_len) as u64))
            .expect("a squeezed chunk is smaller than a chunk"),
    }
}

/// The header at the start of a sealed chunk body (inside the ciphertext):
/// `codec:u8 plain_len:u32 payload_len:u32`, then the payload, then zeros to the padded length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyHeader {
    pub codec: Codec,
    /// Plaintext bytes of the chunk.
    pub plain_len: u32,
    /// Bytes of payload after the header: the plaintext itself when raw, the zstd frame when
    /// squeezed.
    pub payload_len: u32,
}

impl BodyHeader {
    pub fn encode(&self) -> [u8; BODY_HEADER_LEN] {
        let mut out = [0u8; BODY_HEADER_LEN];
        out[0] = self.codec.to_byte();
        out[1..5].copy_from_slice(&self.plain_len.to_be_bytes());
        out[5..9].copy_from_slice(&self.payload_len.to_be_bytes());
        out
    }

    /// Read the header of an opened body of `body_len` bytes, checking that the payload fits and
    /// that a raw payload is its plaintext.
    pub fn decode(head: &[u8], body_len: usize, chunk: u64) -> Result<Self, Error> {
        let corrupt = || Error::CorruptChunk(chunk);
        let head: &[u8; BODY_HEADER_LEN] = head
            .get(..BODY_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(corrupt)?;
        let codec = Codec::from_byte(head[0]).map_err(|_| corrupt())?;
        let plain_len = u32::from_be_bytes(head[1..5].try_into().expect("four bytes"));
        let payload_len = u32::from_be_bytes(head[5..9].try_into().expect("four bytes"));
        let room = body_len.checked_sub(BODY_HEADER_LEN).ok_or_else(corrupt)?;
        let fits = payload_len as usize <= room;
        let consistent = match codec {
            Codec::Raw => payload_len == plain_len,
            Codec::Zstd => payload_len > 0,
        };
        if !fits || !consistent {
            return Err(corrupt());
        }
        Ok(Self {
            codec,
            plain_len,
            payload_len,
        })
    }

    /// Where the payload lies in the body.
    pub fn payload(&self) -> std::ops::Range<usize> {
        BODY_HEADER_LEN..BODY_HEADER_LEN + self.payload_len as usize
    }
}

/// Pad sealed metadata's plaintext with zeros to the next multiple of [`METADATA_BLOCK`].
pub fn pad_metadata(plain: &mut Vec<u8>) {
    let padded = plain.len().div_ceil(METADATA_BLOCK).max(1) * METADATA_BLOCK;
    plain.resize(padded, 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padme_matches_the_paper() {
        // Small lengths are kept; larger ones lose their low bits: 9 → 10 (E=3, S=2), 1000 → 1024
        // (multiple of 32), 1025 → 1088 (of 64), 4 MiB + 1 → 4 MiB + 128 KiB.
        for (len, padded) in [
            (0, 0),
            (1, 1),
            (2, 2),
            (7, 7),
            (9, 10),
            (1000, 1024),
            (1025, 1088),
            (4 << 20, 4 << 20),
            ((4 << 20) + 1, (4 << 20) + (128 << 10)),
        ] {
            assert_eq!(padme(len), padded, "padme({len})");
        }
        // Idempotent, monotone, and never more than 12% (plus one for tiny lengths) over.
        let mut prev = 0;
        for len in (0..200_000u64).chain((1u64 << 30)..(1u64 << 30) + 5000) {
            let p = padme(len);
            assert!(p >= len && p >= prev);
            assert_eq!(padme(p), p);
            assert!(p - len <= len / 8 + 1, "padme({len}) = {p}");
            prev = p;
        }
    }

    #[test]
    fn a_size_class_never_adds_a_chunk() {
        let c = 4 << 20;
        for size in [
            0u64,
            1,
            5000,
            (4 << 20) - 1,
            4 << 20,
            (4 << 20) + 1,
            (300 << 20) + 7,
            1 << 40,
        ] {
            let class = size_class(size, c);
            assert!(class >= size);
            assert_eq!(chunk_count(class, c), chunk_count(size, c), "size {size}");
            assert!(is_size_class(class, c));
        }
        // Above 128 MiB Padmé's step passes the chunk size: the last chunk is then padded whole.
        assert_eq!(size_class((300 << 20) + 7, c), 304 << 20);
        assert_eq!(raw_capacity(304 << 20, c, 75), 4 << 20);
        assert_eq!(raw_capacity(5000, c, 0), 5000);
        assert_eq!(raw_capacity((8 << 20) + 100, c, 2), 100);
    }

    #[test]
    fn body_headers_refuse_what_does_not_fit() {
        let h = BodyHeader {
            codec: Codec::Raw,
            plain_len: 10,
            payload_len: 10,
        };
        let mut body = h.encode().to_vec();
        body.extend_from_slice(&[7; 10]);
        body.extend_from_slice(&[0; 5]);
        assert_eq!(BodyHeader::decode(&body, body.len(), 0).unwrap(), h);
        assert_eq!(h.payload(), 9..19);
        // Tried: a payload past the end, a raw payload that is not its plaintext, an unknown codec,
        // a short header. Must hold: CorruptChunk every time.
        assert!(BodyHeader::decode(&body, 15, 0).is_err());
        let mut bad = body.clone();
        bad[4] = 11;
        assert!(BodyHeader::decode(&bad, bad.len(), 0).is_err());
        bad = body.clone();
        bad[0] = 9;
        assert!(BodyHeader::decode(&bad, bad.len(), 0).is_err());
        assert!(BodyHeader::decode(&body[..8], 8, 0).is_err());
    }
}
