//! Driving the hosts: what an action is, what it comes to for each
//! container, and the error that says why it failed.
//!
//! [`plan`] compares the file with the hosts and closes the difference,
//! [`schedule`] decides when each container's action runs, [`recipe`] what
//! an action is made of (the registration around it), [`rpc`] how a server
//! is asked. [`streams`] reads logs and events of every host at once,
//! [`session`] runs an attached command.

use dockstack_proto as pb;

pub mod addresses;
pub mod cluster;
mod health;
pub mod lock;
pub mod plan;
mod recipe;
mod restart;
mod rpc;

mod schedule;
pub mod session;
pub mod streams;

pub use restart::restart;
pub use rpc::{first_creation_of, spec_of};
pub use schedule::{apply, levels, list_all, list_within};

/// The name of `env`'s file as containers record it: its canonical path,
/// so that two paths to one file are one environment.
pub fn environment_name(env: &crate::environment::Environment) -> String {
    std::fs::canonicalize(&env.path)
        .unwrap_or_else(|_| env.path.clone())
        .display()
        .to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run,
    /// A run that replaces the container of the same name on the same host
    /// (`apply`'s recreate): the server stops the old one only once the new
    /// one is made.
    Replace,
    Destroy,
    Start,
    /// Restart in its sandbox, applying changed config volumes (`apply`).
    Restart,
    Stop,
    Show,
    /// DNS and Puppet registration alone, without touching the container.
    Register,
    Deregister,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Replace => "replace",
            Action::Destroy => "destroy",
            Action::Start => "start",
            Action::Restart => "restart",
            Action::Stop => "stop",
            Action::Show => "show",
            Action::Register => "register",
            Action::Deregister => "deregister",
        }
    }
}

/// Why one container's action failed. Displays as its message alone: the
/// caller shows host and container in its own form (`FAILED c on h: …`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct OpError {
    pub host: String,
    pub container: String,
    /// The gRPC status code, when a server answered with one; none when no
    /// server was reached or the client itself failed.
    pub code: Option<tonic::Code>,
    pub message: String,
}

/// The result for one container.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub container: String,
    pub host: String,
    pub result: Result<Option<pb::ContainerInfo>, OpError>,
}

/// Where each host is reached; `--hostip`/`--hostport` override the file.
#[derive(Debug, Clone, Default)]
pub struct HostOverride {
    pub ip: Option<crate::environment::HostAddress>,
    pub port: Option<u16>,
}

impl HostOverride {
    /// Where host `h` is reached.
    pub fn address(
        &self,
        h: &crate::environment::ContainerHost,
    ) -> (crate::environment::HostAddress, u16) {
        (
            self.ip.clone().unwrap_or_else(|| h.ip.clone()),
            self.port.unwrap_or(h.port),
        )
    }
}
