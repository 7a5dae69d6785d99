//! What tests do in and to a host's network: run commands and pings in its namespace, cut its management link, find leaked veths, set checksum offload.

use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};

use super::bed::TestBed;
use super::layout::is_bed_mgmt_link;
use super::tools::{ip, retry, run, show, tool};

impl TestBed {
    /// Takes host `i`'s management link down (its `mgmt0`), so its server is
    /// unreachable; connections to it fail instead of leaving the bed.
    pub fn stop_host_link(&self, i: usize) -> Result<()> {
        ip(&["-n", &self.hosts[i].netns, "link", "set", "mgmt0", "down"])?;
        Ok(())
    }

    /// Makes host `i` silently drop the connections to its server (a
    /// firewall in its own namespace): the host is up, answers ARP, but a
    /// connect gets no answer and waits its whole timeout, where a link
    /// down fails after the kernel's ARP attempts (~3 s). Gone with the
    /// namespace.
    pub fn drop_server_traffic(&self, i: usize) -> Result<()> {
        let h = &self.hosts[i];
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &h.netns])
            .arg(tool("iptables"))
            .args(["-A", "INPUT", "-p", "tcp", "-d"])
            .arg(h.mgmt_ip.to_string())
            .arg("--dport")
            .arg(h.port.to_string())
            .args(["-j", "DROP"]);
        run(&mut cmd).map(drop)
    }

    /// Brings host `i`'s management link back up.
    pub fn start_host_link(&self, i: usize) -> Result<()> {
        let h = &self.hosts[i];
        ip(&["-n", &h.netns, "link", "set", "mgmt0", "up"])?;
        // The address's route comes back with the link, but give the
        // kernel a moment to mark the peer as up again.
        retry(Duration::from_secs(3), || {
            let out = ip(&["-o", "link", "show", &h.mgmt_link])?;
            ensure!(out.contains("LOWER_UP"), "{} is not up yet", h.mgmt_link);
            Ok(())
        })
    }

    /// Whether `ip` answers a `ping -6` from host `i` (retried for about 3 s).
    pub fn ping6_from_host(&self, i: usize, ip: Ipv6Addr) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let out = self.exec_in_host(i, &["ping", "-6", "-n", "-c1", "-W1", &ip.to_string()]);
            if out.status.success() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// Runs `argv` in host `i`'s namespace (`ip netns exec`).
    pub fn exec_in_host<S: AsRef<OsStr>>(&self, i: usize, argv: &[S]) -> Output {
        let mut cmd = self.host_command(i, argv);
        cmd.stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", show(&cmd)))
    }

    /// Runs `argv` in host `i`'s namespace; its stdout, or an error with its stderr.
    pub fn run_in_host<S: AsRef<OsStr>>(&self, i: usize, argv: &[S]) -> Result<String> {
        run(&mut self.host_command(i, argv))
    }

    fn host_command<S: AsRef<OsStr>>(&self, i: usize, argv: &[S]) -> Command {
        let mut cmd = Command::new(tool("ip"));
        cmd.args(["netns", "exec", &self.hosts[i].netns]).args(argv);
        cmd
    }

    /// Whether `ip` answers a ping from host `i` (`ping -c1 -W1`, retried for about 3 s).
    pub fn ping_from_host(&self, i: usize, ip: Ipv4Addr) -> bool {
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let out = self.exec_in_host(i, &["ping", "-n", "-c1", "-W1", &ip.to_string()]);
            if out.status.success() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            sleep(Duration::from_millis(200));
        }
    }

    /// veth links in the root namespace whose names start with `ds`: what a
    /// test may have leaked. Left out, as they belong to someone else running
    /// in parallel: the management links of test beds (`dsm<slot>h<i>`, this
    /// bed's and other beds'), and veths whose peer is in a named network
    /// namespace that is not this bed's (netplug's own tests make those).
    pub fn root_veths(&self) -> Vec<String> {
        let out = ip(&["-o", "link", "show", "type", "veth"]).unwrap_or_else(|e| panic!("{e:#}"));
        out.lines()
            .filter_map(|line| {
                let name = line.split(": ").nth(1)?;
                let name = name.split('@').next().unwrap_or(name);
                let peer_ns = line
                    .split_whitespace()
                    .skip_while(|w| *w != "link-netns")
                    .nth(1);
                let foreign = peer_ns.is_some_and(|ns| !self.hosts.iter().any(|h| h.netns == ns));
                (name.starts_with("ds") && !is_bed_mgmt_link(name) && !foreign)
                    .then(|| name.to_string())
            })
            .collect()
    }
}

/// Turns TX checksum offload of interface `ifname` in the network namespace
/// `netns_file` (`/proc/<pid>/ns/net`, `/run/netns/<name>`) on or off
/// (`ethtool -K IFNAME tx off`, without ethtool).
///
/// With OVS's userspace datapath (`datapath_type=netdev`, as on the bed), a
/// veth that offloads TX checksums sends TCP and UDP with unfinished
/// checksums that OVS forwards as they are, so the receiver drops them: a
/// container's `eth0` on such a bridge needs `tx off` (ICMP works either way).
pub fn set_tx_checksum_offload(netns_file: &Path, ifname: &str, enabled: bool) -> Result<()> {
    let ns = File::open(netns_file).with_context(|| format!("opening {}", netns_file.display()))?;
    // The thread enters the namespace only to open a socket there, and ends
    // there; the ioctl acts in the socket's namespace from any thread.
    let socket = std::thread::spawn(move || -> Result<std::os::fd::OwnedFd> {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .context("entering the network namespace")?;
        Ok(netplug::ethtool::open_control_socket()?)
    })
    .join()
    .map_err(|_| anyhow!("namespace thread panicked"))??;
    netplug::ethtool::set_tx_checksum(&socket, ifname, enabled)
        .with_context(|| format!("ethtool tx {enabled} on {ifname}"))
}
