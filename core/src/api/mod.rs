//! The JSON of the server's API (`/api/v1`), shared by the server, the CLI and the browser app so
//! all three agree on every field. Binary values are base64url without padding ([`Base64`]), ids
//! and keys are lowercase hex (their own types), both decoded once where JSON is read
//! ([`encoding`]); times are unix seconds. With the `openapi` feature each type also describes itself for the
//! server's generated OpenAPI document.

pub mod encoding;
pub mod node;

pub use encoding::Base64;

use crate::keys::PublicKey;
use crate::{FileId, FolderId, NodeId, Serial};

use serde::{Deserialize, Serialize};

// ---- Errors ----

/// Every error answer of the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, snake_case: what scripts match on.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

/// Every error code the API answers with, one per cause; serialized in snake_case
/// (`FileNotFound` is `"file_not_found"`). Clients match on this enum, never on strings. A code
/// this build does not know (a newer server's) reads as [`ErrorCode::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: A field of the request is malformed (the message names it).
    InvalidField,
    /// 400: The e-mail address is not one.
    InvalidEmail,
    /// 400: The key-derivation parameters are below the minimum.
    WeakKdf,
    /// 400: A file id is not 64 hex digits.
    InvalidFileId,
    /// 400: The chunk size is out of range.
    InvalidChunkSize,
    /// 400: The (k, m) asked for is not allowed.
    InvalidRedundancy,
    /// 400: A share's expiry is in the past or too far ahead.
    InvalidExpiry,
    /// 400: A share's download limit is out of range.
    InvalidDownloadLimit,
    /// 400: A signed request's time is too far from the server's.
    ClockSkew,
    /// 400: The manifest does not decode or verify.
    BadManifest,
    /// 400: The sealed metadata is malformed.
    BadMetadata,
    /// 400: A worker receipt does not decode or verify.
    BadReceipt,
    /// 400: A wrapped key is not one (`DKWK`).
    BadWrappedKey,
    /// 400: The manifest disagrees with the upload it commits.
    ManifestMismatch,
    /// 400: A shard of the manifest has no receipt.
    MissingReceipt,
    /// 400: A receipt is for another upload's tokens.
    ReceiptNotForUpload,
    /// 400: More receipts than the manifest has shards.
    TooManyReceipts,
    /// 400: A receipt names a worker the server does not know.
    UnknownWorker,
    /// 400: The manifest is signed by another account's key.
    WrongOwner,
    /// 400: The request body is not the JSON expected.
    MalformedJson,
    /// 400: The request body was refused before it was read (size, type); the HTTP status says why.
    BodyRejected,
    /// 401: No session cookie or API token.
    NotLoggedIn,
    /// 401: The session ended; log in again.
    SessionExpired,
    /// 401: The API token or session is not valid.
    BadToken,
    /// 401: Wrong e-mail or password (the same answer for both).
    WrongCredentials,
    /// 401: The share link needs its password.
    SharePasswordRequired,
    /// 401: The share link's password proof is wrong.
    SharePasswordWrong,
    /// 401: A node request lacks its signature header.
    MissingSignature,
    /// 401: A node request's signature does not verify.
    BadSignature,
    /// 401: The worker's join token is wrong.
    JoinTokenRefused,
    /// 403: A state-changing request lacks the session's CSRF header.
    CsrfRequired,
    /// 404: No API route at this path.
    NoSuchRoute,
    /// 404: No such file in this account.
    FileNotFound,
    /// 404: No such open upload in this account.
    UploadNotFound,
    /// 404: No such share link.
    ShareNotFound,
    /// 404: No such storage node.
    NodeNotFound,
    /// 404: No such API token in this account.
    TokenNotFound,
    /// 404: No such folder in this account.
    FolderNotFound,
    /// 404: The server does not know this node: register again.
    UnknownNode,
    /// 409: An account with this e-mail exists.
    EmailTaken,
    /// 409: The file id is already committed.
    FileExists,
    /// 409: The account changed since it was read (a password change raced another).
    ChangedMeanwhile,
    /// 409: A heartbeat older than the last one seen.
    StaleHeartbeat,
    /// 409: The node is disqualified: it can neither drain nor return.
    NodeDisqualified,
    /// 409: The file already has the redundancy the policy keeps: there is nothing to restripe.
    AtPolicy,
    /// 409: The folder is not empty (delete it with `recursive=true`).
    FolderNotEmpty,
    /// 410: The share link was revoked (or its file deleted).
    ShareRevoked,
    /// 410: The share link has expired.
    ShareExpired,
    /// 410: The share link has reached its download limit.
    ShareExhausted,
    /// 413: The file is larger than the server accepts.
    FileTooLarge,
    /// 413: The account's quota does not have room.
    QuotaExceeded,
    /// 429: Too many failed attempts; the message says when to try again.
    TooManyAttempts,
    /// 429: The account has as many uploads open as it may; finish or cancel one first.
    TooManyUploads,
    /// 429: The upload has had its failed workers replaced as often as it may.
    TooManyReplans,
    /// 500: Something failed on the server; its log has the detail.
    Internal,
    /// 503: Too few storage workers are online for the redundancy needed.
    NotEnoughWorkers,
    /// 503: The database could not complete the request; try again.
    DatabaseUnavailable,
    /// A code this build does not know; the HTTP status and the message still say what happened.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Every code the server sends, in the order of the table in FORMAT.md.
    pub const ALL: &[ErrorCode] = &[
        ErrorCode::InvalidField,
        ErrorCode::InvalidEmail,
        ErrorCode::WeakKdf,
        ErrorCode::InvalidFileId,
        ErrorCode::InvalidChunkSize,
        ErrorCode::InvalidRedundancy,
        ErrorCode::InvalidExpiry,
        ErrorCode::InvalidDownloadLimit,
        ErrorCode::ClockSkew,
        ErrorCode::BadManifest,
        ErrorCode::BadMetadata,
        ErrorCode::BadReceipt,
        ErrorCode::BadWrappedKey,
        ErrorCode::ManifestMismatch,
        ErrorCode::MissingReceipt,
        ErrorCode::ReceiptNotForUpload,
        ErrorCode::TooManyReceipts,
        ErrorCode::UnknownWorker,
        ErrorCode::WrongOwner,
        ErrorCode::MalformedJson,
        ErrorCode::BodyRejected,
        ErrorCode::NotLoggedIn,
        ErrorCode::SessionExpired,
        ErrorCode::BadToken,
        ErrorCode::WrongCredentials,
        ErrorCode::SharePasswordRequired,
        ErrorCode::SharePasswordWrong,
        ErrorCode::MissingSignature,
        ErrorCode::BadSignature,
        ErrorCode::JoinTokenRefused,
        ErrorCode::CsrfRequired,
        ErrorCode::NoSuchRoute,
        ErrorCode::FileNotFound,
        ErrorCode::UploadNotFound,
        ErrorCode::ShareNotFound,
        ErrorCode::NodeNotFound,
        ErrorCode::TokenNotFound,
        ErrorCode::FolderNotFound,
        ErrorCode::UnknownNode,
        ErrorCode::EmailTaken,
        ErrorCode::FileExists,
        ErrorCode::ChangedMeanwhile,
        ErrorCode::StaleHeartbeat,
        ErrorCode::NodeDisqualified,
        ErrorCode::AtPolicy,
        ErrorCode::FolderNotEmpty,
        ErrorCode::ShareRevoked,
        ErrorCode::ShareExpired,
        ErrorCode::ShareExhausted,
        ErrorCode::FileTooLarge,
        ErrorCode::QuotaExceeded,
        ErrorCode::TooManyAttempts,
        ErrorCode::TooManyUploads,
        ErrorCode::TooManyReplans,
        ErrorCode::Internal,
        ErrorCode::NotEnoughWorkers,
        ErrorCode::DatabaseUnavailable,
    ];

    /// The HTTP status the server answers this code with.
    pub const fn status(self) -> u16 {
        match self {
            Self::InvalidField
            | Self::InvalidEmail
            | Self::WeakKdf
            | Self::InvalidFileId
            | Self::InvalidChunkSize
            | Self::InvalidRedundancy
            | Self::InvalidExpiry
            | Self::InvalidDownloadLimit
            | Self::ClockSkew
            | Self::BadManifest
            | Self::BadMetadata
            | Self::BadReceipt
            | Self::BadWrappedKey
            | Self::ManifestMismatch
            | Self::MissingReceipt
            | Self::ReceiptNotForUpload
            | Self::TooManyReceipts
            | Self::UnknownWorker
            | Self::WrongOwner
            | Self::MalformedJson
            | Self::BodyRejected => 400,
            Self::NotLoggedIn
            | Self::SessionExpired
            | Self::BadToken
            | Self::WrongCredentials
            | Self::SharePasswordRequired
            | Self::SharePasswordWrong
            | Self::MissingSignature
            | Self::BadSignature
            | Self::JoinTokenRefused => 401,
            Self::CsrfRequired => 403,
            Self::NoSuchRoute
            | Self::FileNotFound
            | Self::UploadNotFound
            | Self::ShareNotFound
            | Self::NodeNotFound
            | Self::TokenNotFound
            | Self::FolderNotFound
            | Self::UnknownNode => 404,
            Self::EmailTaken
            | Self::FileExists
            | Self::ChangedMeanwhile
            | Self::StaleHeartbeat
            | Self::NodeDisqualified
            | Self::AtPolicy
            | Self::FolderNotEmpty => 409,
            Self::ShareRevoked | Self::ShareExpired | Self::ShareExhausted => 410,
            Self::FileTooLarge | Self::QuotaExceeded => 413,
            Self::TooManyAttempts | Self::TooManyUploads | Self::TooManyReplans => 429,
            Self::Internal => 500,
            Self::NotEnoughWorkers | Self::DatabaseUnavailable => 503,
            Self::Unknown => 500,
        }
    }

    /// The snake_case name, as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidField => "invalid_field",
            Self::InvalidEmail => "invalid_email",
            Self::WeakKdf => "weak_kdf",
            Self::InvalidFileId => "invalid_file_id",
            Self::InvalidChunkSize => "invalid_chunk_size",
            Self::InvalidRedundancy => "invalid_redundancy",
            Self::InvalidExpiry => "invalid_expiry",
            Self::InvalidDownloadLimit => "invalid_download_limit",
            Self::ClockSkew => "clock_skew",
            Self::BadManifest => "bad_manifest",
            Self::BadMetadata => "bad_metadata",
            Self::BadReceipt => "bad_receipt",
            Self::BadWrappedKey => "bad_wrapped_key",
            Self::ManifestMismatch => "manifest_mismatch",
            Self::MissingReceipt => "missing_receipt",
            Self::ReceiptNotForUpload => "receipt_not_for_upload",
            Self::TooManyReceipts => "too_many_receipts",
            Self::UnknownWorker => "unknown_worker",
            Self::WrongOwner => "wrong_owner",
            Self::MalformedJson => "malformed_json",
            Self::BodyRejected => "body_rejected",
            Self::NotLoggedIn => "not_logged_in",
            Self::SessionExpired => "session_expired",
            Self::BadToken => "bad_token",
            Self::WrongCredentials => "wrong_credentials",
            Self::SharePasswordRequired => "share_password_required",
            Self::SharePasswordWrong => "share_password_wrong",
            Self::MissingSignature => "missing_signature",
            Self::BadSignature => "bad_signature",
            Self::JoinTokenRefused => "join_token_refused",
            Self::CsrfRequired => "csrf_required",
            Self::NoSuchRoute => "no_such_route",
            Self::FileNotFound => "file_not_found",
            Self::UploadNotFound => "upload_not_found",
            Self::ShareNotFound => "share_not_found",
            Self::NodeNotFound => "node_not_found",
            Self::TokenNotFound => "token_not_found",
            Self::UnknownNode => "unknown_node",
            Self::EmailTaken => "email_taken",
            Self::FileExists => "file_exists",
            Self::ChangedMeanwhile => "changed_meanwhile",
            Self::StaleHeartbeat => "stale_heartbeat",
            Self::NodeDisqualified => "node_disqualified",
            Self::AtPolicy => "at_policy",
            Self::FolderNotEmpty => "folder_not_empty",
            Self::FolderNotFound => "folder_not_found",
            Self::ShareRevoked => "share_revoked",
            Self::ShareExpired => "share_expired",
            Self::ShareExhausted => "share_exhausted",
            Self::FileTooLarge => "file_too_large",
            Self::QuotaExceeded => "quota_exceeded",
            Self::TooManyAttempts => "too_many_attempts",
            Self::TooManyUploads => "too_many_uploads",
            Self::TooManyReplans => "too_many_replans",
            Self::Internal => "internal",
            Self::NotEnoughWorkers => "not_enough_workers",
            Self::DatabaseUnavailable => "database_unavailable",
            Self::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// ---- Server ----

