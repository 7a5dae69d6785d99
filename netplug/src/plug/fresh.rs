//! One attempt at a fresh plug: the veth made, the bridge side and the
//! container side configured at once, then the probe, the address and the
//! announcement.

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;

use rtnetlink::packet_route::link::InfoKind;

use crate::arp;
use crate::error::{Step, StepError};
use crate::ethtool;
use crate::ndp;
use crate::netlink::{Netlink, NetlinkError};
use crate::netns::run_in_netns;
use crate::nft;
use crate::ovs::{OfportReservation, OvsError, PortOwner, Settle};
use crate::sysctl;

use super::announce::send_announcement;
use super::bridge::BridgeKind;
use super::plugger::Plugger;
use super::probe::probe;
use super::spec::PlugSpec;

/// The loopback device has this index in every network namespace.
const LOOPBACK_IFINDEX: u32 = 1;

/// What a plug attempt has made so far, which is what its rollback removes.
#[derive(Debug, Default)]
pub(super) struct Created {
    /// The host end's ifindex.
    pub(super) veth: Option<u32>,
    /// The OVS port (named after the host end), or its port-security
    /// rules.
    pub(super) port: bool,
    /// The nftables rules of a Linux bridge port.
    pub(super) nft: bool,
}

/// The sockets a fresh plug uses in the container, opened there while the
/// rest is done: the ARP socket (none when the announcement goes through
/// OVS, see [`Plugger::short_lived`]), the one ethtool needs, and DAD's
/// (only to probe an IPv6 address).
struct Sockets {
    arp: Option<OwnedFd>,
    control: OwnedFd,
    ndp: Option<OwnedFd>,
}

/// Opens the [`Sockets`] in the container's namespace.
async fn open_sockets(netns: &File, inject: bool, dad: bool) -> Result<Sockets, StepError> {
    // No `?` in here: the closure runs inside the container's namespace,
    // and its every path must end where it began.
    let opened = run_in_netns(netns, move || {
        let arp = if inject {
            Ok(None)
        } else {
            arp::open_packet_socket().map(Some)
        };
        arp.and_then(|arp| {
            ethtool::open_control_socket().and_then(|control| {
                let ndp = if dad {
                    ndp::open_packet_socket().map(Some)
                } else {
                    Ok(None)
                };
                ndp.map(|ndp| Sockets { arp, control, ndp })
            })
        })
    })
    .await;
    Ok(opened??)
}

/// What every step of one attempt at a plug works with, in one place
/// rather than passed along argument by argument.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt<'a> {
    /// The host's namespace.
    pub(super) host: &'a Netlink,
    /// The container's namespace, and the file that keeps it.
    pub(super) inner: &'a Netlink,
    pub(super) netns: &'a File,
    pub(super) kind: BridgeKind,
    pub(super) spec: &'a PlugSpec,
    /// The host end's name, and the alias that records its owner.
    pub(super) host_name: &'a str,
    pub(super) alias: &'a str,
}

impl Plugger {
    /// Makes the plug anew; `created` keeps what the rollback must remove.
    pub(super) async fn plug_fresh(
        &self,
        attempt: Attempt<'_>,
        reserved: Option<OfportReservation>,
        created: &mut Created,
    ) -> Result<(), (Step, StepError)> {
        let Attempt {
            kind,
            spec,
            host_name,
            ..
        } = attempt;
        // The rules of an OVS port need only its number, reserved now: they
        // are made while the veth is, and are in place before the port is.
        // Marked made before the bundle: one that committed but whose
        // answer was lost has still made rules.
        if kind == BridgeKind::Ovs {
            created.port = true;
        }
        let (host_end, reservation) = tokio::join!(
            self.make_host_end(attempt, &mut created.veth),
            self.secure_ahead(kind, spec, host_name, reserved),
        );
        let host_index = host_end?;
        let reservation = reservation?;
        let (eth, ofport, sockets) = self
            .configure_both_sides(attempt, host_index, reservation, created)
            .await?;
        // What OVS cached for the old port goes once the new one is in the
        // datapath, which it is now, while the rest is done.
        let forget = async {
            if kind == BridgeKind::Ovs && self.ovs.settle() != Settle::None {
                self.forget_stale_flows(spec).await;
            }
        };
        let (finished, ()) = tokio::join!(
            self.go_live(attempt, host_index, eth, ofport, sockets),
            forget
        );
        finished
    }

