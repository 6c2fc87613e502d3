//! Capability tokens (server → worker) and receipts (worker → client and server).
//!
//! A **token** is the server's Ed25519-signed permission for one operation on one worker:
//!
//! ```text
//! "DKTK" version:u8 operation:u8 issuer:[32] worker:[32] scope_kind:u8 scope_id:[16]
//!   serial:[16] expires_at:u64 byte_budget:u64 shard_count:u16 shard_id:[32] × shard_count
//! signature:[64]   by `issuer`, domain "token", over everything before it
//! ```
//!
//! Put tokens carry an upload scope and a byte budget (shard ids optional: a client need not know
//! them when the token is issued); get, delete and audit tokens list the shards they cover.
//! [`Token::verify`] checks issuer, signature, worker, operation and expiry; the worker itself
//! keeps the seen-serial set and the budget spent, which are state.
//!
//! A **receipt** is the worker's signature over (worker, shard id, size, token serial): proof for
//! the server at commit time that the shard was durably stored.

use crate::encoding::{Reader, Writer as _};
use crate::keys::{Keypair, PublicKey};
use crate::{Error, NodeId, Serial, ShardId};

const TOKEN_MAGIC: &[u8; 4] = b"DKTK";
const TOKEN_DOMAIN: &str = "token";
const RECEIPT_MAGIC: &[u8; 4] = b"DKRC";
const RECEIPT_DOMAIN: &str = "receipt";

/// Most shards one token may list.
pub const MAX_TOKEN_SHARDS: usize = 1024;
/// Longest encoded token.
pub const MAX_TOKEN_LEN: usize = 4 + 1 + 1 + 32 + 32 + 1 + 16 + 16 + 8 + 8 + 2 + 32 * MAX_TOKEN_SHARDS + 64;
/// Length of an encoded receipt.
pub const RECEIPT_LEN: usize = 4 + 1 + 32 + 32 + 4 + 16 + 64;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Operation {
    Put = 1,
    Get = 2,
    Delete = 3,
    Audit = 4,
}

impl Operation {
    fn from_byte(b: u8) -> Result<Self, Error> {
        match b {
            1 => Ok(Self::Put),
            2 => Ok(Self::Get),
            3 => Ok(Self::Delete),
            4 => Ok(Self::Audit),
            _ => Err(Error::NonCanonical("unknown token operation")),
        }
    }
}

/// What the token is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// An upload in progress (the server's upload id).
    Upload([u8; 16]),
    /// A committed file.
    File(crate::FileId),
}

/// A decoded token. Only [`Token::verify`] (checked) and [`Token::sign`] produce the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub operation: Operation,
    pub issuer: PublicKey,
    pub worker: NodeId,
    pub scope: Scope,
    pub serial: Serial,
    /// Unix seconds; the token is valid while `now < expires_at`.
    pub expires_at: u64,
    /// Bytes the holder may store (put) or read (get) under this token.
    pub byte_budget: u64,
    pub shards: Vec<ShardId>,
}

impl Token {
    fn encode_unsigned(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(120 + 32 * self.shards.len() + 64);
        out.put_header(TOKEN_MAGIC);
        out.push(self.operation as u8);
        out.extend_from_slice(self.issuer.as_bytes());
        out.extend_from_slice(self.worker.as_bytes());
        let (kind, id) = match self.scope {
            Scope::Upload(id) => (1, id),
            Scope::File(id) => (2, id.0),
        };
        out.push(kind);
        out.extend_from_slice(&id);
        out.extend_from_slice(self.serial.as_bytes());
        out.put_u64(self.expires_at);
        out.put_u64(self.byte_budget);
        out.put_u16(u16::try_from(self.shards.len()).expect("checked against MAX_TOKEN_SHARDS"));
        for s in &self.shards {
            out.extend_from_slice(s.as_bytes());
        }
        out
    }

