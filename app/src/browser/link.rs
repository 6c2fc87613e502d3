//! One WebSocket to a storage worker, multiplexed: every request carries an id, answers may come
//! back in any order, and many requests are in flight at once. Sending waits while the socket's
//! buffer holds more than [`HIGH_WATER`] bytes, so a slow worker slows its sender instead of
//! filling the tab's memory. The frames are `disktro-core`'s [`wire`](disktro_core::wire).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use disktro_core::wire::{Body, Frame};
use disktro_core::{ShardId, VerifiedShard};
use futures_channel::oneshot;
use futures_util::future::{Either, select};
use wasm_bindgen::prelude::*;

use super::js;

/// Bytes queued in the socket beyond which senders wait.
pub const HIGH_WATER: u32 = 8 * 1024 * 1024;
/// How long a worker may take to answer one request.
const REQUEST_TIMEOUT_MS: i32 = 60_000;
/// How long connecting may take.
const CONNECT_TIMEOUT_MS: i32 = 10_000;

#[derive(Default)]
struct State {
    pending: HashMap<u32, oneshot::Sender<Body>>,
    /// Why the socket closed, once it has.
    closed: Option<String>,
}

type Handler<E> = Closure<dyn FnMut(E)>;

/// A connected worker.
pub struct WorkerLink {
    pub url: String,
    ws: web_sys::WebSocket,
    state: Rc<RefCell<State>>,
    next_id: Cell<u32>,
    _on_message: Handler<web_sys::MessageEvent>,
    _on_close: Handler<web_sys::CloseEvent>,
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
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}

impl WorkerLink {
    pub async fn connect(url: &str) -> Result<Rc<Self>, String> {
        let ws = web_sys::WebSocket::new(url).map_err(|e| js::describe(&e))?;
        ws.set_binary_type(web_sys::BinaryType::Arraybuffer);
        let state: Rc<RefCell<State>> = Rc::default();

        let on_message: Handler<web_sys::MessageEvent> = {
            let state = Rc::clone(&state);
            Closure::new(move |event: web_sys::MessageEvent| {
                let bytes = js::to_vec(&event.data());
                let mut state = state.borrow_mut();
                match Frame::decode(&bytes) {
                    Ok(frame) => {
                        if let Some(waiter) = state.pending.remove(&frame.request_id) {
                            let _ = waiter.send(frame.body);
                        }
                    }
                    Err(e) => {
                        state.closed = Some(format!("undecodable frame from the worker: {e}"));
                        state.pending.clear();
                    }
                }
            })
        };
        let on_close: Handler<web_sys::CloseEvent> = {
            let state = Rc::clone(&state);
            Closure::new(move |event: web_sys::CloseEvent| {
                let mut state = state.borrow_mut();
                let reason = event.reason();
                state.closed.get_or_insert_with(|| {
                    if reason.is_empty() {
                        format!("connection closed ({})", event.code())
                    } else {
                        format!("{reason} ({})", event.code())
                    }
                });
                // Waiters see their sender dropped and report the close reason.
                state.pending.clear();
            })
        };
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));

        // Wait for open, or for the close that follows a refused connection.
        let (opened_tx, opened_rx) = oneshot::channel::<bool>();
        let opened_tx = Rc::new(RefCell::new(Some(opened_tx)));
        let on_open = {
            let tx = Rc::clone(&opened_tx);
            Closure::<dyn FnMut()>::new(move || {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(true);
                }
            })
        };
        let on_error = {
            let tx = Rc::clone(&opened_tx);
            Closure::<dyn FnMut()>::new(move || {
                if let Some(tx) = tx.borrow_mut().take() {
                    let _ = tx.send(false);
                }
            })
        };
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        let outcome = select(opened_rx, Box::pin(js::sleep(CONNECT_TIMEOUT_MS))).await;
        ws.set_onopen(None);
        ws.set_onerror(None);
        match outcome {
            Either::Left((Ok(true), _)) => {}
            Either::Left(_) => {
                let _ = ws.close();
                return Err(format!("cannot connect to the worker at {url}"));
            }
            Either::Right(_) => {
                let _ = ws.close();
                return Err(format!("the worker at {url} did not answer in time"));
            }
        }
        Ok(Rc::new(Self {
            url: url.to_owned(),
            ws,
            state,
            next_id: Cell::new(1),
            _on_message: on_message,
            _on_close: on_close,
        }))
    }

    fn closed_reason(&self) -> Option<String> {
        self.state.borrow().closed.clone()
    }

    /// Send one request and wait for its answer; an error frame becomes the worker's message.
    pub async fn request(&self, body: Body) -> Result<Body, String> {
        let bytes = Frame { request_id: 0, body }.encode().map_err(|e| e.to_string())?;
        self.request_encoded(bytes).await
    }

    /// Send a request encoded earlier with request id 0 (numbered here, in place) and wait for
    /// its answer.
    pub async fn request_encoded(&self, mut bytes: Vec<u8>) -> Result<Body, String> {
        let request_id = self.next_id.get();
        self.next_id.set(request_id.wrapping_add(1));
        disktro_core::wire::number_frame(&mut bytes, request_id).map_err(|e| e.to_string())?;
        while self.ws.buffered_amount() > HIGH_WATER {
            if let Some(reason) = self.closed_reason() {
                return Err(reason);
            }
            js::sleep(2).await;
        }
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.state.borrow_mut();
            if let Some(reason) = &state.closed {
                return Err(reason.clone());
            }
            state.pending.insert(request_id, tx);
        }
        if let Err(e) = self.ws.send_with_u8_array(&bytes) {
            self.state.borrow_mut().pending.remove(&request_id);
            return Err(js::describe(&e));
        }
        drop(bytes);
        match select(rx, Box::pin(js::sleep(REQUEST_TIMEOUT_MS))).await {
            Either::Left((Ok(Body::Error { code, message }), _)) => Err(format!("{message} ({code:?})")),
            Either::Left((Ok(body), _)) => Ok(body),
            Either::Left((Err(_), _)) => Err(self.closed_reason().unwrap_or_else(|| "connection ended".to_owned())),
            Either::Right(_) => {
                self.state.borrow_mut().pending.remove(&request_id);
                Err(format!("no answer within {} s", REQUEST_TIMEOUT_MS / 1000))
            }
        }
    }

    /// Store a shard framed by [`disktro_core::wire::encode_put`]; returns the worker's signed
    /// receipt.
    pub async fn put_encoded(&self, frame: Vec<u8>) -> Result<Vec<u8>, String> {
        match self.request_encoded(frame).await? {
            Body::Receipt { receipt } => Ok(receipt),
            _ => Err("the worker answered a put with something else".to_owned()),
        }
    }

    /// Fetch a shard; its bytes are checked against its id.
    pub async fn get(&self, token: &[u8], shard: ShardId) -> Result<VerifiedShard, String> {
        match self
            .request(Body::Get {
                token: token.to_vec(),
                shard,
            })
            .await?
        {
            Body::ShardData { shard: got, data } if got == shard => shard
                .verify(data)
                .ok_or_else(|| "the worker sent bytes that do not match the shard's hash".to_owned()),
            Body::ShardData { .. } => Err("the worker sent another shard than the one asked for".to_owned()),
            _ => Err("the worker answered a get with something else".to_owned()),
        }
    }
}
