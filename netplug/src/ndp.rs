//! IPv6 neighbour discovery frames: the unsolicited neighbour
//! advertisement that is IPv6's gratuitous ARP (RFC 4861 §7.2.6), so
//! neighbours replace a MAC they cached for a re-plugged address; and
//! Duplicate Address Detection's probe (RFC 4862 §5.4), a neighbour
//! solicitation from `::`, with whoever answers it.

use std::net::Ipv6Addr;
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::packet;

const ETH_P_IPV6: u16 = 0x86dd;
const IPPROTO_ICMPV6: u8 = 58;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
/// The Override flag: replace the cached link-layer address.
const FLAG_OVERRIDE: u8 = 0x20;
/// Option 2, target link-layer address, 8 bytes long (length 1 × 8).
const OPT_TARGET_LLADDR: u8 = 2;
/// All-nodes multicast, ff02::1, and its Ethernet address.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];

/// Ethernet + IPv6 + the advertisement with its one option.
pub const NA_FRAME_LEN: usize = 14 + 40 + 24 + 8;

/// The frame of an unsolicited neighbour advertisement of `ip` at `mac`,
/// to all nodes, hop limit 255 (receivers drop any other).
pub fn unsolicited_na_frame(mac: [u8; 6], ip: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    na_frame(mac, ip, ip)
}

/// The same advertisement of `target`, sent from `source`.
pub fn na_frame(mac: [u8; 6], source: Ipv6Addr, target: Ipv6Addr) -> [u8; NA_FRAME_LEN] {
    let mut f = [0u8; NA_FRAME_LEN];
    f[0..6].copy_from_slice(&ALL_NODES_MAC);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip6 = &mut f[14..54];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&32u16.to_be_bytes());
    ip6[6] = IPPROTO_ICMPV6;
    ip6[7] = 255;
    ip6[8..24].copy_from_slice(&source.octets());
    ip6[24..40].copy_from_slice(&ALL_NODES.octets());
    let icmp = &mut f[54..86];
    icmp[0] = NEIGHBOR_ADVERTISEMENT;
    icmp[4] = FLAG_OVERRIDE;
    icmp[8..24].copy_from_slice(&target.octets());
    icmp[24] = OPT_TARGET_LLADDR;
    icmp[25] = 1;
    icmp[26..32].copy_from_slice(&mac);
    let sum = icmpv6_checksum(source, ALL_NODES, &f[54..86]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

const NEIGHBOR_SOLICITATION: u8 = 135;
/// Ethernet + IPv6 + a solicitation without options (none from `::`).
pub const NS_FRAME_LEN: usize = 14 + 40 + 24;

/// Opens a packet socket for IPv6 frames in the calling thread's network
/// namespace.
pub fn open_packet_socket() -> std::io::Result<OwnedFd> {
    packet::open(ETH_P_IPV6)
}

/// ff02::1:ffXX:XXXX, the solicited-node group of `ip`, and its MAC.
fn solicited_node(ip: Ipv6Addr) -> (Ipv6Addr, [u8; 6]) {
    let o = ip.octets();
    let group = Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    );
    (group, [0x33, 0x33, 0xff, o[13], o[14], o[15]])
}

/// The frame of a DAD probe for `target`: a neighbour solicitation from
/// `::` to the target's solicited-node group.
pub fn dad_probe_frame(mac: [u8; 6], target: Ipv6Addr) -> [u8; NS_FRAME_LEN] {
    let (group, group_mac) = solicited_node(target);
    let mut f = [0u8; NS_FRAME_LEN];
    f[0..6].copy_from_slice(&group_mac);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip6 = &mut f[14..54];
    ip6[0] = 0x60;
    ip6[4..6].copy_from_slice(&24u16.to_be_bytes());
    ip6[6] = IPPROTO_ICMPV6;
    ip6[7] = 255;
    // The source stays ::.
    ip6[24..40].copy_from_slice(&group.octets());
    let icmp = &mut f[54..78];
    icmp[0] = NEIGHBOR_SOLICITATION;
    icmp[8..24].copy_from_slice(&target.octets());
    let sum = icmpv6_checksum(Ipv6Addr::UNSPECIFIED, group, &f[54..78]);
    f[56..58].copy_from_slice(&sum.to_be_bytes());
    f
}

