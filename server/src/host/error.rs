//! What can go wrong on a host: one error that names the host once, the
//! kinds of failure, which carry everything else, and the category each
//! kind falls in, which decides what a client is told (its gRPC code).

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
use crate::spec::SpecError;

/// A failed operation of the host `host`. Its message names the host once:
/// where the kind's sentence has a place for it, or else in front.
#[derive(Debug, thiserror::Error)]
#[error("{}", OnHost { host: &self.host, kind: &self.kind })]
pub struct HostError {
    pub host: String,
    /// Boxed: a Docker or registration error is large, and every
    /// `Result` of the host carries this.
    #[source]
    pub kind: Box<HostErrorKind>,
}

impl HostError {
    pub fn kind(&self) -> &HostErrorKind {
        &self.kind
    }

    /// What kind of failure this is, for the caller to act on.
    pub fn category(&self) -> Category {
        self.kind.category()
    }
}

/// What kind of failure an error is, as whoever asked acts on it: the
/// gRPC layer turns each into its status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// No such container (or image).
    NotFound,
    /// The request itself is wrong, whatever the host's state.
    InvalidArgument,
    /// The host does not let this request do what it asks.
    PermissionDenied,
    /// Something stands in the way that the request would have made.
    AlreadyExists,
    /// The host or a file is not in the state the request needs.
    FailedPrecondition,
    /// A program the request ran (a hook, an exec) failed.
    Aborted,
    /// A service the host needs (Docker) cannot be reached.
    Unavailable,
    /// A program the request ran took too long.
    DeadlineExceeded,
    /// A fault of the host itself.
    Internal,
}

