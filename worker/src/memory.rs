//! The memory budget: how many bytes of shards, requests and responses the worker holds at once,
//! and who may hold them.
//!
//! The budget (`--memory-budget`) is split in two pools so that clients cannot starve the
//! worker's own duties:
//!
//! - **background** (an eighth of the budget): audit proofs and the scrubber. A client that
//!   stops reading can never make the server's audits wait, so a stalled network never gets an
//!   honest worker's reputation docked.
//! - **clients** (the rest), drawn through a [`ConnectionMemory`] per connection, which may hold
//!   at most its **share** (an eighth of the clients' pool, at least 1 MiB) however many requests
//!   it pipelines. A connection that stops reading its answers pins its share and no more; its
//!   further requests wait on its own share, not in the pool's queue, so other connections
//!   (FIFO among themselves) keep being served. A request that waits longer than the memory
//!   wait is refused with `Busy` instead of waiting without end.
//!
//! Bytes a connection's socket has read but not yet handed on as a whole message are charged to
//! the clients' pool too, by [`crate::gate`]; the message then carries that charge with it.

use std::sync::Arc;
use std::time::Duration;

use disktro_core::wire::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::admission::Refused;

/// The smallest share of one connection.
const MIN_CONNECTION_SHARE: usize = 1 << 20;

/// The worker-wide pools.
#[derive(Debug)]
pub struct Memory {
    clients: Arc<Semaphore>,
    background: Arc<Semaphore>,
    client_capacity: usize,
    background_capacity: usize,
    wait: Duration,
}

/// Bytes held until dropped.
#[derive(Debug)]
pub struct Reservation {
    _share: Option<OwnedSemaphorePermit>,
    _pool: Option<OwnedSemaphorePermit>,
}

impl Memory {
    pub fn new(budget: usize, wait: Duration) -> Self {
        let background_capacity = (budget / 8).max(1);
        let client_capacity = budget.saturating_sub(background_capacity).max(1);
        Self {
            clients: Arc::new(Semaphore::new(client_capacity)),
            background: Arc::new(Semaphore::new(background_capacity)),
            client_capacity,
            background_capacity,
            wait,
        }
    }

    /// The clients' pool, which [`crate::gate`] charges for bytes in flight on a socket.
    pub fn client_pool(&self) -> Arc<Semaphore> {
        Arc::clone(&self.clients)
    }

    /// The share of the clients' pool one connection may hold at once.
    pub fn connection_share(&self) -> usize {
        (self.client_capacity / 8)
            .max(MIN_CONNECTION_SHARE)
            .min(self.client_capacity)
    }

    /// Reserve `bytes` for the worker's own work (audits, scrubbing), waiting while the
    /// background pool is spent. More than the pool takes all of it, so it runs alone.
    pub async fn reserve_background(&self, bytes: usize) -> Reservation {
        let pool = acquire(&self.background, bytes.clamp(1, self.background_capacity)).await;
        Reservation {
            _share: None,
            _pool: Some(pool),
        }
    }

    /// Each pool: (name, capacity, bytes not reserved now).
    pub fn pools(&self) -> [(&'static str, usize, usize); 2] {
        [
            ("clients", self.client_capacity, self.clients.available_permits()),
            (
                "background",
                self.background_capacity,
                self.background.available_permits(),
            ),
        ]
    }

    /// Clients' pool bytes not reserved right now.
    pub fn clients_available(&self) -> usize {
        self.clients.available_permits()
    }

    /// A new connection's view of the clients' pool.
    pub fn connection(self: &Arc<Self>) -> ConnectionMemory {
        ConnectionMemory {
            share: Arc::new(Semaphore::new(self.connection_share())),
            memory: Arc::clone(self),
        }
    }
}

async fn acquire(semaphore: &Arc<Semaphore>, n: usize) -> OwnedSemaphorePermit {
    Arc::clone(semaphore)
        .acquire_many_owned(u32::try_from(n).unwrap_or(u32::MAX))
        .await
        .expect("memory semaphores are never closed")
}

/// One connection's part of the clients' pool.
#[derive(Debug)]
pub struct ConnectionMemory {
    share: Arc<Semaphore>,
    memory: Arc<Memory>,
}

impl ConnectionMemory {
    /// Reserve `bytes` of shard data (a put's, or a get's answer), of which `charged` are
    /// already held from the pool (what the gate charged while the message arrived). Waits first
    /// on this connection's share, then on the pool, for at most the memory wait; then `Busy`.
    pub async fn reserve(&self, bytes: usize, charged: Option<OwnedSemaphorePermit>) -> Result<Reservation, Refused> {
        self.reserve_within(bytes, charged, true).await
    }

