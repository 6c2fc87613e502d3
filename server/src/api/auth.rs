//! `/api/v1/auth/*` and `/api/v1/account`: sign-up, pre-login, log-in, log-out, password change,
//! recovery keys (set one; set a new password with one), API tokens. See `accounts.rs` for what
//! the server keeps and `sessions.rs` for cookies and CSRF.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::accounts;
use crate::api::error::JsonBody;
use crate::client_addr::ClientAddr;
use crate::context::{Context, unix_now};
use crate::error::ServerError;
use crate::sessions::{self, Auth, Credential, Device, Writer};
use crate::store;
use crate::throttle;
use disktro_core::api::ErrorCode;
use disktro_core::api::{
    AccountView, Base64, ChangePassword, ErrorBody, KdfAnswer, LogIn, NewToken, PreLogin, Recover, RecoverAnswer,
    RecoverStart, Session, SetRecovery, SignUp, TokenAnswer, TokenInfo,
};

/// The KDF set-up to derive keys with: the account's, or a stable decoy.
#[utoipa::path(post, path = "/auth/prelogin", tag = "accounts", request_body = PreLogin,
    responses((status = 200, description = "the account's KDF set-up, or a stable decoy for unknown addresses", body = KdfAnswer), (status = 400, body = ErrorBody)))]
pub async fn prelogin(
    State(ctx): State<Arc<Context>>,
    JsonBody(req): JsonBody<PreLogin>,
) -> Result<Json<KdfAnswer>, ServerError> {
    let email = accounts::normalize_email(&req.email)?;
    let setup = match store::accounts::by_email(&ctx.db, &email).await? {
        Some(account) => account.kdf_setup,
        None => Base64::new(accounts::decoy_setup(&ctx.key, &email).encode()),
    };
    Ok(Json(KdfAnswer { kdf_setup: setup }))
}

fn with_cookie(ctx: &Context, status: StatusCode, cookie: Option<&str>, body: impl Serialize) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(SET_COOKIE, sessions::set_cookie(ctx, cookie));
    (status, headers, Json(body)).into_response()
}

/// Hand a new device secret to the client: a cookie for browsers, a header for the rest.
fn with_device(ctx: &Context, mut response: Response, device: &Device) -> Response {
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, device.cookie(ctx));
    headers.insert(
        sessions::DEVICE_HEADER,
        device.secret.parse().expect("hex is a header value"),
    );
    response
}

#[utoipa::path(post, path = "/auth/signup", tag = "accounts", request_body = SignUp,
    responses((status = 201, description = "account created; session cookie set", body = Session), (status = 400, body = ErrorBody), (status = 409, description = "e-mail taken", body = ErrorBody)))]
pub async fn signup(
    State(ctx): State<Arc<Context>>,
    addr: ClientAddr,
    JsonBody(req): JsonBody<SignUp>,
) -> Result<Response, ServerError> {
    throttle::sign_up(&ctx.db, addr.source().as_deref(), ctx.signups_per_source, unix_now()).await?;
    let recovery_hash = req.recovery.as_ref().map(accounts::check_recovery).transpose()?;
    // Argon2 runs off the async threads, one per core at a time.
    let (req, checked) = accounts::with_argon2(move || {
        let checked = accounts::check_sign_up(&req);
        (req, checked)
    })
    .await?;
    let (email, auth_hash) = checked?;
    let now = unix_now();
    let id = accounts::create(
        &ctx.db,
        &req,
        &email,
        &auth_hash,
        recovery_hash.as_deref(),
        ctx.default_quota,
        now,
    )
    .await?
    .ok_or_else(|| {
        ServerError::refused(
            ErrorCode::EmailTaken,
            "an account with this e-mail address exists; log in instead",
        )
    })?;
    let session = sessions::create(&ctx.db, &id, now).await?;
    let device = Device::create(&ctx.db, &id, now).await?;
    tracing::info!(account_id = %id, "account created");
    let body = Session {
        account_id: id,
        email,
        kdf_setup: req.kdf_setup,
        wrapped_identity: req.wrapped_identity,
        public_key: req.public_key,
        csrf_token: session.csrf,
    };
    let response = with_cookie(&ctx, StatusCode::CREATED, Some(&session.cookie), body);
    Ok(with_device(&ctx, response, &device))
}

