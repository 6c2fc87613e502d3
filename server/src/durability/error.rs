//! Why a background pass (audit, repair, GC, rewards) or one item of it failed. A pass logs the
//! error and tries again on its next run; an item's failure is counted and the pass goes on.

use disktro_net::client::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// A step shared with the API (node keys, writable workers, stored base64) failed.
    #[error(transparent)]
    Shared(#[from] crate::error::ServerError),
    #[error("worker: {0}")]
    Worker(#[from] ClientError),
    /// A stored id, manifest or token does not decode.
    #[error("stored value: {0}")]
    Codec(#[from] disktro_core::Error),
    #[error("stored number out of range: {0}")]
    OutOfRange(#[from] std::num::TryFromIntError),
    #[error("the file was deleted")]
    FileDeleted,
    #[error("chunk {0} is not in the manifest")]
    ChunkNotInManifest(u64),
    #[error("placement row {0} disagrees with the manifest")]
    PlacementMismatch(usize),
    #[error("only {got} of the {needed} shards needed could be read")]
    TooFewShards { got: usize, needed: usize },
    #[error("rebuilt shards do not match the manifest's ids")]
    RebuiltMismatch,
    #[error("no worker took shard {shard} of chunk {chunk}")]
    NoTarget { shard: usize, chunk: u64 },
    #[error("chunk {chunk}: {source}")]
    Placement {
        chunk: u64,
        source: crate::placement::PlacementError,
    },
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl crate::store::Conflict for JobError {
    fn is_conflict(&self) -> bool {
        match self {
            Self::Database(e) => crate::store::is_serialization_failure(e),
            Self::Store(e) => e.is_conflict(),
            Self::Shared(e) => e.is_conflict(),
            _ => false,
        }
    }
}
