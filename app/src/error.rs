//! Why something in the app failed, by cause: the server refused (with its stable
//! code, which pages match on), a storage worker refused or went away, the browser lacks or failed
//! a facility, a value did not decode or verify, or sealed data did not open. Each carries its
//! message for people; [`Failure::Decrypt`] has one fixed message whatever the cause, as the key
//! rules require. Failures cross from the pipeline's Web Worker to the page as they are (serde),
//! and pages keep them in their state as they are (so this module builds for the server too).

use disktro_core::api::ErrorCode;
use serde::{Deserialize, Serialize};

/// An API call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiFailure {
    /// HTTP status, 0 when the server could not be reached.
    pub status: u16,
    /// The server's stable code; `None` when the server was not reached or its answer could not
    /// be read (or, on the share page, did not verify).
    pub code: Option<ErrorCode>,
    pub message: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ApiFailure {
    #[cfg(feature = "hydrate")]
    pub(crate) fn network(message: String) -> Self {
        Self {
            status: 0,
            code: None,
            message,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Failure {
    /// The server answered with an error, or could not be reached.
    #[error("{0}")]
    Api(ApiFailure),
    /// A storage worker refused, did not answer in time, sent bytes that do not check, or its
    /// connection closed.
    #[error("{0}")]
    Worker(String),
    /// The browser lacks a facility this needs, or it failed (a JavaScript exception).
    #[error("{0}")]
    Browser(String),
    /// A value from the server, a link or the tab's storage does not decode or verify.
    #[error("{0}")]
    Invalid(String),
    /// Sealed data did not open: a wrong key or damaged data, never told apart.
    #[error("{}", Failure::DECRYPT)]
    Decrypt,
    /// The person stopped it.
    #[error("cancelled")]
    Cancelled,
    /// This tab holds no account keys: nothing behind a log-in can be done.
    #[error("Log in first.")]
    SignedOut,
}

impl Failure {
    /// The one message of every failed decryption.
    pub const DECRYPT: &'static str = "cannot open: wrong key or altered data";

    /// A JavaScript exception, as its message.
    #[cfg(feature = "hydrate")]
    pub fn js(e: &wasm_bindgen::JsValue) -> Self {
        Self::Browser(crate::browser::js::describe(e))
    }

    pub fn browser(message: impl Into<String>) -> Self {
        Self::Browser(message.into())
    }

    pub fn worker(message: impl Into<String>) -> Self {
        Self::Worker(message.into())
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// The same failure told in other words (a page's plain words for a server's code); the code
    /// and the cause stay. A failed decryption keeps its one message.
    #[must_use]
    pub fn with_message(self, message: String) -> Self {
        match self {
            Self::Api(a) => Self::Api(ApiFailure { message, ..a }),
            Self::Worker(_) => Self::Worker(message),
            Self::Browser(_) => Self::Browser(message),
            Self::Invalid(_) => Self::Invalid(message),
            Self::Decrypt => Self::Decrypt,
            Self::Cancelled => Self::Cancelled,
            Self::SignedOut => Self::SignedOut,
        }
    }

    /// The server's stable code, when the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Api(a) => a.code,
            _ => None,
        }
    }
}

impl From<ApiFailure> for Failure {
    fn from(e: ApiFailure) -> Self {
        Self::Api(e)
    }
}

/// The codec's errors: a failed decryption is [`Failure::Decrypt`] whatever its cause; anything
/// else is a value that does not decode or check.
impl From<disktro_core::Error> for Failure {
    fn from(e: disktro_core::Error) -> Self {
        match e {
            disktro_core::Error::Open(_) => Self::Decrypt,
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// A download answer that does not verify against the key and the expected owner.
impl From<disktro_core::api::DownloadRefused> for Failure {
    fn from(e: disktro_core::api::DownloadRefused) -> Self {
        Self::Invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: ErrorCode) -> Failure {
        Failure::Api(ApiFailure {
            status: code.status(),
            code: Some(code),
            message: "from the server".to_owned(),
        })
    }

    /// Tried: every way the codec can fail to open sealed data. Must hold: one failure, one
    /// message, that says nothing about which check failed.
    #[test]
    fn every_failed_decryption_reads_the_same() {
        let key = disktro_core::FileKey::from_bytes([7; 32]);
        let other = disktro_core::FileKey::from_bytes([8; 32]);
        let id = disktro_core::FileId([1; 16]);
        let metadata = disktro_core::metadata::FileMetadata {
            name: "a.txt".to_owned(),
            mime: "text/plain".to_owned(),
            size: 1,
            attributes: Vec::new(),
        };
        let sealed = metadata.seal(&key, &id).unwrap();
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        for (case, bytes, key) in [("wrong key", &sealed, &other), ("altered byte", &flipped, &key)] {
            let e = disktro_core::metadata::FileMetadata::open(bytes, key, &id).unwrap_err();
            let failure = Failure::from(disktro_core::Error::from(e));
            assert_eq!(failure, Failure::Decrypt, "{case}");
            assert_eq!(failure.to_string(), Failure::DECRYPT, "{case}");
        }
    }

    /// Failures cross from the pipeline worker to the page as JSON; the server's code survives
    /// the crossing and a page's own words.
    #[test]
    fn the_servers_code_survives_the_worker_boundary_and_plain_words() {
        let failure = refused(ErrorCode::ShareExpired);
        let crossed: Failure = serde_json::from_str(&serde_json::to_string(&failure).unwrap()).unwrap();
        assert_eq!(crossed, failure);
        let told = crossed.with_message("This link has expired.".to_owned());
        assert_eq!(told.code(), Some(ErrorCode::ShareExpired));
        assert_eq!(told.to_string(), "This link has expired.");
        assert_eq!(Failure::Decrypt.with_message("details".to_owned()), Failure::Decrypt);
        assert_eq!(Failure::worker("gone").code(), None);
    }
}
