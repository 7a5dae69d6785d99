//! Bounds on the connections not yet known to be a client's (a TLS
//! handshake in progress, a `/metrics` scrape): so many in all, and so many
//! from one address, so that one peer cannot hold every slot and keep the
//! others out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
    by_peer: HashMap<IpAddr, usize>,
}

/// Why a connection got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// `total` connections are in progress already.
    All(usize),
    /// `per_peer` of them are this peer's.
    Peer(usize),
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Full::All(n) => write!(f, "{n} connections already in progress"),
            Full::Peer(n) => write!(f, "{n} connections of this address already in progress"),
        }
    }
}

impl PeerSlots {
    pub fn new(total: usize, per_peer: usize) -> Self {
        PeerSlots {
            inner: Arc::default(),
            total,
            per_peer,
        }
    }

    /// A slot for a connection from `peer`, given back when dropped.
    pub fn acquire(&self, peer: IpAddr) -> Result<Slot, Full> {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if c.total >= self.total {
            return Err(Full::All(self.total));
        }
        let mine = c.by_peer.entry(peer).or_default();
        if *mine >= self.per_peer {
            return Err(Full::Peer(self.per_peer));
        }
        *mine += 1;
        c.total += 1;
        Ok(Slot {
            slots: Arc::clone(&self.inner),
            peer,
        })
    }
}

/// One connection's slot.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<Mutex<Counts>>,
    peer: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        c.total -= 1;
        // An address with no connection left is forgotten: the table holds
        // only the peers connected now.
        if let Some(n) = c.by_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                c.by_peer.remove(&self.peer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_peer_cannot_take_every_slot_and_a_slot_comes_back_when_dropped() {
        let slots = PeerSlots::new(3, 2);
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            "10.0.0.3".parse().unwrap(),
        );
        let a1 = slots.acquire(a).unwrap();
        let _a2 = slots.acquire(a).unwrap();
        assert_eq!(slots.acquire(a).unwrap_err(), Full::Peer(2));
        let _b1 = slots.acquire(b).unwrap();
        assert_eq!(slots.acquire(c).unwrap_err(), Full::All(3));
        drop(a1);
        let _c1 = slots.acquire(c).unwrap();
        assert_eq!(slots.acquire(a).unwrap_err(), Full::All(3));
        let counts = slots.inner.lock().unwrap();
        assert_eq!(counts.total, 3);
        assert_eq!(counts.by_peer.len(), 3);
    }
}
