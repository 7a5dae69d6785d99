//! Whether a plug that is there already is the one a spec asks for.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::error::StepError;
use crate::netlink::Netlink;
use crate::ovs::PortOwner;

use super::bridge::BridgeKind;
use super::plugger::Plugger;
use super::spec::PlugSpec;

impl Plugger {
    /// True when the existing host end `host_index` is the peer of the
    /// container's interface and everything matches `spec`.
    pub(super) async fn matches(
        &self,
        host: &Netlink,
        inner: &Netlink,
        host_index: u32,
        kind: BridgeKind,
        spec: &PlugSpec,
    ) -> Result<bool, StepError> {
        let Some(eth) = inner.link_by_name(&spec.iface).await? else {
            return Ok(false);
        };
        let Some(host_end) = host.link_by_index(host_index).await? else {
            return Ok(false);
        };
        if eth.peer_index != Some(host_index) || host_end.peer_index != Some(eth.index) {
            return Ok(false);
        }
        if eth.mac != Some(spec.effective_mac().octets()) || !eth.up || !host_end.up {
            return Ok(false);
        }
        if let Some(mtu) = spec.mtu
            && eth.mtu != Some(mtu)
        {
            return Ok(false);
        }
        let addrs = inner.addrs::<Ipv4Addr>(eth.index).await?;
        if addrs != vec![(spec.address.ip(), spec.address.prefix())] {
            return Ok(false);
        }
        if spec.gateway.is_some() && inner.default_gateway::<Ipv4Addr>().await? != spec.gateway {
            return Ok(false);
        }
        // An IPv4-only spec does not look at IPv6: a change of that is a
        // new spec (a recreate), not a re-plug.
        if let Some(a6) = spec.address6
            && inner.addrs::<Ipv6Addr>(eth.index).await? != vec![(a6.ip(), a6.prefix())]
        {
            return Ok(false);
        }
        if spec.gateway6.is_some() && inner.default_gateway::<Ipv6Addr>().await? != spec.gateway6 {
            return Ok(false);
        }
        let on_bridge = match kind {
            BridgeKind::Ovs => {
                let want = PortOwner {
                    container: spec.owner.name.clone(),
                    iface: spec.iface.clone(),
                    full_id: spec.owner.full_id.clone(),
                };
                self.ovs.port_info(&host_end.name).await?.is_some_and(|p| {
                    p.bridge.as_deref() == Some(&spec.bridge)
                        && p.tag == spec.vlan
                        && p.vlan_mode.as_deref() == Some("access")
                        && p.owner.as_ref() == Some(&want)
                        && p.ofport.is_some_and(|n| n > 0)
                })
            }
            BridgeKind::Linux => {
                let br = host.link_by_name(&spec.bridge).await?;
                br.map(|b| Some(b.index) == host_end.controller)
                    .unwrap_or(false)
            }
        };
        Ok(on_bridge)
    }
}
