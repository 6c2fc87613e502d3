//! Round trips and tampering, run natively and as wasm32 under Node.
//!
//! Each negative test states what was tried and what must hold.

#![allow(clippy::cast_possible_truncation)]

mod common;

use common::*;
use disktro_core::chunk::{decode_all, encode_all};
use disktro_core::keys::Keypair;
use disktro_core::padding::BODY_HEADER_LEN;
use disktro_core::squeeze::Codec;
use disktro_core::{
    DEFAULT_CHUNK_SIZE, Decoder, Encoder, Error, FileId, FileKey, OpenError, Redundancy, ShardId, SignedManifest,
    VerifiedShard,
};

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test;

const CS: u32 = 1024;

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn real_chunk_size_edges_round_trip() {
    // 0: the empty file is one empty chunk. 1: smallest non-empty. chunk-1, chunk, chunk+1: the
    // boundary where the held-back last chunk matters. 2 chunks + odd tail: several chunks.
    let cs = DEFAULT_CHUNK_SIZE as usize;
    for (len, chunks) in [(0, 1), (1, 1), (cs - 1, 1), (cs, 1), (cs + 1, 2), (2 * cs + 12_345, 3)] {
        for data in [noise(len as u64, len), text(len as u64, len)] {
            let key = FileKey::generate();
            let mut enc = Encoder::new(&key, FileId::random(), Redundancy::DEFAULT);
            // Feed in uneven slices, as a browser reading Blob slices would.
            let mut out = Vec::new();
            for piece in data.chunks(777_777) {
                out.extend(enc.push(piece).unwrap());
            }
            let (last, manifest) = enc.finish().unwrap();
            out.push(last);
            assert_eq!(out.len(), chunks, "{len} bytes");
            assert!(manifest.admits_size(len as u64));
            assert_eq!(
                decode_all(&key, &manifest, len as u64, &out).unwrap(),
                data,
                "{len} bytes"
            );
        }
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn shards_verified_on_arrival_decode_and_misplaced_ones_count_as_missing() {
    // Tried: decoding from shards verified as they arrived; wrong bytes offered for verification;
    // then a genuine verified shard put in another shard's slot (a client mixing up its slots).
    // Must hold: the file decodes; wrong bytes never verify; a misplaced shard is not used: with
    // k - 1 others it is TooFewShards, not a corrupt chunk.
    let data = noise(9, 2 * CS as usize + 3);
    let f = store(FileKey::generate(), FileId::random(), Redundancy::DEFAULT, CS, &data);
    let verified = |c: &disktro_core::EncodedChunk, i: usize| c.shards.ids()[i].verify(c.shards.shard(i).to_vec());
    let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
    let mut out = Vec::new();
    for c in &f.chunks {
        let slots = (0..c.shards.ids().len()).map(|i| verified(c, i)).collect();
        out.extend_from_slice(&d.decode_verified(c.index, slots).unwrap());
    }
    d.finish().unwrap();
    assert_eq!(out, data);

    let c = &f.chunks[0];
    let mut wrong = c.shards.shard(0).to_vec();
    wrong[0] ^= 1;
    assert!(c.shards.ids()[0].verify(wrong).is_none());

    let k = usize::from(Redundancy::DEFAULT.data);
    let mut slots: Vec<Option<VerifiedShard>> = (0..c.shards.ids().len())
        .map(|i| verified(c, i).filter(|_| i < k))
        .collect();
    slots[1] = verified(c, 0);
    let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
    assert!(matches!(
        d.decode_verified(0, slots),
        Err(Error::TooFewShards {
            chunk: 0,
            available: 5,
            needed: 6
        })
    ));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn recycled_plaintext_buffers_do_not_leak_into_later_chunks() {
    // Tried: a download that hands every chunk's plaintext back to the decoder after scribbling
    // over it and growing it, through raw and squeezed chunks, short last chunks, and chunks
    // rebuilt from parity. Must hold: every chunk decodes exactly as without recycling.
    for data in [noise(7, 5 * CS as usize + 77), text(7, 5 * CS as usize + 77)] {
        let f = store(FileKey::generate(), FileId::random(), Redundancy::DEFAULT, CS, &data);
        let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
        let mut out = Vec::new();
        for c in &f.chunks {
            let shards = offered(c, |i| c.index % 2 == 0 || i >= 2);
            let plain = d.decode_chunk(c.index, shards).unwrap();
            out.extend_from_slice(&plain);
            let mut buffer = plain.into_buffer();
            buffer.fill(0xAA);
            buffer.extend_from_slice(&[0x55; 3000]);
            d.recycle(buffer);
        }
        d.finish().unwrap();
        assert_eq!(out, data);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn a_reader_of_a_range_decodes_from_a_later_chunk_and_only_the_chunk_asked_for() {
    // Tried: a decoder sent ahead to chunk 3 of 6 (a byte-range read), then given chunk 3, then
    // chunk 5 in chunk 4's place, and a decoder asked to go back. Must hold: chunk 3 decodes to
    // its bytes, the misplaced chunk is refused, and skipping never moves a decoder backwards.
    let data = noise(9, 5 * CS as usize + 77);
    let f = store(FileKey::generate(), FileId::random(), Redundancy::DEFAULT, CS, &data);
    let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
    d.skip_to(3);
    let c = &f.chunks[3];
    let plain = d.decode_chunk(3, offered(c, |i| i != 1)).unwrap();
    assert_eq!(&plain[..], &data[3 * CS as usize..4 * CS as usize]);
    let five = &f.chunks[5];
    assert!(d.decode_chunk(4, offered(five, |_| true)).is_err());
    assert!(
        d.decode_chunk(5, offered(five, |_| true)).is_err(),
        "chunk 4 is next, not 5"
    );
    d.skip_to(1);
    let four = &f.chunks[4];
    assert!(
        d.decode_chunk(4, offered(four, |_| true)).is_ok(),
        "a skip back is ignored"
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn any_m_missing_decode_and_m_plus_one_fail() {
    let data = noise(1, 3 * CS as usize + 5);
    let f = store(FileKey::generate(), FileId::random(), Redundancy::DEFAULT, CS, &data);
    let total = Redundancy::DEFAULT.total();
    for first_missing in 0..total {
        // m = 4 missing, a window starting anywhere (data, parity and mixed).
        let missing: Vec<usize> = (0..4).map(|i| (first_missing + i) % total).collect();
        let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
        let mut out = Vec::new();
        for c in &f.chunks {
            let shards = offered(c, |i| !missing.contains(&i));
            out.extend_from_slice(&d.decode_chunk(c.index, shards).unwrap());
        }
        d.finish().unwrap();
        assert_eq!(out, data);
        // Tried: one more missing. Must hold: a clear TooFewShards naming the chunk.
        let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
        let c = &f.chunks[0];
        let shards = offered(c, |i| !missing.contains(&i) && i != (first_missing + 4) % total);
        assert_eq!(
            d.decode_chunk(0, shards),
            Err(Error::TooFewShards {
                chunk: 0,
                available: 5,
                needed: 6
            })
        );
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn corrupt_shards_are_discarded_by_id() {
    let data = text(2, 2 * CS as usize);
    let f = store(
        FileKey::generate(),
        FileId::random(),
        Redundancy::new(3, 2).unwrap(),
        CS,
        &data,
    );
    let c = &f.chunks[0];
    // Tried: one bit flipped in a data shard, all shards offered. Must hold: the bad shard is
    // ignored and the chunk still decodes from the others.
    let mut shards: Vec<Option<Vec<u8>>> = c.shards.iter().map(|(_, b)| Some(b.to_vec())).collect();
    shards[1].as_mut().unwrap()[0] ^= 1;
    let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
    assert_eq!(&*d.decode_chunk(0, shards.clone()).unwrap(), &data[..CS as usize]);
    // Tried: the same, with only k shards offered. Must hold: TooFewShards, never wrong bytes.
    shards[4] = None;
    shards[3] = None;
    let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
    assert_eq!(
        d.decode_chunk(0, shards),
        Err(Error::TooFewShards {
            chunk: 0,
            available: 2,
            needed: 3
        })
    );
    // Tried: a shard of the wrong length. Must hold: ignored like a corrupt one.
    let mut shards: Vec<Option<Vec<u8>>> = c.shards.iter().map(|(_, b)| Some(b.to_vec())).collect();
    shards[0].as_mut().unwrap().push(0);
    let mut d = Decoder::new(&f.key, &f.manifest, f.size).unwrap();
    assert_eq!(&*d.decode_chunk(0, shards).unwrap(), &data[..CS as usize]);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn rearranged_chunks_fail_to_open() {
    // File A is exactly three full chunks so every rearrangement below is a structurally valid
    // manifest; B and C are other files (C under the same file key). The forger re-signs, so only
    // the seal stands between the reader and wrong data.
    let key = FileKey::generate();
    let a = store(
        key.clone(),
        FileId::random(),
        Redundancy::new(3, 2).unwrap(),
        CS,
        &noise(10, 3 * CS as usize),
    );
    let b = store(
        FileKey::generate(),
        FileId::random(),
        Redundancy::new(3, 2).unwrap(),
        CS,
        &noise(11, 3 * CS as usize),
    );
    let c = store(
        key.clone(),
        FileId::random(),
        Redundancy::new(3, 2).unwrap(),
        CS,
        &noise(12, 3 * CS as usize),
    );
    let shards = shard_store([&a, &b, &c]);
    assert_eq!(
        decode_from_store(&key, &a.manifest, a.size, &shards).unwrap(),
        noise(10, 3 * CS as usize)
    );
    let e = |i: usize| a.manifest.chunks[i].clone();
    let cases = [
        ("reordered", vec![e(1), e(0), e(2)]),
        ("dropped", vec![e(0), e(2)]),
        ("duplicated", vec![e(0), e(0), e(1), e(2)]),
        ("truncated at a chunk boundary", vec![e(0), e(1)]),
        ("extended", vec![e(0), e(1), e(2), b.manifest.chunks[0].clone()]),
        (
            "spliced from another file",
            vec![e(0), b.manifest.chunks[1].clone(), e(2)],
        ),
        (
            "spliced from a file with the same key",
            vec![e(0), c.manifest.chunks[1].clone(), e(2)],
        ),
    ];
    for (what, chunks) in cases {
        let mut m = a.manifest.clone();
        m.chunks = chunks;
        let m = forged(m);
        // Must hold: no plaintext; the one OpenError, or (a chunk count the file's size does not
        // have) the size refused before anything is fetched.
        let refused = decode_from_store(&key, &m, a.size, &shards);
        assert!(
            matches!(refused, Err(Error::Open(OpenError) | Error::SizeMismatch)),
            "{what}: {refused:?}"
        );
    }
    // Tried: the stream stops before its last chunk, or continues after it, or skips ahead.
    let mut d = Decoder::new(&key, &a.manifest, a.size).unwrap();
    let all = |i: usize| {
        a.chunks[i]
            .shards
            .iter()
            .map(|(_, b)| Some(b.to_vec()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        d.decode_chunk(1, all(1)),
        Err(Error::ChunkOutOfOrder { index: 1, expected: 0 })
    );
    d.decode_chunk(0, all(0)).unwrap();
    assert!(matches!(
        Decoder::new(&key, &a.manifest, a.size).unwrap().finish(),
        Err(Error::StreamTruncated)
    ));
    assert_eq!(d.finish(), Err(Error::StreamTruncated));
    let mut d = Decoder::new(&key, &a.manifest, a.size).unwrap();
    for i in 0..3 {
        d.decode_chunk(i as u64, all(i)).unwrap();
    }
    assert_eq!(d.decode_chunk(3, all(0)), Err(Error::StreamExtended));
    // Tried: the right manifest with the wrong key. Must hold: OpenError.
    assert_eq!(
        decode_from_store(&FileKey::generate(), &a.manifest, a.size, &shards),
        Err(Error::Open(OpenError))
    );
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn tampered_manifests_are_rejected() {
    let owner = Keypair::generate();
    let (_, manifest) = encode_all(
        &FileKey::generate(),
        FileId::random(),
        Redundancy::new(2, 1).unwrap(),
        CS,
        &noise(3, 1500),
    )
    .unwrap();
    let signed = manifest.clone().sign(&owner).unwrap();
    let bytes = signed.as_bytes();
    assert_eq!(SignedManifest::decode(bytes).unwrap(), signed);
    // Tried: every byte flipped. Must hold: an error (signature, structure or version), never a
    // manifest.
    for i in 0..bytes.len() {
        let mut bad = bytes.to_vec();
        bad[i] ^= 0x10;
        assert!(SignedManifest::decode(&bad).is_err(), "byte {i}");
    }
    // Tried: a trailing byte, each truncation, an unknown version. Must hold: rejected.
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(SignedManifest::decode(&long), Err(Error::TrailingBytes("manifest")));
    for n in 0..bytes.len() {
        assert!(SignedManifest::decode(&bytes[..n]).is_err(), "prefix {n}");
    }
    let mut v3 = bytes.to_vec();
    v3[4] = 3;
    assert_eq!(
        SignedManifest::decode(&v3),
        Err(Error::UnsupportedVersion {
            what: "manifest",
            found: 3
        })
    );
    // Tried: the padded manifest's version byte set to 1 (read as the old, unpadded layout).
    // Must hold: refused (its chunk table no longer parses, and the signature covers the byte).
    let mut v1 = bytes.to_vec();
    v1[4] = 1;
    assert!(SignedManifest::decode(&v1).is_err());
    // Tried: structurally impossible manifests, validly signed. Must hold: refused at signing
    // and at decoding.
    let mut short_middle = manifest.clone();
    short_middle.chunks.insert(0, short_middle.chunks[1].clone());
    assert!(matches!(short_middle.sign(&owner), Err(Error::NonCanonical(_))));
    let mut wrong_len = manifest.clone();
    wrong_len.chunks[0].sealed_len += 1;
    assert!(matches!(wrong_len.sign(&owner), Err(Error::NonCanonical(_))));
    let mut empty = manifest;
    empty.chunks.clear();
    assert!(empty.sign(&owner).is_err());
}

/// Seals a staged chunk the way an outside AES-256-GCM (the browser's WebCrypto) would: key,
/// nonce and associated data from the staged chunk, output ciphertext followed by the tag.
/// The file's chunk key as an outside sealer (the browser's WebCrypto) holds it.
fn outside_cipher(key: &FileKey, file_id: &FileId) -> aes_gcm::Aes256Gcm {
    use aes_gcm::aead::KeyInit;
    let chunk_key = disktro_core::seal::ChunkKey::derive(key, file_id);
    aes_gcm::Aes256Gcm::new_from_slice(chunk_key.as_bytes()).unwrap()
}

fn seal_outside(key: &FileKey, file_id: &FileId, staged: &disktro_core::StagedChunk) -> Vec<u8> {
    use aes_gcm::aead::{Aead, Payload};
    let cipher = outside_cipher(key, file_id);
    let payload = Payload {
        msg: &staged.body,
        aad: &staged.aad,
    };
    cipher.encrypt(&staged.nonce().into(), payload).unwrap()
}

/// What an outside opener (the browser, through WebCrypto) does with a rebuilt chunk.
fn open_outside(key: &FileKey, file_id: &FileId, rebuilt: &disktro_core::RebuiltChunk) -> Vec<u8> {
    use aes_gcm::aead::{Aead, Payload};
    let cipher = outside_cipher(key, file_id);
    let payload = Payload {
        msg: &rebuilt.sealed,
        aad: &rebuilt.aad,
    };
    cipher.decrypt(&rebuilt.nonce().into(), payload).unwrap()
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn staged_decoding_rebuilds_ahead_and_completes_raw_chunks_outside() {
    // The browser rebuilds the next chunk while WebCrypto opens the one before, and hands a raw
    // chunk's opened bytes to the file without copying them back. The file (raw, squeezed and
    // raw chunks) must come out whole that way.
    let data = [noise(5, 2 * CS as usize), text(6, CS as usize), noise(7, 100)].concat();
    let (key, file_id) = (FileKey::generate(), FileId::random());
    let (chunks, manifest) = encode_all(&key, file_id, Redundancy::DEFAULT, CS, &data).unwrap();
    let codecs: Vec<Codec> = chunks.iter().map(|c| c.codec).collect();
    assert_eq!(codecs, [Codec::Raw, Codec::Raw, Codec::Zstd, Codec::Raw]);
    let mut dec = Decoder::new(&key, &manifest, data.len() as u64).unwrap();
    let mut out = Vec::new();
    let mut ahead: Option<disktro_core::RebuiltChunk> = None;
    let mut complete = |dec: &mut Decoder, rebuilt: disktro_core::RebuiltChunk| {
        let opened = open_outside(&key, &file_id, &rebuilt);
        // The browser reads the body's header out of WebCrypto's answer to choose.
        let head = &opened[..BODY_HEADER_LEN];
        if dec.read_body(&rebuilt, head, opened.len()).unwrap().codec == Codec::Raw {
            let payload = dec.complete_outside(rebuilt, head, opened.len()).unwrap();
            out.extend_from_slice(&opened[payload]);
        } else {
            out.extend_from_slice(&dec.complete(rebuilt, opened).unwrap());
        }
    };
    for c in &chunks {
        let rebuilt = dec.rebuild(c.index, offered(c, |_| true)).unwrap();
        if let Some(previous) = ahead.replace(rebuilt) {
            complete(&mut dec, previous);
        }
    }
    complete(&mut dec, ahead.unwrap());
    dec.finish().unwrap();
    assert_eq!(out, data);
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn staged_decoding_refuses_chunks_out_of_order_and_squeezed_chunks_outside() {
    // Tried: a rebuild that skips a chunk; two chunks rebuilt and the second completed first; a
    // raw chunk completed outside with a wrong length; a squeezed chunk completed outside
    // (only its bytes can be unsqueezed); finishing with a rebuilt chunk never completed. Each
    // must be refused with its own error.
    let data = [noise(5, CS as usize), text(6, CS as usize)].concat();
    let (key, file_id) = (FileKey::generate(), FileId::random());
    let (chunks, manifest) = encode_all(&key, file_id, Redundancy::DEFAULT, CS, &data).unwrap();
    let size = data.len() as u64;
    let mut dec = Decoder::new(&key, &manifest, size).unwrap();
    assert!(matches!(
        dec.rebuild(1, offered(&chunks[1], |_| true)),
        Err(Error::ChunkOutOfOrder { index: 1, expected: 0 })
    ));
    let first = dec.rebuild(0, offered(&chunks[0], |_| true)).unwrap();
    let second = dec.rebuild(1, offered(&chunks[1], |_| true)).unwrap();
    let opened_second = open_outside(&key, &file_id, &second);
    assert!(matches!(
        dec.complete(second, opened_second),
        Err(Error::ChunkOutOfOrder { index: 1, expected: 0 })
    ));
    let opened = open_outside(&key, &file_id, &first);
    assert!(matches!(
        dec.complete_outside(first, &opened[..9], opened.len() - 1),
        Err(Error::CorruptChunk(0))
    ));
    assert!(matches!(dec.finish(), Err(Error::StreamTruncated)));

    let mut dec = Decoder::new(&key, &manifest, size).unwrap();
    let first = dec.rebuild(0, offered(&chunks[0], |_| true)).unwrap();
    let opened = open_outside(&key, &file_id, &first);
    assert_eq!(
        dec.complete_outside(first, &opened[..9], opened.len()).unwrap(),
        9..9 + CS as usize
    );
    let squeezed = dec.rebuild(1, offered(&chunks[1], |_| true)).unwrap();
    let opened = open_outside(&key, &file_id, &squeezed);
    assert!(matches!(
        dec.complete_outside(squeezed, &opened[..9], opened.len()),
        Err(Error::InvalidParams(_))
    ));
    // Tried: a reader told another size than the file's. Must hold: refused before any chunk.
    assert_eq!(
        Decoder::new(&key, &manifest, size + 1).unwrap_err(),
        Error::SizeMismatch
    );
    assert_eq!(
        Decoder::new(&key, &manifest, size - CS as u64).unwrap_err(),
        Error::SizeMismatch
    );
    assert!(matches!(dec.finish(), Err(Error::StreamTruncated)));
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn recycled_buffers_give_the_same_shards() {
    // An upload hands each chunk's buffer back once its shards are sent. Whatever was left in
    // the buffer (the previous chunk's shards, larger or smaller), the next chunk's shards and
    // the manifest must equal a fresh encoder's.
    let data = [text(3, 2 * CS as usize), noise(4, 3 * CS as usize + 7)].concat();
    let (key, file_id) = (FileKey::generate(), FileId::random());
    let (expected, expected_manifest) = encode_all(&key, file_id, Redundancy::DEFAULT, CS, &data).unwrap();
    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    let mut got = Vec::new();
    for piece in data.chunks(1000) {
        for chunk in enc.push(piece).unwrap() {
            got.push(chunk.shards.ids().to_vec());
            enc.recycle(chunk.shards.into_buffer());
        }
    }
    let (last, manifest) = enc.finish().unwrap();
    got.push(last.shards.ids().to_vec());
    assert_eq!(manifest, expected_manifest);
    let expected_ids: Vec<Vec<ShardId>> = expected.iter().map(|c| c.shards.ids().to_vec()).collect();
    assert_eq!(got, expected_ids);

    // The same file chunked by the caller (`encode`, as the CLI reads it) gives the same too.
    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    let pieces: Vec<&[u8]> = data.chunks(CS as usize).collect();
    let mut got = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let chunk = enc.encode(piece, i + 1 == pieces.len()).unwrap();
        got.push(chunk.shards.ids().to_vec());
        enc.recycle(chunk.shards.into_buffer());
    }
    assert_eq!(enc.into_manifest().unwrap(), expected_manifest);
    assert_eq!(got, expected_ids);

    // Read into the encoder's own buffer (`read_buffer` + `encode_read`, as the CLI reads each
    // chunk: the text chunks squeezed over their plaintext in place, the last one short), each
    // buffer a recycled shard buffer after the first: the same again.
    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    let mut got = Vec::new();
    for (i, piece) in pieces.iter().enumerate() {
        let mut buf = enc.read_buffer();
        assert_eq!(buf.len(), BODY_HEADER_LEN + CS as usize);
        buf[BODY_HEADER_LEN..BODY_HEADER_LEN + piece.len()].copy_from_slice(piece);
        let chunk = enc.encode_read(buf, piece.len(), i + 1 == pieces.len()).unwrap();
        got.push(chunk.shards.ids().to_vec());
        enc.recycle(chunk.shards.into_buffer());
    }
    assert_eq!(enc.into_manifest().unwrap(), expected_manifest);
    assert_eq!(got, expected_ids);
    // Tried: more bytes said read than the buffer holds. Must hold: refused, not a panic.
    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    assert!(enc.encode_read(vec![0; 8], 10, true).is_err());

    // Tried: a short chunk that is not the last, and encode after push. Must hold: refused.
    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    assert!(enc.encode(&data[..10], false).is_err());
    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    assert!(enc.push(&data[..10]).unwrap().is_empty());
    assert!(enc.encode(&data[..CS as usize], false).is_err());
}

// Threads: native only (the browser squeezes one chunk at a time).
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn chunks_squeezed_by_siblings_give_the_same_bytes() {
    // The CLI squeezes two chunks at once (one on the encoder's thread, one on a helper) and
    // encodes them in order. For text, noise and a mix (the file's first chunk decides whether it
    // counts as compressed), the shards and the manifest must equal the one-thread encoder's.
    let gzip_head = [&[0x1f, 0x8b, 0x08][..], &text(9, 3 * CS as usize)].concat();
    for data in [
        text(5, 4 * CS as usize + 3),
        noise(6, 3 * CS as usize),
        [noise(7, CS as usize), text(8, 3 * CS as usize)].concat(),
        gzip_head,
    ] {
        let (key, file_id) = (FileKey::generate(), FileId::random());
        let (expected, expected_manifest) = encode_all(&key, file_id, Redundancy::DEFAULT, CS, &data).unwrap();
        let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
        let pieces: Vec<&[u8]> = data.chunks(CS as usize).collect();
        // Tried: no sibling before the first chunk, and the first chunk squeezed outside. Must
        // hold: neither is allowed (the first chunk decides the file's codec choices).
        assert!(enc.sibling_squeezer().is_none());
        assert!(enc.encode_squeezed(pieces[0], false, (Codec::Raw, None)).is_err());
        let mut got = vec![enc.encode(pieces[0], false).unwrap().shards.ids().to_vec()];
        let (mut mine, mut helper) = (enc.sibling_squeezer().unwrap(), enc.sibling_squeezer().unwrap());
        for (pair_at, pair) in pieces[1..].chunks(2).enumerate() {
            let (a, b) = std::thread::scope(|s| {
                let b = pair.get(1).map(|b| s.spawn(|| helper.squeeze(b)));
                (mine.squeeze(pair[0]), b.map(|h| h.join().unwrap()))
            });
            for (i, squeezed) in [Some(a), b].into_iter().flatten().enumerate() {
                let last = 1 + 2 * pair_at + i + 1 == pieces.len();
                let chunk = enc.encode_squeezed(pair[i], last, squeezed).unwrap();
                got.push(chunk.shards.ids().to_vec());
            }
        }
        assert_eq!(enc.into_manifest().unwrap(), expected_manifest);
        let expected_ids: Vec<Vec<ShardId>> = expected.iter().map(|c| c.shards.ids().to_vec()).collect();
        assert_eq!(got, expected_ids);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn staged_encoding_with_an_outside_sealer_gives_the_same_bytes() {
    // The browser chunks the file itself, reads each chunk into the encoder's own buffer and
    // seals through WebCrypto between `stage_read` and `complete`. Whatever the file (empty,
    // text, noise, several chunks), staged from a slice (`stage`) or read in place
    // (`stage_read`), the shards and the manifest must equal the one-call encoder's, and the
    // staged decoder must read them back.
    let files = [Vec::new(), text(1, 5 * CS as usize + 99), noise(2, 3 * CS as usize)];
    for (data, in_place) in files.iter().flat_map(|d| [(d, false), (d, true)]) {
        let (key, file_id) = (FileKey::generate(), FileId::random());
        let (expected, expected_manifest) = encode_all(&key, file_id, Redundancy::DEFAULT, CS, data).unwrap();

        let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(CS as usize).collect()
        };
        // Each chunk is staged and sealed before the one before it is completed (a caller may
        // seal one chunk while sharding the last).
        let mut got = Vec::new();
        let mut ahead: Option<(disktro_core::StagedChunk, Vec<u8>)> = None;
        for (i, piece) in pieces.iter().enumerate() {
            let last = i + 1 == pieces.len();
            let staged = if in_place {
                let mut buf = enc.read_buffer();
                buf[BODY_HEADER_LEN..BODY_HEADER_LEN + piece.len()].copy_from_slice(piece);
                enc.stage_read(buf, piece.len(), last).unwrap()
            } else {
                enc.stage(piece, last)
            };
            let sealed = seal_outside(&key, &file_id, &staged);
            if let Some((staged, sealed)) = ahead.replace((staged, sealed)) {
                got.push(enc.complete(staged, sealed).unwrap());
            }
        }
        let (staged, sealed) = ahead.unwrap();
        got.push(enc.complete(staged, sealed).unwrap());
        let manifest = enc.into_manifest().unwrap();
        assert_eq!(manifest, expected_manifest);
        for (a, b) in got.iter().zip(&expected) {
            assert_eq!(a.shards.ids(), b.shards.ids());
        }

        let mut dec = Decoder::new(&key, &manifest, data.len() as u64).unwrap();
        let mut out = Vec::new();
        for c in &got {
            let rebuilt = dec.rebuild(c.index, offered(c, |_| true)).unwrap();
            let opened = open_outside(&key, &file_id, &rebuilt);
            out.extend_from_slice(&dec.complete(rebuilt, opened).unwrap());
        }
        dec.finish().unwrap();
        assert_eq!(&out, data);
    }
}

#[cfg_attr(target_arch = "wasm32", wasm_bindgen_test)]
#[cfg_attr(not(target_arch = "wasm32"), test)]
fn staged_encoding_refuses_what_would_corrupt_the_manifest() {
    // Tried: a short chunk that is not the last, a truncated seal, a chunk after the last, a
    // manifest before the last chunk, chunks completed out of the order staged, and staging on
    // after a refusal. Each must be refused, never recorded, and no chunk index is handed out
    // twice (two plaintexts sealed under one nonce).
    let (key, file_id) = (FileKey::generate(), FileId::random());
    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    let staged = enc.stage(&[7u8; 10], false);
    let sealed = seal_outside(&key, &file_id, &staged);
    assert!(matches!(enc.complete(staged, sealed), Err(Error::InvalidParams(_))));
    let again = enc.stage(&[7u8; CS as usize], false);
    assert_eq!(again.index, 1, "a refused chunk's index is not handed out again");
    let sealed = seal_outside(&key, &file_id, &again);
    assert!(matches!(
        enc.complete(again, sealed),
        Err(Error::ChunkOutOfOrder { index: 1, expected: 0 })
    ));

    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    let first = enc.stage(&[7u8; CS as usize], false);
    let second = enc.stage(&[8u8; 10], true);
    let sealed = seal_outside(&key, &file_id, &second);
    assert!(matches!(
        enc.complete(second, sealed),
        Err(Error::ChunkOutOfOrder { index: 1, expected: 0 })
    ));
    drop(first);

    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    let staged = enc.stage(&[7u8; CS as usize], false);
    let mut sealed = seal_outside(&key, &file_id, &staged);
    sealed.pop();
    assert!(matches!(enc.complete(staged, sealed), Err(Error::InvalidParams(_))));

    let mut enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    let staged = enc.stage(&[7u8; 10], true);
    let sealed = seal_outside(&key, &file_id, &staged);
    enc.complete(staged, sealed).unwrap();
    let staged = enc.stage(&[7u8; 10], true);
    let sealed = seal_outside(&key, &file_id, &staged);
    assert!(matches!(enc.complete(staged, sealed), Err(Error::StreamExtended)));

    let enc = Encoder::with_chunk_size(&key, file_id, Redundancy::DEFAULT, CS).unwrap();
    assert!(matches!(enc.into_manifest(), Err(Error::StreamTruncated)));
}