    /// The bridge side and the container side at once: they are
    /// independent, so the wait for ovs-vswitchd (the longest step)
    /// overlaps the container's configuration, and the sockets the rest
    /// needs are opened meanwhile. Returns the container interface's
    /// index, the OVS port's OpenFlow number, and the sockets.
    async fn configure_both_sides(
        &self,
        attempt: Attempt<'_>,
        host_index: u32,
        reservation: Option<OfportReservation>,
        created: &mut Created,
    ) -> Result<(u32, Option<u32>, Sockets), (Step, StepError)> {
        let Attempt {
            inner,
            netns,
            kind,
            spec,
            host_name,
            ..
        } = attempt;
        // A DAD probe needs a socket of its own, for IPv6 frames.
        let dad = spec.probe.is_some() && spec.address6.is_some();
        let inject = self.injects_announcements(kind, spec);
        let (bridge_side, container_side, sockets) = tokio::join!(
            self.attach(attempt, host_index, reservation.as_ref(), created),
            self.configure_container_end(netns, inner, spec),
            open_sockets(netns, inject, dad),
        );
        // All ran to their end; the container's failure is reported first,
        // as it is the earlier step.
        let eth = container_side?;
        let given = bridge_side?;
        let ofport = match reservation {
            Some(reservation) => Some(
                self.confirm_port_security(spec, host_name, reservation, given)
                    .await
                    .map_err(|e| (Step::AttachToBridge, e.into()))?,
            ),
            None => None,
        };
        let sockets = sockets.map_err(|e| (Step::ConfigureContainerEnd, e))?;
        Ok((eth, ofport, sockets))
    }

    /// The container's end: IPv6 set up as a plug needs it, lo and the
    /// interface up, and (with no probe to wait for) the address and
    /// routes; returns the interface's index.
    async fn configure_container_end(
        &self,
        netns: &File,
        inner: &Netlink,
        spec: &PlugSpec,
    ) -> Result<u32, (Step, StepError)> {
        if spec.address6.is_some() {
            let iface = spec.iface.clone();
            run_in_netns(netns, move || sysctl::fix_container_ipv6(&iface))
                .await
                .map_err(|e| (Step::ConfigureContainerEnd, StepError::from(e)))?
                .map_err(|e| (Step::ConfigureContainerEnd, StepError::from(e)))?;
        }
        let eth = self.configure_link(inner, spec).await?;
        // With no probe, nobody need be asked first: the address goes
        // on while OVS adds the port. (Frames sent meanwhile are lost
        // as they would be a moment earlier.)
        if spec.probe.is_none() {
            self.configure_address(inner, eth, spec).await?;
        }
        Ok(eth)
    }

    /// With a probe, the port forwards and eth0 is up without its address
    /// yet: no one has learnt it from us, so whoever answers is someone
    /// else. The address goes on once no one did. Hands back the ARP
    /// socket for the announcement.
    async fn probe_then_address(
        &self,
        attempt: Attempt<'_>,
        eth: u32,
        socket: Option<OwnedFd>,
        ndp_socket: Option<OwnedFd>,
    ) -> Result<Option<OwnedFd>, (Step, StepError)> {
        let Attempt { inner, spec, .. } = attempt;
        let (socket, answered) = match (spec.probe, socket) {
            (Some(window), Some(socket)) => {
                let (socket, answered) = probe(socket, ndp_socket, eth, spec, window)
                    .await
                    .map_err(|e| (Step::Probe, e))?;
                (Some(socket), answered)
            }
            (_, socket) => (socket, None),
        };
        if let Some((addr, mac)) = answered {
            return Err((Step::Probe, StepError::AddressAnswered { addr, mac }));
        }
        if spec.probe.is_some() {
            self.configure_address(inner, eth, spec).await?;
        }
        Ok(socket)
    }

