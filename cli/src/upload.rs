//! Upload: read the file chunk by chunk, encode each (squeeze, seal, shard) on a blocking thread,
//! send every shard to the worker the server placed it on, collect the signed receipts, then
//! commit the owner-signed manifest with the sealed metadata and the wrapped file key.
//!
//! Two stages run at once with a one-chunk queue between them, so memory stays at a few chunks
//! whatever the file size: the reader-encoder (one blocking thread, one chunk) and the sender
//! (up to [`UploadOptions::chunks_in_flight`] chunks, each chunk's shards to all its workers in
//! parallel over one multiplexed WebSocket per worker, opened on first use).
//!
//! What goes where is the [`UploadSession`]'s to say (`disktro_core::upload`, shared with the
//! browser): a worker that refuses, times out or disconnects is failed for the rest of the
//! upload, the server places its waiting shards again (a replan), and they are sent to their new
//! workers from the frames the failed puts handed back. Put tokens are renewed when they near
//! expiry. When the upload cannot go on, it is cancelled at the server.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use disktro_core::api::{Base64, BeginUpload, Commit, ErrorCode, FileSummary, UploadPlan};
use disktro_core::metadata::FileMetadata;
use disktro_core::padding::BODY_HEADER_LEN;
use disktro_core::squeeze::{Codec, Squeezer};
use disktro_core::upload::{Next, UNPLACED, UploadSession};
use disktro_core::{EncodedChunk, Encoder, FileId, FileKey, Manifest, NodeId, Redundancy};
use disktro_net::client::{Bytes, ConnectOptions, WorkerClient};
use disktro_net::unix_now;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::{OnceCell, mpsc};

use crate::ClientError;
use crate::account::Identity;
use crate::resume::{self, Journal};
use crate::server::Server;

/// Tunables with sensible defaults.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub data_shards: Option<u8>,
    pub parity_shards: Option<u8>,
    pub chunk_size: Option<u32>,
    /// Chunks whose shards are on the wire at once.
    pub chunks_in_flight: usize,
    /// The folder the file goes in (none: the top of the account's tree).
    pub folder_id: Option<disktro_core::FolderId>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            data_shards: None,
            parity_shards: None,
            chunk_size: None,
            chunks_in_flight: 2,
            folder_id: None,
        }
    }
}

/// Progress so far, reported after every chunk stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes_done: u64,
    pub size: u64,
    pub shards_stored: u64,
}

/// A committed upload: the server's summary and the file key (for share links).
#[derive(Debug)]
pub struct Uploaded {
    pub summary: FileSummary,
    pub file_key: FileKey,
}

/// Renew put tokens this long before they expire.
const RENEW_MARGIN: u64 = 120;

/// A shard's frame while its chunk is on the wire.
enum Framed {
    /// Framed for `slot`, not sent yet.
    Ready { slot: usize, frame: Vec<u8> },
    /// Sent and failed: the frame as it went, to be framed again for another worker.
    Returned(Bytes),
    /// Stored: its receipt is in the session.
    Stored,
}

/// A worker's connection, opened by the first chunk that needs it; an error names the worker.
type Link = Arc<OnceCell<Result<Arc<WorkerClient>, String>>>;

/// The sending side of an upload: the session, a connection per worker (opened on first use),
/// and the server for replans and renewals.
pub(crate) struct Sender<'a> {
    server: &'a Server,
    /// Where receipts are noted for a later run ([`crate::resume`]).
    journal: Option<&'a Journal>,
    upload_id: String,
    session: Mutex<UploadSession>,
    links: Mutex<HashMap<NodeId, Link>>,
    /// One replan, resize or renewal at a time: the chunks that wait on it all see its result.
    asking: tokio::sync::Mutex<()>,
    /// A stream's upload, begun before its size was known: chunks past the plan grow it.
    growing: bool,
}

impl<'a> Sender<'a> {
    pub(crate) fn new(server: &'a Server, plan: UploadPlan, journal: Option<&'a Journal>) -> Result<Self, ClientError> {
        Ok(Self {
            server,
            journal,
            upload_id: plan.upload_id.clone(),
            session: Mutex::new(UploadSession::new(plan).map_err(|e| ClientError::Integrity(e.to_string()))?),
            links: Mutex::default(),
            asking: tokio::sync::Mutex::new(()),
            growing: false,
        })
    }

