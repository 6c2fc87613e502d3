//! Errors as HTTP answers: JSON `{"error": {"code": "...", "message": "..."}}` with the stable
//! snake_case [`ErrorCode`] and a message for people. Internal detail (SQL, paths) is logged here,
//! never sent. This is the one place a [`ServerError`] becomes a response.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use disktro_core::api::{ErrorBody, ErrorCode, ErrorDetail};

use crate::error::ServerError;

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let code = self.code();
        let mut retry = None;
        let message = match self {
            ServerError::Refused { message, .. } | ServerError::Body { message, .. } => message,
            ServerError::Database(e) if crate::store::is_serialization_failure(&e) => {
                // Not an error of ours: the request runs again (`api::retry`); logged there.
                retry = Some(super::retry::SerializationFailure);
                "the database could not complete the request; try again".to_owned()
            }
            ServerError::Database(e) => {
                tracing::error!(error = %e, "database error");
                "the database could not complete the request; try again".to_owned()
            }
            ServerError::Internal(what) => {
                tracing::error!(what, "internal error");
                "internal error; the server log has the detail".to_owned()
            }
        };
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail { code, message },
            }),
        )
            .into_response();
        if let Some(mark) = retry {
            response.extensions_mut().insert(mark);
        }
        response
    }
}

/// `404 no_such_route`, for API paths that name nothing.
pub async fn no_such_route() -> ServerError {
    ServerError::refused(ErrorCode::NoSuchRoute, "no such API route")
}

/// A JSON request body, sent as `Content-Type: application/json`; another type is `415
/// body_rejected`, and a body that does not parse `400 malformed_json`, in the API's error shape
/// (axum's own `Json` answers plain text). The type is required because a cross-site form or
/// `fetch` may post `text/plain` without a CORS preflight, and must not reach log-in, sign-up
/// or a share's download.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// Whether a `Content-Type` header names JSON (`application/json`, parameters allowed).
fn is_json(content_type: Option<&axum::http::HeaderValue>) -> bool {
    content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ServerError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ServerError> {
        if !is_json(req.headers().get(axum::http::header::CONTENT_TYPE)) {
            return Err(ServerError::Body {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE.as_u16(),
                message: "send the body as JSON, with Content-Type: application/json".to_owned(),
            });
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ServerError::Body {
                status: e.status().as_u16(),
                message: e.body_text(),
            })?;
        serde_json::from_slice(&bytes).map(Self).map_err(ServerError::json)
    }
}
