//! Network rules of a container: the IPv4 subnet, the dual stack, the bridge's name
//! and the MAC.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnetwork::Ipv6Network;

use super::Checker;
use super::accessors::Fields;
use crate::environment::yaml::{Node, Pos};
use dockstack_types::ip6::{check_gateway6, check_gateway6_alone, parse_ip6};
use dockstack_types::link::check_ifname;
use dockstack_types::{Mac, MacError};

impl Checker {
    pub(super) fn subnet(
        &mut self,
        ip: Ipv4Addr,
        ip_pos: Pos,
        ip_path: &str,
        mask: u8,
        gateway: Option<&(Ipv4Addr, Pos, String)>,
    ) {
        let netmask = if mask == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(mask))
        };
        let network = Ipv4Addr::from(u32::from(ip) & netmask);
        let broadcast = Ipv4Addr::from(u32::from(ip) | !netmask);
        // /31 and /32 have no network or broadcast address to avoid.
        if mask <= 30 {
            if ip == network {
                let message = format!("ip {ip} is the network address of {network}/{mask}");
                self.report(ip_pos, ip_path, message);
            } else if ip == broadcast {
                let message = format!("ip {ip} is the broadcast address of {network}/{mask}");
                self.report(ip_pos, ip_path, message);
            }
        }
        let Some((gateway, pos, path)) = gateway else {
            return;
        };
        if u32::from(*gateway) & netmask != u32::from(network) {
            let message = format!("gateway {gateway} is outside the subnet {network}/{mask}");
            self.report(*pos, path, message);
        } else if *gateway == ip {
            let message = format!("gateway {gateway} is the container's own ip");
            self.report(*pos, path, message);
        }
    }

    /// `ip6` and `gateway6`: an address and prefix fit for an interface,
    /// and a next hop inside that prefix (or a link-local one, which is how
    /// routers commonly announce themselves on IPv6).
    pub(super) fn dual_stack(
        &mut self,
        fields: &Fields<'_>,
        name: &str,
        partial: bool,
    ) -> (Option<Ipv6Network>, Option<Ipv6Addr>) {
        let ip6 = self.value(fields, "ip6", false).and_then(|(node, path)| {
            let text = self.string(node, &path, "an ipv6 address with /LEN")?;
            match parse_ip6(&text) {
                Ok(net) => Some((net, node.pos, path)),
                Err(message) => {
                    self.report(node.pos, &path, message);
                    None
                }
            }
        });
        let gateway6 = self
            .value(fields, "gateway6", false)
            .and_then(|(node, path)| {
                let text = self.string(node, &path, "an ipv6 address")?;
                match text.trim().parse::<Ipv6Addr>() {
                    Ok(g) => Some((g, node.pos, path)),
                    Err(_) => {
                        let message = format!("expected an ipv6 address, found `{text}`");
                        self.report(node.pos, &path, message);
                        None
                    }
                }
            });
        if let (Some((net, pos, _)), false) = (&ip6, partial) {
            self.ips6.push((net.ip(), *pos, name.to_owned()));
        }
        if let Some((gateway, pos, path)) = &gateway6 {
            let problem = match &ip6 {
                Some((net, _, _)) => check_gateway6(net, *gateway).err(),
                // A gateway6 merged from the defaults serves the containers
                // that have an ip6; written in an IPv4-only one, it is a
                // mistake. Merged keys are written before the container's
                // own (YAML defines an anchor before any alias of it).
                None if !partial
                    && fields.get("ip6").is_none()
                    && fields
                        .get("gateway6")
                        .is_some_and(|e| e.key.pos.line >= fields.owner.line) =>
                {
                    Some("`gateway6` is given without `ip6`".to_string())
                }
                None => check_gateway6_alone(*gateway).err(),
            };
            if let Some(message) = problem {
                self.report(*pos, path, message);
            }
        }
        let ip6 = ip6.map(|(n, _, _)| n);
        // A merged gateway6 an IPv4-only container has no use for.
        (ip6, gateway6.filter(|_| ip6.is_some()).map(|(g, _, _)| g))
    }

    pub(super) fn bridge(&mut self, bridge: &str, fields: &Fields<'_>) {
        let Some((node, path)) = self.value(fields, "bridge", false) else {
            return;
        };
        if let Err(e) = check_ifname(bridge) {
            self.report(node.pos, &path, e.to_string());
        }
    }

    pub(super) fn mac(&mut self, node: &Node, path: &str) -> Option<Mac> {
        let text = self.string(node, path, "a mac address")?;
        match Mac::parse_interface(&text) {
            Ok(mac) => Some(mac),
            Err(MacError::Syntax(_)) => {
                self.wrong_type(node, path, "a mac address like 02:42:0a:00:00:01");
                None
            }
            Err(e @ (MacError::Multicast(_) | MacError::Zero(_))) => {
                self.report(node.pos, path, e.to_string());
                None
            }
        }
    }
}
