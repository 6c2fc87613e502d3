//! Throughput of the same pipeline as wasm32 under Node (one thread, WebAssembly SIMD, AES from the
//! aes-gcm crate: the browser seals through WebCrypto instead). Ignored in `make test`; `make bench`
//! runs it with `--include-ignored --nocapture` and records the figures.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::cast_possible_truncation)]

mod common;

use common::{noise, text};
use disktro_core::chunk::encode_all;
use disktro_core::seal::{BodyLayout, ChunkKey, Sealer};
use disktro_core::shard::Sharder;
use disktro_core::{DEFAULT_CHUNK_SIZE, Decoder, FileId, FileKey, Redundancy, ShardId};
use wasm_bindgen_test::{console_log, wasm_bindgen_test};

const CHUNK: usize = DEFAULT_CHUNK_SIZE as usize;

/// MB/s of `f` over `bytes`, run again until 200 ms have passed: `Date.now` counts whole
/// milliseconds, and one 4 MiB stage takes a handful of them.
fn mbps(bytes: usize, mut f: impl FnMut()) -> f64 {
    let start = js_sys::Date::now();
    let mut runs = 0u32;
    while runs == 0 || js_sys::Date::now() - start < 200.0 {
        f();
        runs += 1;
    }
    let ms = (js_sys::Date::now() - start).max(1.0);
    bytes as f64 * f64::from(runs) / 1e6 / (ms / 1000.0)
}

#[wasm_bindgen_test]
#[ignore = "a measurement, run by `make bench`"]
fn wasm32_pipeline_throughput() {
    let key = FileKey::from_bytes([1; 32]);
    let id = FileId([2; 16]);
    let chunk = noise(1, CHUNK);
    let sealer = Sealer::new(&ChunkKey::derive(&key, &id), id);
    let sharder = Sharder::new(Redundancy::DEFAULT);
    let sealed = sealer.seal(0, false, BodyLayout::Padded, &chunk);
    let shards = sharder.encode(&sealed);
    console_log!(
        "wasm32/stage/seal (aes-gcm crate): {:.0} MB/s",
        mbps(CHUNK, || {
            let _ = sealer.seal(0, false, BodyLayout::Padded, &chunk);
        })
    );
    console_log!(
        "wasm32/stage/shard/encode_6_4: {:.0} MB/s",
        mbps(CHUNK, || {
            let _ = sharder.encode(&sealed);
        })
    );
    // Wider stripes at the same 1.67x expansion (the durability model's cheapest nines): the
    // parity work per byte grows with m. 9 + 6 and 12 + 8 are what the redundancy policy gives
    // larger networks.
    for (k, m) in [(9, 6), (12, 8), (18, 12)] {
        let wide = Sharder::new(Redundancy::new(k, m).unwrap());
        console_log!(
            "wasm32/stage/shard/encode_{k}_{m}: {:.0} MB/s",
            mbps(CHUNK, || {
                let _ = wide.encode(&sealed);
            })
        );
    }
    console_log!(
        "wasm32/stage/shard/ids_blake3: {:.0} MB/s",
        mbps(CHUNK, || {
            let _: Vec<ShardId> = (0..10).map(|i| ShardId::of(shards.shard(i))).collect();
        })
    );
    for (name, data) in [("random", noise(2, 4 * CHUNK)), ("text", text(3, 4 * CHUNK))] {
        let mut out = None;
        let enc = mbps(data.len(), || {
            out = Some(encode_all(&key, id, Redundancy::DEFAULT, DEFAULT_CHUNK_SIZE, &data).unwrap());
        });
        let (chunks, manifest) = out.unwrap();
        let dec = mbps(data.len(), || {
            let mut d = Decoder::new(&key, &manifest, data.len() as u64).unwrap();
            for c in &chunks {
                let slots = c.shards.iter().map(|(_, s)| Some(s.to_vec())).collect();
                d.decode_chunk(c.index, slots).unwrap();
            }
        });
        console_log!("wasm32/pipeline/{name}: encode {enc:.0} MB/s, decode (all data shards) {dec:.0} MB/s");
    }
}
