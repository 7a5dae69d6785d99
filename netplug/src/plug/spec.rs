//! What a plug is: its spec and owner, and what a plug or a look at the
//! container's interface gives back.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnetwork::{Ipv4Network, Ipv6Network};

use super::bridge::BridgeKind;
use crate::hostend::host_ifname;
use crate::mac::Mac;

/// Who a plug belongs to: written into OVS `external_ids`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The container's name (ovs-docker's `container_id`).
    pub name: String,
    /// The container's full Docker id, when there is one.
    pub full_id: Option<String>,
}

/// Everything that defines a plug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlugSpec {
    pub bridge: String,
    /// The interface name inside the container, usually `eth0`.
    pub iface: String,
    pub address: Ipv4Network,
    pub gateway: Option<Ipv4Addr>,
    /// The interface's IPv6 address and prefix length (dual stack);
    /// `None`: IPv4 only.
    pub address6: Option<Ipv6Network>,
    /// The IPv6 default route's next hop; only with `address6`.
    pub gateway6: Option<Ipv6Addr>,
    /// `None`: derived from the address, see [`Mac::from_ip`].
    pub mac: Option<Mac>,
    pub mtu: Option<u32>,
    /// OVS access VLAN tag; `None`: an access port of no VLAN (tagged
    /// frames from the container are dropped).
    pub vlan: Option<u16>,
    /// Addresses besides `address` that the container may send from (a
    /// keepalived VIP, say): port security lets through only frames from
    /// the container's MAC with its own address or one of these.
    pub allowed_addresses: Vec<Ipv4Network>,
    /// Probe the bridge for the address first (RFC 5227), for this long:
    /// a fresh plug of an address someone answers for fails, naming the
    /// MAC that answered. `None`: no probe (a re-plug of the container's
    /// own address, or a network that forbids probes).
    pub probe: Option<Duration>,
    pub owner: Owner,
}

impl PlugSpec {
    pub fn effective_mac(&self) -> Mac {
        self.mac.unwrap_or_else(|| Mac::from_ip(self.address.ip()))
    }

    pub fn host_ifname(&self) -> String {
        host_ifname(&self.owner.name, &self.iface)
    }

    /// The sources port security lets through: the container's own
    /// address, then `allowed_addresses`.
    pub fn permitted_sources(&self) -> Vec<Ipv4Network> {
        let own = Ipv4Network::new(self.address.ip(), 32).unwrap_or(self.address);
        let mut out = vec![own];
        for a in &self.allowed_addresses {
            let a = Ipv4Network::new(a.network(), a.prefix()).unwrap_or(*a);
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }
}

/// The result of a plug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plugged {
    pub host_ifname: String,
    pub mac: Mac,
    pub bridge_kind: BridgeKind,
    /// `false` when the container was already plugged with the same spec.
    pub changed: bool,
}

/// What was found on a container's interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub addresses: Vec<Ipv4Network>,
    pub mac: Option<Mac>,
    pub gateway: Option<Ipv4Addr>,
    /// Global (non-link-local) IPv6 addresses.
    pub addresses6: Vec<Ipv6Network>,
    pub gateway6: Option<Ipv6Addr>,
    /// How many addresses the interface has beyond those listed: at most
    /// [`MAX_OBSERVED_ADDRESSES`] of each family are.
    pub omitted: usize,
}

/// At most this many addresses of each family are listed in [`Observed`]:
/// a container with `NET_ADMIN` may add a hundred thousand, and every
/// answer that shows them would outgrow a gRPC message.
pub const MAX_OBSERVED_ADDRESSES: usize = 16;
