//! Connection slots: how many sockets the worker serves, how many one client address may hold,
//! and who makes room when all are taken.
//!
//! A socket holds a slot from the moment it is accepted. Sockets that have not yet presented a
//! valid token ("strangers") are the cheapest to open, so when every slot is taken the oldest
//! stranger is evicted to make room for the newcomer; a connection that presented a token
//! (an uploading browser, the server's auditor) is never evicted for one that has not. Only when
//! every slot belongs to an introduced connection is a newcomer turned away. One address (an
//! IPv6 /64 counts as one) may hold at most `per_address` slots, so a single host cannot fill the
//! table at all.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio_util::sync::CancellationToken;

/// Why a socket got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoSlot {
    #[error("too many connections from this address")]
    AddressFull,
    #[error("too many connections; try again later")]
    Full,
}

#[derive(Debug)]
pub struct Slots {
    max: usize,
    per_address: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    /// Open slots by age (ids only grow).
    open: BTreeMap<u64, Entry>,
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Entry {
    address: IpAddr,
    introduced: bool,
    evict: CancellationToken,
}

/// One socket's slot, given back on drop.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Slots>,
    id: u64,
    /// Cancelled when the slot was given to a newcomer; the connection then closes.
    pub evicted: CancellationToken,
}

/// The address a client is counted under: itself, or its /64 for IPv6.
fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

impl Slots {
    pub fn new(max: usize, per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            per_address: per_address.max(1),
            inner: Mutex::default(),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for a socket from `address`, evicting the oldest stranger when all are taken.
    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, NoSlot> {
        let address = counted_as(address);
        let mut inner = self.inner();
        if inner.per_address.get(&address).copied().unwrap_or(0) >= self.per_address {
            return Err(NoSlot::AddressFull);
        }
        if inner.open.len() >= self.max {
            let oldest_stranger = inner.open.iter().find(|(_, e)| !e.introduced).map(|(id, _)| *id);
            let Some(id) = oldest_stranger else {
                return Err(NoSlot::Full);
            };
            let evicted = inner.remove(id).expect("found just now");
            evicted.evict.cancel();
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let evict = CancellationToken::new();
        inner.open.insert(
            id,
            Entry {
                address,
                introduced: false,
                evict: evict.clone(),
            },
        );
        *inner.per_address.entry(address).or_insert(0) += 1;
        Ok(Slot {
            slots: Arc::clone(self),
            id,
            evicted: evict,
        })
    }

    /// Sockets holding a slot now.
    pub fn open(&self) -> usize {
        self.inner().open.len()
    }
}

impl Inner {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.open.remove(&id)?;
        if let Some(n) = self.per_address.get_mut(&entry.address) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&entry.address);
            }
        }
        Some(entry)
    }
}

impl Slot {
    /// The connection presented a valid token: it is no longer evicted for newcomers.
    pub fn introduced(&self) {
        if let Some(entry) = self.slots.inner().open.get_mut(&self.id) {
            entry.introduced = true;
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // An evicted slot was removed when it was given away.
        self.slots.inner().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_oldest_stranger_makes_room_and_introduced_ones_stay() {
        let slots = Slots::new(3, 10);
        let a = slots.admit(ip("10.0.0.1")).unwrap();
        let b = slots.admit(ip("10.0.0.2")).unwrap();
        let c = slots.admit(ip("10.0.0.3")).unwrap();
        a.introduced();
        let d = slots.admit(ip("10.0.0.4")).unwrap();
        assert!(!a.evicted.is_cancelled(), "introduced connections are never evicted");
        assert!(b.evicted.is_cancelled(), "the oldest stranger goes");
        assert!(!c.evicted.is_cancelled());
        assert_eq!(slots.open(), 3);
        drop(b);
        assert_eq!(slots.open(), 3, "dropping an evicted slot frees nothing twice");
        c.introduced();
        d.introduced();
        assert_eq!(slots.admit(ip("10.0.0.5")).unwrap_err(), NoSlot::Full);
        drop(a);
        assert!(slots.admit(ip("10.0.0.5")).is_ok());
    }

    #[test]
    fn one_address_holds_at_most_its_share() {
        let slots = Slots::new(100, 2);
        let _a = slots.admit(ip("2001:db8::1")).unwrap();
        let _b = slots.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            slots.admit(ip("2001:db8::ffff")).unwrap_err(),
            NoSlot::AddressFull,
            "one /64"
        );
        assert!(slots.admit(ip("2001:db8:0:1::1")).is_ok(), "another /64");
        let _c = slots.admit(ip("10.0.0.1")).unwrap();
        let _d = slots.admit(ip("::ffff:10.0.0.1")).unwrap();
        assert_eq!(
            slots.admit(ip("10.0.0.1")).unwrap_err(),
            NoSlot::AddressFull,
            "mapped v4 is v4"
        );
    }
}
