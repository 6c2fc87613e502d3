//! The shard store: content-addressed, durable, verified on every read.
//!
//! Layout under the data directory:
//!
//! ```text
//! shards/ab/cd/abcd…(64 hex)   one file per shard, named by its BLAKE3 id
//! tmp/                         writes in progress; emptied at start-up
//! quarantine/<id>.<n>          shards whose bytes stopped matching their id
//! ```
//!
//! Guarantees:
//! - **Nothing unverified is stored**: `put` hashes the bytes against the claimed id first.
//! - **Durable or absent**: a shard is written to `tmp/`, fdatasynced, renamed into place and its
//!   directory fsynced; a crash leaves at most a temp file (removed at the next start), never a
//!   partial shard under `shards/`. A drop guard removes the temp file on any early return.
//! - **Identical shards are not rewritten**: a present, intact shard makes `put` a no-op.
//! - **Never serve bad bytes**: `get` re-hashes; a mismatch moves the file to `quarantine/`,
//!   counts it, and answers [`StoreError::Corrupt`].
//! - **Capacity**: `put` refuses what would exceed the configured capacity.
//!
//! Everything here is blocking file I/O: async callers run it on a blocking thread.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use disktro_core::ShardId;
use thiserror::Error;

use crate::durable::{self, TempGuard};

/// Why a store operation failed.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("shard bytes do not hash to the claimed id")]
    HashMismatch,
    #[error("shard not found")]
    NotFound,
    #[error("stored shard failed verification and was quarantined")]
    Corrupt,
    #[error("not enough capacity: {needed} bytes needed, {free} free")]
    StorageFull { needed: u64, free: u64 },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err<'p>(op: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> StoreError + 'p {
    move |source| StoreError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// What `put` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Stored,
    /// An intact copy was already there; nothing was written.
    AlreadyStored,
}

/// Counters for heartbeats and the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreStats {
    pub capacity: u64,
    pub used: u64,
    pub shards: u64,
    pub quarantined: u64,
    /// Temp files left by an interrupted run, removed at start-up.
    pub stale_temp_files_removed: u64,
}

/// A shard store rooted at one data directory.
#[derive(Debug)]
pub struct ShardStore {
    shards: PathBuf,
    tmp: PathBuf,
    quarantine: PathBuf,
    capacity: u64,
    used: AtomicU64,
    count: AtomicU64,
    quarantined: AtomicU64,
    stale_temp_files_removed: u64,
    temp_seq: AtomicU64,
    /// Serialises "is it there? / rename into place / account" so concurrent puts of one shard
    /// count it once and the capacity check cannot be raced past.
    commit: Mutex<()>,
}

fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    durable::fsync_dir(dir).map_err(io_err("fsync directory", dir))
}

impl ShardStore {
    /// Open (creating if needed) the store under `root`, clean up interrupted writes and count
    /// what is stored.
    pub fn open(root: &Path, capacity: u64) -> Result<Self, StoreError> {
        let shards = root.join("shards");
        let tmp = root.join("tmp");
        let quarantine = root.join("quarantine");
        for dir in [&shards, &tmp, &quarantine] {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        let mut stale = 0;
        for entry in fs::read_dir(&tmp).map_err(io_err("list", &tmp))? {
            let path = entry.map_err(io_err("list", &tmp))?.path();
            fs::remove_file(&path).map_err(io_err("remove stale temp file", &path))?;
            stale += 1;
        }
        let (mut used, mut count) = (0, 0);
        for path in Self::walk(&shards)? {
            let len = fs::metadata(&path).map_err(io_err("stat", &path))?.len();
            used += len;
            count += 1;
        }
        let quarantined = fs::read_dir(&quarantine).map_err(io_err("list", &quarantine))?.count() as u64;
        Ok(Self {
            shards,
            tmp,
            quarantine,
            capacity,
            used: AtomicU64::new(used),
            count: AtomicU64::new(count),
            quarantined: AtomicU64::new(quarantined),
            stale_temp_files_removed: stale,
            temp_seq: AtomicU64::new(0),
            commit: Mutex::new(()),
        })
    }

    /// Every file under `shards/` whose name is a shard id, two directory levels down.
    fn walk(shards: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for level1 in fs::read_dir(shards).map_err(io_err("list", shards))? {
            let level1 = level1.map_err(io_err("list", shards))?.path();
            if !level1.is_dir() {
                continue;
            }
            for level2 in fs::read_dir(&level1).map_err(io_err("list", &level1))? {
                let level2 = level2.map_err(io_err("list", &level1))?.path();
                if !level2.is_dir() {
                    continue;
                }
                for file in fs::read_dir(&level2).map_err(io_err("list", &level2))? {
                    let file = file.map_err(io_err("list", &level2))?.path();
                    let is_shard = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.parse::<ShardId>().is_ok());
                    if is_shard {
                        out.push(file);
                    }
                }
            }
        }
        Ok(out)
    }

