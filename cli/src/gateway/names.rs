//! What each folder holds, by name, kept between requests.
//!
//! Finding an object by its key means opening the metadata of every file in its folder (the
//! server never sees a name), so a tool storing n objects in one folder would have the gateway
//! read and open the folder's whole listing n times: n²/2 names, and as many listings sent by
//! the server. The gateway keeps each folder's files, their metadata opened, for [`FRESH_FOR`],
//! and changes its copy as it stores and deletes objects itself: a run of PUTs into one folder
//! reads the folder's listing about once per [`FRESH_FOR`]. What changes elsewhere (the web app,
//! the CLI, another gateway) is seen within [`FRESH_FOR`]; listings (ListObjects) are always
//! read afresh. Memory stays bounded: at most [`MAX_KEPT`] files are kept over all folders, the
//! folders used longest ago going first, and a folder larger than that is read every time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use disktro_core::{FileId, FolderId};

use super::objects::Found;

/// How long a folder's listing is used before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(2);
/// Most files kept over all folders (each about 1 KiB with its summary and metadata).
pub const MAX_KEPT: usize = 20_000;

#[derive(Debug)]
struct Kept {
    read_at: Instant,
    used_at: Instant,
    files: Arc<Vec<Found>>,
}

/// The folders' listings kept ([`self`]), and how many changes the gateway made in each folder:
/// a listing read while the gateway changed its folder may lack the change, so it is not kept.
#[derive(Debug, Default)]
pub struct Names {
    folders: Mutex<HashMap<FolderId, Kept>>,
    changes: Mutex<HashMap<FolderId, u64>>,
}

/// What a reader of a folder's listing saw before reading it ([`Names::reading`]).
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    folder: FolderId,
    changes: u64,
}

impl Names {
    fn folders(&self) -> std::sync::MutexGuard<'_, HashMap<FolderId, Kept>> {
        self.folders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn changes(&self) -> std::sync::MutexGuard<'_, HashMap<FolderId, u64>> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// About to read `folder`'s listing from the server: what [`Names::keep`] checks.
    pub fn reading(&self, folder: FolderId) -> Reading {
        Reading {
            folder,
            changes: self.changes().get(&folder).copied().unwrap_or(0),
        }
    }

    /// The files of `folder` as last read, when that was less than [`FRESH_FOR`] ago.
    pub fn fresh(&self, folder: &FolderId) -> Option<Arc<Vec<Found>>> {
        let mut folders = self.folders();
        let kept = folders.get_mut(folder)?;
        if kept.read_at.elapsed() >= FRESH_FOR {
            folders.remove(folder);
            return None;
        }
        kept.used_at = Instant::now();
        Some(Arc::clone(&kept.files))
    }

    /// Keep the files of a folder just read (unless the gateway changed the folder meanwhile, or
    /// they alone pass [`MAX_KEPT`]), letting go of the folders used longest ago to make room.
    pub fn keep(&self, read: Reading, files: Vec<Found>) -> Arc<Vec<Found>> {
        let files = Arc::new(files);
        let folder = read.folder;
        // Held while kept: a change cannot slip in between the check and the keeping.
        let changes = self.changes();
        if files.len() > MAX_KEPT || changes.get(&folder).copied().unwrap_or(0) != read.changes {
            return files;
        }
        let mut folders = self.folders();
        folders.remove(&folder);
        let mut total: usize = folders.values().map(|k| k.files.len()).sum();
        while total + files.len() > MAX_KEPT {
            let Some(oldest) = folders.iter().min_by_key(|(_, k)| k.used_at).map(|(id, _)| *id) else {
                break;
            };
            total -= folders.remove(&oldest).map_or(0, |k| k.files.len());
        }
        let now = Instant::now();
        folders.insert(
            folder,
            Kept {
                read_at: now,
                used_at: now,
                files: Arc::clone(&files),
            },
        );
        files
    }

    /// This gateway stored `found` in `folder` and deleted `gone` there: the kept listing, if
    /// any, changes the same way (it stays as fresh as it was).
    pub fn changed(&self, folder: &FolderId, found: Option<Found>, gone: &[FileId]) {
        let mut changes = self.changes();
        *changes.entry(*folder).or_default() += 1;
        let mut folders = self.folders();
        let Some(kept) = folders.get_mut(folder) else {
            return;
        };
        // In place unless a request is reading this very listing (then on a copy).
        let files = Arc::make_mut(&mut kept.files);
        files.retain(|f| !gone.contains(&f.file.file_id));
        files.extend(found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use disktro_core::metadata::FileMetadata;

    fn found(name: &str) -> Found {
        let file = serde_json::from_value(serde_json::json!({
            "file_id": FileId::random().to_hex(), "metadata": "", "wrapped_key": "", "size": 0,
            "stored_bytes": 0, "data_shards": 6, "parity_shards": 4, "chunk_count": 1, "created_at": 0,
            "health": {"weakest_chunk_healthy": 10, "shards_per_chunk": 10, "needed": 6},
        }))
        .unwrap();
        Found {
            file,
            metadata: FileMetadata {
                name: name.to_owned(),
                mime: String::new(),
                size: 0,
                attributes: Vec::new(),
            },
        }
    }

    /// Tried: a folder kept, an object stored and one deleted through the gateway, then the
    /// listing aged past FRESH_FOR; a listing read across a change; folders kept past MAX_KEPT
    /// files. Must hold: the kept listing follows the gateway's own changes; an aged one is not
    /// used, nor one read across a change; the folder used longest ago goes first, and a folder
    /// larger than MAX_KEPT is never kept.
    #[test]
    fn kept_listings_follow_the_gateways_changes_age_and_stay_bounded() {
        let names = Names::default();
        let folder = FolderId::random();
        let (a, b) = (found("a"), found("b"));
        let a_id = a.file.file_id;
        names.keep(names.reading(folder), vec![a.clone()]);
        names.changed(&folder, Some(b), &[a_id]);
        let now: Vec<String> = names
            .fresh(&folder)
            .unwrap()
            .iter()
            .map(|f| f.metadata.name.clone())
            .collect();
        assert_eq!(now, ["b"]);
        names.folders().get_mut(&folder).unwrap().read_at -= FRESH_FOR;
        assert!(names.fresh(&folder).is_none(), "an aged listing was used");
        // A listing read while the gateway changed the folder may lack the change.
        let read = names.reading(folder);
        names.changed(&folder, None, &[a_id]);
        names.keep(read, vec![a]);
        assert!(names.fresh(&folder).is_none(), "a listing older than a change was kept");

        let (first, second) = (FolderId::random(), FolderId::random());
        names.keep(names.reading(first), (0..MAX_KEPT / 2).map(|_| found("x")).collect());
        names.keep(names.reading(second), (0..MAX_KEPT / 2).map(|_| found("y")).collect());
        names.fresh(&first);
        names.keep(names.reading(FolderId::random()), vec![found("z")]);
        assert!(names.fresh(&first).is_some(), "the folder used last was let go");
        assert!(names.fresh(&second).is_none(), "the folder used longest ago stayed");
        let huge = FolderId::random();
        names.keep(names.reading(huge), (0..=MAX_KEPT).map(|_| found("h")).collect());
        assert!(names.fresh(&huge).is_none(), "a folder past MAX_KEPT was kept");
    }
}
