//! The one ethtool setting a plug needs: TX checksum offload off on the
//! container's end of the veth.
//!
//! With Open vSwitch's userspace datapath (`datapath_type=netdev`), packets
//! from a veth are read through an AF_PACKET socket and forwarded as they
//! are, so a TCP or UDP checksum left for "hardware" to fill in is never
//! filled in, and the receiver drops the packet: ping works, TCP and DNS
//! don't. Computing checksums in the container's stack fixes that at no
//! measurable cost for a veth.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETHTOOL_STXCSUM: u32 = 0x17;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// A datagram socket in the calling thread's network namespace: ethtool
/// requests made through it act on that namespace's interfaces.
pub fn open_control_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) takes no pointers; the result is checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Turns TX checksum offload of `ifname` on or off, in the namespace of
/// `socket`.
pub fn set_tx_checksum(socket: &OwnedFd, ifname: &str, enabled: bool) -> std::io::Result<()> {
    if ifname.is_empty() || ifname.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad interface name {ifname:?}"),
        ));
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: u32::from(enabled),
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: &mut value,
        _pad: [0; 16],
    };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: req is a struct ifreq whose ifr_data points to a live struct
    // ethtool_value, as SIOCETHTOOL expects; both outlive the call.
    // `as _`: glibc's ioctl takes the request as an unsigned long, musl's as
    // an int; 0x8946 fits either.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCETHTOOL as _, &mut req) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
