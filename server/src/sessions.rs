//! Who is asking: browser sessions (cookie + CSRF token) and CLI API tokens (bearer).
//!
//! - A session cookie is 32 random bytes; the database keeps only their BLAKE3 hash, so a leaked
//!   table opens no session. Cookie: `HttpOnly; SameSite=Strict; Path=/`, plus `Secure` and the
//!   `__Host-` prefix when the server's public URL is `https://`.
//! - Every state-changing request made with a session must carry the session's CSRF token in
//!   `x-csrf-token` (the [`Writer`] extractor checks it). The token is handed out in the log-in
//!   answer and by `GET /api/v1/account`; another site can neither read it nor send the header.
//! - API tokens (`Authorization: Bearer dkt_…`) are not sent by browsers on their own, so they
//!   need no CSRF token.
//! - A **known device** is a browser or CLI that logged in to the account before: a successful
//!   log-in (or sign-up) hands out a device secret, in a cookie (`disktro_device`, the same
//!   attributes as the session's, a year long) and in the [`DEVICE_HEADER`] answer header for
//!   clients without cookies, which send it back in that header. Its only power is over log-in
//!   throttling ([`crate::throttle`]): attempts from a known device are counted under the device,
//!   not under the account, so strangers' wrong guesses cannot lock the owner out. It opens
//!   nothing by itself.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};

use crate::context::{Context, unix_now};
use crate::db::Db;
use crate::error::ServerError;
use crate::store::{self, StoreError};
use disktro_core::api::ErrorCode;

/// Sessions last a week from log-in.
pub const SESSION_TTL: i64 = 7 * 24 * 3600;
pub const CSRF_HEADER: &str = "x-csrf-token";
const TOKEN_PREFIX: &str = "dkt_";
/// A device is forgotten after a year without a log-in from it.
pub const DEVICE_TTL: i64 = 365 * 24 * 3600;
/// Request and answer header carrying a device secret for clients without cookies.
pub const DEVICE_HEADER: &str = "x-disktro-device";

fn secret() -> String {
    disktro_core::ids::to_hex(&disktro_core::random_bytes::<32>())
}

fn hash(secret: &str) -> String {
    blake3::hash(secret.as_bytes()).to_hex().to_string()
}

pub fn cookie_name(ctx: &Context) -> &'static str {
    if ctx.secure_cookies {
        "__Host-disktro_session"
    } else {
        "disktro_session"
    }
}

fn device_cookie_name(ctx: &Context) -> &'static str {
    if ctx.secure_cookies {
        "__Host-disktro_device"
    } else {
        "disktro_device"
    }
}

/// A known device: its secret (to hand out when new) and the hash the database keys it by.
pub struct Device {
    pub secret: String,
    pub id_hash: String,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Device { .. }")
    }
}

impl Device {
    fn from_secret(secret: String) -> Self {
        Self {
            id_hash: hash(&secret),
            secret,
        }
    }

    /// The device secret a request presents (cookie first, then header), if any.
    pub fn presented(ctx: &Context, headers: &HeaderMap) -> Option<Self> {
        let value = cookie_value(headers, device_cookie_name(ctx))
            .or_else(|| headers.get(DEVICE_HEADER).and_then(|v| v.to_str().ok()))?;
        // Only what we hand out: 64 hex digits.
        (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self::from_secret(value.to_ascii_lowercase()))
    }

    /// Whether this device is known to `account_id` (and was used within [`DEVICE_TTL`]).
    pub async fn known_to(&self, db: &Db, account_id: &str, now: i64) -> Result<bool, StoreError> {
        let owner = store::sessions::device_account(db, &self.id_hash, now - DEVICE_TTL).await?;
        Ok(owner.as_deref() == Some(account_id))
    }

    /// A new device for `account_id`, remembered.
    pub async fn create(db: &Db, account_id: &str, now: i64) -> Result<Self, StoreError> {
        let device = Self::from_secret(secret());
        store::sessions::insert_device(db, &device.id_hash, account_id, now).await?;
        Ok(device)
    }

    /// `Set-Cookie` for this device.
    pub fn cookie(&self, ctx: &Context) -> HeaderValue {
        let secure = if ctx.secure_cookies { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={DEVICE_TTL}{secure}",
            device_cookie_name(ctx),
            self.secret
        ))
        .expect("cookie text is ASCII")
    }
}

