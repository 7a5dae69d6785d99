//! Generated gRPC types and stubs for the dockstack `ContainerHost` service,
//! and the rules client and server share: a sandbox's name, an IPv6
//! address.

pub mod ip6;

#[allow(clippy::all, missing_docs)]
mod generated {
    tonic::include_proto!("dockstack.v1");
}
pub use generated::*;

/// What the name of every sandbox container ends with. Client and server
/// both refuse a container of that name, so that a sandbox's name is never
/// one of the environment file's.
pub const SANDBOX_SUFFIX: &str = ".dockstack-sandbox";
