//! Port security on OVS: the OpenFlow rules that let through only a
//! port's own MAC and addresses, set and removed on the bridge's
//! management socket.

use std::path::PathBuf;
use std::time::Duration;

use crate::openflow::{self, FlowMod};

use super::error::{OvsError, Result};
use super::handle::{Ovs, Secured};

/// The top 16 bits of every cookie of netplug's flows.
pub(super) const COOKIE_MARK: u64 = 0xd0c5 << 48;

/// The UDP source ports of DHCP's servers and relays (67) and DHCPv6's
/// (547): a container answering a neighbour's discovery as its server
/// would hand it the gateway and DNS of its choice.
pub(super) const DHCP_SERVER_PORT: u16 = 67;
pub(super) const DHCPV6_SERVER_PORT: u16 = 547;

/// How long ovs-vswitchd may take to answer on a management socket.
pub(super) const OPENFLOW_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const COOKIE_MARK_MASK: u64 = 0xffff << 48;

/// The cookie of the port-security flows of `port`: netplug's mark and 48
/// bits of a hash of the port's name, which is unique on a host.
pub fn port_cookie(port: &str) -> u64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(port.as_bytes());
    let mut low = [0u8; 8];
    low[2..].copy_from_slice(&digest[..6]);
    COOKIE_MARK | u64::from_be_bytes(low)
}

/// The flow mods that replace the port-security rules of the port with
/// `cookie` and `ofport`, in order: first every rule of netplug's for
/// `ofport` or with `cookie`, then the new ones.
pub fn port_security_flows(
    cookie: u64,
    ofport: u32,
    mac: crate::mac::Mac,
    addresses: &[ipnetwork::Ipv4Network],
    address6: Option<std::net::Ipv6Addr>,
) -> Vec<FlowMod> {
    use openflow::{Action, Field};
    let mut out = vec![
        FlowMod::Delete {
            cookie: COOKIE_MARK,
            cookie_mask: COOKIE_MARK_MASK,
            fields: vec![Field::InPort(ofport)],
        },
        FlowMod::Delete {
            cookie,
            cookie_mask: u64::MAX,
            fields: Vec::new(),
        },
    ];
    let mut add = |priority: u16, fields: &[Field], action: Action| {
        let mut all = vec![Field::InPort(ofport), Field::EthSrc(mac)];
        all.extend_from_slice(fields);
        out.push(FlowMod::Add {
            cookie,
            priority,
            fields: all,
            action,
        });
    };
    for a in addresses {
        add(
            100,
            &[Field::Arp, Field::ArpSha(mac), Field::ArpSpa(*a)],
            Action::Normal,
        );
        add(100, &[Field::Ip, Field::Ipv4Src(*a)], Action::Normal);
    }
    add(
        110,
        &[Field::Ip, Field::UdpSrc(DHCP_SERVER_PORT)],
        Action::Drop,
    );
    // RFC 5227's probes (sender 0.0.0.0): nobody learns from them.
    let unspecified = ipnetwork::Ipv4Network::from(std::net::Ipv4Addr::UNSPECIFIED);
    add(
        100,
        &[Field::Arp, Field::ArpSha(mac), Field::ArpSpa(unspecified)],
        Action::Normal,
    );
    // A dual-stack port: IPv6 from its address or its own link-local one
    // (the kernel's, for neighbour discovery), DAD and MLD from `::`;
    // never a router advertisement, a redirect or a DHCPv6 server's
    // answer, and a neighbour advertisement only for those two addresses.
    // Any other link-local source or target would let it pose as the
    // router, whose address is often fe80::1.
    if let Some(a6) = address6 {
        let own = ipnetwork::Ipv6Network::from(a6);
        let link_local = ipnetwork::Ipv6Network::from(mac.link_local());
        let any = ipnetwork::Ipv6Network::from(std::net::Ipv6Addr::UNSPECIFIED);
        for t in [134, 137] {
            add(110, &[Field::Ipv6, Field::Icmpv6Type(t)], Action::Drop);
        }
        add(
            110,
            &[Field::Ipv6, Field::UdpSrc(DHCPV6_SERVER_PORT)],
            Action::Drop,
        );
        for target in [own, link_local] {
            add(
                105,
                &[Field::Ipv6, Field::Icmpv6Type(136), Field::NdTarget(target)],
                Action::Normal,
            );
        }
        add(104, &[Field::Ipv6, Field::Icmpv6Type(136)], Action::Drop);
        for src in [own, link_local] {
            add(100, &[Field::Ipv6, Field::Ipv6Src(src)], Action::Normal);
        }
        for t in [135, 143] {
            add(
                100,
                &[Field::Ipv6, Field::Ipv6Src(any), Field::Icmpv6Type(t)],
                Action::Normal,
            );
        }
    }
    out.push(FlowMod::Add {
        cookie,
        priority: 90,
        fields: vec![Field::InPort(ofport)],
        action: Action::Drop,
    });
    out
}

