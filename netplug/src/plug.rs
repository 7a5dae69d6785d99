//! What a plug is (its spec, its owner, its result, the kinds of bridge)
//! and the [`Plugger`] that plugs a container's network namespace into a
//! bridge, all or nothing, and unplugs it again.

use std::fs::File;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnetwork::{Ipv4Network, Ipv6Network};
use rtnetlink::packet_route::link::InfoKind;

use crate::arp;
use crate::error::{PlugError, Step, StepError, TeardownError, UnplugError};
use crate::ethtool;
use crate::hostend::{
    HOST_NAME_CANDIDATES, choose_host_name, host_ifname, host_ifname_candidates, is_owner,
    links_named, owner_alias, sort_holders, unmarked_first_is_ours,
};
use crate::mac::Mac;
use crate::ndp;
use crate::netlink::{Deleter, LinkInfoSummary, Netlink, NetlinkError};
use crate::netns::{NetnsTarget, run_in_netns};
use crate::nft;
use crate::ovs::{OfportReservation, Ovs, OvsError, PortOwner, Settle};
use crate::sysctl;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeKind {
    Ovs,
    Linux,
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
fn send_announcement(
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

/// The loopback device has this index in every network namespace.
const LOOPBACK_IFINDEX: u32 = 1;

/// What was found on a container's interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub addresses: Vec<Ipv4Network>,
    pub mac: Option<Mac>,
    pub gateway: Option<Ipv4Addr>,
    /// Global (non-link-local) IPv6 addresses.
    pub addresses6: Vec<Ipv6Network>,
    pub gateway6: Option<Ipv6Addr>,
}

/// What a plug attempt has made so far, which is what its rollback removes.
#[derive(Debug, Default)]
struct Created {
    /// The host end's ifindex.
    veth: Option<u32>,
    /// The OVS port (named after the host end), or its port-security
    /// rules.
    port: bool,
    /// The nftables rules of a Linux bridge port.
    nft: bool,
}

/// What every step of one attempt at a plug works with, in one place
/// rather than passed along argument by argument.
#[derive(Debug, Clone, Copy)]
struct Attempt<'a> {
    /// The host's namespace.
    host: &'a Netlink,
    /// The container's namespace, and the file that keeps it.
    inner: &'a Netlink,
    netns: &'a File,
    kind: BridgeKind,
    spec: &'a PlugSpec,
    /// The host end's name, and the alias that records its owner.
    host_name: &'a str,
    alias: &'a str,
}

/// The kind of `bridge`, from its link here (`link`) and whether OVS has
/// it (`in_ovs`): a Linux bridge is one whatever OVS says. `Err(None)`: no
/// such bridge.
fn bridge_kind_of(
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
        Err(e) => Err(Some(StepError::Other(format!(
            "bridge {bridge} is no Linux bridge, and Open vSwitch cannot be asked: {e}"
        )))),
    }
}

/// Plugs and unplugs containers on one host: its own namespace and its OVS.
#[derive(Debug)]
pub struct Plugger {
    ovs: Ovs,
    /// See [`Plugger::short_lived`].
    short_lived: bool,
    /// See [`Plugger::prepare`].
    ahead: std::sync::Mutex<Option<Ahead>>,
}

/// What the next plug onto `bridge` would look up first, looked up by
/// [`Plugger::prepare`].
#[derive(Debug)]
struct Ahead {
    bridge: String,
    kind: BridgeKind,
    /// An OVS port's number, for its rules (see `secure_ahead`).
    reservation: Option<OfportReservation>,
}

impl Plugger {
    pub fn new(ovs: Ovs) -> Self {
        Plugger {
            ovs,
            short_lived: false,
            ahead: std::sync::Mutex::new(None),
        }
    }

