//! Orders: a reader's signed statement of how many bytes it received from one worker under one
//! get token. What a worker is paid for serving is what its readers signed, never its own count.
//!
//! ```text
//! "DKOR" 0x01 serial[16] worker[32] bytes:u64 signature[64]   (125 bytes)
//! ```
//!
//! signed (domain "order") by the token's order key ([`crate::token::Token::order_key`]): a key the
//! reader made for this download and gave the server when it asked for the tokens, so the server
//! bound it into them. `bytes` is a running total for the serial: a later order replaces an
//! earlier one, and the worker keeps the largest.
//!
//! [`Orders`] is the reader's side, free of I/O: it tallies what arrived under each token and
//! says when an order is due (every [`ORDER_EVERY`] bytes not yet ordered, and at the end of the
//! download for the rest), so a reader signs a few orders per worker rather than one per shard,
//! and a worker whose reader vanishes loses at most [`ORDER_EVERY`] per token.

use std::collections::HashMap;

use crate::encoding::{Reader, Writer as _};
use crate::keys::{Keypair, PublicKey};
use crate::token::Token;
use crate::{Error, NodeId, Serial};

const ORDER_MAGIC: &[u8; 4] = b"DKOR";
const ORDER_DOMAIN: &str = "order";
/// Length of an encoded order.
pub const ORDER_LEN: usize = 4 + 1 + 16 + 32 + 8 + 64;
/// Bytes received under one token before the reader signs an order for them.
pub const ORDER_EVERY: u64 = 4 << 20;

/// What an order says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    /// The get token's serial.
    pub serial: Serial,
    /// The worker that served the bytes.
    pub worker: NodeId,
    /// Bytes received from `worker` under the token, in all so far.
    pub bytes: u64,
}

impl Order {
    fn encode_unsigned(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ORDER_LEN);
        out.put_header(ORDER_MAGIC);
        out.extend_from_slice(self.serial.as_bytes());
        out.extend_from_slice(self.worker.as_bytes());
        out.put_u64(self.bytes);
        out
    }

    /// Sign with the download's order key.
    pub fn sign(&self, key: &Keypair) -> Vec<u8> {
        let mut bytes = self.encode_unsigned();
        let signature = key.sign(ORDER_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<(Self, [u8; 64]), Error> {
        let mut r = Reader::new(bytes, "order");
        r.header(ORDER_MAGIC)?;
        let order = Self {
            serial: Serial(r.array()?),
            worker: NodeId(r.array()?),
            bytes: r.u64()?,
        };
        let signature: [u8; 64] = r.array()?;
        r.finish()?;
        Ok((order, signature))
    }

    /// What an order says, read without checking its signature: to find the token it is for.
    pub fn claimed(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode(bytes).map(|(order, _)| order)
    }

    /// Decode and verify against the order key of the token it is for.
    pub fn verify(bytes: &[u8], key: &PublicKey) -> Result<Self, Error> {
        let (order, signature) = Self::decode(bytes)?;
        key.verify(ORDER_DOMAIN, &bytes[..ORDER_LEN - 64], &signature)?;
        Ok(order)
    }
}

/// What a reader received under one token, and how much of it it has ordered.
#[derive(Debug, Clone)]
struct Tally {
    worker: NodeId,
    /// Who the caller sends the token's orders to (its index for the worker).
    to: usize,
    received: u64,
    ordered: u64,
}

/// A download's orders: its key and the tally per token.
#[derive(Debug)]
pub struct Orders {
    key: Keypair,
    tallies: HashMap<Serial, Tally>,
}

/// An order to send to worker `to` (the caller's index, as given to [`Orders::received`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub to: usize,
    pub order: Vec<u8>,
}

impl Orders {
    /// A fresh order key for one download.
    pub fn new() -> Self {
        Self::with_key(Keypair::generate())
    }

    /// Orders signed with `key`, made earlier for this download (the browser makes it where it
    /// asks for the tokens and hands it to the tab's pipeline, which downloads).
    pub fn with_key(key: Keypair) -> Self {
        Self {
            key,
            tallies: HashMap::new(),
        }
    }

    /// The key to give the server with the request for tokens, which it binds into them.
    pub fn key(&self) -> PublicKey {
        self.key.public()
    }

