//! The codec sample: a fixed input run through the whole upload path (squeeze, seal, shard,
//! signed manifest) with fixed keys. The server computes it natively and the browser as wasm32;
//! equal digests show the two builds agree byte for byte on real data, on the visitor's machine.

use disktro_core::chunk::encode_all;
use disktro_core::keys::Keypair;
use disktro_core::{FileId, FileKey, Redundancy};

/// Size of the sample: two full 4 MiB chunks and a short one, half text, half noise.
pub const SAMPLE_LEN: usize = 9 * 1024 * 1024;

/// Deterministic sample bytes: compressible text followed by incompressible noise.
pub fn sample() -> Vec<u8> {
    let mut data = Vec::with_capacity(SAMPLE_LEN);
    let words = [
        "erasure ",
        "coded ",
        "shards ",
        "sealed ",
        "in ",
        "your ",
        "browser, ",
        "never ",
        "plaintext.\n",
    ];
    let mut i = 0usize;
    while data.len() < SAMPLE_LEN / 2 {
        data.extend_from_slice(words[(i * 5 + i / 7) % words.len()].as_bytes());
        i += 1;
    }
    data.truncate(SAMPLE_LEN / 2);
    let mut noise = vec![0u8; SAMPLE_LEN - data.len()];
    blake3::Hasher::new()
        .update(b"disktro self-check")
        .finalize_xof()
        .fill(&mut noise);
    data.extend_from_slice(&noise);
    data
}

/// Result of one run: digest over the signed manifest and every shard, and what it cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleDigest {
    pub digest: String,
    pub chunks: usize,
    pub shards: usize,
    pub stored_bytes: u64,
}

const KEY: [u8; 32] = [0x5e; 32];
const OWNER: [u8; 32] = [0x0c; 32];
const FILE: FileId = FileId([0xd1; 16]);

/// Encode the sample and digest everything that would leave the machine.
pub fn digest(data: &[u8]) -> SampleDigest {
    let (chunks, manifest) = encode_all(
        &FileKey::from_bytes(KEY),
        FILE,
        Redundancy::DEFAULT,
        disktro_core::DEFAULT_CHUNK_SIZE,
        data,
    )
    .expect("the sample is a valid input");
    digest_of(&chunks, manifest)
}

fn digest_of(chunks: &[disktro_core::EncodedChunk], manifest: disktro_core::Manifest) -> SampleDigest {
    let owner = Keypair::from_secret_bytes(&OWNER);
    let signed = manifest.sign(&owner).expect("the encoder produces valid manifests");
    let mut hasher = blake3::Hasher::new();
    hasher.update(signed.as_bytes());
    let mut shards = 0;
    for c in chunks {
        for (_, bytes) in c.shards.iter() {
            hasher.update(bytes);
            shards += 1;
        }
    }
    SampleDigest {
        digest: hasher.finalize().to_hex().to_string(),
        chunks: chunks.len(),
        shards,
        stored_bytes: signed.manifest().stored_size(),
    }
}

/// The browser's upload path on the sample: chunks staged by the encoder and sealed by `engine`
/// (WebCrypto, or the `aes-gcm` crate compiled to WebAssembly), as the pipeline worker does.
#[cfg(feature = "hydrate")]
pub async fn digest_staged(
    data: &[u8],
    engine: crate::browser::seal::Engine,
) -> Result<SampleDigest, crate::error::Failure> {
    use disktro_core::Encoder;
    let key = FileKey::from_bytes(KEY);
    let cipher = crate::browser::seal::ChunkCipher::new(&key, &FILE, engine).await?;
    if cipher.engine() != engine {
        return Err(crate::error::Failure::Browser(format!(
            "{engine:?} is not available in this context"
        )));
    }
    let mut encoder = Encoder::new(&key, FILE, Redundancy::DEFAULT);
    let pieces: Vec<&[u8]> = data.chunks(disktro_core::DEFAULT_CHUNK_SIZE as usize).collect();
    let mut chunks = Vec::with_capacity(pieces.len());
    for (i, piece) in pieces.iter().enumerate() {
        let mut staged = encoder.stage(piece, i + 1 == pieces.len());
        let sealed = cipher.seal(&mut staged).await?;
        chunks.push(encoder.complete(staged, sealed)?);
    }
    let manifest = encoder.into_manifest()?;
    Ok(digest_of(&chunks, manifest))
}
