//! Plugging a container's network namespace into a bridge, all or nothing,
//! and unplugging it again.

use std::fmt;
use std::fs::File;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnetwork::Ipv4Network;
use rtnetlink::packet_route::link::InfoKind;
use sha2::{Digest, Sha256};

use crate::arp;
use crate::ethtool;
use crate::netlink::{Netlink, NetlinkError};
use crate::netns::{NetnsError, NetnsTarget, run_in_netns};
use crate::ovs::{Ovs, OvsError, PortOwner};

/// Linux allows interface names of at most 15 bytes.
pub const IFNAMSIZ_MAX: usize = 15;

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
    /// `None`: derived from the address, see [`mac_from_ip`].
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// OVS access VLAN tag.
    pub vlan: Option<u16>,
    pub owner: Owner,
}

impl PlugSpec {
    pub fn effective_mac(&self) -> [u8; 6] {
        self.mac.unwrap_or_else(|| mac_from_ip(self.address.ip()))
    }

    pub fn host_ifname(&self) -> String {
        host_ifname(&self.owner.name, &self.iface)
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
    pub mac: [u8; 6],
    pub bridge_kind: BridgeKind,
    /// `false` when the container was already plugged with the same spec.
    pub changed: bool,
}

/// A locally administered MAC built from the IPv4 address: `02:d5:a.b.c.d`.
/// The same address always gets the same MAC, so neighbours' caches stay
/// right across restarts.
pub fn mac_from_ip(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0xd5, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (i, p) in parts.iter().enumerate() {
        if p.len() != 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(p, 16).ok()?;
    }
    Some(mac)
}

/// The host end's name: `ds`, up to six characters of the container's name,
/// and six hex digits of a hash of name and interface, so it is readable,
/// stable across restarts, unique in practice and at most 14 bytes.
pub fn host_ifname(container: &str, iface: &str) -> String {
    let readable: String = container
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect();
    let digest = Sha256::digest(format!("{container}\0{iface}").as_bytes());
    let hash: String = digest[..3].iter().map(|b| format!("{b:02x}")).collect();
    format!("ds{readable}{hash}")
}

/// Sends the gratuitous ARP of `spec` on `ifindex`, then lets `socket` go.
fn send_announcement(
    socket: std::os::fd::OwnedFd,
    ifindex: u32,
    spec: &PlugSpec,
) -> std::io::Result<()> {
    let (mac, ip) = (spec.effective_mac(), spec.address.ip());
    let sent = arp::announce(&socket, ifindex, mac, ip);
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
                let _ = arp::announce(&socket, ifindex, mac, ip);
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

/// The step of a plug that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    FindBridge,
    OpenNetns,
    RemoveStale,
    CreateVeth,
    ConfigureHostEnd,
    MoveIntoNetns,
    ConfigureContainerEnd,
    AddAddress,
    AddRoute,
    AttachToBridge,
    Announce,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::FindBridge => "find bridge",
            Step::OpenNetns => "open network namespace",
            Step::RemoveStale => "remove stale plug",
            Step::CreateVeth => "create veth pair",
            Step::ConfigureHostEnd => "configure host end",
            Step::MoveIntoNetns => "move peer into the container",
            Step::ConfigureContainerEnd => "configure container end",
            Step::AddAddress => "add address",
            Step::AddRoute => "add route",
            Step::AttachToBridge => "attach to bridge",
            Step::Announce => "announce address",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Ovs(#[from] OvsError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("address {addr} is already in use on {iface} in the container")]
    AddressInUse { addr: Ipv4Addr, iface: String },
    #[error("{0}")]
    Other(String),
}

impl StepError {
    /// The errno behind the failure, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            StepError::Netlink(e) => e.errno(),
            StepError::Io(e) => e.raw_os_error(),
            StepError::Netns(NetnsError::Open { source, .. }) => source.raw_os_error(),
            StepError::Netns(NetnsError::Enter(e) | NetnsError::Return(e)) => Some(*e as i32),
            StepError::AddressInUse { .. } => Some(libc::EADDRINUSE),
            StepError::Ovs(_) | StepError::Netns(_) | StepError::Other(_) => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlugError {
    #[error("bridge {bridge} not found (neither an Open vSwitch nor a Linux bridge)")]
    NoBridge { bridge: String },
    #[error("plug {container}: {step}: {source}")]
    Step {
        container: String,
        step: Step,
        #[source]
        source: StepError,
    },
    #[error("plug {container}: {step}: {source}; and the rollback failed too: {rollback}")]
    RollbackFailed {
        container: String,
        step: Step,
        #[source]
        source: StepError,
        rollback: String,
    },
}

impl PlugError {
    /// The failing step, if the error came from one.
    pub fn step(&self) -> Option<Step> {
        match self {
            PlugError::NoBridge { .. } => Some(Step::FindBridge),
            PlugError::Step { step, .. } | PlugError::RollbackFailed { step, .. } => Some(*step),
        }
    }

    /// The errno of the failing step, when the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            PlugError::NoBridge { .. } => None,
            PlugError::Step { source, .. } | PlugError::RollbackFailed { source, .. } => {
                source.errno()
            }
        }
    }
}

/// Every error of a teardown, not just the first.
#[derive(Debug, thiserror::Error)]
#[error("unplug {container}: {}", .errors.join("; "))]
pub struct UnplugError {
    pub container: String,
    pub errors: Vec<String>,
}

/// What was found on a container's interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub addresses: Vec<Ipv4Network>,
    pub mac: Option<[u8; 6]>,
    pub gateway: Option<Ipv4Addr>,
}

