//! Saving a download to disk without holding it in memory, best way first:
//!
//! 1. the File System Access API (`showSaveFilePicker`), where present: the page writes each
//!    chunk into the file the person picked;
//! 2. a service worker stream (as Mozilla Send did): `/sw.js` answers a navigation to
//!    `/_download/<id>` with a `ReadableStream` the pipeline worker feeds, so the browser's own
//!    download manager saves it;
//! 3. a whole-file `Blob`, only for files up to [`BLOB_LIMIT`].
//!
//! In cases 1 and 2 the reader pulls: it sends `{pull}` for each chunk it can take, so a slow disk
//! slows the download instead of filling memory.

use crate::browser::Failure;
use std::cell::RefCell;
use std::rc::Rc;

use disktro_core::api::Base64;
use disktro_core::keys::PublicKey;
use futures_channel::oneshot;
use js_sys::{Array, Function, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use super::js;

/// Largest file saved through an in-memory Blob.
pub const BLOB_LIMIT: u64 = 32 * 1024 * 1024;
/// Chunks a file writer asks for before its first write finishes.
const WRITER_CREDITS: u32 = 4;

/// How a download reaches the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    FileSystem,
    ServiceWorker,
    Blob,
}

/// Install `/sw.js` (at start-up), so large downloads can stream.
pub fn register_service_worker() {
    if let Some(container) = service_workers() {
        let _ = container.register("/sw.js");
    }
}

fn service_workers() -> Option<web_sys::ServiceWorkerContainer> {
    let navigator = web_sys::window()?.navigator();
    let container = Reflect::get(&navigator, &JsValue::from_str("serviceWorker")).ok()?;
    if container.is_undefined() {
        return None;
    }
    Some(navigator.service_worker())
}

fn save_picker() -> Option<Function> {
    js::global_property("showSaveFilePicker").and_then(|f| f.dyn_into().ok())
}

/// The best way this browser offers for a file of `size` bytes. A large file waits up to 30 s for
/// the download helper to take control of a freshly loaded page (its first install over HTTPS on
/// a loaded machine took longer than the 5 s this once allowed).
pub async fn choose(size: u64) -> Result<SaveMode, Failure> {
    if save_picker().is_some() {
        return Ok(SaveMode::FileSystem);
    }
    if let Some(container) = service_workers() {
        let waits = if size <= BLOB_LIMIT { 1 } else { 300 };
        for _ in 0..waits {
            if container.controller().is_some() {
                return Ok(SaveMode::ServiceWorker);
            }
            js::sleep(100).await;
        }
    }
    if size <= BLOB_LIMIT {
        Ok(SaveMode::Blob)
    } else {
        Err(Failure::browser(
            "this browser cannot save large files from a page: try a current Chrome, Edge or Firefox",
        ))
    }
}

/// Where the pipeline worker should write: a port to transfer to it (none for a Blob).
#[derive(Debug)]
pub struct Target {
    pub mode: SaveMode,
    pub port: Option<web_sys::MessagePort>,
    /// The page's writer into a picked file: the download is saved only once it has closed it.
    writer: Option<FileWriter>,
}

/// Writes the chunks the pipeline worker sends through a port into a picked file
/// (`FileSystemWritableFileStream`, which keeps them in a swap file until `close` moves it into
/// place). It asks for [`WRITER_CREDITS`] chunks, and one more after each write. The first write
/// that fails stops the download (`cancel`) and is what the person is told; the file they picked
/// is left as it was.
#[derive(Debug)]
struct FileWriter {
    /// The first write or close that failed, in words for the person.
    failure: Rc<RefCell<Option<Failure>>>,
    /// Answered once the file is closed (`Ok`) or given up (`Err`).
    closed: oneshot::Receiver<Result<(), Failure>>,
    /// The port's message handler; it holds itself here until the pipeline says the file ended.
    _handler: WriterSlot,
}

/// The file writer's message handler.
type WriterSlot = Rc<RefCell<Option<Closure<dyn FnMut(web_sys::MessageEvent)>>>>;

