//! A multipart upload sent on while its parts still arrive.
//!
//! S3 clients upload parts concurrently and name the object's size only at Complete, while a
//! file's upload wants its size at begin. So each multipart upload gets, at Create, an upload of
//! unknown size (`upload::upload_described`, which begins small and grows as chunks come) fed by
//! a [`PartFeed`]: parts 1, 2, 3, … in order, each as soon as it is on the spool whole and
//! checked (Content-MD5 or signed hash). Uploading thus overlaps receiving instead of following
//! it, and memory stays at the pipeline's few chunks: the feed reads the spooled parts straight
//! into the encoder's buffer.
//!
//! Complete hands over the parts chosen. When the parts already fed are the start of that list
//! (what every client does), the feed goes on through the rest of the list and ends, and the
//! upload commits with the metadata sealed then (its size, the multipart ETag). Otherwise (a
//! part sent again after it was fed, parts left out, or the assembly's upload already failed:
//! it could not begin, the account having its most uploads open, or it broke off), the assembly
//! is stopped, its upload cancelled, and Complete uploads from the spool as before: the spool keeps every part until
//! Complete or Abort, so nothing depends on the assembly having lived (a gateway restarted
//! between parts completes that way too).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use disktro_core::FolderId;
use disktro_core::metadata::FileMetadata;
use tokio::sync::oneshot;

use super::Gateway;
use crate::ClientError;
use crate::upload::{self, UploadOptions, Uploaded};

/// How long a feed waits for its next part before it gives up and its upload is cancelled: an
/// open upload holds part of the account's quota and one of its few open uploads at the server,
/// and a client that crashed never comes back. A client that does come back later completes
/// from the spool.
const WAIT_AT_MOST: Duration = Duration::from_secs(60 * 60);

/// The feed's view of the parts: which have arrived (by number, their ETag), which went into the
/// upload, in order, and the list Complete chose.
#[derive(Debug, Default)]
struct Parts {
    arrived: BTreeMap<u32, String>,
    fed: Vec<(u32, String)>,
    chosen: Option<Vec<(u32, String)>>,
    /// Why the feed stopped early (Abort, a conflicting Complete): the upload then fails.
    stopped: Option<String>,
}

/// One multipart upload's assembly.
#[derive(Debug)]
pub(super) struct Assembly {
    parts: Mutex<Parts>,
    changed: Condvar,
    describe: Mutex<Option<oneshot::Sender<FileMetadata>>>,
    upload: tokio::sync::Mutex<Option<tokio::task::JoinHandle<Result<Uploaded, ClientError>>>>,
}

impl Assembly {
    /// Begin sending a multipart upload whose parts are spooled in `dir` (as
    /// `part-NNNNN.<etag>`) into `folder`.
    pub fn start(gateway: Arc<Gateway>, dir: PathBuf, folder: FolderId) -> Arc<Self> {
        let (describe, described) = oneshot::channel();
        let assembly = Arc::new(Self {
            parts: Mutex::default(),
            changed: Condvar::new(),
            describe: Mutex::new(Some(describe)),
            upload: tokio::sync::Mutex::new(None),
        });
        let feed = PartFeed {
            assembly: Arc::clone(&assembly),
            dir,
            current: None,
        };
        let task = tokio::spawn(async move {
            let options = UploadOptions {
                folder_id: Some(folder),
                ..UploadOptions::default()
            };
            upload::upload_described(&gateway.server, &gateway.me, feed, None, described, &options, &|_| {}).await
        });
        *assembly.upload.try_lock().expect("nobody else has it yet") = Some(task);
        assembly
    }