/// The kinds of failure; the message of each, without the host, is its
/// own (the wrapped errors') or the one [`HostError`] gives it.
#[derive(Debug, thiserror::Error)]
pub enum HostErrorKind {
    /// A request meant for host `asked`.
    #[error("request for host {asked}")]
    WrongHost { asked: String },
    #[error("container {name} not found")]
    NotFound { name: String },
    #[error("container {name} is not managed by this dockstack host")]
    NotManaged { name: String, owner: Option<String> },
    #[error("container {name} exists with a different spec ({differs})")]
    SpecDiffers { name: String, differs: String },
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Plug(#[from] Box<PlugError>),
    #[error(transparent)]
    Unplug(#[from] UnplugError),
    #[error(transparent)]
    Hook(#[from] HookError),
    #[error("container {name}: cannot create volume directory {}", path.display())]
    Volume {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A bind of a role held to a volume allowlist that another
    /// container's bind could swap, or that could swap another's.
    #[error("container {name}: refused: {reason}")]
    VolumeClash { name: String, reason: String },
    /// Another managed container of the host holds the MAC.
    #[error("container {name}: mac {mac} is held by container {holder}")]
    MacTaken {
        name: String,
        mac: dockstack_types::Mac,
        holder: String,
    },
    #[error("container {name} is not running")]
    NotRunning { name: String },
    /// A oneshot that exited with a status other than 0.
    #[error("oneshot {name} exited with status {code}")]
    OneshotFailed { name: String, code: i64 },
    /// The sandbox that holds the container's netns is gone.
    #[error("container {name} has lost its network sandbox {sandbox}")]
    SandboxMissing { name: String, sandbox: String },
    #[error(transparent)]
    Pause(#[from] PauseError),
    #[error(transparent)]
    Gate(#[from] crate::gate::GateError),
    /// A config volume that cannot be read, or its record written.
    #[error(transparent)]
    Config(#[from] ConfigHashError),
    #[error(transparent)]
    Registration(#[from] RegistrationError),
    /// The DNS container or Puppet master a registration needs.
    #[error("{role} {name} is not running ({state})")]
    RegistryDown {
        role: &'static str,
        name: String,
        state: String,
    },
    #[error("{} is in no volume of {role} {container}", file.display())]
    NotInVolume {
        role: &'static str,
        container: String,
        file: PathBuf,
    },
    #[error("container {container}: cannot run {command:?}: {message}")]
    BadCommand {
        container: String,
        command: String,
        message: String,
    },
    #[error("{command:?} in container {container} exited with status {code}")]
    ExecFailed {
        container: String,
        command: String,
        code: i64,
    },
    #[error("{command:?} in container {container} timed out after {}s", timeout.as_secs())]
    ExecTimeout {
        container: String,
        command: String,
        timeout: Duration,
    },
}

/// A netplug error is boxed in [`HostErrorKind::Plug`]: it is the largest.
impl From<PlugError> for HostErrorKind {
    fn from(e: PlugError) -> Self {
        HostErrorKind::Plug(Box::new(e))
    }
}

impl HostErrorKind {
    /// What kind of failure this is, down to the wrapped error's.
    pub fn category(&self) -> Category {
        use Category as C;
        use HostErrorKind as K;
        match self {
            K::NotFound { .. } => C::NotFound,
            K::NotManaged { .. } | K::SpecDiffers { .. } => C::AlreadyExists,
            K::Docker(e) => docker_category(e),
            K::Record(_) | K::BadCommand { .. } => C::InvalidArgument,
            K::Plug(e) => match **e {
                PlugError::NoBridge { .. } => C::FailedPrecondition,
                _ => C::Internal,
            },
            K::Hook(e) => hook_category(e),
            K::VolumeClash { .. } => C::PermissionDenied,
            K::MacTaken { .. } => C::AlreadyExists,
            K::WrongHost { .. }
            | K::NotRunning { .. }
            | K::SandboxMissing { .. }
            | K::OneshotFailed { .. }
            | K::Config(_)
            | K::RegistryDown { .. }
            | K::NotInVolume { .. } => C::FailedPrecondition,
            K::Pause(_) | K::Unplug(_) | K::Volume { .. } => C::Internal,
            K::Gate(crate::gate::GateError::Write { .. }) => C::Internal,
            K::Gate(
                crate::gate::GateError::NothingToRun { .. }
                | crate::gate::GateError::CannotStart { .. },
            ) => C::InvalidArgument,
            K::Registration(e) => registration_category(e),
            K::ExecFailed { .. } => C::Aborted,
            K::ExecTimeout { .. } => C::DeadlineExceeded,
        }
    }
}

/// A spec refused before it reaches the host is classified as the host
/// classifies the same failure of its own.
impl From<&SpecError> for Category {
    fn from(e: &SpecError) -> Category {
        match e {
            SpecError::Invalid { .. } => Category::InvalidArgument,
            SpecError::Hook(e) => hook_category(e),
        }
    }
}

fn docker_category(e: &DockerError) -> Category {
    match e {
        DockerError::NoImage { .. } | DockerError::NotFound(_) => Category::NotFound,
        DockerError::NameTaken { .. } => Category::AlreadyExists,
        DockerError::Connect { .. } | DockerError::NoAnswer { .. } => Category::Unavailable,
        DockerError::Api { .. } | DockerError::Build { .. } | DockerError::Task { .. } => {
            Category::Internal
        }
    }
}

/// A hook outside the allowed directory is refused; any other hook
/// failure is a program that failed.
fn hook_category(e: &HookError) -> Category {
    match e {
        HookError::NotAllowed { .. } => Category::PermissionDenied,
        _ => Category::Aborted,
    }
}

fn registration_category(e: &RegistrationError) -> Category {
    match e {
        RegistrationError::InvalidName { .. } => Category::InvalidArgument,
        RegistrationError::Io { .. } | RegistrationError::Lock { .. } => Category::Internal,
        RegistrationError::Malformed { .. }
        | RegistrationError::Unsupported { .. }
        | RegistrationError::Conflict { .. }
        | RegistrationError::Refused { .. }
        | RegistrationError::LockHeld { .. } => Category::FailedPrecondition,
    }
}

/// The message of `kind` on `host`.
struct OnHost<'a> {
    host: &'a str,
    kind: &'a HostErrorKind,
}

impl fmt::Display for OnHost<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HostErrorKind as K;
        let host = self.host;
        match self.kind {
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
            K::Docker(_)
            | K::Record(_)
            | K::Plug(_)
            | K::Unplug(_)
            | K::Hook(_)
            | K::Registration(_)
            | K::Pause(_)
            | K::Gate(_)
            | K::Config(_) => write!(f, "host {host}: {}", self.kind),
            K::Volume { name, path, source } => write!(
                f,
                "container {name} on host {host}: cannot create volume directory {}: {source}",
                path.display()
            ),
            K::NotRunning { name } => write!(f, "container {name} is not running on host {host}"),
            K::VolumeClash { name, reason } => {
                write!(f, "container {name} on host {host}: refused: {reason}")
            }
            K::MacTaken { name, mac, holder } => write!(
                f,
                "container {name} on host {host}: refused: mac {mac} is held by container {holder} of this host"
            ),
            K::OneshotFailed { name, code } => {
                write!(f, "oneshot {name} on host {host} exited with status {code}")
            }
            K::SandboxMissing { name, sandbox } => write!(
                f,
                "container {name} on host {host} has lost its network sandbox {sandbox}: destroy and run it again"
            ),
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

    #[test]
    fn a_sentence_with_a_place_for_the_host_names_it_there() {
        let e = HostError {
            host: "h1".into(),
            kind: Box::new(HostErrorKind::NotFound {
                name: "web1".into(),
            }),
        };
        assert_eq!(e.to_string(), "container web1 not found on host h1");
        assert_eq!(e.kind().to_string(), "container web1 not found");
        // A wrapped error's own message follows the host in the chain.
        let e = HostError {
            host: "h1".into(),
            kind: Box::new(DockerError::NoImage { image: "x".into() }.into()),
        };
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("image x not found (no registry is used: build or load it there)")
        );
    }

    /// Each kind keeps the category (and so the gRPC code) it had when
    /// `service` mapped the wrapped errors itself.
    #[test]
    #[allow(clippy::too_many_lines)]
    fn kinds_classify_themselves() {
        use Category as C;
        use HostErrorKind as K;
        let s = String::new;
        let hook = |not_allowed: bool| {
            if not_allowed {
                HookError::NotAllowed {
                    phase: "pre",
                    container: s(),
                    hook: s(),
                    reason: s(),
                }
            } else {
                HookError::Failed {
                    phase: "pre",
                    container: s(),
                    hook: s(),
                    code: 1,
                }
            }
        };
        let cases: Vec<(HostErrorKind, Category)> = vec![
            (K::WrongHost { asked: s() }, C::FailedPrecondition),
            (K::NotFound { name: s() }, C::NotFound),
            (
                K::NotManaged {
                    name: s(),
                    owner: None,
                },
                C::AlreadyExists,
            ),
            (
                K::SpecDiffers {
                    name: s(),
                    differs: s(),
                },
                C::AlreadyExists,
            ),
            (DockerError::NoImage { image: s() }.into(), C::NotFound),
            (DockerError::NotFound(s()).into(), C::NotFound),
            (
                DockerError::NameTaken { name: s() }.into(),
                C::AlreadyExists,
            ),
            (
                DockerError::Build {
                    image: s(),
                    message: s(),
                }
                .into(),
                C::Internal,
            ),
            (
                PlugError::NoBridge { bridge: s() }.into(),
                C::FailedPrecondition,
            ),
            (hook(true).into(), C::PermissionDenied),
            (hook(false).into(), C::Aborted),
            (K::NotRunning { name: s() }, C::FailedPrecondition),
            (
                K::SandboxMissing {
                    name: s(),
                    sandbox: s(),
                },
                C::FailedPrecondition,
            ),
            (
                K::Volume {
                    name: s(),
                    path: PathBuf::new(),
                    source: std::io::Error::other("x"),
                },
                C::Internal,
            ),
            (
                RegistrationError::InvalidName {
                    what: "name",
                    value: s(),
                    reason: "",
                }
                .into(),
                C::InvalidArgument,
            ),
            (
                RegistrationError::Conflict {
                    path: PathBuf::new(),
                    line: 1,
                    message: s(),
                }
                .into(),
                C::FailedPrecondition,
            ),
            (
                RegistrationError::LockHeld {
                    path: PathBuf::new(),
                    waited: Duration::ZERO,
                }
                .into(),
                C::FailedPrecondition,
            ),
            (
                RegistrationError::Io {
                    path: PathBuf::new(),
                    source: std::io::Error::other("x"),
                }
                .into(),
                C::Internal,
            ),
            (
                K::BadCommand {
                    container: s(),
                    command: s(),
                    message: s(),
                },
                C::InvalidArgument,
            ),
            (
                K::ExecFailed {
                    container: s(),
                    command: s(),
                    code: 1,
                },
                C::Aborted,
            ),
            (
                K::ExecTimeout {
                    container: s(),
                    command: s(),
                    timeout: Duration::ZERO,
                },
                C::DeadlineExceeded,
            ),
        ];
        for (kind, category) in cases {
            assert_eq!(kind.category(), category, "{kind:?}");
        }
        let spec = SpecError::Hook(hook(true));
        assert_eq!(Category::from(&spec), C::PermissionDenied);
        let spec = SpecError::Invalid {
            container: s(),
            message: s(),
        };
        assert_eq!(Category::from(&spec), C::InvalidArgument);
    }
}
