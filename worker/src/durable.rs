//! Durable file writes: temp file in the same file system, write, `sync_data`, rename into place,
//! fsync the directory. A crash leaves either the old state or the new file, never a partial one;
//! a [`TempGuard`] removes the temp file on any early return.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Removes a temp file when dropped, unless [`TempGuard::disarm`]ed after a successful rename.
#[derive(Debug)]
pub struct TempGuard<'a>(Option<&'a Path>);

impl<'a> TempGuard<'a> {
    pub fn new(path: &'a Path) -> Self {
        Self(Some(path))
    }

    pub fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempGuard<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.0 {
            let _ = fs::remove_file(path);
        }
    }
}

/// Create `temp` (which must not exist), write `bytes` and flush them to disk. `sync_data`
/// (fdatasync) suffices: it flushes the data and the size; the name is made durable by the
/// directory fsync in [`publish`].
pub fn write_synced(temp: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Make a directory's entries (a rename or removal in it) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Rename `temp` to `target` and fsync `target`'s directory.
pub fn publish(temp: &Path, target: &Path) -> io::Result<()> {
    fs::rename(temp, target)?;
    fsync_dir(target.parent().unwrap_or_else(|| Path::new(".")))
}
