//! dockstack-server: the per-host daemon. The gRPC layer (`service`) adapts
//! requests onto the domain API (`host`), which drives Docker, netplug,
//! hooks and registration files.

pub mod docker;
pub mod fault;
pub mod hooks;
pub mod host;
pub mod progress;
pub mod record;
pub mod regfiles;
pub mod service;
pub mod spec;
pub mod tls;
