//! The rules that dockstack's client, server and netplug share, each written
//! once: the client reports a broken one with the file's line, the server
//! refuses it from any client, and both give the same verdict.
//!
//! No tonic and no tokio here: every crate of the workspace can depend on it.

pub mod env;
pub mod health;
pub mod image;
pub mod ip6;
pub mod link;
pub mod lock;
pub mod mac;
pub mod name;
pub mod network;
pub mod protocol;
pub mod resources;
pub mod restart;
pub mod role;
pub mod runtime;
pub mod state;
pub mod stop;
pub mod volume;

pub use mac::{Mac, MacError};
pub use name::{NameError, SANDBOX_SUFFIX};
pub use restart::RestartPolicy;
pub use role::Role;
pub use state::{ContainerState, NetworkMode};
