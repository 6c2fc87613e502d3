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
///
/// Large writes go around the page cache (`O_DIRECT`) where the file system allows it: the data
/// must reach the disk before the answer anyway, and on the machines measured the buffered path
/// (copy into the page cache, then write-back at fsync) was the bottleneck of ingest
/// (BENCHMARKS.md). Small writes, and file systems without direct I/O (tmpfs), use the page cache.
pub fn write_synced(temp: &Path, bytes: &[u8]) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if bytes.len() >= DIRECT_MIN {
        match write_direct(temp, bytes) {
            Ok(()) => return Ok(()),
            // Direct I/O unsupported here: the temp file may exist, empty; start over buffered.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                let _ = fs::remove_file(temp);
            }
            Err(e) => return Err(e),
        }
    }
    let mut file = OpenOptions::new().write(true).create_new(true).open(temp)?;
    file.write_all(bytes)?;
    file.sync_data()
}

/// Below this, a buffered write plus fdatasync costs about the same and needs no aligned copy.
#[cfg(target_os = "linux")]
const DIRECT_MIN: usize = 64 * 1024;

/// O_DIRECT wants the buffer, the length and the offset aligned to the logical block size; 4096
/// covers every common disk. The tail is padded with zeros and cut off again with `set_len`.
#[cfg(target_os = "linux")]
fn write_direct(temp: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    const ALIGN: usize = 4096;
    let padded = bytes.len().div_ceil(ALIGN) * ALIGN;
    let mut buffer = vec![0u8; padded + ALIGN];
    let start = buffer.as_ptr().align_offset(ALIGN);
    let aligned = &mut buffer[start..start + padded];
    aligned[..bytes.len()].copy_from_slice(bytes);
    let direct = i32::try_from(rustix::fs::OFlags::DIRECT.bits()).expect("O_DIRECT fits an int");
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(direct)
        .open(temp)?;
    file.write_all(aligned)?;
    file.set_len(bytes.len() as u64)?;
    file.sync_data()
}

/// Make a directory's entries (a rename or removal in it) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `target` with `bytes` durably: a temp file beside it (`<target>.tmp`, a stale one from
/// a crash is removed first), written and synced, renamed over `target`, directory fsynced.
pub fn replace(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = target.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = Path::new(&temp);
    let _ = fs::remove_file(temp);
    let mut guard = TempGuard::new(temp);
    write_synced(temp, bytes)?;
    publish(temp, target)?;
    guard.disarm();
    Ok(())
}

/// Rename `temp` to `target` and fsync `target`'s directory.
pub fn publish(temp: &Path, target: &Path) -> io::Result<()> {
    fs::rename(temp, target)?;
    fsync_dir(target.parent().unwrap_or_else(|| Path::new(".")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_reads_back_exactly() {
        // Tried: lengths below, at and around the direct-I/O threshold and the 4096-byte
        // alignment. Must hold: the file holds exactly the bytes, no padding.
        let dir = tempfile::tempdir().unwrap();
        for len in [0, 1, 4095, 65_535, 65_536, 65_537, 69_632, 69_633, 699_054, 4 << 20] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let temp = dir.path().join(format!("{len}.tmp"));
            let target = dir.path().join(format!("{len}"));
            write_synced(&temp, &bytes).unwrap();
            publish(&temp, &target).unwrap();
            assert_eq!(fs::read(&target).unwrap(), bytes, "{len}");
            assert!(!temp.exists());
        }
    }
}