    /// The last steps, once both sides are configured: the probe (see
    /// [`Self::probe_then_address`]), the host end up once more, the
    /// checksum offload off, and the announcement.
    async fn go_live(
        &self,
        attempt: Attempt<'_>,
        host_index: u32,
        eth: u32,
        ofport: Option<u32>,
        sockets: Sockets,
    ) -> Result<(), (Step, StepError)> {
        let Attempt {
            host, kind, spec, ..
        } = attempt;
        let Sockets { arp, control, ndp } = sockets;
        let socket = self.probe_then_address(attempt, eth, arp, ndp).await?;
        let up = async {
            if kind == BridgeKind::Ovs {
                // Up once more, now that ovs-vswitchd has the port: when
                // it still held a netdev of this name (a port whose veth
                // vanished with its netns, as after a dockerd restart),
                // it set promiscuous mode from the flags cached for that
                // one, which were down (seen: every re-plug after a
                // dockerd restart DOWN).
                host.set_up(host_index)
                    .await
                    .map_err(|e| (Step::ConfigureHostEnd, StepError::from(e)))?;
            }
            Ok(())
        };
        // See `ethtool`: without this, TCP and UDP from the container are
        // dropped on an OVS userspace datapath.
        let tx_checksum = || {
            ethtool::set_tx_checksum(&control, &spec.iface, false)
                .map_err(|e| (Step::ConfigureContainerEnd, e.into()))
        };
        match (socket, ofport) {
            // Sent from the container, the announcement crosses the
            // veth, which forwards nothing until the host end is up.
            (Some(socket), _) => {
                up.await?;
                tx_checksum()?;
                send_announcement(socket, eth, spec).map_err(|e| (Step::Announce, e.into()))?;
            }
            // Put into the bridge, it needs neither: all three at once.
            (None, Some(ofport)) => {
                let inject = async {
                    self.inject_announcement(spec, ofport)
                        .await
                        .map_err(|e| (Step::Announce, e))
                };
                let (up, injected, checksum) = tokio::join!(up, inject, async { tx_checksum() });
                up?;
                checksum?;
                injected?;
            }
            (None, None) => return Err((Step::Announce, StepError::NoWayToAnnounce)),
        }
        Ok(())
    }

