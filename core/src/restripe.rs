//! Restripe: a stored file's sealed chunks re-encoded at another (k, m), for the owner to sign.
//!
//! A file stored with less redundancy than the server's policy gives now (written during an
//! outage, or before the network grew) is brought up to it by its owner's client: the server may
//! move shards on its own, but only the owner may sign a manifest. The client fetches any k
//! shards of each chunk (checked against the stored manifest's ids), rebuilds the **sealed**
//! chunk, encodes it at the new (k, m) and sends the shards as an upload does. Nothing is opened:
//! no file key is needed, and every chunk keeps its sealed bytes, so the new manifest differs
//! from the old only in the redundancy and the shard ids (the server checks that).

use crate::chunk::EncodedChunk;
use crate::manifest::{ChunkEntry, Manifest};
use crate::shard::{Redundancy, Sharder};
use crate::squeeze::Codec;
use crate::{Error, VerifiedShard};

/// Re-encodes one file's chunks, in order.
#[derive(Debug)]
pub struct Restriper {
    stored: Manifest,
    from: Sharder,
    to: Sharder,
    entries: Vec<ChunkEntry>,
}

impl Restriper {
    /// Re-encode the file of manifest `stored` at `to`, which must differ from its redundancy.
    pub fn new(stored: &Manifest, to: Redundancy) -> Result<Self, Error> {
        let to = Redundancy::new(to.data, to.parity)?;
        if to == stored.redundancy {
            return Err(Error::InvalidParams("a restripe changes the redundancy"));
        }
        Ok(Self {
            from: Sharder::new(stored.redundancy),
            to: Sharder::new(to),
            entries: Vec::with_capacity(stored.chunks.len()),
            stored: stored.clone(),
        })
    }

    /// The chunk to re-encode next, and its entry in the stored manifest (whose shard ids the
    /// fetched shards are checked against).
    pub fn next_chunk(&self) -> Option<(u64, &ChunkEntry)> {
        let index = self.entries.len();
        self.stored.chunks.get(index).map(|e| (index as u64, e))
    }

    /// Rebuild chunk `index` from `shards` (its stored slots: any k present, verified against
    /// their ids; a shard under another slot's id counts as missing) and encode it at the new
    /// redundancy. Chunks come in order. The chunk's `plain_len` is its sealed length (what a
    /// restripe moves, for progress) and its codec `Raw`: what is inside stays sealed.
    pub fn restripe(&mut self, index: u64, shards: Vec<Option<VerifiedShard>>) -> Result<EncodedChunk, Error> {
        let expected = self.entries.len() as u64;
        let Some(entry) = self.stored.chunks.get(self.entries.len()) else {
            return Err(Error::StreamExtended);
        };
        if index != expected {
            return Err(Error::ChunkOutOfOrder { index, expected });
        }
        if shards.len() != entry.shards.len() {
            return Err(Error::InvalidParams("wrong number of shard slots for the redundancy"));
        }
        let mut slots: Vec<Option<Vec<u8>>> = shards
            .into_iter()
            .zip(&entry.shards)
            .map(|(slot, id)| slot.filter(|s| s.id() == *id).map(VerifiedShard::into_bytes))
            .collect();
        let sealed = self.from.rebuild(index, &mut slots, entry.sealed_len as usize)?;
        let shards = self.to.encode(&sealed);
        let new_entry = ChunkEntry {
            sealed_len: entry.sealed_len,
            shards: shards.ids().to_vec(),
            clear: entry.clear,
        };
        self.entries.push(new_entry.clone());
        Ok(EncodedChunk {
            index,
            entry: new_entry,
            shards,
            plain_len: entry.sealed_len,
            codec: Codec::Raw,
        })
    }

    /// The new manifest, once every chunk is re-encoded: the stored one at the new redundancy.
    pub fn finish(self) -> Result<Manifest, Error> {
        if self.entries.len() != self.stored.chunks.len() {
            return Err(Error::StreamTruncated);
        }
        let manifest = Manifest {
            file_id: self.stored.file_id,
            redundancy: self.to.redundancy(),
            chunk_size: self.stored.chunk_size,
            chunks: self.entries,
        };
        manifest.validate()?;
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{decode_all, encode_all};
    use crate::{FileId, FileKey};

    fn r(data: u8, parity: u8) -> Redundancy {
        Redundancy::new(data, parity).unwrap()
    }

    /// The shards of an encoded chunk as a fetch hands them over, some left out.
    fn fetched(chunk: &EncodedChunk, missing: &[usize]) -> Vec<Option<VerifiedShard>> {
        chunk
            .shards
            .iter()
            .enumerate()
            .map(|(i, (id, bytes))| (!missing.contains(&i)).then(|| id.verify(bytes.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn a_restriped_file_decodes_to_the_same_bytes_at_the_new_redundancy() {
        let key = FileKey::generate();
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 % 251) as u8).collect();
        let (chunks, stored) = encode_all(&key, FileId([3; 16]), r(4, 3), 16 * 1024, &data).unwrap();
        let mut restriper = Restriper::new(&stored, r(6, 4)).unwrap();
        let mut out = Vec::new();
        for (i, chunk) in chunks.iter().enumerate() {
            assert_eq!(restriper.next_chunk().unwrap().0, i as u64);
            // Three of seven shards lost (data and parity): any k rebuild it.
            out.push(restriper.restripe(chunk.index, fetched(chunk, &[0, 2, 5])).unwrap());
        }
        assert!(restriper.next_chunk().is_none());
        let manifest = restriper.finish().unwrap();
        assert_eq!(manifest.redundancy, r(6, 4));
        assert_eq!(manifest.chunks.len(), stored.chunks.len());
        for (new, old) in manifest.chunks.iter().zip(&stored.chunks) {
            assert_eq!(new.sealed_len, old.sealed_len);
            assert_eq!(new.shards.len(), 10);
        }
        // The new shards open with the file key to the very bytes stored.
        assert_eq!(decode_all(&key, &manifest, data.len() as u64, &out).unwrap(), data);
    }

    #[test]
    fn too_few_wrong_or_out_of_order_shards_are_refused() {
        let key = FileKey::generate();
        let data = vec![9u8; 40_000];
        let (chunks, stored) = encode_all(&key, FileId([4; 16]), r(4, 3), 16 * 1024, &data).unwrap();
        // Tried: the same redundancy. Must hold: refused (it would re-send the same shards).
        assert!(Restriper::new(&stored, r(4, 3)).is_err());
        let mut restriper = Restriper::new(&stored, r(6, 4)).unwrap();
        // Tried: chunk 1 first. Must hold: out of order.
        assert!(matches!(
            restriper.restripe(1, fetched(&chunks[1], &[])),
            Err(Error::ChunkOutOfOrder { index: 1, expected: 0 })
        ));
        // Tried: only three of seven shards. Must hold: too few, nothing recorded.
        assert!(matches!(
            restriper.restripe(0, fetched(&chunks[0], &[0, 1, 2, 3])),
            Err(Error::TooFewShards { .. })
        ));
        // Tried: chunk 1's shards offered as chunk 0's (verified, under other ids). Must hold:
        // they count as missing.
        assert!(restriper.restripe(0, fetched(&chunks[1], &[])).is_err());
        // Tried: finishing early. Must hold: truncated.
        let fine = restriper.restripe(0, fetched(&chunks[0], &[6])).unwrap();
        assert_eq!(fine.shards.ids().len(), 10);
        assert!(matches!(restriper.finish(), Err(Error::StreamTruncated)));
    }
}