    /// Chunks past the plan grow the upload ([`Sender::grow_to_place`]) instead of failing.
    fn growing(mut self) -> Self {
        self.growing = true;
        self
    }

    /// Have the server place chunk `c` of a stream's upload, unless another chunk's resize did
    /// already: the plan doubles (fewer resizes the longer the stream), or grows just to `c`
    /// when doubling would pass the account's quota or the largest file. The final size is set once the stream
    /// ends ([`Sender::resize_to`]).
    async fn grow_to_place(&self, c: u64) -> Result<(), ClientError> {
        let _one = self.asking.lock().await;
        let (count, chunk_size) = {
            let session = self.session();
            (session.plan().chunk_count, u64::from(session.plan().chunk_size))
        };
        if c < count {
            return Ok(());
        }
        let doubled = (2 * count).max(c + 1);
        let plan = match self.resize_plan(doubled * chunk_size).await {
            Err(ClientError::Api {
                code: ErrorCode::QuotaExceeded | ErrorCode::FileTooLarge,
                ..
            }) if doubled > c + 1 => self.resize_plan((c + 1) * chunk_size).await?,
            other => other?,
        };
        self.session()
            .apply_resize(plan)
            .map_err(|e| ClientError::Integrity(e.to_string()))
    }

    async fn resize_plan(&self, size: u64) -> Result<UploadPlan, ClientError> {
        self.server
            .resize_upload(&self.upload_id, &disktro_core::api::Resize { size })
            .await
    }

    /// Give a stream's upload its final size class, once its last chunk is encoded: the chunks
    /// planned past it, never sent, are dropped.
    async fn resize_to(&self, class: u64) -> Result<(), ClientError> {
        let _one = self.asking.lock().await;
        let (count, chunk_size) = {
            let session = self.session();
            (session.plan().chunk_count, session.plan().chunk_size)
        };
        if count == disktro_core::padding::chunk_count(class, chunk_size) && class.is_multiple_of(u64::from(chunk_size))
        {
            return Ok(());
        }
        let plan = self.resize_plan(class).await?;
        self.session()
            .apply_resize(plan)
            .map_err(|e| ClientError::Integrity(e.to_string()))
    }

