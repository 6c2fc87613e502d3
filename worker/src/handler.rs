//! One request in, one response out: put, get, delete and audit under their tokens.
//!
//! Order of checks, cheapest first and nothing written before all pass: token (issuer, signature,
//! worker, operation, expiry), scope, size, budget or single use, then the store (which hashes
//! the bytes against the claimed id before anything is acknowledged). Disk work runs on tokio's
//! blocking pool. Errors go back as [`Body::Error`] with a stable code; internal detail (paths,
//! OS errors) goes to the log only.

use std::sync::Arc;

use bytes::Bytes;

use disktro_core::ShardId;
use disktro_core::audit::{self, MAX_AUDIT_RANGE};
use disktro_core::order::Order;
use disktro_core::token::{Operation, Receipt, Token};
use disktro_core::wire::{Body, ErrorCode};

use crate::admission::Refused;
use disktro_net::unix_now;

use crate::memory::{ConnectionMemory, Reservation};
use crate::node::Node;
use crate::store::{PutOutcome, StoreError};

/// A response and the memory it holds until it is sent.
#[derive(Debug)]
pub struct Response {
    pub body: Body,
    pub memory: Option<Reservation>,
}

impl From<Refused> for Response {
    fn from(r: Refused) -> Self {
        Self {
            body: Body::Error {
                code: r.code,
                message: r.message,
            },
            memory: None,
        }
    }
}

impl From<Body> for Response {
    fn from(body: Body) -> Self {
        Self { body, memory: None }
    }
}

/// Answer one request; a get's answer is held in `memory` (the connection's share).
pub async fn handle(node: &Arc<Node>, memory: &ConnectionMemory, body: Body) -> Response {
    let counted = node.metrics.request(crate::metrics::kind(&body));
    let result = match body {
        Body::Put { token, shard, data } => put(node, &token, shard, data).await,
        Body::Get { token, shard } => get(node, memory, &token, shard).await,
        Body::Hello { token } => node
            .admission
            .introduce(&token, unix_now())
            .map(|_| Body::Welcome.into()),
        Body::Delete { token, shards } => delete(node, &token, shards).await,
        Body::AuditChallenge {
            token,
            shard,
            offset,
            len,
            nonce,
        } => audit(node, &token, shard, offset, len, nonce).await,
        Body::Order { order } => take_order(node, &order).map(|()| Body::OrderTaken.into()),
        _ => Err(Refused::new(
            ErrorCode::Malformed,
            "not a request: only workers send responses",
        )),
    };
    counted.ended(result.as_ref().err().map(|r| r.code));
    result.unwrap_or_else(Response::from)
}

fn store_refusal(node: &Node, shard: &ShardId, e: StoreError) -> Refused {
    match e {
        StoreError::HashMismatch => Refused::new(ErrorCode::HashMismatch, "shard bytes do not hash to the claimed id"),
        StoreError::NotFound => Refused::new(ErrorCode::NotFound, "shard not stored on this worker"),
        StoreError::Corrupt => {
            node.report_corrupt(*shard);
            Refused::new(ErrorCode::Corrupt, "stored shard failed verification; quarantined")
        }
        StoreError::StorageFull { needed, free } => Refused::new(
            ErrorCode::StorageFull,
            format!("worker is full: {needed} bytes needed, {free} free"),
        ),
        StoreError::Io { .. } => {
            tracing::error!(shard = %shard, error = %e, "storage error");
            Refused::new(ErrorCode::Internal, "storage error on the worker")
        }
    }
}

/// Run blocking store work; a panicked task is an internal error.
async fn blocking<T: Send + 'static>(
    node: &Arc<Node>,
    work: impl FnOnce(&Node) -> T + Send + 'static,
) -> Result<T, Refused> {
    let node = Arc::clone(node);
    tokio::task::spawn_blocking(move || work(&node)).await.map_err(|e| {
        tracing::error!(error = %e, "store task failed");
        Refused::new(ErrorCode::Internal, "internal error on the worker")
    })
}

fn not_in_scope() -> Refused {
    Refused::new(ErrorCode::NotInScope, "shard is not covered by the token")
}

async fn put(node: &Arc<Node>, token: &[u8], shard: ShardId, data: Bytes) -> Result<Response, Refused> {
    let now = unix_now();
    let token = node.admission.check(token, Operation::Put, now)?;
    if !token.covers(&shard) {
        return Err(not_in_scope());
    }
    if data.len() > node.limits.max_shard_len {
        return Err(Refused::new(
            ErrorCode::TooLarge,
            format!(
                "shard of {} bytes; this worker takes at most {}",
                data.len(),
                node.limits.max_shard_len
            ),
        ));
    }
    // One hop to the blocking pool for the whole put: the budget's book is appended to a file
    // and the store hashes and writes, and each hop costs a thread wake-up both ways.
    blocking(node, move |n| store_put(n, &token, shard, &data, now)).await?
}