/// `GET /health`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerHealth {
    pub status: String,
    pub version: String,
    /// Version byte of every codec format this server speaks.
    pub format_version: u8,
}

// ---- Accounts ----

/// What a client sends to sign up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    pub email: String,
    /// base64url of the "DKKP" encoding.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kdf_setup: Base64,
    /// base64url, 32 bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub auth_key: Base64,
    /// base64url of the identity key wrapped under the master key.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_identity: Base64,
    /// hex, 32 bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    /// The recovery key's part the server keeps ([`crate::recovery`]).
    #[serde(default)]
    pub recovery: Option<RecoverySetup>,
}

/// What the server keeps of a recovery key: a hash of its auth key, and the identity key wrapped
/// under its master key (which the server cannot open).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverySetup {
    /// base64url, 32 bytes: the recovery auth key.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub auth_key: Base64,
    /// base64url of the identity key wrapped under the recovery master key.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_identity: Base64,
}

/// `POST /auth/recovery`: set or replace the account's recovery key. The current password's auth
/// key proves the owner is at the keyboard (a stolen session alone cannot plant a key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SetRecovery {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub auth_key: Base64,
    pub recovery: RecoverySetup,
}

/// `POST /auth/recover/start`: prove a recovery key, get the identity it wraps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverStart {
    pub email: String,
    /// base64url, 32 bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub recovery_auth_key: Base64,
}