    /// Hold a request without shard data (at most the introduction limit) in the pool only: its
    /// answer may need the connection's whole share, which the request must not be holding.
    pub async fn hold_request(
        &self,
        bytes: usize,
        charged: Option<OwnedSemaphorePermit>,
    ) -> Result<Reservation, Refused> {
        self.reserve_within(bytes, charged, false).await
    }

    async fn reserve_within(
        &self,
        bytes: usize,
        charged: Option<OwnedSemaphorePermit>,
        from_share: bool,
    ) -> Result<Reservation, Refused> {
        let share_n = bytes.clamp(1, self.memory.connection_share());
        let already = charged.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let pool_n = bytes.min(self.memory.client_capacity).saturating_sub(already);
        let reserve = async {
            let share = if from_share {
                Some(acquire(&self.share, share_n).await)
            } else {
                None
            };
            let mut pool = charged;
            if pool_n > 0 {
                let more = acquire(&self.memory.clients, pool_n).await;
                match pool.as_mut() {
                    Some(p) => p.merge(more),
                    None => pool = Some(more),
                }
            }
            Reservation {
                _share: share,
                _pool: pool,
            }
        };
        tokio::time::timeout(self.memory.wait, reserve).await.map_err(|_| {
            Refused::new(
                ErrorCode::Busy,
                format!(
                    "worker memory is spent (waited {:?}); read the answers already sent, or retry later",
                    self.memory.wait
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_holding_its_share_waits_alone() {
        let memory = Arc::new(Memory::new(16 << 20, Duration::from_millis(200)));
        let share = memory.connection_share();
        assert_eq!(share, 1_835_008, "an eighth of the clients' 14 MiB");
        let stalled = memory.connection();
        let held = stalled.reserve(share, None).await.unwrap();
        // The stalled connection's next request waits on its own share and is refused in time…
        let refused = stalled.reserve(1, None).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Busy);
        // …while another connection is served at once.
        let other = memory.connection();
        let served = tokio::time::timeout(Duration::from_millis(50), other.reserve(share, None)).await;
        assert!(served.is_ok_and(|r| r.is_ok()));
        drop(held);
        assert!(stalled.reserve(1, None).await.is_ok());
    }

    #[tokio::test]
    async fn charged_bytes_are_not_counted_twice_and_background_is_apart() {
        let memory = Arc::new(Memory::new(16 << 20, Duration::from_millis(200)));
        let total = memory.clients_available();
        let charged = memory.client_pool().try_acquire_many_owned(1000).unwrap();
        let conn = memory.connection();
        let r = conn.reserve(1500, Some(charged)).await.unwrap();
        assert_eq!(memory.clients_available(), total - 1500);
        drop(r);
        assert_eq!(memory.clients_available(), total);
        // Spending every client byte leaves the background pool whole.
        let _all = memory
            .client_pool()
            .try_acquire_many_owned(u32::try_from(total).unwrap())
            .unwrap();
        let audit = tokio::time::timeout(Duration::from_millis(50), memory.reserve_background(1 << 20)).await;
        assert!(audit.is_ok());
    }
}
