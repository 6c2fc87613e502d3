//! Upload from the browser, the same steps as the CLI's: begin at the server, read the file chunk
//! by chunk (never whole, a few chunks ahead: [`ChunkReader`]), squeeze and stage each chunk with
//! `disktro-core`, seal it through [`ChunkCipher`] (WebCrypto, one chunk ahead: the next is
//! sealed while this one is sharded), shard it, and put every shard on
//! the worker the server placed it on, [`CHUNKS_IN_FLIGHT`] chunks at a time over one WebSocket
//! per worker (owned by the socket relay's thread, see [`WorkerLink`], opened on first use), each
//! shard framed as it is sent, copied once from its chunk's buffer into the buffer the relay
//! sends; the chunk's buffer is reused once every shard has its receipt. Then sign
//! the manifest, seal the name and type, wrap the file key and commit.
//!
//! What goes where is the [`UploadSession`]'s to say (`disktro_core::upload`, the CLI's too): a
//! worker that refuses, times out or disconnects is failed for the rest of the upload, the
//! server places its waiting shards again (a replan) and they go to their new workers from the
//! chunk's buffer, still held.
//!
//! Uploads resume ([`super::unfinished`]): the upload is noted in IndexedDB once begun and each
//! chunk's receipts as it finishes. The same file dropped or picked again later (after a reload,
//! a crashed tab or a failure) continues that upload: the server gives its plan back with fresh
//! tokens, every chunk is read and encoded again (the same key and bytes make the same shards),
//! chunks whose receipts are all kept are not sent, and one whose shards differ from its receipts
//! stops the upload (the file changed). A failed noted upload stays open at the server for the
//! next try; a cancelled one, or one that cannot be continued, is cancelled there.

use crate::browser::Failure;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use disktro_core::api::{Base64, BeginUpload, Commit, ErrorCode, FileSummary, PutGrant, UploadPlan};
use disktro_core::metadata::{FileMetadata, MAX_MIME_LEN};
use disktro_core::padding::BODY_HEADER_LEN;
use disktro_core::upload::{Next, UploadSession};
use disktro_core::{EncodedChunk, Encoder, FileId, FileKey, Redundancy, StagedChunk};
use futures_channel::mpsc;
use futures_util::StreamExt as _;
use futures_util::lock::Mutex;

use super::api::Api;
use super::file_read::ChunkReader;
use super::keyring::Keyring;
use super::link::{Links, Socket, WorkerLink};
use super::seal::{ChunkCipher, Engine, Sealing};
use super::unfinished::{self, Note};

/// Chunks whose shards are on the wire at once.
pub const CHUNKS_IN_FLIGHT: usize = 4;
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

/// The sending side of an upload: the session, a link per worker (opened on first use), and
/// the server for replans and renewals.
pub(super) struct Sender {
    api: Api,
    upload_id: String,
    session: RefCell<UploadSession>,
    links: Links,
    /// One replan or renewal at a time: the chunks that wait on it all see its result.
    asking: Mutex<()>,
    /// Whether the upload is noted in IndexedDB: finished chunks' receipts are noted too.
    noted: bool,
}

impl Sender {
    /// The sending side of the upload (or restripe) `plan`; `noted`: receipts go to IndexedDB.
    pub(super) fn new(api: &Api, plan: &UploadPlan, noted: bool) -> Result<Rc<Self>, Failure> {
        Ok(Rc::new(Sender {
            api: api.clone(),
            upload_id: plan.upload_id.clone(),
            session: RefCell::new(UploadSession::new(plan.clone()).map_err(|e| Failure::Invalid(e.to_string()))?),
            links: Links::new(Socket::Relayed),
            asking: Mutex::new(()),
            noted,
        }))
    }

    /// Open and introduce the link to every worker of the plan, in the background, while the
    /// first chunk is read and sealed: its shards then wait for no connection. Links open a few
    /// at a time (`link::MAX_CONNECTING`); a link that fails here is the first put's to find,
    /// which opens it again or reports it as before.
    pub(super) fn open_links(self: &Rc<Self>) {
        let grants: std::collections::BTreeMap<String, Vec<u8>> = self
            .session
            .borrow()
            .plan()
            .nodes
            .iter()
            .map(|grant| (grant.url.clone(), grant.token.to_vec()))
            .collect();
        for (url, token) in grants {
            let sender = Rc::clone(self);
            wasm_bindgen_futures::spawn_local(async move {
                if let Ok(link) = sender.links.get(&url).await {
                    let _ = link.introduce(&token).await;
                }
            });
        }
    }

