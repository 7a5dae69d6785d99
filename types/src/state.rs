//! What a managed container is doing, in Docker's words, and how its
//! network is held.

use std::fmt;
use std::str::FromStr;

/// Docker's state of a container, and `Missing` for a sandbox that is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ContainerState {
    /// A state this version does not know (a newer Docker's, or none sent).
    #[default]
    Unknown,
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
    Missing,
}

impl ContainerState {
    pub const ALL: [ContainerState; 9] = [
        ContainerState::Unknown,
        ContainerState::Created,
        ContainerState::Running,
        ContainerState::Paused,
        ContainerState::Restarting,
        ContainerState::Removing,
        ContainerState::Exited,
        ContainerState::Dead,
        ContainerState::Missing,
    ];

    /// Docker's name of it (`docker ps`'s `State`), as the client shows it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ContainerState::Unknown => "unknown",
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Missing => "missing",
        }
    }

    /// Docker's status text; anything else is `Unknown`.
    pub fn from_docker(status: &str) -> Self {
        status.parse().unwrap_or_default()
    }

    /// Stopped for good: it will not run again by itself.
    pub const fn is_stopped(self) -> bool {
        matches!(self, ContainerState::Exited | ContainerState::Dead)
    }
}

impl FromStr for ContainerState {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL.into_iter().find(|c| c.as_str() == s).ok_or(())
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a container's eth0 is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NetworkMode {
    /// Not told (an older peer).
    #[default]
    Unknown,
    /// In the netns of a sandbox container, plugged before the application
    /// starts.
    Sandbox,
    /// Made before sandboxes: its own netns, plugged after each start.
    Direct,
}

impl NetworkMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Unknown => "unknown",
            NetworkMode::Sandbox => "sandbox",
            NetworkMode::Direct => "direct",
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockers_names_round_trip() {
        for s in ContainerState::ALL {
            assert_eq!(s.as_str().parse::<ContainerState>(), Ok(s));
        }
        assert_eq!(
            ContainerState::from_docker("hibernating"),
            ContainerState::Unknown
        );
    }
}
