//! Download: verify the manifest's signature, open the metadata with the key (a wrong key stops
//! here), then for each chunk fetch any k shards in parallel (data shards from online workers
//! first, the next candidate when one fails), rebuild, open, unsqueeze and write the plaintext in
//! order on a blocking thread (written straight from the decoded chunk: no async file buffers).
//! A few chunks are fetched ahead; memory stays at a few chunks.
//!
//! Every get answered is tallied against its token, and the download signs orders for what it
//! received ([`Orders`]): every few mebibytes per token, and the rest at the end (done or not),
//! handed to the workers, which are paid what the orders say.
//!
//! Get tokens expire (`--get-token-ttl` on the server, an hour by default); a download that
//! outlasts them asks for fresh ones ([`Renew`]) when a quarter of their lifetime (at most a
//! minute) is left, so any file downloads at any speed.

use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use disktro_core::api::FileDownload;
use disktro_core::fetch::{Ask, CHUNK_RETRIES, CHUNK_RETRY_AFTER, Reads, Reconnects};
use disktro_core::keys::PublicKey;
use disktro_core::metadata::FileMetadata;
use disktro_core::order::{Due, Orders};
use disktro_core::{Decoder, FileKey, Manifest, Plaintext, ShardId, SignedManifest, VerifiedShard};
use disktro_net::client::{ConnectOptions, WorkerClient};
use futures_util::stream::{FuturesOrdered, FuturesUnordered, StreamExt as _};

use crate::ClientError;
use crate::worker_speeds::WorkerSpeeds;

/// Chunks fetched ahead of the one being written.
const CHUNKS_AHEAD: usize = 3;

/// A download's connection to one worker ([`Source::worker`]).
#[derive(Default)]
struct Link {
    client: Option<Arc<WorkerClient>>,
    reconnects: Reconnects,
}

/// What a download verified besides the bytes.
#[derive(Debug)]
pub struct Fetched {
    pub metadata: FileMetadata,
    /// Who signed the manifest (show its fingerprint to share-link recipients).
    pub owner: PublicKey,
}

/// Progress so far, reported after every chunk written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub bytes_done: u64,
    pub size: u64,
}

/// Check what the server sent before trusting any of it: the manifest verifies, names the file
/// asked for, was signed by `expected_owner` (when known), and the key opens the metadata.
pub fn verify(
    answer: &FileDownload,
    key: &FileKey,
    expected_owner: Option<&PublicKey>,
) -> Result<(SignedManifest, FileMetadata), ClientError> {
    answer
        .verify(key, expected_owner)
        .map_err(|e| ClientError::Integrity(e.to_string()))
}

/// Asks the server for the same download again, for fresh get tokens (`GET /files/{id}`, or a
/// share download continued by its `download_id`).
pub type Renew = dyn Fn() -> Renewal + Sync;
/// What [`Renew`] returns: the server's answer, to come.
pub type Renewal = Pin<Box<dyn Future<Output = Result<FileDownload, ClientError>> + Send>>;

/// Write the file `answer` describes to `writer` (handed back at the end), with the tokens it
/// carries: a download that outlasts them fails. See [`download_renewing`].
pub async fn download<W: Write + Send + 'static>(
    answer: &FileDownload,
    key: &FileKey,
    expected_owner: Option<&PublicKey>,
    writer: W,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<(Fetched, W), ClientError> {
    download_renewing(answer, key, expected_owner, writer, progress, None, Orders::new()).await
}

