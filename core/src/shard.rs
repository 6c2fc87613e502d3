//! Shard: Reed-Solomon erasure coding of sealed chunks over GF(2^8).
//!
//! A sealed chunk of `L` bytes is split into k data shards of `ceil(L / k)` bytes (the last
//! zero-padded) and m parity shards of the same length; any k of the k + m rebuild it. Each shard
//! is named by its BLAKE3 hash ([`ShardId`]), so whoever holds the id can verify the bytes.
//!
//! The coding matrix is reed-solomon-erasure's, identical with or without its `simd-accel`
//! feature, so native and wasm32 builds produce the same shards. WebAssembly with SIMD computes
//! the parity with [`parity_simd`] (the library's matrix, about 4× faster there).

use reed_solomon_erasure::galois_8::ReedSolomon;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod parity_simd;

use crate::{Error, ShardId};

/// How many data (k) and parity (m) shards each chunk becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Redundancy {
    /// k: shards needed to rebuild a chunk.
    pub data: u8,
    /// m: shards that may be lost.
    pub parity: u8,
}

impl Redundancy {
    /// 6 + 4: any 4 of 10 workers (40%) may be lost.
    pub const DEFAULT: Self = Self { data: 6, parity: 4 };
    /// Upper bound on k and on m: keeps tokens, manifests and worker fan-out small.
    pub const MAX_SHARDS_EACH: u8 = 32;

    /// Checked constructor.
    pub fn new(data: u8, parity: u8) -> Result<Self, Error> {
        if data == 0 || parity == 0 {
            return Err(Error::InvalidParams("k and m must both be at least 1"));
        }
        if data > Self::MAX_SHARDS_EACH || parity > Self::MAX_SHARDS_EACH {
            return Err(Error::InvalidParams("k and m must each be at most 32"));
        }
        Ok(Self { data, parity })
    }

    /// k + m.
    pub fn total(&self) -> usize {
        usize::from(self.data) + usize::from(self.parity)
    }

    /// Length of every shard of a sealed chunk of `sealed_len` bytes.
    pub fn shard_len(&self, sealed_len: usize) -> usize {
        sealed_len.div_ceil(usize::from(self.data)).max(1)
    }
}

impl Default for Redundancy {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The k + m shards of one sealed chunk, stored back to back in one buffer.
#[derive(Debug, Clone)]
pub struct Shards {
    buf: Vec<u8>,
    shard_len: usize,
    ids: Vec<ShardId>,
}

impl Shards {
    /// Shard `i` (data shards first, then parity).
    pub fn shard(&self, i: usize) -> &[u8] {
        &self.buf[i * self.shard_len..(i + 1) * self.shard_len]
    }

    /// Every shard with its id, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (ShardId, &[u8])> {
        self.ids.iter().copied().zip(self.buf.chunks_exact(self.shard_len))
    }

    /// The shard ids, in order.
    pub fn ids(&self) -> &[ShardId] {
        &self.ids
    }

    /// Length of each shard.
    pub fn shard_len(&self) -> usize {
        self.shard_len
    }

    /// The buffer holding the shards, to hand back to [`crate::Encoder::recycle`] once they have
    /// been copied out (framed, sent).
    pub fn into_buffer(self) -> Vec<u8> {
        self.buf
    }

    /// The shards as separate buffers (for callers that hand them to different owners).
    pub fn into_vecs(self) -> Vec<Vec<u8>> {
        self.buf.chunks_exact(self.shard_len).map(<[u8]>::to_vec).collect()
    }
}

/// Encodes and rebuilds chunks for one [`Redundancy`].
#[derive(Debug)]
pub struct Sharder {
    rs: ReedSolomon,
    redundancy: Redundancy,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    parity: parity_simd::ParityKernel,
}

impl Sharder {
    pub fn new(redundancy: Redundancy) -> Self {
        let rs = ReedSolomon::new(usize::from(redundancy.data), usize::from(redundancy.parity))
            .expect("Redundancy bounds k and m well inside GF(2^8)'s 256 shards");
        Self {
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            parity: parity_simd::ParityKernel::new(&rs, redundancy),
            rs,
            redundancy,
        }
    }

    pub fn redundancy(&self) -> Redundancy {
        self.redundancy
    }

    /// Shard a sealed chunk (copies it once into the shard buffer).
    pub fn encode(&self, sealed: &[u8]) -> Shards {
        let shard_len = self.redundancy.shard_len(sealed.len());
        let mut buf = Vec::with_capacity(shard_len * self.redundancy.total());
        buf.extend_from_slice(sealed);
        self.encode_buffer(buf, shard_len)
    }

