//! The worker wire protocol: binary WebSocket messages between clients (browser, CLI, server)
//! and storage workers. One WebSocket binary message carries exactly one frame.
//!
//! ```text
//! frame = version:u8 kind:u8 request_id:u32 body
//! ```
//!
//! Requests (client → worker) and responses (worker → client) share the request id, so one
//! connection multiplexes many requests. Every length is checked against a limit before anything
//! is allocated, unknown versions and kinds are rejected, and a frame must be consumed exactly.

use bytes::Bytes;

use crate::encoding::{Reader, Writer as _};
use crate::order::ORDER_LEN;
use crate::token::{MAX_TOKEN_LEN, MAX_TOKEN_SHARDS, RECEIPT_LEN};
use crate::{Error, MAX_CHUNK_SIZE, ShardId};

/// Largest shard: a whole sealed maximum-size chunk (k = 1): its padded body and the tag.
pub const MAX_SHARD_LEN: usize = crate::padding::BODY_HEADER_LEN + MAX_CHUNK_SIZE as usize + crate::seal::TAG_LEN;
/// Largest frame: a put of the largest shard with the largest token.
pub const MAX_FRAME_LEN: usize = 6 + 2 + MAX_TOKEN_LEN + 32 + 4 + MAX_SHARD_LEN;
/// Longest error message carried in an error frame.
pub const MAX_ERROR_MESSAGE_LEN: usize = 1024;
/// Longest audit proof (a 64 KiB slice of a maximum shard with its hash path).
pub const MAX_PROOF_LEN: usize = 160 * 1024;
/// The most a client may send a worker before one of its requests carried a valid token: the
/// largest request without shard data (a delete of the most ids under the largest token). A
/// put's shard data follows a [`Body::Hello`] (or any request with a valid token), so a stranger
/// never makes a worker buffer more than this.
pub const MAX_INTRODUCTION_LEN: usize = 6 + 2 + MAX_TOKEN_LEN + 2 + 32 * MAX_TOKEN_SHARDS;

/// Why a worker refused a request. The numbers are part of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum ErrorCode {
    /// The frame could not be decoded.
    Malformed = 1,
    UnsupportedVersion = 2,
    TooLarge = 3,
    /// The shard's bytes do not hash to the claimed id.
    HashMismatch = 4,
    /// The token does not decode or its signature does not verify.
    BadToken = 5,
    TokenExpired = 6,
    /// The token's serial was used before.
    TokenReplayed = 7,
    WrongWorker = 8,
    WrongOperation = 9,
    /// The shard is not covered by the token.
    NotInScope = 10,
    /// The token's byte budget is spent.
    OverBudget = 11,
    NotFound = 12,
    /// Too many requests in flight; retry later.
    Busy = 13,
    /// The worker has no room left.
    StorageFull = 14,
    /// The stored shard failed verification and was quarantined.
    Corrupt = 15,
    Internal = 16,
    /// The server withdrew the token (its upload was cancelled or expired).
    Revoked = 17,
}

impl ErrorCode {
    const ALL: [Self; 17] = [
        Self::Malformed,
        Self::UnsupportedVersion,
        Self::TooLarge,
        Self::HashMismatch,
        Self::BadToken,
        Self::TokenExpired,
        Self::TokenReplayed,
        Self::WrongWorker,
        Self::WrongOperation,
        Self::NotInScope,
        Self::OverBudget,
        Self::NotFound,
        Self::Busy,
        Self::StorageFull,
        Self::Corrupt,
        Self::Internal,
        Self::Revoked,
    ];

