//! The request side of one worker connection, free of I/O: many requests in flight on one
//! socket, each numbered, answers routed back by number in whatever order they come. The CLI's
//! `WorkerClient` (tokio) and the browser's `WorkerLink` (a WebSocket on a JavaScript thread) keep
//! only the socket and the timers and hand every frame they hear to [`Requests::hear`].
//!
//! A waiter (`W`) is whatever the caller wakes with an answer, typically a oneshot sender. When
//! the connection ends, every waiter is dropped (its receiver sees the channel closed and asks
//! [`Requests::closed`] why) and no new request is taken.

use std::collections::HashMap;

use crate::wire::{Body, Frame};

/// Requests in flight on one connection.
#[derive(Debug)]
pub struct Requests<W> {
    next_id: u32,
    pending: HashMap<u32, W>,
    closed: Option<String>,
}

impl<W> Default for Requests<W> {
    fn default() -> Self {
        Self {
            next_id: 1,
            pending: HashMap::new(),
            closed: None,
        }
    }
}

/// Why a request was not begun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotBegun {
    /// The connection has ended, for this reason.
    Closed(String),
    /// The bytes are too short to be a frame.
    NotAFrame(String),
}

/// What a frame heard from the worker was.
#[derive(Debug)]
pub enum Heard<W> {
    /// The answer to a request in flight, with its waiter.
    Answer(W, Body),
    /// An answer nobody waits for any more (its request timed out): dropped.
    Stray,
    /// Not a frame: the connection is closed with this reason (every waiter dropped).
    Broken(String),
}

impl<W> Requests<W> {
    /// Number `frame` (a request encoded with request id 0) in place and wait for its answer
    /// with `waiter`; returns the number, for [`Self::forget`].
    pub fn begin(&mut self, frame: &mut [u8], waiter: W) -> Result<u32, NotBegun> {
        if let Some(reason) = &self.closed {
            return Err(NotBegun::Closed(reason.clone()));
        }
        let id = self.next_id;
        crate::wire::number_frame(frame, id).map_err(|e| NotBegun::NotAFrame(e.to_string()))?;
        // Ids wrap after 4 billion requests; 0 is the unnumbered one.
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.pending.insert(id, waiter);
        Ok(id)
    }

    /// A frame from the worker.
    pub fn hear(&mut self, bytes: &[u8]) -> Heard<W> {
        match Frame::decode(bytes) {
            Ok(frame) => match self.pending.remove(&frame.request_id) {
                Some(waiter) => Heard::Answer(waiter, frame.body),
                None => Heard::Stray,
            },
            Err(e) => {
                let reason = format!("undecodable frame from the worker: {e}");
                self.close(reason.clone());
                Heard::Broken(reason)
            }
        }
    }

    /// Stop waiting for request `id` (it timed out, or could not be sent).
    pub fn forget(&mut self, id: u32) {
        self.pending.remove(&id);
    }

    /// The connection ended with `reason` (the first reason given stays): every waiter is
    /// dropped and no new request is taken.
    pub fn close(&mut self, reason: String) {
        self.closed.get_or_insert(reason);
        self.pending.clear();
    }

    /// Why the connection ended, once it has.
    pub fn closed(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// Requests waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Body;

    fn request() -> Vec<u8> {
        Frame {
            request_id: 0,
            body: Body::Welcome,
        }
        .encode()
        .unwrap()
    }

    fn answer(id: u32, body: Body) -> Vec<u8> {
        Frame { request_id: id, body }.encode().unwrap()
    }

    #[test]
    fn answers_reach_their_own_waiters_in_any_order() {
        // Tried: three requests; answers for the third, the first, an unknown id, the second.
        // Must hold: each frame is numbered distinctly in place; each answer reaches its own
        // waiter; the unknown one is a stray; nothing waits afterwards.
        let mut requests = Requests::default();
        let mut frames = [request(), request(), request()];
        let ids: Vec<u32> = frames
            .iter_mut()
            .enumerate()
            .map(|(i, f)| requests.begin(f, i).unwrap())
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        for (frame, id) in frames.iter().zip(&ids) {
            assert_eq!(Frame::decode(frame).unwrap().request_id, *id);
        }
        for (id, expected) in [(3, 2), (1, 0)] {
            match requests.hear(&answer(id, Body::Welcome)) {
                Heard::Answer(waiter, Body::Welcome) => assert_eq!(waiter, expected),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(requests.hear(&answer(99, Body::Welcome)), Heard::Stray));
        assert_eq!(requests.in_flight(), 1);
        assert!(matches!(requests.hear(&answer(2, Body::Welcome)), Heard::Answer(1, _)));
        assert_eq!(requests.in_flight(), 0);
    }

    #[test]
    fn a_broken_frame_closes_the_connection_for_every_waiter() {
        // Tried: two requests in flight, then bytes that are no frame, then a new request and
        // an answer to a forgotten one.
        // Must hold: the garbage closes the connection with a reason naming it; every waiter is
        // dropped; a new request is refused with that reason; the first reason stays.
        let mut requests = Requests::default();
        let (a, b) = (std::rc::Rc::new(()), std::rc::Rc::new(()));
        requests.begin(&mut request(), std::rc::Rc::clone(&a)).unwrap();
        let forgotten = requests.begin(&mut request(), std::rc::Rc::clone(&b)).unwrap();
        requests.forget(forgotten);
        assert_eq!(std::rc::Rc::strong_count(&b), 1, "a forgotten waiter is dropped");
        assert!(matches!(requests.hear(&answer(forgotten, Body::Welcome)), Heard::Stray));
        let Heard::Broken(reason) = requests.hear(b"not a frame") else {
            panic!("garbage was taken for a frame")
        };
        assert!(reason.starts_with("undecodable frame from the worker"), "{reason}");
        assert_eq!(std::rc::Rc::strong_count(&a), 1, "a waiter outlived the close");
        requests.close("later".to_owned());
        assert_eq!(requests.begin(&mut request(), a), Err(NotBegun::Closed(reason.clone())));
        assert_eq!(requests.closed(), Some(reason.as_str()));
    }
}
