//! The dockstack client library: the environment file and what drives the hosts.

pub mod certs;
pub mod connect;
pub mod environment;
pub mod ops;
pub mod progress;
