//! Announcing a plug's addresses: a gratuitous ARP and, for dual stack, an
//! unsolicited neighbour advertisement, sent from the container or put
//! into the bridge as from its port.

use std::fs::File;
use std::time::Duration;

use crate::arp;
use crate::error::StepError;
use crate::ndp;
use crate::netlink::Netlink;
use crate::netns::run_in_netns;

use super::bridge::BridgeKind;
use super::plugger::Plugger;
use super::spec::PlugSpec;

/// The frames that announce `spec`'s addresses: a gratuitous ARP and, for
/// dual stack, an unsolicited neighbour advertisement.
fn announcement_frames(spec: &PlugSpec) -> Vec<Vec<u8>> {
    let mac = spec.effective_mac().octets();
    let mut frames = vec![arp::gratuitous_arp_frame(mac, spec.address.ip()).to_vec()];
    if let Some(a) = spec.address6 {
        frames.push(ndp::unsolicited_na_frame(mac, a.ip()).to_vec());
    }
    frames
}

/// Sends the gratuitous ARP of `spec` on `ifindex`, then lets `socket` go.
pub(super) fn send_announcement(
    socket: std::os::fd::OwnedFd,
    ifindex: u32,
    spec: &PlugSpec,
) -> std::io::Result<()> {
    let (mac, ip) = (spec.effective_mac().octets(), spec.address.ip());
    // IPv6's equivalent, an unsolicited neighbour advertisement, beside it.
    let na = spec
        .address6
        .map(|a| ndp::unsolicited_na_frame(mac, a.ip()));
    let announce = move |socket: &std::os::fd::OwnedFd| {
        let sent = arp::announce(socket, ifindex, mac, ip);
        match &na {
            Some(frame) => sent.and(arp::send_frame(socket, ifindex, frame)),
            None => sent,
        }
    };
    let sent = announce(&socket);
    // One announcement can be lost while a freshly added port settles in the
    // datapath, and a neighbour that keeps the old MAC of a re-plugged
    // address cannot reach it; so, like arping -U and keepalived, announce
    // twice more, a little later. Closing a packet socket also waits for an
    // RCU grace period (~10 ms here): the same throwaway thread does both,
    // instead of the plug.
    if std::thread::Builder::new()
        .name("netplug-garp".into())
        .spawn(move || {
            for pause in [Duration::from_millis(50), Duration::from_millis(200)] {
                std::thread::sleep(pause);
                let _ = announce(&socket);
            }
            drop(socket);
        })
        .is_err()
    {
        tracing::debug!("no thread for the repeated announcements; closed the ARP socket in line");
    }
    sent
}

impl Plugger {
    /// Whether the announcement goes through OVS (see
    /// [`Plugger::short_lived`]); a DAD probe needs the packet socket anyway.
    pub(super) fn injects_announcements(&self, kind: BridgeKind, spec: &PlugSpec) -> bool {
        self.short_lived && kind == BridgeKind::Ovs && spec.probe.is_none()
    }

    /// Announces `spec`'s addresses as OpenFlow port `ofport` of its bridge.
    pub(super) async fn inject_announcement(
        &self,
        spec: &PlugSpec,
        ofport: u32,
    ) -> Result<(), StepError> {
        let frames = announcement_frames(spec);
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        Ok(self.ovs.inject(&spec.bridge, ofport, &frames).await?)
    }

    pub(super) async fn announce(
        &self,
        netns: &File,
        inner: &Netlink,
        kind: BridgeKind,
        spec: &PlugSpec,
        host_name: &str,
    ) -> Result<(), StepError> {
        if self.injects_announcements(kind, spec) {
            let ofport = self.ovs.ofport(host_name).await?;
            return self.inject_announcement(spec, ofport).await;
        }
        let (link, socket) = tokio::join!(
            inner.link_by_name(&spec.iface),
            run_in_netns(netns, arp::open_packet_socket)
        );
        let link = link?.ok_or_else(|| StepError::IfaceNotFound(spec.iface.clone()))?;
        Ok(send_announcement(socket??, link.index, spec)?)
    }
}
