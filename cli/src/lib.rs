//! The Disktro client library: what the `disktro` command (and the server's end-to-end tests) use
//! to talk to a Disktro network on the same codec as the browser.
//!
//! - [`server`]: the server's JSON API, typed;
//! - [`account`]: sign-up and log-in with keys derived on this machine (the password never leaves);
//! - [`upload`]: a file (any size, streamed) → chunks → shards → workers → a committed manifest;
//! - [`download`]: a manifest → any k verified shards per chunk → the file, streamed.

pub mod account;
pub mod download;
pub mod server;
pub mod upload;

/// Why a client operation failed, by what a script would do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an API error (its stable code is kept).
    #[error("{message} ({code})")]
    Api { status: u16, code: String, message: String },
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

impl ClientError {
    /// The server's error code, for API errors.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}
