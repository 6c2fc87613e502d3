//! Share links: `/s/<share id>#<file key>`. The server keeps the policy (expiry, download limit,
//! revocation, an optional password verifier) and never the key, which lives in the fragment.
//!
//! A password is checked with a *proof* the link holder's client derives from the password and
//! the file key (`disktro_core::keys::share_password_proof`); the server stores its own Argon2id
//! hash of the proof. Wrong proofs are throttled per share like log-ins.
//!
//! Opening a share (`open`) shows what it is without counting; downloading (`download`) counts one
//! download atomically with the policy check, so a limit of N is N downloads even under races.

use std::time::Duration;

use disktro_core::api::{Base64, FileDownload, NewShare, ShareAccess, ShareInfo, ShareView};

use crate::accounts;
use crate::context::Context;
use crate::error::ServerError;
use crate::files;
use crate::store;
use crate::throttle;
use disktro_core::api::ErrorCode;

/// Expiry of a share unless asked otherwise: 7 days.
pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest expiry: 1 year.
pub const MAX_EXPIRY: Duration = Duration::from_secs(365 * 24 * 3600);

fn share_not_found() -> ServerError {
    ServerError::refused(ErrorCode::ShareNotFound, "no such share link")
}

fn gone(code: ErrorCode, message: &str) -> ServerError {
    ServerError::refused(code, message)
}

/// Create a share of the account's file.
pub async fn create(
    ctx: &Context,
    account_id: &str,
    file_hex: &str,
    req: NewShare,
    now: i64,
) -> Result<ShareView, ServerError> {
    if !store::files::owned_by(&ctx.db, account_id, file_hex).await? {
        return Err(ServerError::refused(ErrorCode::FileNotFound, "no such file"));
    }
    let expires_in = req.expires_in.unwrap_or(DEFAULT_EXPIRY.as_secs());
    if expires_in == 0 || expires_in > MAX_EXPIRY.as_secs() {
        return Err(ServerError::refused(
            ErrorCode::InvalidExpiry,
            format!("expires_in must be 1 to {} seconds", MAX_EXPIRY.as_secs()),
        ));
    }
    if req.max_downloads == Some(0) {
        return Err(ServerError::refused(
            ErrorCode::InvalidDownloadLimit,
            "max_downloads must be at least 1",
        ));
    }
    let password_hash = match &req.password_proof {
        Some(proof) => {
            let proof = accounts::auth_key(proof, "password_proof")?;
            Some(accounts::with_argon2(move || accounts::hash_auth_key(&proof)).await?)
        }
        None => None,
    };
    let id = Base64::from(disktro_core::random_bytes::<16>()).encode();
    let expires_at = now + i64::try_from(expires_in).unwrap_or(i64::MAX);
    store::shares::insert(
        &ctx.db,
        &store::shares::NewShare {
            id: &id,
            file_hex,
            account_id,
            created_at: now,
            expires_at,
            max_downloads: req.max_downloads,
            password_hash: password_hash.as_deref(),
        },
    )
    .await?;
    Ok(ShareView {
        share_id: id,
        file_id: file_hex
            .parse()
            .map_err(|_| ServerError::internal("a file id checked before"))?,
        created_at: now,
        expires_at,
        max_downloads: req.max_downloads.map(u64::from),
        downloads: 0,
        password: password_hash.is_some(),
        revoked: false,
    })
}

/// The account's shares, newest first; of one file when `file_hex` is given.
pub async fn list(ctx: &Context, account_id: &str, file_hex: Option<&str>) -> Result<Vec<ShareView>, ServerError> {
    let rows = store::shares::list(&ctx.db, account_id, file_hex).await?;
    Ok(rows.into_iter().map(|r| r.view).collect())
}

/// Revoke one of the account's shares (idempotent).
pub async fn revoke(ctx: &Context, account_id: &str, share_id: &str, now: i64) -> Result<ShareView, ServerError> {
    store::shares::revoke(&ctx.db, account_id, share_id, now).await?;
    let row = store::shares::get(&ctx.db, share_id, Some(account_id))
        .await?
        .ok_or_else(share_not_found)?;
    Ok(row.view)
}

/// The share's policy, checked in order: exists, not revoked, not expired, not exhausted,
/// password. Returns the view and the file's manifest, metadata and size.
async fn admit(
    ctx: &Context,
    share_id: &str,
    access: &ShareAccess,
    now: i64,
) -> Result<(ShareView, Sealed, u64), ServerError> {
    if share_id.len() != 22 {
        return Err(share_not_found());
    }
    let row = store::shares::get(&ctx.db, share_id, None)
        .await?
        .ok_or_else(share_not_found)?;
    let share = row.view;
    if share.revoked {
        return Err(gone(ErrorCode::ShareRevoked, "this link was revoked by its owner"));
    }
    if now >= share.expires_at {
        return Err(gone(ErrorCode::ShareExpired, "this link has expired"));
    }
    if share.max_downloads.is_some_and(|max| share.downloads >= max) {
        return Err(gone(
            ErrorCode::ShareExhausted,
            "this link has reached its download limit",
        ));
    }
    if let Some(hash) = row.password_hash {
        let Some(proof) = &access.password_proof else {
            return Err(ServerError::refused(
                ErrorCode::SharePasswordRequired,
                "this link needs its password",
            ));
        };
        let key = format!("share:{share_id}");
        let delay = throttle::attempt(&ctx.db, &key, None, now).await?;
        tokio::time::sleep(delay).await;
        let proof = accounts::auth_key(proof, "password_proof")?;
        let ok = accounts::with_argon2(move || accounts::verify_auth_key(&hash, &proof)).await?;
        if !ok {
            // Counted already, by `throttle::attempt`.
            return Err(ServerError::refused(
                ErrorCode::SharePasswordWrong,
                "the password is not right",
            ));
        }
        throttle::succeeded(&ctx.db, &key, None).await?;
    }
    let file = store::files::read(&ctx.db, &share.file_id.to_hex())
        .await?
        .ok_or_else(|| gone(ErrorCode::ShareRevoked, "the shared file was deleted"))?;
    let sealed = Sealed {
        manifest: file.manifest,
        metadata: file.metadata,
    };
    Ok((share, sealed, file.size))
}

/// The shared file's signed manifest and sealed metadata.
struct Sealed {
    manifest: Base64,
    metadata: Base64,
}

/// What the link points at, without counting a download.
pub async fn open(ctx: &Context, share_id: &str, access: &ShareAccess, now: i64) -> Result<ShareInfo, ServerError> {
    let (share, sealed, size) = admit(ctx, share_id, access, now).await?;
    Ok(ShareInfo {
        manifest: sealed.manifest,
        metadata: sealed.metadata,
        downloads_left: share.max_downloads.map(|m| m.saturating_sub(share.downloads)),
        share_id: share.share_id,
        file_id: share.file_id,
        size,
        expires_at: share.expires_at,
    })
}

/// Count one download and return what a reader needs.
pub async fn download(
    ctx: &Context,
    share_id: &str,
    access: &ShareAccess,
    now: i64,
) -> Result<FileDownload, ServerError> {
    let (share, _, _) = admit(ctx, share_id, access, now).await?;
    // The policy again, atomically with the count: two racing downloads of the last allowed one
    // cannot both pass.
    if !store::shares::count_download(&ctx.db, share_id, now).await? {
        return Err(gone(
            ErrorCode::ShareExhausted,
            "this link has reached its download limit",
        ));
    }
    files::download(ctx, &share.file_id.to_hex(), None, now).await
}
