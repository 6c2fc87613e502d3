//! The crate's error type: one variant per cause, so callers (and the worker's error frames) can
//! map each to a precise answer.
//!
//! Decryption is the exception on purpose: every failed open (chunk, wrapped key, sealed metadata,
//! wrong password) is the single value [`OpenError`], so nothing about *why* it failed leaks.

use thiserror::Error;

/// The one error of every failed authenticated decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("cannot open: wrong key or altered data")]
pub struct OpenError;

/// Everything else that can go wrong in the codec.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error(transparent)]
    Open(#[from] OpenError),

    #[error("truncated input: {0}")]
    Truncated(&'static str),
    #[error("unexpected bytes after the end of {0}")]
    TrailingBytes(&'static str),
    #[error("not a {0}: wrong magic bytes")]
    BadMagic(&'static str),
    #[error("unsupported {what} version {found}")]
    UnsupportedVersion { what: &'static str, found: u8 },
    #[error("{what} too large: {len} bytes, at most {max}")]
    TooLarge { what: &'static str, len: u64, max: u64 },
    #[error("invalid encoding: {0}")]
    NonCanonical(&'static str),
    #[error("invalid parameters: {0}")]
    InvalidParams(&'static str),

    #[error("chunk {chunk}: only {available} usable shards, {needed} needed")]
    TooFewShards {
        chunk: u64,
        available: usize,
        needed: usize,
    },
    #[error("chunk {index} given out of order, expected chunk {expected}")]
    ChunkOutOfOrder { index: u64, expected: u64 },
    #[error("stream ended before its last chunk")]
    StreamTruncated,
    #[error("data after the last chunk")]
    StreamExtended,
    #[error("chunk {0}: its opened contents are malformed (lengths, codec or padding)")]
    CorruptChunk(u64),

    #[error("signature does not verify")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token issued by another server")]
    WrongIssuer,
    #[error("token names another worker")]
    WrongWorker,
    #[error("token is for another operation")]
    WrongOperation,
    #[error("shard not covered by the token")]
    NotInScope,

    #[error("the file's size does not fit its manifest")]
    SizeMismatch,

    #[error("key derivation parameters below the enforced minimum: {0}")]
    WeakKdfParams(&'static str),
    #[error("malformed share-link key")]
    BadLinkKey,
    #[error("this is not a recovery key: {0}")]
    BadRecoveryKey(&'static str),
    #[error("audit proof does not verify")]
    BadProof,
}

impl Error {
    /// `TooLarge` from in-memory lengths.
    pub(crate) fn too_large(what: &'static str, len: usize, max: usize) -> Self {
        Self::TooLarge {
            what,
            len: len as u64,
            max: max as u64,
        }
    }
}
