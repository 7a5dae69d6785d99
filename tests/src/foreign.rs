//! A node on a bed host's bridge that dockstack knows nothing of (a VM or
//! a server, as far as the bridge can tell): a plain network namespace
//! with a veth into the bridge, its own MAC and, if asked, an address.
//! Tests use it to answer for an address, or to claim one with a
//! gratuitous ARP.

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use netplug::{Mac, NetnsTarget};

use crate::testbed::TestBed;

/// The node; removed (its namespace and its bridge port) when dropped.
#[derive(Debug)]
pub struct ForeignNode<'a> {
    bed: &'a TestBed,
    host: usize,
    netns: String,
    outer: String,
    inner: String,
    mac: Mac,
}

impl<'a> ForeignNode<'a> {
    /// A node on host `host`'s bridge with MAC `mac`, up, with no
    /// address; `tag` tells two nodes of one bed apart (a few letters).
    pub fn new(bed: &'a TestBed, host: usize, tag: &str, mac: Mac) -> Self {
        let slot = bed.slot();
        let node = ForeignNode {
            bed,
            host,
            netns: format!("dsforeign{tag}{slot}"),
            outer: format!("dsfo{tag}{slot}"),
            inner: format!("dsfi{tag}{slot}"),
            mac,
        };
        node.remove();
        ip(&["netns", "add", &node.netns]);
        let run = |argv: &[&str]| bed.run_in_host(host, argv).expect("in the host");
        run(&[
            "ip",
            "link",
            "add",
            &node.outer,
            "type",
            "veth",
            "peer",
            "name",
            &node.inner,
        ]);
        run(&["ip", "link", "set", &node.inner, "netns", &node.netns]);
        run(&["ip", "link", "set", &node.outer, "up"]);
        bed.ovs_vsctl(host, &["add-port", bed.bridge(), &node.outer])
            .expect("add-port");
        let mac_text = mac.to_string();
        node.exec(&["ip", "link", "set", &node.inner, "address", &mac_text]);
        node.exec(&["ip", "link", "set", &node.inner, "up"]);
        node
    }

    /// Gives the node `ip` (with the bed's prefix): its kernel answers
    /// for it from now on.
    pub fn add_address(&self, ip: Ipv4Addr) {
        let addr = format!("{ip}/{}", self.bed.gateway().prefix());
        self.exec(&["ip", "addr", "add", &addr, "dev", &self.inner]);
    }

    pub fn mac(&self) -> Mac {
        self.mac
    }

    fn target(&self) -> NetnsTarget {
        NetnsTarget::Path(PathBuf::from(format!("/run/netns/{}", self.netns)))
    }

    /// Broadcasts one gratuitous ARP claiming `ip` from the node's MAC.
    pub fn claim(&self, ip: Ipv4Addr) {
        let target = self.target();
        let (iface, mac) = (self.inner.clone(), self.mac);
        runtime()
            .block_on(async move { netplug::defend(&target, &iface, mac, ip).await })
            .expect("gratuitous ARP from the foreign node");
    }

    /// A packet socket for ARP in the node's namespace (see
    /// [`netplug::arp::await_frame`]).
    pub fn arp_socket(&self) -> OwnedFd {
        let netns = self.target().open().expect("open the node's netns");
        runtime()
            .block_on(async move {
                netplug::run_in_netns(&netns, netplug::arp::open_packet_socket).await
            })
            .expect("enter the node's netns")
            .expect("packet socket")
    }

    /// Waits up to `within` for a gratuitous ARP for `ip` from `mac` on
    /// the node's link.
    pub fn await_announcement(
        &self,
        socket: &OwnedFd,
        ip: Ipv4Addr,
        mac: Mac,
        within: Duration,
    ) -> bool {
        let wanted = netplug::arp::gratuitous_arp_frame(mac.octets(), ip);
        netplug::arp::await_frame(socket, within, |frame, _| {
            (frame.len() >= 42 && frame[6..42] == wanted[6..42]).then_some(())
        })
        .expect("read ARP")
        .is_some()
    }

    fn exec(&self, argv: &[&str]) {
        let mut all = vec!["netns", "exec", self.netns.as_str()];
        all.extend(argv);
        ip(&all);
    }

    fn remove(&self) {
        let _ = self.bed.ovs_vsctl(
            self.host,
            &["--if-exists", "del-port", self.bed.bridge(), &self.outer],
        );
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .status();
        let _ = self
            .bed
            .run_in_host(self.host, &["ip", "link", "del", &self.outer]);
    }
}

impl Drop for ForeignNode<'_> {
    fn drop(&mut self) {
        self.remove();
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn ip(argv: &[&str]) {
    let out = Command::new("ip").args(argv).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {argv:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
