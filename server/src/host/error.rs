//! What can go wrong on a host: one error that names the host once, and
//! the kinds of failure, which carry everything else.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use netplug::{PlugError, UnplugError};

use crate::confighash::ConfigHashError;
use crate::docker::DockerError;
use crate::hooks::HookError;
use crate::pause::PauseError;
use crate::record::RecordError;
use crate::regfiles::RegistrationError;

/// A failed operation of the host `host`.
#[derive(Debug)]
pub struct HostError {
    pub host: String,
    /// Boxed: a Docker or registration error is large, and every
    /// `Result` of the host carries this.
    pub kind: Box<HostErrorKind>,
}

impl HostError {
    pub fn kind(&self) -> &HostErrorKind {
        &self.kind
    }
}

#[derive(Debug)]
pub enum HostErrorKind {
    /// A request meant for host `asked`.
    WrongHost {
        asked: String,
    },
    NotFound {
        name: String,
    },
    NotManaged {
        name: String,
        owner: Option<String>,
    },
    SpecDiffers {
        name: String,
        differs: String,
    },
    Docker(DockerError),
    Record(RecordError),
    Plug(Box<PlugError>),
    Unplug(UnplugError),
    Hook(HookError),
    Volume {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    NotRunning {
        name: String,
    },
    /// A oneshot that exited with a status other than 0.
    OneshotFailed {
        name: String,
        code: i64,
    },
    /// The sandbox that holds the container's netns is gone.
    SandboxMissing {
        name: String,
        sandbox: String,
    },
    Pause(PauseError),
    /// A config volume that cannot be read, or its record written.
    Config(ConfigHashError),
    Registration(RegistrationError),
    /// The DNS container or Puppet master a registration needs.
    RegistryDown {
        role: &'static str,
        name: String,
        state: String,
    },
    NotInVolume {
        role: &'static str,
        container: String,
        file: PathBuf,
    },
    BadCommand {
        container: String,
        command: String,
        message: String,
    },
    ExecFailed {
        container: String,
        command: String,
        code: i64,
    },
    ExecTimeout {
        container: String,
        command: String,
        timeout: Duration,
    },
}

impl fmt::Display for HostError {
    /// Names the host once: where the sentence has a place for it, or else
    /// in front.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HostErrorKind as K;
        let host = &self.host;
        match self.kind.as_ref() {
            K::WrongHost { asked } => write!(
                f,
                "request for host {asked} reached host {host}: check containerhosts in the environment file"
            ),
            K::NotFound { name } => write!(f, "container {name} not found on host {host}"),
            K::NotManaged { name, owner } => {
                write!(
                    f,
                    "container {name} on host {host} is not managed by this dockstack host"
                )?;
                match owner {
                    Some(o) => write!(f, " (it belongs to {o})"),
                    None => Ok(()),
                }
            }
            K::SpecDiffers { name, differs } => write!(
                f,
                "container {name} exists with a different spec ({differs}): `dockstack plan` shows the change and `dockstack apply` recreates it (or destroy it first)"
            ),
            K::Docker(e) => write!(f, "host {host}: {e}"),
            K::Record(e) => write!(f, "host {host}: {e}"),
            K::Plug(e) => write!(f, "host {host}: {e}"),
            K::Unplug(e) => write!(f, "host {host}: {e}"),
            K::Hook(e) => write!(f, "host {host}: {e}"),
            K::Registration(e) => write!(f, "host {host}: {e}"),
            K::Volume { name, path, source } => write!(
                f,
                "container {name} on host {host}: cannot create volume directory {}: {source}",
                path.display()
            ),
            K::NotRunning { name } => write!(f, "container {name} is not running on host {host}"),
            K::OneshotFailed { name, code } => {
                write!(f, "oneshot {name} on host {host} exited with status {code}")
            }
            K::SandboxMissing { name, sandbox } => write!(
                f,
                "container {name} on host {host} has lost its network sandbox {sandbox}: destroy and run it again"
            ),
            K::Pause(e) => write!(f, "host {host}: {e}"),
            K::Config(e) => write!(f, "host {host}: {e}"),
            K::RegistryDown { role, name, state } => {
                write!(f, "{role} {name} is not running on host {host} ({state})")
            }
            K::NotInVolume {
                role,
                container,
                file,
            } => write!(
                f,
                "{} is in no volume of {role} {container} on host {host}: it would not see the change",
                file.display()
            ),
            K::BadCommand {
                container,
                command,
                message,
            } => write!(
                f,
                "container {container} on host {host}: cannot run {command:?}: {message}"
            ),
            K::ExecFailed {
                container,
                command,
                code,
            } => write!(
                f,
                "{command:?} in container {container} on host {host} exited with status {code}"
            ),
            K::ExecTimeout {
                container,
                command,
                timeout,
            } => write!(
                f,
                "{command:?} in container {container} on host {host} timed out after {}s",
                timeout.as_secs()
            ),
        }
    }
}

impl std::error::Error for HostError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        use HostErrorKind as K;
        match self.kind.as_ref() {
            K::Docker(e) => Some(e),
            K::Record(e) => Some(e),
            K::Plug(e) => Some(e.as_ref()),
            K::Unplug(e) => Some(e),
            K::Hook(e) => Some(e),
            K::Registration(e) => Some(e),
            K::Pause(e) => Some(e),
            K::Volume { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<DockerError> for HostErrorKind {
    fn from(e: DockerError) -> Self {
        HostErrorKind::Docker(e)
    }
}

impl From<RecordError> for HostErrorKind {
    fn from(e: RecordError) -> Self {
        HostErrorKind::Record(e)
    }
}

impl From<PlugError> for HostErrorKind {
    fn from(e: PlugError) -> Self {
        HostErrorKind::Plug(Box::new(e))
    }
}

impl From<UnplugError> for HostErrorKind {
    fn from(e: UnplugError) -> Self {
        HostErrorKind::Unplug(e)
    }
}

impl From<HookError> for HostErrorKind {
    fn from(e: HookError) -> Self {
        HostErrorKind::Hook(e)
    }
}

impl From<PauseError> for HostErrorKind {
    fn from(e: PauseError) -> Self {
        HostErrorKind::Pause(e)
    }
}

impl From<RegistrationError> for HostErrorKind {
    fn from(e: RegistrationError) -> Self {
        HostErrorKind::Registration(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_named_once() {
        let e = HostError {
            host: "h1".into(),
            kind: Box::new(DockerError::NoImage { image: "x".into() }.into()),
        };
        let msg = e.to_string();
        assert_eq!(msg.matches("h1").count(), 1, "{msg}");
        assert!(msg.starts_with("host h1: image x not found"), "{msg}");
    }
}