    /// The code's name in snake case, as metrics and logs label it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnsupportedVersion => "unsupported_version",
            Self::TooLarge => "too_large",
            Self::HashMismatch => "hash_mismatch",
            Self::BadToken => "bad_token",
            Self::TokenExpired => "token_expired",
            Self::TokenReplayed => "token_replayed",
            Self::WrongWorker => "wrong_worker",
            Self::WrongOperation => "wrong_operation",
            Self::NotInScope => "not_in_scope",
            Self::OverBudget => "over_budget",
            Self::NotFound => "not_found",
            Self::Busy => "busy",
            Self::StorageFull => "storage_full",
            Self::Corrupt => "corrupt",
            Self::Internal => "internal",
            Self::Revoked => "revoked",
        }
    }

    fn from_u16(v: u16) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|c| *c as u16 == v)
            .ok_or(Error::NonCanonical("unknown error code"))
    }

    /// The code for a codec error met while checking a request.
    pub fn for_error(e: &Error) -> Self {
        match e {
            Error::UnsupportedVersion { .. } => Self::UnsupportedVersion,
            Error::TooLarge { .. } => Self::TooLarge,
            Error::Expired => Self::TokenExpired,
            Error::WrongWorker => Self::WrongWorker,
            Error::WrongOperation => Self::WrongOperation,
            Error::NotInScope => Self::NotInScope,
            Error::WrongIssuer | Error::BadSignature => Self::BadToken,
            _ => Self::Malformed,
        }
    }
}

/// A frame: a request id and what it says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub request_id: u32,
    pub body: Body,
}

/// Every message of the protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Store a shard under a put token.
    Put {
        token: Vec<u8>,
        shard: ShardId,
        /// Shared, so that a worker's decode can leave the shard in the message it arrived in
        /// ([`Frame::decode_shared`]).
        data: Bytes,
    },
    /// Read a shard under a get token.
    Get { token: Vec<u8>, shard: ShardId },
    /// Delete shards under a delete token.
    Delete { token: Vec<u8>, shards: Vec<ShardId> },
    /// Prove possession of `shard[offset .. offset + len]`.
    AuditChallenge {
        token: Vec<u8>,
        shard: ShardId,
        offset: u64,
        len: u32,
        nonce: [u8; 32],
    },
    /// Present a token before sending anything large: a worker reads at most
    /// [`MAX_INTRODUCTION_LEN`] bytes from a connection until one of its requests carried a
    /// token that verifies (for any operation). Answered by [`Body::Welcome`].
    Hello { token: Vec<u8> },
    /// Hand the worker a reader's signed order ([`crate::order`]) for bytes it received under
    /// a get token of this connection. Answered by [`Body::OrderTaken`] (a reader need not wait
    /// for it) or an error.
    Order { order: Vec<u8> },
    /// Answer to a put: the worker's signed receipt.
    Receipt { receipt: Vec<u8> },
    /// Answer to a get.
    ShardData { shard: ShardId, data: Vec<u8> },
    /// Answer to a delete: the shards that were removed.
    Deleted { shards: Vec<ShardId> },
    /// Answer to an audit challenge.
    AuditProof { nonce: [u8; 32], proof: Vec<u8> },
    /// Answer to a hello: the token verified and the connection may send frames of any size.
    Welcome,
    /// Answer to an order: kept (or an order for more bytes was kept before).
    OrderTaken,
    /// Any request refused.
    Error { code: ErrorCode, message: String },
}

impl Body {
    fn kind(&self) -> u8 {
        match self {
            Self::Put { .. } => 1,
            Self::Get { .. } => 2,
            Self::Delete { .. } => 3,
            Self::AuditChallenge { .. } => 4,
            Self::Hello { .. } => 5,
            Self::Order { .. } => 6,
            Self::Receipt { .. } => 16,
            Self::ShardData { .. } => 17,
            Self::Deleted { .. } => 18,
            Self::AuditProof { .. } => 19,
            Self::Welcome => 20,
            Self::OrderTaken => 21,
            Self::Error { .. } => 31,
        }
    }
}

fn put_len_u32(out: &mut Vec<u8>, len: usize) {
    out.put_u32(u32::try_from(len).expect("lengths are bounded far below 4 GiB"));
}

fn put_ids(out: &mut Vec<u8>, ids: &[ShardId]) {
    out.put_u16(u16::try_from(ids.len()).expect("id lists are bounded by MAX_TOKEN_SHARDS"));
    for id in ids {
        out.extend_from_slice(id.as_bytes());
    }
}

