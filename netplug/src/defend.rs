//! Defending a plugged address (RFC 5227 §2.4): one gratuitous ARP sent
//! from inside the container's namespace, so neighbours that a conflicting
//! node's ARP misled cache the container's MAC again.

use std::net::Ipv4Addr;

use crate::arp;
use crate::mac::Mac;
use crate::netns::{NetnsError, NetnsTarget, run_in_netns};

#[derive(Debug, thiserror::Error)]
pub enum DefendError {
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("no interface {iface} in the {target}")]
    NoInterface { iface: String, target: String },
    #[error("cannot send the gratuitous ARP for {address} on {iface}: {source}")]
    Send {
        address: Ipv4Addr,
        iface: String,
        #[source]
        source: std::io::Error,
    },
}

/// Broadcasts one gratuitous ARP for `address` from `mac` on `iface` in
/// `target`'s network namespace. One, not the plug's three: the RFC allows
/// a single announcement per defence.
pub async fn defend(
    target: &NetnsTarget,
    iface: &str,
    mac: Mac,
    address: Ipv4Addr,
) -> Result<(), DefendError> {
    let netns = target.open()?;
    let name = iface.to_string();
    let sent = run_in_netns(&netns, move || {
        let Ok(index) = nix::net::if_::if_nametoindex(name.as_str()) else {
            return Ok(None);
        };
        let socket = arp::open_packet_socket()?;
        arp::announce(&socket, index, mac.octets(), address).map(Some)
    })
    .await?;
    match sent {
        Ok(Some(())) => Ok(()),
        Ok(None) => Err(DefendError::NoInterface {
            iface: iface.to_string(),
            target: target.to_string(),
        }),
        Err(source) => Err(DefendError::Send {
            address,
            iface: iface.to_string(),
            source,
        }),
    }
}