impl Ovs {
    /// Port security, as Neutron does it: frames that enter `bridge` from
    /// `port` (OpenFlow port `ofport`) pass only with source MAC `mac` and
    /// as ARP whose sender is `mac` and one of `addresses`, or IPv4 from one
    /// of `addresses`; everything else from the port is dropped. Replaces,
    /// in one OpenFlow bundle, the rules netplug had for this port or for
    /// `ofport` (those of an earlier port that had the number).
    pub async fn set_port_security(
        &self,
        bridge: &str,
        port: &str,
        ofport: u32,
        mac: crate::mac::Mac,
        addresses: &[ipnetwork::Ipv4Network],
        address6: Option<std::net::Ipv6Addr>,
    ) -> Result<()> {
        let socket = self.mgmt_socket(bridge)?;
        let flows = port_security_flows(port_cookie(port), ofport, mac, addresses, address6);
        openflow::bundle(&socket, &flows, OPENFLOW_TIMEOUT)
            .await
            .map_err(|e| OvsError::OpenFlow {
                bridge: bridge.to_string(),
                error: e.to_string(),
            })?;
        self.secured().insert(
            port.to_string(),
            Secured {
                bridge: bridge.to_string(),
                ofport,
                flows,
            },
        );
        Ok(())
    }

    /// Sets again, at once, the rules this handle last set for each port
    /// that is still in OVSDB with the same OpenFlow port number: after
    /// ovs-vswitchd restarted, with every rule gone, this needs no look-up
    /// of the containers (their check follows, by a re-plug). One bundle per
    /// bridge. Returns the ports whose rules were set; a port gone or
    /// renumbered is left to that check.
    pub async fn restore_port_security(&self) -> Result<Vec<String>> {
        let res = self.transact(vec![Self::select_ofports_by_name()]).await?;
        let now: std::collections::HashMap<String, u32> = crate::ovsdb::rows(&res[0])
            .iter()
            .filter_map(|r| {
                let name = crate::ovsdb::optional_str(&r["name"])?;
                let ofport = crate::ovsdb::optional_int(&r["ofport"])?;
                Some((name.to_string(), u32::try_from(ofport).ok()?))
            })
            .collect();
        let mut by_bridge: std::collections::BTreeMap<String, (Vec<String>, Vec<FlowMod>)> =
            Default::default();
        for (port, secured) in self.secured().iter() {
            if now.get(port) == Some(&secured.ofport) {
                let entry = by_bridge.entry(secured.bridge.clone()).or_default();
                entry.0.push(port.clone());
                entry.1.extend(secured.flows.iter().cloned());
            }
        }
        let sent = futures::future::join_all(by_bridge.into_iter().map(
            |(bridge, (ports, flows))| async move {
                let socket = self.mgmt_socket(&bridge)?;
                openflow::bundle(&socket, &flows, OPENFLOW_TIMEOUT)
                    .await
                    .map_err(|e| OvsError::OpenFlow {
                        bridge: bridge.clone(),
                        error: e.to_string(),
                    })?;
                Ok::<_, OvsError>(ports)
            },
        ))
        .await;
        let mut restored = Vec::new();
        for ports in sent {
            restored.extend(ports?);
        }
        Ok(restored)
    }

    fn select_ofports_by_name() -> serde_json::Value {
        serde_json::json!({"op": "select", "table": "Interface", "where": [],
                           "columns": ["name", "ofport"]})
    }