    pub(crate) fn session(&self) -> std::sync::MutexGuard<'_, UploadSession> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection to the worker of `slot`, opened on first use; an error names the worker.
    async fn link(&self, slot: usize) -> Result<Arc<WorkerClient>, String> {
        let (node, url) = {
            let session = self.session();
            let grant = session.grant(slot);
            (grant.node_id, grant.url.clone())
        };
        let cell = Arc::clone(
            self.links
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(node)
                .or_default(),
        );
        cell.get_or_init(|| async {
            WorkerClient::connect(&url, &ConnectOptions::default())
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .await
        .clone()
    }

    /// Fresh tokens for every slot when the first nears expiry.
    async fn renew_if_due(&self) -> Result<(), ClientError> {
        if unix_now() + RENEW_MARGIN < self.session().tokens_expire_at() {
            return Ok(());
        }
        let _one = self.asking.lock().await;
        if unix_now() + RENEW_MARGIN < self.session().tokens_expire_at() {
            return Ok(());
        }
        let fresh = self.server.renew_upload(&self.upload_id).await?;
        self.session()
            .renew(fresh)
            .map_err(|e| ClientError::Integrity(e.to_string()))
    }

    /// Have the server place again the shards waiting on failed workers, unless another chunk's
    /// replan did already.
    async fn replan(&self) -> Result<(), ClientError> {
        let _one = self.asking.lock().await;
        let Some(request) = self.session().replan_request() else {
            return Ok(());
        };
        let plan = match self.server.replan_upload(&self.upload_id, &request).await {
            Ok(plan) => plan,
            // The worker's failure is the news; the server's refusal says why it ends there.
            Err(ClientError::Api {
                code: ErrorCode::NotEnoughWorkers,
                message,
                ..
            }) => {
                let failure = self.session().last_failure().unwrap_or("a worker failed").to_owned();
                return Err(ClientError::Workers(format!(
                    "{failure}; no other worker could take its shards ({message})"
                )));
            }
            Err(e) => return Err(e),
        };
        self.session()
            .apply_plan(plan)
            .map_err(|e| ClientError::Integrity(e.to_string()))
    }

    /// Put every shard of one chunk on its worker, in parallel, moving shards whose worker fails
    /// until each has a receipt. Returns the chunk's plaintext length and its shard count. The
    /// shards are framed straight from the chunk's buffer, which then goes back to the encoder
    /// through `recycle` while the receipts are awaited.
    pub(crate) async fn send_chunk(
        &self,
        chunk: EncodedChunk,
        recycle: &mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<(u64, u64), ClientError> {
        let c = chunk.index;
        let plain_len = u64::from(chunk.plain_len);
        let framing = |e: disktro_core::Error| ClientError::Integrity(format!("framing a shard of chunk {c}: {e}"));
        if self.growing && c >= self.session().plan().chunk_count {
            self.grow_to_place(c).await?;
        }
        // Receipts kept from an earlier run must name these very shards.
        self.session()
            .check_stored(c, chunk.shards.ids())
            .map_err(|e| ClientError::Io(format!("{e}; run again with --restart to upload it anew")))?;
        if self.session().is_complete(c) {
            let _ = recycle.send(chunk.shards.into_buffer());
            return Ok((plain_len, 0));
        }
        self.renew_if_due().await?;
        let mut framed = {
            let session = self.session();
            let row = session
                .plan()
                .placement
                .get(usize::try_from(c).unwrap_or(usize::MAX))
                .ok_or_else(|| ClientError::Integrity(format!("the plan has no placement for chunk {c}")))?;
            chunk
                .shards
                .iter()
                .zip(row)
                .map(|((id, bytes), &slot)| {
                    // An unplaced shard's frame is never sent.
                    let slot = usize::from(slot & !UNPLACED);
                    let frame =
                        disktro_core::wire::encode_put(&session.grant(slot).token, &id, bytes).map_err(framing)?;
                    Ok(Framed::Ready { slot, frame })
                })
                .collect::<Result<Vec<_>, ClientError>>()?
        };
        let _ = recycle.send(chunk.shards.into_buffer());
        let shards = framed.len() as u64;
        loop {
            self.renew_if_due().await?;
            // Bound first: the session's lock must not be held across the replan.
            let next = self.session().next_puts(c);
            let puts = match next {
                Next::Done => break,
                Next::Replan => {
                    self.replan().await?;
                    continue;
                }
                Next::Send(puts) => puts,
            };
            let mut jobs = Vec::with_capacity(puts.len());
            for put in puts {
                let token = self.session().grant(put.slot).token.to_vec();
                let frame = match std::mem::replace(&mut framed[put.index], Framed::Stored) {
                    Framed::Ready { slot, frame } if slot == put.slot => frame,
                    Framed::Ready { frame, .. } => disktro_core::wire::reframe_put(&frame, &token).map_err(framing)?,
                    Framed::Returned(sent) => disktro_core::wire::reframe_put(&sent, &token).map_err(framing)?,
                    Framed::Stored => {
                        return Err(ClientError::Integrity(format!(
                            "shard {} of chunk {c} was stored yet has no receipt",
                            put.index
                        )));
                    }
                };
                let url = self.session().grant(put.slot).url.clone();
                jobs.push(async move {
                    let outcome = match self.link(put.slot).await {
                        Ok(link) => link
                            .put_kept(frame)
                            .await
                            .map_err(|(e, sent)| (format!("worker {url}: {e}"), sent)),
                        // Says which worker already.
                        Err(reason) => Err((reason, Bytes::from(frame))),
                    };
                    (put, outcome)
                });
            }
            for (put, outcome) in futures_util::future::join_all(jobs).await {
                match outcome {
                    Ok(receipt) => {
                        if let Some(journal) = self.journal {
                            journal.record(c, put.index, &receipt);
                        }
                        self.session().on_receipt(c, put.index, receipt);
                    }
                    Err((reason, sent)) => {
                        framed[put.index] = Framed::Returned(sent);
                        self.session()
                            .on_failure(c, put.index, put.slot, &reason)
                            .map_err(|e| ClientError::Workers(e.to_string()))?;
                    }
                }
            }
        }
        Ok((plain_len, shards))
    }
}

/// Where an upload of a file on disk keeps its note, so that a later run continues it
/// ([`crate::resume`]).
#[derive(Debug, Clone, Copy)]
pub struct Resumable<'a> {
    pub path: &'a Path,
    pub mtime_ns: u128,
    /// Cancel a noted upload of this file and begin anew.
    pub restart: bool,
}

/// Upload `size` bytes from `reader` as a file described by `metadata`.
pub async fn upload<R: Read + Send + 'static>(
    server: &Server,
    me: &Identity,
    reader: R,
    size: u64,
    metadata: &FileMetadata,
    options: &UploadOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Uploaded, ClientError> {
    upload_resumable(server, me, reader, size, metadata, options, progress, None).await
}

/// An upload to continue or to begin: its plan, the file's id and key, and the receipts kept.
struct Started {
    plan: UploadPlan,
    file_id: FileId,
    file_key: FileKey,
    kept: Vec<(u64, usize, Vec<u8>)>,
    journal: Option<Journal>,
}

/// [`upload`] of a file on disk that notes its receipts as they arrive and, when `resumable`
/// finds a note of the same unchanged file, continues that upload instead of beginning another.
/// A resumable upload that fails is left open at the server (until it expires, 24 h) for the
/// next run; `restart` cancels it and begins anew.
#[allow(clippy::too_many_arguments)]
pub async fn upload_resumable<R: Read + Send + 'static>(
    server: &Server,
    me: &Identity,
    reader: R,
    size: u64,
    metadata: &FileMetadata,
    options: &UploadOptions,
    progress: &(dyn Fn(Progress) + Sync),
    resumable: Option<Resumable<'_>>,
) -> Result<Uploaded, ClientError> {
    let chunk_size = options.chunk_size.unwrap_or(disktro_core::DEFAULT_CHUNK_SIZE);
    let continuing = match resumable {
        Some(r) => continued(server, me, r, size, chunk_size).await?,
        None => None,
    };
    let (started, sealed_metadata) = match continuing {
        // Sealed before as well: the same name and type seal again.
        Some(started) => {
            let sealed = seal(metadata, &started.file_key, &started.file_id)?;
            (started, sealed)
        }
        None => {
            let (file_id, file_key) = (FileId::random(), FileKey::generate());
            // Sealed first: a name or type over its limit fails before any byte is sent.
            let sealed = seal(metadata, &file_key, &file_id)?;
            let mut started = begin(server, size, options, chunk_size, file_id, file_key).await?;
            if let Some(r) = resumable {
                let header = resume::Header {
                    upload_id: started.plan.upload_id.clone(),
                    file_id,
                    wrapped_key: Base64::new(me.keys.identity.wrap_file_key(&file_id, &started.file_key)),
                    size,
                    mtime_ns: r.mtime_ns,
                    chunk_size,
                };
                match Journal::start(server.url(), r.path, &header) {
                    Ok(journal) => started.journal = Some(journal),
                    Err(e) => eprintln!("disktro: cannot note the upload (it will not resume if interrupted): {e}"),
                }
            }
            (started, sealed)
        }
    };
    let Started {
        plan,
        file_id,
        file_key,
        kept,
        journal,
    } = started;
    let sent = send_and_commit(
        server,
        me,
        reader,
        Some(size),
        Description::Sealed(&sealed_metadata),
        options,
        progress,
        &plan,
        file_id,
        &file_key,
        kept,
        journal.as_ref(),
    )
    .await;
    match sent {
        Ok(summary) => {
            if let Some(journal) = journal {
                journal.finish();
            }
            Ok(Uploaded { summary, file_key })
        }
        // Kept open for the next run, which continues it.
        Err(e) if journal.is_some() => {
            Err(e.noting("the upload stays open for 24 hours: run the same command again to continue it"))
        }
        Err(e) => {
            // Best effort: the upload expires on its own if this fails too.
            let _ = server.cancel_upload(&plan.upload_id).await;
            Err(e)
        }
    }
}

/// How many chunks a stream's upload is planned for when it begins; it grows as it goes.
const STREAM_FIRST_CHUNKS: u64 = 16;

/// What an upload commits as the file's sealed metadata.
enum Description<'a> {
    /// Sealed before any byte was sent.
    Sealed(&'a [u8]),
    /// Told once every byte is read (a stream's size, an ETag computed from the body), and
    /// sealed then.
    AtEnd(tokio::sync::oneshot::Receiver<FileMetadata>),
}

/// Upload what `reader` yields as one file, described only once it is read whole: `describe`
/// answers the metadata then (its `size` must be the bytes read), which is sealed for the
/// commit. With `size` known the upload is planned for it; without (an S3 client's multipart
/// upload, sent on as its parts arrive), it begins planned for a few chunks and grows as the
/// stream goes ([`Sender::grow_to_place`]), then takes its final size class before the commit,
/// so the server still learns a size class only. Not resumable: a failed one is cancelled.
pub async fn upload_described<R: Read + Send + 'static>(
    server: &Server,
    me: &Identity,
    reader: R,
    size: Option<u64>,
    describe: tokio::sync::oneshot::Receiver<FileMetadata>,
    options: &UploadOptions,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Uploaded, ClientError> {
    let chunk_size = options.chunk_size.unwrap_or(disktro_core::DEFAULT_CHUNK_SIZE);
    let (file_id, file_key) = (FileId::random(), FileKey::generate());
    let planned = size.unwrap_or(STREAM_FIRST_CHUNKS * u64::from(chunk_size));
    let Started { plan, .. } = begin(server, planned, options, chunk_size, file_id, file_key.clone()).await?;
    let sent = send_and_commit(
        server,
        me,
        reader,
        size,
        Description::AtEnd(describe),
        options,
        progress,
        &plan,
        file_id,
        &file_key,
        Vec::new(),
        None,
    )
    .await;
    match sent {
        Ok(summary) => Ok(Uploaded { summary, file_key }),
        Err(e) => {
            // Best effort: the upload expires on its own if this fails too.
            let _ = server.cancel_upload(&plan.upload_id).await;
            Err(e)
        }
    }
}

/// The file's name, type and size sealed under its key.
fn seal(metadata: &FileMetadata, key: &FileKey, file_id: &FileId) -> Result<Vec<u8>, ClientError> {
    metadata
        .seal(key, file_id)
        .map_err(|e| ClientError::Usage(format!("file name or type: {e}")))
}

/// Begin a new upload of a file with this id and key: the server's plan.
async fn begin(
    server: &Server,
    size: u64,
    options: &UploadOptions,
    chunk_size: u32,
    file_id: FileId,
    file_key: FileKey,
) -> Result<Started, ClientError> {
    // The server learns the size class, not the size (FORMAT.md, Padding); the class depends on
    // the chunk size, so it is stated rather than left to the server's default.
    let plan = server
        .begin_upload(&BeginUpload {
            file_id: file_id.to_hex(),
            size: disktro_core::padding::size_class(size, chunk_size),
            data_shards: options.data_shards,
            parity_shards: options.parity_shards,
            chunk_size: Some(chunk_size),
            folder_id: options.folder_id,
        })
        .await?;
    Ok(Started {
        plan,
        file_id,
        file_key,
        kept: Vec::new(),
        journal: None,
    })
}

/// The noted upload of this file, if it can go on: the same size, modification time and chunk
/// size, still open at the server. A note that cannot go on is forgotten (with `restart`, its
/// upload is cancelled first).
async fn continued(
    server: &Server,
    me: &Identity,
    r: Resumable<'_>,
    size: u64,
    chunk_size: u32,
) -> Result<Option<Started>, ClientError> {
    let Some(noted) = resume::noted(server.url(), r.path) else {
        return Ok(None);
    };
    let h = &noted.header;
    let same = h.size == size && h.mtime_ns == r.mtime_ns && h.chunk_size == chunk_size;
    if r.restart || !same {
        // Best effort: an upload left behind expires on its own.
        let _ = server.cancel_upload(&h.upload_id).await;
        resume::forget(server.url(), r.path);
        return Ok(None);
    }
    let plan = match server.upload_plan(&h.upload_id).await {
        Ok(plan) => plan,
        Err(ClientError::Api {
            code: ErrorCode::UploadNotFound,
            ..
        }) => {
            resume::forget(server.url(), r.path);
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let file_key = me.file_key(&h.file_id, Some(&h.wrapped_key))?;
    let journal = Journal::reopen(server.url(), r.path)
        .map_err(|e| ClientError::Io(format!("cannot reopen the upload's note: {e}")))?;
    Ok(Some(Started {
        plan,
        file_id: h.file_id,
        file_key,
        kept: noted.receipts,
        journal: Some(journal),
    }))
}

#[allow(clippy::too_many_arguments)]
async fn send_and_commit<R: Read + Send + 'static>(
    server: &Server,
    me: &Identity,
    reader: R,
    size: Option<u64>,
    description: Description<'_>,
    options: &UploadOptions,
    progress: &(dyn Fn(Progress) + Sync),
    plan: &UploadPlan,
    file_id: FileId,
    file_key: &FileKey,
    kept: Vec<(u64, usize, Vec<u8>)>,
    journal: Option<&Journal>,
) -> Result<FileSummary, ClientError> {
    let redundancy = Redundancy::new(plan.data_shards, plan.parity_shards)
        .map_err(|e| ClientError::Integrity(format!("the server chose an impossible redundancy: {e}")))?;
    let encoder = Encoder::with_chunk_size(file_key, file_id, redundancy, plan.chunk_size)
        .map_err(|e| ClientError::Integrity(format!("the server chose an impossible chunk size: {e}")))?;
    let mut sender = Sender::new(server, plan.clone(), journal)?;
    if size.is_none() {
        sender = sender.growing();
    }
    {
        let mut session = sender.session();
        for (chunk, index, receipt) in kept {
            if chunk < plan.chunk_count && index < redundancy.total() {
                session.on_receipt(chunk, index, receipt);
            }
        }
    }

    // Reader and encoder share one blocking thread, which reads each chunk straight into the
    // shard buffer it is sealed and sharded in (`Encoder::read_buffer`); the sender takes encoded
    // chunks through a queue one chunk deep. Shard buffers flow back to the encoder once framed,
    // so a long upload allocates its few chunk-sized buffers once instead of per chunk: memory
    // stays put rather than growing with what the allocator keeps of freed buffers.
    // Reading in the encoder's thread costs little time (a 4 MiB read from the page cache takes
    // a fraction of encoding it) and saves the chunk buffers a separate reader would hold.
    let chunk_size = plan.chunk_size as usize;
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<EncodedChunk>(1);
    let (recycle_tx, mut recycle_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let runtime = tokio::runtime::Handle::current();
    let encoding = tokio::task::spawn_blocking(move || -> Result<Option<(Manifest, u64)>, ClientError> {
        let mut encoder = encoder;
        let mut input = Input {
            reader,
            size,
            read: 0,
            peeked: None,
        };
        // Once the file proves compressible, squeezing is the slowest step: while this thread
        // encodes one chunk, a helper squeezes the next (a second read buffer and a squeezer
        // making the encoder's choices).
        let mut ahead: Option<(Vec<u8>, Squeezer)> = None;
        let spare_cores = std::thread::available_parallelism().is_ok_and(|n| n.get() > 1);
        let failed = |e: disktro_core::Error| ClientError::Integrity(format!("encoding failed: {e}"));
        loop {
            // A place in the queue first, then the work: no finished chunk waits in this thread.
            // A closed queue means the sender stopped (it failed): its error is the one reported.
            let Ok(slot) = runtime.block_on(chunk_tx.reserve()) else {
                return Ok(None);
            };
            take_back(&mut encoder, &mut recycle_rx);
            // Read straight into one of the encoder's shard buffers, sealed and sharded there: no
            // second chunk-sized buffer.
            let mut buf = encoder.read_buffer();
            let (filled, last) = input.next_chunk(&mut buf[BODY_HEADER_LEN..])?;
            let Some((second, helper)) = ahead.as_mut().filter(|_| !last) else {
                let chunk = encoder.encode_read(buf, filled, last).map_err(failed)?;
                let compressible = chunk.codec == Codec::Zstd;
                slot.send(chunk);
                if last {
                    return encoder.into_manifest().map(|m| Some((m, input.read))).map_err(failed);
                }
                if ahead.is_none() && compressible && spare_cores {
                    ahead = encoder.sibling_squeezer().map(|helper| (vec![0u8; chunk_size], helper));
                }
                continue;
            };
            let (second_filled, second_last) = input.next_chunk(second)?;
            let (first, second_squeezed) = std::thread::scope(|scope| {
                let other = scope.spawn(|| helper.squeeze(&second[..second_filled]));
                (encoder.encode_read(buf, filled, false), other.join())
            });
            slot.send(first.map_err(failed)?);
            let second_squeezed =
                second_squeezed.map_err(|_| ClientError::Integrity("a squeeze thread stopped".to_owned()))?;
            let Ok(slot) = runtime.block_on(chunk_tx.reserve()) else {
                return Ok(None);
            };
            take_back(&mut encoder, &mut recycle_rx);
            let chunk = encoder
                .encode_squeezed(&second[..second_filled], second_last, second_squeezed)
                .map_err(failed)?;
            slot.send(chunk);
            if second_last {
                return encoder.into_manifest().map(|m| Some((m, input.read))).map_err(failed);
            }
        }
    });

    let done_bytes = AtomicU64::new(0);
    let done_shards = AtomicU64::new(0);
    // Moves the queue's receiving end in: when sending fails, the encoder sees the queue closed.
    let sending_with = &sender;
    let sending = async move {
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                next = chunk_rx.recv(), if open && in_flight.len() < options.chunks_in_flight.max(1) => {
                    match next {
                        Some(chunk) => in_flight.push(sending_with.send_chunk(chunk, &recycle_tx)),
                        None => open = false,
                    }
                }
                Some(result) = in_flight.next() => {
                    let (plain_len, shards) = result?;
                    let bytes_done = done_bytes.fetch_add(plain_len, Ordering::Relaxed) + plain_len;
                    progress(Progress {
                        bytes_done,
                        size: size.unwrap_or(bytes_done),
                        shards_stored: done_shards.fetch_add(shards, Ordering::Relaxed) + shards,
                    });
                }
                else => break,
            }
        }
        Ok::<(), ClientError>(())
    };

    let sent = sending.await;
    let encoded = encoding
        .await
        .map_err(|_| ClientError::Integrity("the encoder stopped unexpectedly".to_owned()))?;
    // A read or encoding failure ends the sender's queue early; report the cause, not the effect.
    let encoded = encoded?;
    sent?;
    let (manifest, read) =
        encoded.ok_or_else(|| ClientError::Integrity("the encoder ended without a manifest".to_owned()))?;
    if size.is_none() {
        sender
            .resize_to(disktro_core::padding::size_class(read, plan.chunk_size))
            .await?;
    }
    let receipts = sender
        .session()
        .take_receipts()
        .map_err(|e| ClientError::Integrity(e.to_string()))?;
    let sealed_later;
    let sealed_metadata = match description {
        Description::Sealed(sealed) => sealed,
        Description::AtEnd(describe) => {
            let metadata = describe
                .await
                .map_err(|_| ClientError::Io("the upload ended without its description".to_owned()))?;
            if metadata.size != read {
                return Err(ClientError::Integrity(format!(
                    "the upload read {read} bytes of a file described as {}",
                    metadata.size
                )));
            }
            sealed_later = seal(&metadata, file_key, &file_id)?;
            &sealed_later
        }
    };

    let commit = Commit::new(manifest, &me.keys.identity, file_key, sealed_metadata, receipts)
        .map_err(|e| ClientError::Integrity(format!("signing the manifest: {e}")))?;
    server.commit(&plan.upload_id, &commit).await
}

/// Hand the shard buffers the sender is done with back to the encoder.
fn take_back(encoder: &mut Encoder, recycle: &mut mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Ok(spare) = recycle.try_recv() {
        encoder.recycle(spare);
    }
}

/// The file being read, chunk by chunk, against the size declared to the server (a stream's,
/// unknown, ends where it ends).
struct Input<R> {
    reader: R,
    size: Option<u64>,
    read: u64,
    /// A stream's byte read past a full chunk to learn whether that chunk was the last.
    peeked: Option<u8>,
}

impl<R: Read> Input<R> {
    /// Fill `buf` with the next chunk; returns its length and whether it is the last: short, or
    /// the one that reaches the declared size (an empty file is one empty chunk), or for a
    /// stream the one after which nothing came. A file that grew or shrank while being read is
    /// an error.
    fn next_chunk(&mut self, buf: &mut [u8]) -> Result<(usize, bool), ClientError> {
        let mut filled = 0;
        if let (Some(byte), Some(first)) = (self.peeked.take(), buf.first_mut()) {
            *first = byte;
            filled = 1;
        }
        filled += self.fill(&mut buf[filled..])?;
        self.read += filled as u64;
        let Some(size) = self.size else {
            if filled < buf.len() {
                return Ok((filled, true));
            }
            let mut byte = [0u8];
            let more = self.fill(&mut byte)? == 1;
            self.peeked = more.then_some(byte[0]);
            return Ok((filled, !more));
        };
        if self.read > size {
            return Err(ClientError::Io(format!(
                "the file grew while being read (more than {size} bytes)"
            )));
        }
        let last = filled < buf.len() || self.read == size;
        if last && self.read != size {
            return Err(ClientError::Io(format!(
                "the file changed while being read: {} bytes, not {size}",
                self.read
            )));
        }
        Ok((filled, last))
    }

    /// Read until `buf` is full or the reader ends; the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, ClientError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Io(format!("cannot read the file: {e}"))),
            }
        }
        Ok(filled)
    }
}
