//! Download in the browser, the same steps as the CLI's: verify the manifest and open the
//! metadata, then for each chunk fetch any k verified shards in parallel (data shards on online
//! workers first; another worker when one fails or is too slow), rebuild, open through
//! [`ChunkCipher`] (the next chunk is rebuilt while WebCrypto opens this one), unsqueeze, and
//! hand the plaintext to a [`Sink`] in order. [`CHUNKS_AHEAD`] chunks are fetched ahead of the
//! one being written; memory stays at a few chunks.
//!
//! What to ask whom is `disktro_core::fetch`'s to say, as in the CLI: [`ChunkPlan`] per chunk,
//! and [`Reads`] across chunks (workers that straggled are asked last for the chunks after, get
//! tokens are renewed through a [`Renewal`] a quarter of their lifetime before they expire);
//! each worker's measured throughput is kept for the tab's next download.
//! Sockets open on first use ([`Links`]).

use crate::browser::Failure;
use std::cell::Cell;
use std::collections::VecDeque;
use std::rc::Rc;

use disktro_core::api::{FileDownload, ShareAccess};
use disktro_core::fetch::{Ask, CHUNK_RETRIES, CHUNK_RETRY_AFTER, ChunkPlan, Reads};
use disktro_core::keys::PublicKey;
use disktro_core::metadata::FileMetadata;
use disktro_core::order::Orders;
use disktro_core::padding::BODY_HEADER_LEN;
use disktro_core::squeeze::Codec;
use disktro_core::{ChunkEntry, Decoder, FileKey, RebuiltChunk, VerifiedShard};
use futures_channel::oneshot;
use futures_util::future::{Either, select};
use futures_util::lock::Mutex;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use js_sys::Array;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::api::Api;
use super::js;
use super::link::{Links, Socket};
use super::seal::{ChunkCipher, Engine, Opened, Opening};

/// Chunks fetched ahead of the one being written.
pub const CHUNKS_AHEAD: usize = 4;

/// Where plaintext goes.
#[derive(Debug)]
pub enum Sink {
    /// A `MessagePort` whose other end (the service worker's stream, or the page writing to a
    /// file it picked) asks for each chunk with a `{pull}` message: its pace is ours.
    Port {
        port: web_sys::MessagePort,
        credits: Rc<Cell<u32>>,
        cancelled: Rc<Cell<bool>>,
        _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    },
    /// Kept in memory and handed back as one `Blob` (small files only).
    Blob(Array),
}

impl Sink {
    pub fn port(port: web_sys::MessagePort) -> Self {
        let credits = Rc::new(Cell::new(0u32));
        let cancelled = Rc::new(Cell::new(false));
        let on_message = {
            let (credits, cancelled) = (Rc::clone(&credits), Rc::clone(&cancelled));
            Closure::new(move |event: web_sys::MessageEvent| {
                let data = event.data();
                if js::field(&data, "pull").is_some() {
                    credits.set(credits.get() + 1);
                } else if js::field(&data, "cancel").is_some() {
                    cancelled.set(true);
                }
            })
        };
        port.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Self::Port {
            port,
            credits,
            cancelled,
            _on_message: on_message,
        }
    }

    /// Hand the next chunk's plaintext on (a view, possibly of part of a larger buffer). The
    /// buffer is the sink's from here: a port's other end receives it transferred, not copied.
    async fn write(&mut self, bytes: js_sys::Uint8Array) -> Result<(), Failure> {
        let chunk = bytes.buffer();
        match self {
            Self::Port {
                port,
                credits,
                cancelled,
                ..
            } => {
                while credits.get() == 0 {
                    if cancelled.get() {
                        return Err(Failure::Cancelled);
                    }
                    js::sleep(2).await;
                }
                credits.set(credits.get() - 1);
                let message = js::message(&[("chunk", &bytes)]);
                port.post_message_with_transferable(&message, &Array::of1(&chunk))
                    .map_err(|e| Failure::js(&e))
            }
            Self::Blob(parts) => {
                parts.push(&bytes);
                Ok(())
            }
        }
    }

