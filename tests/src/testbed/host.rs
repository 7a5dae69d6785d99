//! One simulated container host of a bed, as tests see it: its names, addresses and run dir.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Child;

/// One simulated container host of a bed.
#[derive(Debug)]
pub struct Host {
    pub(super) index: usize,
    pub(super) name: String,
    pub(super) netns: String,
    pub(super) mgmt_link: String,
    pub(super) mgmt_ip: Ipv4Addr,
    pub(super) port: u16,
    pub(super) rundir: PathBuf,
    pub(super) bridge_ip: Ipv4Addr,
    pub(super) wire_ports: Vec<String>,
    pub(super) server: Option<Child>,
}

impl Host {
    /// Index of the host in its bed.
    pub fn index(&self) -> usize {
        self.index
    }
    /// The host's name: its server's `--host-id` and its name in `containerhosts`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The host's network namespace (`dsb<slot>h<i>`).
    pub fn netns(&self) -> &str {
        &self.netns
    }
    /// The root-namespace end of the management link (`dsm<slot>h<i>`).
    pub fn mgmt_link(&self) -> &str {
        &self.mgmt_link
    }
    /// The host's management address; its server listens here.
    pub fn mgmt_ip(&self) -> Ipv4Addr {
        self.mgmt_ip
    }
    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }
    /// The server's address, reachable from the root namespace.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.mgmt_ip, self.port))
    }
    /// The host's OVSDB (`unix:<rundir>/db.sock`).
    pub fn ovsdb(&self) -> String {
        format!("unix:{}", self.rundir.join("db.sock").display())
    }
    /// The host's run dir: OVS database, sockets and logs, `server.log`.
    pub fn rundir(&self) -> &Path {
        &self.rundir
    }
    /// The PID of the host's server, from the pid file the bed writes at
    /// each of its starts (a restarted server is not the bed's first child).
    pub fn server_pid(&self) -> std::io::Result<u32> {
        let path = self.rundir.join("server.pid");
        std::fs::read_to_string(&path)?.trim().parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })
    }
    /// The address of the host's bridge.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.bridge_ip
    }
    /// The server's log (its stdout and stderr).
    pub fn server_log(&self) -> PathBuf {
        self.rundir.join("server.log")
    }
    /// The OVS ports of the wire to the other hosts.
    pub fn wire_ports(&self) -> &[String] {
        &self.wire_ports
    }
}
