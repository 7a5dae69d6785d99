//! Bounds on the connections not yet known to be a client's (a TLS
//! handshake in progress, a `/metrics` scrape): so many in all, and so many
//! from one address, so that one peer cannot hold every slot and keep the
//! others out.
//!
//! A peer at its bound gets a slot still: its oldest connection is told to
//! give its own up. A flood of idle connections thus keeps only its newest
//! few, and a client behind the same address (a NAT, the host itself)
//! connects as soon as it tries, its handshake being done long before the
//! flood has made enough connections to evict it.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Slots for connections, counted in all and by peer address.
#[derive(Debug, Clone)]
pub struct PeerSlots {
    inner: Arc<Mutex<Counts>>,
    total: usize,
    per_peer: usize,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    next_id: u64,
    /// Each peer's slots, oldest first.
    by_peer: HashMap<IpAddr, VecDeque<(u64, Arc<Eviction>)>>,
}

#[derive(Debug, Default)]
struct Eviction {
    done: AtomicBool,
    notify: Notify,
}

/// Why a connection got no slot: `total` connections are in progress
/// already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full(pub usize);

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} connections already in progress", self.0)
    }
}

impl PeerSlots {
    pub fn new(total: usize, per_peer: usize) -> Self {
        PeerSlots {
            inner: Arc::default(),
            total,
            per_peer: per_peer.max(1),
        }
    }

    /// A slot for a connection from `peer`, given back when dropped. A peer
    /// at its bound gets it at the cost of its oldest slot, which is
    /// evicted ([`Slot::evicted`]).
    pub fn acquire(&self, peer: IpAddr) -> Result<Slot, Full> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let at_bound = c
            .by_peer
            .get(&peer)
            .is_some_and(|s| s.len() >= self.per_peer);
        if at_bound {
            if let Some((_, oldest)) = c.by_peer.get_mut(&peer).and_then(VecDeque::pop_front) {
                oldest.done.store(true, Ordering::Release);
                oldest.notify.notify_one();
                c.total -= 1;
            }
        } else if c.total >= self.total {
            return Err(Full(self.total));
        }
        let id = c.next_id;
        c.next_id += 1;
        let eviction = Arc::new(Eviction::default());
        c.by_peer
            .entry(peer)
            .or_default()
            .push_back((id, Arc::clone(&eviction)));
        c.total += 1;
        Ok(Slot {
            slots: Arc::clone(&self.inner),
            peer,
            id,
            eviction,
        })
    }
}

/// One connection's slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Mutex<Counts>>,
    peer: IpAddr,
    id: u64,
    eviction: Arc<Eviction>,
}

impl Slot {
    /// Resolves once a newer connection of the same peer took this slot:
    /// the connection is to be closed.
    pub async fn evicted(&self) {
        let notified = self.eviction.notify.notified();
        if self.eviction.done.load(Ordering::Acquire) {
            return;
        }
        notified.await;
    }

    pub fn is_evicted(&self) -> bool {
        self.eviction.done.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // An evicted slot was counted out when it was evicted.
        let Some(mine) = c.by_peer.get_mut(&self.peer) else {
            return;
        };
        let Some(at) = mine.iter().position(|(id, _)| *id == self.id) else {
            return;
        };
        mine.remove(at);
        // An address with no connection left is forgotten: the table holds
        // only the peers connected now.
        if mine.is_empty() {
            c.by_peer.remove(&self.peer);
        }
        c.total -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_cannot_take_every_slot_and_its_oldest_gives_way() {
        let slots = PeerSlots::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let a1 = slots.acquire(a).unwrap();
        let a2 = slots.acquire(a).unwrap();
        // At its bound: a's third evicts its first, and holds no more.
        let a3 = slots.acquire(a).unwrap();
        assert!(a1.is_evicted() && !a2.is_evicted() && !a3.is_evicted());
        drop(a1);
        let b1 = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(c).unwrap_err(), Full(3));
        drop(b1);
        let _c1 = slots.acquire(c).unwrap();
        let counts = slots.inner.lock().unwrap();
        assert_eq!(counts.total, 3);
        assert_eq!(counts.by_peer[&a].len(), 2);
    }

    #[tokio::test]
    async fn an_evicted_slot_is_told_even_before_it_waits() {
        let slots = PeerSlots::new(8, 1);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let first = slots.acquire(a).unwrap();
        let _second = slots.acquire(a).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), first.evicted())
            .await
            .expect("the first slot was evicted");
    }
}