/// The answer to [`RecoverStart`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoverAnswer {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    /// The identity key wrapped under the recovery master key.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_identity: Base64,
}

/// `POST /auth/recover`: a new password, proven by the recovery key. Every session and API token
/// of the account ends; the answer is a new session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Recover {
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub recovery_auth_key: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new_kdf_setup: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new_auth_key: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new_wrapped_identity: Base64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PreLogin {
    pub email: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KdfAnswer {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kdf_setup: Base64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub account_id: String,
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kdf_setup: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_identity: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    pub csrf_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LogIn {
    pub email: String,
    /// base64url, 32 bytes.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub auth_key: Base64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The current auth key, base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub auth_key: Base64,
    /// The new set-up, auth key and identity wrapped under the new master key.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new_kdf_setup: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new_auth_key: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub new_wrapped_identity: Base64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountView {
    pub account_id: String,
    pub email: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    pub quota_bytes: i64,
    pub used_bytes: i64,
    /// For browser sessions: the token state-changing requests must send.
    pub csrf_token: Option<String>,
    /// Whether the account has a recovery key.
    #[serde(default)]
    pub has_recovery: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Days until the token stops working, 1 to 365 [default: 90].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenAnswer {
    /// The secret, shown once.
    pub token: String,
    /// The token's public id, for listing and revoking it.
    pub id: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// One API token of the account, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    /// Public id (16 hex digits), for revoking it.
    pub id: String,
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
    /// Whether this request was made with it.
    pub current: bool,
}

// ---- Nodes ----

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
/// A node's health from its last heartbeat (server clock), against the heartbeat interval:
/// online within 3 intervals, suspect within 12, offline after.
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Online,
    Suspect,
    Offline,
}

impl NodeStatus {
    /// Heartbeat intervals of silence a node stays online for.
    pub const ONLINE_WITHIN: i64 = 3;
    /// Heartbeat intervals of silence a node stays suspect for.
    pub const SUSPECT_WITHIN: i64 = 12;

    pub fn of(last_seen: i64, now: i64, interval: std::time::Duration) -> Self {
        let interval = i64::try_from(interval.as_secs().max(1)).unwrap_or(i64::MAX);
        let silent = now.saturating_sub(last_seen);
        if silent <= Self::ONLINE_WITHIN.saturating_mul(interval) {
            Self::Online
        } else if silent <= Self::SUSPECT_WITHIN.saturating_mul(interval) {
            Self::Suspect
        } else {
            Self::Offline
        }
    }
}

/// A node as the API and the dashboard show it (`GET /nodes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeView {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node_id: NodeId,
    pub url: String,
    pub zone: String,
    pub version: String,
    pub status: NodeStatus,
    pub capacity: i64,
    pub used: i64,
    pub free_disk: i64,
    pub shards: i64,
    pub quarantined: i64,
    pub ingress_bytes: i64,
    pub egress_bytes: i64,
    pub uptime_secs: i64,
    pub registered_at: i64,
    pub last_seen: i64,
    /// The worker's last scrub report.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub scrub: serde_json::Value,
    /// Reputation: audit and online scores in millionths (1,000,000 = 1.0).
    #[serde(default)]
    pub audit_score: i64,
    #[serde(default)]
    pub online_score: i64,
    /// The audit score an hour before (its trend).
    #[serde(default)]
    pub audit_score_before: i64,
    #[serde(default)]
    pub audits_passed: i64,
    #[serde(default)]
    pub audits_failed: i64,
    /// `active`, `suspended` (no new shards) or `disqualified` (its shards count as lost).
    #[serde(default)]
    pub state: String,
    /// Why it is suspended or disqualified.
    #[serde(default)]
    pub state_reason: String,
}

/// One node's state at one minute (`GET /nodes/{id}/samples`): what its charts draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NodeSample {
    /// Unix seconds, on a minute boundary.
    pub at: i64,
    pub capacity: i64,
    pub used: i64,
    pub shards: i64,
    /// Bytes received since the worker started (counters restart with it).
    pub ingress_bytes: i64,
    pub egress_bytes: i64,
    /// Millionths.
    #[serde(default)]
    pub audit_score: i64,
}

