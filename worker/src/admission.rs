//! Token admission: what the worker checks before it acts on a request, and the state that
//! makes tokens finite.
//!
//! Every request carries a server-signed [`Token`]. [`Admission::check`] verifies issuer,
//! signature, worker, operation and expiry (in `core`); the worker adds the state `core` cannot
//! keep, in the **serial book**:
//!
//! - **put and get tokens are budgeted**: one token serves many shards of one upload or download
//!   (the server renews it for long transfers), and the worker counts the bytes stored or served
//!   under each serial; a request that would pass the token's byte budget is refused
//!   ([`ErrorCode::OverBudget`]). A put of a shard that was already stored costs nothing.
//! - **delete and audit tokens are single use**: a second request under the same serial is a
//!   replay ([`ErrorCode::TokenReplayed`]).
//! - **put tokens can be revoked**: when an upload is cancelled or expires, the server lists its
//!   tokens in heartbeat answers ([`crate::control`]); a revoked serial is refused
//!   ([`ErrorCode::Revoked`]) and [`Admission::revoke`] hands back the shards it newly stored, for
//!   deletion. Which serial newly stored which shard is kept in memory only, until the token
//!   expires; a shard that another token put again since is no longer that serial's to take back
//!   (the same bytes may now belong to another file). After a restart the server's orphan
//!   collection finds what a revocation could no longer name.
//!
//! A renewed put token keeps its serial, so the budget is one across renewals; the book keeps the
//! latest expiry it has seen for a serial.
//!
//! The book is kept in `serials.log` in the data directory (an append-only file of fixed-size
//! records, compacted at start-up and when it grows) so that a restart does not refill budgets or
//! forget used serials. Records are appended without an fsync: a power cut can lose the last few,
//! which at worst lets a token spend what it had spent again — never more than its budget twice —
//! while an fsync per request would halve ingest. Entries are dropped once their token expired,
//! because an expired token is refused anyway.
//!
//! Put and get tokens serve many requests (every shard of an upload or download on this worker),
//! so once a token's signature verified, the decoded token is remembered by the BLAKE3 hash of
//! its bytes and later requests only repeat the cheap checks (issuer, worker, operation,
//! expiry): an Ed25519 verification per shard was a measurable share of ingest CPU.
//!
//! The issuer key (the server's public key) is given by the operator (`--issuer-key`) or learnt at
//! registration and pinned ([`crate::control`]); until one is known every token is refused.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use disktro_core::keys::PublicKey;
use disktro_core::token::{Operation, Token};
use disktro_core::wire::ErrorCode;
use disktro_core::{NodeId, Serial, ShardId};

use disktro_net::durable;

const BOOK_FILE: &str = "serials.log";
/// serial:[16] expires_at:u64 spent:u64 flags:u8 (1 used, 2 revoked)
const RECORD_LEN: usize = 16 + 8 + 8 + 1;
/// Verified tokens remembered at most (a token is at most 33 KiB, so at most ~4 MiB).
const VERIFIED_TOKENS: usize = 128;

/// A refused request: the protocol's error code and a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: ErrorCode,
    pub message: String,
}

impl Refused {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    expires_at: u64,
    spent: u64,
    used: bool,
    revoked: bool,
}

impl Entry {
    fn fresh(expires_at: u64) -> Self {
        Self {
            expires_at,
            spent: 0,
            used: false,
            revoked: false,
        }
    }
}

#[derive(Debug)]
struct SerialBook {
    path: PathBuf,
    file: File,
    entries: HashMap<Serial, Entry>,
    records_in_file: usize,
    /// Shards each put serial stored newly (not in the file: see the module header).
    stored_under: HashMap<Serial, Vec<ShardId>>,
    /// The serial that may take each of those shards back.
    taker: HashMap<ShardId, Serial>,
}