    /// Sends `frames` into `bridge` as though port `ofport` had sent them,
    /// through its rules (see `openflow::packet_out`): an announcement
    /// made this way needs no socket in the container, whose closing would
    /// cost an RCU grace period.
    pub async fn inject(&self, bridge: &str, ofport: u32, frames: &[&[u8]]) -> Result<()> {
        let socket = self.mgmt_socket(bridge)?;
        openflow::packet_out(&socket, ofport, frames, OPENFLOW_TIMEOUT)
            .await
            .map_err(|e| OvsError::OpenFlow {
                bridge: bridge.to_string(),
                error: e.to_string(),
            })
    }

    /// Removes the port-security rules of `port` from every bridge of this
    /// OVS; no bridge or no rules is no error.
    pub async fn clear_port_security(&self, port: &str) -> Result<()> {
        self.secured().remove(port);
        let dir = self.rundir()?;
        let sockets: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "mgmt"))
                .collect(),
            Err(_) => Vec::new(),
        };
        let delete = [openflow::FlowMod::Delete {
            cookie: port_cookie(port),
            cookie_mask: u64::MAX,
            fields: Vec::new(),
        }];
        let results = futures::future::join_all(
            sockets
                .iter()
                .map(|socket| openflow::send(socket, &delete, OPENFLOW_TIMEOUT)),
        )
        .await;
        let mut first_err = None;
        for (socket, result) in sockets.iter().zip(results) {
            if let Err(e) = result {
                let bridge = socket
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                first_err.get_or_insert(OvsError::OpenFlow {
                    bridge,
                    error: e.to_string(),
                });
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_security_flows_allow_own_and_listed_addresses_then_drop() {
        let mac: crate::mac::Mac = "02:d5:0a:f0:00:02".parse().unwrap();
        let addrs = [
            "10.240.0.2/32".parse().unwrap(),
            "10.240.0.0/28".parse().unwrap(),
        ];
        let cookie = port_cookie("vethx");
        assert_eq!(cookie & COOKIE_MARK_MASK, COOKIE_MARK);
        assert_ne!(cookie, port_cookie("vethy"));
        let flows = port_security_flows(cookie, 7, mac, &addrs, None);
        let lines: Vec<String> = flows.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 9, "{lines:#?}");
        assert_eq!(
            lines[0],
            "delete cookie=0xd0c5000000000000/0xffff000000000000,in_port=7"
        );
        assert_eq!(lines[1], format!("delete cookie={cookie:#x}/-1"));
        assert!(lines[2].ends_with(
            "priority=100,in_port=7,dl_src=02:d5:0a:f0:00:02,arp,arp_sha=02:d5:0a:f0:00:02,arp_spa=10.240.0.2,actions=NORMAL"
        ));
        assert!(lines[3].ends_with("dl_src=02:d5:0a:f0:00:02,ip,nw_src=10.240.0.2,actions=NORMAL"));
        assert!(lines[5].ends_with("nw_src=10.240.0.0/28,actions=NORMAL"));
        assert!(lines[6].ends_with(
            "priority=110,in_port=7,dl_src=02:d5:0a:f0:00:02,ip,nw_proto=17,tp_src=67,actions=drop"
        ));
        assert!(lines[7].ends_with("arp,arp_sha=02:d5:0a:f0:00:02,arp_spa=0.0.0.0,actions=NORMAL"));
        assert!(lines[8].ends_with("priority=90,in_port=7,actions=drop"));
    }

    #[test]
    fn a_dual_stack_port_may_use_only_its_own_link_local_address() {
        let mac: crate::mac::Mac = "02:d5:0a:f0:00:02".parse().unwrap();
        let a6 = "fd00:240::2".parse().unwrap();
        let flows = port_security_flows(port_cookie("vethx"), 7, mac, &[], Some(a6));
        let lines: Vec<String> = flows.iter().map(ToString::to_string).collect();
        let ll = "fe80::d5:aff:fef0:2";
        for want in [
            format!("nd_target={ll},actions=NORMAL"),
            format!("ipv6_src={ll},actions=NORMAL"),
            "ipv6,nw_proto=17,tp_src=547,actions=drop".to_string(),
        ] {
            assert!(
                lines.iter().any(|l| l.ends_with(&want)),
                "{want}: {lines:#?}"
            );
        }
        assert!(!lines.iter().any(|l| l.contains("fe80::/")), "{lines:#?}");
    }
}