/// What a plug attempt has made so far, which is what its rollback removes.
#[derive(Debug, Default)]
struct Created {
    /// The host end's ifindex.
    veth: Option<u32>,
    /// The OVS port (named after the host end).
    port: bool,
}

/// Plugs and unplugs containers on one host: its own namespace and its OVS.
pub struct Plugger {
    ovs: Ovs,
}

impl Plugger {
    pub fn new(ovs: Ovs) -> Self {
        Plugger { ovs }
    }

    pub fn ovs(&self) -> &Ovs {
        &self.ovs
    }

    pub async fn bridge_kind(&self, host: &Netlink, bridge: &str) -> Result<BridgeKind, PlugError> {
        let step_err = |source: StepError| PlugError::Step {
            container: String::new(),
            step: Step::FindBridge,
            source,
        };
        // Both asked at once; OVS's answer is wasted on a Linux bridge, but
        // costs less than waiting for the kernel's first.
        let (link, in_ovs) =
            tokio::join!(host.link_by_name(bridge), self.ovs.bridge_exists(bridge));
        if let Some(link) = link.map_err(|e| step_err(e.into()))?
            && link.kind == Some(InfoKind::Bridge)
        {
            return Ok(BridgeKind::Linux);
        }
        match in_ovs {
            Ok(true) => Ok(BridgeKind::Ovs),
            Ok(false) => Err(PlugError::NoBridge {
                bridge: bridge.to_string(),
            }),
            // Not a Linux bridge, and OVS cannot say: the cause is kept, as
            // "not found" would hide an OVS that is down.
            Err(e) => Err(step_err(StepError::Other(format!(
                "bridge {bridge} is no Linux bridge, and Open vSwitch cannot be asked: {e}"
            )))),
        }
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
        let host_name = spec.host_ifname();
        // Independent look-ups, each a round trip to the kernel, a thread
        // or ovsdb-server: all at once.
        let (kind, inner, existing, stale) = tokio::join!(
            self.bridge_kind(&host, &spec.bridge),
            Netlink::in_netns(&netns),
            host.link_by_name(&host_name),
            self.ovs
                .ports_for(&spec.owner.name, &spec.iface, &host_name),
        );
        let kind = kind.map_err(|e| match e {
            PlugError::Step { step, source, .. } => PlugError::Step {
                container: container.clone(),
                step,
                source,
            },
            other => other,
        })?;
        let inner = inner.map_err(|e| fail(Step::OpenNetns)(e.into()))?;
        let existing = existing.map_err(|e| fail(Step::RemoveStale)(e.into()))?;

        if let Some(existing) = &existing {
            if self
                .matches(&host, &inner, existing.index, kind, spec)
                .await
                .unwrap_or(false)
            {
                self.announce(&netns, &inner, spec).await.ok();
                return Ok(Plugged {
                    host_ifname: host_name,
                    mac: spec.effective_mac(),
                    bridge_kind: kind,
                    changed: false,
                });
            }
            tracing::info!(container = %container, port = %host_name, "replacing stale or different plug");
        }
        // Leftovers of an earlier run (the container's old netns is gone, the
        // spec changed, or ovs-docker plugged it): remove them before
        // plugging anew, or they would block the name or keep an OVS port
        // that forwards nowhere. ovs-docker names its veth like its port.
        let mut stale = match stale {
            Ok(ports) => ports,
            Err(e) if kind == BridgeKind::Linux && e.is_unreachable() => Vec::new(),
            Err(e) => return Err(fail(Step::RemoveStale)(e.into())),
        };
        if existing.is_some() && !stale.contains(&host_name) {
            stale.push(host_name.clone());
        }
        let errors = self.remove_all(&host, &stale).await;
        if !errors.is_empty() {
            return Err(fail(Step::RemoveStale)(StepError::Other(errors.join("; "))));
        }

        let mut created = Created::default();
        let result = self
            .plug_fresh(&host, &inner, &netns, kind, spec, &host_name, &mut created)
            .await;
        match result {
            Ok(()) => Ok(Plugged {
                host_ifname: host_name,
                mac: spec.effective_mac(),
                bridge_kind: kind,
                changed: true,
            }),
            Err((step, source)) => {
                let mut rollback = Vec::new();
                if created.port
                    && let Err(e) = self.ovs.del_port(&host_name).await
                {
                    rollback.push(e.to_string());
                }
                // Only the veth this attempt made goes, by index: a link that
                // merely has one of our names (say, the one that made
                // create_veth fail) is not ours. Deleting the host end takes
                // the peer with it, wherever the peer is by now.
                if let Some(index) = created.veth
                    && let Err(e) = host.del_link(index).await
                    && e.errno() != Some(libc::ENODEV)
                {
                    rollback.push(e.to_string());
                }
                if rollback.is_empty() {
                    Err(PlugError::Step {
                        container,
                        step,
                        source,
                    })
                } else {
                    Err(PlugError::RollbackFailed {
                        container,
                        step,
                        source,
                        rollback: rollback.join("; "),
                    })
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn plug_fresh(
        &self,
        host: &Netlink,
        inner: &Netlink,
        netns: &File,
        kind: BridgeKind,
        spec: &PlugSpec,
        host_name: &str,
        created: &mut Created,
    ) -> Result<(), (Step, StepError)> {
        let at = |step: Step| move |e: NetlinkError| (step, StepError::from(e));
        let create = || {
            host.create_veth_into(
                host_name,
                &spec.iface,
                netns,
                spec.effective_mac(),
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
        created.veth = Some(host_end.index);
        // The bridge side and the container side are independent: the
        // wait for ovs-vswitchd (the longest step) overlaps the container's
        // configuration, and the socket for the announcement is opened
        // meanwhile.
        // The host end goes up before OVS attaches it: ovs-vswitchd sets
        // promiscuous mode by writing back the flags it cached, and an "up"
        // that lands in between is lost (seen under load: port DOWN).
        host.set_up(host_end.index)
            .await
            .map_err(at(Step::ConfigureHostEnd))?;
        let (bridge_side, container_side, socket) = tokio::join!(
            self.attach(host, kind, spec, host_name, host_end.index, created),
            self.configure_container(inner, spec),
            run_in_netns(netns, || {
                Ok::<_, std::io::Error>((
                    arp::open_packet_socket()?,
                    ethtool::open_control_socket()?,
                ))
            }),
        );
        // All ran to their end; the container's failure is reported first,
        // as it is the earlier step.
        let eth = container_side?;
        bridge_side?;
        let (socket, control) = socket
            .map_err(StepError::from)
            .and_then(|s| s.map_err(StepError::from))
            .map_err(|e| (Step::ConfigureContainerEnd, e))?;
        // See `ethtool`: without this, TCP and UDP from the container are
        // dropped on an OVS userspace datapath.
        ethtool::set_tx_checksum(&control, &spec.iface, false)
            .map_err(|e| (Step::ConfigureContainerEnd, e.into()))?;
        send_announcement(socket, eth, spec).map_err(|e| (Step::Announce, e.into()))
    }

    /// Puts the host end on the bridge; `created.port` says whether an OVS
    /// port may exist now.
    async fn attach(
        &self,
        host: &Netlink,
        kind: BridgeKind,
        spec: &PlugSpec,
        host_name: &str,
        host_index: u32,
        created: &mut Created,
    ) -> Result<(), (Step, StepError)> {
        let at = |e: NetlinkError| (Step::AttachToBridge, StepError::from(e));
        match kind {
            BridgeKind::Ovs => {
                // Before the call: a transaction that committed but whose
                // wait for ovs-vswitchd failed has still made the port.
                created.port = true;
                let owner = PortOwner {
                    container: spec.owner.name.clone(),
                    iface: spec.iface.clone(),
                    full_id: spec.owner.full_id.clone(),
                };
                self.ovs
                    .add_port(&spec.bridge, host_name, &owner, spec.vlan)
                    .await
                    .map_err(|e| (Step::AttachToBridge, e.into()))
            }
            BridgeKind::Linux => {
                let bridge = host.link_by_name(&spec.bridge).await.map_err(at)?.ok_or((
                    Step::AttachToBridge,
                    StepError::Other(format!("bridge {} vanished", spec.bridge)),
                ))?;
                host.set_controller(host_index, bridge.index)
                    .await
                    .map_err(at)
            }
        }
    }

    /// lo up, the interface up, its address and routes; returns the
    /// interface's index.
    async fn configure_container(
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
        // The kernel would happily put the address on a second interface;
        // two interfaces answering for one address is never what a static
        // plan means, so it is refused.
        for (index, ip, _) in inner.all_addrs().await.map_err(at(Step::AddAddress))? {
            if ip == spec.address.ip() && index != eth.index {
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
            .add_addr(eth.index, spec.address.ip(), spec.address.prefix())
            .await
            .map_err(at(Step::AddAddress))?;
        if let Some(gw) = spec.gateway {
            if !spec.address.contains(gw) {
                inner
                    .add_link_route(eth.index, gw)
                    .await
                    .map_err(at(Step::AddRoute))?;
            }
            inner
                .add_default_route(eth.index, gw)
                .await
                .map_err(at(Step::AddRoute))?;
        }
        Ok(eth.index)
    }

    async fn announce(
        &self,
        netns: &File,
        inner: &Netlink,
        spec: &PlugSpec,
    ) -> Result<(), StepError> {
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
        if eth.mac != Some(spec.effective_mac()) || !eth.up || !host_end.up {
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

    /// Removes the OVS port and the host end of veth `host_name`, gathering
    /// every error. Both go at once: ovs-vswitchd copes with a port whose
    /// device vanished (a container that died does just that), and the two
    /// waits, for ovs-vswitchd and for the kernel, overlap. A link of that
    /// name that is not a veth is left alone: it is not a plug.
    async fn remove_host_side(&self, host: &Netlink, host_name: &str) -> Result<(), Vec<String>> {
        let port = async {
            match self.ovs.del_port(host_name).await {
                Err(e) if !e.is_unreachable() => Some(e.to_string()),
                _ => None,
            }
        };
        let link = async {
            match host.link_by_name(host_name).await {
                Ok(Some(link)) if link.kind == Some(InfoKind::Veth) => {
                    // ENODEV: the kernel got there first, tearing down the
                    // peer's namespace.
                    match host.del_link(link.index).await {
                        Err(e) if e.errno() != Some(libc::ENODEV) => Some(e.to_string()),
                        _ => None,
                    }
                }
                Ok(_) => None,
                Err(e) => Some(e.to_string()),
            }
        };
        let (port, link) = tokio::join!(port, link);
        let errors: Vec<String> = port.into_iter().chain(link).collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// [`Self::remove_host_side`] of every port at once; all errors.
    async fn remove_all(&self, host: &Netlink, ports: &[String]) -> Vec<String> {
        futures::future::join_all(ports.iter().map(|p| self.remove_host_side(host, p)))
            .await
            .into_iter()
            .filter_map(Result::err)
            .flatten()
            .collect()
    }

    /// Removes a container's plug: its OVS port (found by owner as ovs-docker
    /// does, and by name) and its veth. Deleting the host end also removes
    /// the peer inside the container. Missing pieces are not errors.
    pub async fn unplug(&self, container: &str, iface: &str) -> Result<(), UnplugError> {
        let mut errors = Vec::new();
        let host_name = host_ifname(container, iface);
        let mut ports = match self.ovs.ports_for(container, iface, &host_name).await {
            Ok(p) => p,
            Err(e) if e.is_unreachable() => Vec::new(),
            Err(e) => {
                errors.push(e.to_string());
                Vec::new()
            }
        };
        if !ports.contains(&host_name) {
            ports.push(host_name);
        }
        match Netlink::current() {
            // A port ovs-docker made is named after its veth too.
            Ok(host) => errors.extend(self.remove_all(&host, &ports).await),
            Err(e) => errors.push(e.to_string()),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(UnplugError {
                container: container.to_string(),
                errors,
            })
        }
    }

    /// Removes every OVS port whose owner `is_alive` says is gone, with its
    /// veth. Returns the ports removed; errors are gathered, not fatal.
    pub async fn gc(&self, is_alive: impl Fn(&PortOwner) -> bool) -> (Vec<String>, Vec<String>) {
        let mut removed = Vec::new();
        let mut errors = Vec::new();
        let ports = match self.ovs.owned_ports().await {
            Ok(p) => p,
            Err(e) => return (removed, vec![e.to_string()]),
        };
        let host = match Netlink::current() {
            Ok(h) => h,
            Err(e) => return (removed, vec![e.to_string()]),
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
            mac: link.mac,
            gateway: inner.default_gateway().await?,
        })
    }

    /// True when the host end of `container`'s interface exists here.
    pub async fn is_plugged(&self, container: &str, iface: &str) -> bool {
        match Netlink::current() {
            Ok(host) => matches!(
                host.link_by_name(&host_ifname(container, iface)).await,
                Ok(Some(_))
            ),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_ifname_is_short_stable_and_distinct() {
        let a = host_ifname("haproxy1", "eth0");
        assert!(a.len() <= IFNAMSIZ_MAX, "{a}");
        assert_eq!(a, host_ifname("haproxy1", "eth0"));
        assert_ne!(a, host_ifname("haproxy2", "eth0"));
        assert_ne!(a, host_ifname("haproxy1", "eth1"));
        let long = host_ifname("a-very-long-container-name-indeed", "eth0");
        assert!(long.len() <= IFNAMSIZ_MAX, "{long}");
    }

    #[test]
    fn mac_is_derived_from_ip_and_round_trips() {
        let mac = mac_from_ip(Ipv4Addr::new(10, 0, 0, 3));
        assert_eq!(format_mac(mac), "02:d5:0a:00:00:03");
        assert_eq!(parse_mac("02:d5:0a:00:00:03"), Some(mac));
        assert_eq!(parse_mac("02:d5:0a:00:00"), None);
        assert_eq!(parse_mac("zz:d5:0a:00:00:03"), None);
    }
}