// ---- Durability and rewards ----

/// The network's durability at a glance (`GET /durability`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DurabilityStatus {
    pub chunks: i64,
    /// Chunks with all k + m shards healthy.
    pub full: i64,
    /// Chunks missing at least one shard but still readable.
    pub degraded: i64,
    /// Chunks with at most k + margin healthy shards (`--repair-margin`): the most urgent.
    pub at_risk: i64,
    /// Chunks with fewer than k healthy shards: unreadable until nodes return.
    pub unreadable: i64,
    /// Shards waiting for garbage collection, and orphans being watched.
    pub gc_pending: i64,
    pub orphan_candidates: i64,
    /// Shards whose audit timed out and is being re-challenged.
    pub contained: i64,
    /// Zones among the workers that take new shards now.
    #[serde(default)]
    pub zones: u64,
    /// Whole zones a chunk placed now (at the policy's redundancy) survives losing at once (any
    /// of them): ⌊m / most shards per zone⌋. Every chunk also survives any m workers.
    #[serde(default)]
    pub zones_survivable: u64,
    /// The redundancy a file uploaded now gets, and the durability target it aims for.
    #[serde(default)]
    pub policy: RedundancyPolicy,
    /// The repairer of the replica that answered.
    #[serde(default)]
    pub repair: RepairProgress,
    /// The rebalancer of the replica that answered.
    #[serde(default)]
    pub rebalance: RebalanceProgress,
}

