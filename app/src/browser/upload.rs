//! Upload from the browser, the same steps as the CLI's: begin at the server, read the file slice
//! by slice (`Blob.slice`, never whole, a few reads ahead), squeeze and stage each chunk with
//! `disktro-core`, seal it through [`ChunkCipher`] (WebCrypto, one chunk ahead: the next is
//! sealed while this one is sharded), shard it, and put every shard on
//! the worker the server placed it on, [`CHUNKS_IN_FLIGHT`] chunks at a time over one WebSocket
//! per worker (owned by the socket relay's thread, see [`WorkerLink`]), each shard framed straight
//! from its chunk's buffer, which is then reused. Then sign
//! the manifest, seal the name and type, wrap the file key and commit. On any failure, or when
//! cancelled, the upload is cancelled at the server.

use crate::browser::Failure;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use disktro_core::api::{Base64, BeginUpload, Commit, FileSummary, PutGrant, UploadPlan};
use disktro_core::metadata::{FileMetadata, MAX_MIME_LEN};
use disktro_core::{EncodedChunk, Encoder, FileId, FileKey, Redundancy, StagedChunk};
use futures_channel::mpsc;
use futures_util::StreamExt as _;
use wasm_bindgen_futures::JsFuture;

use super::api::Api;
use super::js;
use super::keyring::Keyring;
use super::link::{Socket, WorkerLink};
use super::seal::{ChunkCipher, Engine, Sealing};

/// Chunks whose shards are on the wire at once.
pub const CHUNKS_IN_FLIGHT: usize = 4;
/// `Blob` reads of the coming chunks under way at once (see [`ChunkReader`]).
const READS_AHEAD: usize = 3;
/// Renew put tokens this long (seconds) before they expire.
const RENEW_MARGIN_SECS: f64 = 120.0;

/// Progress of one upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub bytes_done: u64,
    pub size: u64,
    pub shards_done: u64,
    pub shards_total: u64,
}

/// Put tokens in the plan's node order, renewable.
struct Tokens {
    upload_id: String,
    node_ids: Vec<disktro_core::NodeId>,
    tokens: Vec<Rc<Vec<u8>>>,
    expires_at: f64,
}

impl Tokens {
    fn new(plan: &UploadPlan) -> Result<Self, Failure> {
        let mut t = Self {
            upload_id: plan.upload_id.clone(),
            node_ids: plan.nodes.iter().map(|n| n.node_id).collect(),
            tokens: Vec::new(),
            expires_at: 0.0,
        };
        t.set(&plan.nodes)?;
        Ok(t)
    }

    fn set(&mut self, grants: &[PutGrant]) -> Result<(), Failure> {
        let mut tokens = Vec::with_capacity(self.node_ids.len());
        for id in &self.node_ids {
            let grant = grants
                .iter()
                .find(|g| &g.node_id == id)
                .ok_or_else(|| Failure::invalid("the server left out a worker of the upload"))?;
            tokens.push(Rc::new(grant.token.to_vec()));
        }
        self.tokens = tokens;
        self.expires_at = grants.iter().map(|g| g.expires_at).min().unwrap_or(0) as f64;
        Ok(())
    }

    async fn renew_if_due(&mut self, api: &Api) -> Result<(), Failure> {
        if js_sys::Date::now() / 1000.0 + RENEW_MARGIN_SECS < self.expires_at {
            return Ok(());
        }
        let fresh: Vec<PutGrant> = api
            .post(&format!("/uploads/{}/renew", self.upload_id), &serde_json::json!({}))
            .await?;
        self.set(&fresh)
    }
}

