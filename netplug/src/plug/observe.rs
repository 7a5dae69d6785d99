//! What is configured on a container's interface, and where its host end is.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnetwork::{Ipv4Network, Ipv6Network};

use crate::error::StepError;
use crate::hostend::{host_ifname_candidates, links_named, owner_alias, sort_holders};
use crate::mac::Mac;
use crate::netlink::{LinkInfoSummary, Netlink, NetlinkError};
use crate::netns::NetnsTarget;

use super::plugger::Plugger;
use super::spec::Observed;

impl Plugger {
    /// Reads what is actually configured on the container's interface.
    pub async fn observe(&self, target: &NetnsTarget, iface: &str) -> Result<Observed, StepError> {
        let netns = target.open()?;
        let inner = Netlink::in_netns(&netns).await?;
        let Some(link) = inner.link_by_name(iface).await? else {
            return Ok(Observed::default());
        };
        let addresses = inner
            .addrs::<Ipv4Addr>(link.index)
            .await?
            .into_iter()
            .filter_map(|(ip, len)| Ipv4Network::new(ip, len).ok())
            .collect();
        Ok(Observed {
            addresses,
            mac: link.mac.map(Mac::from),
            gateway: inner.default_gateway::<Ipv4Addr>().await?,
            addresses6: inner
                .addrs::<Ipv6Addr>(link.index)
                .await?
                .into_iter()
                .filter_map(|(ip, len)| Ipv6Network::new(ip, len).ok())
                .collect(),
            gateway6: inner.default_gateway::<Ipv6Addr>().await?,
        })
    }

    /// The host end of `container`'s `iface`, if it is plugged here, under
    /// whichever of its names it has.
    pub async fn host_end(
        &self,
        container: &str,
        iface: &str,
    ) -> Result<Option<LinkInfoSummary>, NetlinkError> {
        let host = Netlink::current()?;
        let alias = owner_alias(container, iface);
        let found = links_named(&host, &host_ifname_candidates(container, iface)).await?;
        Ok(sort_holders(&found, &alias, true).ours.into_iter().next())
    }
}
