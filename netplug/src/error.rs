//! The errors of plugging and of tearing down: the step that failed, and
//! the kernel's or Open vSwitch's error behind it, errno included.

use std::fmt;
use std::net::Ipv4Addr;

use crate::netlink::NetlinkError;
use crate::netns::NetnsError;
use crate::nft::NftError;
use crate::ovs::OvsError;

/// The step of a plug that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    FindBridge,
    OpenNetns,
    NameHostEnd,
    RemoveStale,
    CreateVeth,
    ConfigureHostEnd,
    ConfigureContainerEnd,
    AddAddress,
    AddRoute,
    AttachToBridge,
    Probe,
    Announce,
}

impl Step {
    /// A short snake-case identifier, stable across releases: for metric
    /// labels and other machine-read output.
    pub fn name(self) -> &'static str {
        match self {
            Step::FindBridge => "find_bridge",
            Step::OpenNetns => "open_netns",
            Step::NameHostEnd => "name_host_end",
            Step::RemoveStale => "remove_stale",
            Step::CreateVeth => "create_veth",
            Step::ConfigureHostEnd => "configure_host_end",
            Step::ConfigureContainerEnd => "configure_container_end",
            Step::AddAddress => "add_address",
            Step::AddRoute => "add_route",
            Step::AttachToBridge => "attach_to_bridge",
            Step::Probe => "probe",
            Step::Announce => "announce",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::FindBridge => "find bridge",
            Step::OpenNetns => "open network namespace",
            Step::NameHostEnd => "name the host end",
            Step::RemoveStale => "remove stale plug",
            Step::CreateVeth => "create veth pair",
            Step::ConfigureHostEnd => "configure host end",
            Step::ConfigureContainerEnd => "configure container end",
            Step::AddAddress => "add address",
            Step::AddRoute => "add route",
            Step::AttachToBridge => "attach to bridge",
            Step::Probe => "probe the address",
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
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("every name the host end may have is taken: {0}")]
    NamesTaken(String),
    #[error("host end name {0} is taken by a link made meanwhile")]
    NameTakenMeanwhile(String),
    #[error("the target's network namespace is the host's own: refusing to plug into it")]
    HostNetns,
    #[error("address {addr} is already in use on {iface} in the container")]
    AddressInUse { addr: Ipv4Addr, iface: String },
    #[error(
        "address {addr} is already answered for on the bridge by MAC {mac}: refusing to plug it"
    )]
    AddressAnswered {
        addr: std::net::IpAddr,
        mac: crate::mac::Mac,
    },
    /// Stale plugs that could not be removed, every one of them.
    #[error("{}", joined(.0))]
    Teardown(Vec<TeardownError>),
    /// Not a Linux bridge, and OVS could not say whether it has it: the
    /// cause is kept, as "not found" would hide an OVS that is down.
    #[error("bridge {bridge} is no Linux bridge, and Open vSwitch cannot be asked: {source}")]
    BridgeUnknown {
        bridge: String,
        #[source]
        source: OvsError,
    },
    /// netplug does not tag Linux bridge ports: refused rather than ignored.
    #[error(
        "vlan {vlan} needs an Open vSwitch bridge: {bridge} is a Linux bridge, whose ports netplug does not tag"
    )]
    VlanOnLinuxBridge { vlan: u16, bridge: String },
    #[error("bridge {0} vanished")]
    BridgeVanished(String),
    #[error("host end vanished")]
    HostEndVanished,
    #[error("{0} not found in the container")]
    IfaceNotFound(String),
    #[error("no way to announce the address")]
    NoWayToAnnounce,
    #[error("the probe's thread failed: {0}")]
    ProbeThread(#[source] tokio::task::JoinError),
    #[error("the DAD probe's thread failed: {0}")]
    DadThread(#[source] tokio::task::JoinError),
}

impl StepError {
    /// The errno behind the failure, when there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            StepError::Netlink(e) => e.errno(),
            StepError::Io(e) => e.raw_os_error(),
            StepError::Netns(NetnsError::Open { source, .. }) => source.raw_os_error(),
            StepError::Netns(NetnsError::Enter(e) | NetnsError::Return(e)) => Some(*e as i32),
            StepError::AddressInUse { .. } | StepError::AddressAnswered { .. } => {
                Some(libc::EADDRINUSE)
            }
            StepError::NamesTaken(_) | StepError::NameTakenMeanwhile(_) => Some(libc::EEXIST),
            StepError::Teardown(errors) => first_errno(errors),
            StepError::Ovs(_)
            | StepError::Nft(_)
            | StepError::Netns(_)
            | StepError::HostNetns
            | StepError::BridgeUnknown { .. }
            | StepError::VlanOnLinuxBridge { .. }
            | StepError::BridgeVanished(_)
            | StepError::HostEndVanished
            | StepError::IfaceNotFound(_)
            | StepError::NoWayToAnnounce
            | StepError::ProbeThread(_)
            | StepError::DadThread(_) => None,
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
    #[error("plug {container}: {step}: {source}; and the rollback failed too: {}", joined(.rollback))]
    RollbackFailed {
        container: String,
        step: Step,
        #[source]
        source: StepError,
        /// Everything the rollback could not remove.
        rollback: Vec<TeardownError>,
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

/// One failure of a teardown (an unplug, a gc, a rollback, the removal of
/// a stale plug). A teardown goes on after one, so that it removes all it
/// can, and reports every failure.
#[derive(Debug, thiserror::Error)]
pub enum TeardownError {
    /// No netlink socket on the host, so no link could be looked at.
    #[error(transparent)]
    Connect(NetlinkError),
    /// The host's links under a plug's names could not be read.
    #[error(transparent)]
    FindLinks(NetlinkError),
    /// OVSDB could not say which ports there are.
    #[error("list ports: {0}")]
    ListPorts(#[source] OvsError),
    #[error("remove port {port}: {source}")]
    DelPort {
        port: String,
        #[source]
        source: OvsError,
    },
    #[error("remove the port-security rules of {port}: {source}")]
    ClearRules {
        port: String,
        #[source]
        source: NftError,
    },
    #[error("remove veth {name}: {source}")]
    DelLink {
        name: String,
        #[source]
        source: NetlinkError,
    },
}

impl TeardownError {
    /// The kernel's errno, when the kernel refused.
    pub fn errno(&self) -> Option<i32> {
        match self {
            TeardownError::Connect(e)
            | TeardownError::FindLinks(e)
            | TeardownError::DelLink { source: e, .. } => e.errno(),
            TeardownError::ListPorts(_)
            | TeardownError::DelPort { .. }
            | TeardownError::ClearRules { .. } => None,
        }
    }
}

/// Every error of an unplug, not just the first.
#[derive(Debug, thiserror::Error)]
#[error("unplug {container}: {}", joined(.errors))]
pub struct UnplugError {
    pub container: String,
    pub errors: Vec<TeardownError>,
}

impl UnplugError {
    /// The first errno among the errors, when the kernel gave one.
    pub fn errno(&self) -> Option<i32> {
        first_errno(&self.errors)
    }
}

fn first_errno(errors: &[TeardownError]) -> Option<i32> {
    errors.iter().find_map(TeardownError::errno)
}

/// The errors of a teardown as one message, in the order they came.
fn joined(errors: &[TeardownError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