    fn check_shape(&self) -> Result<(), Error> {
        if self.shards.len() > MAX_TOKEN_SHARDS {
            return Err(Error::too_large(
                "token shard list",
                self.shards.len(),
                MAX_TOKEN_SHARDS,
            ));
        }
        if self.operation != Operation::Put && self.shards.is_empty() {
            return Err(Error::NonCanonical("get, delete and audit tokens list their shards"));
        }
        if self.shards.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::NonCanonical("token shard ids must be sorted and distinct"));
        }
        Ok(())
    }

    /// Sign with the server's key (whose public half must be `self.issuer`). Shard ids are sorted
    /// first, the one canonical order.
    pub fn sign(mut self, server: &Keypair) -> Result<Vec<u8>, Error> {
        if server.public() != self.issuer {
            return Err(Error::WrongIssuer);
        }
        self.shards.sort_unstable();
        self.shards.dedup();
        self.check_shape()?;
        let mut bytes = self.encode_unsigned();
        let sig = server.sign(TOKEN_DOMAIN, &bytes);
        bytes.extend_from_slice(&sig);
        Ok(bytes)
    }

    /// Decode and check structure and signature, without judging who it is for.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(Error::too_large("token", bytes.len(), MAX_TOKEN_LEN));
        }
        let mut r = Reader::new(bytes, "token");
        r.header(TOKEN_MAGIC)?;
        let operation = Operation::from_byte(r.u8()?)?;
        let issuer = PublicKey(r.array()?);
        let worker = NodeId(r.array()?);
        let scope = match (r.u8()?, r.array()?) {
            (1, id) => Scope::Upload(id),
            (2, id) => Scope::File(crate::FileId(id)),
            _ => return Err(Error::NonCanonical("unknown token scope")),
        };
        let serial = Serial(r.array()?);
        let expires_at = r.u64()?;
        let byte_budget = r.u64()?;
        let count = usize::from(r.u16()?);
        r.expect_remaining(Some(count * 32 + 64))?;
        let shards = (0..count)
            .map(|_| r.array().map(ShardId))
            .collect::<Result<Vec<_>, _>>()?;
        let signed_len = bytes.len() - 64;
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        let token = Self {
            operation,
            issuer,
            worker,
            scope,
            serial,
            expires_at,
            byte_budget,
            shards,
        };
        token.check_shape()?;
        issuer.verify(TOKEN_DOMAIN, &bytes[..signed_len], &signature)?;
        Ok(token)
    }

    /// Everything a worker checks before acting: issued by `issuer`, signature valid, for this
    /// worker, for this operation, not expired at `now` (unix seconds).
    pub fn verify(
        bytes: &[u8],
        issuer: &PublicKey,
        worker: &NodeId,
        operation: Operation,
        now: u64,
    ) -> Result<Self, Error> {
        let token = Self::decode(bytes)?;
        token.check_use(issuer, worker, operation, now)?;
        Ok(token)
    }

    /// The checks of [`Token::verify`] after the signature: issued by `issuer`, for `worker`,
    /// for `operation`, not expired at `now`. For a token whose signature was verified earlier
    /// (a worker remembers the put and get tokens it saw, which serve many requests).
    pub fn check_use(&self, issuer: &PublicKey, worker: &NodeId, operation: Operation, now: u64) -> Result<(), Error> {
        if &self.issuer != issuer {
            return Err(Error::WrongIssuer);
        }
        if &self.worker != worker {
            return Err(Error::WrongWorker);
        }
        if self.operation != operation {
            return Err(Error::WrongOperation);
        }
        if now >= self.expires_at {
            return Err(Error::Expired);
        }
        Ok(())
    }

    /// Whether the token covers `shard`: listed, or a put token that lists none.
    pub fn covers(&self, shard: &ShardId) -> bool {
        if self.shards.is_empty() {
            self.operation == Operation::Put
        } else {
            self.shards.binary_search(shard).is_ok()
        }
    }
}

/// A worker's signed statement that it holds a shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub worker: NodeId,
    pub shard: ShardId,
    pub size: u32,
    /// Serial of the put token the shard was stored under.
    pub serial: Serial,
}

impl Receipt {
    fn encode_unsigned(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECEIPT_LEN);
        out.put_header(RECEIPT_MAGIC);
        out.extend_from_slice(self.worker.as_bytes());
        out.extend_from_slice(self.shard.as_bytes());
        out.put_u32(self.size);
        out.extend_from_slice(self.serial.as_bytes());
        out
    }

    /// Sign with the worker's node key; `self.worker` must be that key's node id.
    pub fn sign(&self, worker: &Keypair) -> Result<Vec<u8>, Error> {
        if worker.public().node_id() != self.worker {
            return Err(Error::WrongWorker);
        }
        let mut bytes = self.encode_unsigned();
        let sig = worker.sign(RECEIPT_DOMAIN, &bytes);
        bytes.extend_from_slice(&sig);
        Ok(bytes)
    }

    /// The worker a receipt claims to come from, read without checking anything: only to find
    /// the key to [`Receipt::verify`] it with.
    pub fn claimed_worker(bytes: &[u8]) -> Result<NodeId, Error> {
        let mut r = Reader::new(bytes, "receipt");
        r.header(RECEIPT_MAGIC)?;
        Ok(NodeId(r.array()?))
    }

    /// What a receipt says, read without checking its signature: for a client comparing the
    /// receipts it kept with the shards it encodes again (the server verifies them at commit).
    pub fn claimed(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode(bytes).map(|(receipt, _)| receipt)
    }

    fn decode(bytes: &[u8]) -> Result<(Self, [u8; 64]), Error> {
        let mut r = Reader::new(bytes, "receipt");
        r.header(RECEIPT_MAGIC)?;
        let receipt = Self {
            worker: NodeId(r.array()?),
            shard: ShardId(r.array()?),
            size: r.u32()?,
            serial: Serial(r.array()?),
        };
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        Ok((receipt, signature))
    }

    /// Decode and verify against the worker's public key (known to the server from registration).
    pub fn verify(bytes: &[u8], worker_key: &PublicKey) -> Result<Self, Error> {
        let (receipt, signature) = Self::decode(bytes)?;
        if worker_key.node_id() != receipt.worker {
            return Err(Error::WrongWorker);
        }
        worker_key.verify(RECEIPT_DOMAIN, &bytes[..RECEIPT_LEN - 64], &signature)?;
        Ok(receipt)
    }
}
