//! Capability tokens (server → worker) and receipts (worker → client and server).
//!
//! A **token** is the server's Ed25519-signed permission for one operation on one worker:
//!
//! ```text
//! "DKTK" 0x02 operation:u8 issuer:[32] worker:[32] scope_kind:u8 scope_id:[16]
//!   serial:[16] expires_at:u64 byte_budget:u64 order_key_kind:u8 order_key:[32]?
//!   shard_count:u16 shard_id:[32] × shard_count
//! leaf:u16 depth:u8 sibling:[32] × depth
//! signature:[64]   by `issuer`, domain "token", over the root of the token's batch
//! ```
//!
//! Put tokens carry an upload scope and a byte budget (shard ids optional: a client need not know
//! them when the token is issued); get, delete and audit tokens list the shards they cover. A get
//! token may name the key the reader signs its orders with ([`crate::order`]): what the worker
//! is paid for serving under the token.
//!
//! **Batches**: the server signs the tokens of one answer (a download's, one per worker) with one
//! signature: the tokens' bodies are the leaves of a binary hash tree (BLAKE3, derived keys
//! "disktro v2 token leaf" and "… node", padded with zero leaves to a power of two) whose root it
//! signs; each token carries its leaf index and the path of siblings to the root, so a worker
//! verifies its own token without seeing the others. A token signed alone is a batch of one
//! (depth 0: the root is its leaf).
//!
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
/// The token layout's version (2: order keys and batch signatures).
const TOKEN_VERSION: u8 = 2;
const LEAF_CONTEXT: &str = "disktro v2 token leaf";
const NODE_CONTEXT: &str = "disktro v2 token node";
/// Deepest batch tree: at most 65,536 tokens signed together.
pub const MAX_BATCH_DEPTH: usize = 16;
const RECEIPT_MAGIC: &[u8; 4] = b"DKRC";
const RECEIPT_DOMAIN: &str = "receipt";

/// Most shards one token may list.
pub const MAX_TOKEN_SHARDS: usize = 1024;
/// Longest encoded token.
pub const MAX_TOKEN_LEN: usize =
    4 + 1 + 1 + 32 + 32 + 1 + 16 + 16 + 8 + 8 + 1 + 32 + 2 + 32 * MAX_TOKEN_SHARDS + 2 + 1 + 32 * MAX_BATCH_DEPTH + 64;
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
    /// The key whose orders say what the holder received (get tokens only; `None`: reads under
    /// this token are not paid).
    pub order_key: Option<PublicKey>,
    pub shards: Vec<ShardId>,
}