/// Who else claims `target` in `frame`: the MAC of a neighbour
/// advertisement for it (its target link-layer option, else the frame's
/// source), or of another node's DAD probe for it. `frame` came in (see
/// [`packet::await_incoming`]): one with our own MAC is another node's.
pub fn claimant(frame: &[u8], target: Ipv6Addr) -> Option<[u8; 6]> {
    if frame.len() < NS_FRAME_LEN
        || frame[12..14] != ETH_P_IPV6.to_be_bytes()
        || frame[20] != IPPROTO_ICMPV6
        || frame[62..78] != target.octets()
    {
        return None;
    }
    let source: [u8; 6] = frame[6..12].try_into().ok()?;
    match frame[54] {
        NEIGHBOR_ADVERTISEMENT => {
            let lladdr =
                (frame.len() >= NA_FRAME_LEN && frame[78] == OPT_TARGET_LLADDR && frame[79] == 1)
                    .then(|| frame[80..86].try_into().ok())
                    .flatten();
            Some(lladdr.unwrap_or(source))
        }
        NEIGHBOR_SOLICITATION if frame[22..38] == [0u8; 16] => Some(source),
        _ => None,
    }
}

/// Sends a DAD probe for `target` on `ifindex`, twice in `window` (one can
/// be lost while a port settles), and returns the MAC of whoever claims
/// the address within it.
pub fn probe(
    socket: &OwnedFd,
    ifindex: u32,
    mac: [u8; 6],
    target: Ipv6Addr,
    window: Duration,
) -> std::io::Result<Option<[u8; 6]>> {
    let frame = dad_probe_frame(mac, target);
    let half = window / 2;
    packet::send_frame(socket, ifindex, &frame)?;
    if let Some(m) = await_claim(socket, target, half)? {
        return Ok(Some(m));
    }
    packet::send_frame(socket, ifindex, &frame)?;
    await_claim(socket, target, window - half)
}

fn await_claim(
    socket: &OwnedFd,
    target: Ipv6Addr,
    timeout: Duration,
) -> std::io::Result<Option<[u8; 6]>> {
    packet::await_incoming(socket, timeout, |frame, _| claimant(frame, target))
}

/// The ICMPv6 checksum over the pseudo-header and `message` (whose own
/// checksum field is zero).
fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |b| u32::from(*b));
            sum += hi | lo;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    let len = u32::try_from(message.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(message);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The sum is folded into 16 bits just above.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_advertisement_is_well_formed_and_its_checksum_verifies() {
        let mac = [0x02, 0xd5, 0x0a, 0, 0, 5];
        let ip: Ipv6Addr = "fd00:10::5".parse().unwrap();
        let f = unsolicited_na_frame(mac, ip);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        assert_eq!((f[20], f[21]), (58, 255));
        assert_eq!(&f[22..38], &ip.octets());
        assert_eq!(f[54], 136);
        // Override, not solicited, not a router.
        assert_eq!(f[58], 0x20);
        assert_eq!(&f[62..78], &ip.octets());
        assert_eq!(&f[78..80], &[2, 1]);
        assert_eq!(&f[80..86], &mac);
        // Summed with its checksum in place, the message gives zero (0xffff
        // complemented), as a receiver checks it.
        let mut with = f;
        let got = u16::from_be_bytes([f[56], f[57]]);
        with[56] = 0;
        with[57] = 0;
        assert_eq!(icmpv6_checksum(ip, ALL_NODES, &with[54..86]), got);
        assert_eq!(icmpv6_checksum(ip, ALL_NODES, &f[54..86]), 0);
    }

    #[test]
    fn a_dad_probe_goes_to_the_solicited_node_group_and_an_answer_is_recognised() {
        let mac = [0x02, 0xd5, 0x0a, 0, 0, 5];
        let ip: Ipv6Addr = "fd00:10::12:3456".parse().unwrap();
        let f = dad_probe_frame(mac, ip);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        assert_eq!(&f[22..38], &[0u8; 16], "the source is ::");
        let group: Ipv6Addr = "ff02::1:ff12:3456".parse().unwrap();
        assert_eq!(&f[38..54], &group.octets());
        assert_eq!(f[54], 135);
        assert_eq!(icmpv6_checksum(Ipv6Addr::UNSPECIFIED, group, &f[54..78]), 0);
        // A probe that came in with our MAC is another node's (the same
        // address derives the same MAC); our own never comes in.
        assert_eq!(claimant(&f, ip), Some(mac));
        // Another node's probe for it, and an advertisement for it, do.
        let other = [0x02, 0, 0, 0, 0, 9];
        assert_eq!(claimant(&dad_probe_frame(other, ip), ip), Some(other));
        let na = unsolicited_na_frame(other, ip);
        assert_eq!(claimant(&na, ip), Some(other));
        // An advertisement for another address does not.
        let na = unsolicited_na_frame(other, "fd00:10::1".parse().unwrap());
        assert_eq!(claimant(&na, ip), None);
    }
}