/// The redundancy policy as it stands on the network now (`/durability`'s `policy`): the
/// narrowest stripe that meets the target where the network allows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RedundancyPolicy {
    /// k and m of a file uploaded now (0 when no worker takes shards).
    pub data_shards: u8,
    pub parity_shards: u8,
    /// Nines a year of a 1 GiB file at that redundancy under the stated failure model.
    pub nines: f64,
    /// The server's target, in the same nines (`--durability-target`).
    pub target_nines: f64,
    /// False on a network too small (or too unevenly zoned) to reach the target.
    pub meets_target: bool,
    /// The stated failure model, in words.
    pub model: String,
}

/// What the repairer has done: its current (or last) pass, totals since start-up, and how long
/// losses take to be found and mended (`/durability`'s `repair`, and the repair job's progress in
/// `/jobs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RepairProgress {
    pub running: bool,
    pub last_pass_started: Option<i64>,
    pub last_pass_finished: Option<i64>,
    /// Chunks below k + m healthy shards found by the current (or last) pass.
    pub queued: u64,
    /// Chunks of that pass done so far (repaired or given up on).
    pub done: u64,
    /// Chunks of that pass left for later: their last repair failed (no worker to take a shard,
    /// too few shards readable) and their back-off has not run out.
    pub deferred: u64,
    /// Since start-up.
    pub shards_rebuilt: u64,
    pub chunks_repaired: u64,
    pub chunks_failed: u64,
    /// Bytes of shards rebuilt (or copied from a draining worker) and stored anew, since start-up.
    pub bytes_rebuilt: u64,
    /// The rebuild rate of the last pass that rebuilt anything: its bytes over its duration.
    pub last_pass_bytes_per_sec: u64,
    /// Time to detect: seconds from the last heartbeat of a chunk's first lost worker to the pass
    /// that found the chunk short (the heartbeat window is part of it). Median and largest over
    /// the last 1,024 chunks found.
    pub time_to_detect_p50_secs: Option<u64>,
    pub time_to_detect_max_secs: Option<u64>,
    /// Time to repair: seconds from a chunk found short to back at k + m healthy shards. Median
    /// and largest over the last 1,024 chunks repaired.
    pub time_to_repair_p50_secs: Option<u64>,
    pub time_to_repair_max_secs: Option<u64>,
}

/// What the rebalancer has done (`/durability`'s `rebalance`, and its job's progress in `/jobs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct RebalanceProgress {
    pub running: bool,
    pub last_pass_finished: Option<i64>,
    /// Workers above or below their share by more than the tolerance, at the last pass's start.
    pub unbalanced: u64,
    /// The largest distance from its share of any worker, percent, at the last pass's start.
    pub worst_pct: i64,
    /// Since start-up.
    pub shards_moved: u64,
    pub bytes_moved: u64,
}

/// What a background job is doing on the replica that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Waiting for its next run.
    Idle,
    /// A run is in progress.
    Running,
    /// Another replica holds the job's lease and runs it.
    Standby,
    /// The server is shutting down.
    Stopped,
}

/// One background job (`GET /jobs`): audits, repair, garbage collection, rewards, the janitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobStatus {
    pub name: String,
    pub state: JobState,
    /// Time between runs, seconds.
    pub interval_secs: u64,
    /// Runs finished since this replica started, and how many of them failed.
    pub runs: u64,
    pub failures: u64,
    /// Failures since the last run that succeeded (0 when the last run succeeded).
    pub consecutive_failures: u64,
    pub last_started: Option<i64>,
    pub last_finished: Option<i64>,
    /// Why the last failed run failed.
    pub last_error: Option<String>,
    /// The job's own figures (the repairer's queue and counts), when it reports any.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub progress: serde_json::Value,
}

