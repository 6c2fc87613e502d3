//! Durable file writes: temp file in the same file system, write, `sync_data`, rename into place,
//! fsync the directory. A crash leaves either the old state or the new file, never a partial one;
//! a [`TempGuard`] removes the temp file on any early return.

use std::cell::Cell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek as _, Write};
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
/// Large writes go around the page cache ([`DirectWriter`]): the data must reach the disk before
/// the answer anyway, and on the machines measured the buffered path (copy into the page cache,
/// then write-back at fsync) was the bottleneck of ingest (BENCHMARKS.md). Small writes use the
/// page cache.
pub fn write_synced(temp: &Path, bytes: &[u8]) -> io::Result<()> {
    write_synced_as(temp, bytes, Access::Default)
}

/// Who may read a file written here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The process's umask decides.
    Default,
    /// The owner only (`0600` on Unix), from the moment the file is created: for secrets (key
    /// files, a saved log-in), which must never be readable by others, not even briefly.
    OwnerOnly,
}

fn write_synced_as(temp: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if access == Access::OwnerOnly {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let file = options.open(temp)?;
    let mut writer = if bytes.len() >= DIRECT_MIN {
        DirectWriter::new(file, bytes.len())?
    } else {
        DirectWriter::buffered(file)
    };
    writer.write_all(bytes)?;
    writer.finish()?.sync_data()
}

/// Below this, a buffered write plus fdatasync costs about the same and needs no aligned copy.
const DIRECT_MIN: usize = 64 * 1024;

/// Writes a file from its current offset around the page cache (`O_DIRECT`) where the file system
/// allows it, through one aligned staging buffer; where it does not (tmpfs, other systems), and
/// for a buffered writer, bytes go straight to the file.
///
/// `O_DIRECT` wants the buffer, the length and the offset aligned to the logical block size (4096
/// covers every common disk), so a tail shorter than that stays staged until
/// [`DirectWriter::finish`] writes it padded and cuts the file back to length. `flush` writes
/// every whole block staged. Dropping the writer without `finish` loses what is staged.
#[derive(Debug)]
pub struct DirectWriter {
    file: File,
    stage: Option<AlignedStage>,
}

const ALIGN: usize = 4096;

#[derive(Debug)]
struct AlignedStage {
    buffer: Vec<u8>,
    /// Where the aligned region starts in `buffer`.
    start: usize,
    /// The aligned region's length, a multiple of [`ALIGN`].
    capacity: usize,
    filled: usize,
}

thread_local! {
    /// The stage of the last direct writer dropped on this thread, taken by the next one if it
    /// is large enough: a fresh zeroed stage per shard cost the worker a memset and page faults
    /// on every put. One stage is kept per thread, so a worker keeps at most one per blocking
    /// thread (8, each at most a maximum shard), freed when an idle thread exits.
    static SPARE_STAGE: Cell<Option<Vec<u8>>> = const { Cell::new(None) };
}

impl Drop for AlignedStage {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.buffer);
        // Two writers alive at once on a thread both hand back a stage: keep the larger.
        let _ = SPARE_STAGE.try_with(|spare| {
            let kept = spare.take().filter(|kept| kept.len() > buffer.len());
            spare.set(Some(kept.unwrap_or(buffer)));
        });
    }
}

impl AlignedStage {
    /// The staged whole blocks, leaving the rest at the front of the stage.
    fn write_blocks(&mut self, file: &mut File) -> io::Result<()> {
        let blocks = self.filled / ALIGN * ALIGN;
        file.write_all(&self.buffer[self.start..self.start + blocks])?;
        let region = &mut self.buffer[self.start..self.start + self.filled];
        region.copy_within(blocks.., 0);
        self.filled -= blocks;
        Ok(())
    }
}

impl DirectWriter {
    /// A direct writer staging up to `stage` bytes (rounded up to whole blocks) per system call,
    /// or a plain one if the file system refuses direct I/O.
    pub fn new(file: File, stage: usize) -> io::Result<Self> {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
            let flags = fcntl_getfl(&file)?;
            match fcntl_setfl(&file, flags | OFlags::DIRECT) {
                Ok(()) => {
                    let capacity = stage.max(1).div_ceil(ALIGN) * ALIGN;
                    let buffer = SPARE_STAGE
                        .try_with(Cell::take)
                        .ok()
                        .flatten()
                        .filter(|spare| spare.len() >= capacity + ALIGN)
                        .unwrap_or_else(|| vec![0u8; capacity + ALIGN]);
                    let start = buffer.as_ptr().align_offset(ALIGN);
                    let stage = AlignedStage {
                        buffer,
                        start,
                        capacity,
                        filled: 0,
                    };
                    return Ok(Self {
                        file,
                        stage: Some(stage),
                    });
                }
                Err(rustix::io::Errno::INVAL) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let _ = stage;
        Ok(Self::buffered(file))
    }

    /// A writer that goes through the page cache.
    pub fn buffered(file: File) -> Self {
        Self { file, stage: None }
    }

    /// Whether writes go around the page cache.
    pub fn is_direct(&self) -> bool {
        self.stage.is_some()
    }

    /// Write what is staged and hand back the file (not yet synced).
    pub fn finish(mut self) -> io::Result<File> {
        if let Some(mut stage) = self.stage.take() {
            stage.write_blocks(&mut self.file)?;
            if stage.filled > 0 {
                // The tail goes direct too, padded with zeros to a whole block that `set_len`
                // cuts off again: a buffered tail would cost the sync a second, separate write.
                let tail = stage.filled;
                let padded = tail.div_ceil(ALIGN) * ALIGN;
                stage.buffer[stage.start + tail..stage.start + padded].fill(0);
                self.file.write_all(&stage.buffer[stage.start..stage.start + padded])?;
                let end = self.file.stream_position()? - (padded - tail) as u64;
                self.file.set_len(end)?;
            }
        }
        Ok(self.file)
    }
}

impl Write for DirectWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let Some(stage) = &mut self.stage else {
            return self.file.write(bytes);
        };
        let taken = bytes.len().min(stage.capacity - stage.filled);
        let at = stage.start + stage.filled;
        stage.buffer[at..at + taken].copy_from_slice(&bytes[..taken]);
        stage.filled += taken;
        if stage.filled == stage.capacity {
            stage.write_blocks(&mut self.file)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.stage {
            Some(stage) => stage.write_blocks(&mut self.file),
            None => self.file.flush(),
        }
    }
}