impl Token {
    /// The body: everything before the batch proof.
    fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160 + 32 * self.shards.len() + 64 + 3 + 32 * 4);
        out.put_versioned_header(TOKEN_MAGIC, TOKEN_VERSION);
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
        match &self.order_key {
            None => out.push(0),
            Some(key) => {
                out.push(1);
                out.extend_from_slice(key.as_bytes());
            }
        }
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
        if self.order_key.is_some() && self.operation != Operation::Get {
            return Err(Error::NonCanonical("only get tokens name an order key"));
        }
        Ok(())
    }

    /// Sign with the server's key (whose public half must be `self.issuer`): a batch of one.
    pub fn sign(self, server: &Keypair) -> Result<Vec<u8>, Error> {
        let mut signed = Self::sign_all(vec![self], server)?;
        Ok(signed.pop().expect("one token in, one out"))
    }

    /// Sign `tokens` together with one signature (see the module's "Batches"), in their order.
    /// Shard ids are sorted first, the one canonical order.
    pub fn sign_all(tokens: Vec<Self>, server: &Keypair) -> Result<Vec<Vec<u8>>, Error> {
        if tokens.len() > 1 << MAX_BATCH_DEPTH {
            return Err(Error::too_large("token batch", tokens.len(), 1 << MAX_BATCH_DEPTH));
        }
        let mut bodies = Vec::with_capacity(tokens.len());
        for mut token in tokens {
            if server.public() != token.issuer {
                return Err(Error::WrongIssuer);
            }
            token.shards.sort_unstable();
            token.shards.dedup();
            token.check_shape()?;
            bodies.push(token.encode_body());
        }
        let depth = bodies.len().next_power_of_two().trailing_zeros() as usize;
        // levels[0] are the leaves (padded), each next level half as long, the last the root.
        let mut levels = vec![bodies.iter().map(|b| leaf_hash(b)).collect::<Vec<_>>()];
        levels[0].resize(1 << depth, [0; 32]);
        while levels.last().expect("the leaves").len() > 1 {
            let below = levels.last().expect("the leaves");
            let above = below.chunks(2).map(|pair| node_hash(&pair[0], &pair[1])).collect();
            levels.push(above);
        }
        let signature = server.sign(TOKEN_DOMAIN, &levels[depth][0]);
        Ok(bodies
            .into_iter()
            .enumerate()
            .map(|(leaf, mut bytes)| {
                bytes.put_u16(u16::try_from(leaf).expect("batches are bounded by MAX_BATCH_DEPTH"));
                bytes.push(u8::try_from(depth).expect("depth is at most MAX_BATCH_DEPTH"));
                for (level, hashes) in levels[..depth].iter().enumerate() {
                    bytes.extend_from_slice(&hashes[(leaf >> level) ^ 1]);
                }
                bytes.extend_from_slice(&signature);
                bytes
            })
            .collect())
    }

    /// What a token says, read without checking its signature.
    pub fn claimed(bytes: &[u8]) -> Result<Self, Error> {
        Self::parse(bytes).map(|(token, _)| token)
    }

    /// The fields before a token's shard list, read without checking anything and without
    /// reading the list: for a reader tallying what it received under each token it was given
    /// ([`crate::order::Orders`], once per shard received).
    pub fn head(bytes: &[u8]) -> Result<Head, Error> {
        read_head(&mut Reader::new(bytes, "token"))
    }

    /// The token's fields and the root its batch proof leads to (with the signature over it),
    /// checking structure only.
    fn parse(bytes: &[u8]) -> Result<(Self, SignedRoot), Error> {
        if bytes.len() > MAX_TOKEN_LEN {
            return Err(Error::too_large("token", bytes.len(), MAX_TOKEN_LEN));
        }
        let mut r = Reader::new(bytes, "token");
        let Head {
            operation,
            issuer,
            worker,
            scope,
            serial,
            expires_at,
            byte_budget,
            order_key,
        } = read_head(&mut r)?;
        let count = usize::from(r.u16()?);
        if count > MAX_TOKEN_SHARDS {
            return Err(Error::too_large("token shard list", count, MAX_TOKEN_SHARDS));
        }
        let shards = (0..count)
            .map(|_| r.array().map(ShardId))
            .collect::<Result<Vec<_>, _>>()?;
        let body_len = bytes.len() - r.remaining();
        let leaf = usize::from(r.u16()?);
        let depth = usize::from(r.u8()?);
        if depth > MAX_BATCH_DEPTH || leaf >> depth != 0 {
            return Err(Error::NonCanonical("token batch proof out of range"));
        }
        r.expect_remaining(Some(depth * 32 + 64))?;
        let mut node = leaf_hash(&bytes[..body_len]);
        for level in 0..depth {
            let sibling: [u8; 32] = r.array()?;
            node = if (leaf >> level) & 1 == 0 {
                node_hash(&node, &sibling)
            } else {
                node_hash(&sibling, &node)
            };
        }
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
            order_key,
            shards,
        };
        token.check_shape()?;
        Ok((token, SignedRoot { root: node, signature }))
    }

    /// Decode and check structure and signature, without judging who it is for.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let (token, signed) = Self::parse(bytes)?;
        token.issuer.verify(TOKEN_DOMAIN, &signed.root, &signed.signature)?;
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

/// A token's fields before its shard list ([`Token::head`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub operation: Operation,
    pub issuer: PublicKey,
    pub worker: NodeId,
    pub scope: Scope,
    pub serial: Serial,
    pub expires_at: u64,
    pub byte_budget: u64,
    pub order_key: Option<PublicKey>,
}

fn read_head(r: &mut Reader<'_>) -> Result<Head, Error> {
    r.versioned_header(TOKEN_MAGIC, &[TOKEN_VERSION])?;
    Ok(Head {
        operation: Operation::from_byte(r.u8()?)?,
        issuer: PublicKey(r.array()?),
        worker: NodeId(r.array()?),
        scope: match (r.u8()?, r.array()?) {
            (1, id) => Scope::Upload(id),
            (2, id) => Scope::File(crate::FileId(id)),
            _ => return Err(Error::NonCanonical("unknown token scope")),
        },
        serial: Serial(r.array()?),
        expires_at: r.u64()?,
        byte_budget: r.u64()?,
        order_key: match r.u8()? {
            0 => None,
            1 => Some(PublicKey(r.array()?)),
            _ => return Err(Error::NonCanonical("unknown order key kind")),
        },
    })
}

/// The root a token's batch proof leads to, and the issuer's signature that should be over it.
struct SignedRoot {
    root: [u8; 32],
    signature: [u8; 64],
}

fn leaf_hash(body: &[u8]) -> [u8; 32] {
    blake3::derive_key(LEAF_CONTEXT, body)
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut pair = [0; 64];
    pair[..32].copy_from_slice(left);
    pair[32..].copy_from_slice(right);
    blake3::derive_key(NODE_CONTEXT, &pair)
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