    /// Tell the reader the file ended (or failed); a Blob sink returns its Blob.
    pub fn finish(self, error: Option<&str>) -> Option<web_sys::Blob> {
        match self {
            Self::Port { port, .. } => {
                let message = match error {
                    Some(e) => js::message(&[("error", &JsValue::from_str(e))]),
                    None => js::message(&[("done", &JsValue::TRUE)]),
                };
                let _ = port.post_message(&message);
                port.set_onmessage(None);
                None
            }
            Self::Blob(parts) => {
                if error.is_some() {
                    return None;
                }
                web_sys::Blob::new_with_u8_array_sequence(&parts).ok()
            }
        }
    }
}

/// One chunk's shards as fetched: `Some` for the verified ones.
type Slots = Vec<Option<VerifiedShard>>;

/// Progress of one download.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub bytes_done: u64,
    pub size: u64,
}

/// Where fresh get tokens come from when a download outlasts the ones it began with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Renewal {
    /// The owner's download: `GET /files/{id}` again.
    Owner,
    /// A share link's download: `POST /public/shares/{share}/download` again, continuing the same
    /// download (its `download_id`), so no second download of a limited link is used.
    Share { share: String, access: ShareAccess },
}

/// The download's side of the network: the answer's workers, the tokens in hand and the
/// stragglers so far, and where fresh tokens come from.
pub(super) struct Source {
    answer: FileDownload,
    reads: std::cell::RefCell<Reads>,
    links: Links,
    renewal: Option<Renewal>,
    /// One renewal at a time: chunks fetched ahead wait for it rather than each asking.
    renewing: Mutex<()>,
    /// What arrived under each token, and the key the orders for it are signed with (the one
    /// the tokens name: the workers are paid what these orders say).
    orders: std::cell::RefCell<Orders>,
}

/// How long a worker's throughput measured by one download is trusted by the next in this tab
/// (as the CLI's `worker-speeds.json`).
const REMEMBER_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

thread_local! {
    /// What this tab's downloads measured of each worker: throughput and when (the pipeline
    /// worker lives as long as the tab, so a second download starts knowing the slow ones).
    static WORKER_SPEEDS: std::cell::RefCell<std::collections::HashMap<disktro_core::NodeId, (f64, std::time::Duration)>> =
        std::cell::RefCell::default();
}

/// Saves what a download measured when it ends, however it ends.
pub(super) struct RememberSpeeds(pub(super) Rc<Source>);

impl Drop for RememberSpeeds {
    fn drop(&mut self) {
        let at = now();
        let reads = self.0.reads.borrow();
        WORKER_SPEEDS.with_borrow_mut(|known| {
            for node in reads.disproved() {
                known.remove(&node);
            }
            known.extend(reads.speeds().map(|(node, speed)| (node, (speed, at))));
        });
    }
}

fn remembered_speed(node: &disktro_core::NodeId) -> Option<f64> {
    let fresh_since = now().saturating_sub(REMEMBER_FOR);
    WORKER_SPEEDS.with_borrow(|known| known.get(node).filter(|(_, at)| *at >= fresh_since).map(|(s, _)| *s))
}

/// The wall clock as [`Reads`] takes it.
fn now() -> std::time::Duration {
    std::time::Duration::from_secs_f64((js_sys::Date::now() / 1000.0).max(0.0))
}

impl Source {
    /// The shards of `answer`'s file, from its workers under its tokens (renewed through
    /// `renewal`), what arrives ordered with `orders`: for a download, or a restripe
    /// ([`super::restripe`]).
    pub(super) fn new(answer: FileDownload, renewal: Option<Renewal>, orders: Orders) -> Rc<Self> {
        Rc::new(Source {
            reads: std::cell::RefCell::new(Reads::new(&answer, now()).remembering(remembered_speed)),
            answer,
            links: Links::new(Socket::Here),
            renewal,
            renewing: Mutex::new(()),
            orders: std::cell::RefCell::new(orders),
        })
    }

    /// However the reading ended: order what arrived since each token's last order.
    pub(super) async fn settle_orders(&self) {
        let last = self.orders.borrow_mut().settle();
        for due in last {
            if let Some(node) = self.answer.nodes.get(due.to)
                && let Ok(link) = self.links.get(&node.url).await
            {
                let _ = link.order(due.order);
            }
        }
    }