/// The rewards ledger's hash chain, recomputed (`GET /ledger/verify`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LedgerCheck {
    pub entries: u64,
    pub valid: bool,
    /// The first entry that does not check, and why.
    pub first_bad_seq: Option<i64>,
    pub problem: Option<String>,
    /// The hash of the last good entry (what an operator can write down and compare later).
    pub head: String,
}

/// One node's earnings on one UTC day (`GET /nodes/{id}/earnings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DailyEarnings {
    /// Unix seconds of the day's start (UTC).
    pub day: i64,
    pub storage_byte_seconds: i64,
    pub egress_bytes: i64,
    /// Picodollars.
    pub amount: i64,
}

// ---- Uploads and files ----

/// A put token for one worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PutGrant {
    /// Node id, 64 hex digits.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node_id: NodeId,
    /// The worker's WebSocket URL.
    pub url: String,
    /// The signed token ("DKTK"), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Base64,
    /// Serial of the token, 32 hex digits.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub serial: Serial,
    /// Bytes the token lets the client store on this worker.
    pub budget: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

/// A get token covering the shards of chunks `first_chunk..=last_chunk` held by one worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadToken {
    pub first_chunk: u64,
    pub last_chunk: u64,
    /// The signed token ("DKTK"), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token: Base64,
}

/// `POST /uploads`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct BeginUpload {
    /// The client's random file id, 32 hex digits (the codec binds it into every sealed chunk).
    /// Text, not a [`FileId`], so that a malformed one gets its own code (`invalid_file_id`).
    pub file_id: String,
    /// The file's size class ([`crate::padding::size_class`] of its plaintext size and the chunk
    /// size), not its size: the exact size stays in the sealed metadata. Anything else is refused.
    pub size: u64,
    /// Data shards per chunk wished for (default 6).
    #[serde(default)]
    pub data_shards: Option<u8>,
    /// Parity shards per chunk wished for (default 4).
    #[serde(default)]
    pub parity_shards: Option<u8>,
    /// Plaintext bytes per chunk (default 4 MiB).
    #[serde(default)]
    pub chunk_size: Option<u32>,
    /// The folder the file goes in once committed; none: the top of the tree.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<FolderId>,
}

/// The answer to `POST /uploads`: where every shard goes and the tokens to put it there.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadPlan {
    pub upload_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub file_id: FileId,
    /// The redundancy chosen: what was asked, or less on a small network (still 40% loss).
    pub data_shards: u8,
    pub parity_shards: u8,
    pub chunk_size: u32,
    pub chunk_count: u64,
    /// Unix seconds; commit before then.
    pub expires_at: i64,
    /// One put grant per worker used.
    pub nodes: Vec<PutGrant>,
    /// For each chunk, for each shard (data first), an index into `nodes`. After a replan, an
    /// index with the high bit set (`disktro_core::upload::UNPLACED`) marks a shard no worker
    /// could take: it is not sent, and the commit records it lost for repair to restore.
    pub placement: Vec<Vec<u16>>,
}

/// `POST /uploads/{id}/replan`: place again the shards that failed workers were to store. The
/// answer is the whole amended [`UploadPlan`]: the failed workers' shards of `chunks` moved to
/// new slots at the end of `nodes` (other slots keep their index), every token fresh.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Replan {
    /// Workers of the upload that refused, timed out or disconnected (node ids, 64 hex digits).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub failed: Vec<NodeId>,
    /// Chunks that still need shards stored on those workers (not yet receipted).
    pub chunks: Vec<u64>,
}

/// `POST /uploads/{id}/resize`: give an upload whose size was not known when it began (a
/// stream) another size class. Growing places the chunks it adds under the same rules and grants
/// their workers new slots; shrinking drops the chunks past the new end, which must hold no
/// shards yet. The answer is the whole amended [`UploadPlan`] (old slots kept, every token
/// fresh); the reservation follows the new size.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Resize {
    /// The new size class (FORMAT.md, Padding). An upload grows only from a whole number of
    /// chunks: its last chunk's shards were budgeted for a full chunk then.
    pub size: u64,
}

/// `POST /uploads/{id}/commit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Commit {
    /// The owner-signed manifest ("DKMF"), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub manifest: Base64,
    /// Sealed name, type and size ("DKMD"), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub metadata: Base64,
    /// The file key wrapped under the account's master key ("DKWK"), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_key: Base64,
    /// One worker receipt ("DKRC", base64url) for every shard of every chunk.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub receipts: Vec<Base64>,
}