fn put_body(out: &mut Vec<u8>, token: &[u8], shard: &ShardId, data: &[u8]) {
    put_body_head(out, token, shard, data.len());
    out.extend_from_slice(data);
}

/// A put's body up to its data: the token, the shard id and the data's length.
fn put_body_head(out: &mut Vec<u8>, token: &[u8], shard: &ShardId, data_len: usize) {
    out.put_short_bytes(token);
    out.extend_from_slice(shard.as_bytes());
    put_len_u32(out, data_len);
}

/// Where a frame's request id sits.
const REQUEST_ID_AT: std::ops::Range<usize> = 2..6;

/// Number a frame encoded earlier with request id 0 ([`encode_put`], or [`Frame::encode`] before
/// the sender knew the id), in place.
pub fn number_frame(frame: &mut [u8], request_id: u32) -> Result<(), Error> {
    frame
        .get_mut(REQUEST_ID_AT)
        .ok_or(Error::Truncated("frame header"))?
        .copy_from_slice(&request_id.to_be_bytes());
    Ok(())
}

/// Encode a put of `data` (borrowed, so a shard can be framed straight from its chunk's buffer)
/// with request id 0, to be numbered by the sender with [`number_frame`]. The bytes equal
/// [`Frame::encode`] of the same [`Body::Put`].
pub fn encode_put(token: &[u8], shard: &ShardId, data: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(64 + token.len() + data.len());
    put_head_into(&mut out, token, shard, data.len())?;
    out.extend_from_slice(data);
    Ok(out)
}

/// The bytes of a put frame before its `data_len` bytes of shard data, with request id 0:
/// [`encode_put`] is this followed by the data. For a sender that copies the two parts straight
/// into the buffer it sends (the browser's socket relay) instead of framing the shard first.
pub fn put_head(token: &[u8], shard: &ShardId, data_len: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::with_capacity(64 + token.len());
    put_head_into(&mut out, token, shard, data_len)?;
    Ok(out)
}

fn put_head_into(out: &mut Vec<u8>, token: &[u8], shard: &ShardId, data_len: usize) -> Result<(), Error> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Error::too_large("token", token.len(), MAX_TOKEN_LEN));
    }
    if data_len > MAX_SHARD_LEN {
        return Err(Error::too_large("shard", data_len, MAX_SHARD_LEN));
    }
    out.push(crate::FORMAT_VERSION);
    out.push(
        Body::Put {
            token: Vec::new(),
            shard: *shard,
            data: Bytes::new(),
        }
        .kind(),
    );
    out.put_u32(0);
    put_body_head(out, token, shard, data_len);
    Ok(())
}

/// A u32-length-prefixed field of at most `max` bytes, borrowed from the frame.
fn length_prefixed<'a>(r: &mut Reader<'a>, max: usize, what: &'static str) -> Result<&'a [u8], Error> {
    let len = r.u32()? as usize;
    if len > max {
        return Err(Error::too_large(what, len, max));
    }
    r.bytes(len)
}

/// The token, shard id and data of a put encoded by [`encode_put`], borrowed.
fn read_put(put: &[u8]) -> Result<(&[u8], ShardId, &[u8]), Error> {
    let mut r = Reader::new(put, "put frame");
    let version = r.u8()?;
    if version != crate::FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            what: "frame",
            found: version,
        });
    }
    if r.u8()? != 1 {
        return Err(Error::InvalidParams("not a put frame"));
    }
    r.u32()?;
    let token = r.short_bytes(MAX_TOKEN_LEN)?;
    let shard = ShardId(r.array()?);
    let len = r.u32()? as usize;
    let data = r.bytes(len)?;
    r.finish()?;
    Ok((token, shard, data))
}

/// The hello (request id 0) that introduces a connection with the token of a put encoded by
/// [`encode_put`], so clients that send encoded puts need not keep the token beside them.
pub fn hello_for_put(put: &[u8]) -> Result<Vec<u8>, Error> {
    let (token, _, _) = read_put(put)?;
    Frame {
        request_id: 0,
        body: Body::Hello { token: token.to_vec() },
    }
    .encode()
}

