//! What is configured on a container's interface, and where its host end is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::{Ipv4Network, Ipv6Network};

use crate::error::StepError;
use crate::hostend::{host_ifname_candidates, links_named, owner_alias, sort_holders};
use crate::mac::Mac;
use crate::netlink::{LinkInfoSummary, Netlink, NetlinkError};
use crate::netns::NetnsTarget;

use super::plugger::Plugger;
use super::spec::{MAX_OBSERVED_ADDRESSES, Observed};

impl Plugger {
    /// Reads what is actually configured on the container's interface: at
    /// most [`MAX_OBSERVED_ADDRESSES`] addresses of each family, those of
    /// `own` (the ones it was given) first, and how many more it has.
    pub async fn observe(
        &self,
        target: &NetnsTarget,
        iface: &str,
        own: &[IpAddr],
    ) -> Result<Observed, StepError> {
        let netns = target.open()?;
        let inner = Netlink::in_netns(&netns).await?;
        let Some(link) = inner.link_by_name(iface).await? else {
            return Ok(Observed::default());
        };
        let own4: Vec<Ipv4Addr> = own
            .iter()
            .filter_map(|a| match a {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let own6: Vec<Ipv6Addr> = own
            .iter()
            .filter_map(|a| match a {
                IpAddr::V6(a) => Some(*a),
                IpAddr::V4(_) => None,
            })
            .collect();
        let (v4, total4) = inner
            .addrs_capped(link.index, &own4, MAX_OBSERVED_ADDRESSES)
            .await?;
        let (v6, total6) = inner
            .addrs_capped(link.index, &own6, MAX_OBSERVED_ADDRESSES)
            .await?;
        Ok(Observed {
            omitted: (total4 - v4.len()) + (total6 - v6.len()),
            addresses: v4
                .into_iter()
                .filter_map(|(ip, len)| Ipv4Network::new(ip, len).ok())
                .collect(),
            mac: link.mac.map(Mac::from),
            gateway: inner.default_gateway::<Ipv4Addr>().await?,
            addresses6: v6
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