impl FileWriter {
    /// Start writing into `writable`; returns the port to hand the pipeline worker.
    fn start(writable: JsValue) -> Result<(web_sys::MessagePort, Self), Failure> {
        let channel = web_sys::MessageChannel::new().map_err(|e| Failure::js(&e))?;
        let ours = channel.port1();
        let slot: WriterSlot = Rc::default();
        let failure: Rc<RefCell<Option<Failure>>> = Rc::default();
        let (closed_tx, closed) = oneshot::channel();
        let closed_tx = Rc::new(RefCell::new(Some(closed_tx)));
        let on_message = {
            let (port, failure, slot) = (ours.clone(), Rc::clone(&failure), Rc::clone(&slot));
            Closure::new(move |event: web_sys::MessageEvent| {
                let data = event.data();
                let (port, writable, failure) = (port.clone(), writable.clone(), Rc::clone(&failure));
                if let Some(chunk) = js::field(&data, "chunk") {
                    wasm_bindgen_futures::spawn_local(async move {
                        if failure.borrow().is_some() {
                            return;
                        }
                        // FileSystemWritableFileStream queues writes in call order, so chunks
                        // land in order although each is written by a task of its own.
                        let answer = match call_promise(&writable, "write", &Array::of1(&chunk)).await {
                            Ok(_) => "pull",
                            Err(e) => {
                                failure
                                    .borrow_mut()
                                    .get_or_insert(Failure::Browser(format!("cannot write the file: {e}")));
                                "cancel"
                            }
                        };
                        let _ = port.post_message(&js::message(&[(answer, &JsValue::TRUE)]));
                    });
                    return;
                }
                // The file ended (`done`) or the download failed (`error`): nothing more comes.
                port.set_onmessage(None);
                let handler = slot.borrow_mut().take();
                let ended = js::field(&data, "done").is_some();
                let closed_tx = closed_tx.borrow_mut().take();
                wasm_bindgen_futures::spawn_local(async move {
                    let _handler = handler;
                    let outcome = if ended && failure.borrow().is_none() {
                        call_promise(&writable, "close", &Array::new())
                            .await
                            .map(|_| ())
                            .map_err(|e| Failure::browser(format!("cannot finish writing the file: {e}")))
                    } else {
                        let _ = call_promise(&writable, "abort", &Array::new()).await;
                        Err(failure
                            .borrow()
                            .clone()
                            .unwrap_or_else(|| Failure::browser("the download failed")))
                    };
                    if let Some(tx) = closed_tx {
                        let _ = tx.send(outcome);
                    }
                });
            })
        };
        ours.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        *slot.borrow_mut() = Some(on_message);
        let pull = js::message(&[("pull", &JsValue::TRUE)]);
        for _ in 0..WRITER_CREDITS {
            let _ = ours.post_message(&pull);
        }
        Ok((
            channel.port2(),
            Self {
                failure,
                closed,
                _handler: slot,
            },
        ))
    }
}

async fn call_promise(target: &JsValue, method: &str, args: &Array) -> Result<JsValue, Failure> {
    let f: Function = Reflect::get(target, &JsValue::from_str(method))
        .map_err(|e| Failure::js(&e))?
        .dyn_into()
        .map_err(|_| Failure::browser(format!("{method} is not available")))?;
    let promise: Promise = f
        .apply(target, args)
        .map_err(|e| Failure::js(&e))?
        .dyn_into()
        .map_err(|_| Failure::browser(format!("{method} did not return a promise")))?;
    JsFuture::from(promise).await.map_err(|e| Failure::js(&e))
}

/// Prepare to save `name` (`size` bytes, `mime`) in `mode`. For the File System Access API this
/// asks where to save (call it straight from the click).
pub async fn prepare(mode: SaveMode, name: &str, size: u64, mime: &str) -> Result<Target, Failure> {
    match mode {
        SaveMode::Blob => Ok(Target {
            mode,
            port: None,
            writer: None,
        }),
        SaveMode::FileSystem => {
            let picker = save_picker().ok_or_else(|| Failure::browser("the file picker is not available"))?;
            let options = js::message(&[("suggestedName", &JsValue::from_str(name))]);
            let promise: Promise = picker
                .call1(&JsValue::NULL, &options)
                .map_err(|e| Failure::js(&e))?
                .dyn_into()
                .map_err(|_| Failure::browser("the file picker did not answer"))?;
            let handle = JsFuture::from(promise)
                .await
                .map_err(|_| Failure::browser("no file was chosen"))?;
            let writable = call_promise(&handle, "createWritable", &Array::new()).await?;
            let (port, writer) = FileWriter::start(writable)?;
            Ok(Target {
                mode,
                port: Some(port),
                writer: Some(writer),
            })
        }
        SaveMode::ServiceWorker => {
            let worker = service_workers()
                .and_then(|c| c.controller())
                .ok_or_else(|| Failure::browser("the download helper is not running: reload the page"))?;
            let id = disktro_core::ids::to_hex(&disktro_core::random_bytes::<16>());
            let stream = web_sys::MessageChannel::new().map_err(|e| Failure::js(&e))?;
            let ack = web_sys::MessageChannel::new().map_err(|e| Failure::js(&e))?;
            let message = js::message(&[
                ("type", &JsValue::from_str("download")),
                ("id", &JsValue::from_str(&id)),
                ("name", &JsValue::from_str(name)),
                ("mime", &JsValue::from_str(mime)),
                ("size", &JsValue::from_f64(size as f64)),
            ]);
            let acked = Promise::new(&mut |resolve, _| {
                ack.port2().set_onmessage(Some(&resolve));
            });
            worker
                .post_message_with_transferable(&message, &Array::of2(&stream.port1(), &ack.port1()))
                .map_err(|e| Failure::js(&e))?;
            JsFuture::from(acked).await.map_err(|e| Failure::js(&e))?;
            ack.port2().set_onmessage(None);
            // A navigation answered with `Content-Disposition: attachment` becomes a download;
            // the page stays where it is.
            follow_link(&format!("/_download/{id}"), None)?;
            Ok(Target {
                mode,
                port: Some(stream.port2()),
                writer: None,
            })
        }
    }
}

