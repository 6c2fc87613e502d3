//! The shard store: content-addressed, durable, verified on every read.
//!
//! Layout under the data directory:
//!
//! ```text
//! shards/ab/abcd…(64 hex)      one file per shard, named by its BLAKE3 id, in one of 256
//!                              directories made (and synced) when the store is opened
//! tmp/                         writes in progress; emptied at start-up
//! quarantine/<id>.<n>          shards whose bytes stopped matching their id
//! ```
//!
//! Guarantees:
//! - **Nothing unverified is stored**: `put` hashes the bytes against the claimed id first.
//! - **Durable or absent**: a shard is written to `tmp/`, fdatasynced, renamed into place and its
//!   directory fsynced; a crash leaves at most a temp file (removed at the next start), never a
//!   partial shard under `shards/`. A drop guard removes the temp file on any early return.
//! - **No directory is made while storing**: all 256 exist from `open` on, so a put costs one new
//!   inode (its file), and no shard sits in a directory whose own entry is not yet on disk.
//!   Stores written with the earlier two-level layout (`shards/ab/cd/<id>`) are moved into this
//!   one at `open`, shard by shard with atomic renames: a crash midway loses nothing, and the
//!   next `open` finishes the move.
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

use disktro_net::durable::{self, TempGuard};

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

/// Where shard `id` lives in a store opened on `root` (operators and tests look there).
pub fn shard_file(root: &Path, id: &ShardId) -> PathBuf {
    shard_file_under(&root.join("shards"), id)
}

/// `shards/ab/<id>`: 256 directories made at `open`; a million shards put about 4,000 in each,
/// which ext4's and XFS's hashed directories look up as fast as a few.
fn shard_file_under(shards: &Path, id: &ShardId) -> PathBuf {
    let hex = id.to_hex();
    shards.join(&hex[0..2]).join(hex)
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
        Self::make_fanout(&shards)?;
        Self::move_from_two_levels(&shards)?;
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

    /// Make whichever of the 256 directories under `shards/` are missing, durably: their entries
    /// are synced before any shard is put in them.
    fn make_fanout(shards: &Path) -> Result<(), StoreError> {
        let mut made = false;
        for prefix in 0..=u8::MAX {
            let dir = shards.join(format!("{prefix:02x}"));
            match fs::create_dir(&dir) {
                Ok(()) => made = true,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err("create directory", &dir)(e)),
            }
        }
        if made {
            fsync_dir(shards)?;
            if let Some(root) = shards.parent() {
                fsync_dir(root)?;
            }
        }
        Ok(())
    }

    /// Move shards stored under the earlier layout, `shards/ab/cd/<id>`, to `shards/ab/<id>`,
    /// and remove each old directory once empty. Each move is one rename within the same file
    /// system, so a shard is always in exactly one of the two places.
    fn move_from_two_levels(shards: &Path) -> Result<(), StoreError> {
        for level1 in Self::fanout_dirs(shards)? {
            for entry in fs::read_dir(&level1).map_err(io_err("list", &level1))? {
                let old = entry.map_err(io_err("list", &level1))?.path();
                let is_old_dir = old.is_dir()
                    && old
                        .file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()));
                if !is_old_dir {
                    continue;
                }
                let files = Self::shard_files(&old)?;
                for file in &files {
                    // Placed by its own name, wherever the old layout had it.
                    let id: ShardId = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.parse().ok())
                        .expect("shard_files gives files named by shard ids");
                    let target = shard_file_under(shards, &id);
                    fs::rename(file, &target).map_err(io_err("move into the one-level layout", file))?;
                    if target.parent() != Some(level1.as_path()) {
                        fsync_dir(target.parent().expect("shard paths have parents"))?;
                    }
                }
                if !files.is_empty() {
                    // The new entries are on disk before the old directory goes.
                    fsync_dir(&level1)?;
                }
                // Anything that is not a shard stays, and so does its directory.
                if fs::remove_dir(&old).is_ok() {
                    fsync_dir(&level1)?;
                }
            }
        }
        Ok(())
    }

    /// The directories directly under `shards/`.
    fn fanout_dirs(shards: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut dirs = Vec::with_capacity(256);
        for entry in fs::read_dir(shards).map_err(io_err("list", shards))? {
            let path = entry.map_err(io_err("list", shards))?.path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
        Ok(dirs)
    }

    /// The files directly in `dir` whose names are shard ids.
    fn shard_files(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for file in fs::read_dir(dir).map_err(io_err("list", dir))? {
            let file = file.map_err(io_err("list", dir))?.path();
            let is_shard = file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.parse::<ShardId>().is_ok());
            if is_shard && file.is_file() {
                out.push(file);
            }
        }
        Ok(out)
    }

    /// Every file under `shards/` whose name is a shard id.
    fn walk(shards: &Path) -> Result<Vec<PathBuf>, StoreError> {
        let mut out = Vec::new();
        for dir in Self::fanout_dirs(shards)? {
            out.extend(Self::shard_files(&dir)?);
        }
        Ok(out)
    }

    fn path_of(&self, id: &ShardId) -> PathBuf {
        shard_file_under(&self.shards, id)
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
