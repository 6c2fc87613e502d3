//! One WebSocket to a storage worker, multiplexed: every request carries an id, answers may come
//! back in any order, and many requests are in flight at once. Sending waits while the socket's
//! buffer holds more than [`HIGH_WATER`] bytes, so a slow worker slows its sender instead of
//! filling the tab's memory. The frames are `disktro-core`'s [`wire`](disktro_core::wire), and
//! the numbering and routing of requests is its [`mux`](disktro_core::mux), as in the CLI.
//!
//! An upload's sockets live on a thread of their own, `/relay.js`, a worker the pipeline worker
//! starts once ([`Relay`]). Chromium hands a large message to its network service a slice at a
//! time, each slice from the thread that owns the socket and only when that thread's event loop
//! is free: owned by the pipeline thread, a socket stalled whenever that thread was sealing,
//! sharding or hashing (in a timed upload the pipeline waited on receipts for half of its time,
//! its own busy stretches holding the sends back). The relay's thread does nothing else. Frames
//! cross to it in transferred buffers, which come back once sent and are reused. A download's
//! sockets stay on the pipeline thread ([`Socket::Here`]): it mostly receives, and through the
//! relay it was no faster and held 15–25 MiB more.

use crate::browser::Failure;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

use disktro_core::fetch::Reconnects;
use disktro_core::mux::{Heard, NotBegun, Requests};
use disktro_core::wire::{Body, Frame};
use disktro_core::{ShardId, VerifiedShard};
use futures_channel::oneshot;
use futures_util::future::{Either, FutureExt as _, LocalBoxFuture, Shared, select};
use js_sys::{Array, ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;

use super::js;

/// Bytes queued in the socket beyond which senders wait.
pub const HIGH_WATER: u32 = 8 * 1024 * 1024;
/// How long a worker may take to answer one request.
const REQUEST_TIMEOUT_MS: i32 = 60_000;
/// How long connecting may take (once its turn among [`MAX_CONNECTING`] has come).
const CONNECT_TIMEOUT_MS: i32 = 10_000;
/// WebSockets of this thread being opened at once; the next wait for one of them to open or fail.
/// Chromium delays each new WebSocket of a renderer by 1–5 s × 2^p / 65,536, p being that
/// renderer's connections still opening (`services/network/websocket_throttler.cc`): opening a
/// 9 + 6 upload's 15 sockets at once cost the last ones 0.5–2.5 s (an eighth of a 256 MiB
/// upload, some runs a half), and 20 at once 1–5 s each. Six at a time wait at most 2.5 ms.
const MAX_CONNECTING: usize = 6;
/// Bytes of sent frames' buffers kept for the next frames (the relay hands each back as soon as
/// it has sent it): about two chunks' frames, counted in bytes rather than buffers because a
/// wider stripe cuts a chunk into more, smaller frames (9 + 6 into 15 of 466 KB).
const SPARE_BYTES: u32 = 14 * 1024 * 1024;

#[derive(Default)]
struct State {
    /// Requests in flight, and why the socket closed once it has (`disktro_core::mux`, shared
    /// with the CLI).
    requests: Requests<oneshot::Sender<Body>>,
    /// Told once the socket opens (`true`) or fails to (`false`).
    opened: Option<oneshot::Sender<bool>>,
    /// For a relayed socket: its `bufferedAmount` as the relay last reported it, plus the frames
    /// handed to the relay since.
    buffered: u32,
}

impl State {
    /// A frame from the worker: the answer to a request.
    fn hear(&mut self, bytes: &[u8]) {
        match self.requests.hear(bytes) {
            Heard::Answer(waiter, body) => {
                let _ = waiter.send(body);
            }
            Heard::Stray => {}
            // The requests have closed; the socket's opener hears it too.
            Heard::Broken(_) => self.opened(false),
        }
    }

    fn opened(&mut self, open: bool) {
        if let Some(opened) = self.opened.take() {
            let _ = opened.send(open);
        }
    }

    fn close(&mut self, reason: String) {
        // Waiters see their sender dropped and report the close reason.
        self.requests.close(reason);
        self.opened(false);
    }

    fn closed(&self) -> Option<String> {
        self.requests.closed().map(str::to_owned)
    }
}

/// The socket relay worker and the links using it, one per pipeline worker.
struct Relay {
    worker: web_sys::Worker,
    links: RefCell<HashMap<u32, Rc<RefCell<State>>>>,
    next_link: Cell<u32>,
    /// Buffers of sent frames, back from the relay.
    spare: RefCell<Vec<ArrayBuffer>>,
    _on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

/// Messages still on their way from a relay that is gone find no handler.
impl Drop for Relay {
    fn drop(&mut self) {
        self.worker.set_onmessage(None);
        self.worker.set_onerror(None);
    }
}

thread_local! {
    static RELAY: RefCell<Option<Rc<Relay>>> = const { RefCell::new(None) };
    /// This thread's sockets being opened, and the connects waiting for their turn.
    static CONNECTING: RefCell<(usize, VecDeque<oneshot::Sender<ConnectTurn>>)> = RefCell::default();
}

/// One of the [`MAX_CONNECTING`] turns to open a socket; dropped once the socket opened or failed
/// to, it passes to the next connect waiting.
#[derive(Debug)]
struct ConnectTurn(());

impl ConnectTurn {
    async fn take() -> Self {
        let waiting = CONNECTING.with(|c| {
            let (opening, waiting) = &mut *c.borrow_mut();
            if *opening < MAX_CONNECTING {
                *opening += 1;
                None
            } else {
                let (tx, rx) = oneshot::channel();
                waiting.push_back(tx);
                Some(rx)
            }
        });
        match waiting {
            None => Self(()),
            // Handed over by a turn that ended; a turn is never dropped without passing on.
            Some(rx) => rx.await.unwrap_or(Self(())),
        }
    }
}

impl Drop for ConnectTurn {
    fn drop(&mut self) {
        CONNECTING.with(|c| {
            let (opening, waiting) = &mut *c.borrow_mut();
            // The next connect still waiting takes this turn over; one given up meanwhile (its
            // receiver dropped) hands it back, and the one after it is tried.
            while let Some(next) = waiting.pop_front() {
                match next.send(Self(())) {
                    Ok(()) => return,
                    Err(turn) => std::mem::forget(turn),
                }
            }
            *opening = opening.saturating_sub(1);
        });
    }
}

impl Relay {
    /// This thread's relay, started on first use.
    fn get() -> Result<Rc<Self>, Failure> {
        if let Some(relay) = RELAY.with(|r| r.borrow().clone()) {
            return Ok(relay);
        }
        let worker = web_sys::Worker::new("/relay.js")
            .map_err(|e| Failure::worker(format!("cannot start the socket relay: {}", js::describe(&e))))?;
        // The handlers hold their own relay weakly: a relay's messages reach only that relay,
        // and one that is gone unsets them (see `Drop`).
        let relay = Rc::new_cyclic(|me: &std::rc::Weak<Self>| {
            let on_message = Closure::new({
                let me = me.clone();
                move |event: web_sys::MessageEvent| {
                    if let Some(relay) = me.upgrade() {
                        relay.hear(&event.data());
                    }
                }
            });
            // A relay that cannot load or run fails its links at once, and the next link
            // starts another.
            let on_error = Closure::new({
                let me = me.clone();
                move |_: web_sys::Event| {
                    let Some(relay) = me.upgrade() else { return };
                    relay.worker.terminate();
                    relay.forget();
                    for state in relay.links.borrow().values() {
                        state.borrow_mut().close("the socket relay stopped".to_owned());
                    }
                    // Perhaps the last hold on it: not dropped inside its own handler.
                    wasm_bindgen_futures::spawn_local(async move { drop(relay) });
                }
            });
            worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
            worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
            Self {
                worker,
                links: RefCell::default(),
                next_link: Cell::new(1),
                spare: RefCell::default(),
                _on_message: on_message,
                _on_error: on_error,
            }
        });
        RELAY.with(|r| *r.borrow_mut() = Some(Rc::clone(&relay)));
        Ok(relay)
    }

    /// Open a socket to `url` whose events go to `state`; returns the link's id.
    fn open(&self, url: &str, state: &Rc<RefCell<State>>) -> u32 {
        let id = self.next_link.get();
        self.next_link.set(id.wrapping_add(1));
        self.links.borrow_mut().insert(id, Rc::clone(state));
        let message = js::message(&[
            ("op", &JsValue::from_str("open")),
            ("id", &JsValue::from(id)),
            ("url", &JsValue::from_str(url)),
        ]);
        self.post(&message, None);
        id
    }

    /// Close link `id`'s socket. Once the last link is gone (an upload ended), the relay ends
    /// too, and its spare buffers go: a download after an upload would otherwise carry them in
    /// the tab's memory. The next link starts a fresh one.
    fn close(&self, id: u32) {
        self.links.borrow_mut().remove(&id);
        self.post(
            &js::message(&[("op", &JsValue::from_str("close")), ("id", &JsValue::from(id))]),
            None,
        );
        if !self.links.borrow().is_empty() {
            return;
        }
        self.spare.borrow_mut().clear();
        self.post(&js::message(&[("op", &JsValue::from_str("stop"))]), None);
        self.forget();
    }

    /// No longer this thread's relay: the next link starts another. Its links keep it alive
    /// until they are gone.
    fn forget(&self) {
        RELAY.with(|r| {
            let mut current = r.borrow_mut();
            if current.as_ref().is_some_and(|c| std::ptr::eq(Rc::as_ptr(c), self)) {
                *current = None;
            }
        });
    }

    fn post(&self, message: &js_sys::Object, transfer: Option<&JsValue>) {
        let _ = match transfer {
            Some(t) => self.worker.post_message_with_transfer(message, &Array::of1(t)),
            None => self.worker.post_message(message),
        };
    }

    /// What the relay says of one link.
    fn hear(&self, data: &JsValue) {
        let op = js::field(data, "op").and_then(|o| o.as_string()).unwrap_or_default();
        let number = |key: &str| js::field(data, key).and_then(|v| v.as_f64()).map(crate::format::whole);
        let Some(id) = number("id").and_then(|i| u32::try_from(i).ok()) else {
            return;
        };
        let Some(state) = self.links.borrow().get(&id).cloned() else {
            return;
        };
        let mut state = state.borrow_mut();
        if let Some(buffered) = number("buffered") {
            state.buffered = u32::try_from(buffered).unwrap_or(u32::MAX);
        }
        match op.as_str() {
            "open" => state.opened(true),
            "message" => state.hear(&js::field(data, "data").map(|d| js::to_vec(&d)).unwrap_or_default()),
            "sent" => {
                let mut spare = self.spare.borrow_mut();
                if let Some(buffer) = js::field(data, "data").and_then(|d| d.dyn_into::<ArrayBuffer>().ok()) {
                    let kept: u32 = spare.iter().map(ArrayBuffer::byte_length).sum();
                    if kept.saturating_add(buffer.byte_length()) <= SPARE_BYTES {
                        spare.push(buffer);
                    }
                }
            }
            "close" => {
                let reason = js::field(data, "reason")
                    .and_then(|r| r.as_string())
                    .unwrap_or_default();
                state.close(close_reason(&reason, number("code").unwrap_or(0)));
            }
            _ => {}
        }
    }

    /// Copy the frame `head` + `data` into a spare buffer (or a new one) and hand it to the relay
    /// to send on `link`: a shard is copied once, from the WebAssembly memory into that buffer.
    fn send(&self, link: u32, head: &[u8], data: &[u8]) {
        let len = u32::try_from(head.len() + data.len()).unwrap_or(u32::MAX);
        let head_len = u32::try_from(head.len()).unwrap_or(u32::MAX);
        let buffer = {
            let mut spare = self.spare.borrow_mut();
            match spare.iter().position(|b| b.byte_length() >= len) {
                Some(at) => spare.swap_remove(at),
                None => ArrayBuffer::new(len),
            }
        };
        Uint8Array::new_with_byte_offset_and_length(&buffer, 0, head_len).copy_from(head);
        if !data.is_empty() {
            Uint8Array::new_with_byte_offset_and_length(&buffer, head_len, len - head_len).copy_from(data);
        }
        let message = js::message(&[
            ("op", &JsValue::from_str("send")),
            ("id", &JsValue::from(link)),
            ("data", &buffer),
            ("len", &JsValue::from(len)),
        ]);
        self.post(&message, Some(&buffer));
    }
}

/// Why a socket closed, in words.
fn close_reason(reason: &str, code: u64) -> String {
    if reason.is_empty() {
        format!("connection closed ({code})")
    } else {
        format!("{reason} ({code})")
    }
}

/// Which thread owns a link's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Socket {
    /// The relay's (uploads).
    Relayed,
    /// This one (downloads).
    Here,
}

type Handler<E> = Closure<dyn FnMut(E)>;

enum Transport {
    Relayed {
        relay: Rc<Relay>,
        id: u32,
    },
    Here {
        ws: web_sys::WebSocket,
        _on_message: Handler<web_sys::MessageEvent>,
        _on_close: Handler<web_sys::CloseEvent>,
        _on_open: Closure<dyn FnMut()>,
        _on_error: Closure<dyn FnMut()>,
    },
}

/// A connected worker.
pub struct WorkerLink {
    pub url: String,
    transport: Transport,
    state: Rc<RefCell<State>>,
    /// Whether a `Hello` went out on this link.
    introduced: Cell<bool>,
}

impl std::fmt::Debug for WorkerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerLink")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl Drop for WorkerLink {
    fn drop(&mut self) {
        match &self.transport {
            Transport::Relayed { relay, id } => relay.close(*id),
            Transport::Here { ws, .. } => {
                // All four: a link dropped while connecting (its transfer done without it) still
                // has its open and error handlers set, and closing a connecting socket fires one.
                ws.set_onmessage(None);
                ws.set_onclose(None);
                ws.set_onopen(None);
                ws.set_onerror(None);
                let _ = ws.close();
            }
        }
    }
}