impl SerialBook {
    fn open(data_dir: &Path, now: u64) -> io::Result<Self> {
        let path = data_dir.join(BOOK_FILE);
        let mut entries = HashMap::new();
        match File::open(&path) {
            Ok(mut f) => {
                let mut bytes = Vec::new();
                f.read_to_end(&mut bytes)?;
                // A torn last record (crash mid-append) is ignored.
                for record in bytes.chunks_exact(RECORD_LEN) {
                    let (serial, entry) = decode_record(record);
                    entries.insert(serial, entry);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        entries.retain(|_, e| e.expires_at > now);
        let file = rewrite(&path, &entries)?;
        Ok(Self {
            path,
            file,
            records_in_file: entries.len(),
            entries,
            stored_under: HashMap::new(),
            taker: HashMap::new(),
        })
    }

    fn record(&mut self, serial: Serial, entry: Entry, now: u64) {
        self.entries.insert(serial, entry);
        // A failed append only weakens replay protection across a restart; the in-memory book
        // still holds, so the request is not failed for it.
        if let Err(e) = self.file.write_all(&encode_record(&serial, &entry)) {
            tracing::warn!(error = %e, path = %self.path.display(), "could not append to the serial book");
        }
        self.records_in_file += 1;
        if self.records_in_file > 2 * self.entries.len() + 4096 {
            self.entries.retain(|_, e| e.expires_at > now);
            let entries = &self.entries;
            self.stored_under.retain(|serial, _| entries.contains_key(serial));
            self.taker.retain(|_, serial| entries.contains_key(serial));
            match rewrite(&self.path, &self.entries) {
                Ok(file) => {
                    self.file = file;
                    self.records_in_file = self.entries.len();
                }
                Err(e) => tracing::warn!(error = %e, "could not compact the serial book"),
            }
        }
    }
}

fn encode_record(serial: &Serial, e: &Entry) -> [u8; RECORD_LEN] {
    let mut out = [0u8; RECORD_LEN];
    out[..16].copy_from_slice(serial.as_bytes());
    out[16..24].copy_from_slice(&e.expires_at.to_be_bytes());
    out[24..32].copy_from_slice(&e.spent.to_be_bytes());
    out[32] = u8::from(e.used) | (u8::from(e.revoked) << 1);
    out
}

fn decode_record(r: &[u8]) -> (Serial, Entry) {
    let u64_at = |at: usize| u64::from_be_bytes(r[at..at + 8].try_into().expect("8 bytes"));
    let serial = Serial(r[..16].try_into().expect("16 bytes"));
    (
        serial,
        Entry {
            expires_at: u64_at(16),
            spent: u64_at(24),
            used: r[32] & 1 != 0,
            revoked: r[32] & 2 != 0,
        },
    )
}

/// Write the live entries to a fresh file (durably) and return it opened for appending.
fn rewrite(path: &Path, entries: &HashMap<Serial, Entry>) -> io::Result<File> {
    let mut bytes = Vec::with_capacity(entries.len() * RECORD_LEN);
    for (serial, entry) in entries {
        bytes.extend_from_slice(&encode_record(serial, entry));
    }
    durable::replace(path, &bytes)?;
    OpenOptions::new().append(true).open(path)
}

fn revoked() -> Refused {
    Refused::new(
        ErrorCode::Revoked,
        "token was revoked: its upload was cancelled or has expired",
    )
}

/// Verifies tokens and keeps the serial book.
#[derive(Debug)]
pub struct Admission {
    node: NodeId,
    issuer: RwLock<Option<PublicKey>>,
    book: Mutex<SerialBook>,
    /// Put and get tokens whose signature verified, by the BLAKE3 hash of their bytes.
    verified: Mutex<HashMap<[u8; 32], Arc<Token>>>,
}

impl Admission {
    pub fn open(data_dir: &Path, node: NodeId, issuer: Option<PublicKey>, now: u64) -> io::Result<Self> {
        Ok(Self {
            node,
            issuer: RwLock::new(issuer),
            book: Mutex::new(SerialBook::open(data_dir, now)?),
            verified: Mutex::new(HashMap::new()),
        })
    }

    pub fn issuer(&self) -> Option<PublicKey> {
        *self.issuer.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set_issuer(&self, key: PublicKey) {
        *self.issuer.write().unwrap_or_else(PoisonError::into_inner) = Some(key);
    }

    /// Verify a token for `operation` at `now` (unix seconds). A put or get token seen before
    /// is not verified again, only checked for issuer, worker, operation and expiry.
    pub fn check(&self, bytes: &[u8], operation: Operation, now: u64) -> Result<Arc<Token>, Refused> {
        let Some(issuer) = self.issuer() else {
            return Err(Refused::new(
                ErrorCode::BadToken,
                "this worker does not know its server's key yet (not registered)",
            ));
        };
        let key = *blake3::hash(bytes).as_bytes();
        let seen = self.verified().get(&key).cloned();
        let checked = match seen {
            // The signature verified under the issuer the token names; `check_use` compares that
            // issuer with today's, so a changed issuer key refuses remembered tokens too.
            Some(token) => token.check_use(&issuer, &self.node, operation, now).map(|()| token),
            None => Token::verify(bytes, &issuer, &self.node, operation, now).map(|token| {
                let token = Arc::new(token);
                if matches!(operation, Operation::Put | Operation::Get) {
                    self.remember(key, Arc::clone(&token), now);
                }
                token
            }),
        };
        checked.map_err(|e| {
            let code = ErrorCode::for_error(&e);
            let message = match code {
                ErrorCode::BadToken => "token signature does not verify".to_owned(),
                ErrorCode::TokenExpired => "token has expired".to_owned(),
                ErrorCode::WrongWorker => "token was issued for another worker".to_owned(),
                ErrorCode::WrongOperation => "token does not allow this operation".to_owned(),
                _ => format!("token is malformed: {e}"),
            };
            Refused::new(code, message)
        })
    }

    /// Verify a token for whatever operation it names: enough to introduce a connection
    /// ([`disktro_core::wire::Body::Hello`]); spends nothing.
    pub fn introduce(&self, bytes: &[u8], now: u64) -> Result<Arc<Token>, Refused> {
        let operation = Token::decode(bytes)
            .map_err(|e| Refused::new(ErrorCode::for_error(&e), format!("token is malformed: {e}")))?
            .operation;
        self.check(bytes, operation, now)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Arc<Token>>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remember a verified token; when full, expired ones go first, and all if none expired.
    fn remember(&self, key: [u8; 32], token: Arc<Token>, now: u64) {
        let mut verified = self.verified();
        if verified.len() >= VERIFIED_TOKENS {
            verified.retain(|_, t| t.expires_at > now);
            if verified.len() >= VERIFIED_TOKENS {
                verified.clear();
            }
        }
        verified.insert(key, token);
    }

    fn book(&self) -> std::sync::MutexGuard<'_, SerialBook> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Spend `bytes` of a put or get token's budget, or refuse without spending.
    pub fn charge(&self, token: &Token, bytes: u64, now: u64) -> Result<(), Refused> {
        let mut book = self.book();
        let mut entry = book
            .entries
            .get(&token.serial)
            .copied()
            .unwrap_or(Entry::fresh(token.expires_at));
        if entry.revoked {
            return Err(revoked());
        }
        entry.expires_at = entry.expires_at.max(token.expires_at);
        let after = entry.spent.saturating_add(bytes);
        if after > token.byte_budget {
            return Err(Refused::new(
                ErrorCode::OverBudget,
                format!(
                    "token budget exceeded: {} of {} bytes already used, {bytes} more asked",
                    entry.spent, token.byte_budget
                ),
            ));
        }
        entry.spent = after;
        book.record(token.serial, entry, now);
        Ok(())
    }

    /// Give back bytes charged for a request that then failed or stored nothing new.
    pub fn refund(&self, token: &Token, bytes: u64, now: u64) {
        let mut book = self.book();
        if let Some(mut entry) = book.entries.get(&token.serial).copied() {
            entry.spent = entry.spent.saturating_sub(bytes);
            book.record(token.serial, entry, now);
        }
    }

    /// Mark a single-use token used, or refuse it as a replay.
    pub fn use_once(&self, token: &Token, now: u64) -> Result<(), Refused> {
        let mut book = self.book();
        if book.entries.get(&token.serial).is_some_and(|e| e.used) {
            return Err(Refused::new(ErrorCode::TokenReplayed, "token was already used"));
        }
        let entry = Entry {
            used: true,
            ..Entry::fresh(token.expires_at)
        };
        book.record(token.serial, entry, now);
        Ok(())
    }

    /// Note that a put under `token` stored `shard`: `newly` when this put wrote it (it was not
    /// on the disk before), so a revocation of the token takes it back; otherwise the shard is
    /// someone's already and no earlier serial may take it back any more. Refused when the token
    /// was revoked meanwhile: the caller then deletes a shard it stored newly.
    pub fn stored(&self, token: &Token, shard: ShardId, newly: bool) -> Result<(), Refused> {
        let mut book = self.book();
        if book.entries.get(&token.serial).is_some_and(|e| e.revoked) {
            return Err(revoked());
        }
        if newly {
            book.stored_under.entry(token.serial).or_default().push(shard);
            book.taker.insert(shard, token.serial);
        } else if book.taker.get(&shard).is_some_and(|s| *s != token.serial) {
            book.taker.remove(&shard);
        }
        Ok(())
    }

    /// Revoke put serial `serial` (valid until `expires_at`): later puts under it are refused.
    /// Returns the shards it stored newly that are still its to take back, for deletion.
    pub fn revoke(&self, serial: Serial, expires_at: u64, now: u64) -> Vec<ShardId> {
        let mut book = self.book();
        let mut entry = book.entries.get(&serial).copied().unwrap_or(Entry::fresh(expires_at));
        if !entry.revoked {
            entry.revoked = true;
            entry.expires_at = entry.expires_at.max(expires_at);
            book.record(serial, entry, now);
        }
        let stored = book.stored_under.remove(&serial).unwrap_or_default();
        stored
            .into_iter()
            .filter(|shard| {
                let ours = book.taker.get(shard) == Some(&serial);
                if ours {
                    book.taker.remove(shard);
                }
                ours
            })
            .collect()
    }

    /// Bytes spent under `serial` so far (for tests and egress claims).
    pub fn spent(&self, serial: &Serial) -> u64 {
        self.book().entries.get(serial).map_or(0, |e| e.spent)
    }
}

#[cfg(test)]
mod tests {
    use disktro_core::keys::Keypair;
    use disktro_core::token::Scope;

    use super::*;

    fn token(server: &Keypair, node: NodeId, op: Operation, budget: u64) -> (Vec<u8>, Token) {
        let t = Token {
            operation: op,
            issuer: server.public(),
            worker: node,
            scope: Scope::Upload([7; 16]),
            serial: Serial::random(),
            expires_at: 2_000,
            byte_budget: budget,
            order_key: None,
            shards: if op == Operation::Put {
                vec![]
            } else {
                vec![ShardId::of(b"x")]
            },
        };
        (t.clone().sign(server).unwrap(), t)
    }

    #[test]
    fn a_revoked_put_token_is_refused_and_takes_back_only_what_is_still_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let server = Keypair::generate();
        let node = Keypair::generate().public().node_id();
        let a = Admission::open(dir.path(), node, Some(server.public()), 1_000).unwrap();
        let (_, cancelled) = token(&server, node, Operation::Put, 1_000);
        let (_, other) = token(&server, node, Operation::Put, 1_000);
        let [mine, shared, old] = [b"mine".as_slice(), b"shared", b"old"].map(ShardId::of);
        a.charge(&cancelled, 30, 1_000).unwrap();
        a.stored(&cancelled, mine, true).unwrap();
        a.stored(&cancelled, shared, true).unwrap();
        // `old` was on the disk before: not this token's to take back.
        a.stored(&cancelled, old, false).unwrap();
        // Another token put `shared` again since: it may belong to another file now.
        a.stored(&other, shared, false).unwrap();

        // Tried: revoking the token. Must hold: only `mine` comes back for deletion; further
        // puts under the token are refused, as is noting a shard it stored meanwhile.
        assert_eq!(a.revoke(cancelled.serial, cancelled.expires_at, 1_000), vec![mine]);
        assert_eq!(a.charge(&cancelled, 1, 1_000).unwrap_err().code, ErrorCode::Revoked);
        assert_eq!(a.stored(&cancelled, old, true).unwrap_err().code, ErrorCode::Revoked);
        assert!(
            a.revoke(cancelled.serial, cancelled.expires_at, 1_000).is_empty(),
            "twice"
        );
        a.charge(&other, 10, 1_000).unwrap();

        // Tried: a restart. Must hold: the revocation is remembered.
        drop(a);
        let a = Admission::open(dir.path(), node, Some(server.public()), 1_001).unwrap();
        assert_eq!(a.charge(&cancelled, 1, 1_001).unwrap_err().code, ErrorCode::Revoked);
    }

    #[test]
    fn a_renewed_token_shares_its_budget_and_lives_as_long_as_its_last_renewal() {
        let dir = tempfile::tempdir().unwrap();
        let server = Keypair::generate();
        let node = Keypair::generate().public().node_id();
        let a = Admission::open(dir.path(), node, Some(server.public()), 1_000).unwrap();
        let (_, first) = token(&server, node, Operation::Put, 100);
        let renewed = Token {
            expires_at: 5_000,
            ..first.clone()
        };
        a.charge(&first, 80, 1_000).unwrap();
        // Tried: spending past the budget under the renewal. Must hold: one budget for both.
        assert_eq!(a.charge(&renewed, 30, 1_000).unwrap_err().code, ErrorCode::OverBudget);
        a.charge(&renewed, 20, 1_000).unwrap();
        // Tried: a restart after the first token's expiry. Must hold: the spend is remembered.
        drop(a);
        let a = Admission::open(dir.path(), node, Some(server.public()), 3_000).unwrap();
        assert_eq!(a.spent(&first.serial), 100);
    }

    #[test]
    fn budgets_and_single_use_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let server = Keypair::generate();
        let node = Keypair::generate().public().node_id();
        let (put_bytes, put) = token(&server, node, Operation::Put, 100);
        let (del_bytes, del) = token(&server, node, Operation::Delete, 0);
        {
            let a = Admission::open(dir.path(), node, Some(server.public()), 1_000).unwrap();
            let put_checked = a.check(&put_bytes, Operation::Put, 1_000).unwrap();
            a.charge(&put_checked, 60, 1_000).unwrap();
            // Tried: spending past the budget. Must hold: OverBudget, nothing spent.
            assert_eq!(a.charge(&put, 41, 1_000).unwrap_err().code, ErrorCode::OverBudget);
            a.charge(&put, 40, 1_000).unwrap();
            a.refund(&put, 30, 1_000);
            assert_eq!(a.spent(&put.serial), 70);
            a.check(&del_bytes, Operation::Delete, 1_000).unwrap();
            a.use_once(&del, 1_000).unwrap();
            assert_eq!(a.use_once(&del, 1_000).unwrap_err().code, ErrorCode::TokenReplayed);
        }
        // Tried: a restart. Must hold: the spent budget and the used serial are remembered.
        let a = Admission::open(dir.path(), node, Some(server.public()), 1_500).unwrap();
        assert_eq!(a.spent(&put.serial), 70);
        assert_eq!(a.charge(&put, 31, 1_500).unwrap_err().code, ErrorCode::OverBudget);
        assert_eq!(a.use_once(&del, 1_500).unwrap_err().code, ErrorCode::TokenReplayed);
        // After expiry the entries are dropped (the tokens themselves are refused as expired).
        let a = Admission::open(dir.path(), node, Some(server.public()), 2_000).unwrap();
        assert_eq!(a.spent(&put.serial), 0);
        assert_eq!(
            a.check(&put_bytes, Operation::Put, 2_000).unwrap_err().code,
            ErrorCode::TokenExpired
        );
    }

    #[test]
    fn a_torn_record_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let server = Keypair::generate();
        let node = Keypair::generate().public().node_id();
        let (_, put) = token(&server, node, Operation::Put, 100);
        {
            let a = Admission::open(dir.path(), node, Some(server.public()), 1_000).unwrap();
            a.charge(&put, 10, 1_000).unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(BOOK_FILE))
            .unwrap();
        f.write_all(&[0xAB; RECORD_LEN - 3]).unwrap();
        drop(f);
        let a = Admission::open(dir.path(), node, Some(server.public()), 1_000).unwrap();
        assert_eq!(a.spent(&put.serial), 10);
    }

    #[test]
    fn a_remembered_token_is_checked_again_on_every_use() {
        let (dir, fresh_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let server = Keypair::generate();
        let node = Keypair::generate().public().node_id();
        let (put_bytes, _) = token(&server, node, Operation::Put, 100);
        let (del_bytes, _) = token(&server, node, Operation::Delete, 0);
        let a = Admission::open(dir.path(), node, Some(server.public()), 1_000).unwrap();
        a.check(&put_bytes, Operation::Put, 1_000).unwrap();
        a.check(&del_bytes, Operation::Delete, 1_000).unwrap();
        assert_eq!(a.verified().len(), 1, "only put and get tokens are remembered");
        let mut forged = put_bytes.clone();
        *forged.last_mut().unwrap() ^= 1;
        // Tried: the remembered token for another operation, after its expiry, a copy with a
        // changed signature, and the token after the issuer key changed. Must hold: each is
        // refused with the code an admission that never saw the token gives.
        let fresh = Admission::open(fresh_dir.path(), node, Some(server.public()), 1_000).unwrap();
        let code = |a: &Admission, bytes: &[u8], op, now| a.check(bytes, op, now).unwrap_err().code;
        for (bytes, op, now) in [
            (&put_bytes, Operation::Get, 1_000),
            (&put_bytes, Operation::Put, 2_000),
            (&forged, Operation::Put, 1_000),
        ] {
            assert_eq!(code(&a, bytes, op, now), code(&fresh, bytes, op, now));
        }
        let other = Keypair::generate().public();
        a.set_issuer(other);
        fresh.set_issuer(other);
        assert_eq!(
            code(&a, &put_bytes, Operation::Put, 1_000),
            code(&fresh, &put_bytes, Operation::Put, 1_000)
        );
        a.set_issuer(server.public());
        a.check(&put_bytes, Operation::Put, 1_000).unwrap();
    }

    #[test]
    fn remembered_tokens_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let server = Keypair::generate();
        let node = Keypair::generate().public().node_id();
        let a = Admission::open(dir.path(), node, Some(server.public()), 1_000).unwrap();
        for _ in 0..VERIFIED_TOKENS * 2 + 1 {
            let (bytes, _) = token(&server, node, Operation::Put, 100);
            a.check(&bytes, Operation::Put, 1_000).unwrap();
            assert!(a.verified().len() <= VERIFIED_TOKENS);
        }
    }

    #[test]
    fn no_issuer_no_admission() {
        let dir = tempfile::tempdir().unwrap();
        let server = Keypair::generate();
        let node = Keypair::generate().public().node_id();
        let (bytes, _) = token(&server, node, Operation::Put, 100);
        let a = Admission::open(dir.path(), node, None, 1_000).unwrap();
        assert_eq!(
            a.check(&bytes, Operation::Put, 1_000).unwrap_err().code,
            ErrorCode::BadToken
        );
        a.set_issuer(server.public());
        a.check(&bytes, Operation::Put, 1_000).unwrap();
    }
}