fn wrong_credentials() -> ServerError {
    ServerError::refused(ErrorCode::WrongCredentials, "wrong e-mail address or password")
}

#[utoipa::path(post, path = "/auth/login", tag = "accounts", request_body = LogIn,
    responses((status = 200, description = "session cookie set", body = Session), (status = 401, body = ErrorBody), (status = 429, description = "too many failures", body = ErrorBody)))]
pub async fn login(
    State(ctx): State<Arc<Context>>,
    addr: ClientAddr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<LogIn>,
) -> Result<Response, ServerError> {
    let email = accounts::normalize_email(&req.email)?;
    let key = accounts::auth_key(&req.auth_key, "auth_key")?;
    let now = unix_now();
    let account = store::accounts::by_email(&ctx.db, &email).await?;
    // A device this account logged in from before is throttled on its own count, so strangers'
    // failures under the account's and the address's keys do not lock it out.
    let mut device = Device::presented(&ctx, &headers);
    if let (Some(d), Some(a)) = (&device, &account)
        && !d.known_to(&ctx.db, &a.id, now).await?
    {
        device = None;
    }
    let (account_key, address_key) = match (&device, &account) {
        (Some(d), Some(_)) => (format!("device:{}", d.id_hash), None),
        _ => (format!("email:{email}"), addr.source().map(|a| format!("addr:{a}"))),
    };
    let delay = throttle::attempt(&ctx.db, &account_key, address_key.as_deref(), now).await?;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let stored = account.as_ref().map(|a| a.auth_hash.clone());
    // Unknown addresses cost the same Argon2 run as known ones, so timing tells nothing.
    let ok = accounts::with_argon2(move || match stored {
        Some(hash) => accounts::verify_auth_key(&hash, &key),
        None => {
            let _ = accounts::hash_auth_key(&key);
            false
        }
    })
    .await?;
    let Some(account) = account.filter(|_| ok) else {
        // Counted already, by `throttle::attempt`.
        return Err(wrong_credentials());
    };
    throttle::succeeded(&ctx.db, &account_key, address_key.as_deref()).await?;
    opened(&ctx, account, device.as_ref(), now).await
}

/// The answer to a log-in or a recovery: a new session for `account`, and a device secret unless
/// the request came from a device known to it.
async fn opened(
    ctx: &Context,
    account: accounts::Account,
    known_device: Option<&Device>,
    now: i64,
) -> Result<Response, ServerError> {
    let session = sessions::create(&ctx.db, &account.id, now).await?;
    let new_device = match known_device {
        Some(known) => {
            store::sessions::touch_device(&ctx.db, &known.id_hash, now).await?;
            None
        }
        None => Some(Device::create(&ctx.db, &account.id, now).await?),
    };
    let body = Session {
        account_id: account.id,
        email: account.email,
        kdf_setup: account.kdf_setup,
        wrapped_identity: account.wrapped_identity,
        public_key: account.public_key,
        csrf_token: session.csrf,
    };
    let response = with_cookie(ctx, StatusCode::OK, Some(&session.cookie), body);
    Ok(match new_device {
        Some(d) => with_device(ctx, response, &d),
        None => response,
    })
}

fn wrong_recovery_key() -> ServerError {
    ServerError::refused(ErrorCode::WrongCredentials, "wrong e-mail address or recovery key")
}

