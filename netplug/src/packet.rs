//! Raw packet sockets (`AF_PACKET`): one opened for an Ethernet protocol,
//! a whole frame sent on an interface, and the poll loop that waits for a
//! frame a caller is after. ARP and neighbour discovery both use them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// ARP's Ethernet protocol number.
pub(crate) const ETH_P_ARP: u16 = 0x0806;

/// Opens a packet socket for the frames of the Ethernet `protocol` in the
/// calling thread's network namespace.
pub(crate) fn open(protocol: u16) -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            i32::from(protocol.to_be()),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Waits up to `timeout` for a frame on `socket` that `pick` (given the
/// frame and the index of the interface it came in on) makes something
/// of, and returns what it made; `None` when the time ran out first.
pub fn await_frame<T>(
    socket: &OwnedFd,
    timeout: Duration,
    pick: impl FnMut(&[u8], u32) -> Option<T>,
) -> std::io::Result<Option<T>> {
    await_picked(socket, timeout, false, pick)
}

/// [`await_frame`] for the frames that came in from elsewhere only: a
/// packet socket also sees each frame its namespace sends, and one that
/// came in with the socket's own MAC as sender is another node's (two
/// containers given one address derive one MAC from it).
pub fn await_incoming<T>(
    socket: &OwnedFd,
    timeout: Duration,
    pick: impl FnMut(&[u8], u32) -> Option<T>,
) -> std::io::Result<Option<T>> {
    await_picked(socket, timeout, true, pick)
}

fn await_picked<T>(
    socket: &OwnedFd,
    timeout: Duration,
    incoming_only: bool,
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
        if incoming_only && from.sll_pkttype == libc::PACKET_OUTGOING {
            continue;
        }
        if let Some(picked) = pick(&buf[..len], ifindex) {
            return Ok(Some(picked));
        }
    }
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
    // ARP's, whatever the frame holds (an IPv6 frame too): on a raw
    // socket the frame goes out as it is.
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
