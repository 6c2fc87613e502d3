//! Uploads under way: what `disktro upload FILE` needs to continue after it was killed or
//! failed, kept in `uploads/` of the config directory ([`crate::session::dir`]) until the file is
//! committed.
//!
//! One note per (server, file path): a header line (the upload id, the file id, the file key
//! wrapped under the account's identity key as the server keeps it, the file's size and
//! modification time, the chunk size) and one line per shard receipt, appended as receipts
//! arrive. A killed run loses at most the line being written, which the next run skips.
//!
//! Run again on an unchanged file (same size and modification time), the upload continues: the
//! server gives the plan back with fresh tokens (`GET /uploads/{id}`), the chunks are encoded
//! again (the same key and bytes make the same shards, so nothing new is revealed), a chunk whose
//! shards differ from its receipts stops the upload (the file changed), and only shards without a
//! receipt are sent. `--restart` cancels the noted upload and begins a new one.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use disktro_core::FileId;
use disktro_core::api::Base64;
use serde::{Deserialize, Serialize};

use crate::session;

/// The first line of a note.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Header {
    pub upload_id: String,
    pub file_id: FileId,
    /// The file key wrapped under the account's identity key ("DKWK"), as the server keeps it.
    pub wrapped_key: Base64,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: u128,
    pub chunk_size: u32,
}

/// One receipt line.
#[derive(Debug, Serialize, Deserialize)]
struct Line {
    chunk: u64,
    index: usize,
    receipt: Base64,
}

/// A note read back.
#[derive(Debug)]
pub struct Noted {
    pub header: Header,
    /// (chunk, shard index, receipt), in the order they arrived.
    pub receipts: Vec<(u64, usize, Vec<u8>)>,
}

/// The note of `path`'s upload to the server at `server_url`: the name hashes both.
fn note(server_url: &str, path: &Path) -> Option<PathBuf> {
    let path = std::fs::canonicalize(path).ok()?;
    let name = blake3::Hasher::new_derive_key("disktro cli upload note v1")
        .update(server_url.trim_end_matches('/').as_bytes())
        .update(&[0])
        .update(path.as_os_str().as_encoded_bytes())
        .finalize()
        .to_hex();
    Some(session::dir().ok()?.join("uploads").join(&name[..32]))
}

/// The file's modification time in nanoseconds (0 when the platform has none).
pub fn mtime_ns(meta: &std::fs::Metadata) -> u128 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos())
}

/// The upload of `path` this machine began and has not committed, if any.
pub fn noted(server_url: &str, path: &Path) -> Option<Noted> {
    let file = std::fs::File::open(note(server_url, path)?).ok()?;
    let mut lines = std::io::BufReader::new(file).lines();
    let header: Header = serde_json::from_str(&lines.next()?.ok()?).ok()?;
    let receipts = lines
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str::<Line>(&line).ok())
        .map(|l| (l.chunk, l.index, l.receipt.into_vec()))
        .collect();
    Some(Noted { header, receipts })
}

/// The note of an upload being written: receipts are appended as they arrive.
#[derive(Debug)]
pub struct Journal {
    file: Mutex<std::fs::File>,
    path: PathBuf,
}

impl Journal {
    /// A new note for `path`'s upload, replacing any older one.
    pub fn start(server_url: &str, path: &Path, header: &Header) -> std::io::Result<Self> {
        let note = note(server_url, path).ok_or_else(|| std::io::Error::other("no config directory"))?;
        if let Some(dir) = note.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut first = serde_json::to_vec(header).map_err(std::io::Error::other)?;
        first.push(b'\n');
        disktro_net::durable::replace(&note, &first)?;
        Self::open(note)
    }

    /// The existing note of `path`'s upload, to append to.
    pub fn reopen(server_url: &str, path: &Path) -> std::io::Result<Self> {
        Self::open(note(server_url, path).ok_or_else(|| std::io::Error::other("no config directory"))?)
    }

    fn open(path: PathBuf) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().append(true).open(&path)?;
        Ok(Self {
            file: Mutex::new(file),
            path,
        })
    }

    /// Note a receipt. Best effort: a line that cannot be written costs a re-send on resume.
    pub fn record(&self, chunk: u64, index: usize, receipt: &[u8]) {
        let line = Line {
            chunk,
            index,
            receipt: Base64::from(receipt),
        };
        if let Ok(mut bytes) = serde_json::to_vec(&line) {
            bytes.push(b'\n');
            let _ = self
                .file
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .write_all(&bytes);
        }
    }

    /// The upload is committed: the note goes.
    pub fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Forget `path`'s upload (committed, cancelled or gone at the server).
pub fn forget(server_url: &str, path: &Path) {
    if let Some(note) = note(server_url, path) {
        let _ = std::fs::remove_file(note);
    }
}
