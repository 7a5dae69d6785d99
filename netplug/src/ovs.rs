//! Open vSwitch ports through OVSDB transactions (no `ovs-vsctl`), with the
//! rows and `external_ids` that `ovs-docker` writes, so either tool can
//! remove the other's ports.

mod error;
mod flush;
mod handle;
mod ofport;
mod owner;
mod policy;
mod ports;
mod rows;
mod security;
mod settle;
mod watch;

pub use error::OvsError;
pub use handle::Ovs;
pub use ofport::OfportReservation;
pub use owner::PortOwner;
pub use policy::Settle;
pub use rows::PortInfo;
pub use security::{port_cookie, port_security_flows};
pub use watch::{Lost, WATCH_RETRY, Watch};
