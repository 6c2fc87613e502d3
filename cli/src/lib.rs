//! The Disktro client library: what the `disktro` command (and the server's end-to-end tests) use
//! to talk to a Disktro network on the same codec as the browser.
//!
//! - [`server`]: the server's JSON API, typed;
//! - [`account`]: sign-up and log-in with keys derived on this machine (the password never leaves);
//! - [`upload`]: a file (any size, streamed) → chunks → shards → workers → a committed manifest;
//! - [`download`]: a manifest → any k verified shards per chunk → the file, streamed;
//! - [`restripe`]: a stored file re-encoded at the redundancy the server's policy gives now;
//! - [`tree`]: the account's folders with their names opened here, and paths resolved on them;
//! - [`link`]: share links (`/s/<id>#<key>`); [`session`]: the CLI's saved log-in;
//!   [`share_downloads`]: share downloads under way, continued by the next `disktro get`;
//!   [`worker_speeds`]: what earlier downloads measured of each worker, for the next to start from;
//! - [`gateway`]: `disktro gateway`, S3 on this machine over the same pipelines.

pub mod account;
pub mod download;
pub mod gateway;
pub mod link;
pub mod restripe;
pub mod resume;
pub mod server;
pub mod session;
pub mod share_downloads;
pub mod tree;
pub mod upload;
pub mod worker_speeds;

use disktro_core::api::ErrorCode;

/// Why a client operation failed, by what a script would do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an API error (its stable code is kept).
    #[error("{message} ({code})")]
    Api {
        status: u16,
        code: ErrorCode,
        message: String,
    },
    /// The server could not be reached.
    #[error("{0}")]
    Network(String),
    /// Not enough workers could be reached or answered.
    #[error("{0}")]
    Workers(String),
    /// Something did not verify: a manifest signature, shard bytes, a decryption, a wrong key.
    #[error("{0}")]
    Integrity(String),
    /// A local file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The request itself is wrong (a malformed link, a bad URL).
    #[error("{0}")]
    Usage(String),
}

/// Exit codes of the `disktro` command, one per kind of failure a script may handle.
pub mod exit {
    pub const OK: u8 = 0;
    pub const OTHER: u8 = 1;
    pub const USAGE: u8 = 2;
    pub const NOT_FOUND: u8 = 3;
    pub const UNAUTHORIZED: u8 = 4;
    pub const QUOTA: u8 = 5;
    pub const NETWORK: u8 = 6;
    pub const WORKERS: u8 = 7;
    pub const INTEGRITY: u8 = 8;
    pub const IO: u8 = 9;
    pub const LINK_GONE: u8 = 10;
}

impl ClientError {
    /// The same error with `note` after its message (what the user can do about it).
    pub fn noting(self, note: &str) -> Self {
        let add = |m: String| format!("{m}; {note}");
        match self {
            Self::Api { status, code, message } => Self::Api {
                status,
                code,
                message: add(message),
            },
            Self::Network(m) => Self::Network(add(m)),
            Self::Workers(m) => Self::Workers(add(m)),
            Self::Integrity(m) => Self::Integrity(add(m)),
            Self::Io(m) => Self::Io(add(m)),
            Self::Usage(m) => Self::Usage(add(m)),
        }
    }

    /// The exit code for this failure (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Api { status, code, .. } => match (*status, code) {
                (_, ErrorCode::NotEnoughWorkers) => exit::WORKERS,
                (_, ErrorCode::QuotaExceeded | ErrorCode::FileTooLarge | ErrorCode::TooManyUploads) => exit::QUOTA,
                (404, _) => exit::NOT_FOUND,
                (401 | 403 | 429, _) => exit::UNAUTHORIZED,
                (410, _) => exit::LINK_GONE,
                (400 | 409 | 413, _) => exit::USAGE,
                _ => exit::OTHER,
            },
            Self::Network(_) => exit::NETWORK,
            Self::Workers(_) => exit::WORKERS,
            Self::Integrity(_) => exit::INTEGRITY,
            Self::Io(_) => exit::IO,
            Self::Usage(_) => exit::USAGE,
        }
    }

    /// The server's error code, for API errors.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}
