//! The server's one error type. Domain modules (accounts, files, shares, nodes, …) return it;
//! only the HTTP layer (`api::error`) turns it into a response, so the domain never imports axum's
//! error plumbing. A refusal carries an [`ErrorCode`] (which fixes the HTTP status, see
//! `ErrorCode::status`) and a message for people; database and internal failures are logged with
//! their detail and answered with a generic message.

use disktro_core::api::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The request is refused for the reason `code` names.
    #[error("{message} ({code})")]
    Refused { code: ErrorCode, message: String },
    /// The request body was refused before it was read (too large, wrong type).
    #[error("request body refused ({status}): {message}")]
    Body { status: u16, message: String },
    /// The database failed; the request may be retried.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Something on our side that is not the client's doing.
    #[error("internal: {0}")]
    Internal(String),
}

impl ServerError {
    pub fn refused(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    /// Something on our side; `what` is logged where the response is made, the client gets a
    /// generic message.
    pub fn internal(what: impl Into<String>) -> Self {
        Self::Internal(what.into())
    }

    /// A request body that is not the JSON expected.
    /// A body that does not parse: `malformed_json`, or `invalid_field` when it is well-formed
    /// but a value does not decode (see `disktro_core::api::encoding`).
    pub fn json(e: serde_json::Error) -> Self {
        let message = e.to_string();
        match message.strip_prefix(disktro_core::api::encoding::REFUSED) {
            Some(why) => Self::refused(ErrorCode::InvalidField, format!("a field does not decode: {why}")),
            None => Self::refused(
                ErrorCode::MalformedJson,
                format!("the request body is not valid: {message}"),
            ),
        }
    }

    /// The code a client sees.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Refused { code, .. } => *code,
            Self::Body { .. } => ErrorCode::BodyRejected,
            Self::Database(_) => ErrorCode::DatabaseUnavailable,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The HTTP status a client sees.
    pub fn status(&self) -> u16 {
        match self {
            Self::Body { status, .. } => *status,
            other => other.code().status(),
        }
    }
}