/// The account whose recovery key `key` is, counted by the log-in throttle under its own keys
/// (`recover:…`), with the same answer whether the address, the key or a recovery key is missing.
async fn proven_recovery(
    ctx: &Context,
    addr: ClientAddr,
    email: &str,
    key: &Base64,
    now: i64,
) -> Result<accounts::Account, ServerError> {
    let email = accounts::normalize_email(email)?;
    let key = accounts::auth_key(key, "recovery_auth_key")?;
    let account_key = format!("recover:{email}");
    let address_key = addr.source().map(|a| format!("addr:{a}"));
    let delay = throttle::attempt(&ctx.db, &account_key, address_key.as_deref(), now).await?;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let account = store::accounts::by_email(&ctx.db, &email)
        .await?
        .filter(|a| {
            a.recovery
                .as_ref()
                .is_some_and(|(hash, _)| accounts::verify_recovery(hash, &key))
        })
        .ok_or_else(wrong_recovery_key)?;
    throttle::succeeded(&ctx.db, &account_key, address_key.as_deref()).await?;
    Ok(account)
}

/// Prove a recovery key; the answer is the identity key it wraps (which only the key opens).
#[utoipa::path(post, path = "/auth/recover/start", tag = "accounts", request_body = RecoverStart,
    responses((status = 200, body = RecoverAnswer), (status = 401, body = ErrorBody), (status = 429, description = "too many failures", body = ErrorBody)))]
pub async fn recover_start(
    State(ctx): State<Arc<Context>>,
    addr: ClientAddr,
    JsonBody(req): JsonBody<RecoverStart>,
) -> Result<Json<RecoverAnswer>, ServerError> {
    let account = proven_recovery(&ctx, addr, &req.email, &req.recovery_auth_key, unix_now()).await?;
    let (_, wrapped_identity) = account.recovery.expect("proven accounts have a recovery key");
    Ok(Json(RecoverAnswer {
        public_key: account.public_key,
        wrapped_identity,
    }))
}

/// Set a new password with the recovery key: the key material is swapped, every session and API
/// token of the account ends, and the answer is a new session.
#[utoipa::path(post, path = "/auth/recover", tag = "accounts", request_body = Recover,
    responses((status = 200, description = "password set; session cookie set", body = Session), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, description = "too many failures", body = ErrorBody)))]
pub async fn recover(
    State(ctx): State<Arc<Context>>,
    addr: ClientAddr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<Recover>,
) -> Result<Response, ServerError> {
    let now = unix_now();
    let account = proven_recovery(&ctx, addr, &req.email, &req.recovery_auth_key, now).await?;
    let check = SignUp {
        email: account.email.clone(),
        kdf_setup: req.new_kdf_setup.clone(),
        auth_key: req.new_auth_key.clone(),
        wrapped_identity: req.new_wrapped_identity.clone(),
        public_key: account.public_key,
        recovery: None,
    };
    let (_, new_hash) = accounts::with_argon2(move || accounts::check_sign_up(&check)).await??;
    let new = (&req.new_kdf_setup, new_hash.as_str(), &req.new_wrapped_identity);
    swap_key_material(&ctx, &account, new, "").await?;
    tracing::info!(account_id = %account.id, "password set with the recovery key; every session ended");
    let account = accounts::Account {
        kdf_setup: req.new_kdf_setup,
        wrapped_identity: req.new_wrapped_identity,
        auth_hash: new_hash,
        ..account
    };
    let device = Device::presented(&ctx, &headers);
    let known = match &device {
        Some(d) if d.known_to(&ctx.db, &account.id, now).await? => device.as_ref(),
        _ => None,
    };
    opened(&ctx, account, known, now).await
}

/// Swap the account's key material (set-up, auth hash, wrapped identity) in one statement guarded
/// by the hash it had when read, and end every session and API token but `keep`, in one
/// transaction.
async fn swap_key_material(
    ctx: &Context,
    account: &accounts::Account,
    (kdf_setup, auth_hash, wrapped_identity): (&Base64, &str, &Base64),
    keep: &str,
) -> Result<(), ServerError> {
    let mut tx = ctx.db.begin_write().await?;
    let swapped = store::accounts::swap_keys(
        &mut tx,
        &account.id,
        &account.auth_hash,
        kdf_setup,
        auth_hash,
        wrapped_identity,
    )
    .await?;
    if !swapped {
        return Err(ServerError::refused(
            ErrorCode::ChangedMeanwhile,
            "the password was changed meanwhile; log in again",
        ));
    }
    store::sessions::end_all_but(&mut tx, &account.id, keep).await?;
    tx.commit().await?;
    Ok(())
}

