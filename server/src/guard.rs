//! Ongoing address conflict detection (RFC 5227 §2.4): after a container
//! is plugged, an ARP packet from another MAC whose sender is its address
//! means another node claims it. The guard watches the ARP the host's own
//! bridge interfaces receive (one packet socket for the whole host),
//! against the addresses this server plugged; a claim is reported at once
//! (the log, a metric, and `status`), and the address is defended with
//! one gratuitous ARP from the container's namespace, at most once per
//! [`DEFEND_INTERVAL`]. A fixed address is never given up (the RFC's
//! option (c), for a host configured to keep its address): the operator
//! decides which of the two goes.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use netplug::{Mac, NetnsTarget};

use crate::metrics::metrics;
use crate::spec::IFACE;

/// RFC 5227's DEFEND_INTERVAL: one defence per address at most this often.
pub const DEFEND_INTERVAL: Duration = Duration::from_secs(10);

/// How long a conflict stays shown after the last claim seen: long enough
/// for an operator to look, short enough that a settled one goes away.
pub const CONFLICT_KEPT: Duration = Duration::from_secs(600);

/// How often the watching thread wakes without a frame, to let conflicts
/// age out.
const IDLE_WAKE: Duration = Duration::from_secs(1);

/// How often a probe with a container's own MAC is answered (see
/// `AddressGuard::probed`): well within a probe's window, rarely enough
/// that a flood of probes is no flood of announcements.
const PROBE_ANSWER_INTERVAL: Duration = Duration::from_secs(1);

/// One frame is seen once on each interface of the host it crosses (with
/// OVS's userspace datapath, on the claimant's port and again on the
/// bridge's interface): the same bytes again within this are the same
/// packet.
const SAME_FRAME: Duration = Duration::from_millis(50);

/// The address of a plugged container, as its plug made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Held {
    address: Ipv4Addr,
    mac: Mac,
    /// The process whose network namespace holds eth0 (the sandbox).
    pid: u32,
}

/// Another node's claim to a plugged container's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub address: Ipv4Addr,
    /// The claimant's MAC (the ARP sender's).
    pub mac: Mac,
    /// When the first claim was seen.
    pub since: SystemTime,
    /// When the last one was.
    last: Instant,
    /// Claims seen.
    pub seen: u64,
    /// When the address was last defended.
    defended: Option<Instant>,
}

impl Conflict {
    /// What `status` says of it.
    pub fn describe(&self) -> String {
        let ago = self.last.elapsed().as_secs();
        format!(
            "{} claimed by {} ({} ARP packet{}, last {ago}s ago)",
            self.address,
            self.mac,
            self.seen,
            if self.seen == 1 { "" } else { "s" }
        )
    }
}

/// A defence due: one gratuitous ARP from `held`'s namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Defence {
    owner: String,
    held: Held,
}

#[derive(Debug, Default)]
struct Tables {
    /// By owner (application container name).
    held: HashMap<String, Held>,
    /// By owner.
    conflicts: HashMap<String, Conflict>,
    /// The last claim's ARP part, and when it was seen (see [`SAME_FRAME`]).
    last_claim: Option<([u8; 28], Instant)>,
    /// By owner: when a probe with its own MAC was last answered.
    probe_answered: HashMap<String, Instant>,
}

/// The addresses this server plugged and the conflicts seen on them.
#[derive(Debug, Default)]
pub struct AddressGuard {
    tables: Mutex<Tables>,
}

/// The sender of an ARP frame: `(op, MAC, IPv4 address)`.
fn arp_sender(frame: &[u8]) -> Option<(u16, Mac, Ipv4Addr)> {
    // Ethernet II, ARP for Ethernet and IPv4.
    if frame.len() < 42
        || frame[12..14] != [0x08, 0x06]
        || frame[14..16] != [0, 1]
        || frame[16..18] != [0x08, 0x00]
    {
        return None;
    }
    let op = u16::from_be_bytes([frame[20], frame[21]]);
    let mac: [u8; 6] = frame[22..28].try_into().ok()?;
    let ip: [u8; 4] = frame[28..32].try_into().ok()?;
    Some((op, Mac::from(mac), Ipv4Addr::from(ip)))
}