/// Click a link nobody sees: to `href`, saved as `download` when given.
fn follow_link(href: &str, download: Option<&str>) -> Result<(), Failure> {
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| Failure::browser("no document"))?;
    let a: web_sys::HtmlAnchorElement = document
        .create_element("a")
        .map_err(|e| Failure::js(&e))?
        .unchecked_into();
    a.set_href(href);
    if let Some(name) = download {
        a.set_download(name);
    }
    a.click();
    Ok(())
}

/// Save a finished Blob download under `name`.
pub fn save_blob(blob: &web_sys::Blob, name: &str) -> Result<(), Failure> {
    let url = web_sys::Url::create_object_url_with_blob(blob).map_err(|e| Failure::js(&e))?;
    follow_link(&url, Some(name))?;
    // Revoked once the browser has had time to start the download.
    wasm_bindgen_futures::spawn_local(async move {
        js::sleep(60_000).await;
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    Ok(())
}

/// Progress of a download as the page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Saved {
    pub bytes_done: u64,
    pub size: u64,
}

/// Download the file `answer` describes into a file on disk named `name`, the best way this
/// browser allows, through the pipeline worker. `owner` is checked against the manifest's
/// signer when known; get tokens are renewed through `renewal` when the download outlasts
/// them; `order_key` is the key the answer's tokens name, which the download signs its orders
/// with. `started` hears the pipeline job (to cancel it: `Pipeline::cancel`, which
/// ends the download with `Failure::Cancelled`); `progress` hears after every chunk; the future
/// ends when the last byte has been handed to the disk (or the Blob saved).
#[allow(clippy::too_many_arguments)]
pub async fn download_to_disk(
    answer: disktro_core::api::FileDownload,
    key: &disktro_core::FileKey,
    owner: Option<PublicKey>,
    renewal: Option<super::download::Renewal>,
    order_key: &disktro_core::keys::Keypair,
    (name, mime): (&str, &str),
    started: impl FnOnce(u32),
    progress: impl Fn(Saved) + 'static,
) -> Result<(), Failure> {
    use super::pipeline::{Event, Pipeline, Request};
    // The exact size is sealed with the name (the server knows only the padded size class): the
    // saved file's length, and a streamed download's Content-Length, must be the exact one.
    let size = disktro_core::metadata::FileMetadata::open(&answer.metadata, key, &answer.file_id)
        .map_err(|_| Failure::Decrypt)?
        .size;
    let mode = choose(size).await?;
    let target = prepare(mode, name, size, mime).await?;
    let pipeline = Pipeline::get().await?;
    let (tx, rx) = oneshot::channel::<Result<(), Failure>>();
    let mut tx = Some(tx);
    let file_name = name.to_owned();
    let request = Request::Download {
        answer,
        key: Base64::from(*key.as_bytes()),
        owner,
        renewal,
        order_key: Base64::from(*order_key.secret_bytes()),
    };
    let extra = target.port.clone().map(|p| ("port", JsValue::from(p)));
    let job = pipeline.run(&request, extra, move |event, blob| {
        let outcome = match event {
            Event::Progress { bytes_done, size, .. } => {
                progress(Saved { bytes_done, size });
                return;
            }
            Event::Downloaded { .. } => match blob.dyn_ref::<web_sys::Blob>() {
                Some(blob) => save_blob(blob, &file_name),
                None => Ok(()),
            },
            Event::Failed { failure } => Err(failure),
            _ => Ok(()),
        };
        if let Some(tx) = tx.take() {
            let _ = tx.send(outcome);
        }
    })?;
    started(job);
    let outcome = rx.await.map_err(|_| Failure::browser("the background worker stopped"));
    match (outcome.and_then(|o| o), target.writer) {
        // Written to a picked file: saved once the page has closed it. Until then the chunks
        // sit in the browser's swap file and any of them may still fail to be written.
        (Ok(()), Some(writer)) => writer
            .closed
            .await
            .unwrap_or_else(|_| Err(Failure::browser("the file writer stopped"))),
        // A write that failed stopped the pipeline: that failure is the one to tell.
        (Err(e), Some(writer)) => Err(writer.failure.borrow().clone().unwrap_or(e)),
        (outcome, None) => outcome,
    }
}