    fn due(&self) -> bool {
        self.reads.borrow().renewal_due(now())
    }

    /// Fresh tokens when the ones in hand are due; a renewal that fails leaves the old tokens,
    /// which fail on their own if they expire.
    async fn renew_if_due(&self) {
        let Some(renewal) = &self.renewal else { return };
        if !self.due() {
            return;
        }
        let _one = self.renewing.lock().await;
        if !self.due() {
            return;
        }
        let api = Api::default();
        let order_key = self.orders.borrow().key();
        let fresh: Result<FileDownload, _> = match renewal {
            Renewal::Owner => api.get(&owner_download_path(&self.answer.file_id, &order_key)).await,
            Renewal::Share { share, access } => {
                let access = ShareAccess {
                    download_id: access.download_id.clone().or_else(|| self.answer.download_id.clone()),
                    order_key: Some(order_key),
                    ..access.clone()
                };
                api.post(&format!("/public/shares/{share}/download"), &access).await
            }
        };
        if let Ok(fresh) = fresh {
            self.reads.borrow_mut().renewed(fresh, now());
        }
    }

    /// Any k verified shards of one chunk, fetched in parallel by the readers' rule
    /// ([`ChunkPlan`], from [`Reads::plan`]): a failed one is replaced by the next candidate,
    /// and when nothing answers for the plan's hedge delay one more is asked. The workers still
    /// unanswered when the chunk is done are asked last for the chunks after.
    pub(super) async fn fetch_chunk(self: Rc<Self>, chunk: u64, entry: ChunkEntry, k: usize) -> Result<Slots, Failure> {
        let mut tries = 0;
        loop {
            match Rc::clone(&self).fetch_chunk_once(chunk, entry.clone(), k).await {
                // Out of candidates: asked again a little later (`fetch::CHUNK_RETRIES`).
                Err(Failure::Worker(_)) if tries < CHUNK_RETRIES => {
                    tries += 1;
                    js::sleep(i32::try_from(CHUNK_RETRY_AFTER.as_millis()).unwrap_or(i32::MAX)).await;
                }
                fetched => return fetched,
            }
        }
    }