impl WorkerLink {
    /// Connect to the worker at `url`, its socket owned by the thread `socket` names.
    pub async fn connect(url: &str, socket: Socket) -> Result<Rc<Self>, Failure> {
        let _turn = ConnectTurn::take().await;
        let (opened_tx, opened_rx) = oneshot::channel::<bool>();
        let state = Rc::new(RefCell::new(State {
            opened: Some(opened_tx),
            ..State::default()
        }));
        let transport = match socket {
            Socket::Relayed => {
                let relay = Relay::get()?;
                let id = relay.open(url, &state);
                Transport::Relayed { relay, id }
            }
            Socket::Here => Self::open_here(url, &state)?,
        };
        // A link dropped on the way closes its socket.
        let link = Rc::new(Self {
            url: url.to_owned(),
            transport,
            state,
            introduced: Cell::new(false),
        });
        // Wait for open, or for the close that follows a refused connection.
        let outcome = select(opened_rx, Box::pin(js::sleep(CONNECT_TIMEOUT_MS))).await;
        if let Transport::Here { ws, .. } = &link.transport {
            ws.set_onopen(None);
            ws.set_onerror(None);
        }
        match outcome {
            Either::Left((Ok(true), _)) => Ok(link),
            Either::Left(_) => Err(match link.closed_reason() {
                Some(reason) => Failure::Worker(format!("cannot connect to the worker at {url}: {reason}")),
                None => Failure::Worker(format!("cannot connect to the worker at {url}")),
            }),
            Either::Right(_) => Err(Failure::Worker(format!("the worker at {url} did not answer in time"))),
        }
    }