    fn parts(&self) -> std::sync::MutexGuard<'_, Parts> {
        self.parts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Part `number` is on the spool, whole and checked, with this ETag (replacing one sent
    /// before under the same number).
    pub fn arrived(&self, number: u32, etag: &str) {
        self.parts().arrived.insert(number, etag.to_owned());
        self.changed.notify_all();
    }

    /// Complete chose these parts (ascending, each on the spool) for an object described by
    /// `metadata`: `true` when the assembly can finish with them (the parts it fed are their
    /// start), `false` when it cannot (and it is stopped).
    pub fn finish(&self, chosen: &[(u32, String)], metadata: FileMetadata) -> bool {
        // An upload that already ended could only have failed (it waits for this description):
        // it could not begin (the account's open uploads or quota), or broke off. The spool
        // still has every part.
        let ended = self
            .upload
            .try_lock()
            .is_ok_and(|task| task.as_ref().is_none_or(tokio::task::JoinHandle::is_finished));
        let mut parts = self.parts();
        let fits = !ended && parts.stopped.is_none() && chosen.starts_with(&parts.fed);
        if fits {
            parts.chosen = Some(chosen.to_vec());
            if let Some(describe) = self.describe.lock().unwrap_or_else(PoisonError::into_inner).take() {
                let _ = describe.send(metadata);
            }
        } else {
            parts.stopped = Some("the multipart upload was completed with other parts than were sent".to_owned());
        }
        drop(parts);
        self.changed.notify_all();
        fits
    }

    /// Stop the assembly (an Abort): its upload fails and is cancelled.
    pub fn stop(&self, why: &str) {
        self.parts().stopped.get_or_insert_with(|| why.to_owned());
        self.changed.notify_all();
    }

    /// The upload's end, once: after [`Assembly::finish`], the committed file.
    pub async fn outcome(&self) -> Result<Uploaded, ClientError> {
        let task = self
            .upload
            .lock()
            .await
            .take()
            .ok_or_else(|| ClientError::Io("the multipart upload is already being completed".to_owned()))?;
        task.await
            .map_err(|_| ClientError::Integrity("the multipart upload's task stopped".to_owned()))?
    }
}

/// The parts of one multipart upload, in order, as one blocking `Read` for the upload pipeline.
struct PartFeed {
    assembly: Arc<Assembly>,
    dir: PathBuf,
    current: Option<File>,
}

impl PartFeed {
    /// Open the next part to feed, waiting for it to arrive; `None` at the end of the chosen
    /// parts.
    fn next_part(&mut self) -> io::Result<Option<File>> {
        let assembly = Arc::clone(&self.assembly);
        let since = Instant::now();
        let mut parts = assembly.parts();
        loop {
            if let Some(why) = &parts.stopped {
                return Err(io::Error::other(why.clone()));
            }
            let next = match &parts.chosen {
                Some(chosen) => match chosen.get(parts.fed.len()) {
                    Some(part) => Some(part.clone()),
                    None => return Ok(None),
                },
                // Before Complete, only the part after the last fed: parts go in in order.
                None => {
                    let number = parts.fed.last().map_or(1, |(n, _)| n + 1);
                    parts.arrived.get(&number).map(|etag| (number, etag.clone()))
                }
            };
            if let Some((number, etag)) = next {
                // Gone when it was sent again meanwhile: the assembly stops, and Complete uploads
                // from the spool.
                let file = File::open(self.dir.join(format!("part-{number:05}.{etag}"))).inspect_err(|e| {
                    parts.stopped = Some(format!("part {number} could not be read from the spool: {e}"));
                })?;
                parts.fed.push((number, etag));
                return Ok(Some(file));
            }
            let waited = since.elapsed();
            if waited >= WAIT_AT_MOST {
                return Err(io::Error::other(
                    "the multipart upload was left without a new part for an hour",
                ));
            }
            parts = assembly
                .changed
                .wait_timeout(parts, WAIT_AT_MOST - waited)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Read for PartFeed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(file) = &mut self.current {
                let n = file.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
            }
            match self.next_part()? {
                Some(file) => self.current = Some(file),
                None => return Ok(0),
            }
        }
    }
}
