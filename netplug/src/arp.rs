//! Gratuitous ARP, so neighbours replace a MAC they cached for the address;
//! and plain ARP requests, to see that a plug forwards.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::packet::{self, ETH_P_ARP};
pub use crate::packet::{await_frame, await_incoming, send_frame};

/// Opens a packet socket for ARP in the calling thread's network namespace.
pub fn open_packet_socket() -> std::io::Result<OwnedFd> {
    packet::open(ETH_P_ARP)
}

/// The Ethernet frame of a gratuitous ARP request for `ip` from `mac`.
pub fn gratuitous_arp_frame(mac: [u8; 6], ip: Ipv4Addr) -> [u8; 42] {
    request_frame(mac, ip, ip)
}

/// The Ethernet frame of a broadcast ARP request for `target` from
/// `mac`/`ip`.
pub fn request_frame(mac: [u8; 6], ip: Ipv4Addr, target: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&ip.octets());
    // The target hardware address stays zero.
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// Broadcasts a gratuitous ARP on `ifindex` through `socket`.
pub fn announce(socket: &OwnedFd, ifindex: u32, mac: [u8; 6], ip: Ipv4Addr) -> std::io::Result<()> {
    send_frame(socket, ifindex, &gratuitous_arp_frame(mac, ip))
}

/// Broadcasts an ARP request for `target` on `ifindex` through `socket`.
pub fn request(
    socket: &OwnedFd,
    ifindex: u32,
    mac: [u8; 6],
    ip: Ipv4Addr,
    target: Ipv4Addr,
) -> std::io::Result<()> {
    send_frame(socket, ifindex, &request_frame(mac, ip, target))
}

/// Waits up to `timeout` for an ARP reply from `target` on `socket`, and
/// returns the MAC it gave.
pub fn await_reply(
    socket: &OwnedFd,
    target: Ipv4Addr,
    timeout: Duration,
) -> std::io::Result<Option<[u8; 6]>> {
    await_frame(socket, timeout, |frame, _| reply_from(frame, target))
}

/// The sender's MAC when `frame` is an ARP reply from `target`.
fn reply_from(frame: &[u8], target: Ipv4Addr) -> Option<[u8; 6]> {
    if frame.len() < 42 || frame[12..14] != ETH_P_ARP.to_be_bytes() || frame[20..22] != [0, 2] {
        return None;
    }
    if frame[28..32] != target.octets() {
        return None;
    }
    frame[22..28].try_into().ok()
}

/// Waits up to `timeout`, while `target` is probed, for what RFC 5227
/// (2.1.1) counts as a conflict, and returns the other node's MAC: any ARP
/// packet whose sender is `target` (a reply to the probe, or the holder's
/// own request or announcement), or another node's probe for `target`
/// (sender `0.0.0.0`) — two nodes probing for one address at once must
/// both see it taken. Only frames that came in count: the probe's own,
/// which the socket sees go out, are no conflict, while another node's
/// with the same MAC (derived from the same address) is one.
pub fn await_conflict(
    socket: &OwnedFd,
    target: Ipv4Addr,
    timeout: Duration,
) -> std::io::Result<Option<[u8; 6]>> {
    await_incoming(socket, timeout, |frame, _| conflict_in(frame, target))
}

/// The other node's MAC when `frame`, which came in, is a conflict for
/// `target` being probed.
fn conflict_in(frame: &[u8], target: Ipv4Addr) -> Option<[u8; 6]> {
    if frame.len() < 42 || frame[12..14] != ETH_P_ARP.to_be_bytes() {
        return None;
    }
    let sender: [u8; 6] = frame[22..28].try_into().ok()?;
    let op = &frame[20..22];
    let (sender_ip, target_ip) = (&frame[28..32], &frame[38..42]);
    let from_holder = sender_ip == target.octets() && (op == [0, 1] || op == [0, 2]);
    let another_probe =
        op == [0, 1] && sender_ip == Ipv4Addr::UNSPECIFIED.octets() && target_ip == target.octets();
    (from_holder || another_probe).then_some(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_is_a_broadcast_request_for_our_own_address() {
        let f = gratuitous_arp_frame([2, 0xd5, 10, 0, 0, 3], Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[28..32], &[10, 0, 0, 3]);
        assert_eq!(&f[38..42], &[10, 0, 0, 3]);
    }

    #[test]
    fn replies_are_recognised_by_sender() {
        let gw = Ipv4Addr::new(10, 0, 0, 1);
        let mut f = request_frame([2, 0, 0, 0, 0, 1], gw, Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(reply_from(&f, gw), None, "a request is no reply");
        f[20..22].copy_from_slice(&[0, 2]);
        assert_eq!(reply_from(&f, gw), Some([2, 0, 0, 0, 0, 1]));
        assert_eq!(reply_from(&f, Ipv4Addr::new(10, 0, 0, 9)), None);
    }

    #[test]
    fn a_conflict_is_an_answer_the_holders_own_arp_or_another_probe() {
        let (ip, own, other) = (
            Ipv4Addr::new(10, 0, 0, 3),
            [2, 0, 0, 0, 0, 3],
            [2, 0, 0, 0, 0, 9],
        );
        let conflict = |f: &[u8]| conflict_in(f, ip);
        // The holder answers the probe.
        let mut reply = request_frame(other, ip, Ipv4Addr::UNSPECIFIED);
        reply[20..22].copy_from_slice(&[0, 2]);
        assert_eq!(conflict(&reply), Some(other));
        // The holder's own announcement or request.
        assert_eq!(conflict(&gratuitous_arp_frame(other, ip)), Some(other));
        // Another node probing for the same address at once.
        let probe = request_frame(other, Ipv4Addr::UNSPECIFIED, ip);
        assert_eq!(conflict(&probe), Some(other));
        // A probe that came in with our own MAC is another node's, given
        // the same address (and so the same derived MAC): our own never
        // comes in (see `await_incoming`).
        assert_eq!(
            conflict(&request_frame(own, Ipv4Addr::UNSPECIFIED, ip)),
            Some(own)
        );
        // Another node asking who has the address is no claim to it.
        let asking = request_frame(other, Ipv4Addr::new(10, 0, 0, 1), ip);
        assert_eq!(conflict(&asking), None);
        // A probe for another address is none either.
        let elsewhere = request_frame(other, Ipv4Addr::UNSPECIFIED, Ipv4Addr::new(10, 0, 0, 4));
        assert_eq!(conflict(&elsewhere), None);
    }
}