    /// A socket on this thread, its events fed to `state`.
    fn open_here(url: &str, state: &Rc<RefCell<State>>) -> Result<Transport, Failure> {
        let ws = web_sys::WebSocket::new(url).map_err(|e| Failure::js(&e))?;
        ws.set_binary_type(web_sys::BinaryType::Arraybuffer);
        let on_message: Handler<web_sys::MessageEvent> = {
            let state = Rc::clone(state);
            Closure::new(move |event: web_sys::MessageEvent| state.borrow_mut().hear(&js::to_vec(&event.data())))
        };
        let on_close: Handler<web_sys::CloseEvent> = {
            let state = Rc::clone(state);
            Closure::new(move |event: web_sys::CloseEvent| {
                state
                    .borrow_mut()
                    .close(close_reason(&event.reason(), u64::from(event.code())));
            })
        };
        // Only until the socket opens or fails to: unset then.
        let on_open = {
            let state = Rc::clone(state);
            Closure::<dyn FnMut()>::new(move || state.borrow_mut().opened(true))
        };
        let on_error = {
            let state = Rc::clone(state);
            Closure::<dyn FnMut()>::new(move || state.borrow_mut().opened(false))
        };
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Transport::Here {
            ws,
            _on_message: on_message,
            _on_close: on_close,
            _on_open: on_open,
            _on_error: on_error,
        })
    }

    /// Bytes queued in the socket and not yet sent.
    fn buffered(&self) -> u32 {
        match &self.transport {
            Transport::Relayed { .. } => self.state.borrow().buffered,
            Transport::Here { ws, .. } => ws.buffered_amount(),
        }
    }

    /// Send the frame `head` followed by `data` (empty for a frame that is all head).
    fn send(&self, head: &[u8], data: &[u8]) -> Result<(), Failure> {
        match &self.transport {
            Transport::Relayed { relay, id } => {
                // Counted at once: the relay's next word on it may come after more frames.
                {
                    let mut state = self.state.borrow_mut();
                    state.buffered = state
                        .buffered
                        .saturating_add(u32::try_from(head.len() + data.len()).unwrap_or(u32::MAX));
                }
                relay.send(*id, head, data);
                Ok(())
            }
            Transport::Here { ws, .. } if data.is_empty() => ws.send_with_u8_array(head).map_err(|e| Failure::js(&e)),
            Transport::Here { ws, .. } => ws
                .send_with_u8_array(&[head, data].concat())
                .map_err(|e| Failure::js(&e)),
        }
    }

    fn closed_reason(&self) -> Option<String> {
        self.state.borrow().closed()
    }

    /// Hand the worker a signed order for bytes received under one of its get tokens
    /// ([`disktro_core::order`]): unnumbered and not waited for (its answer is a stray).
    pub fn order(&self, order: Vec<u8>) -> Result<(), Failure> {
        let bytes = Frame {
            request_id: 0,
            body: Body::Order { order },
        }
        .encode()?;
        self.send(&bytes, &[])
    }

    /// Send one request and wait for its answer; an error frame becomes the worker's message.
    pub async fn request(&self, body: Body) -> Result<Body, Failure> {
        let bytes = Frame { request_id: 0, body }.encode()?;
        self.request_encoded(bytes).await
    }

    /// Send a request encoded earlier with request id 0 (numbered here, in place) and wait for
    /// its answer.
    pub async fn request_encoded(&self, bytes: Vec<u8>) -> Result<Body, Failure> {
        self.request_parts(bytes, &[]).await
    }

    /// Send the request whose frame is `head` (request id 0, numbered here, in place) followed
    /// by `data`, and wait for its answer; an error frame becomes the worker's message.
    async fn request_parts(&self, mut head: Vec<u8>, data: &[u8]) -> Result<Body, Failure> {
        while self.buffered() > HIGH_WATER {
            if let Some(reason) = self.closed_reason() {
                return Err(Failure::Worker(reason));
            }
            js::sleep(2).await;
        }
        let (tx, rx) = oneshot::channel();
        let request_id = match self.state.borrow_mut().requests.begin(&mut head, tx) {
            Ok(id) => id,
            Err(NotBegun::Closed(reason)) => return Err(Failure::Worker(reason)),
            Err(NotBegun::NotAFrame(e)) => return Err(Failure::Invalid(e)),
        };
        if let Err(e) = self.send(&head, data) {
            self.state.borrow_mut().requests.forget(request_id);
            return Err(e);
        }
        match select(rx, Box::pin(js::sleep(REQUEST_TIMEOUT_MS))).await {
            Either::Left((Ok(Body::Error { code, message }), _)) => {
                Err(Failure::Worker(format!("{message} ({code:?})")))
            }
            Either::Left((Ok(body), _)) => Ok(body),
            Either::Left((Err(_), _)) => Err(Failure::Worker(
                self.closed_reason().unwrap_or_else(|| "connection ended".to_owned()),
            )),
            Either::Right(_) => {
                self.state.borrow_mut().requests.forget(request_id);
                Err(Failure::Worker(format!(
                    "no answer within {} s",
                    REQUEST_TIMEOUT_MS / 1000
                )))
            }
        }
    }

    /// Introduce this link with a `Hello` carrying `token` (one of its put tokens), unless done
    /// or under way already: a worker reads no more than a small request from a connection
    /// without a valid token. Puts sent while the hello is under way wait at the worker until
    /// its token verified.
    pub async fn introduce(&self, token: &[u8]) -> Result<(), Failure> {
        if self.introduced.replace(true) {
            return Ok(());
        }
        let hello = Frame {
            request_id: 0,
            body: Body::Hello { token: token.to_vec() },
        }
        .encode();
        let answer = match hello {
            Ok(hello) => self.request_encoded(hello).await,
            Err(e) => Err(e.into()),
        };
        match answer {
            Ok(Body::Welcome) => Ok(()),
            Ok(_) => Err(Failure::worker("the worker answered a hello with something else")),
            Err(e) => {
                self.introduced.set(false);
                Err(e)
            }
        }
    }

    /// Store `data` as shard `shard` under the put `token`; returns the worker's signed receipt.
    /// The frame is put together in the buffer that is sent, from the head and the shard's bytes
    /// where they lie (a shard is not framed first). A link not yet introduced is introduced
    /// with this put's token first (a refused token is this put's refusal).
    pub async fn put(&self, token: &[u8], shard: &ShardId, data: &[u8]) -> Result<Vec<u8>, Failure> {
        let head = disktro_core::wire::put_head(token, shard, data.len())?;
        self.introduce(token).await?;
        match self.request_parts(head, data).await? {
            Body::Receipt { receipt } => Ok(receipt),
            _ => Err(Failure::worker("the worker answered a put with something else")),
        }
    }

    /// Fetch a shard; its bytes are checked against its id.
    pub async fn get(&self, token: &[u8], shard: ShardId) -> Result<VerifiedShard, Failure> {
        match self
            .request(Body::Get {
                token: token.to_vec(),
                shard,
            })
            .await?
        {
            Body::ShardData { shard: got, data } if got == shard => shard
                .verify(data)
                .ok_or_else(|| Failure::worker("the worker sent bytes that do not match the shard's hash")),
            Body::ShardData { .. } => Err(Failure::worker("the worker sent another shard than the one asked for")),
            _ => Err(Failure::worker("the worker answered a get with something else")),
        }
    }
}

