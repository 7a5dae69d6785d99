//! How a bed sets up host i: its namespace and management link, its Open vSwitch bridge, its wire to host 0.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use anyhow::{Context, Result};

use super::bed::TestBed;
use super::host::Host;
use super::layout::{SERVER_PORT, host_number, mgmt_addresses, nth_address, slot_dir};
use super::tools::{ip, retry};

impl TestBed {
    /// Makes host `i` (hosts 0..i exist already), and starts its server
    /// unless the bed has none.
    pub(super) fn add_host(&mut self, i: usize) -> Result<()> {
        let slot = self.slot;
        let (root_ip, mgmt_ip) = mgmt_addresses(slot, i);
        let bridge_ip = if i == 0 {
            self.gateway.ip()
        } else {
            nth_address(self.gateway, 250 - host_number(i))
        };
        let bridge_ip6 = if i == 0 {
            self.gateway6().ip()
        } else {
            self.subnet_ip6(250 - host_number(i))
        };
        let host = Host {
            index: i,
            name: self.names[i].clone(),
            netns: format!("dsb{slot}h{i}"),
            mgmt_link: format!("dsm{slot}h{i}"),
            mgmt_ip,
            port: SERVER_PORT,
            rundir: slot_dir(slot).join(format!("h{i}")),
            bridge_ip,
            wire_ports: Vec::new(),
            server: None,
        };
        let rundir = host.rundir.clone();
        self.hosts.push(host);
        fs::create_dir_all(&rundir).with_context(|| format!("creating {}", rundir.display()))?;

        self.add_mgmt_link(i, root_ip)?;
        self.start_ovs(i)?;
        self.add_bridge(i, bridge_ip6)?;
        if i > 0 {
            self.add_wire(i)?;
        }
        if self.server_bin.is_some() {
            self.start_server(i)?;
        }
        Ok(())
    }

    /// Host `i`'s namespace and its management link, `root_ip` at the root end.
    fn add_mgmt_link(&self, i: usize, root_ip: Ipv4Addr) -> Result<()> {
        let h = &self.hosts[i];
        let (netns, link, mgmt_ip) = (&h.netns, &h.mgmt_link, h.mgmt_ip);
        ip(&["netns", "add", netns])?;
        ip(&["-n", netns, "link", "set", "lo", "up"])?;
        ip(&[
            "link", "add", link, "type", "veth", "peer", "name", "mgmt0", "netns", netns,
        ])?;
        ip(&["addr", "add", &format!("{root_ip}/30"), "dev", link])?;
        ip(&["link", "set", link, "up"])?;
        ip(&[
            "-n",
            netns,
            "addr",
            "add",
            &format!("{mgmt_ip}/30"),
            "dev",
            "mgmt0",
        ])?;
        ip(&["-n", netns, "link", "set", "mgmt0", "up"])?;
        Ok(())
    }

    /// Host `i`'s bridge on its own Open vSwitch (started already), with
    /// its IPv4 address and `bridge_ip6`.
    fn add_bridge(&self, i: usize, bridge_ip6: Ipv6Addr) -> Result<()> {
        let h = &self.hosts[i];
        let (netns, bridge_ip) = (&h.netns, h.bridge_ip);
        let br = &self.opts.bridge;
        self.ovs_vsctl(
            i,
            &[
                "add-br",
                br,
                "--",
                "set",
                "bridge",
                br,
                "datapath_type=netdev",
            ],
        )?;
        retry(Duration::from_secs(5), || {
            ip(&["-n", netns, "link", "set", br, "up"])
        })
        .with_context(|| format!("bringing up the bridge {br} made by ovs-vswitchd"))?;
        let prefix = self.gateway.prefix();
        ip(&[
            "-n",
            netns,
            "addr",
            "add",
            &format!("{bridge_ip}/{prefix}"),
            "dev",
            br,
        ])?;
        // The IPv6 gateway of dual-stack containers: `nodad`, so it answers
        // at once (the bed's addresses are its own).
        ip(&[
            "-n",
            netns,
            "-6",
            "addr",
            "add",
            &format!("{bridge_ip6}/{}", self.gateway6().prefix()),
            "dev",
            br,
            "nodad",
        ])?;
        Ok(())
    }

    /// The wire between host 0 and host `i` (> 0), an OVS port at each end.
    fn add_wire(&mut self, i: usize) -> Result<()> {
        let ns0 = self.hosts[0].netns.clone();
        let netns = self.hosts[i].netns.clone();
        let br = self.opts.bridge.clone();
        let here = format!("wire{i}");
        let there = "wire0".to_string();
        self.hosts[0].wire_ports.push(here.clone());
        self.hosts[i].wire_ports.push(there.clone());
        ip(&[
            "-n", &ns0, "link", "add", &here, "type", "veth", "peer", "name", &there, "netns",
            &netns,
        ])?;
        ip(&["-n", &ns0, "link", "set", &here, "up"])?;
        ip(&["-n", &netns, "link", "set", &there, "up"])?;
        self.ovs_vsctl(0, &["add-port", &br, &here])?;
        self.ovs_vsctl(i, &["add-port", &br, &there])?;
        Ok(())
    }
}