/// Set or replace the account's recovery key, proven by the current password.
#[utoipa::path(post, path = "/auth/recovery", tag = "accounts", request_body = SetRecovery,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)), security(("session" = []), ("token" = [])))]
pub async fn set_recovery(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    JsonBody(req): JsonBody<SetRecovery>,
) -> Result<StatusCode, ServerError> {
    let account = store::accounts::by_id(&ctx.db, &auth.account_id)
        .await?
        .ok_or_else(|| ServerError::refused(ErrorCode::NotLoggedIn, "the account no longer exists"))?;
    let hash = accounts::check_recovery(&req.recovery)?;
    let key = accounts::auth_key(&req.auth_key, "auth_key")?;
    let now = unix_now();
    let account_key = format!("email:{}", account.email);
    throttle::attempt(&ctx.db, &account_key, None, now).await?;
    let stored = account.auth_hash.clone();
    if !accounts::with_argon2(move || accounts::verify_auth_key(&stored, &key)).await? {
        return Err(ServerError::refused(
            ErrorCode::WrongCredentials,
            "the current password is wrong",
        ));
    }
    throttle::succeeded(&ctx.db, &account_key, None).await?;
    store::accounts::set_recovery(&ctx.db, &account.id, &hash, &req.recovery.wrapped_identity).await?;
    tracing::info!(account_id = %account.id, "recovery key set");
    Ok(StatusCode::NO_CONTENT)
}

/// End this session (or revoke this API token).
#[utoipa::path(post, path = "/auth/logout", tag = "accounts",
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)), security(("session" = []), ("token" = [])))]
pub async fn logout(State(ctx): State<Arc<Context>>, Writer(auth): Writer) -> Result<Response, ServerError> {
    match &auth.credential {
        Credential::Session { id_hash, .. } => sessions::end(&ctx.db, id_hash).await?,
        Credential::ApiToken { id_hash } => {
            store::sessions::revoke_api_token(&ctx.db, id_hash).await?;
        }
    }
    let mut headers = HeaderMap::new();
    headers.insert(SET_COOKIE, sessions::set_cookie(&ctx, None));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// Swap the account's key material in one statement guarded by the old hash, and end every other
/// session and API token.
#[utoipa::path(post, path = "/auth/password", tag = "accounts", request_body = ChangePassword,
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)), security(("session" = []), ("token" = [])))]
pub async fn change_password(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    JsonBody(req): JsonBody<ChangePassword>,
) -> Result<StatusCode, ServerError> {
    let account = store::accounts::by_id(&ctx.db, &auth.account_id)
        .await?
        .ok_or_else(|| ServerError::refused(ErrorCode::NotLoggedIn, "the account no longer exists"))?;
    let check = SignUp {
        email: account.email.clone(),
        kdf_setup: req.new_kdf_setup.clone(),
        auth_key: req.new_auth_key.clone(),
        wrapped_identity: req.new_wrapped_identity.clone(),
        public_key: account.public_key,
        recovery: None,
    };
    let old_key = accounts::auth_key(&req.auth_key, "auth_key")?;
    let old_hash = account.auth_hash.clone();
    let (ok, checked) = accounts::with_argon2(move || {
        (
            accounts::verify_auth_key(&old_hash, &old_key),
            accounts::check_sign_up(&check),
        )
    })
    .await?;
    if !ok {
        return Err(ServerError::refused(
            ErrorCode::WrongCredentials,
            "the current password is wrong",
        ));
    }
    let (_, new_hash) = checked?;
    let keep = match &auth.credential {
        Credential::Session { id_hash, .. } | Credential::ApiToken { id_hash } => id_hash.clone(),
    };
    let new = (&req.new_kdf_setup, new_hash.as_str(), &req.new_wrapped_identity);
    swap_key_material(&ctx, &account, new, &keep).await?;
    tracing::info!(account_id = %account.id, "password changed; other sessions ended");
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/account", tag = "accounts",
    responses((status = 200, body = AccountView), (status = 401, body = ErrorBody)), security(("session" = []), ("token" = [])))]
