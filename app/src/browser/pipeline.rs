//! The Web Worker that does the heavy work, and the page's handle on it.
//!
//! `/pipeline.js` (in `public/`) loads this same WebAssembly module in a dedicated worker and
//! calls [`pipeline_worker`]. The page talks to it with [`Pipeline`]: each job is a JSON
//! [`Request`] (plus a `File` or a `MessagePort` where needed) and answers with a stream of
//! [`Event`]s for that job. Jobs: Argon2id for log-ins, uploads, downloads and restripes. Nothing leaves the
//! tab: keys travel between the page and its own worker only.

use crate::browser::Failure;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use disktro_core::FileKey;
use disktro_core::api::{FileDownload, FileSummary};
use disktro_core::keys::{KdfSetup, Keypair, PublicKey, derive_account_keys};
use disktro_core::order::Orders;
use js_sys::{Array, Object};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use super::api::Api;
use super::download::{self, Sink};
use super::keyring::{Keyring, KeyringWire};
use super::{js, restripe, upload};
use disktro_core::api::Base64;

/// What the page asks of the worker.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Argon2id: password and the account's KDF set-up → auth and master keys.
    Derive { password: String, kdf_setup: Base64 },
    /// Upload the `file` sent along, into `folder` (none: the top of the tree).
    Upload {
        keyring: KeyringWire,
        #[serde(default)]
        folder: Option<disktro_core::FolderId>,
    },
    /// Download into the `port` sent along (or a Blob when there is none).
    Download {
        answer: FileDownload,
        /// The file key.
        key: Base64,
        /// The account's public key, for owners: the manifest must be signed by it.
        owner: Option<PublicKey>,
        /// Where fresh get tokens come from when the download outlasts these.
        renewal: Option<download::Renewal>,
        /// The secret half of the order key the answer's tokens name (made where the answer
        /// was asked for): the download signs its orders with it.
        order_key: Base64,
    },
    /// Re-encode the owner's `file` at the redundancy the policy gives now.
    Restripe { keyring: KeyringWire, file: FileSummary },
    /// Stop a running upload, download or restripe.
    Cancel,
}

/// Names the job only: requests carry passwords and keys.
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Derive { .. } => "Request::Derive",
            Self::Upload { .. } => "Request::Upload",
            Self::Download { .. } => "Request::Download",
            Self::Restripe { .. } => "Request::Restripe",
            Self::Cancel => "Request::Cancel",
        })
    }
}

/// What the worker tells the page about a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Derived {
        auth_key: Base64,
        master_key: Base64,
    },
    Progress {
        bytes_done: u64,
        size: u64,
        shards_done: u64,
        shards_total: u64,
    },
    Uploaded {
        summary: FileSummary,
    },
    Restriped {
        summary: FileSummary,
    },
    /// The download finished; a Blob sink's Blob travels alongside.
    Downloaded {
        name: String,
        mime: String,
    },
    Failed {
        failure: Failure,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    job: u32,
    #[serde(flatten)]
    body: T,
}

/// A job's message: `{json: envelope, [name]: extra}`.
fn envelope_message<T: Serialize>(job: u32, body: T, extra: Option<(&str, &JsValue)>) -> Result<Object, Failure> {
    let json = serde_json::to_string(&Envelope { job, body }).map_err(|e| Failure::Browser(e.to_string()))?;
    let json = JsValue::from_str(&json);
    Ok(match extra {
        Some((name, value)) => js::message(&[("json", &json), (name, value)]),
        None => js::message(&[("json", &json)]),
    })
}

/// The envelope in a received message, if it is one.
fn read_envelope<T: serde::de::DeserializeOwned>(data: &JsValue) -> Option<Envelope<T>> {
    let json = js::field(data, "json")?.as_string()?;
    serde_json::from_str(&json).ok()
}

fn post_event(job: u32, event: &Event, extra: Option<(&str, &JsValue)>) {
    if let (Ok(message), Ok(scope)) = (
        envelope_message(job, event, extra),
        js::global().dyn_into::<web_sys::DedicatedWorkerGlobalScope>(),
    ) {
        let _ = scope.post_message(&message);
    }
}

thread_local! {
    /// Cancel flags of the jobs running in this worker.
    static RUNNING: RefCell<HashMap<u32, Rc<Cell<bool>>>> = RefCell::default();
}