/// Make a directory's entries (a rename or removal in it) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `target` with `bytes` durably: a temp file beside it (`<target>.<pid>-<random>.tmp`,
/// one per writer), written and synced, renamed over `target`, directory fsynced.
pub fn replace(target: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_as(target, bytes, Access::Default)
}

/// [`replace`], with the file readable as `access` says from the moment it exists.
pub fn replace_as(target: &Path, bytes: &[u8], access: Access) -> io::Result<()> {
    // A name of its own per writer: two processes replacing one file at once (two `disktro get`
    // of one link) must not write, or remove, each other's temp file. Whichever renames last
    // wins, whole.
    let mut temp = target.as_os_str().to_owned();
    temp.push(format!(
        ".{}-{}.tmp",
        std::process::id(),
        disktro_core::ids::to_hex(&disktro_core::random_bytes::<4>())
    ));
    let temp = Path::new(&temp);
    let mut guard = TempGuard::new(temp);
    write_synced_as(temp, bytes, access)?;
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
    fn writers_replacing_one_file_at_once_never_fail_and_one_wins_whole() {
        // Tried: 8 threads replacing one file 50 times each with their own bytes (as 20
        // `disktro get` of one link note their download at once).
        // Must hold: no write fails; the file ends as one writer's bytes, whole; no temp file is
        // left.
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("note");
        std::thread::scope(|s| {
            for t in 0..8u8 {
                let target = &target;
                s.spawn(move || {
                    for _ in 0..50 {
                        replace(target, &[t; 100]).unwrap();
                    }
                });
            }
        });
        let end = fs::read(&target).unwrap();
        assert!(end.len() == 100 && end.iter().all(|b| *b == end[0]), "{end:?}");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "temp files left: {left:?}");
    }

    #[test]
    fn every_length_reads_back_exactly() {
        // Tried: lengths below, at and around the direct-I/O threshold and the 4096-byte
        // alignment, growing and then shrinking with other bytes (a stage is reused from one
        // write to the next on a thread, still holding the last file's bytes). Must hold: the
        // file holds exactly the bytes, no padding.
        let dir = tempfile::tempdir().unwrap();
        let lens = [0, 1, 4095, 65_535, 65_536, 65_537, 69_632, 69_633, 699_054, 4 << 20];
        let growing = lens.iter().map(|&len| (len, 7));
        let shrinking = lens.iter().rev().map(|&len| (len, 13));
        for (n, (len, step)) in growing.chain(shrinking).enumerate() {
            let bytes: Vec<u8> = (0..len).map(|i| (i * step % 251) as u8).collect();
            let temp = dir.path().join(format!("{n}.tmp"));
            let target = dir.path().join(format!("{n}"));
            write_synced(&temp, &bytes).unwrap();
            publish(&temp, &target).unwrap();
            assert_eq!(fs::read(&target).unwrap(), bytes, "{len}");
            assert!(!temp.exists());
        }
    }

    #[test]
    fn a_direct_writer_streams_pieces_of_any_size_exactly() {
        // Tried: 1 MiB + 5 bytes written in pieces of odd sizes through a 3-block stage, with a
        // flush after every fifth piece (it may only write whole blocks), direct where the file
        // system allows and buffered. Must hold: the file holds exactly the bytes, in order, with
        // no padding, and a direct writer really bypasses the page cache while writing.
        let dir = tempfile::tempdir().unwrap();
        let bytes: Vec<u8> = (0..(1usize << 20) + 5)
            .map(|i| u8::try_from(i * 31 % 253).unwrap())
            .collect();
        for direct in [true, false] {
            let path = dir.path().join(format!("streamed-{direct}"));
            let file = OpenOptions::new().write(true).create_new(true).open(&path).unwrap();
            let mut writer = if direct {
                DirectWriter::new(file, 3 * ALIGN - 100).unwrap()
            } else {
                DirectWriter::buffered(file)
            };
            #[cfg(target_os = "linux")]
            if writer.is_direct() {
                let flags = rustix::fs::fcntl_getfl(&writer.file).unwrap();
                assert!(flags.contains(rustix::fs::OFlags::DIRECT));
            }
            let mut rest = &bytes[..];
            for (n, size) in [1, 4095, 4097, 7, 12_288, 100_000, 3].into_iter().cycle().enumerate() {
                if rest.is_empty() {
                    break;
                }
                let (piece, tail) = rest.split_at(size.min(rest.len()));
                writer.write_all(piece).unwrap();
                if n % 5 == 4 {
                    writer.flush().unwrap();
                }
                rest = tail;
            }
            writer.finish().unwrap().sync_data().unwrap();
            assert_eq!(fs::read(&path).unwrap(), bytes, "direct: {direct}");
        }
    }
}
