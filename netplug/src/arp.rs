//! Gratuitous ARP, so neighbours replace a MAC they cached for the address;
//! and plain ARP requests, to see that a plug forwards.

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

const ETH_P_ARP: u16 = 0x0806;

/// Opens a packet socket in the calling thread's network namespace.
pub fn open_packet_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(ETH_P_ARP.to_be()),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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

/// Waits up to `timeout` for a frame on `socket` that `pick` (given the
/// frame and the index of the interface it came in on) makes something
/// of, and returns what it made; `None` when the time ran out first.
pub fn await_frame<T>(
    socket: &OwnedFd,
    timeout: Duration,
    mut pick: impl FnMut(&[u8], u32) -> Option<T>,
) -> std::io::Result<Option<T>> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 1514];
    let addr_len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())
        .map_err(|_| std::io::Error::other("sockaddr_ll out of range"))?;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let mut pfd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        // SAFETY: pfd is one valid pollfd that lives across the call.
        let n = unsafe { libc::poll(&raw mut pfd, 1, ms) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(None);
        }
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut from_len = addr_len;
        // SAFETY: buf and from are valid for writes of the lengths given,
        // and live across the call.
        let len = unsafe {
            libc::recvfrom(
                socket.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
                (&raw mut from).cast(),
                &raw mut from_len,
            )
        };
        // Negative (-1) exactly when recvfrom failed.
        let Ok(len) = usize::try_from(len) else {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                continue;
            }
            return Err(e);
        };
        // The kernel's ifindexes are positive; no other names an interface.
        let Ok(ifindex) = u32::try_from(from.sll_ifindex) else {
            continue;
        };
        if let Some(picked) = pick(&buf[..len], ifindex) {
            return Ok(Some(picked));
        }
    }
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

/// Sends the whole Ethernet `frame` (headers included) on `ifindex`
/// through `socket`, as it is: a test uses it for frames with a VLAN tag.
pub fn send_frame(socket: &OwnedFd, ifindex: u32, frame: &[u8]) -> std::io::Result<()> {
    let invalid = |what: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, what);
    // The kernel's ifindexes are positive ints; a larger one names no link.
    let ifindex =
        i32::try_from(ifindex).map_err(|_| invalid(format!("no such interface #{ifindex}")))?;
    // Constants, in range on every Linux; checked all the same rather than
    // truncated.
    let family = libc::sa_family_t::try_from(libc::AF_PACKET)
        .map_err(|_| invalid("AF_PACKET out of range".into()))?;
    let addr_len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>())
        .map_err(|_| invalid("sockaddr_ll out of range".into()))?;
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = family;
    addr.sll_protocol = ETH_P_ARP.to_be();
    addr.sll_ifindex = ifindex;
    addr.sll_halen = 6;
    addr.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    // SAFETY: frame and addr are valid for the lengths passed, and live across the call.
    let n = unsafe {
        libc::sendto(
            socket.as_raw_fd(),
            frame.as_ptr().cast(),
            frame.len(),
            0,
            (&raw const addr).cast(),
            addr_len,
        )
    };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
}