/// Entry point inside the Web Worker (called by `/pipeline.js`).
#[wasm_bindgen]
pub fn pipeline_worker() {
    console_error_panic_hook::set_once();
    let Ok(scope) = js::global().dyn_into::<web_sys::DedicatedWorkerGlobalScope>() else {
        return;
    };
    let on_message = Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
        let data = event.data();
        let Some(envelope) = read_envelope::<Request>(&data) else {
            return;
        };
        let extra = |name: &str| js::field(&data, name);
        let job = envelope.job;
        match envelope.body {
            Request::Cancel => {
                if let Some(flag) = RUNNING.with(|r| r.borrow().get(&job).cloned()) {
                    flag.set(true);
                }
            }
            request => {
                let cancelled = Rc::new(Cell::new(false));
                RUNNING.with(|r| r.borrow_mut().insert(job, Rc::clone(&cancelled)));
                let file = extra("file").and_then(|f| f.dyn_into::<web_sys::File>().ok());
                let port = extra("port").and_then(|p| p.dyn_into::<web_sys::MessagePort>().ok());
                wasm_bindgen_futures::spawn_local(async move {
                    run(job, request, file, port, &cancelled).await;
                    RUNNING.with(|r| r.borrow_mut().remove(&job));
                });
            }
        }
    });
    scope.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    // The page waits for this before sending jobs.
    let _ = scope.post_message(&JsValue::from_str("ready"));
}

async fn run(
    job: u32,
    request: Request,
    file: Option<web_sys::File>,
    port: Option<web_sys::MessagePort>,
    cancelled: &Cell<bool>,
) {
    let failed = |failure: Failure| post_event(job, &Event::Failed { failure }, None);
    match request {
        Request::Derive { password, kdf_setup } => {
            let setup = KdfSetup::decode(&kdf_setup)
                .map_err(|e| Failure::Invalid(format!("the server's key set-up is not acceptable: {e}")));
            match setup.and_then(|s| derive_account_keys(&password, &s).map_err(Failure::from)) {
                Ok(keys) => post_event(
                    job,
                    &Event::Derived {
                        auth_key: Base64::from(*keys.auth_key.as_bytes()),
                        master_key: Base64::from(*keys.master_key.as_bytes()),
                    },
                    None,
                ),
                Err(e) => failed(e),
            }
        }
        Request::Upload { keyring, folder } => {
            let (Some(file), Ok(me)) = (file, Keyring::from_wire(&keyring)) else {
                return failed(Failure::browser("the upload job lacks its file or keys"));
            };
            let api = Api::new(Some(me.csrf.clone()));
            let progress = |p: upload::Progress| {
                post_event(
                    job,
                    &Event::Progress {
                        bytes_done: p.bytes_done,
                        size: p.size,
                        shards_done: p.shards_done,
                        shards_total: p.shards_total,
                    },
                    None,
                );
            };
            match upload::upload(&api, &me, &file, folder, &progress, cancelled).await {
                Ok(summary) => post_event(job, &Event::Uploaded { summary }, None),
                Err(e) => failed(e),
            }
        }
        Request::Download {
            answer,
            key,
            owner,
            renewal,
            order_key,
        } => {
            let key = match <[u8; 32]>::try_from(key.as_bytes()) {
                Ok(k) => FileKey::from_bytes(k),
                Err(_) => return failed(Failure::invalid("the file key is not 32 bytes")),
            };
            let orders = match <[u8; 32]>::try_from(order_key.as_bytes()) {
                Ok(k) => Orders::with_key(Keypair::from_secret_bytes(&k)),
                Err(_) => return failed(Failure::invalid("the order key is not 32 bytes")),
            };
            let mut sink = port.map_or_else(|| Sink::Blob(Array::new()), Sink::port);
            let progress = |p: download::Progress| {
                post_event(
                    job,
                    &Event::Progress {
                        bytes_done: p.bytes_done,
                        size: p.size,
                        shards_done: 0,
                        shards_total: 0,
                    },
                    None,
                );
            };
            match download::download(
                answer,
                &key,
                owner.as_ref(),
                renewal,
                orders,
                &mut sink,
                &progress,
                cancelled,
            )
            .await
            {
                Ok(metadata) => {
                    let blob = sink.finish(None);
                    let event = Event::Downloaded {
                        name: metadata.name,
                        mime: metadata.mime,
                    };
                    post_event(job, &event, blob.as_ref().map(|b| ("blob", b.as_ref())));
                }
                Err(e) => {
                    sink.finish(Some(&e.to_string()));
                    failed(e);
                }
            }
        }
        Request::Restripe { keyring, file } => {
            let Ok(me) = Keyring::from_wire(&keyring) else {
                return failed(Failure::browser("the restripe job lacks its keys"));
            };
            let api = Api::new(Some(me.csrf.clone()));
            let progress = |p: upload::Progress| {
                post_event(
                    job,
                    &Event::Progress {
                        bytes_done: p.bytes_done,
                        size: p.size,
                        shards_done: p.shards_done,
                        shards_total: p.shards_total,
                    },
                    None,
                );
            };
            match restripe::restripe(&api, &me, &file, &progress, cancelled).await {
                Ok(summary) => post_event(job, &Event::Restriped { summary }, None),
                Err(e) => failed(e),
            }
        }
        Request::Cancel => {}
    }
}

type Listener = Box<dyn FnMut(Event, JsValue)>;

/// The page's handle on the pipeline worker: started on first use, shared by every page.
pub struct Pipeline {
    worker: web_sys::Worker,
    ready: Rc<Cell<bool>>,
    next_job: Cell<u32>,
    listeners: Rc<RefCell<HashMap<u32, Listener>>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("ready", &self.ready.get())
            .finish_non_exhaustive()
    }
}

