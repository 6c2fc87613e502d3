//! The server's JSON API from the browser. Requests go to the same origin with the session
//! cookie; state-changing ones carry the session's CSRF token in `x-csrf-token`. Errors arrive as
//! [`ApiFailure`] with the server's stable code and its message for people.

use disktro_core::api::ErrorBody;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen_futures::JsFuture;

use super::js;

pub use crate::error::ApiFailure;

/// A client of `/api/v1` with the session's CSRF token (none before logging in).
#[derive(Debug, Clone, Default)]
pub struct Api {
    pub csrf: Option<String>,
}

impl Api {
    pub fn new(csrf: Option<String>) -> Self {
        Self { csrf }
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiFailure> {
        self.call("GET", path, None).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiFailure> {
        let json = serde_json::to_string(body).map_err(|e| ApiFailure::network(e.to_string()))?;
        self.call("POST", path, Some(json)).await
    }

    /// A POST or DELETE whose answer has no body worth reading.
    pub async fn send(&self, method: &str, path: &str) -> Result<(), ApiFailure> {
        self.call::<serde_json::Value>(method, path, None).await.map(|_| ())
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<String>) -> Result<T, ApiFailure> {
        let init = web_sys::RequestInit::new();
        init.set_method(method);
        init.set_credentials(web_sys::RequestCredentials::SameOrigin);
        let headers = web_sys::Headers::new().map_err(|e| ApiFailure::network(js::describe(&e)))?;
        let _ = headers.set("accept", "application/json");
        if let Some(csrf) = &self.csrf {
            let _ = headers.set("x-csrf-token", csrf);
        }
        if let Some(body) = &body {
            let _ = headers.set("content-type", "application/json");
            init.set_body(&wasm_bindgen::JsValue::from_str(body));
        }
        init.set_headers(&headers);
        let request = web_sys::Request::new_with_str_and_init(&format!("/api/v1{path}"), &init)
            .map_err(|e| ApiFailure::network(js::describe(&e)))?;
        let response = js::fetch(&request)
            .await
            .map_err(|e| ApiFailure::network(e.to_string()))?;
        let status = response.status();
        let text = match response.text() {
            Ok(p) => JsFuture::from(p)
                .await
                .ok()
                .and_then(|t| t.as_string())
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        if (200..300).contains(&status) {
            let text = if text.is_empty() { "null" } else { &text };
            return serde_json::from_str(text).map_err(|e| ApiFailure {
                status,
                code: None,
                message: format!("the server's answer could not be read: {e}"),
            });
        }
        Err(match serde_json::from_str::<ErrorBody>(&text) {
            Ok(body) => ApiFailure {
                status,
                code: Some(body.error.code),
                message: body.error.message,
            },
            Err(_) => ApiFailure {
                status,
                code: None,
                message: format!("the server answered {status}"),
            },
        })
    }
}