/// Upload `file`; `progress` hears after every chunk stored; `cancelled` is checked between chunks.
pub async fn upload(
    api: &Api,
    me: &Keyring,
    file: &web_sys::File,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<FileSummary, Failure> {
    let size = crate::format::whole(file.size());
    let file_id = FileId::random();
    let file_key = FileKey::generate();
    // Sealed first: a name over its limit fails before any byte is sent.
    let mut mime = file.type_();
    if mime.is_empty() || mime.len() > MAX_MIME_LEN {
        mime = "application/octet-stream".to_owned();
    }
    let metadata = FileMetadata {
        name: file.name(),
        mime,
        size,
    };
    let sealed_metadata = metadata
        .seal(&file_key, &file_id)
        .map_err(|e| Failure::Invalid(format!("file name or type: {e}")))?;
    let plan: UploadPlan = api
        .post(
            "/uploads",
            &BeginUpload {
                file_id: file_id.to_hex(),
                // The server learns the size class, not the size (FORMAT.md, Padding).
                size: disktro_core::padding::size_class(size, disktro_core::DEFAULT_CHUNK_SIZE),
                data_shards: None,
                parity_shards: None,
                chunk_size: Some(disktro_core::DEFAULT_CHUNK_SIZE),
            },
        )
        .await?;
    let outcome = send_and_commit(
        api,
        me,
        file,
        size,
        &sealed_metadata,
        &plan,
        file_id,
        &file_key,
        progress,
        cancelled,
    )
    .await;
    if outcome.is_err() {
        // Best effort: an upload left behind expires on its own.
        let _ = api.send("DELETE", &format!("/uploads/{}", plan.upload_id)).await;
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn send_and_commit(
    api: &Api,
    me: &Keyring,
    file: &web_sys::File,
    size: u64,
    sealed_metadata: &[u8],
    plan: &UploadPlan,
    file_id: FileId,
    file_key: &FileKey,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<FileSummary, Failure> {
    let redundancy = Redundancy::new(plan.data_shards, plan.parity_shards)
        .map_err(|e| Failure::Invalid(format!("the server chose an impossible redundancy: {e}")))?;
    let mut encoder = Encoder::with_chunk_size(file_key, file_id, redundancy, plan.chunk_size)
        .map_err(|e| Failure::Invalid(format!("the server chose an impossible chunk size: {e}")))?;
    let cipher = ChunkCipher::new(file_key, &file_id, Engine::WebCrypto).await?;
    let mut tokens = Tokens::new(plan)?;
    let links = connect_all(plan.nodes.iter().map(|n| n.url.as_str()), Socket::Relayed).await;
    let links: Rc<Vec<Rc<WorkerLink>>> = Rc::new(links.into_iter().collect::<Result<_, _>>()?);
    let placement = Rc::new(plan.placement.clone());

    let shards_total = plan.chunk_count * redundancy.total() as u64;
    let state = Rc::new(RefCell::new(Progress {
        size,
        shards_total,
        ..Progress::default()
    }));
    let (done_tx, mut done_rx) = mpsc::unbounded::<Result<Vec<Base64>, Failure>>();
    // Shard buffers come back once framed, for the next chunks (as in the CLI): the WebAssembly
    // memory, which never shrinks, then holds a few chunk buffers instead of one per chunk.
    let (recycle_tx, mut recycle_rx) = mpsc::unbounded::<Vec<u8>>();
    let mut in_flight = 0usize;
    let mut receipts: Vec<Base64> = Vec::with_capacity(usize::try_from(shards_total).unwrap_or(0));
    let chunk_size = u64::from(plan.chunk_size);

    let chunk_count = plan.chunk_count.max(1);
    let mut reader = ChunkReader::new(file, size, chunk_size, chunk_count);
    let mut plain = Vec::new();
    // The next chunk staged, its seal under way: WebCrypto seals it on the browser's threads
    // while this one is sharded and framed here.
    let mut ahead = Some(
        read_and_seal(
            &mut reader,
            &mut plain,
            &mut encoder,
            &cipher,
            &mut recycle_rx,
            chunk_count == 1,
        )
        .await?,
    );
    for index in 0..chunk_count {
        if cancelled.get() {
            return Err(Failure::Cancelled);
        }
        let (staged, sealing) = ahead.take().ok_or_else(|| Failure::browser("a chunk was not read"))?;
        if index + 1 < chunk_count {
            let last = index + 2 == chunk_count;
            ahead = Some(read_and_seal(&mut reader, &mut plain, &mut encoder, &cipher, &mut recycle_rx, last).await?);
        }
        let sealed = sealing.finish().await?;
        let chunk = encoder.complete(staged, sealed)?;
        // Wait for room, collecting what finished.
        while in_flight >= CHUNKS_IN_FLIGHT {
            receipts.extend(
                done_rx
                    .next()
                    .await
                    .ok_or_else(|| Failure::browser("a sender stopped"))??,
            );
            in_flight -= 1;
            progress(*state.borrow());
        }
        tokens.renew_if_due(api).await?;
        let job = send_chunk(
            Rc::clone(&links),
            Rc::clone(&placement),
            tokens.tokens.clone(),
            chunk,
            Rc::clone(&state),
            recycle_tx.clone(),
        );
        let tx = done_tx.clone();
        in_flight += 1;
        wasm_bindgen_futures::spawn_local(async move {
            let _ = tx.unbounded_send(job.await);
        });
    }
    while in_flight > 0 {
        receipts.extend(
            done_rx
                .next()
                .await
                .ok_or_else(|| Failure::browser("a sender stopped"))??,
        );
        in_flight -= 1;
        progress(*state.borrow());
    }
    if cancelled.get() {
        return Err(Failure::Cancelled);
    }

    let manifest = encoder.into_manifest()?;
    let commit = Commit::new(manifest, &me.keys.identity, file_key, sealed_metadata, receipts)
        .map_err(|e| Failure::browser(format!("signing the manifest: {e}")))?;
    Ok(api
        .post(&format!("/uploads/{}/commit", plan.upload_id), &commit)
        .await?)
}

/// Read the next chunk, stage it and start sealing it; buffers sent meanwhile go back to the
/// encoder first.
async fn read_and_seal(
    reader: &mut ChunkReader<'_>,
    plain: &mut Vec<u8>,
    encoder: &mut Encoder,
    cipher: &ChunkCipher,
    recycled: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    last: bool,
) -> Result<(StagedChunk, Sealing), Failure> {
    reader.next_into(plain).await?;
    while let Ok(spare) = recycled.try_recv() {
        encoder.recycle(spare);
    }
    let mut staged = encoder.stage(plain, last);
    let sealing = cipher.start_seal(&mut staged)?;
    Ok((staged, sealing))
}

/// Connect to every worker at once, the sockets owned by the thread `socket` names.
pub async fn connect_all<'a>(
    urls: impl Iterator<Item = &'a str>,
    socket: Socket,
) -> Vec<Result<Rc<WorkerLink>, Failure>> {
    futures_util::future::join_all(urls.map(|url| WorkerLink::connect(url, socket))).await
}

/// Reads the file's chunks in order, [`READS_AHEAD`] `Blob.slice` reads under way at once: a read
/// waits on the browser's file thread, and one at a time reached only about 240 MB/s on this
/// machine against about 1 GB/s with four, so the next chunks are read while this one is encoded.
/// Each chunk is copied into one reused buffer.
struct ChunkReader<'a> {
    file: &'a web_sys::Blob,
    size: u64,
    chunk_size: u64,
    chunk_count: u64,
    /// The next chunk whose read is not started yet.
    next: u64,
    /// Reads under way, in order, with the length each must give.
    reads: VecDeque<(JsFuture, u64)>,
}

impl<'a> ChunkReader<'a> {
    fn new(file: &'a web_sys::Blob, size: u64, chunk_size: u64, chunk_count: u64) -> Self {
        Self {
            file,
            size,
            chunk_size,
            chunk_count,
            next: 0,
            reads: VecDeque::with_capacity(READS_AHEAD),
        }
    }

    fn start_reads(&mut self) -> Result<(), Failure> {
        while self.reads.len() < READS_AHEAD && self.next < self.chunk_count {
            let start = self.next * self.chunk_size;
            let end = (start + self.chunk_size).min(self.size);
            let slice = self
                .file
                .slice_with_f64_and_f64(start as f64, end as f64)
                .map_err(|e| Failure::js(&e))?;
            self.reads
                .push_back((JsFuture::from(slice.array_buffer()), end - start));
            self.next += 1;
        }
        Ok(())
    }

    /// The next chunk's bytes into `into`; a chunk shorter than its place in the file means the
    /// file changed while being read.
    async fn next_into(&mut self, into: &mut Vec<u8>) -> Result<(), Failure> {
        self.start_reads()?;
        let (read, expected_len) = self
            .reads
            .pop_front()
            .ok_or_else(|| Failure::browser("read past the file's last chunk"))?;
        let buffer = read
            .await
            .map_err(|e| Failure::browser(format!("cannot read the file: {}", js::describe(&e))))?;
        self.start_reads()?;
        js::copy_into(&buffer, into);
        if into.len() as u64 != expected_len {
            return Err(Failure::browser("the file changed while being read"));
        }
        Ok(())
    }
}

/// Put every shard of one chunk on its placed worker, in parallel; returns the receipts. The
/// shards are framed straight from the chunk's buffer, which then goes back to the encoder
/// through `recycle` while the receipts are awaited.
async fn send_chunk(
    links: Rc<Vec<Rc<WorkerLink>>>,
    placement: Rc<Vec<Vec<u16>>>,
    tokens: Vec<Rc<Vec<u8>>>,
    chunk: EncodedChunk,
    state: Rc<RefCell<Progress>>,
    recycle: mpsc::UnboundedSender<Vec<u8>>,
) -> Result<Vec<Base64>, Failure> {
    let index = usize::try_from(chunk.index).map_err(|_| Failure::browser("chunk index"))?;
    let places = placement
        .get(index)
        .ok_or_else(|| Failure::Invalid(format!("the plan has no placement for chunk {index}")))?;
    let plain_len = u64::from(chunk.plain_len);
    let mut frames = Vec::with_capacity(chunk.shards.ids().len());
    for (i, (id, bytes)) in chunk.shards.iter().enumerate() {
        let node = places
            .get(i)
            .map(|n| usize::from(*n))
            .ok_or_else(|| Failure::Invalid(format!("the plan has no worker for shard {i} of chunk {index}")))?;
        let (link, token) = links
            .get(node)
            .zip(tokens.get(node))
            .ok_or_else(|| Failure::invalid("the plan names a worker it did not grant"))?;
        let frame = disktro_core::wire::encode_put(token, &id, bytes)?;
        frames.push((i, Rc::clone(link), frame));
    }
    let _ = recycle.unbounded_send(chunk.shards.into_buffer());
    let puts = frames.into_iter().map(|(i, link, frame)| {
        let state = Rc::clone(&state);
        async move {
            let receipt = link.put_encoded(frame).await.map_err(|e| {
                Failure::Worker(format!(
                    "worker {} did not store shard {i} of chunk {index}: {e}",
                    link.url
                ))
            })?;
            state.borrow_mut().shards_done += 1;
            Ok::<Base64, Failure>(Base64::new(receipt))
        }
    });
    let receipts = futures_util::future::try_join_all(puts).await?;
    state.borrow_mut().bytes_done += plain_len;
    Ok(receipts)
}
