//! Codec benchmarks, one core, 4 MiB chunks: each stage alone, then whole encode and decode, and
//! zstd against gzip -6 on text. `make bench` runs this and records the figures in BENCHMARKS.md.
#![allow(clippy::print_stdout, clippy::cast_possible_truncation, missing_docs)]

use std::hint::black_box;
use std::io::Write as _;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use disktro_core::chunk::encode_all;
use disktro_core::seal::{BodyLayout, ChunkKey, Sealer};
use disktro_core::shard::Sharder;
use disktro_core::squeeze::Squeezer;
use disktro_core::{DEFAULT_CHUNK_SIZE, Decoder, Encoder, FileId, FileKey, Redundancy, ShardId};

const CHUNK: usize = DEFAULT_CHUNK_SIZE as usize;
/// Whole-pipeline inputs: 4 chunks.
const FILE: usize = 4 * CHUNK;

fn random(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new().update(b"bench").finalize_xof().fill(&mut out);
    out
}

/// Non-repeating English-like prose: Zipf-distributed words from a vocabulary of common words and
/// generated ones, with punctuation, numbers and line breaks. Neither gzip's 32 KiB window nor
/// zstd's larger one finds long repeats, so the comparison is about entropy coding, not luck.
pub fn text(len: usize) -> Vec<u8> {
    const COMMON: &str = "the of and to a in is it you that he was for on are with as I his they be at one have \
        this from or had by hot word but what some we can out other were all there when up use your how said an \
        each she which do their time if will way about many then them write would like so these her long make \
        thing see him two has look more day could go come did number sound no most people my over know water \
        than call first who may down side been now find any new work part take get place made live where after \
        back little only round man year came show every good me give our under name very through just form \
        sentence great think say help low line differ turn cause much mean before move right boy old too same \
        tell does set three want air well also play small end put home read hand port large spell add even land \
        here must big high such follow act why ask men change went light kind off need house picture try us \
        again animal point mother world near build self earth father head stand own page should country found \
        answer school grow study still learn plant cover food sun four between state keep eye never last let \
        thought city tree cross farm hard start might story saw far sea draw left late run while press close";
    let syllables = [
        "ka", "lo", "mi", "ren", "to", "sa", "vel", "din", "or", "qua", "ne", "bri", "st", "el", "ion",
    ];
    let mut vocab: Vec<String> = COMMON.split_whitespace().map(str::to_owned).collect();
    for i in 0..3000usize {
        let n = 2 + i % 3;
        vocab.push(
            (0..n)
                .map(|j| syllables[(i * 7 + j * 13 + i / 5) % syllables.len()])
                .collect(),
        );
    }
    // Zipf weights 1/rank, sampled with a 64-bit LCG through a cumulative table.
    let weights: Vec<f64> = (1..=vocab.len()).map(|r| 1.0 / r as f64).collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    let cumulative: Vec<f64> = weights
        .iter()
        .map(|w| {
            acc += w / total;
            acc
        })
        .collect();
    let mut state: u64 = 0x2545F4914F6CDD1D;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(len + 32);
    let mut words_in_sentence = 0;
    while out.len() < len {
        let r = next();
        let word = &vocab[cumulative.partition_point(|&c| c < r).min(vocab.len() - 1)];
        if words_in_sentence == 0 {
            let mut w = word.clone();
            w[..1].make_ascii_uppercase();
            out.extend_from_slice(w.as_bytes());
        } else {
            out.extend_from_slice(word.as_bytes());
        }
        words_in_sentence += 1;
        let p = next();
        if p < 0.02 {
            out.extend_from_slice(format!(" {}", (next() * 10000.0) as u32).as_bytes());
        }
        if p > 0.93 {
            out.extend_from_slice(if p > 0.99 { b".\n\n" } else { b". " });
            words_in_sentence = 0;
        } else if p > 0.88 {
            out.extend_from_slice(b", ");
        } else {
            out.push(b' ');
        }
    }
    out.truncate(len);
    out
}