    /// One try of [`Self::fetch_chunk`].
    async fn fetch_chunk_once(self: Rc<Self>, chunk: u64, entry: ChunkEntry, k: usize) -> Result<Slots, Failure> {
        self.renew_if_due().await;
        let index = usize::try_from(chunk).map_err(|_| Failure::browser("chunk index"))?;
        let located = self.answer.locations.get(index).map(Vec::as_slice).unwrap_or_default();
        let located = &located[..located.len().min(entry.shards.len())];
        let copies = self.answer.copies.get(index).map(Vec::as_slice).unwrap_or_default();
        let mut plan: ChunkPlan = self.reads.borrow().plan_with_copies(located, copies, k);
        let mut slots: Slots = vec![None; entry.shards.len()];
        let mut running = FuturesUnordered::new();
        let start = |ask: Ask| {
            let (source, id) = (Rc::clone(&self), entry.shards.get(ask.slot).copied());
            // Counted out to the node now, as it is planned, so the next chunk's plan sees it.
            let queued = self.reads.borrow_mut().asking(ask.node);
            Box::pin(async move {
                let result = async {
                    let id = id.ok_or_else(|| Failure::invalid("the manifest has fewer shards than the locations"))?;
                    let url = &source
                        .answer
                        .nodes
                        .get(ask.node)
                        .ok_or_else(|| Failure::invalid("a location names no worker"))?
                        .url;
                    let link = source.links.get(url).await.map_err(Failure::Worker)?;
                    // A hedge or a replacement may come after the tokens the chunk began with, and
                    // connecting may have taken a while: the token is taken now.
                    source.renew_if_due().await;
                    let token = source
                        .reads
                        .borrow()
                        .token(ask.node, chunk)
                        .map(<[u8]>::to_vec)
                        .ok_or_else(|| Failure::invalid("no get token for this worker"))?;
                    let asked = js::now_ms();
                    let shard = link.get(&token, id).await?;
                    // What this node delivers, for ranking it in the chunks after.
                    let took = std::time::Duration::from_secs_f64(((js::now_ms() - asked) / 1000.0).max(0.0));
                    source
                        .reads
                        .borrow_mut()
                        .observed(ask.node, shard.bytes().len() as u64, took, queued);
                    let due = source
                        .orders
                        .borrow_mut()
                        .received(ask.node, &token, shard.bytes().len() as u64);
                    if let Some(due) = due {
                        let _ = link.order(due.order);
                    }
                    Ok::<_, Failure>(shard)
                }
                .await;
                if result.is_err() {
                    source.reads.borrow_mut().unanswered(ask.node);
                }
                (ask.slot, result)
            })
        };
        let started = js::now_ms();
        loop {
            for ask in plan.to_start() {
                running.push(start(ask));
            }
            if let Some(why) = plan.exhausted() {
                return Err(Failure::Worker(format!("chunk {chunk}: {why}")));
            }
            let hedge_ms = i32::try_from(plan.hedge_delay().as_millis()).unwrap_or(i32::MAX);
            match select(running.next(), Box::pin(js::sleep(hedge_ms))).await {
                Either::Left((Some((slot, Ok(shard))), _)) => {
                    plan.arrived_after(std::time::Duration::from_secs_f64(
                        ((js::now_ms() - started) / 1000.0).max(0.0),
                    ));
                    if plan.got(slot) {
                        slots[slot] = Some(shard);
                    }
                    if plan.is_done() {
                        // An eager chunk's last answers, a little longer: each is measured as it
                        // comes (the shards are not needed).
                        let done_after =
                            std::time::Duration::from_secs_f64(((js::now_ms() - started) / 1000.0).max(0.0));
                        if let Some(grace) = plan.grace(done_after) {
                            let deadline = js::now_ms() + grace.as_secs_f64() * 1000.0;
                            while plan.stragglers().next().is_some() {
                                #[allow(clippy::cast_possible_truncation)]
                                let left = (deadline - js::now_ms()) as i32;
                                if left <= 0 {
                                    break;
                                }
                                match select(running.next(), Box::pin(js::sleep(left))).await {
                                    Either::Left((Some((slot, Ok(_))), _)) => {
                                        plan.got(slot);
                                    }
                                    Either::Left((Some((slot, Err(e))), _)) => plan.failed(slot, e.to_string()),
                                    _ => break,
                                }
                            }
                        }
                        self.reads.borrow_mut().straggled(plan.stragglers());
                        return Ok(slots);
                    }
                }
                Either::Left((Some((slot, Err(e))), _)) => plan.failed(slot, e.to_string()),
                Either::Left((None, _)) => {}
                Either::Right(_) => {
                    if let Some(ask) = plan.hedge() {
                        running.push(start(ask));
                    }
                }
            }
        }
    }
}

/// Finish opening a chunk, take its plaintext out of the padded body (unsqueezing it if it was
/// squeezed), and hand it to `sink`; returns its length. A raw chunk opened by WebCrypto goes on
/// as a view of what WebCrypto gave.
async fn deliver(
    decoder: &mut Decoder,
    rebuilt: RebuiltChunk,
    opening: Opening,
    sink: &mut Sink,
) -> Result<u64, Failure> {
    let plain = match opening.finish().await? {
        Opened::Outside { bytes, mut spare } => {
            let view = js_sys::Uint8Array::new(&bytes);
            let len = view.length() as usize;
            // The body's header says how the chunk is kept; a body too short for it is refused
            // by the decoder.
            // Offsets within one chunk: a JavaScript array index (u32) holds them.
            let at = |i: usize| u32::try_from(i).unwrap_or(u32::MAX);
            let mut head = [0u8; BODY_HEADER_LEN];
            let head = &mut head[..len.min(BODY_HEADER_LEN)];
            view.subarray(0, at(head.len())).copy_to(head);
            if decoder.read_body(&rebuilt, head, len)?.codec == Codec::Raw {
                let payload = decoder.complete_outside(rebuilt, head, len)?;
                decoder.recycle(spare);
                view.subarray(at(payload.start), at(payload.end))
            } else {
                js::copy_into(&bytes, &mut spare);
                let plain = decoder.complete(rebuilt, spare)?;
                let array = js::to_array(&plain);
                decoder.recycle(plain.into_buffer());
                array
            }
        }
        Opened::Here(opened) => {
            let plain = decoder.complete(rebuilt, opened)?;
            let array = js::to_array(&plain);
            decoder.recycle(plain.into_buffer());
            array
        }
    };
    let len = u64::from(plain.length());
    sink.write(plain).await?;
    Ok(len)
}

