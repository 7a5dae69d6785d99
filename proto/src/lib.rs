//! Generated gRPC types and stubs for the dockstack `ContainerHost` service,
//! and the one naming rule client and server share.

#![allow(clippy::all, missing_docs)]

tonic::include_proto!("dockstack.v1");

/// What the name of every sandbox container ends with. Client and server
/// both refuse a container of that name, so that a sandbox's name is never
/// one of the environment file's.
pub const SANDBOX_SUFFIX: &str = ".dockstack-sandbox";