    /// Every shard's receipt, once each chunk is sent.
    pub(super) fn take_receipts(&self) -> Result<Vec<Base64>, Failure> {
        self.session
            .borrow_mut()
            .take_receipts()
            .map_err(|e| Failure::Invalid(e.to_string()))
    }

    /// The link to the worker of `slot`, opened on first use; an error names the worker.
    async fn link(&self, slot: usize) -> Result<Rc<WorkerLink>, String> {
        let url = self.session.borrow().grant(slot).url.clone();
        self.links.get(&url).await
    }

    /// Fresh tokens for every slot when the first nears expiry.
    async fn renew_if_due(&self) -> Result<(), Failure> {
        let due =
            || js_sys::Date::now() / 1000.0 + RENEW_MARGIN_SECS >= self.session.borrow().tokens_expire_at() as f64;
        if !due() {
            return Ok(());
        }
        let _one = self.asking.lock().await;
        if !due() {
            return Ok(());
        }
        let fresh: Vec<PutGrant> = self
            .api
            .post(&format!("/uploads/{}/renew", self.upload_id), &serde_json::json!({}))
            .await?;
        self.session
            .borrow_mut()
            .renew(fresh)
            .map_err(|e| Failure::Invalid(e.to_string()))
    }

    /// Have the server place again the shards waiting on failed workers, unless another
    /// chunk's replan did already.
    async fn replan(&self) -> Result<(), Failure> {
        let _one = self.asking.lock().await;
        let Some(request) = self.session.borrow().replan_request() else {
            return Ok(());
        };
        let answer: Result<UploadPlan, _> = self
            .api
            .post(&format!("/uploads/{}/replan", self.upload_id), &request)
            .await;
        let plan = match answer {
            Ok(plan) => plan,
            // The worker's failure is the news; the server's refusal says why it ends there.
            Err(e) if e.code == Some(ErrorCode::NotEnoughWorkers) => {
                let failure = self
                    .session
                    .borrow()
                    .last_failure()
                    .unwrap_or("a worker failed")
                    .to_owned();
                return Err(Failure::Worker(format!(
                    "{failure}; no other worker could take its shards ({})",
                    e.message
                )));
            }
            Err(e) => return Err(e.into()),
        };
        self.session
            .borrow_mut()
            .apply_plan(plan)
            .map_err(|e| Failure::Invalid(e.to_string()))
    }
}