/// [`download`], asking `renew` for fresh get tokens before the ones in hand expire, and signing
/// orders with `orders` (whose key the answer's tokens name; under tokens naming another key, or
/// none, nothing is ordered).
pub async fn download_renewing<W: Write + Send + 'static>(
    answer: &FileDownload,
    key: &FileKey,
    expected_owner: Option<&PublicKey>,
    writer: W,
    progress: &(dyn Fn(Progress) + Sync),
    renew: Option<&Renew>,
    orders: Orders,
) -> Result<(Fetched, W), ClientError> {
    let (signed, metadata) = verify(answer, key, expected_owner)?;
    let manifest = signed.manifest().clone();
    let decoder = Decoder::new(key, &manifest, metadata.size).map_err(|e| ClientError::Integrity(e.to_string()))?;
    let source = Source::new(answer, &manifest, renew, orders);
    let written = source
        .write_to(writer, decoder, 0..manifest.chunks.len(), metadata.size, progress)
        .await;
    source.finish().await;
    let writer = written?;
    let fetched = Fetched {
        metadata,
        owner: *signed.owner(),
    };
    Ok((fetched, writer))
}

/// [`download_renewing`] of chunks `chunks` only (each whole, in order): what a reader of a byte
/// range needs. Chunk `i` holds the file's bytes from `i × manifest.chunk_size` on (see
/// [`chunk_span`]). Each chunk is sealed with its index, so one cannot be passed off as another.
#[allow(clippy::too_many_arguments)]
pub async fn download_chunks<W: Write + Send + 'static>(
    answer: &FileDownload,
    key: &FileKey,
    expected_owner: Option<&PublicKey>,
    writer: W,
    chunks: std::ops::Range<usize>,
    renew: Option<&Renew>,
    orders: Orders,
) -> Result<W, ClientError> {
    let (signed, metadata) = verify(answer, key, expected_owner)?;
    let manifest = signed.manifest().clone();
    if chunks.start > chunks.end || chunks.end > manifest.chunks.len() {
        return Err(ClientError::Usage(format!(
            "chunks {chunks:?} are not in a file of {} chunks",
            manifest.chunks.len()
        )));
    }
    let mut decoder = Decoder::new(key, &manifest, metadata.size).map_err(|e| ClientError::Integrity(e.to_string()))?;
    decoder.skip_to(chunks.start as u64);
    let source = Source::new(answer, &manifest, renew, orders);
    let written = source.write_to(writer, decoder, chunks, metadata.size, &|_| {}).await;
    source.finish().await;
    written
}

/// The chunks that hold bytes `start..start + len` of a file stored in chunks of `chunk_size`,
/// and where the range starts in the first of them.
pub fn chunk_span(start: u64, len: u64, chunk_size: u32) -> (std::ops::Range<usize>, u64) {
    let chunk = u64::from(chunk_size);
    let first = start / chunk;
    let end = if len == 0 { first } else { (start + len - 1) / chunk + 1 };
    // A chunk index of a real file fits a usize: its manifest lists every chunk.
    let index = |i: u64| usize::try_from(i).unwrap_or(usize::MAX);
    (index(first)..index(end), start - first * chunk)
}

impl<'a> Source<'a> {
    /// Shards of the chunks of `manifest` (checked against its ids) from the workers and under
    /// the tokens of `answer`.
    pub(crate) fn new(
        answer: &'a FileDownload,
        manifest: &'a Manifest,
        renew: Option<&'a Renew>,
        orders: Orders,
    ) -> Self {
        Source {
            answer,
            manifest,
            // Connected on first use, each on its own: waiting for every connection before
            // asking any would let one stalled worker hold up the rest, whose sockets the workers
            // then close for presenting no token in time.
            workers: answer.nodes.iter().map(|_| tokio::sync::Mutex::default()).collect(),
            reads: Mutex::new(if ranking_by_health_alone() {
                Reads::new(answer, now()).without_speed_ranking()
            } else {
                let remembered = WorkerSpeeds::load();
                Reads::new(answer, now()).remembering(|node| remembered.get(node))
            }),
            renew,
            renewing: tokio::sync::Mutex::new(()),
            orders: Mutex::new(orders),
        }
    }

    /// After the last chunk (fetched or not): order what arrived since each token's last order
    /// (received is received), and keep what was measured of each worker for the next reader.
    pub(crate) async fn finish(&self) {
        let last = self.orders().settle();
        for due in last {
            self.send_order(due).await;
        }
        let mut speeds = WorkerSpeeds::default();
        speeds.learn(self.reads().speeds());
        speeds.forget(self.reads().disproved());
        // A read, a write and an fsync: off the async threads, as the file's own writer is.
        tokio::task::block_in_place(|| speeds.save());
    }