/// Redundancy health: how many shards of the weakest chunk sit on online workers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedundancyHealth {
    pub weakest_chunk_healthy: u64,
    pub shards_per_chunk: u64,
    /// Shards any chunk can be rebuilt from.
    pub needed: u64,
    /// Whole zones the file survives losing now, any of them: the spare healthy shards of its
    /// weakest chunk over the most healthy shards any of its chunks has in one zone. Given by the
    /// file list; `None` in a commit's answer (counting it there cost small uploads a fifth of
    /// their rate on PostgreSQL).
    #[serde(default)]
    pub zones_survivable: Option<u64>,
    /// The durability model's chance that the file becomes unreadable within a year, at full
    /// health, under the server's stated failure model (see `model`).
    #[serde(default)]
    pub yearly_loss: f64,
    /// The failure model `yearly_loss` assumes, in words.
    #[serde(default)]
    pub model: String,
    /// Stored with less redundancy than the policy gives a new upload now, and under its target
    /// (written during an outage, or before the network grew): the owner's client re-encodes it
    /// (`POST /files/{id}/restripe`). Given by the file list.
    #[serde(default)]
    pub below_policy: bool,
}

/// A file as lists show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileSummary {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub file_id: FileId,
    /// Sealed metadata ("DKMD"), base64url: only the owner's browser or CLI can read the name.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub metadata: Base64,
    /// The file key wrapped under the owner's master key ("DKWK"), base64url: opens the metadata.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_key: Base64,
    /// The size class the upload began with; the exact size is in the sealed metadata.
    pub size: u64,
    pub stored_bytes: u64,
    pub data_shards: u8,
    pub parity_shards: u8,
    pub chunk_count: u64,
    pub created_at: i64,
    pub health: RedundancyHealth,
    /// The folder the file is in; none: the top of the account's tree.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder_id: Option<FolderId>,
}

/// A folder of the account's tree (`GET /folders`): its parent and its name, sealed under the
/// folder's own key (`core::folder`). The server learns the tree's shape, never a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FolderSummary {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub folder_id: FolderId,
    /// None: at the top of the tree.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub parent_id: Option<FolderId>,
    /// The sealed name ("DKMD", padded), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub metadata: Base64,
    /// The folder key wrapped under the owner's identity ("DKWK", purpose folder), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_key: Base64,
    pub created_at: i64,
}

/// `GET /folders` answer: the account's folders (all, or those in one folder), oldest first.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FolderList {
    pub folders: Vec<FolderSummary>,
}

/// `POST /folders`: a folder the client made (its random id, its sealed name).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewFolder {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub folder_id: FolderId,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub parent_id: Option<FolderId>,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub metadata: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub wrapped_key: Base64,
}

/// `POST /folders/{id}/move` and `POST /files/{id}/move`: where to (none: the top of the tree).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MoveTo {
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub parent_id: Option<FolderId>,
}

/// `POST /folders/{id}/rename` (a new sealed name and the key it is sealed under) and
/// `POST /files/{id}/rename` (new sealed metadata under the file's own key: no `wrapped_key`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Rename {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub metadata: Base64,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    #[serde(default)]
    pub wrapped_key: Option<Base64>,
}

/// What `DELETE /folders/{id}?recursive=true` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Removed {
    pub folders: u64,
    pub files: u64,
}

/// `GET /files` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileList {
    pub files: Vec<FileSummary>,
    /// Files the account has in all.
    pub total: u64,
    pub used_bytes: u64,
    pub quota_bytes: u64,
    /// Where the next page starts (`GET /files?after=…`), when there are more files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// A worker holding shards of a file, with the tokens to read them.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReadNode {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node_id: NodeId,
    pub url: String,
    pub status: NodeStatus,
    pub tokens: Vec<ReadToken>,
}

/// Everything a reader needs to fetch a file (but its key).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileDownload {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub file_id: FileId,
    /// The owner-signed manifest ("DKMF"), base64url. Readers verify it before trusting it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub manifest: Base64,
    /// Sealed metadata ("DKMD"), base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub metadata: Base64,
    /// The wrapped file key (owners only; share links carry the key instead).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub wrapped_key: Option<Base64>,
    /// The size class; the exact size is in the sealed metadata.
    pub size: u64,
    pub created_at: i64,
    pub nodes: Vec<ReadNode>,
    /// For each chunk, for each shard, an index into `nodes`.
    pub locations: Vec<Vec<u16>>,
    /// Extra copies of shards of a file read often, for each chunk `[shard index, index into
    /// nodes]` of each: more candidates for the same shard (the get tokens cover them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Vec<Vec<u16>>>))]
    pub copies: Vec<Vec<[u16; 2]>>,
    /// Share downloads only: this download, to continue it after a failure (`ShareAccess`) and
    /// to report it complete (`POST /public/shares/{id}/downloads/{download_id}/complete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_id: Option<String>,
}

