//! Ethernet MAC addresses: the shared type, whose rules (parsing, printing,
//! the MAC derived from an IPv4 address) live in `dockstack-types`.

pub use dockstack_types::mac::{Mac, MacError};
