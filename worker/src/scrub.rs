//! The scrubber: re-hashes every stored shard at a bounded rate, so bit rot is found before a
//! download or an audit needs the shard. A shard that no longer matches its id is quarantined by
//! the store and queued for the next heartbeat, exactly as a failed read would be.
//!
//! A pass starts one interval after the previous one started (the first one a minute after
//! start-up, or sooner with a shorter interval). Reads are paced to `rate` bytes per second and
//! reserve their memory from the worker's budget like any request. Progress is kept in
//! [`ScrubStatus`] and sent with every heartbeat.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use disktro_core::api::node::ScrubReport;
use tokio_util::sync::CancellationToken;

use disktro_net::unix_now;

use crate::node::Node;
use crate::store::StoreError;

#[derive(Debug, Default)]
pub struct ScrubStatus(Mutex<ScrubReport>);

impl ScrubStatus {
    pub fn snapshot(&self) -> ScrubReport {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn update(&self, f: impl FnOnce(&mut ScrubReport)) {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Run passes until `shutdown`.
pub async fn run(node: Arc<Node>, rate: u64, interval: Duration, shutdown: CancellationToken) {
    let mut next = Instant::now() + interval.min(Duration::from_secs(60));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next.into()) => {}
        }
        next = Instant::now() + interval;
        if !pass(&node, rate, &shutdown).await {
            return;
        }
    }
}

/// One pass over everything stored; `false` if interrupted by shutdown.
async fn pass(node: &Arc<Node>, rate: u64, shutdown: &CancellationToken) -> bool {
    let n = Arc::clone(node);
    let ids = match tokio::task::spawn_blocking(move || n.store.ids()).await {
        Ok(Ok(ids)) => ids,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "scrubber could not list the store");
            return true;
        }
        Err(_) => return true,
    };
    node.scrub.update(|s| {
        s.running = true;
        s.checked = 0;
        s.total = ids.len() as u64;
        s.last_pass_started = Some(unix_now());
    });
    tracing::info!(shards = ids.len(), "scrub pass started");
    let started = Instant::now();
    let mut bytes_read: u64 = 0;
    let mut corrupt = 0u64;
    for id in ids {
        if shutdown.is_cancelled() {
            node.scrub.update(|s| s.running = false);
            return false;
        }
        let n = Arc::clone(node);
        let len = tokio::task::spawn_blocking(move || n.store.stored_len(&id))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or(0);
        let memory = node
            .memory
            .reserve_background(usize::try_from(len).unwrap_or(usize::MAX))
            .await;
        let n = Arc::clone(node);
        let outcome = tokio::task::spawn_blocking(move || n.store.get(&id).map(|b| b.len() as u64)).await;
        drop(memory);
        match outcome {
            Ok(Ok(read)) => bytes_read += read,
            Ok(Err(StoreError::Corrupt)) => {
                corrupt += 1;
                bytes_read += len;
                node.report_corrupt(id);
                node.scrub.update(|s| s.corrupt_found += 1);
            }
            // Deleted since the listing.
            Ok(Err(StoreError::NotFound)) => {}
            Ok(Err(e)) => tracing::error!(shard = %id, error = %e, "scrubber could not read a shard"),
            Err(_) => {}
        }
        node.scrub.update(|s| s.checked += 1);
        // Pace to `rate`: sleep until the bytes read so far are due.
        let due = Duration::from_secs_f64(bytes_read as f64 / rate as f64);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            tokio::select! {
                () = shutdown.cancelled() => {
                    node.scrub.update(|s| s.running = false);
                    return false;
                }
                () = tokio::time::sleep(ahead) => {}
            }
        }
    }
    node.scrub.update(|s| {
        s.running = false;
        s.passes += 1;
        s.last_pass_finished = Some(unix_now());
    });
    tracing::info!(
        corrupt,
        seconds = started.elapsed().as_secs_f64(),
        "scrub pass finished"
    );
    true
}
