//! The kinds of bridge a plug goes onto, and how a bridge's kind is told.

use rtnetlink::packet_route::link::InfoKind;

use crate::error::StepError;
use crate::netlink::{LinkInfoSummary, NetlinkError};
use crate::ovs::OvsError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeKind {
    Ovs,
    Linux,
}

/// The kind of `bridge`, from its link here (`link`) and whether OVS has
/// it (`in_ovs`): a Linux bridge is one whatever OVS says. `Err(None)`: no
/// such bridge.
pub(super) fn bridge_kind_of(
    bridge: &str,
    link: Result<Option<LinkInfoSummary>, NetlinkError>,
    in_ovs: Result<bool, OvsError>,
) -> Result<BridgeKind, Option<StepError>> {
    if let Some(link) = link.map_err(|e| Some(e.into()))?
        && link.kind == Some(InfoKind::Bridge)
    {
        return Ok(BridgeKind::Linux);
    }
    match in_ovs {
        Ok(true) => Ok(BridgeKind::Ovs),
        Ok(false) => Err(None),
        // Not a Linux bridge, and OVS cannot say: the cause is kept, as
        // "not found" would hide an OVS that is down.
        Err(source) => Err(Some(StepError::BridgeUnknown {
            bridge: bridge.to_string(),
            source,
        })),
    }
}