/// `Set-Cookie` for a session value (`None` clears it).
pub fn set_cookie(ctx: &Context, value: Option<&str>) -> HeaderValue {
    let secure = if ctx.secure_cookies { "; Secure" } else { "" };
    let text = match value {
        Some(v) => format!(
            "{}={v}; Path=/; HttpOnly; SameSite=Strict; Max-Age={SESSION_TTL}{secure}",
            cookie_name(ctx)
        ),
        None => format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}",
            cookie_name(ctx)
        ),
    };
    HeaderValue::from_str(&text).expect("cookie text is ASCII")
}

/// A new session: the cookie value (secret) and its CSRF token.
pub struct NewSession {
    pub cookie: String,
    pub csrf: String,
}

impl std::fmt::Debug for NewSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSession { .. }")
    }
}

pub async fn create(db: &Db, account_id: &str, now: i64) -> Result<NewSession, StoreError> {
    let session = NewSession {
        cookie: secret(),
        csrf: secret(),
    };
    store::sessions::insert_session(
        db,
        &hash(&session.cookie),
        account_id,
        &session.csrf,
        now,
        now + SESSION_TTL,
    )
    .await?;
    Ok(session)
}

/// How long an API token works unless its maker asks otherwise, and the longest it may.
pub const API_TOKEN_DAYS: u32 = 90;
pub const MAX_API_TOKEN_DAYS: u32 = 365;

/// A token's public id: the first 16 hex digits of its hash (the hash is one-way, so the id
/// tells nothing of the secret).
pub fn api_token_id(id_hash: &str) -> String {
    id_hash.chars().take(16).collect()
}

/// A new API token for the CLI, working for `days`; the secret (shown once), its public id and
/// its expiry.
pub async fn create_api_token(
    db: &Db,
    account_id: &str,
    name: &str,
    now: i64,
    days: u32,
) -> Result<(String, String, i64), StoreError> {
    let token = format!("{TOKEN_PREFIX}{}", secret());
    let id_hash = hash(&token);
    let expires_at = now + i64::from(days) * 86_400;
    store::sessions::insert_api_token(db, &id_hash, account_id, name, now, expires_at).await?;
    Ok((token, api_token_id(&id_hash), expires_at))
}

/// How a request was authenticated.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A browser session: its hash (to end it) and CSRF token.
    Session { id_hash: String, csrf: String },
    /// A bearer API token (its hash).
    ApiToken { id_hash: String },
}

/// An authenticated request (any method).
#[derive(Debug, Clone)]
pub struct Auth {
    pub account_id: String,
    pub credential: Credential,
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn not_logged_in() -> ServerError {
    ServerError::refused(ErrorCode::NotLoggedIn, "log in first (or pass an API token)")
}

impl FromRequestParts<Arc<Context>> for Auth {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Context>) -> Result<Self, ServerError> {
        let now = unix_now();
        if let Some(bearer) = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            let id_hash = hash(bearer.trim());
            let account_id = store::sessions::api_token_account(&ctx.db, &id_hash, now)
                .await?
                .ok_or_else(|| {
                    ServerError::refused(
                        ErrorCode::BadToken,
                        "the API token is not valid (expired or revoked); log in again",
                    )
                })?;
            return Ok(Self {
                account_id,
                credential: Credential::ApiToken { id_hash },
            });
        }
        let cookie = cookie_value(&parts.headers, cookie_name(ctx)).ok_or_else(not_logged_in)?;
        let id_hash = hash(cookie);
        let (account_id, csrf) = store::sessions::session(&ctx.db, &id_hash, now)
            .await?
            .ok_or_else(|| ServerError::refused(ErrorCode::SessionExpired, "the session has ended; log in again"))?;
        Ok(Self {
            account_id,
            credential: Credential::Session { id_hash, csrf },
        })
    }
}

/// An authenticated request allowed to change state: a session with its CSRF token, or an API
/// token.
#[derive(Debug, Clone)]
pub struct Writer(pub Auth);

impl FromRequestParts<Arc<Context>> for Writer {
    type Rejection = ServerError;

    async fn from_request_parts(parts: &mut Parts, ctx: &Arc<Context>) -> Result<Self, ServerError> {
        let auth = Auth::from_request_parts(parts, ctx).await?;
        if let Credential::Session { csrf, .. } = &auth.credential {
            let sent = parts
                .headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !crate::same_secret(sent.as_bytes(), csrf.as_bytes()) {
                return Err(ServerError::refused(
                    ErrorCode::CsrfRequired,
                    format!("state-changing requests need the session's {CSRF_HEADER} header"),
                ));
            }
        }
        Ok(Self(auth))
    }
}

/// End one session.
pub async fn end(db: &Db, id_hash: &str) -> Result<(), StoreError> {
    store::sessions::end_session(db, id_hash).await
}
