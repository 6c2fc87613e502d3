//! Reed-Solomon parity with WebAssembly SIMD, for the browser's encoder.
//!
//! reed-solomon-erasure multiplies in GF(2^8) one byte at a time through a 64 KiB table (about
//! 390 MB/s in WebAssembly, the slowest step of a browser upload). Here every byte is split into
//! its two nibbles and sixteen products are looked up at once with `u8x16_swizzle` against two
//! 16-entry tables per coefficient (`a·x = a·(x & 15) ^ a·(x & 240)`), the method SIMD
//! Reed-Solomon coders use with PSHUFB. The coefficients are read off the library's own coding
//! matrix and the products from its `galois_8::mul`, so the parity bytes are the library's.

use core::arch::wasm32::{u8x16_shr, u8x16_splat, u8x16_swizzle, u64x2, u64x2_extract_lane, v128, v128_and, v128_xor};

use reed_solomon_erasure::galois_8::{self, ReedSolomon};

use super::Redundancy;

/// The parity rows of one code as nibble tables.
#[derive(Debug)]
pub(super) struct ParityKernel {
    data: usize,
    parity: usize,
    /// Row-major `parity × data` coefficients of the coding matrix's parity rows.
    coefficients: Vec<u8>,
    /// For each coefficient: its products with every low nibble, and with every high nibble.
    tables: Vec<(v128, v128)>,
}

impl ParityKernel {
    pub(super) fn new(rs: &ReedSolomon, redundancy: Redundancy) -> Self {
        let (k, m) = (usize::from(redundancy.data), usize::from(redundancy.parity));
        // Encoding one-byte shards that are 1 in data column `c` and 0 elsewhere gives column
        // `c` of every parity row.
        let mut coefficients = vec![0u8; m * k];
        for c in 0..k {
            let data: Vec<[u8; 1]> = (0..k).map(|i| [u8::from(i == c)]).collect();
            let data: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
            let mut parity = vec![[0u8; 1]; m];
            let mut parity_refs: Vec<&mut [u8]> = parity.iter_mut().map(|p| &mut p[..]).collect();
            rs.encode_sep(&data, &mut parity_refs)
                .expect("one-byte shards, counted by the redundancy");
            for (r, p) in parity.iter().enumerate() {
                coefficients[r * k + c] = p[0];
            }
        }
        let tables = coefficients
            .iter()
            .map(|&a| {
                let nibble = |x: usize| u8::try_from(x).expect("16 table entries");
                let low: [u8; 16] = core::array::from_fn(|x| galois_8::mul(a, nibble(x)));
                let high: [u8; 16] = core::array::from_fn(|x| galois_8::mul(a, nibble(x) << 4));
                (load(&low), load(&high))
            })
            .collect();
        Self {
            data: k,
            parity: m,
            coefficients,
            tables,
        }
    }

    /// Fill `parity` from `data` (equal-length shards, as many as the redundancy says).
    pub(super) fn encode(&self, data: &[&[u8]], parity: &mut [&mut [u8]]) {
        let (k, m) = (self.data, self.parity);
        assert!(
            data.len() == k && parity.len() == m,
            "shard counts follow the redundancy"
        );
        let len = data.first().map_or(0, |d| d.len());
        assert!(
            data.iter().all(|d| d.len() == len) && parity.iter().all(|p| p.len() == len),
            "shards are equal-length"
        );
        let whole = len - len % 16;
        // The stripes the redundancy policy gives (`server/src/durability/policy.rs`) have a
        // kernel each: with the shape known when compiling, the loops unroll and the bounds
        // checks go (9 + 6 ran at 0.6x of 6 + 4 through the general kernel, about 0.9x through its own).
        match (k, m) {
            (6, 4) => self.encode_blocks::<6, 4>(data, parity, whole),
            (9, 6) => self.encode_blocks::<9, 6>(data, parity, whole),
            (12, 8) => self.encode_blocks::<12, 8>(data, parity, whole),
            _ => self.encode_blocks_any(data, parity, whole),
        }
        for at in whole..len {
            for (r, out) in parity.iter_mut().enumerate() {
                out[at] = (0..k).fold(0, |sum, c| {
                    sum ^ galois_8::mul(self.coefficients[r * k + c], data[c][at])
                });
            }
        }
    }

