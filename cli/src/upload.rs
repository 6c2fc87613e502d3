//! Upload: read the file chunk by chunk, encode each (squeeze, seal, shard) on a blocking thread,
//! send every shard to the worker the server placed it on, collect the signed receipts, then
//! commit the owner-signed manifest with the sealed metadata and the wrapped file key.
//!
//! Two stages run at once with a one-chunk queue between them, so memory stays at a few chunks
//! whatever the file size: the reader-encoder (one blocking thread, one chunk) and the sender
//! (up to [`UploadOptions::chunks_in_flight`] chunks, each chunk's shards to all its workers in
//! parallel over one multiplexed WebSocket per worker). Put tokens are renewed when they near
//! expiry. On failure the upload is cancelled at the server.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use disktro_core::api::{Base64, BeginUpload, Commit, FileSummary, PutGrant, UploadPlan};
use disktro_core::metadata::FileMetadata;
use disktro_core::squeeze::{Codec, Squeezer};
use disktro_core::{EncodedChunk, Encoder, FileId, FileKey, Manifest, Redundancy};
use disktro_net::client::{ConnectOptions, WorkerClient};
use disktro_net::unix_now;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::{RwLock, mpsc};

use crate::ClientError;
use crate::account::Identity;
use crate::server::Server;

/// Tunables with sensible defaults.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    pub data_shards: Option<u8>,
    pub parity_shards: Option<u8>,
    pub chunk_size: Option<u32>,
    /// Chunks whose shards are on the wire at once.
    pub chunks_in_flight: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        Self {
            data_shards: None,
            parity_shards: None,
            chunk_size: None,
            chunks_in_flight: 2,
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

/// The put grants of an upload, decoded once, renewable.
struct Grants {
    upload_id: String,
    /// Parallel to the plan's `nodes`.
    tokens: RwLock<(Vec<Vec<u8>>, u64)>,
    node_ids: Vec<disktro_core::NodeId>,
}

impl Grants {
    fn new(plan: &UploadPlan) -> Result<Self, ClientError> {
        Ok(Self {
            upload_id: plan.upload_id.clone(),
            tokens: RwLock::new(decode(&plan.nodes)?),
            node_ids: plan.nodes.iter().map(|n| n.node_id).collect(),
        })
    }

    /// The token for node `i`, renewed first when all are near expiry.
    async fn token(&self, server: &Server, i: usize) -> Result<Vec<u8>, ClientError> {
        let now = unix_now();
        {
            let held = self.tokens.read().await;
            if now + RENEW_MARGIN < held.1 {
                return Ok(held.0[i].clone());
            }
        }
        let mut held = self.tokens.write().await;
        if now + RENEW_MARGIN >= held.1 {
            let fresh = server.renew_upload(&self.upload_id).await?;
            // Renewals come in node-id order; put them back in the plan's order.
            let mut ordered = Vec::with_capacity(self.node_ids.len());
            for id in &self.node_ids {
                let grant = fresh
                    .iter()
                    .find(|g| &g.node_id == id)
                    .ok_or_else(|| ClientError::Integrity("the renewal left out a worker of the upload".to_owned()))?;
                ordered.push(grant.clone());
            }
            *held = decode(&ordered)?;
        }
        Ok(held.0[i].clone())
    }
}

fn decode(grants: &[PutGrant]) -> Result<(Vec<Vec<u8>>, u64), ClientError> {
    let tokens = grants.iter().map(|g| g.token.to_vec()).collect();
    let expires = grants.iter().map(|g| g.expires_at).min().unwrap_or(0);
    Ok((tokens, expires))
}

/// Connect to every worker of a plan at once.
pub(crate) async fn connect_all(urls: &[String]) -> Vec<Result<Arc<WorkerClient>, disktro_net::client::ClientError>> {
    let options = ConnectOptions::default();
    futures_util::future::join_all(urls.iter().map(|url| {
        let options = options.clone();
        async move { WorkerClient::connect(url, &options).await.map(Arc::new) }
    }))
    .await
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
    let file_id = FileId::random();
    let file_key = FileKey::generate();
    // Sealed first: a name or type over its limit fails before any byte is sent.
    let sealed_metadata = metadata
        .seal(&file_key, &file_id)
        .map_err(|e| ClientError::Usage(format!("file name or type: {e}")))?;
    // The server learns the size class, not the size (FORMAT.md, Padding); the class depends on
    // the chunk size, so it is stated rather than left to the server's default.
    let chunk_size = options.chunk_size.unwrap_or(disktro_core::DEFAULT_CHUNK_SIZE);
    let plan = server
        .begin_upload(&BeginUpload {
            file_id: file_id.to_hex(),
            size: disktro_core::padding::size_class(size, chunk_size),
            data_shards: options.data_shards,
            parity_shards: options.parity_shards,
            chunk_size: Some(chunk_size),
        })
        .await?;
    match send_and_commit(
        server,
        me,
        reader,
        size,
        &sealed_metadata,
        options,
        progress,
        &plan,
        file_id,
        &file_key,
    )
    .await
    {
        Ok(summary) => Ok(Uploaded { summary, file_key }),
        Err(e) => {
            // Best effort: the upload expires on its own if this fails too.
            let _ = server.cancel_upload(&plan.upload_id).await;
            Err(e)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_and_commit<R: Read + Send + 'static>(
    server: &Server,
    me: &Identity,
    reader: R,
    size: u64,
    sealed_metadata: &[u8],
    options: &UploadOptions,
    progress: &(dyn Fn(Progress) + Sync),
    plan: &UploadPlan,
    file_id: FileId,
    file_key: &FileKey,
) -> Result<FileSummary, ClientError> {
    let redundancy = Redundancy::new(plan.data_shards, plan.parity_shards)
        .map_err(|e| ClientError::Integrity(format!("the server chose an impossible redundancy: {e}")))?;
    let encoder = Encoder::with_chunk_size(file_key, file_id, redundancy, plan.chunk_size)
        .map_err(|e| ClientError::Integrity(format!("the server chose an impossible chunk size: {e}")))?;
    let grants = Grants::new(plan)?;
    let urls: Vec<String> = plan.nodes.iter().map(|n| n.url.clone()).collect();
    let mut workers = Vec::with_capacity(urls.len());
    for (url, conn) in urls.iter().zip(connect_all(&urls).await) {
        workers.push(conn.map_err(|e| ClientError::Workers(format!("cannot reach worker {url}: {e}")))?);
    }

    // Reader and encoder share one blocking thread, which owns the one read buffer; the sender
    // takes encoded chunks through a queue one chunk deep. Shard buffers flow back to the encoder
    // once framed, so a long upload allocates its few chunk-sized buffers once instead of per
    // chunk: memory stays put rather than growing with what the allocator keeps of freed buffers.
    // Reading in the encoder's thread costs little time (a 4 MiB read from the page cache takes
    // a fraction of encoding it) and saves the chunk buffers a separate reader would hold.
    let chunk_size = plan.chunk_size as usize;
    let (chunk_tx, mut chunk_rx) = mpsc::channel::<EncodedChunk>(1);
    let (recycle_tx, mut recycle_rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let runtime = tokio::runtime::Handle::current();
    let encoding = tokio::task::spawn_blocking(move || -> Result<Option<Manifest>, ClientError> {
        let mut encoder = encoder;
        let mut input = Input { reader, size, read: 0 };
        let mut buf = vec![0u8; chunk_size];
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
            let (filled, last) = input.next_chunk(&mut buf)?;
            take_back(&mut encoder, &mut recycle_rx);
            let Some((second, helper)) = ahead.as_mut().filter(|_| !last) else {
                let chunk = encoder.encode(&buf[..filled], last).map_err(failed)?;
                let compressible = chunk.codec == Codec::Zstd;
                slot.send(chunk);
                if last {
                    return encoder.into_manifest().map(Some).map_err(failed);
                }
                if ahead.is_none() && compressible && spare_cores {
                    ahead = encoder.sibling_squeezer().map(|helper| (vec![0u8; chunk_size], helper));
                }
                continue;
            };
            let (second_filled, second_last) = input.next_chunk(second)?;
            let (first, second_squeezed) = std::thread::scope(|scope| {
                let other = scope.spawn(|| helper.squeeze(&second[..second_filled]));
                (encoder.encode(&buf[..filled], false), other.join())
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
                return encoder.into_manifest().map(Some).map_err(failed);
            }
        }
    });

    let done_bytes = AtomicU64::new(0);
    let done_shards = AtomicU64::new(0);
    // Moves the queue's receiving end in: when sending fails, the encoder sees the queue closed.
    let sending = async move {
        let mut receipts: Vec<Base64> = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        loop {
            tokio::select! {
                next = chunk_rx.recv(), if open && in_flight.len() < options.chunks_in_flight.max(1) => {
                    match next {
                        Some(chunk) => in_flight.push(send_chunk(server, &grants, &workers, plan, chunk, &recycle_tx)),
                        None => open = false,
                    }
                }
                Some(result) = in_flight.next() => {
                    let (plain_len, chunk_receipts): (u64, Vec<Base64>) = result?;
                    let shards = chunk_receipts.len() as u64;
                    receipts.extend(chunk_receipts);
                    progress(Progress {
                        bytes_done: done_bytes.fetch_add(plain_len, Ordering::Relaxed) + plain_len,
                        size,
                        shards_stored: done_shards.fetch_add(shards, Ordering::Relaxed) + shards,
                    });
                }
                else => break,
            }
        }
        Ok::<Vec<Base64>, ClientError>(receipts)
    };

    let sent = sending.await;
    let encoded = encoding
        .await
        .map_err(|_| ClientError::Integrity("the encoder stopped unexpectedly".to_owned()))?;
    // A read or encoding failure ends the sender's queue early; report the cause, not the effect.
    let manifest = encoded?;
    let receipts = sent?;
    let manifest = manifest.ok_or_else(|| ClientError::Integrity("the encoder ended without a manifest".to_owned()))?;

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

/// The file being read, chunk by chunk, against the size declared to the server.
struct Input<R> {
    reader: R,
    size: u64,
    read: u64,
}

impl<R: Read> Input<R> {
    /// Fill `buf` with the next chunk; returns its length and whether it is the last: short, or
    /// the one that reaches the declared size (an empty file is one empty chunk). A file that
    /// grew or shrank while being read is an error.
    fn next_chunk(&mut self, buf: &mut [u8]) -> Result<(usize, bool), ClientError> {
        let mut filled = 0;
        while filled < buf.len() {
            match self.reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ClientError::Io(format!("cannot read the file: {e}"))),
            }
        }
        self.read += filled as u64;
        let size = self.size;
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
}

/// Put every shard of one chunk on its placed worker, in parallel. Returns the chunk's plaintext
/// length and the receipts. The shards are framed straight from the chunk's buffer, which then
/// goes back to the encoder through `recycle` while the receipts are awaited.
async fn send_chunk(
    server: &Server,
    grants: &Grants,
    workers: &[Arc<WorkerClient>],
    plan: &UploadPlan,
    chunk: EncodedChunk,
    recycle: &mpsc::UnboundedSender<Vec<u8>>,
) -> Result<(u64, Vec<Base64>), ClientError> {
    let index = usize::try_from(chunk.index).map_err(|_| ClientError::Integrity("chunk index".to_owned()))?;
    let placement = plan
        .placement
        .get(index)
        .ok_or_else(|| ClientError::Integrity(format!("the plan has no placement for chunk {index}")))?;
    let plain_len = u64::from(chunk.plain_len);
    let mut frames = Vec::with_capacity(chunk.shards.ids().len());
    for (i, (id, bytes)) in chunk.shards.iter().enumerate() {
        let node =
            usize::from(*placement.get(i).ok_or_else(|| {
                ClientError::Integrity(format!("the plan has no worker for shard {i} of chunk {index}"))
            })?);
        let worker = workers
            .get(node)
            .ok_or_else(|| ClientError::Integrity("the plan names a worker it did not grant".to_owned()))?;
        let token = grants.token(server, node).await?;
        let frame = disktro_core::wire::encode_put(&token, &id, bytes)
            .map_err(|e| ClientError::Integrity(format!("framing shard {i} of chunk {index}: {e}")))?;
        frames.push((i, node, worker, frame));
    }
    let _ = recycle.send(chunk.shards.into_buffer());
    let puts = frames.into_iter().map(|(i, node, worker, frame)| async move {
        let receipt = worker.put_encoded(frame).await.map_err(|e| {
            ClientError::Workers(format!(
                "worker {} did not store shard {i} of chunk {index}: {e}",
                plan.nodes[node].url
            ))
        })?;
        Ok::<Base64, ClientError>(Base64::new(receipt))
    });
    let receipts = futures_util::future::try_join_all(puts).await?;
    Ok((plain_len, receipts))
}
