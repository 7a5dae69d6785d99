//! What can go wrong on a host, and the one error type its operations return.

use std::path::PathBuf;
use std::time::Duration;

use netplug::{PlugError, UnplugError};

use crate::docker::DockerError;
use crate::hooks::HookError;
use crate::record::RecordError;
use crate::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "request for host {asked} reached host {me}: check containerhosts in the environment file"
    )]
    WrongHost { asked: String, me: String },
    #[error("container {name} not found on host {host}")]
    NotFound { name: String, host: String },
    #[error("container {name} on host {host} is not managed by this dockstack host{}", .owner.as_ref().map(|o| format!(" (it belongs to {o})")).unwrap_or_default())]
    NotManaged {
        name: String,
        host: String,
        owner: Option<String>,
    },
    #[error("container {name} exists with a different spec ({differs}): destroy it first")]
    SpecDiffers { name: String, differs: String },
    #[error("host {host}: {source}")]
    Docker {
        host: String,
        #[source]
        source: DockerError,
    },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("host {host}: {source}")]
    Plug {
        host: String,
        #[source]
        source: Box<PlugError>,
    },
    #[error("host {host}: {source}")]
    Unplug {
        host: String,
        #[source]
        source: UnplugError,
    },
    #[error("host {host}: {source}")]
    Hook {
        host: String,
        #[source]
        source: HookError,
    },
    #[error("container {name}: cannot create volume directory {}: {source}", .path.display())]
    Volume {
        name: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("container {name} is not running on host {host}")]
    NotRunning { name: String, host: String },
    #[error("host {host}: {source}")]
    Registration {
        host: String,
        #[source]
        source: crate::regfiles::RegistrationError,
    },
    /// The DNS container or Puppet master a registration needs.
    #[error("{role} {name} is not running on host {host} ({state})")]
    RegistryDown {
        role: &'static str,
        name: String,
        host: String,
        state: String,
    },
    #[error("{} is in no volume of {role} {container} on host {host}: it would not see the change", .file.display())]
    NotInVolume {
        role: &'static str,
        container: String,
        host: String,
        file: PathBuf,
    },
    #[error("container {container}: cannot run {command:?}: {message}")]
    BadCommand {
        container: String,
        command: String,
        message: String,
    },
    #[error("{command:?} in container {container} on host {host} exited with status {code}")]
    ExecFailed {
        host: String,
        container: String,
        command: String,
        code: i64,
    },
    #[error("{command:?} in container {container} on host {host} timed out after {}s", .timeout.as_secs())]
    ExecTimeout {
        host: String,
        container: String,
        command: String,
        timeout: Duration,
    },
}