    /// Parity of the first `whole` bytes (a multiple of 16) for a code of exactly `K` data and
    /// `M` parity shards. Each 16-byte block of a data shard is loaded and split once and added
    /// into all `M` running sums, so only the sums and one block's nibbles stay live: few enough
    /// for the machine's vector registers at every shape the policy gives.
    fn encode_blocks<const K: usize, const M: usize>(&self, data: &[&[u8]], parity: &mut [&mut [u8]], whole: usize) {
        let tables: [[(v128, v128); M]; K] = core::array::from_fn(|c| core::array::from_fn(|r| self.tables[r * K + c]));
        let data: [&[u8]; K] = core::array::from_fn(|c| &data[c][..whole]);
        let low_nibbles = u8x16_splat(0x0f);
        for at in (0..whole).step_by(16) {
            let mut sums = [u8x16_splat(0); M];
            for c in 0..K {
                let v = load(&data[c][at..at + 16]);
                let (low, high) = (v128_and(v, low_nibbles), u8x16_shr(v, 4));
                for r in 0..M {
                    let (low_table, high_table) = tables[c][r];
                    sums[r] = v128_xor(
                        sums[r],
                        v128_xor(u8x16_swizzle(low_table, low), u8x16_swizzle(high_table, high)),
                    );
                }
            }
            for (sum, out) in sums.iter().zip(parity.iter_mut()) {
                store(*sum, &mut out[at..at + 16]);
            }
        }
    }

    /// [`Self::encode_blocks`] for any shape.
    fn encode_blocks_any(&self, data: &[&[u8]], parity: &mut [&mut [u8]], whole: usize) {
        let k = self.data;
        let low_nibbles = u8x16_splat(0x0f);
        let zero = u8x16_splat(0);
        // Each data block is loaded and split once, then used for every parity row.
        let mut lows = [zero; Redundancy::MAX_SHARDS_EACH as usize];
        let mut highs = [zero; Redundancy::MAX_SHARDS_EACH as usize];
        for at in (0..whole).step_by(16) {
            for (c, shard) in data.iter().enumerate() {
                let v = load(&shard[at..at + 16]);
                lows[c] = v128_and(v, low_nibbles);
                highs[c] = u8x16_shr(v, 4);
            }
            for (r, out) in parity.iter_mut().enumerate() {
                let mut sum = zero;
                for c in 0..k {
                    let (low, high) = self.tables[r * k + c];
                    sum = v128_xor(
                        sum,
                        v128_xor(u8x16_swizzle(low, lows[c]), u8x16_swizzle(high, highs[c])),
                    );
                }
                store(sum, &mut out[at..at + 16]);
            }
        }
    }
}

/// 16 bytes as a vector (lane i = byte i; WebAssembly is little-endian).
fn load(bytes: &[u8]) -> v128 {
    let half = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    u64x2(half(0), half(8))
}

fn store(v: v128, out: &mut [u8]) {
    out[..8].copy_from_slice(&u64x2_extract_lane::<0>(v).to_le_bytes());
    out[8..16].copy_from_slice(&u64x2_extract_lane::<1>(v).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use wasm_bindgen_test::wasm_bindgen_test;

    use super::*;

    #[wasm_bindgen_test]
    fn parity_equals_the_library_for_every_shape() {
        // Tried: lengths around the 16-byte blocks (none whole, one, one and a tail, many and a
        // tail), the policy's stripes (which have kernels of their own) and the extremes of k
        // and m, which take the kernel for any shape. Must hold: exactly the library's parity
        // bytes.
        for (k, m) in [(6u8, 4u8), (9, 6), (12, 8), (1, 1), (1, 32), (32, 1), (32, 32), (10, 3)] {
            let redundancy = Redundancy::new(k, m).unwrap();
            let rs = ReedSolomon::new(usize::from(k), usize::from(m)).unwrap();
            let kernel = ParityKernel::new(&rs, redundancy);
            for len in [1usize, 15, 16, 17, 100, 4096 + 7] {
                let data: Vec<Vec<u8>> = (0..usize::from(k))
                    .map(|c| {
                        (0..len)
                            .map(|i| u8::try_from((i * 131 + c * 71 + (i >> 3)) % 251).unwrap())
                            .collect()
                    })
                    .collect();
                let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
                let mut want = vec![vec![0u8; len]; usize::from(m)];
                let mut want_refs: Vec<&mut [u8]> = want.iter_mut().map(Vec::as_mut_slice).collect();
                rs.encode_sep(&refs, &mut want_refs).unwrap();
                let mut got = vec![vec![0xaau8; len]; usize::from(m)];
                let mut got_refs: Vec<&mut [u8]> = got.iter_mut().map(Vec::as_mut_slice).collect();
                kernel.encode(&refs, &mut got_refs);
                assert_eq!(got, want, "k {k}, m {m}, {len} bytes");
            }
        }
    }
}