/// Where the owner asks for a file's download: `GET /files/{id}` naming the order key.
pub fn owner_download_path(file_id: &disktro_core::FileId, order_key: &PublicKey) -> String {
    format!(
        "/files/{file_id}?order_key={}",
        disktro_core::ids::to_hex(order_key.as_bytes())
    )
}

/// Verify `answer` with `key` (and the owner, when known) and stream the file into `sink`; get
/// tokens are renewed through `renewal`, when given, before they expire. What arrives is ordered
/// with `orders` (the key the answer's tokens name), and what is left unordered is ordered at the
/// end, however the download ends.
#[allow(clippy::too_many_arguments)]
pub async fn download(
    answer: FileDownload,
    key: &FileKey,
    expected_owner: Option<&PublicKey>,
    renewal: Option<Renewal>,
    orders: Orders,
    sink: &mut Sink,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<FileMetadata, Failure> {
    let (signed, metadata) = answer.verify(key, expected_owner)?;
    let manifest = signed.manifest().clone();
    let decoder = Decoder::new(key, &manifest, metadata.size)?;
    let cipher = ChunkCipher::new(key, &manifest.file_id, Engine::WebCrypto).await?;
    let source = Source::new(answer, renewal, orders);
    let outcome = stream(
        &source,
        &manifest,
        decoder,
        metadata.size,
        &cipher,
        sink,
        progress,
        cancelled,
    )
    .await;
    source.settle_orders().await;
    outcome.map(|()| metadata)
}

/// Fetch, rebuild, open and deliver every chunk of the file (`size` bytes) in order.
#[allow(clippy::too_many_arguments)]
async fn stream(
    source: &Rc<Source>,
    manifest: &disktro_core::Manifest,
    mut decoder: Decoder,
    size: u64,
    cipher: &ChunkCipher,
    sink: &mut Sink,
    progress: &dyn Fn(Progress),
    cancelled: &Cell<bool>,
) -> Result<(), Failure> {
    let _remember = RememberSpeeds(Rc::clone(source));
    let k = usize::from(manifest.redundancy.data);
    let total = manifest.chunks.len() as u64;
    let mut ahead: VecDeque<oneshot::Receiver<Result<Slots, Failure>>> = VecDeque::new();
    let mut next_fetch = 0u64;
    let mut done = Progress { bytes_done: 0, size };
    // The chunk being opened while the next one is fetched and rebuilt.
    let mut opening_ahead: Option<(RebuiltChunk, Opening)> = None;
    for index in 0..total {
        while next_fetch < total && (ahead.len() < CHUNKS_AHEAD || next_fetch == index) {
            let entry =
                manifest.chunks[usize::try_from(next_fetch).map_err(|_| Failure::browser("chunk index"))?].clone();
            let (tx, rx) = oneshot::channel();
            let job = Rc::clone(source).fetch_chunk(next_fetch, entry, k);
            wasm_bindgen_futures::spawn_local(async move {
                let _ = tx.send(job.await);
            });
            ahead.push_back(rx);
            next_fetch += 1;
        }
        if cancelled.get() {
            return Err(Failure::Cancelled);
        }
        let shards = ahead
            .pop_front()
            .ok_or_else(|| Failure::browser("the fetch queue ran dry"))?
            .await
            .map_err(|_| Failure::browser("a fetch stopped"))??;
        let mut rebuilt = decoder.rebuild_verified(index, shards)?;
        let started = cipher.start_open(&mut rebuilt)?;
        // The chunk before was being opened meanwhile (WebCrypto works on its own threads).
        if let Some((previous, opening)) = opening_ahead.replace((rebuilt, started)) {
            done.bytes_done += deliver(&mut decoder, previous, opening, sink).await?;
            progress(done);
        }
    }
    if let Some((last, opening)) = opening_ahead {
        done.bytes_done += deliver(&mut decoder, last, opening, sink).await?;
        progress(done);
    }
    decoder.finish()?;
    Ok(())
}