/// A put's disk work, its budget and its receipt, on the blocking pool.
fn store_put(node: &Node, token: &Token, shard: ShardId, data: &[u8], now: u64) -> Result<Response, Refused> {
    let len = data.len() as u64;
    // A shard already stored costs no budget: re-sending it (a retry, or the same bytes in
    // another file) only earns a fresh receipt.
    let present = node.store.stored_len(&shard).is_ok();
    if !present {
        node.admission.charge(token, len, now)?;
    }
    let refund = || {
        if !present {
            node.admission.refund(token, len, now);
        }
    };
    match node.store.put(&shard, data) {
        Ok(PutOutcome::Stored) => {
            node.add_ingress(len);
            if present {
                // The copy on disk was corrupt and has been replaced: that is real storage.
                let _ = node.admission.charge(token, len, now);
            }
            if let Err(revoked) = node.admission.stored(token, shard, !present) {
                // Revoked while the shard was being written: take back what it stored.
                if !present {
                    node.store.delete(&shard).ok();
                }
                return Err(revoked);
            }
        }
        Ok(PutOutcome::AlreadyStored) => {
            refund();
            node.admission.stored(token, shard, false)?;
        }
        Err(e) => {
            refund();
            return Err(store_refusal(node, &shard, e));
        }
    }
    let receipt = Receipt {
        worker: node.node_id,
        shard,
        size: u32::try_from(len).expect("shards are bounded far below 4 GiB"),
        serial: token.serial,
    }
    .sign(&node.keypair)
    .expect("the receipt names this node");
    Ok(Body::Receipt { receipt }.into())
}

async fn get(node: &Arc<Node>, memory: &ConnectionMemory, signed: &[u8], shard: ShardId) -> Result<Response, Refused> {
    let now = unix_now();
    let token = node.admission.check(signed, Operation::Get, now)?;
    if !token.covers(&shard) {
        return Err(not_in_scope());
    }
    let len = blocking(node, move |n| n.store.stored_len(&shard))
        .await?
        .map_err(|e| store_refusal(node, &shard, e))?;
    let memory = memory.reserve(usize::try_from(len).unwrap_or(usize::MAX), None).await?;
    node.admission.charge(&token, len, now)?;
    match blocking(node, move |n| n.store.get(&shard)).await {
        Ok(Ok(data)) => {
            node.add_egress(data.len() as u64);
            node.record_served(&token, signed, data.len() as u64);
            Ok(Response {
                body: Body::ShardData { shard, data },
                memory: Some(memory),
            })
        }
        Ok(Err(e)) => {
            node.admission.refund(&token, len, now);
            Err(store_refusal(node, &shard, e))
        }
        Err(r) => {
            node.admission.refund(&token, len, now);
            Err(r)
        }
    }
}

/// Keep a reader's order for bytes it received under a get token this worker served: what the
/// worker will be paid for them. The signature is checked against the token's order key here, so
/// a bad order cannot displace a good one.
fn take_order(node: &Node, signed: &[u8]) -> Result<(), Refused> {
    let order = Order::claimed(signed).map_err(|e| Refused::new(ErrorCode::Malformed, e.to_string()))?;
    if order.worker != node.node_id {
        return Err(Refused::new(ErrorCode::WrongWorker, "the order names another worker"));
    }
    let key = node.order_key(&order.serial).ok_or_else(|| {
        Refused::new(
            ErrorCode::NotInScope,
            "no get was served here under that serial, or its token names no order key",
        )
    })?;
    Order::verify(signed, &key)
        .map_err(|_| Refused::new(ErrorCode::BadToken, "the order's signature does not verify"))?;
    node.keep_order(&order.serial, order.bytes, signed);
    Ok(())
}

async fn delete(node: &Arc<Node>, token: &[u8], shards: Vec<ShardId>) -> Result<Response, Refused> {
    let now = unix_now();
    let token = node.admission.check(token, Operation::Delete, now)?;
    if shards.is_empty() || !shards.iter().all(|s| token.covers(s)) {
        return Err(not_in_scope());
    }
    node.admission.use_once(&token, now)?;
    let removed = blocking(node, move |n| {
        let mut removed = Vec::with_capacity(shards.len());
        for id in shards {
            match n.store.delete(&id) {
                Ok(true) => removed.push(id),
                Ok(false) => {}
                Err(e) => return Err((id, e)),
            }
        }
        Ok(removed)
    })
    .await?
    .map_err(|(id, e)| store_refusal(node, &id, e))?;
    Ok(Body::Deleted { shards: removed }.into())
}

async fn audit(
    node: &Arc<Node>,
    token: &[u8],
    shard: ShardId,
    offset: u64,
    len: u32,
    nonce: [u8; 32],
) -> Result<Response, Refused> {
    let now = unix_now();
    let token = node.admission.check(token, Operation::Audit, now)?;
    if !token.covers(&shard) {
        return Err(not_in_scope());
    }
    if len == 0 || len > MAX_AUDIT_RANGE {
        return Err(Refused::new(
            ErrorCode::TooLarge,
            format!("audit ranges are 1 to {MAX_AUDIT_RANGE} bytes"),
        ));
    }
    node.admission.use_once(&token, now)?;
    let stored = blocking(node, move |n| n.store.stored_len(&shard))
        .await?
        .map_err(|e| store_refusal(node, &shard, e))?;
    // The shard and its bao outboard (about 1/16 of it) are in memory while proving.
    let _memory = node
        .memory
        .reserve_background(usize::try_from(stored + stored / 16).unwrap_or(usize::MAX))
        .await;
    let proof = blocking(node, move |n| {
        let bytes = n.store.get(&shard)?;
        Ok::<_, StoreError>(audit::prove(&bytes, offset, len))
    })
    .await?
    .map_err(|e| store_refusal(node, &shard, e))?
    .map_err(|_| Refused::new(ErrorCode::Malformed, "audit range lies outside the shard"))?;
    Ok(Body::AuditProof { nonce, proof }.into())
}
