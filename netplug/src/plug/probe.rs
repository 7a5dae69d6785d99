//! RFC 5227's probe of an address before it is plugged, with IPv6 DAD's
//! beside it.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::arp;
use crate::error::StepError;
use crate::mac::Mac;
use crate::ndp;

use super::spec::PlugSpec;

/// RFC 5227's probe of `spec`'s address from `eth` (up, with no address):
/// an ARP request from `0.0.0.0`, twice in the window, and whoever claims
/// the address within it, or probes for it too ([`arp::await_conflict`]);
/// with an IPv6 address, DAD's probe for it in the same window, on
/// `ndp_socket`. The ARP socket is handed back for the announcement. Blocking waits run on blocking threads; the sockets are
/// the container's already, so no thread enters its namespace.
pub(super) async fn probe(
    socket: std::os::fd::OwnedFd,
    ndp_socket: Option<std::os::fd::OwnedFd>,
    eth: u32,
    spec: &PlugSpec,
    window: Duration,
) -> Result<(std::os::fd::OwnedFd, Option<(std::net::IpAddr, Mac)>), StepError> {
    let mac = spec.effective_mac().octets();
    let dad = match (ndp_socket, spec.address6) {
        (Some(s), Some(a6)) => Some(tokio::task::spawn_blocking(move || {
            ndp::probe(&s, eth, mac, a6.ip(), window)
        })),
        _ => None,
    };
    let (socket, answered4) = probe4(socket, eth, spec, window).await?;
    if let Some(m) = answered4 {
        return Ok((socket, Some((spec.address.ip().into(), m))));
    }
    if let (Some(task), Some(a6)) = (dad, spec.address6) {
        let answered6 = task.await.map_err(StepError::DadThread)??;
        if let Some(m) = answered6 {
            return Ok((socket, Some((a6.ip().into(), Mac::from(m)))));
        }
    }
    Ok((socket, None))
}

async fn probe4(
    socket: std::os::fd::OwnedFd,
    eth: u32,
    spec: &PlugSpec,
    window: Duration,
) -> Result<(std::os::fd::OwnedFd, Option<Mac>), StepError> {
    let (mac, ip) = (spec.effective_mac().octets(), spec.address.ip());
    tokio::task::spawn_blocking(move || {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let half = window / 2;
        arp::request(&socket, eth, mac, unspecified, ip)?;
        if let Some(answer) = arp::await_conflict(&socket, ip, half)? {
            return Ok((socket, Some(Mac::from(answer))));
        }
        // A second probe, as one can be lost while the port settles.
        arp::request(&socket, eth, mac, unspecified, ip)?;
        let answer = arp::await_conflict(&socket, ip, window - half)?;
        Ok((socket, answer.map(Mac::from)))
    })
    .await
    .map_err(StepError::ProbeThread)?
}