/// The same shard as the put `put` (numbered or not), framed under another `token` with request
/// id 0: how an upload sends a shard again to the worker that replaces a failed one.
pub fn reframe_put(put: &[u8], token: &[u8]) -> Result<Vec<u8>, Error> {
    let (_, shard, data) = read_put(put)?;
    encode_put(token, &shard, data)
}

impl Frame {
    /// Encode. Fields over their protocol limits are refused, so what is sent always decodes.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::with_capacity(64 + self.payload_len());
        out.push(crate::FORMAT_VERSION);
        out.push(self.body.kind());
        out.put_u32(self.request_id);
        let check_token = |t: &[u8]| {
            if t.len() > MAX_TOKEN_LEN {
                Err(Error::too_large("token", t.len(), MAX_TOKEN_LEN))
            } else {
                Ok(())
            }
        };
        let check_ids = |ids: &[ShardId]| {
            if ids.len() > MAX_TOKEN_SHARDS {
                Err(Error::too_large("shard list", ids.len(), MAX_TOKEN_SHARDS))
            } else {
                Ok(())
            }
        };
        let check_data = |d: &[u8]| {
            if d.len() > MAX_SHARD_LEN {
                Err(Error::too_large("shard", d.len(), MAX_SHARD_LEN))
            } else {
                Ok(())
            }
        };
        match &self.body {
            Body::Put { token, shard, data } => {
                check_token(token)?;
                check_data(data)?;
                put_body(&mut out, token, shard, data);
            }
            Body::Get { token, shard } => {
                check_token(token)?;
                out.put_short_bytes(token);
                out.extend_from_slice(shard.as_bytes());
            }
            Body::Delete { token, shards } => {
                check_token(token)?;
                check_ids(shards)?;
                out.put_short_bytes(token);
                put_ids(&mut out, shards);
            }
            Body::AuditChallenge {
                token,
                shard,
                offset,
                len,
                nonce,
            } => {
                check_token(token)?;
                out.put_short_bytes(token);
                out.extend_from_slice(shard.as_bytes());
                out.put_u64(*offset);
                out.put_u32(*len);
                out.extend_from_slice(nonce);
            }
            Body::Hello { token } => {
                check_token(token)?;
                out.put_short_bytes(token);
            }
            Body::Order { order } => {
                if order.len() != ORDER_LEN {
                    return Err(Error::InvalidParams("order of the wrong length"));
                }
                out.extend_from_slice(order);
            }
            Body::Welcome | Body::OrderTaken => {}
            Body::Receipt { receipt } => {
                if receipt.len() != RECEIPT_LEN {
                    return Err(Error::InvalidParams("receipt of the wrong length"));
                }
                out.extend_from_slice(receipt);
            }
            Body::ShardData { shard, data } => {
                check_data(data)?;
                out.extend_from_slice(shard.as_bytes());
                put_len_u32(&mut out, data.len());
                out.extend_from_slice(data);
            }
            Body::Deleted { shards } => {
                check_ids(shards)?;
                put_ids(&mut out, shards);
            }
            Body::AuditProof { nonce, proof } => {
                if proof.len() > MAX_PROOF_LEN {
                    return Err(Error::too_large("audit proof", proof.len(), MAX_PROOF_LEN));
                }
                out.extend_from_slice(nonce);
                put_len_u32(&mut out, proof.len());
                out.extend_from_slice(proof);
            }
            Body::Error { code, message } => {
                if message.len() > MAX_ERROR_MESSAGE_LEN {
                    return Err(Error::too_large("error message", message.len(), MAX_ERROR_MESSAGE_LEN));
                }
                out.put_u16(*code as u16);
                out.put_short_bytes(message.as_bytes());
            }
        }
        Ok(out)
    }

    fn payload_len(&self) -> usize {
        match &self.body {
            Body::Put { data, .. } => data.len(),
            Body::ShardData { data, .. } => data.len(),
            Body::AuditProof { proof, .. } => proof.len(),
            _ => 0,
        }
    }

    /// Strict decode of one frame from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode_from(bytes, None)
    }

    /// [`Self::decode`] of a message the caller owns as [`Bytes`]: a put's shard data is a view
    /// into `message` (which it keeps alive) instead of a copy. For the worker, which receives
    /// every shard of a network this way.
    pub fn decode_shared(message: &Bytes) -> Result<Self, Error> {
        Self::decode_from(message, Some(message))
    }

    fn decode_from(bytes: &[u8], shared: Option<&Bytes>) -> Result<Self, Error> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(Error::too_large("frame", bytes.len(), MAX_FRAME_LEN));
        }
        let mut r = Reader::new(bytes, "frame");
        let version = r.u8()?;
        if version != crate::FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                what: "frame",
                found: version,
            });
        }
        let kind = r.u8()?;
        let request_id = r.u32()?;
        let shard = |r: &mut Reader<'_>| r.array().map(ShardId);
        let data = |r: &mut Reader<'_>, max: usize, what: &'static str| -> Result<Vec<u8>, Error> {
            Ok(length_prefixed(r, max, what)?.to_vec())
        };
        let ids = |r: &mut Reader<'_>| -> Result<Vec<ShardId>, Error> {
            let n = usize::from(r.u16()?);
            if n > MAX_TOKEN_SHARDS {
                return Err(Error::too_large("shard list", n, MAX_TOKEN_SHARDS));
            }
            (0..n).map(|_| r.array().map(ShardId)).collect()
        };
        let body = match kind {
            1 => {
                let token = r.short_bytes(MAX_TOKEN_LEN)?.to_vec();
                let shard = shard(&mut r)?;
                let data = length_prefixed(&mut r, MAX_SHARD_LEN, "shard")?;
                Body::Put {
                    token,
                    shard,
                    data: match shared {
                        Some(message) => message.slice_ref(data),
                        None => Bytes::copy_from_slice(data),
                    },
                }
            }
            2 => Body::Get {
                token: r.short_bytes(MAX_TOKEN_LEN)?.to_vec(),
                shard: shard(&mut r)?,
            },
            3 => Body::Delete {
                token: r.short_bytes(MAX_TOKEN_LEN)?.to_vec(),
                shards: ids(&mut r)?,
            },
            4 => Body::AuditChallenge {
                token: r.short_bytes(MAX_TOKEN_LEN)?.to_vec(),
                shard: shard(&mut r)?,
                offset: r.u64()?,
                len: r.u32()?,
                nonce: r.array()?,
            },
            5 => Body::Hello {
                token: r.short_bytes(MAX_TOKEN_LEN)?.to_vec(),
            },
            6 => Body::Order {
                order: r.bytes(ORDER_LEN)?.to_vec(),
            },
            16 => Body::Receipt {
                receipt: r.bytes(RECEIPT_LEN)?.to_vec(),
            },
            17 => {
                let shard = shard(&mut r)?;
                Body::ShardData {
                    shard,
                    data: data(&mut r, MAX_SHARD_LEN, "shard")?,
                }
            }
            18 => Body::Deleted { shards: ids(&mut r)? },
            19 => {
                let nonce = r.array()?;
                Body::AuditProof {
                    nonce,
                    proof: data(&mut r, MAX_PROOF_LEN, "audit proof")?,
                }
            }
            20 => Body::Welcome,
            21 => Body::OrderTaken,
            31 => {
                let code = ErrorCode::from_u16(r.u16()?)?;
                let message = r.short_bytes(MAX_ERROR_MESSAGE_LEN)?;
                let message = String::from_utf8(message.to_vec())
                    .map_err(|_| Error::NonCanonical("error message is not UTF-8"))?;
                Body::Error { code, message }
            }
            _ => return Err(Error::NonCanonical("unknown frame kind")),
        };
        r.finish()?;
        Ok(Self { request_id, body })
    }
}
