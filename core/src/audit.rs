//! Audit proofs: a worker proves it holds a byte range of a shard with a BLAKE3 verified slice
//! (bao), which anyone holding only the shard id (the BLAKE3 root) can check.
//!
//! The server picks a random range per challenge, so a worker cannot answer without the bytes;
//! the challenge's nonce is echoed in the answer ([`crate::wire::Body::AuditProof`]) so answers
//! cannot be matched to the wrong challenge.

use std::io::{Cursor, Read};

use crate::{Error, ShardId};

/// Largest byte range one challenge may ask for.
pub const MAX_AUDIT_RANGE: u32 = 64 * 1024;

/// Build the verified-slice proof of `shard[offset .. offset + len]`.
pub fn prove(shard: &[u8], offset: u64, len: u32) -> Result<Vec<u8>, Error> {
    check_range(shard.len() as u64, offset, len)?;
    let (outboard, _) = bao::encode::outboard(shard);
    let mut extractor = bao::encode::SliceExtractor::new_outboard(
        Cursor::new(shard),
        Cursor::new(&outboard[..]),
        offset,
        u64::from(len),
    );
    let mut proof = Vec::new();
    extractor
        .read_to_end(&mut proof)
        .map_err(|_| Error::InvalidParams("slice extraction failed"))?;
    Ok(proof)
}

/// Check a proof against the shard id alone; returns the proven bytes. `shard_len` comes from the
/// manifest, so a worker cannot shorten the shard to dodge a range.
pub fn verify(id: &ShardId, shard_len: u64, offset: u64, len: u32, proof: &[u8]) -> Result<Vec<u8>, Error> {
    check_range(shard_len, offset, len)?;
    // bao authenticates its length header only when the final chunk is read; the expected length
    // is known here, so hold the header to it for every range.
    if proof.get(..8) != Some(&shard_len.to_le_bytes()[..]) {
        return Err(Error::BadProof);
    }
    let hash = blake3::Hash::from_bytes(id.0);
    let mut reader = Cursor::new(proof);
    let mut decoder = bao::decode::SliceDecoder::new(&mut reader, &hash, offset, u64::from(len));
    let mut bytes = Vec::with_capacity(len as usize);
    decoder.read_to_end(&mut bytes).map_err(|_| Error::BadProof)?;
    if bytes.len() != len as usize || reader.position() != proof.len() as u64 {
        return Err(Error::BadProof);
    }
    Ok(bytes)
}

fn check_range(shard_len: u64, offset: u64, len: u32) -> Result<(), Error> {
    if len == 0 || len > MAX_AUDIT_RANGE || offset.checked_add(u64::from(len)).is_none_or(|end| end > shard_len) {
        return Err(Error::InvalidParams("audit range outside the shard"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proofs_verify_against_the_shard_id_only() {
        let shard: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let id = ShardId::of(&shard);
        for (offset, len) in [(0u64, 1u32), (5000, 3000), (99_000, 1000), (1024, 1024)] {
            let proof = prove(&shard, offset, len).unwrap();
            let got = verify(&id, shard.len() as u64, offset, len, &proof).unwrap();
            assert_eq!(got, &shard[offset as usize..offset as usize + len as usize]);
            // Tried: a flipped byte anywhere, truncation, an extra byte, another shard's id, a
            // different range. Must hold: BadProof (or a range error), never the bytes.
            for i in (0..proof.len()).step_by(97) {
                let mut bad = proof.clone();
                bad[i] ^= 1;
                assert!(verify(&id, shard.len() as u64, offset, len, &bad).is_err(), "byte {i}");
            }
            assert!(verify(&id, shard.len() as u64, offset, len, &proof[..proof.len() - 1]).is_err());
            let mut long = proof.clone();
            long.push(0);
            assert!(verify(&id, shard.len() as u64, offset, len, &long).is_err());
            assert!(verify(&ShardId::of(b"other"), shard.len() as u64, offset, len, &proof).is_err());
        }
        let proof = prove(&shard, 0, 2048).unwrap();
        assert!(verify(&id, shard.len() as u64, 2048, 2048, &proof).is_err());
        assert!(prove(&shard, 99_999, 2).is_err());
        assert!(prove(&shard, 0, MAX_AUDIT_RANGE + 1).is_err());
    }
}