    /// Fetch, decode and write the chunks of `chunks` in order (every chunk, for a whole file), a
    /// few fetched ahead; the writer comes back.
    async fn write_to<W: Write + Send + 'static>(
        &self,
        writer: W,
        decoder: Decoder,
        chunks: std::ops::Range<usize>,
        size: u64,
        progress: &(dyn Fn(Progress) + Sync),
    ) -> Result<W, ClientError> {
        let whole = chunks.start == 0 && chunks.end == self.manifest.chunks.len();
        let mut state = (decoder, ChunkWriter::start(writer));

        let count = chunks.end;
        let mut ahead = FuturesOrdered::new();
        let mut next = chunks.start;
        let mut written = 0u64;
        while next < count || !ahead.is_empty() {
            while next < count && ahead.len() < CHUNKS_AHEAD {
                ahead.push_back(self.fetch(next));
                next += 1;
            }
            let Some(fetched) = ahead.next().await else { break };
            let (index, shards) = fetched?;
            // Decoding is CPU work: on a blocking thread, the decoder and the writer travelling there
            // and back. Handing the chunk to the writer waits while the one before is being written.
            let (back, wrote) = tokio::task::spawn_blocking(move || {
                let (mut decoder, sink) = state;
                for buffer in sink.written() {
                    decoder.recycle(buffer);
                }
                let plain = decoder
                    .decode_verified(index as u64, shards)
                    .map_err(|e| ClientError::Integrity(format!("chunk {index} does not open: {e}")))?;
                let len = plain.len() as u64;
                Ok::<_, ClientError>(((decoder, sink.send(plain)?), len))
            })
            .await
            .map_err(|_| ClientError::Integrity("the decoder stopped unexpectedly".to_owned()))??;
            state = back;
            written += wrote;
            progress(Progress {
                bytes_done: written,
                size,
            });
        }
        let (decoder, sink) = state;
        if whole {
            decoder
                .finish()
                .map_err(|e| ClientError::Integrity(format!("the file is incomplete: {e}")))?;
        }
        tokio::task::block_in_place(|| sink.finish())
    }
}

/// Writes decoded chunks in order on a thread of its own, so that writing one chunk overlaps
/// decoding the next. Holds at most one chunk waiting besides the one being written, and hands
/// written chunks' buffers back for the decoder to reuse.
struct ChunkWriter<W> {
    chunks: std::sync::mpsc::SyncSender<Plaintext>,
    written: std::sync::mpsc::Receiver<Vec<u8>>,
    thread: std::thread::JoinHandle<Result<W, ClientError>>,
}

impl<W: Write + Send + 'static> ChunkWriter<W> {
    fn start(mut writer: W) -> Self {
        let (chunks, incoming) = std::sync::mpsc::sync_channel::<Plaintext>(0);
        let (done, written) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            for chunk in incoming {
                writer.write_all(&chunk).map_err(write_error)?;
                let _ = done.send(chunk.into_buffer());
            }
            writer.flush().map_err(write_error)?;
            Ok(writer)
        });
        Self {
            chunks,
            written,
            thread,
        }
    }

    /// Buffers of chunks written since the last call.
    fn written(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        self.written.try_iter()
    }

    /// Hand over the next chunk; blocks while the chunk before is still being written.
    fn send(self, chunk: Plaintext) -> Result<Self, ClientError> {
        match self.chunks.send(chunk) {
            Ok(()) => Ok(self),
            // The thread stopped at a failed write: its error says why.
            Err(_) => Err(self
                .finish()
                .err()
                .unwrap_or_else(|| write_error(std::io::ErrorKind::BrokenPipe.into()))),
        }
    }

    /// Wait for every chunk to be written and flushed; the writer comes back.
    fn finish(self) -> Result<W, ClientError> {
        drop(self.chunks);
        self.thread
            .join()
            .unwrap_or_else(|_| Err(ClientError::Io("the file writer stopped unexpectedly".to_owned())))
    }
}

