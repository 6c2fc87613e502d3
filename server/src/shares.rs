//! Share links: `/s/<share id>#<file key>`. The server keeps the policy (expiry, download limit,
//! revocation, an optional password verifier) and never the key, which lives in the fragment.
//!
//! A password is checked with a *proof* the link holder's client derives from the password and
//! the file key (`disktro_core::keys::share_password_proof`); the server stores its own Argon2id
//! hash of the proof. Wrong proofs are throttled per share like log-ins.
//!
//! Opening a share (`open`) shows what it is without counting. Downloading (`download`) reserves
//! one download atomically with the policy check, so a limit of N is N downloads even under
//! races, and the reservation counts only once the download is done, so an interrupted download
//! does not use up the link:
//!
//! - the answer carries a `download_id`; a recipient whose transfer failed asks again with it and
//!   gets fresh tokens for the same download ([`MAX_CONTINUES`] times at most), using no other;
//! - the recipient's client reports the download complete (`complete`): it counts for good;
//! - a client that never reports is judged by the workers: every get token of one download
//!   carries the same serial tag ([`disktro_core::Serial::tagged`]), workers claim the bytes they
//!   served per serial in their heartbeats ([`crate::rewards`]), and once the tokens have expired
//!   and the claims are in, the download counts if the workers served at least half of the
//!   file's data bytes, and its reservation is given back if not. A worker that was offline at
//!   the tokens' expiry and claims later is not waited for: the error favours the recipient.

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
/// Times one download may be given fresh tokens; after that a retry is a new download.
pub const MAX_CONTINUES: u32 = 8;
/// Finished downloads are forgotten this long after their tokens expired.
const KEEP_FINISHED: i64 = 7 * 24 * 3600;

/// How long after a download's tokens expired its workers' claims are all in: they claim in
/// their next heartbeat, so two intervals and a margin for a slow one.
fn claims_settled_after(heartbeat: Duration) -> i64 {
    i64::try_from(heartbeat.as_secs().saturating_mul(2))
        .unwrap_or(i64::MAX)
        .saturating_add(10)
}

/// The stored form of a download id: its BLAKE3 hash, so the table holds no usable capability.
fn download_id_hash(id: &str) -> String {
    blake3::Hasher::new_derive_key("disktro share download id v1")
        .update(id.as_bytes())
        .finalize()
        .to_hex()
        .to_string()
}

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
/// password. Downloads whose tokens have run out are settled first, so a lapsed one's
/// reservation is free again. Exhausted means every download is finished when `opening` (the
/// link still shows what it is while its last download is under way), and every download
/// finished or reserved when starting one, unless `continuing` one that holds its own
/// reservation. Returns the view, the downloads under way and the file as stored.
async fn admit(
    ctx: &Context,
    share_id: &str,
    access: &ShareAccess,
    intent: Intent,
    now: i64,
) -> Result<(ShareView, u64, store::files::StoredFile), ServerError> {
    if share_id.len() != 22 {
        return Err(share_not_found());
    }
    let under_way = store::shares::settle_downloads(
        &ctx.db,
        share_id,
        now - claims_settled_after(ctx.heartbeat_interval),
        KEEP_FINISHED,
    )
    .await?;
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
    let counted = match intent {
        Intent::Open => share.downloads.saturating_sub(under_way),
        Intent::Start => share.downloads,
        Intent::Continue => 0,
    };
    if share.max_downloads.is_some_and(|max| counted >= max) {
        return Err(exhausted(under_way));
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
    Ok((share, under_way, file))
}

/// Why [`admit`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    Open,
    Start,
    Continue,
}

fn exhausted(under_way: u64) -> ServerError {
    if under_way > 0 {
        gone(
            ErrorCode::ShareExhausted,
            "this link's last download is under way; if it fails, the link can be used again",
        )
    } else {
        gone(ErrorCode::ShareExhausted, "this link has reached its download limit")
    }
}

/// What the link points at, without counting a download.
pub async fn open(ctx: &Context, share_id: &str, access: &ShareAccess, now: i64) -> Result<ShareInfo, ServerError> {
    let (share, under_way, file) = admit(ctx, share_id, access, Intent::Open, now).await?;
    Ok(ShareInfo {
        downloads_under_way: under_way,
        manifest: file.manifest,
        metadata: file.metadata,
        downloads_left: share.max_downloads.map(|m| m.saturating_sub(share.downloads)),
        share_id: share.share_id,
        file_id: share.file_id,
        size: file.size,
        expires_at: share.expires_at,
    })
}

/// Start a download (reserving one of a limited link's), or continue the one `access` names
/// with fresh tokens, and return what a reader needs.
pub async fn download(
    ctx: &Context,
    share_id: &str,
    access: &ShareAccess,
    now: i64,
) -> Result<FileDownload, ServerError> {
    let intent = if access.download_id.is_some() {
        Intent::Continue
    } else {
        Intent::Start
    };
    let (share, under_way, file) = admit(ctx, share_id, access, intent, now).await?;
    let file_hex = share.file_id.to_hex();
    let expires_at = now.saturating_add(i64::try_from(ctx.get_token_ttl.as_secs()).unwrap_or(i64::MAX));
    if let Some(id) = &access.download_id {
        let hash = download_id_hash(id);
        if let Some(tag) = store::shares::continue_download(&ctx.db, share_id, &hash, expires_at, MAX_CONTINUES).await?
        {
            let tag =
                disktro_core::ids::from_hex::<8>(&tag).map_err(|_| ServerError::internal("a stored serial tag"))?;
            let mut answer = files::download(ctx, &file_hex, None, Some(tag), access.order_key, now).await?;
            answer.download_id = Some(id.clone());
            return Ok(answer);
        }
        // Finished, lapsed, continued too often or unknown: a new download, if the link has one.
    }
    let id = Base64::from(disktro_core::random_bytes::<16>()).encode();
    let tag: [u8; 8] = disktro_core::random_bytes();
    let started = store::shares::start_download(
        &ctx.db,
        &store::shares::NewDownload {
            id_hash: &download_id_hash(&id),
            share_id,
            tag: &disktro_core::ids::to_hex(&tag),
            needed: file.data_bytes / 2,
            started_at: now,
            expires_at,
        },
    )
    .await?;
    if !started {
        return Err(exhausted(under_way));
    }
    let mut answer = files::download(ctx, &file_hex, None, Some(tag), access.order_key, now).await?;
    answer.download_id = Some(id);
    Ok(answer)
}

/// The recipient finished download `download_id`: it counts for good.
pub async fn complete(ctx: &Context, share_id: &str, download_id: &str) -> Result<(), ServerError> {
    if !store::shares::complete_download(&ctx.db, share_id, &download_id_hash(download_id)).await? {
        return Err(ServerError::refused(
            ErrorCode::ShareNotFound,
            "no such download of this link",
        ));
    }
    Ok(())
}