/// A connection being opened or open, shared by every request that needs it.
type Connecting = Shared<LocalBoxFuture<'static, Result<Rc<WorkerLink>, String>>>;

/// One transfer's links, by worker URL, each opened on first use and on its own (and again when
/// it ended: a restarted worker is not lost for the rest of the transfer). Waiting for
/// every connection before asking any would let one stalled worker (its connect waiting out
/// [`CONNECT_TIMEOUT_MS`]) hold up the rest, whose idle sockets the workers close for presenting
/// no token in time.
#[derive(Debug)]
pub struct Links {
    socket: Socket,
    open: RefCell<HashMap<String, Opened>>,
}

/// One worker's link in a transfer: the connection (being) opened, and when another may be
/// (`disktro_core::fetch::Reconnects`, the CLI's rule too).
#[derive(Debug)]
struct Opened {
    connecting: Connecting,
    reconnects: Reconnects,
    /// Whether the current attempt's failure was counted.
    failure_counted: bool,
}

impl Links {
    pub fn new(socket: Socket) -> Self {
        Self {
            socket,
            open: RefCell::default(),
        }
    }

    /// The link to the worker at `url`, opened again when the one before ended or failed to
    /// open (within `Reconnects`' limits); an error names the worker.
    pub async fn get(&self, url: &str) -> Result<Rc<WorkerLink>, String> {
        let socket = self.socket;
        let connect = || {
            let url = url.to_owned();
            async move { WorkerLink::connect(&url, socket).await.map_err(|e| e.to_string()) }
                .boxed_local()
                .shared()
        };
        let now = std::time::Duration::from_secs_f64((js_sys::Date::now() / 1000.0).max(0.0));
        let connecting = {
            let mut open = self.open.borrow_mut();
            let opened = open.entry(url.to_owned()).or_insert_with(|| {
                let mut reconnects = Reconnects::default();
                reconnects.attempt();
                Opened {
                    connecting: connect(),
                    reconnects,
                    failure_counted: false,
                }
            });
            let usable = match opened.connecting.peek() {
                None => true,
                Some(Ok(link)) => link.closed_reason().is_none(),
                Some(Err(_)) => false,
            };
            if !usable {
                if matches!(opened.connecting.peek(), Some(Err(_))) && !opened.failure_counted {
                    opened.reconnects.failed(now);
                    opened.failure_counted = true;
                }
                if opened.reconnects.may_connect(now) {
                    opened.reconnects.attempt();
                    opened.connecting = connect();
                    opened.failure_counted = false;
                }
            }
            opened.connecting.clone()
        };
        match connecting.await {
            Ok(link) if link.closed_reason().is_some() => Err(format!("the connection to the worker at {url} ended")),
            other => other,
        }
    }
}