thread_local! {
    static PIPELINE: RefCell<Option<Rc<Pipeline>>> = const { RefCell::new(None) };
}

impl Pipeline {
    /// The running pipeline worker, started (and waited for) on first use.
    pub async fn get() -> Result<Rc<Self>, Failure> {
        let existing = PIPELINE.with(|p| p.borrow().clone());
        let pipeline = match existing {
            Some(p) => p,
            None => {
                let p = Rc::new(Self::start()?);
                PIPELINE.with(|slot| *slot.borrow_mut() = Some(Rc::clone(&p)));
                p
            }
        };
        for _ in 0..3000 {
            if pipeline.ready.get() {
                return Ok(pipeline);
            }
            js::sleep(10).await;
        }
        Err(Failure::browser("the background worker did not start"))
    }

    fn start() -> Result<Self, Failure> {
        let options = web_sys::WorkerOptions::new();
        options.set_type(web_sys::WorkerType::Module);
        let worker = web_sys::Worker::new_with_options("/pipeline.js", &options).map_err(|e| Failure::js(&e))?;
        let ready = Rc::new(Cell::new(false));
        let listeners: Rc<RefCell<HashMap<u32, Listener>>> = Rc::default();
        let on_message = {
            let (ready, listeners) = (Rc::clone(&ready), Rc::clone(&listeners));
            Closure::new(move |event: web_sys::MessageEvent| {
                let data = event.data();
                if data.as_string().as_deref() == Some("ready") {
                    ready.set(true);
                    return;
                }
                let Some(envelope) = read_envelope::<Event>(&data) else {
                    return;
                };
                let blob = js::field(&data, "blob").unwrap_or(JsValue::UNDEFINED);
                let finished = matches!(
                    envelope.body,
                    Event::Derived { .. }
                        | Event::Uploaded { .. }
                        | Event::Restriped { .. }
                        | Event::Downloaded { .. }
                        | Event::Failed { .. }
                );
                // Taken out while it runs: a listener may start another job.
                let listener = listeners.borrow_mut().remove(&envelope.job);
                if let Some(mut listener) = listener {
                    listener(envelope.body, blob);
                    if !finished {
                        listeners.borrow_mut().insert(envelope.job, listener);
                    }
                }
            })
        };
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Ok(Self {
            worker,
            ready,
            next_job: Cell::new(1),
            listeners,
            _on_message: on_message,
        })
    }

    /// Start a job; `listener` hears its events until the last. `extra` is a `File` or a
    /// `MessagePort` (transferred) sent along. Returns the job's id, for [`Self::cancel`].
    pub fn run(
        &self,
        request: &Request,
        extra: Option<(&str, JsValue)>,
        listener: impl FnMut(Event, JsValue) + 'static,
    ) -> Result<u32, Failure> {
        let job = self.next_job.get();
        self.next_job.set(job + 1);
        let message = envelope_message(job, request, extra.as_ref().map(|(name, value)| (*name, value)))?;
        let transfer = Array::new();
        if let Some((_, value)) = extra.filter(|(_, v)| v.is_instance_of::<web_sys::MessagePort>()) {
            transfer.push(&value);
        }
        self.listeners.borrow_mut().insert(job, Box::new(listener));
        self.worker
            .post_message_with_transfer(&message, &transfer)
            .map_err(|e| Failure::js(&e))?;
        Ok(job)
    }

    pub fn cancel(&self, job: u32) {
        if let Ok(message) = envelope_message(job, Request::Cancel, None) {
            let _ = self.worker.post_message(&message);
        }
    }

    /// Run Argon2id off the main thread.
    pub async fn derive(&self, password: &str, setup: &KdfSetup) -> Result<disktro_core::keys::AccountKeys, Failure> {
        let (tx, rx) = futures_channel::oneshot::channel::<Event>();
        let mut tx = Some(tx);
        self.run(
            &Request::Derive {
                password: password.to_owned(),
                kdf_setup: Base64::new(setup.encode()),
            },
            None,
            move |event, _| {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(event);
                }
            },
        )?;
        match rx
            .await
            .map_err(|_| Failure::browser("the background worker stopped"))?
        {
            Event::Derived { auth_key, master_key } => {
                let bytes = |value: &Base64, what: &str| {
                    <[u8; 32]>::try_from(value.as_bytes())
                        .map_err(|_| Failure::Invalid(format!("the {what} is not 32 bytes")))
                };
                Ok(disktro_core::keys::AccountKeys {
                    auth_key: disktro_core::keys::AuthKey::from_bytes(bytes(&auth_key, "auth key")?),
                    master_key: disktro_core::keys::MasterKey::from_bytes(bytes(&master_key, "master key")?),
                })
            }
            Event::Failed { failure } => Err(failure),
            _ => Err(Failure::browser("unexpected answer from the background worker")),
        }
    }
}