    /// `bytes` arrived from worker `to` under `token` (a token the server gave this download):
    /// the order to send it now, if one is due. A token that does not parse is ignored (its get
    /// would not have been served).
    pub fn received(&mut self, to: usize, token: &[u8], bytes: u64) -> Option<Due> {
        let token = Token::head(token).ok()?;
        if token.order_key != Some(self.key.public()) {
            return None;
        }
        let tally = self.tallies.entry(token.serial).or_insert(Tally {
            worker: token.worker,
            to,
            received: 0,
            ordered: 0,
        });
        tally.received = tally.received.saturating_add(bytes);
        (tally.received - tally.ordered >= ORDER_EVERY).then(|| self.order(token.serial))
    }

    /// Every order still due: what arrived since each token's last order (at the end of a
    /// download, or before it gives up).
    pub fn settle(&mut self) -> Vec<Due> {
        let open: Vec<Serial> = self
            .tallies
            .iter()
            .filter(|(_, t)| t.received > t.ordered)
            .map(|(s, _)| *s)
            .collect();
        open.into_iter().map(|serial| self.order(serial)).collect()
    }

    fn order(&mut self, serial: Serial) -> Due {
        let tally = self.tallies.get_mut(&serial).expect("a tallied serial");
        tally.ordered = tally.received;
        Due {
            to: tally.to,
            order: Order {
                serial,
                worker: tally.worker,
                bytes: tally.received,
            }
            .sign(&self.key),
        }
    }
}

impl Default for Orders {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::{Operation, Scope};

    fn get_token(server: &Keypair, worker: NodeId, order_key: Option<PublicKey>) -> Vec<u8> {
        Token {
            operation: Operation::Get,
            issuer: server.public(),
            worker,
            scope: Scope::File(crate::FileId([1; 16])),
            serial: Serial::random(),
            expires_at: 2_000_000_000,
            byte_budget: 1 << 30,
            order_key,
            shards: vec![crate::ShardId::of(b"a")],
        }
        .sign(server)
        .unwrap()
    }

    #[test]
    fn orders_total_what_arrived_per_token_every_few_mebibytes_and_at_the_end() {
        let server = Keypair::generate();
        let mut orders = Orders::new();
        let worker = NodeId([7; 32]);
        let token = get_token(&server, worker, Some(orders.key()));
        let serial = Token::decode(&token).unwrap().serial;
        let shard = 700_000;
        let mut sent = Vec::new();
        for _ in 0..13 {
            sent.extend(orders.received(3, &token, shard));
        }
        // 13 shards of 700 kB: one order once 4 MiB were in (6 shards), one at 12.
        let totals: Vec<u64> = sent
            .iter()
            .map(|d| Order::verify(&d.order, &orders.key()).unwrap().bytes)
            .collect();
        assert_eq!(totals, [6 * shard, 12 * shard]);
        let last = orders.settle();
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].to, 3);
        let order = Order::verify(&last[0].order, &orders.key()).unwrap();
        assert_eq!((order.serial, order.worker, order.bytes), (serial, worker, 13 * shard));
        assert!(orders.settle().is_empty(), "nothing new arrived");
        // A token bound to another key (or none) is not this download's to pay.
        let other = get_token(&server, worker, None);
        assert!(orders.received(0, &other, 10 * ORDER_EVERY).is_none());
        assert!(orders.settle().is_empty());
    }

    #[test]
    fn an_order_verifies_only_against_its_key_and_unchanged() {
        let key = Keypair::generate();
        let order = Order {
            serial: Serial([1; 16]),
            worker: NodeId([2; 32]),
            bytes: 1234,
        };
        let signed = order.sign(&key);
        assert_eq!(signed.len(), ORDER_LEN);
        assert_eq!(Order::verify(&signed, &key.public()).unwrap(), order);
        assert!(Order::verify(&signed, &Keypair::generate().public()).is_err());
        let mut raised = signed.clone();
        raised[ORDER_LEN - 65] ^= 1;
        assert!(Order::verify(&raised, &key.public()).is_err(), "a changed figure fails");
        assert_eq!(Order::claimed(&raised).unwrap().bytes, 1234 ^ 1);
        assert!(Order::verify(&signed[..ORDER_LEN - 1], &key.public()).is_err());
    }
}