fn write_error(e: std::io::Error) -> ClientError {
    ClientError::Io(format!("cannot write the file: {e}"))
}

/// Where a reader's shards come from: the workers of a [`FileDownload`], asked by the readers'
/// rule, hedged and renewed; shared by downloads and restripes ([`crate::restripe`]).
pub(crate) struct Source<'a> {
    answer: &'a FileDownload,
    manifest: &'a Manifest,
    workers: Vec<tokio::sync::Mutex<Link>>,
    /// Tokens in hand and stragglers so far (`disktro_core::fetch`, shared with the browser).
    reads: Mutex<Reads>,
    renew: Option<&'a Renew>,
    /// One renewal at a time: chunks fetched ahead wait for it rather than each asking.
    renewing: tokio::sync::Mutex<()>,
    /// What arrived under each token, and the key the orders for it are signed with.
    orders: Mutex<Orders>,
}

/// `DISKTRO_READ_RANKING=health`: rank workers by health alone, not by measured speed — a
/// diagnostic, and how `make bench` measures what the speed ranking is worth.
fn ranking_by_health_alone() -> bool {
    std::env::var_os("DISKTRO_READ_RANKING").is_some_and(|v| v == "health")
}

/// The wall clock as [`Reads`] takes it.
fn now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

impl Source<'_> {
    fn reads(&self) -> std::sync::MutexGuard<'_, Reads> {
        self.reads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn orders(&self) -> std::sync::MutexGuard<'_, Orders> {
        self.orders.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hand an order to its worker, on the download's connection to it (opened again if it
    /// ended). Not waited for; one that cannot be delivered costs the worker what it covered.
    async fn send_order(&self, due: Due) {
        if let Some(worker) = self.worker(due.to).await {
            let _ = worker.order(due.order).await;
        }
    }

    /// The connection to node `n`, opened on first use and again when it has ended (a worker
    /// restarted, or one that reset the connection under load, is not lost for the rest of the
    /// download); `None` when it cannot be reached now.
    async fn worker(&self, n: usize) -> Option<Arc<WorkerClient>> {
        let url = &self.answer.nodes.get(n)?.url;
        // Held while connecting: the chunks asking this node meanwhile wait for the one attempt.
        let mut link = self.workers.get(n)?.lock().await;
        if let Some(client) = link.client.as_ref().filter(|c| !c.is_closed()) {
            return Some(Arc::clone(client));
        }
        link.client = None;
        if !link.reconnects.may_connect(now()) {
            return None;
        }
        link.reconnects.attempt();
        match WorkerClient::connect(url, &ConnectOptions::default()).await {
            Ok(client) => {
                let client = Arc::new(client);
                link.client = Some(Arc::clone(&client));
                Some(client)
            }
            Err(_) => {
                link.reconnects.failed(now());
                None
            }
        }
    }

    fn due(&self) -> bool {
        self.reads().renewal_due(now())
    }

    /// Fresh tokens when the ones in hand are due ([`Reads::renewed`]); a renewal that fails
    /// leaves the old tokens, which fail on their own if they expire.
    async fn renew_if_due(&self) {
        let Some(renew) = self.renew else { return };
        if !self.due() {
            return;
        }
        let _one = self.renewing.lock().await;
        if !self.due() {
            return;
        }
        let Ok(fresh) = renew().await else { return };
        self.reads().renewed(fresh, now());
    }

    /// Any k shards of chunk `index` (others `None`), each verified against its id on arrival,
    /// asked for by the readers' rule ([`disktro_core::fetch::ChunkPlan`]): a failed or wrong one is replaced by the
    /// next candidate, and when nothing answers for the plan's hedge delay one more is asked.
    pub(crate) async fn fetch(&self, index: usize) -> Result<(usize, Vec<Option<VerifiedShard>>), ClientError> {
        let mut tries = 0;
        loop {
            match self.fetch_once(index).await {
                // Out of candidates: see `CHUNK_RETRIES`.
                Err(ClientError::Workers(_)) if tries < CHUNK_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(CHUNK_RETRY_AFTER).await;
                }
                fetched => return fetched,
            }
        }
    }

    /// One try of [`Self::fetch`].
    async fn fetch_once(&self, index: usize) -> Result<(usize, Vec<Option<VerifiedShard>>), ClientError> {
        self.renew_if_due().await;
        let entry = &self.manifest.chunks[index];
        let k = usize::from(self.manifest.redundancy.data);
        let located = self.answer.locations.get(index).map(Vec::as_slice).unwrap_or_default();
        let located = &located[..located.len().min(entry.shards.len())];
        let copies = self.answer.copies.get(index).map(Vec::as_slice).unwrap_or_default();
        let mut plan = self.reads().plan_with_copies(located, copies, k);
        let mut slots: Vec<Option<VerifiedShard>> = vec![None; entry.shards.len()];
        let mut running = FuturesUnordered::new();
        let ask = |a: Ask| {
            let id: ShardId = entry.shards[a.slot];
            // Counted out to the node now, as it is planned, so the next chunk's plan sees it.
            let queued = self.reads().asking(a.node);
            async move {
                let worker = self.worker(a.node).await;
                // A hedge or a replacement may come after the tokens the chunk began with, and
                // connecting may have taken a while: the token is taken now.
                self.renew_if_due().await;
                let token = self.reads().token(a.node, index as u64).map(<[u8]>::to_vec);
                let result = match (worker, token) {
                    (Some(worker), Some(token)) => {
                        let asked = Instant::now();
                        let got = worker
                            .get(&token, id)
                            .await
                            .map_err(|e| e.to_string())
                            .inspect(|shard| {
                                // What this node delivers, for ranking it in the chunks after.
                                self.reads()
                                    .observed(a.node, shard.bytes().len() as u64, asked.elapsed(), queued);
                            });
                        let due = got
                            .as_ref()
                            .ok()
                            .and_then(|shard| self.orders().received(a.node, &token, shard.bytes().len() as u64));
                        if let Some(due) = due {
                            let _ = worker.order(due.order).await;
                        }
                        got
                    }
                    (None, _) => Err("worker unreachable".to_owned()),
                    (_, None) => Err("no get token for this worker".to_owned()),
                };
                if result.is_err() {
                    self.reads().unanswered(a.node);
                }
                (a.slot, result)
            }
        };
        let started = Instant::now();
        let mut waiting_since = started;
        loop {
            for a in plan.to_start() {
                running.push(ask(a));
            }
            if let Some(why) = plan.exhausted() {
                return Err(ClientError::Workers(format!("chunk {index}: {why}")));
            }
            tokio::select! {
                Some((slot, result)) = running.next() => match result {
                    Ok(shard) => {
                        waiting_since = Instant::now();
                        plan.arrived_after(started.elapsed());
                        if plan.got(slot) {
                            slots[slot] = Some(shard);
                        }
                        if plan.is_done() {
                            // An eager chunk's last answers, a little longer: each is measured
                            // as it comes (the shards are not needed).
                            if let Some(grace) = plan.grace(started.elapsed()) {
                                let _ = tokio::time::timeout(grace, async {
                                    while let Some((slot, result)) = running.next().await {
                                        match result {
                                            Ok(_) => {
                                                plan.got(slot);
                                            }
                                            Err(e) => plan.failed(slot, e),
                                        }
                                    }
                                })
                                .await;
                            }
                            // Still unanswered: rank them last from now on.
                            self.reads().straggled(plan.stragglers());
                            return Ok((index, slots));
                        }
                    }
                    Err(e) => plan.failed(slot, e),
                },
                () = tokio::time::sleep_until((waiting_since + plan.hedge_delay()).into()) => {
                    waiting_since = Instant::now();
                    if let Some(a) = plan.hedge() {
                        running.push(ask(a));
                    }
                }
            }
        }
    }
}