impl AddressGuard {
    fn tables(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `owner`'s eth0 is plugged with `address` and `mac` in the netns of
    /// `pid`. A plug made again starts with no conflict: the plug probed
    /// for the address, or it is the container's own one coming back.
    pub fn plugged(&self, owner: &str, address: Ipv4Addr, mac: Mac, pid: u32) {
        let mut t = self.tables();
        let held = Held { address, mac, pid };
        if t.held.insert(owner.to_string(), held) != Some(held) {
            t.conflicts.remove(owner);
        }
        metrics().conflicts_now(t.conflicts.len());
    }

    /// `owner`'s eth0 is plugged no more.
    pub fn unplugged(&self, owner: &str) {
        let mut t = self.tables();
        t.held.remove(owner);
        t.probe_answered.remove(owner);
        t.conflicts.remove(owner);
        metrics().conflicts_now(t.conflicts.len());
    }

    /// The conflict on `owner`'s address, if one is shown.
    pub fn conflict_of(&self, owner: &str) -> Option<Conflict> {
        self.tables().conflicts.get(owner).cloned()
    }

    /// Records what the ARP `frame`, which came in, claims; the defence
    /// due, if any.
    fn observe(&self, frame: &[u8], now: Instant) -> Option<Defence> {
        let (op, mac, address) = arp_sender(frame)?;
        if address.is_unspecified() {
            return self.probed(op, mac, frame, now);
        }
        let mut t = self.tables();
        let (owner, held) = t
            .held
            .iter()
            .find(|(_, h)| h.address == address && h.mac != mac)
            .map(|(o, h)| (o.clone(), *h))?;
        let arp: [u8; 28] = frame[14..42].try_into().ok()?;
        if t.last_claim
            .is_some_and(|(last, at)| last == arp && now.duration_since(at) < SAME_FRAME)
        {
            return None;
        }
        t.last_claim = Some((arp, now));
        let conflict = t
            .conflicts
            .entry(owner.clone())
            .and_modify(|c| {
                c.mac = mac;
                c.last = now;
                c.seen += 1;
            })
            .or_insert_with(|| Conflict {
                address,
                mac,
                since: SystemTime::now(),
                last: now,
                seen: 1,
                defended: None,
            });
        let due = conflict
            .defended
            .is_none_or(|at| now.duration_since(at) >= DEFEND_INTERVAL);
        let first = conflict.seen == 1;
        if due {
            conflict.defended = Some(now);
        }
        let seen = conflict.seen;
        let count = t.conflicts.len();
        drop(t);
        metrics().address_conflict(&address.to_string());
        metrics().conflicts_now(count);
        if first || due {
            tracing::warn!(
                container = %owner,
                %address,
                claimant = %mac,
                own_mac = %held.mac,
                seen,
                defending = due,
                "address conflict: {address} of {owner} claimed by {mac}"
            );
        }
        due.then_some(Defence { owner, held })
    }

    /// A probe (sender `0.0.0.0`) claims nothing yet, and the container's
    /// kernel answers one for its address; but not one with the
    /// container's own MAC (another file's container given the same
    /// address derives the same MAC): the answer goes back to that MAC,
    /// which the bridge knows on the container's own port, and never
    /// reaches the prober. So the container announces its address then,
    /// a broadcast the prober does see, at most once per
    /// [`PROBE_ANSWER_INTERVAL`].
    fn probed(&self, op: u16, mac: Mac, frame: &[u8], now: Instant) -> Option<Defence> {
        let target = Ipv4Addr::from(<[u8; 4]>::try_from(&frame[38..42]).ok()?);
        if op != 1 {
            return None;
        }
        let mut t = self.tables();
        let (owner, held) = t
            .held
            .iter()
            .find(|(_, h)| h.address == target && h.mac == mac)
            .map(|(o, h)| (o.clone(), *h))?;
        if t.probe_answered
            .get(&owner)
            .is_some_and(|at| now.duration_since(*at) < PROBE_ANSWER_INTERVAL)
        {
            return None;
        }
        t.probe_answered.insert(owner.clone(), now);
        drop(t);
        tracing::warn!(
            container = %owner,
            address = %target,
            "another node probes for {target} of {owner} with the same MAC {mac}: announcing it"
        );
        Some(Defence { owner, held })
    }

    /// Drops the conflicts whose last claim is older than [`CONFLICT_KEPT`].
    fn expire(&self, now: Instant) {
        let mut t = self.tables();
        let before = t.conflicts.len();
        t.conflicts
            .retain(|_, c| now.duration_since(c.last) < CONFLICT_KEPT);
        if t.conflicts.len() != before {
            metrics().conflicts_now(t.conflicts.len());
        }
    }

    /// Watches the ARP this host's interfaces receive, on a thread of its
    /// own, from now on; defences run on `runtime`. Only frames that reach
    /// the host's stack are seen: those a bridge floods to its own
    /// interface (broadcast requests and announcements), so the bridge's
    /// interface must be up.
    pub fn watch(self: Arc<Self>, runtime: tokio::runtime::Handle) -> std::io::Result<()> {
        let socket = netplug::arp::open_packet_socket()?;
        std::thread::Builder::new()
            .name("address-guard".into())
            .spawn(move || {
                loop {
                    let picked = netplug::arp::await_incoming(&socket, IDLE_WAKE, |frame, _| {
                        self.observe(frame, Instant::now())
                    });
                    match picked {
                        Ok(Some(defence)) => {
                            runtime.spawn(defend(defence));
                        }
                        Ok(None) => self.expire(Instant::now()),
                        Err(e) => {
                            tracing::warn!("address guard: cannot read ARP: {e}");
                            std::thread::sleep(IDLE_WAKE);
                        }
                    }
                }
            })?;
        Ok(())
    }
}

/// Sends the defence's one gratuitous ARP.
async fn defend(defence: Defence) {
    let Defence { owner, held } = defence;
    match netplug::defend(&NetnsTarget::Pid(held.pid), IFACE, held.mac, held.address).await {
        Ok(()) => {
            metrics().address_defended();
            crate::journal::journal().record(
                &owner,
                "address defended",
                format!("gratuitous ARP for {} from {}", held.address, held.mac),
            );
        }
        Err(e) => tracing::warn!(container = %owner, "cannot defend {}: {e}", held.address),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn garp(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
        netplug::arp::gratuitous_arp_frame(mac, ip)
    }

    #[test]
    fn another_macs_claim_is_a_conflict_defended_once_per_interval() {
        let guard = AddressGuard::default();
        let ip = Ipv4Addr::new(10, 0, 0, 5);
        let own = Mac::from_ip(ip);
        let other = [2, 0, 0, 0, 0, 9];
        guard.plugged("web", ip, own, 42);
        let t0 = Instant::now();
        // The container's own announcement is none.
        assert_eq!(guard.observe(&garp(own.octets(), ip), t0), None);
        assert_eq!(guard.conflict_of("web"), None);
        // Another MAC's: a conflict, defended.
        let d = guard.observe(&garp(other, ip), t0).expect("defended");
        assert_eq!(d.owner, "web");
        let c = guard.conflict_of("web").expect("conflict");
        assert_eq!((c.address, c.mac, c.seen), (ip, Mac::from(other), 1));
        assert!(
            c.describe()
                .starts_with("10.0.0.5 claimed by 02:00:00:00:00:09")
        );
        // The same frame seen again on another interface: not counted.
        let echo = t0 + Duration::from_millis(1);
        assert_eq!(guard.observe(&garp(other, ip), echo), None);
        assert_eq!(guard.conflict_of("web").unwrap().seen, 1);
        // Again within the interval: counted, not defended.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(guard.observe(&garp(other, ip), t1), None);
        assert_eq!(guard.conflict_of("web").unwrap().seen, 2);
        // After it: defended again.
        let t2 = t0 + DEFEND_INTERVAL;
        assert!(guard.observe(&garp(other, ip), t2).is_some());
        // A probe (sender 0.0.0.0) and another address claim nothing.
        let probe = netplug::arp::request_frame(other, Ipv4Addr::UNSPECIFIED, ip);
        assert_eq!(guard.observe(&probe, t2), None);
        // A probe with the container's own MAC is answered with an
        // announcement, once a second at most; no conflict is counted.
        let twin = netplug::arp::request_frame(own.octets(), Ipv4Addr::UNSPECIFIED, ip);
        assert!(guard.observe(&twin, t2).is_some());
        assert_eq!(guard.observe(&twin, t2 + Duration::from_millis(10)), None);
        assert!(guard.observe(&twin, t2 + PROBE_ANSWER_INTERVAL).is_some());
        let elsewhere = garp(other, Ipv4Addr::new(10, 0, 0, 6));
        assert_eq!(guard.observe(&elsewhere, t2), None);
        assert_eq!(guard.conflict_of("web").unwrap().seen, 3);
        // Aged out after the last claim.
        guard.expire(t2 + CONFLICT_KEPT);
        assert_eq!(guard.conflict_of("web"), None);
    }

    #[test]
    fn a_new_plug_or_an_unplug_clears_the_conflict() {
        let guard = AddressGuard::default();
        let ip = Ipv4Addr::new(10, 0, 0, 7);
        guard.plugged("db", ip, Mac::from_ip(ip), 42);
        guard.observe(&garp([2, 0, 0, 0, 0, 9], ip), Instant::now());
        assert!(guard.conflict_of("db").is_some());
        // The same plug again (a reconcile) keeps it.
        guard.plugged("db", ip, Mac::from_ip(ip), 42);
        assert!(guard.conflict_of("db").is_some());
        guard.plugged("db", ip, Mac::from_ip(ip), 43);
        assert_eq!(guard.conflict_of("db"), None);
        guard.observe(&garp([2, 0, 0, 0, 0, 9], ip), Instant::now());
        guard.unplugged("db");
        assert_eq!(guard.conflict_of("db"), None);
        // Unplugged: no longer watched.
        assert_eq!(
            guard.observe(&garp([2, 0, 0, 0, 0, 9], ip), Instant::now()),
            None
        );
    }
}