    /// `shards/ab/cd/<id>`: two levels of 256 directories keep each directory small.
    fn path_of(&self, id: &ShardId) -> PathBuf {
        let hex = id.to_hex();
        self.shards.join(&hex[0..2]).join(&hex[2..4]).join(hex)
    }

    /// Store `data` as shard `id`, durably. Verifies the id first; stores nothing on any error.
    pub fn put(&self, id: &ShardId, data: &[u8]) -> Result<PutOutcome, StoreError> {
        if !id.matches(data) {
            return Err(StoreError::HashMismatch);
        }
        let path = self.path_of(id);
        if self.intact(id, &path)? {
            return Ok(PutOutcome::AlreadyStored);
        }
        let len = data.len() as u64;
        let free = self.capacity.saturating_sub(self.used.load(Ordering::SeqCst));
        if len > free {
            return Err(StoreError::StorageFull { needed: len, free });
        }

        let seq = self.temp_seq.fetch_add(1, Ordering::Relaxed);
        let temp = self.tmp.join(format!("{}.{seq}.tmp", id.to_hex()));
        let mut guard = TempGuard::new(&temp);
        durable::write_synced(&temp, data).map_err(io_err("write", &temp))?;

        let parent = path.parent().expect("shard paths have parents");
        fs::create_dir_all(parent).map_err(io_err("create directory", parent))?;
        let _commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if path.exists() {
            // Another put of the same (verified) bytes won the race.
            return Ok(PutOutcome::AlreadyStored);
        }
        let free = self.capacity.saturating_sub(self.used.load(Ordering::SeqCst));
        if len > free {
            return Err(StoreError::StorageFull { needed: len, free });
        }
        durable::publish(&temp, &path).map_err(io_err("rename into place", &path))?;
        guard.disarm();
        self.used.fetch_add(len, Ordering::SeqCst);
        self.count.fetch_add(1, Ordering::SeqCst);
        Ok(PutOutcome::Stored)
    }

    /// Whether an intact copy is stored; a corrupt one is quarantined on the way.
    fn intact(&self, id: &ShardId, path: &Path) -> Result<bool, StoreError> {
        match self.read_verified(id, path) {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound | StoreError::Corrupt) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Read shard `id`, re-hashing it. Bad bytes are quarantined and never returned.
    pub fn get(&self, id: &ShardId) -> Result<Vec<u8>, StoreError> {
        self.read_verified(id, &self.path_of(id))
    }

    fn read_verified(&self, id: &ShardId, path: &Path) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        match File::open(path) {
            Ok(mut f) => f.read_to_end(&mut bytes).map_err(io_err("read", path))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(e) => return Err(io_err("open", path)(e)),
        };
        if id.matches(&bytes) {
            return Ok(bytes);
        }
        self.quarantine_file(id, path, bytes.len() as u64)?;
        Err(StoreError::Corrupt)
    }

    fn quarantine_file(&self, id: &ShardId, path: &Path, len: u64) -> Result<(), StoreError> {
        let _commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = self.quarantined.fetch_add(1, Ordering::SeqCst);
        let target = self.quarantine.join(format!("{}.{n}", id.to_hex()));
        match fs::rename(path, &target) {
            Ok(()) => {
                self.used
                    .fetch_sub(len.min(self.used.load(Ordering::SeqCst)), Ordering::SeqCst);
                self.count.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
            // Someone else quarantined or deleted it first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.quarantined.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(io_err("quarantine", path)(e)),
        }
    }

    /// The stored length of shard `id` (unverified; for sizing a read before making it).
    pub fn stored_len(&self, id: &ShardId) -> Result<u64, StoreError> {
        let path = self.path_of(id);
        match fs::metadata(&path) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::NotFound),
            Err(e) => Err(io_err("stat", &path)(e)),
        }
    }

    /// Remove shard `id`; `false` if it was not stored.
    pub fn delete(&self, id: &ShardId) -> Result<bool, StoreError> {
        let path = self.path_of(id);
        let _commit = self.commit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("stat", &path)(e)),
        };
        fs::remove_file(&path).map_err(io_err("remove", &path))?;
        fsync_dir(path.parent().expect("shard paths have parents"))?;
        self.used.fetch_sub(len, Ordering::SeqCst);
        self.count.fetch_sub(1, Ordering::SeqCst);
        Ok(true)
    }

    /// Every stored shard id (for the scrubber and holdings summaries).
    pub fn ids(&self) -> Result<Vec<ShardId>, StoreError> {
        Ok(Self::walk(&self.shards)?
            .iter()
            .filter_map(|p| p.file_name()?.to_str()?.parse().ok())
            .collect())
    }

    pub fn stats(&self) -> StoreStats {
        StoreStats {
            capacity: self.capacity,
            used: self.used.load(Ordering::SeqCst),
            shards: self.count.load(Ordering::SeqCst),
            quarantined: self.quarantined.load(Ordering::SeqCst),
            stale_temp_files_removed: self.stale_temp_files_removed,
        }
    }
}