    /// Shard a buffer whose first bytes already are the sealed chunk: it is zero-padded to k + m
    /// shards of `shard_len` and the parity is computed in place. Avoids a copy for callers that
    /// seal straight into the shard buffer.
    pub fn encode_buffer(&self, mut buf: Vec<u8>, shard_len: usize) -> Shards {
        let k = usize::from(self.redundancy.data);
        debug_assert!(buf.len() <= k * shard_len);
        buf.resize(shard_len * self.redundancy.total(), 0);
        let (data, parity) = buf.split_at_mut(k * shard_len);
        let data: Vec<&[u8]> = data.chunks_exact(shard_len).collect();
        let mut parity: Vec<&mut [u8]> = parity.chunks_exact_mut(shard_len).collect();
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        self.parity.encode(&data, &mut parity);
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        self.rs
            .encode_sep(&data, &mut parity)
            .expect("shards are equal-length and counted by construction");
        let ids = buf.chunks_exact(shard_len).map(ShardId::of).collect();
        Shards { buf, shard_len, ids }
    }

    /// Rebuild the sealed chunk (`sealed_len` bytes) of chunk number `chunk` from whichever shards
    /// are present. Shards must already be verified by id; `None` marks a missing one.
    pub fn rebuild(&self, chunk: u64, shards: &mut [Option<Vec<u8>>], sealed_len: usize) -> Result<Vec<u8>, Error> {
        self.rebuild_into(chunk, shards, sealed_len, Vec::new())
    }

    /// [`Self::rebuild`] into `sealed`, a buffer handed back from an earlier chunk (its contents
    /// are replaced): a streaming download reuses a few buffers instead of allocating per chunk.
    pub fn rebuild_into(
        &self,
        chunk: u64,
        shards: &mut [Option<Vec<u8>>],
        sealed_len: usize,
        mut sealed: Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        let k = usize::from(self.redundancy.data);
        let shard_len = self.redundancy.shard_len(sealed_len);
        if shards.len() != self.redundancy.total() {
            return Err(Error::InvalidParams("wrong number of shard slots for the redundancy"));
        }
        for slot in shards.iter_mut() {
            if slot.as_ref().is_some_and(|s| s.len() != shard_len) {
                *slot = None;
            }
        }
        let available = shards.iter().flatten().count();
        if available < k {
            return Err(Error::TooFewShards {
                chunk,
                available,
                needed: k,
            });
        }
        // Data shards all present: no Reed-Solomon work, just concatenate.
        if shards[..k].iter().any(Option::is_none) {
            self.rs.reconstruct_data(shards).map_err(|_| Error::TooFewShards {
                chunk,
                available,
                needed: k,
            })?;
        }
        sealed.clear();
        sealed.reserve(k * shard_len);
        for shard in shards[..k].iter().flatten() {
            sealed.extend_from_slice(shard);
        }
        // Padding must be zeros: the encoder wrote zeros, so anything else is a forged layout.
        if sealed[sealed_len..].iter().any(|&b| b != 0) {
            return Err(Error::NonCanonical("non-zero shard padding"));
        }
        sealed.truncate(sealed_len);
        Ok(sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_k_rebuild_and_k_minus_one_do_not() {
        let sharder = Sharder::new(Redundancy::new(3, 2).unwrap());
        let sealed: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let shards = sharder.encode(&sealed);
        assert_eq!(shards.shard_len(), 334);
        for missing_a in 0..5 {
            for missing_b in 0..5 {
                let mut slots: Vec<Option<Vec<u8>>> = shards.clone().into_vecs().into_iter().map(Some).collect();
                slots[missing_a] = None;
                slots[missing_b] = None;
                assert_eq!(sharder.rebuild(0, &mut slots, sealed.len()).unwrap(), sealed);
            }
        }
        let mut slots: Vec<Option<Vec<u8>>> = shards.into_vecs().into_iter().map(Some).collect();
        slots[0] = None;
        slots[2] = None;
        slots[4] = None;
        assert_eq!(
            sharder.rebuild(9, &mut slots, sealed.len()),
            Err(Error::TooFewShards {
                chunk: 9,
                available: 2,
                needed: 3
            })
        );
    }

    #[test]
    fn redundancy_bounds() {
        assert!(Redundancy::new(0, 4).is_err());
        assert!(Redundancy::new(6, 0).is_err());
        assert!(Redundancy::new(33, 4).is_err());
        assert!(Redundancy::new(32, 32).is_ok());
        assert_eq!(Redundancy::DEFAULT.shard_len(0), 1);
        assert_eq!(Redundancy::DEFAULT.shard_len(16), 3);
    }
}