    /// Makes the veth, its peer born in the container, and brings the host
    /// end up; returns the host end's index, which `made` records as soon
    /// as it exists.
    async fn make_host_end(
        &self,
        attempt: Attempt<'_>,
        made: &mut Option<u32>,
    ) -> Result<u32, (Step, StepError)> {
        let Attempt {
            host,
            inner,
            netns,
            spec,
            host_name,
            alias,
            ..
        } = attempt;
        let at = |step: Step| move |e: NetlinkError| (step, StepError::from(e));
        let create = || {
            host.create_veth_into(
                host_name,
                &spec.iface,
                netns,
                spec.effective_mac().octets(),
                spec.mtu,
            )
        };
        match create().await {
            Ok(()) => {}
            // The container's end of an earlier plug (ours or ovs-docker's)
            // holds the name: a veth there is a leftover, anything else is
            // not ours to remove. Looked at only now, to spare the common
            // case a round trip.
            Err(e) if e.errno() == Some(libc::EEXIST) => {
                // The host end's name, free when it was chosen, is taken.
                if host
                    .link_by_name(host_name)
                    .await
                    .map_err(at(Step::CreateVeth))?
                    .is_some()
                {
                    return Err((
                        Step::CreateVeth,
                        StepError::NameTakenMeanwhile(host_name.to_string()),
                    ));
                }
                match inner.link_by_name(&spec.iface).await {
                    Ok(Some(old)) if old.kind == Some(InfoKind::Veth) => {
                        inner
                            .del_link(old.index)
                            .await
                            .map_err(at(Step::RemoveStale))?;
                        create().await.map_err(at(Step::CreateVeth))?;
                    }
                    _ => return Err(at(Step::CreateVeth)(e)),
                }
            }
            Err(e) => return Err(at(Step::CreateVeth)(e)),
        }
        let host_end = host
            .link_by_name(host_name)
            .await
            .map_err(at(Step::CreateVeth))?
            .ok_or((Step::CreateVeth, StepError::HostEndVanished))?;
        *made = Some(host_end.index);
        // Before the link goes up, so the host's stack never treats it as
        // one of its interfaces. Only a safeguard: where /proc/sys is
        // read-only (a server in a container) the plug goes on without it.
        if let Err(e) = sysctl::isolate_host_end(host_name) {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                tracing::warn!(error = %e, "cannot keep host ends out of the host's IP stack");
            });
        }
        // The host end goes up before OVS attaches it: ovs-vswitchd sets
        // promiscuous mode by writing back the flags it cached, and an "up"
        // that lands in between is lost (seen under load: port DOWN). The
        // alias records whose plug this is (see `host_ifname_candidates`).
        host.set_up_with_alias(host_end.index, alias)
            .await
            .map_err(at(Step::ConfigureHostEnd))?;
        Ok(host_end.index)
    }

    /// Puts the host end on the bridge, its port-security rules first, so
    /// that its first frame already meets them (an OVS port's were set by
    /// [`Plugger::secure_ahead`] for the number `reservation` holds);
    /// `created` says what may exist now. Returns the OpenFlow number the
    /// port got, when OVS was waited for.
    async fn attach(
        &self,
        attempt: Attempt<'_>,
        host_index: u32,
        reservation: Option<&OfportReservation>,
        created: &mut Created,
    ) -> Result<Option<u32>, (Step, StepError)> {
        let Attempt {
            host,
            kind,
            spec,
            host_name,
            ..
        } = attempt;
        let at = |e: NetlinkError| (Step::AttachToBridge, StepError::from(e));
        let ovs_err = |e: OvsError| (Step::AttachToBridge, StepError::from(e));
        match kind {
            BridgeKind::Ovs => {
                let owner = PortOwner {
                    container: spec.owner.name.clone(),
                    iface: spec.iface.clone(),
                    full_id: spec.owner.full_id.clone(),
                };
                self.ovs
                    .add_port_numbered(
                        &spec.bridge,
                        host_name,
                        &owner,
                        spec.vlan,
                        reservation.map(OfportReservation::number),
                    )
                    .await
                    .map_err(ovs_err)
            }
            BridgeKind::Linux => {
                let bridge = host.link_by_name(&spec.bridge).await.map_err(at)?.ok_or((
                    Step::AttachToBridge,
                    StepError::BridgeVanished(spec.bridge.clone()),
                ))?;
                created.nft = true;
                nft::secure_port(
                    host_name,
                    spec.effective_mac(),
                    &spec.permitted_sources(),
                    spec.address6.map(|a| a.ip()),
                )
                .await
                .map_err(|e| (Step::AttachToBridge, e.into()))?;
                host.set_controller(host_index, bridge.index)
                    .await
                    .map_err(at)?;
                Ok(None)
            }
        }
    }

    /// lo and the interface up; returns the interface's index.
    async fn configure_link(
        &self,
        inner: &Netlink,
        spec: &PlugSpec,
    ) -> Result<u32, (Step, StepError)> {
        let at = |step: Step| move |e: NetlinkError| (step, StepError::from(e));
        let eth = inner
            .link_by_name(&spec.iface)
            .await
            .map_err(at(Step::ConfigureContainerEnd))?
            .ok_or((
                Step::ConfigureContainerEnd,
                StepError::IfaceNotFound(spec.iface.clone()),
            ))?;
        inner
            .set_up(LOOPBACK_IFINDEX)
            .await
            .map_err(at(Step::ConfigureContainerEnd))?;
        inner
            .set_up(eth.index)
            .await
            .map_err(at(Step::ConfigureContainerEnd))?;
        Ok(eth.index)
    }

    /// The interface's address and routes.
    async fn configure_address(
        &self,
        inner: &Netlink,
        eth: u32,
        spec: &PlugSpec,
    ) -> Result<(), (Step, StepError)> {
        let at = |step: Step| move |e: NetlinkError| (step, StepError::from(e));
        // The kernel would happily put the address on a second interface;
        // two interfaces answering for one address is never what a static
        // plan means, so it is refused.
        for (index, ip, _) in inner
            .all_addrs::<Ipv4Addr>()
            .await
            .map_err(at(Step::AddAddress))?
        {
            if ip == spec.address.ip() && index != eth {
                let iface = match inner.link_by_index(index).await {
                    Ok(Some(link)) => link.name,
                    _ => format!("#{index}"),
                };
                return Err((
                    Step::AddAddress,
                    StepError::AddressInUse { addr: ip, iface },
                ));
            }
        }
        inner
            .add_addr(eth, spec.address.ip(), spec.address.prefix())
            .await
            .map_err(at(Step::AddAddress))?;
        if let Some(gw) = spec.gateway {
            if !spec.address.contains(gw) {
                inner
                    .add_link_route(eth, gw)
                    .await
                    .map_err(at(Step::AddRoute))?;
            }
            inner
                .add_default_route(eth, gw)
                .await
                .map_err(at(Step::AddRoute))?;
        }
        if let Some(a6) = spec.address6 {
            inner
                .add_addr(eth, a6.ip(), a6.prefix())
                .await
                .map_err(at(Step::AddAddress))?;
            if let Some(gw6) = spec.gateway6 {
                inner
                    .add_default_route(eth, gw6)
                    .await
                    .map_err(at(Step::AddRoute))?;
            }
        }
        Ok(())
    }
}
