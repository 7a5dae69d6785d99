//! Generated gRPC types and stubs for the dockstack `ContainerHost` service,
//! and how its enums map onto the domain's (`dockstack-types`).

#[allow(clippy::all, clippy::pedantic, missing_docs)]
mod generated {
    tonic::include_proto!("dockstack.v1");
}
pub use generated::*;

/// The wire's enums and the domain's are one list each: these say how.
mod enums {
    use dockstack_types::{ContainerState as Domain, NetworkMode};

    use super::{ContainerState as Wire, NetworkMode as WireMode};

    impl From<Domain> for Wire {
        fn from(s: Domain) -> Self {
            match s {
                Domain::Unknown => Wire::Unspecified,
                Domain::Created => Wire::Created,
                Domain::Running => Wire::Running,
                Domain::Paused => Wire::Paused,
                Domain::Restarting => Wire::Restarting,
                Domain::Removing => Wire::Removing,
                Domain::Exited => Wire::Exited,
                Domain::Dead => Wire::Dead,
                Domain::Missing => Wire::Missing,
            }
        }
    }

    impl From<Wire> for Domain {
        fn from(s: Wire) -> Self {
            match s {
                Wire::Unspecified => Domain::Unknown,
                Wire::Created => Domain::Created,
                Wire::Running => Domain::Running,
                Wire::Paused => Domain::Paused,
                Wire::Restarting => Domain::Restarting,
                Wire::Removing => Domain::Removing,
                Wire::Exited => Domain::Exited,
                Wire::Dead => Domain::Dead,
                Wire::Missing => Domain::Missing,
            }
        }
    }

    impl From<NetworkMode> for WireMode {
        fn from(m: NetworkMode) -> Self {
            match m {
                NetworkMode::Unknown => WireMode::Unspecified,
                NetworkMode::Sandbox => WireMode::Sandbox,
                NetworkMode::Direct => WireMode::Direct,
            }
        }
    }

    impl From<WireMode> for NetworkMode {
        fn from(m: WireMode) -> Self {
            match m {
                WireMode::Unspecified => NetworkMode::Unknown,
                WireMode::Sandbox => NetworkMode::Sandbox,
                WireMode::Direct => NetworkMode::Direct,
            }
        }
    }
}

impl ContainerInfo {
    /// The application's state, as the domain names it.
    pub fn container_state(&self) -> dockstack_types::ContainerState {
        self.state().into()
    }

    /// The sandbox's state; `Unknown` for a container plugged directly.
    pub fn sandbox_container_state(&self) -> dockstack_types::ContainerState {
        self.sandbox_state().into()
    }

    pub fn network_mode(&self) -> dockstack_types::NetworkMode {
        self.network().into()
    }
}