/// Upload `file` into `folder` (none: the top of the tree), or continue this account's unfinished
/// upload of the same file (in the folder it was begun for); `progress`
/// hears after every chunk stored; `cancelled` is checked between chunks.
pub async fn upload(
    api: &Api,
    me: &Keyring,
    file: &web_sys::File,
    folder: Option<disktro_core::FolderId>,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<FileSummary, Failure> {
    let size = crate::format::whole(file.size());
    let mut mime = file.type_();
    if mime.is_empty() || mime.len() > MAX_MIME_LEN {
        mime = "application/octet-stream".to_owned();
    }
    let metadata = FileMetadata {
        name: file.name(),
        mime,
        size,
        attributes: Vec::new(),
    };
    let started = match continued(api, me, &metadata, file.last_modified()).await? {
        Some(started) => started,
        None => begin(api, me, metadata, file.last_modified(), folder).await?,
    };
    let _running = Running::mark(&started.plan.upload_id);
    let outcome = send_and_commit(api, me, file, size, &started, progress, cancelled).await;
    let upload_id = &started.plan.upload_id;
    match &outcome {
        Ok(_) => {
            if started.noted {
                let _ = unfinished::forget(upload_id).await;
            }
        }
        // Kept open for the next try, which continues it.
        Err(Failure::Api(_) | Failure::Worker(_) | Failure::Browser(_)) if started.noted => {
            return outcome.map_err(|e| {
                let told = format!(
                    "{e}. The upload stays open for 24 hours: drop or pick the same file again to continue it."
                );
                e.with_message(told)
            });
        }
        Err(_) => {
            // Best effort: an upload left behind expires on its own.
            let _ = api.send("DELETE", &format!("/uploads/{upload_id}")).await;
            if started.noted {
                let _ = unfinished::forget(upload_id).await;
            }
        }
    }
    outcome
}

/// An upload begun or to continue: its plan, the file's id and key, its sealed metadata and the
/// receipts kept from before.
struct Started {
    plan: UploadPlan,
    file_id: FileId,
    file_key: FileKey,
    sealed_metadata: Vec<u8>,
    kept: Vec<(u64, usize, Vec<u8>)>,
    /// Noted in IndexedDB (not when the browser keeps no storage).
    noted: bool,
}

thread_local! {
    /// Uploads running in this worker: a second drop of the same file must not continue an
    /// upload that is still under way.
    static RUNNING: RefCell<std::collections::HashSet<String>> = RefCell::default();
}

/// An upload marked running while this lives.
struct Running(String);

impl Running {
    fn mark(upload_id: &str) -> Self {
        RUNNING.with(|r| r.borrow_mut().insert(upload_id.to_owned()));
        Self(upload_id.to_owned())
    }

    fn is_running(upload_id: &str) -> bool {
        RUNNING.with(|r| r.borrow().contains(upload_id))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with(|r| r.borrow_mut().remove(&self.0));
    }
}

/// Begin a new upload and note it.
async fn begin(
    api: &Api,
    me: &Keyring,
    metadata: FileMetadata,
    last_modified: f64,
    folder: Option<disktro_core::FolderId>,
) -> Result<Started, Failure> {
    let file_id = FileId::random();
    let file_key = FileKey::generate();
    // Sealed first: a name over its limit fails before any byte is sent.
    let sealed_metadata = metadata
        .seal(&file_key, &file_id)
        .map_err(|e| Failure::Invalid(format!("file name or type: {e}")))?;
    let plan: UploadPlan = api
        .post(
            "/uploads",
            &BeginUpload {
                file_id: file_id.to_hex(),
                // The server learns the size class, not the size (FORMAT.md, Padding).
                size: disktro_core::padding::size_class(metadata.size, disktro_core::DEFAULT_CHUNK_SIZE),
                data_shards: None,
                parity_shards: None,
                chunk_size: Some(disktro_core::DEFAULT_CHUNK_SIZE),
                folder_id: folder,
            },
        )
        .await?;
    let note = Note {
        upload_id: plan.upload_id.clone(),
        account_id: me.account_id.clone(),
        file_id,
        wrapped_key: Base64::new(me.keys.identity.wrap_file_key(&file_id, &file_key)),
        sealed_metadata: Base64::new(sealed_metadata.clone()),
        size: metadata.size,
        last_modified,
        chunk_size: plan.chunk_size,
        chunk_count: plan.chunk_count,
        shards_per_chunk: u16::from(plan.data_shards) + u16::from(plan.parity_shards),
        began_ms: js_sys::Date::now(),
    };
    // Without storage (a private window) the upload still runs; it just cannot resume.
    let noted = unfinished::begin(&note).await.is_ok();
    Ok(Started {
        plan,
        file_id,
        file_key,
        sealed_metadata,
        kept: Vec::new(),
        noted,
    })
}

/// This account's unfinished upload of this very file (the same size, modification time and
/// name), still open at the server, if there is one. Notes whose upload is gone are forgotten.
async fn continued(
    api: &Api,
    me: &Keyring,
    metadata: &FileMetadata,
    last_modified: f64,
) -> Result<Option<Started>, Failure> {
    let Ok(notes) = unfinished::of_account(&me.account_id, js_sys::Date::now()).await else {
        return Ok(None);
    };
    for note in notes {
        if !note.fits(metadata.size, last_modified) || Running::is_running(&note.upload_id) {
            continue;
        }
        let Ok(file_key) = me.file_key(&note.file_id, note.wrapped_key.as_bytes()) else {
            continue;
        };
        let same_name = FileMetadata::open(note.sealed_metadata.as_bytes(), &file_key, &note.file_id)
            .is_ok_and(|m| m.name == metadata.name);
        if !same_name {
            continue;
        }
        let plan: UploadPlan = match api.get(&format!("/uploads/{}", note.upload_id)).await {
            Ok(plan) => plan,
            Err(e) if e.code == Some(ErrorCode::UploadNotFound) => {
                let _ = unfinished::forget(&note.upload_id).await;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let kept = unfinished::receipts(&note.upload_id).await.unwrap_or_default();
        return Ok(Some(Started {
            plan,
            file_id: note.file_id,
            file_key,
            sealed_metadata: note.sealed_metadata.into_vec(),
            kept,
            noted: true,
        }));
    }
    Ok(None)
}

async fn send_and_commit(
    api: &Api,
    me: &Keyring,
    file: &web_sys::File,
    size: u64,
    started: &Started,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<FileSummary, Failure> {
    let Started {
        plan,
        file_id,
        file_key,
        sealed_metadata,
        kept,
        noted,
    } = started;
    let file_id = *file_id;
    let redundancy = Redundancy::new(plan.data_shards, plan.parity_shards)
        .map_err(|e| Failure::Invalid(format!("the server chose an impossible redundancy: {e}")))?;
    let mut encoder = Encoder::with_chunk_size(file_key, file_id, redundancy, plan.chunk_size)
        .map_err(|e| Failure::Invalid(format!("the server chose an impossible chunk size: {e}")))?;
    let cipher = ChunkCipher::new(file_key, &file_id, Engine::WebCrypto).await?;
    let sender = Sender::new(api, plan, *noted)?;
    sender.open_links();
    let mut shards_kept = 0;
    {
        let mut session = sender.session.borrow_mut();
        for (chunk, index, receipt) in kept {
            if *chunk < plan.chunk_count && *index < redundancy.total() {
                session.on_receipt(*chunk, *index, receipt.clone());
                shards_kept += 1;
            }
        }
    }

    let shards_total = plan.chunk_count * redundancy.total() as u64;
    let state = Rc::new(RefCell::new(Progress {
        size,
        shards_total,
        shards_done: shards_kept,
        ..Progress::default()
    }));
    let (done_tx, mut done_rx) = mpsc::unbounded::<Result<(), Failure>>();
    // Shard buffers come back once framed, for the next chunks (as in the CLI): the WebAssembly
    // memory, which never shrinks, then holds a few chunk buffers instead of one per chunk.
    let (recycle_tx, mut recycle_rx) = mpsc::unbounded::<Vec<u8>>();
    let mut in_flight = 0usize;
    let chunk_size = u64::from(plan.chunk_size);

    let chunk_count = plan.chunk_count.max(1);
    let mut reader = ChunkReader::new(file, size, chunk_size, chunk_count);
    // The next chunk staged, its seal under way: WebCrypto seals it on the browser's threads
    // while this one is sharded and framed here.
    let mut ahead = Some(read_and_seal(&mut reader, &mut encoder, &cipher, &mut recycle_rx, chunk_count == 1).await?);
    for index in 0..chunk_count {
        if cancelled.get() {
            return Err(Failure::Cancelled);
        }
        let (staged, sealing) = ahead.take().ok_or_else(|| Failure::browser("a chunk was not read"))?;
        if index + 1 < chunk_count {
            let last = index + 2 == chunk_count;
            ahead = Some(read_and_seal(&mut reader, &mut encoder, &cipher, &mut recycle_rx, last).await?);
        }
        let sealed = sealing.finish().await?;
        let chunk = encoder.complete(staged, sealed)?;
        // Wait for room, collecting what finished.
        while in_flight >= CHUNKS_IN_FLIGHT {
            done_rx
                .next()
                .await
                .ok_or_else(|| Failure::browser("a sender stopped"))??;
            in_flight -= 1;
            progress(*state.borrow());
        }
        let job = send_chunk(Rc::clone(&sender), chunk, Rc::clone(&state), recycle_tx.clone());
        let tx = done_tx.clone();
        in_flight += 1;
        wasm_bindgen_futures::spawn_local(async move {
            let _ = tx.unbounded_send(job.await);
        });
    }
    while in_flight > 0 {
        done_rx
            .next()
            .await
            .ok_or_else(|| Failure::browser("a sender stopped"))??;
        in_flight -= 1;
        progress(*state.borrow());
    }
    if cancelled.get() {
        return Err(Failure::Cancelled);
    }
    let receipts = sender.take_receipts()?;

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
    reader: &mut ChunkReader,
    encoder: &mut Encoder,
    cipher: &ChunkCipher,
    recycled: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    last: bool,
) -> Result<(StagedChunk, Sealing), Failure> {
    while let Ok(spare) = recycled.try_recv() {
        encoder.recycle(spare);
    }
    // Read straight into the buffer the chunk is sealed and sharded in: no copy of the
    // plaintext from a read buffer into the encoder's.
    let mut buf = encoder.read_buffer();
    let plain_len = reader.next_into(&mut buf[BODY_HEADER_LEN..]).await?;
    let mut staged = encoder.stage_read(buf, plain_len, last)?;
    let sealing = cipher.start_seal(&mut staged)?;
    Ok((staged, sealing))
}

/// Put every shard of one chunk on its worker, in parallel, moving shards whose worker fails
/// until each has a receipt. Each shard is framed as it is sent, straight from the chunk's buffer
/// into the buffer the socket relay sends (so one that failed is sent again from there too); the
/// chunk's buffer then goes back to the encoder through `recycle`.
pub(super) async fn send_chunk(
    sender: Rc<Sender>,
    chunk: EncodedChunk,
    state: Rc<RefCell<Progress>>,
    recycle: mpsc::UnboundedSender<Vec<u8>>,
) -> Result<(), Failure> {
    let c = chunk.index;
    let plain_len = u64::from(chunk.plain_len);
    // Receipts kept from an earlier try must name these very shards.
    sender
        .session
        .borrow()
        .check_stored(c, chunk.shards.ids())
        .map_err(|e| {
            Failure::Invalid(format!(
                "{e}: the file is not the one whose upload was begun; drop it again to upload it anew"
            ))
        })?;
    if sender.session.borrow().is_complete(c) {
        let _ = recycle.unbounded_send(chunk.shards.into_buffer());
        state.borrow_mut().bytes_done += plain_len;
        return Ok(());
    }
    let sent = send_shards(&sender, &chunk, &state).await;
    let _ = recycle.unbounded_send(chunk.shards.into_buffer());
    sent?;
    if sender.noted {
        // Collected first: the session is not borrowed across the write.
        let receipts: Vec<(usize, Base64)> = sender
            .session
            .borrow()
            .receipts(c)
            .map(|(index, r)| (index, r.clone()))
            .collect();
        // Best effort: a receipt not noted costs its chunk's re-sending on a later try.
        let _ = unfinished::chunk_stored(&sender.upload_id, c, receipts).await;
    }
    state.borrow_mut().bytes_done += plain_len;
    Ok(())
}

/// [`send_chunk`]'s puts, until every shard of `chunk` has a receipt.
async fn send_shards(sender: &Rc<Sender>, chunk: &EncodedChunk, state: &RefCell<Progress>) -> Result<(), Failure> {
    let c = chunk.index;
    let shards: Vec<(disktro_core::ShardId, &[u8])> = chunk.shards.iter().collect();
    loop {
        sender.renew_if_due().await?;
        let next = sender.session.borrow().next_puts(c);
        let puts = match next {
            Next::Done => return Ok(()),
            Next::Replan => {
                sender.replan().await?;
                continue;
            }
            Next::Send(puts) => puts,
        };
        let mut jobs = Vec::with_capacity(puts.len());
        for put in puts {
            let (id, bytes) = *shards.get(put.index).ok_or_else(|| {
                Failure::Invalid(format!(
                    "the plan names shard {} of chunk {c}, which has none",
                    put.index
                ))
            })?;
            let (token, url) = {
                let session = sender.session.borrow();
                let grant = session.grant(put.slot);
                (grant.token.to_vec(), grant.url.clone())
            };
            jobs.push(async move {
                let outcome = match sender.link(put.slot).await {
                    Ok(link) => link
                        .put(&token, &id, bytes)
                        .await
                        .map_err(|e| format!("worker {url}: {e}")),
                    // Says which worker already.
                    Err(reason) => Err(reason),
                };
                (put, outcome)
            });
        }
        for (put, outcome) in futures_util::future::join_all(jobs).await {
            match outcome {
                Ok(receipt) => {
                    sender.session.borrow_mut().on_receipt(c, put.index, receipt);
                    state.borrow_mut().shards_done += 1;
                }
                Err(reason) => {
                    sender
                        .session
                        .borrow_mut()
                        .on_failure(c, put.index, put.slot, &reason)
                        .map_err(|e| Failure::Worker(e.to_string()))?;
                }
            }
        }
    }
}
