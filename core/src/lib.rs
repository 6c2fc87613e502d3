//! `disktro-core`: the one place where Disktro's formats live.
//!
//! The browser (wasm32), the storage workers, the server and the CLI all link this crate, so they
//! agree byte-for-byte on every format. It does no I/O, spawns nothing and keeps no global state:
//! callers feed bytes in and take bytes out.
//!
//! The upload data path, module by module:
//!
//! 1. [`chunk`]: cut the file into chunks (4 MiB by default) as bytes stream in;
//! 2. [`squeeze`]: compress a chunk with zstd only when that clearly pays;
//! 3. [`seal`]: AES-256-GCM under a per-file key, STREAM nonces, context-binding associated data;
//! 4. [`shard`]: Reed-Solomon into k data + m parity shards, each named by its BLAKE3 hash.
//!
//! Around it: [`manifest`] (the signed list of chunks and shards), [`metadata`] (sealed name, type
//! and size), [`keys`] (password → keys, key wrapping, identity keys, share-link keys), [`token`]
//! (server-signed capabilities and worker receipts), [`wire`] (worker WebSocket frames) and
//! [`audit`] (BLAKE3 verified-slice proofs); [`fetch`] is the readers' rule for which shards to
//! ask for and when to hedge; [`api`] is the JSON of the server's API, and
//! [`api::node`] with [`inventory`] the contract between the server and its storage workers.

#![cfg_attr(test, allow(clippy::cast_possible_truncation))]

pub mod api;
pub mod audit;
pub mod chunk;
mod encoding;
mod error;
pub mod fetch;
pub mod folder;
pub mod ids;
pub mod inventory;
pub mod keys;
pub mod manifest;
pub mod metadata;
pub mod mux;
pub mod order;
pub mod padding;
pub mod recovery;
pub mod restripe;
pub mod seal;
pub mod shard;
pub mod squeeze;
pub mod token;
pub mod units;
pub mod upload;
pub mod wire;

pub use chunk::{Decoder, EncodedChunk, Encoder, OpenedBody, Plaintext, RebuiltChunk, StagedChunk};
pub use error::{Error, OpenError};
pub use ids::{FileId, FolderId, NodeId, Serial, ShardId, VerifiedShard};
pub use keys::FileKey;
pub use manifest::{ChunkEntry, ClearLayout, Manifest, SignedManifest};
pub use shard::Redundancy;

/// Version byte of every format defined in this crate. Each encoding starts with its own magic and
/// this version; decoders reject any other value.
pub const FORMAT_VERSION: u8 = 1;

/// Default plaintext chunk size: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: u32 = 4 * 1024 * 1024;

/// Smallest chunk size a manifest may declare (tests use small chunks; production uses 4 MiB).
pub const MIN_CHUNK_SIZE: u32 = 1024;

/// Largest chunk size a manifest may declare: bounds every buffer a decoder allocates.
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;

/// Fill `buf` with cryptographically secure random bytes from the platform (the OS natively,
/// `crypto.getRandomValues` in the browser).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The platform RNG failing is not something a caller can recover from or work around: refusing
    // to continue is the only safe answer.
    getrandom::fill(&mut out).expect("the platform random number generator is unavailable");
    out
}
