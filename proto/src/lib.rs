//! Generated gRPC types and stubs for the dockstack `ContainerHost` service.

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    tonic::include_proto!("dockstack.v1");
}
pub use generated::*;

// Where client code still names the shared rules through the proto crate.
pub use dockstack_types::{SANDBOX_SUFFIX, ip6};