fn stages(c: &mut Criterion) {
    let random_chunk = random(CHUNK);
    let text_chunk = text(CHUNK);
    let key = FileKey::from_bytes([1; 32]);
    let id = FileId([2; 16]);
    let sealer = Sealer::new(&ChunkKey::derive(&key, &id), id);
    let sharder = Sharder::new(Redundancy::DEFAULT);
    let sealed = sealer.seal(0, false, BodyLayout::Padded, &random_chunk);
    let shards = sharder.encode(&sealed);

    let mut g = c.benchmark_group("stage");
    g.throughput(Throughput::Bytes(CHUNK as u64));
    g.bench_function("squeeze/random", |b| {
        b.iter(|| Squeezer::new().squeeze(black_box(&random_chunk)).0)
    });
    g.bench_function("squeeze/text", |b| {
        b.iter(|| Squeezer::new().squeeze(black_box(&text_chunk)).0)
    });
    g.bench_function("seal", |b| {
        let mut buf = random_chunk.clone();
        b.iter(|| sealer.seal_in_place(0, false, BodyLayout::Padded, black_box(&mut buf)))
    });
    g.bench_function("shard/encode_6_4", |b| b.iter(|| sharder.encode(black_box(&sealed))));
    // Wider stripes at the same 1.67x expansion: parity work per byte grows with m. 9 + 6 and
    // 12 + 8 are what the redundancy policy gives larger networks (server/src/durability/policy.rs).
    for (k, m) in [(9u8, 6u8), (12, 8), (18, 12)] {
        let wide = Sharder::new(Redundancy::new(k, m).unwrap());
        g.bench_function(format!("shard/encode_{k}_{m}"), |b| {
            b.iter(|| wide.encode(black_box(&sealed)))
        });
    }
    g.bench_function("shard/ids_blake3", |b| {
        b.iter(|| {
            (0..10)
                .map(|i| ShardId::of(black_box(shards.shard(i))))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("shard/rebuild_4_lost", |b| {
        b.iter(|| {
            let mut slots: Vec<Option<Vec<u8>>> = (0..10).map(|i| (i >= 4).then(|| shards.shard(i).to_vec())).collect();
            sharder.rebuild(0, &mut slots, sealed.len()).unwrap()
        })
    });
    g.finish();
}

fn pipeline(c: &mut Criterion) {
    let key = FileKey::from_bytes([1; 32]);
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Bytes(FILE as u64));
    g.sample_size(20);
    for (name, data) in [("random", random(FILE)), ("text", text(FILE))] {
        g.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| {
                let mut enc = Encoder::new(&key, FileId([2; 16]), Redundancy::DEFAULT);
                // 1 MiB slices: what the browser and the CLI read at a time.
                let mut n = 0;
                for piece in data.chunks(1 << 20) {
                    n += enc.push(piece).unwrap().len();
                }
                n + usize::from(enc.finish().is_ok())
            })
        });
        let (chunks, manifest) =
            encode_all(&key, FileId([2; 16]), Redundancy::DEFAULT, DEFAULT_CHUNK_SIZE, &data).unwrap();
        let all: Vec<Vec<Option<Vec<u8>>>> = chunks
            .iter()
            .map(|c| c.shards.iter().map(|(_, s)| Some(s.to_vec())).collect())
            .collect();
        let parity_heavy: Vec<Vec<Option<Vec<u8>>>> = all
            .iter()
            .map(|c| {
                c.iter()
                    .enumerate()
                    .map(|(i, s)| if i < 4 { None } else { s.clone() })
                    .collect()
            })
            .collect();
        for (variant, input) in [("all_data_shards", &all), ("4_data_shards_lost", &parity_heavy)] {
            g.bench_function(format!("decode/{name}/{variant}"), |b| {
                b.iter_batched(
                    || input.clone(),
                    |input| {
                        let mut dec = Decoder::new(&key, &manifest, data.len() as u64).unwrap();
                        let mut n = 0;
                        for (i, slots) in input.into_iter().enumerate() {
                            n += dec.decode_chunk(i as u64, slots).unwrap().len();
                        }
                        n
                    },
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    g.finish();
}

/// Real text, reproducible on any machine that built the workspace: files with extension `ext`
/// from the registry sources of the lockfile-pinned dependencies, in sorted order, at most `len`.
fn registry_corpus(ext: &str, len: usize) -> Option<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).ok()?;
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))?;
    let index_dir = std::fs::read_dir(cargo_home.join("registry/src"))
        .ok()?
        .flatten()
        .next()?
        .path();
    let mut packages: Vec<String> = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_owned());
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name.take()) {
            packages.push(format!("{n}-{}", v.trim_matches('"')));
        }
    }
    packages.sort();
    let mut files = Vec::new();
    for p in packages {
        let mut stack = vec![index_dir.join(p)];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|x| x == ext) {
                    files.push(path);
                }
            }
        }
    }
    files.sort();
    let mut out = Vec::with_capacity(len);
    for f in files {
        out.extend(std::fs::read(f).ok()?);
        if out.len() >= len {
            break;
        }
    }
    out.truncate(len);
    // Fewer than 512 KiB would not say much about 4 MiB chunks.
    (out.len() >= 512 * 1024).then_some(out)
}

