//! Per-interface sysctls of the calling thread's network namespace, which
//! keep a host end out of the host's own IP stack, and keep a dual-stack
//! container's IPv6 configuration the one it was given.

use std::io;
use std::path::Path;

/// Makes the host's kernel ignore the host end `ifname` as an IP interface:
/// no ARP replies on it (`arp_ignore=8`) and no IPv6 on it
/// (`disable_ipv6=1`).
///
/// A host end is a plain interface of the host. On a Linux bridge, or on
/// OVS's kernel datapath, the bridge takes every frame first; on OVS's
/// userspace datapath, which reads frames through a packet socket, the
/// host's stack sees them too. Without this the host answers a
/// container's ARP for any host address (the gateway, when the host holds
/// it) with the host end's own MAC, so that traffic bypasses the bridge,
/// its VLANs and its flows; and the host end's IPv6 link-local address
/// sends router solicitations and MLD reports into the container's
/// segment. Must run before the link goes up.
pub fn isolate_host_end(ifname: &str) -> io::Result<()> {
    write(
        &Path::new("/proc/sys/net/ipv4/conf")
            .join(ifname)
            .join("arp_ignore"),
        "8",
    )?;
    let ipv6 = Path::new("/proc/sys/net/ipv6/conf")
        .join(ifname)
        .join("disable_ipv6");
    // A kernel without IPv6 has no such file, and nothing to disable.
    if ipv6.exists() {
        write(&ipv6, "1")?;
    }
    Ok(())
}

/// IPv6 on the container's `ifname` exactly as the plug sets it: enabled,
/// its link-local address the EUI-64 one of its MAC (the one port security
/// lets through), and no router advertisement, autoconfiguration or
/// redirect may add an address or change a route. Runs in the container's
/// namespace, before the link goes up (an advertisement could come at
/// once, and the link-local address is made then).
pub fn fix_container_ipv6(ifname: &str) -> io::Result<()> {
    let conf = Path::new("/proc/sys/net/ipv6/conf").join(ifname);
    for (key, value) in [
        ("accept_ra", "0"),
        ("autoconf", "0"),
        ("accept_redirects", "0"),
        ("addr_gen_mode", "0"),
        ("disable_ipv6", "0"),
    ] {
        write(&conf.join(key), value)?;
    }
    Ok(())
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
        .map_err(|e| io::Error::new(e.kind(), format!("write {}: {e}", path.display())))
}