pub async fn account(State(ctx): State<Arc<Context>>, auth: Auth) -> Result<Json<AccountView>, ServerError> {
    let a = store::accounts::by_id(&ctx.db, &auth.account_id)
        .await?
        .ok_or_else(|| ServerError::refused(ErrorCode::NotLoggedIn, "the account no longer exists"))?;
    Ok(Json(AccountView {
        account_id: a.id,
        email: a.email,
        public_key: a.public_key,
        quota_bytes: a.quota_bytes,
        used_bytes: a.used_bytes,
        csrf_token: match auth.credential {
            Credential::Session { csrf, .. } => Some(csrf),
            Credential::ApiToken { .. } => None,
        },
        has_recovery: a.recovery.is_some(),
    }))
}

/// A new API token for the CLI (shown once).
#[utoipa::path(post, path = "/auth/tokens", tag = "accounts", request_body = NewToken,
    responses((status = 201, description = "shown once", body = TokenAnswer), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)), security(("session" = []), ("token" = [])))]
pub async fn create_token(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    JsonBody(req): JsonBody<NewToken>,
) -> Result<(StatusCode, Json<TokenAnswer>), ServerError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            "name must be 1 to 100 bytes",
        ));
    }
    let days = req.expires_in_days.unwrap_or(sessions::API_TOKEN_DAYS);
    if !(1..=sessions::MAX_API_TOKEN_DAYS).contains(&days) {
        return Err(ServerError::refused(
            ErrorCode::InvalidField,
            format!("expires_in_days must be 1 to {}", sessions::MAX_API_TOKEN_DAYS),
        ));
    }
    let (token, id, expires_at) = sessions::create_api_token(&ctx.db, &auth.account_id, name, unix_now(), days).await?;
    Ok((StatusCode::CREATED, Json(TokenAnswer { token, id, expires_at })))
}

/// The account's API tokens that still work (never their secrets).
#[utoipa::path(get, path = "/auth/tokens", tag = "accounts",
    responses((status = 200, body = Vec<TokenInfo>), (status = 401, body = ErrorBody)), security(("session" = []), ("token" = [])))]
pub async fn list_tokens(State(ctx): State<Arc<Context>>, auth: Auth) -> Result<Json<Vec<TokenInfo>>, ServerError> {
    let current = match &auth.credential {
        Credential::ApiToken { id_hash } => Some(id_hash.clone()),
        Credential::Session { .. } => None,
    };
    let tokens = store::sessions::api_tokens(&ctx.db, &auth.account_id, unix_now()).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenInfo {
                id: sessions::api_token_id(&t.id_hash),
                current: current.as_deref() == Some(t.id_hash.as_str()),
                name: t.name,
                created_at: t.created_at,
                expires_at: t.expires_at,
            })
            .collect(),
    ))
}

/// Revoke one of the account's API tokens by its public id; another account's is "not found".
#[utoipa::path(delete, path = "/auth/tokens/{id}", tag = "accounts",
    params(("id" = String, Path, description = "the token's public id (16 hex digits)")),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)), security(("session" = []), ("token" = [])))]
pub async fn revoke_token(
    State(ctx): State<Arc<Context>>,
    Writer(auth): Writer,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ServerError> {
    let well_formed = id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if well_formed && store::sessions::revoke_api_token_of(&ctx.db, &auth.account_id, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServerError::refused(ErrorCode::TokenNotFound, "no such API token"))
    }
}
