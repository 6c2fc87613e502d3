//! Grants: the tokens the server signs so a client may talk to workers.
//!
//! - **Put grants** (one per worker an upload uses): scoped to the upload, budgeted for the
//!   shards placed on that worker (at their largest possible size), valid [`PUT_TOKEN_TTL`];
//!   renewed for long uploads under the same serial, so the worker counts one budget across
//!   renewals. Each serial is recorded with its upload and worker, so a commit can tell that a
//!   receipt answers a token issued for this upload, and a cancel can revoke it.
//! - **Read grants** (per worker holding shards of a file): scoped to the file, listing the
//!   worker's shards (at most [`MAX_TOKEN_SHARDS`] per token, so one token per window of 1,024
//!   chunks), budgeted at twice their bytes so a reader can retry, valid [`GET_TOKEN_TTL`].
//!   Issuing them writes nothing: reads never wait for the database's write path.

use std::collections::BTreeMap;
use std::time::Duration;

use disktro_core::api::{Base64, PutGrant, ReadToken};
use disktro_core::keys::{Keypair, PublicKey};
use disktro_core::token::{MAX_TOKEN_SHARDS, Operation, Scope, Token};
use disktro_core::{FileId, NodeId, Serial, ShardId};

use crate::error::ServerError;

/// Lifetime of a put token; an upload asks for fresh ones (`/uploads/{id}/renew`) before then.
pub const PUT_TOKEN_TTL: Duration = Duration::from_secs(15 * 60);
/// Lifetime of a get token: long enough for a large download, short enough that a leaked
/// manifest answer is soon useless.
pub const GET_TOKEN_TTL: Duration = Duration::from_secs(60 * 60);
/// Get tokens may read each shard this many times (retries after a failed read).
const READ_ALLOWANCE: u64 = 2;

fn expiry(now: i64, ttl: Duration) -> u64 {
    u64::try_from(now).unwrap_or(0) + ttl.as_secs()
}

/// Sign a put token for `worker` under upload `upload`: a new one (a fresh random serial) or a
/// renewal (the serial it renews).
pub fn put(
    server: &Keypair,
    worker: NodeId,
    url: &str,
    upload: [u8; 16],
    serial: Serial,
    budget: u64,
    now: i64,
) -> Result<PutGrant, ServerError> {
    let expires_at = expiry(now, PUT_TOKEN_TTL);
    let token = Token {
        operation: Operation::Put,
        issuer: server.public(),
        worker,
        scope: Scope::Upload(upload),
        serial,
        expires_at,
        byte_budget: budget,
        order_key: None,
        shards: Vec::new(),
    }
    .sign(server)
    .map_err(|_| ServerError::internal("signing a put token"))?;
    Ok(PutGrant {
        node_id: worker,
        url: url.to_owned(),
        token: Base64::new(token),
        serial,
        budget,
        expires_at,
    })
}

/// One stored shard, as the database lists it.
#[derive(Debug, Clone)]
pub struct Placed {
    pub chunk: u64,
    pub shard: ShardId,
    pub size: u64,
}

/// How get tokens are issued: their lifetime, the tag of a share download's serials, and the
/// reader's order key.
#[derive(Debug, Clone, Copy)]
pub struct ReadGrant {
    pub ttl: Duration,
    /// The first 8 bytes of every serial (a share download's, [`crate::shares`]); random when
    /// `None`.
    pub serial_tag: Option<[u8; 8]>,
    /// The key the reader signs its orders with ([`disktro_core::order`]), bound into every
    /// token; `None`: the reader gave none, and what the workers serve it is not paid.
    pub order_key: Option<PublicKey>,
}

/// Get tokens for each worker's shards of `file` (`holders`: a worker and the shards it holds),
/// one per window of [`MAX_TOKEN_SHARDS`] chunks, signed together with one signature (a batch,
/// [`disktro_core::token`]): one answer costs one signature however many workers it names. A
/// worker holds at most one shard per chunk, so a window never lists more than the maximum.
/// Nothing is recorded: a worker claiming egress presents the token itself ([`crate::rewards`]).
pub fn read(
    server: &Keypair,
    file: FileId,
    holders: &[(NodeId, Vec<Placed>)],
    now: i64,
    grant: ReadGrant,
) -> Result<Vec<Vec<ReadToken>>, ServerError> {
    let window = MAX_TOKEN_SHARDS as u64;
    let expires_at = expiry(now, grant.ttl);
    // (holder, first chunk of the window) of each token, in the batch's order.
    let mut made: Vec<(usize, u64)> = Vec::new();
    let mut tokens: Vec<Token> = Vec::new();
    for (h, (worker, shards)) in holders.iter().enumerate() {
        let mut windows: BTreeMap<u64, Vec<&Placed>> = BTreeMap::new();
        for p in shards {
            windows.entry(p.chunk / window).or_default().push(p);
        }
        for (w, placed) in windows {
            let budget = placed.iter().map(|p| p.size).sum::<u64>() * READ_ALLOWANCE;
            made.push((h, w * window));
            tokens.push(Token {
                operation: Operation::Get,
                issuer: server.public(),
                worker: *worker,
                scope: Scope::File(file),
                serial: grant.serial_tag.map_or_else(Serial::random, Serial::tagged),
                expires_at,
                byte_budget: budget,
                order_key: grant.order_key,
                shards: placed.iter().map(|p| p.shard).collect(),
            });
        }
    }
    let signed = Token::sign_all(tokens, server).map_err(|_| ServerError::internal("signing get tokens"))?;
    let mut out: Vec<Vec<ReadToken>> = vec![Vec::new(); holders.len()];
    for ((h, first_chunk), token) in made.into_iter().zip(signed) {
        out[h].push(ReadToken {
            first_chunk,
            last_chunk: first_chunk + window - 1,
            token: Base64::new(token),
        });
    }
    Ok(out)
}
