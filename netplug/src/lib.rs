//! netplug: plugs a network namespace into an Open vSwitch or Linux bridge
//! with a static IPv4 address, all or nothing. It knows nothing of Docker or
//! gRPC: it takes a process id or a netns path and a [`PlugSpec`].

pub mod arp;
pub mod error;
pub mod ethtool;
pub mod hostend;
pub mod mac;
pub mod ndp;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod openflow;
pub mod ovs;
pub mod ovsdb;
mod packet;
pub mod plug;
pub mod sysctl;
pub mod unixctl;

pub use error::{PlugError, Step, StepError, TeardownError, UnplugError};
pub use hostend::{IFNAMSIZ_MAX, host_ifname, host_ifname_candidates, owner_alias};
pub use mac::{Mac, MacError};
pub use netns::NetnsTarget;
pub use ovs::{Ovs, PortInfo, PortOwner, Settle};
pub use plug::{BridgeKind, Observed, Owner, PlugSpec, Plugged, Plugger};