// ---- Shares ----

/// `POST /files/{id}/shares`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewShare {
    /// Seconds until the link stops working (default 7 days, at most 1 year).
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Downloads allowed (default: no limit).
    #[serde(default)]
    pub max_downloads: Option<u32>,
    /// base64url of the 32-byte password proof, when the link needs a password.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password_proof: Option<Base64>,
}

/// A share as its owner sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareView {
    pub share_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub file_id: FileId,
    pub created_at: i64,
    pub expires_at: i64,
    pub max_downloads: Option<u64>,
    pub downloads: u64,
    pub password: bool,
    pub revoked: bool,
}

/// `POST /public/shares/{id}` and `…/download`: what the link holder sends.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShareAccess {
    /// base64url password proof, for shares with a password.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password_proof: Option<Base64>,
    /// `…/download` only: continue this download (the `download_id` of an earlier answer) with
    /// fresh tokens instead of starting another, so a retry after a failure uses no second
    /// download of a limited link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_id: Option<String>,
    /// `…/download` only: the key the reader signs its orders with (hex), bound into the get
    /// tokens ([`crate::order`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub order_key: Option<PublicKey>,
}

/// What a link holder sees before downloading.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShareInfo {
    pub share_id: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub file_id: FileId,
    /// The owner-signed manifest ("DKMF"), base64url: the page shows who signed it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub manifest: Base64,
    /// Sealed metadata ("DKMD"), base64url: the link's key opens it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub metadata: Base64,
    /// The size class; the exact size is in the sealed metadata.
    pub size: u64,
    pub expires_at: i64,
    /// Downloads left, when limited (a download under way holds one until it is done).
    pub downloads_left: Option<u64>,
    /// Downloads started and not yet done: one that fails gives its download back.
    #[serde(default)]
    pub downloads_under_way: u64,
}

impl Commit {
    /// What a finished upload commits: `manifest` signed by `owner`, the metadata sealed up front
    /// (so a bad name fails before any byte is sent), the file key wrapped for `owner`, and the
    /// workers' receipts.
    pub fn new(
        manifest: crate::Manifest,
        owner: &crate::keys::Keypair,
        file_key: &crate::FileKey,
        sealed_metadata: &[u8],
        receipts: Vec<Base64>,
    ) -> Result<Self, crate::Error> {
        let file_id = manifest.file_id;
        let signed = manifest.sign(owner)?;
        Ok(Self {
            manifest: Base64::from(signed.as_bytes()),
            metadata: Base64::from(sealed_metadata),
            wrapped_key: Base64::from(owner.wrap_file_key(&file_id, file_key)),
            receipts,
        })
    }
}

// ---- Checks every reader makes ----

/// Why a reader refuses what the server sent for a download, before fetching any shard.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadRefused {
    #[error("the manifest does not verify: {0}")]
    BadManifest(crate::Error),
    #[error("the server sent the manifest of another file")]
    OtherFile,
    #[error("the manifest was not signed by this account")]
    NotTheOwner,
    #[error("the key does not open this file (wrong or damaged link?)")]
    WrongKey,
    #[error("the metadata and the manifest disagree on the size")]
    SizeMismatch,
}

impl FileDownload {
    /// Check what the server sent before trusting any of it: the manifest verifies, names the
    /// file asked for, was signed by `expected_owner` (when known), and `key` opens the metadata
    /// to the manifest's size. Returns the verified manifest and the metadata.
    pub fn verify(
        &self,
        key: &crate::FileKey,
        expected_owner: Option<&PublicKey>,
    ) -> Result<(crate::SignedManifest, crate::metadata::FileMetadata), DownloadRefused> {
        let signed = crate::SignedManifest::decode(&self.manifest).map_err(DownloadRefused::BadManifest)?;
        if signed.manifest().file_id != self.file_id {
            return Err(DownloadRefused::OtherFile);
        }
        if expected_owner.is_some_and(|o| o != signed.owner()) {
            return Err(DownloadRefused::NotTheOwner);
        }
        let metadata = crate::metadata::FileMetadata::open(&self.metadata, key, &signed.manifest().file_id)
            .map_err(|_| DownloadRefused::WrongKey)?;
        if !signed.manifest().admits_size(metadata.size) {
            return Err(DownloadRefused::SizeMismatch);
        }
        Ok((signed, metadata))
    }
}