/// The real `gzip -6` over `data`: compressed size and seconds (falls back to flate2 level 6).
fn gzip6(data: &[u8]) -> (usize, f64, &'static str) {
    use std::process::{Command, Stdio};
    let t = Instant::now();
    if let Ok(mut child) = Command::new("gzip")
        .arg("-6")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        let mut stdin = child.stdin.take().expect("piped");
        let input = data.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output().expect("gzip runs");
        writer.join().expect("writer thread").expect("gzip reads its input");
        return (out.stdout.len(), t.elapsed().as_secs_f64(), "gzip -6");
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(data).unwrap();
    (e.finish().unwrap().len(), t.elapsed().as_secs_f64(), "flate2 level 6")
}

/// zstd (the squeeze step) against gzip -6 on each corpus: ratio and best-of-runs speed.
fn text_vs_gzip(_: &mut Criterion) {
    let corpora = [
        ("prose (dependency docs, .md)", registry_corpus("md", CHUNK)),
        ("code (dependency sources, .rs)", registry_corpus("rs", CHUNK)),
        ("synthetic Zipf prose", Some(text(CHUNK))),
    ];
    for (name, data) in corpora {
        let Some(data) = data else {
            println!("squeeze-vs-gzip/{name}: corpus unavailable");
            continue;
        };
        // Best of several runs on both sides: the fairest throughput figure on a shared machine.
        let mut squeezer = Squeezer::new();
        let mut zstd_len = data.len();
        let mut zstd_secs = f64::MAX;
        for _ in 0..7 {
            let t = Instant::now();
            zstd_len = squeezer.squeeze(&data).1.map_or(data.len(), |z| z.len());
            zstd_secs = zstd_secs.min(t.elapsed().as_secs_f64());
        }
        let (mut gzip_len, mut gzip_secs, mut tool) = (0, f64::MAX, "");
        for _ in 0..3 {
            let (len, secs, t) = gzip6(&data);
            (gzip_len, gzip_secs, tool) = (len, gzip_secs.min(secs), t);
        }
        let mb = data.len() as f64 / 1e6;
        println!(
            "squeeze-vs-gzip/{name}: zstd-{} {:.2}x at {:.0} MB/s; {tool} {:.2}x at {:.1} MB/s; speed {:.1}x, ratio {:+.1}%",
            disktro_core::squeeze::ZSTD_LEVEL,
            data.len() as f64 / zstd_len as f64,
            mb / zstd_secs,
            data.len() as f64 / gzip_len as f64,
            mb / gzip_secs,
            gzip_secs / zstd_secs,
            (gzip_len as f64 / zstd_len as f64 - 1.0) * 100.0,
        );
    }
}

criterion_group!(benches, text_vs_gzip, stages, pipeline);
criterion_main!(benches);