    /// For a process about to plug onto `bridge` that has something else
    /// to wait for first (the CLI's inspect of the container): does,
    /// meanwhile, what the plug would do first and that does not depend on
    /// the container. OVSDB is connected and what other processes left
    /// pending is waited for (see [`Ovs::prepare`]), the bridge's kind is
    /// looked up, and an OVS port's number reserved; the next
    /// [`Plugger::plug`] onto `bridge` uses them. Whatever fails here is
    /// done again, and reported, by the plug.
    pub async fn prepare(&self, bridge: &str) {
        let Ok(host) = Netlink::current() else {
            return;
        };
        let (link, in_ovs) =
            tokio::join!(host.link_by_name(bridge), self.ovs.prepare_to_add(bridge));
        let (in_ovs, reservation) = match in_ovs {
            Ok((datapath, reservation)) => (Ok(datapath.is_some()), Some(reservation)),
            Err(e) => (Err(e), None),
        };
        let Ok(kind) = bridge_kind_of(bridge, link, in_ovs) else {
            return;
        };
        let reservation = reservation.filter(|_| kind == BridgeKind::Ovs);
        *self.ahead() = Some(Ahead {
            bridge: bridge.to_string(),
            kind,
            reservation,
        });
    }

    fn ahead(&self) -> std::sync::MutexGuard<'_, Option<Ahead>> {
        self.ahead.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// For a process that exits as soon as its plugs are done (the CLI),
    /// which the kernel would otherwise hold at its exit for RCU grace
    /// periods (~20 ms each on a 250 Hz kernel) that a long-lived process
    /// pays off its critical path:
    ///
    /// - on OVS, the announcement is put into the bridge as from the port
    ///   (OpenFlow packet-out) instead of being sent from a packet socket
    ///   in the container, whose closing waits for a grace period; a
    ///   process that exits cannot repeat it later anyway;
    /// - a veth is deleted by a child process, which waits out the
    ///   kernel's RCU barrier after this one has gone; the deletion itself
    ///   is done (the link unlisted, the container's end gone) when
    ///   [`Plugger::unplug`] returns, and a failure is still reported.
    pub fn short_lived(mut self) -> Self {
        self.short_lived = true;
        self
    }

    pub fn ovs(&self) -> &Ovs {
        &self.ovs
    }

    pub async fn bridge_kind(&self, host: &Netlink, bridge: &str) -> Result<BridgeKind, PlugError> {
        // Both asked at once; OVS's answer is wasted on a Linux bridge, but
        // costs less than waiting for the kernel's first.
        let (link, in_ovs) =
            tokio::join!(host.link_by_name(bridge), self.ovs.bridge_exists(bridge));
        bridge_kind_of(bridge, link, in_ovs).map_err(|e| match e {
            None => PlugError::NoBridge {
                bridge: bridge.to_string(),
            },
            Some(source) => PlugError::Step {
                container: String::new(),
                step: Step::FindBridge,
                source,
            },
        })
    }

