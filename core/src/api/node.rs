//! The JSON a storage worker and the server exchange on the control plane: registration and
//! heartbeats (which carry the scrubber's progress, [`crate::inventory`] summaries and egress
//! claims). Both bodies are signed by the node key over the exact bytes; see `FORMAT.md`.

use serde::{Deserialize, Serialize};

use crate::inventory::{BucketListing, Inventory};
use crate::keys::PublicKey;
use crate::{NodeId, Serial, ShardId};

pub const REGISTER_PATH: &str = "/api/v1/nodes/register";
pub const HEARTBEAT_PATH: &str = "/api/v1/nodes/heartbeat";
pub const DRAIN_PATH: &str = "/api/v1/nodes/drain";
/// Hex Ed25519 signature by the node key over the request body.
pub const SIGNATURE_HEADER: &str = "x-disktro-node-signature";
pub const REGISTER_DOMAIN: &str = "register";
pub const HEARTBEAT_DOMAIN: &str = "heartbeat";
pub const DRAIN_DOMAIN: &str = "drain";
/// Egress claims sent in one heartbeat at most; the rest wait for the next.
pub const MAX_CLAIMS_PER_HEARTBEAT: usize = 4096;
/// Bytes of tokens the claims of one heartbeat carry at most (a token lists up to 1,024 shards).
pub const MAX_CLAIM_TOKEN_BYTES: usize = 192 << 10;
/// Revocations one heartbeat answer carries at most; the worker asks again from the newest.
pub const MAX_REVOCATIONS_PER_ACK: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub join_token: String,
    /// The node's public key, hex; the node id is derived from it.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub public_key: PublicKey,
    /// Where clients reach the worker (`ws://` or `wss://`).
    pub url: String,
    pub zone: String,
    /// Who runs the node: a second failure domain beside the zone (one operator's nodes can fail
    /// together). Empty: the node is its own operator.
    #[serde(default)]
    pub operator: String,
    pub capacity: u64,
    pub version: String,
    /// Unix seconds, against replay of a captured registration.
    pub sent_at: u64,
}

/// An operator's request, signed by the node key, that the node leave the network gracefully
/// (`drain: true`: its shards are moved to other nodes first) or stay after all (`false`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node_id: NodeId,
    /// Unix seconds, against replay.
    pub sent_at: u64,
    pub drain: bool,
}

/// Where a drain stands: `draining` while shards are left, then `exited`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DrainStatus {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node_id: NodeId,
    pub state: String,
    /// Shards still placed on the node.
    pub shards_left: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node_id: NodeId,
    /// The server's token-signing public key, hex.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub server_key: PublicKey,
    pub heartbeat_interval_secs: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub node_id: NodeId,
    pub sent_at: u64,
    pub url: String,
    pub zone: String,
    /// As in [`Registration::operator`].
    #[serde(default)]
    pub operator: String,
    pub version: String,
    pub uptime_secs: u64,
    pub capacity: u64,
    pub used: u64,
    /// Free space on the data directory's file system.
    pub free_disk: u64,
    pub shards: u64,
    pub quarantined: u64,
    /// Bytes stored and served since start-up (the server takes differences).
    pub ingress_bytes: u64,
    pub egress_bytes: u64,
    pub scrub: ScrubReport,
    /// Shards found corrupt (and quarantined) since the last delivered heartbeat, hex.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub corrupt_shards: Vec<ShardId>,
    /// Summaries of what the worker holds, now and then ([`crate::inventory`]).
    #[serde(default)]
    pub inventory: Option<Inventory>,
    /// Full listings of the buckets the server asked for in its last answer.
    #[serde(default)]
    pub listings: Vec<BucketListing>,
    /// The readers' orders for what this worker served under get tokens, for egress rewards.
    #[serde(default)]
    pub egress_claims: Vec<EgressClaim>,
    /// The `revoked_at` of the newest revocation the worker has applied (0 after a start): the
    /// answer carries those revoked since (that second included, so none is missed).
    #[serde(default)]
    pub revocations_since: u64,
}

/// What a worker served under one get token: its own count, and the largest order its reader
/// signed for it ([`crate::order`]); running totals, not differences: resending is safe. Only the
/// order is paid; the count judges whether a share link's unreported download fetched the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EgressClaim {
    /// The token's serial, hex.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub serial: Serial,
    /// Bytes the worker served under the token, by its own count.
    pub served: u64,
    /// The reader's largest signed order, base64url: what the worker is paid for.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub order: Option<crate::api::Base64>,
    /// The get token itself, base64url, until a heartbeat carrying it was answered: the server
    /// records nothing when it issues get tokens, and opens a serial's claim from the token.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub token: Option<crate::api::Base64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatAck {
    pub heartbeat_interval_secs: u64,
    /// Buckets whose full listing the server wants in the next heartbeat.
    #[serde(default)]
    pub list_buckets: Vec<u8>,
    /// Put tokens of this worker the server withdrew since `revocations_since`, oldest first (at
    /// most [`MAX_REVOCATIONS_PER_ACK`]).
    #[serde(default)]
    pub revoked: Vec<Revocation>,
}

/// A put token withdrawn because its upload was cancelled or expired: the worker refuses further
/// puts under it and deletes what it stored under it that no other token has claimed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revocation {
    /// The token's serial, hex.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub serial: Serial,
    /// When the token would have expired: the worker may forget the revocation after that.
    pub expires_at: u64,
    pub revoked_at: u64,
}

/// Where the scrubber is; part of every heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScrubReport {
    pub running: bool,
    /// Passes finished since start-up.
    pub passes: u64,
    /// Shards checked in the current (or last) pass.
    pub checked: u64,
    /// Shards in the current (or last) pass.
    pub total: u64,
    /// Corrupt shards found since start-up.
    pub corrupt_found: u64,
    pub last_pass_started: Option<u64>,
    pub last_pass_finished: Option<u64>,
}
