//! netplug: plugs a network namespace into an Open vSwitch or Linux bridge
//! with a static IPv4 address, all or nothing. It knows nothing of Docker or
//! gRPC: it takes a process id or a netns path and a [`PlugSpec`].

// Public as modules: each is a small set of verbs that tests and tools use
// to see a plug at work (ARP and neighbour discovery frames on a packet
// socket; a link's checksum offload).
pub mod arp;
pub mod ethtool;
pub mod ndp;

mod defend;
mod error;
mod hostend;
mod mac;
mod netlink;
mod netns;
mod nft;
mod openflow;
mod ovs;
mod ovsdb;
mod packet;
mod plug;
mod sysctl;
mod unixctl;

pub use defend::{DefendError, defend};
pub use error::{PlugError, Step, StepError, TeardownError, UnplugError};
pub use hostend::{IFNAMSIZ_MAX, host_ifname, host_ifname_candidates, owner_alias};
pub use mac::{Mac, MacError};
pub use netlink::{Deleter, Family, LinkInfoSummary, Netlink, NetlinkError};
pub use netns::{NetnsError, NetnsTarget, run_in_netns};
pub use nft::{NftError, parse_ports as parse_nft_ports};
pub use ovs::{
    Lost as OvsLost, OfportReservation, Ovs, OvsError, PortInfo, PortOwner, Settle, WATCH_RETRY,
    Watch as OvsWatch, port_cookie, port_security_flows,
};
// What `port_security_flows` gives, named for the flows they make up.
pub use openflow::{Action as FlowAction, Field as FlowField, FlowMod};
pub use ovsdb::OvsdbError;
pub use plug::{BridgeKind, MAX_OBSERVED_ADDRESSES, Observed, Owner, PlugSpec, Plugged, Plugger};
pub use unixctl::UnixctlError;