    /// Plugs `spec.iface` into the namespace of `target`. On any failure
    /// everything this call created is removed again.
    pub async fn plug(&self, target: &NetnsTarget, spec: &PlugSpec) -> Result<Plugged, PlugError> {
        let container = spec.owner.name.clone();
        let fail = |step: Step| {
            let container = container.clone();
            move |e: StepError| PlugError::Step {
                container,
                step,
                source: e,
            }
        };
        let host = Netlink::current().map_err(|e| fail(Step::ConfigureHostEnd)(e.into()))?;
        let netns = target.open().map_err(|e| fail(Step::OpenNetns)(e.into()))?;
        // A container with the host's network (or a pid that is the
        // host's) would have eth0 and the address moved onto the host.
        if same_netns_as_ours(&netns) {
            return Err(fail(Step::OpenNetns)(StepError::HostNetns));
        }
        let candidates = host_ifname_candidates(&spec.owner.name, &spec.iface);
        let alias = owner_alias(&spec.owner.name, &spec.iface);
        let ahead = self.ahead().take().filter(|a| a.bridge == spec.bridge);
        // Independent look-ups, each a round trip to the kernel, a thread
        // or ovsdb-server: all at once.
        let (kind, inner, mut names) = tokio::join!(
            async {
                match &ahead {
                    Some(ahead) => Ok(ahead.kind),
                    None => self.bridge_kind(&host, &spec.bridge).await,
                }
            },
            Netlink::in_netns(&netns),
            self.names_in_use(&host, spec, &candidates),
        );
        let mut reserved = ahead.and_then(|a| a.reservation);
        let kind = kind.map_err(|e| match e {
            PlugError::Step { step, source, .. } => PlugError::Step {
                container: container.clone(),
                step,
                source,
            },
            other => other,
        })?;
        let inner = inner.map_err(|e| fail(Step::OpenNetns)(e.into()))?;
        if kind == BridgeKind::Linux
            && let Some(vlan) = spec.vlan
        {
            // Refused rather than silently ignored: netplug does not tag
            // Linux bridge ports.
            return Err(fail(Step::FindBridge)(StepError::Other(format!(
                "vlan {vlan} needs an Open vSwitch bridge: {} is a Linux bridge, whose ports netplug does not tag",
                spec.bridge
            ))));
        }
        // Two containers whose names hash alike, plugged at once, may both
        // pick the same free name; the one that finds it taken when it
        // creates its veth picks again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (found, ports) = names;
            let found = found.map_err(|e| fail(Step::NameHostEnd)(e.into()))?;
            let unmarked_first_is_ours = unmarked_first_is_ours(&inner, &spec.iface, &found)
                .await
                .map_err(|e| fail(Step::NameHostEnd)(e.into()))?;
            let chosen = choose_host_name(&found, &alias, unmarked_first_is_ours)
                .map_err(|holders| fail(Step::NameHostEnd)(StepError::NamesTaken(holders)))?;
            let host_name = chosen.name.clone();

            if let Some(existing) = &chosen.existing {
                if chosen.leftovers.is_empty()
                    && self
                        .matches(&host, &inner, existing.index, kind, spec)
                        .await
                        .unwrap_or(false)
                    && self.secure_existing(kind, spec, &host_name).await.is_ok()
                {
                    self.announce(&netns, &inner, kind, spec, &host_name)
                        .await
                        .ok();
                    return Ok(Plugged {
                        host_ifname: host_name,
                        mac: spec.effective_mac(),
                        bridge_kind: kind,
                        changed: false,
                    });
                }
                tracing::info!(container = %container, port = %host_name, "replacing stale or different plug");
            }
            // Leftovers of an earlier run (the container's old netns is gone,
            // the spec changed, or ovs-docker plugged it): remove them before
            // plugging anew, or they would block the name or keep an OVS port
            // that forwards nowhere. ovs-docker names its veth like its port.
            // A port of the chosen name goes whoever owns it, as no live link
            // has that name but ours; names held by others are never touched.
            let ports = match ports {
                Ok(ports) => ports,
                Err(e) if kind == BridgeKind::Linux && e.is_unreachable() => Vec::new(),
                Err(e) => return Err(fail(Step::RemoveStale)(e.into())),
            };
            let mut stale: Vec<String> = ports
                .into_iter()
                .filter(|(name, owner)| {
                    !chosen.others.contains(name)
                        && (*name == host_name
                            || is_owner(owner.as_ref(), &spec.owner.name, &spec.iface))
                })
                .map(|(name, _)| name)
                .collect();
            stale.extend(chosen.leftovers.iter().cloned());
            if chosen.existing.is_some() {
                stale.push(host_name.clone());
            }
            stale.sort();
            stale.dedup();
            let errors = self.remove_all(&host, &stale).await;
            if !errors.is_empty() {
                return Err(fail(Step::RemoveStale)(StepError::Teardown(errors)));
            }

            let mut created = Created::default();
            let attempt = Attempt {
                host: &host,
                inner: &inner,
                netns: &netns,
                kind,
                spec,
                host_name: &host_name,
                alias: &alias,
            };
            let result = self
                .plug_fresh(attempt, reserved.take(), &mut created)
                .await;
            match result {
                Ok(()) => {
                    return Ok(Plugged {
                        host_ifname: host_name,
                        mac: spec.effective_mac(),
                        bridge_kind: kind,
                        changed: true,
                    });
                }
                // Nothing was made yet: the veth was what failed.
                Err((Step::CreateVeth, StepError::NameTakenMeanwhile(_)))
                    if attempts < HOST_NAME_CANDIDATES =>
                {
                    tracing::info!(container = %container, port = %host_name, "host end name taken meanwhile; picking again");
                    names = self.names_in_use(&host, spec, &candidates).await;
                }
                Err((step, source)) => {
                    return Err(self
                        .roll_back(&host, &container, &host_name, created, step, source)
                        .await);
                }
            }
        }
    }

    /// The host's links under each candidate name, and the OVS ports that
    /// concern the plug, looked up at once.
    async fn names_in_use(
        &self,
        host: &Netlink,
        spec: &PlugSpec,
        candidates: &[String],
    ) -> (
        Result<Vec<(String, Option<LinkInfoSummary>)>, NetlinkError>,
        Result<Vec<(String, Option<PortOwner>)>, OvsError>,
    ) {
        tokio::join!(
            links_named(host, candidates),
            self.ovs
                .ports_for(&spec.owner.name, &spec.iface, candidates),
        )
    }

    /// Removes what a failed plug attempt made, and says what failed.
    async fn roll_back(
        &self,
        host: &Netlink,
        container: &str,
        host_name: &str,
        created: Created,
        step: Step,
        source: StepError,
    ) -> PlugError {
        let mut rollback = Vec::new();
        if created.nft
            && let Err(e) = nft::clear_port(host_name).await
        {
            tracing::warn!(port = %host_name, error = %e, "cannot remove the port-security rules of a failed plug");
        }
        if created.port
            && let Err(e) = self.ovs.clear_port_security(host_name).await
        {
            tracing::warn!(port = %host_name, error = %e, "cannot remove the port-security rules of a failed plug");
        }
        if created.port
            && let Err(source) = self.ovs.del_port(host_name).await
        {
            rollback.push(TeardownError::DelPort {
                port: host_name.to_string(),
                source,
            });
        }
        // Only the veth this attempt made goes, by index: a link that merely
        // has one of our names (say, the one that made create_veth fail) is
        // not ours. Deleting the host end takes the peer with it, wherever
        // the peer is by now.
        if let Some(index) = created.veth
            && let Err(source) = host.del_link(index).await
            && source.errno() != Some(libc::ENODEV)
        {
            rollback.push(TeardownError::DelLink {
                name: host_name.to_string(),
                source,
            });
        }
        let container = container.to_string();
        if rollback.is_empty() {
            PlugError::Step {
                container,
                step,
                source,
            }
        } else {
            PlugError::RollbackFailed {
                container,
                step,
                source,
                rollback,
            }
        }
    }

    /// Makes the plug anew; `created` keeps what the rollback must remove.
    async fn plug_fresh(
        &self,
        attempt: Attempt<'_>,
        reserved: Option<OfportReservation>,
        created: &mut Created,
    ) -> Result<(), (Step, StepError)> {
        let Attempt {
            host,
            inner,
            netns,
            kind,
            spec,
            host_name,
            ..
        } = attempt;
        let at = |step: Step| move |e: NetlinkError| (step, StepError::from(e));
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
        // The bridge side and the container side are independent: the
        // wait for ovs-vswitchd (the longest step) overlaps the container's
        // configuration, and the sockets it needs are opened meanwhile.
        // A DAD probe needs a socket of its own, for IPv6 frames.
        let dad = spec.probe.is_some() && spec.address6.is_some();
        let inject = self.injects_announcements(kind, spec);
        let container_side = async {
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
        };
        let (bridge_side, container_side, socket) = tokio::join!(
            self.attach(attempt, host_index, reservation.as_ref(), created),
            container_side,
            // No `?` in here: the closure runs inside the container's
            // namespace, and its every path must end where it began.
            run_in_netns(netns, move || {
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
                        ndp.map(|ndp| (arp, control, ndp))
                    })
                })
            }),
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
        let (socket, control, ndp_socket) = socket
            .map_err(StepError::from)
            .and_then(|s| s.map_err(StepError::from))
            .map_err(|e| (Step::ConfigureContainerEnd, e))?;
        // What OVS cached for the old port goes once the new one is in the
        // datapath, which it is now, while the rest is done.
        let forget = async {
            if kind == BridgeKind::Ovs && self.ovs.settle() != Settle::None {
                self.forget_stale_flows(spec).await;
            }
        };
        let finish = async {
            // With a probe, the port forwards and eth0 is up without its
            // address yet: no one has learnt it from us, so whoever answers
            // is someone else.
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
                        .map_err(at(Step::ConfigureHostEnd))?;
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
                    let (up, injected, checksum) =
                        tokio::join!(up, inject, async { tx_checksum() });
                    up?;
                    checksum?;
                    injected?;
                }
                (None, None) => {
                    return Err((
                        Step::Announce,
                        StepError::Other("no way to announce the address".into()),
                    ));
                }
            }
            Ok(())
        };
        let (finished, ()) = tokio::join!(finish, forget);
        finished
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
            .ok_or((
                Step::CreateVeth,
                StepError::Other("host end vanished".into()),
            ))?;
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

    /// For an OVS port: reserves its OpenFlow number (unless `reserved`
    /// holds one already) and sets the port's rules for it, before the
    /// port exists. Nothing for a Linux bridge, whose rules name the port.
    async fn secure_ahead(
        &self,
        kind: BridgeKind,
        spec: &PlugSpec,
        host_name: &str,
        reserved: Option<OfportReservation>,
    ) -> Result<Option<OfportReservation>, (Step, StepError)> {
        if kind != BridgeKind::Ovs {
            return Ok(None);
        }
        let ovs_err = |e: OvsError| (Step::AttachToBridge, StepError::from(e));
        let reservation = match reserved {
            Some(reservation) => reservation,
            None => self.ovs.reserve_ofport().await.map_err(ovs_err)?,
        };
        self.secure_port(spec, host_name, reservation.number())
            .await
            .map_err(ovs_err)?;
        Ok(Some(reservation))
    }

    /// Whether the announcement goes through OVS (see
    /// [`Plugger::short_lived`]); a DAD probe needs the packet socket anyway.
    fn injects_announcements(&self, kind: BridgeKind, spec: &PlugSpec) -> bool {
        self.short_lived && kind == BridgeKind::Ovs && spec.probe.is_none()
    }

    /// Announces `spec`'s addresses as OpenFlow port `ofport` of its bridge.
    async fn inject_announcement(&self, spec: &PlugSpec, ofport: u32) -> Result<(), StepError> {
        let frames = announcement_frames(spec);
        let frames: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        Ok(self.ovs.inject(&spec.bridge, ofport, &frames).await?)
    }

    /// Sets the port-security rules of the OVS port `host_name` for its
    /// OpenFlow port `ofport`, as [`Ovs::set_port_security`] describes.
    async fn secure_port(
        &self,
        spec: &PlugSpec,
        host_name: &str,
        ofport: u32,
    ) -> Result<(), OvsError> {
        self.ovs
            .set_port_security(
                &spec.bridge,
                host_name,
                ofport,
                spec.effective_mac(),
                &spec.permitted_sources(),
                spec.address6.map(|a| a.ip()),
            )
            .await
    }

    /// Sets again the port-security rules of a plug that is already there
    /// (they may be gone: ovs-vswitchd restarted, or an older netplug made
    /// the plug).
    async fn secure_existing(
        &self,
        kind: BridgeKind,
        spec: &PlugSpec,
        host_name: &str,
    ) -> Result<(), StepError> {
        match kind {
            BridgeKind::Ovs => {
                let ofport = self.ovs.ofport(host_name).await?;
                Ok(self.secure_port(spec, host_name, ofport).await?)
            }
            BridgeKind::Linux => Ok(nft::secure_port(
                host_name,
                spec.effective_mac(),
                &spec.permitted_sources(),
                spec.address6.map(|a| a.ip()),
            )
            .await?),
        }
    }

    /// The rules of a new OVS port were set for the number it asked for;
    /// should ovs-vswitchd have given it another (`given`, when known: a
    /// process took that number meanwhile), they are set for the number it
    /// has; returns the number.
    async fn confirm_port_security(
        &self,
        spec: &PlugSpec,
        host_name: &str,
        reservation: OfportReservation,
        given: Option<u32>,
    ) -> Result<u32, OvsError> {
        let ofport = match given {
            Some(n) => n,
            None => self.ovs.ofport(host_name).await?,
        };
        if ofport != reservation.number() {
            tracing::warn!(port = %host_name, asked = reservation.number(), got = ofport, "OpenFlow port number taken meanwhile; port security set afresh");
            self.secure_port(spec, host_name, ofport).await?;
        }
        Ok(ofport)
    }

    /// Drops what OVS cached for frames to the container's MAC while it had
    /// no port (see [`Ovs::forget_flows_to`]). Without it a re-plugged
    /// container misses what is sent to it for a few ms; that is all a
    /// failure costs, so it is logged, never fatal.
    async fn forget_stale_flows(&self, spec: &PlugSpec) {
        match self
            .ovs
            .forget_flows_to(&spec.bridge, spec.effective_mac())
            .await
        {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(container = %spec.owner.name, flows = n, "forgot flows cached for the old port");
            }
            Err(e) => {
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(error = %e, "cannot clear the flows OVS cached for re-plugged containers; they may miss a few ms of traffic");
                });
            }
        }
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
                    StepError::Other(format!("bridge {} vanished", spec.bridge)),
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
                StepError::Other(format!("{} not found in the container", spec.iface)),
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
        for (index, ip, _) in inner.all_addrs().await.map_err(at(Step::AddAddress))? {
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
                .add_addr6(eth, a6.ip(), a6.prefix())
                .await
                .map_err(at(Step::AddAddress))?;
            if let Some(gw6) = spec.gateway6 {
                inner
                    .add_default_route6(eth, gw6)
                    .await
                    .map_err(at(Step::AddRoute))?;
            }
        }
        Ok(())
    }

    async fn announce(
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
        let link = link?.ok_or_else(|| StepError::Other(format!("{} not found", spec.iface)))?;
        Ok(send_announcement(socket??, link.index, spec)?)
    }

    /// True when the existing host end `host_index` is the peer of the
    /// container's interface and everything matches `spec`.
    async fn matches(
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
        let addrs = inner.addrs(eth.index).await?;
        if addrs != vec![(spec.address.ip(), spec.address.prefix())] {
            return Ok(false);
        }
        if spec.gateway.is_some() && inner.default_gateway().await? != spec.gateway {
            return Ok(false);
        }
        // An IPv4-only spec does not look at IPv6: a change of that is a
        // new spec (a recreate), not a re-plug.
        if let Some(a6) = spec.address6
            && inner.addrs6(eth.index).await? != vec![(a6.ip(), a6.prefix())]
        {
            return Ok(false);
        }
        if spec.gateway6.is_some() && inner.default_gateway6().await? != spec.gateway6 {
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

    /// Removes the OVS port, its rules and the host end of veth
    /// `host_name`, gathering every error. A link of that name that is not
    /// a veth is left alone: it is not a plug.
    ///
    /// The host end goes down first: a veth drops what its peer sends while
    /// it is down, so from then on nothing the container sends reaches the
    /// bridge, and the veth, the rules and the port can go at once (the
    /// rules only before the port, whose removal from the datapath stalls
    /// ovs-vswitchd for an RCU grace period (see `Settle`), and the rules'
    /// removal would wait behind it). Should the host end not go down, the
    /// veth goes first, so that its rules never go while it can still send.
    async fn remove_host_side(
        &self,
        host: &Netlink,
        host_name: &str,
    ) -> Result<(), Vec<TeardownError>> {
        let flows = async {
            // Port security rules left behind would keep dropping what
            // comes in on the port number, whichever port gets it next; a
            // plug replaces those of its number anyway, so this is no error.
            if let Err(e) = self.ovs.clear_port_security(host_name).await
                && !e.is_unreachable()
            {
                tracing::warn!(port = %host_name, error = %e, "cannot remove the port-security rules");
            }
        };
        let rules_then_port = async {
            flows.await;
            match self.ovs.del_port(host_name).await {
                Err(source) if !source.is_unreachable() => Some(TeardownError::DelPort {
                    port: host_name.to_string(),
                    source,
                }),
                _ => None,
            }
        };
        let mut errors = Vec::new();
        let link = match host.link_by_name(host_name).await {
            Ok(Some(link)) if link.kind == Some(InfoKind::Veth) => Some(link),
            Ok(_) => None,
            Err(e) => {
                errors.push(TeardownError::FindLinks(e));
                None
            }
        };
        // ENODEV: the kernel got there first, tearing down the peer's
        // namespace; the veth is gone, so nothing can send.
        let quiet = match &link {
            Some(link) => match host.set_down(link.index).await {
                Ok(()) => true,
                Err(e) => e.errno() == Some(libc::ENODEV),
            },
            None => true,
        };
        let veth = async {
            let mut errors = Vec::new();
            let Some(link) = link else {
                return errors;
            };
            let on_linux_bridge = match link.controller {
                Some(index) => matches!(host.link_by_index(index).await,
                        Ok(Some(c)) if c.kind == Some(InfoKind::Bridge)),
                None => false,
            };
            let deleter = if self.short_lived {
                Deleter::Child
            } else {
                Deleter::Thread
            };
            match host.del_link_by(link.index, deleter).await {
                Err(source) if source.errno() != Some(libc::ENODEV) => {
                    errors.push(TeardownError::DelLink {
                        name: host_name.to_string(),
                        source,
                    });
                }
                _ => {}
            }
            // After the link, never before: the port is not to forward
            // unfiltered for a moment.
            if on_linux_bridge && let Err(source) = nft::clear_port(host_name).await {
                errors.push(TeardownError::ClearRules {
                    port: host_name.to_string(),
                    source,
                });
            }
            errors
        };
        let (veth, port) = if quiet {
            tokio::join!(veth, rules_then_port)
        } else {
            let veth = veth.await;
            (veth, rules_then_port.await)
        };
        errors.extend(veth);
        errors.extend(port);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// [`Self::remove_host_side`] of every port at once; all errors.
    async fn remove_all(&self, host: &Netlink, ports: &[String]) -> Vec<TeardownError> {
        futures::future::join_all(ports.iter().map(|p| self.remove_host_side(host, p)))
            .await
            .into_iter()
            .filter_map(Result::err)
            .flatten()
            .collect()
    }

    /// Removes a container's plug: its OVS port (found by owner as ovs-docker
    /// does, and by name) and its veth. Deleting the host end also removes
    /// the peer inside the container. Missing pieces are not errors, and
    /// links and ports of other owners that happen to have one of its
    /// names are left alone.
    pub async fn unplug(&self, container: &str, iface: &str) -> Result<(), UnplugError> {
        self.unplug_found(container, iface).await.map(drop)
    }

    /// [`Plugger::unplug`]; `false` when there was nothing to remove.
    pub async fn unplug_found(&self, container: &str, iface: &str) -> Result<bool, UnplugError> {
        let mut errors = Vec::new();
        let candidates = host_ifname_candidates(container, iface);
        let alias = owner_alias(container, iface);
        let host = match Netlink::current() {
            Ok(host) => host,
            Err(e) => {
                return Err(UnplugError {
                    container: container.to_string(),
                    errors: vec![TeardownError::Connect(e)],
                });
            }
        };
        let (found, ports) = tokio::join!(
            links_named(&host, &candidates),
            self.ovs.ports_for(container, iface, &candidates)
        );
        let (mut ours, mut others) = (Vec::new(), Vec::new());
        match found {
            Ok(found) => {
                // An unmarked veth under the first name is taken to be an
                // earlier netplug's plug of this container. (A colliding
                // container's plug leaves its veth unmarked only for the
                // ~0.1 ms before its alias is set.)
                let holders = sort_holders(&found, &alias, true);
                ours.extend(holders.ours.into_iter().map(|l| l.name));
                others.extend(holders.others.into_iter().map(|(name, _)| name));
            }
            Err(e) => errors.push(TeardownError::FindLinks(e)),
        }
        match ports {
            // A port ovs-docker made is named after its veth too. A port of
            // our first name that records no owner is taken to be ours, as
            // ports made by hand or by old tools carry none.
            Ok(ports) => ours.extend(
                ports
                    .into_iter()
                    .filter(|(name, owner)| {
                        !others.contains(name)
                            && (is_owner(owner.as_ref(), container, iface)
                                || (owner.is_none() && *name == candidates[0]))
                    })
                    .map(|(name, _)| name),
            ),
            Err(e) if e.is_unreachable() => {}
            Err(e) => errors.push(TeardownError::ListPorts(e)),
        }
        ours.sort();
        ours.dedup();
        errors.extend(self.remove_all(&host, &ours).await);
        if errors.is_empty() {
            Ok(!ours.is_empty())
        } else {
            Err(UnplugError {
                container: container.to_string(),
                errors,
            })
        }
    }

    /// Removes every OVS port whose owner `is_alive` says is gone, with its
    /// veth. Returns the ports removed and every error; one port that
    /// cannot be removed does not keep the others.
    pub async fn gc(
        &self,
        is_alive: impl Fn(&PortOwner) -> bool,
    ) -> (Vec<String>, Vec<TeardownError>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        let ports = match self.ovs.owned_ports().await {
            Ok(p) => p,
            Err(e) => return (removed, vec![TeardownError::ListPorts(e)]),
        };
        let host = match Netlink::current() {
            Ok(h) => h,
            Err(e) => return (removed, vec![TeardownError::Connect(e)]),
        };
        for (port, owner) in ports {
            if is_alive(&owner) {
                continue;
            }
            match self.remove_host_side(&host, &port).await {
                Ok(()) => removed.push(port),
                Err(mut errs) => errors.append(&mut errs),
            }
        }
        (removed, errors)
    }

    /// Removes the nftables rules of Linux bridge ports whose host end is
    /// gone (its container's namespace went with it). Rules of a port whose
    /// link cannot be looked up are kept.
    pub async fn gc_bridge_rules(&self) -> (Vec<String>, Vec<TeardownError>) {
        let (mut removed, mut errors) = (Vec::new(), Vec::new());
        let ports = match nft::secured_ports().await {
            Ok(p) => p,
            Err(source) => {
                errors.push(TeardownError::ClearRules {
                    port: "(list)".into(),
                    source,
                });
                return (removed, errors);
            }
        };
        let host = match Netlink::current() {
            Ok(h) => h,
            Err(e) => return (removed, vec![TeardownError::Connect(e)]),
        };
        for port in ports {
            match host.link_by_name(&port).await {
                Ok(None) => match nft::clear_port(&port).await {
                    Ok(()) => removed.push(port),
                    Err(source) => errors.push(TeardownError::ClearRules { port, source }),
                },
                Ok(Some(_)) => {}
                Err(e) => errors.push(TeardownError::FindLinks(e)),
            }
        }
        (removed, errors)
    }

    /// Reads what is actually configured on the container's interface.
    pub async fn observe(&self, target: &NetnsTarget, iface: &str) -> Result<Observed, StepError> {
        let netns = target.open()?;
        let inner = Netlink::in_netns(&netns).await?;
        let Some(link) = inner.link_by_name(iface).await? else {
            return Ok(Observed::default());
        };
        let addresses = inner
            .addrs(link.index)
            .await?
            .into_iter()
            .filter_map(|(ip, len)| Ipv4Network::new(ip, len).ok())
            .collect();
        Ok(Observed {
            addresses,
            mac: link.mac.map(Mac::from),
            gateway: inner.default_gateway().await?,
            addresses6: inner
                .addrs6(link.index)
                .await?
                .into_iter()
                .filter_map(|(ip, len)| Ipv6Network::new(ip, len).ok())
                .collect(),
            gateway6: inner.default_gateway6().await?,
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

/// RFC 5227's probe of `spec`'s address from `eth` (up, with no address):
/// an ARP request from `0.0.0.0`, twice in the window, and whoever replies
/// for the address within it; with an IPv6 address, DAD's probe for it in
/// the same window, on `ndp_socket`. The ARP socket is handed back for the
/// announcement. Blocking waits run on blocking threads; the sockets are
/// the container's already, so no thread enters its namespace.
async fn probe(
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
        let answered6 = task
            .await
            .map_err(|e| StepError::Other(format!("the DAD probe's thread failed: {e}")))??;
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
        if let Some(answer) = arp::await_reply(&socket, ip, half)? {
            return Ok((socket, Some(Mac::from(answer))));
        }
        // A second probe, as one can be lost while the port settles.
        arp::request(&socket, eth, mac, unspecified, ip)?;
        let answer = arp::await_reply(&socket, ip, window - half)?;
        Ok((socket, answer.map(Mac::from)))
    })
    .await
    .map_err(|e| StepError::Other(format!("the probe's thread failed: {e}")))?
}

/// Whether `netns` is the network namespace this process is in.
fn same_netns_as_ours(netns: &std::fs::File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (
        netns.metadata(),
        std::fs::metadata("/proc/thread-self/ns/net"),
    ) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}
