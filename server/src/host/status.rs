//! What a client sees of a container: show, list and the status of one,
//! one for each pair of application and sandbox.

use dockstack_types::{ContainerState, NetworkMode};
use futures::StreamExt;
use netplug::NetnsTarget;

use super::{Host, HostError, HostErrorKind, Network, Pair};
use crate::metrics::{ContainerSample, ContainerSource};
use crate::record;
use crate::spec::IFACE;

/// Look-ups at once.
pub(super) const PARALLEL: usize = 16;

/// What a client sees of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatus {
    pub name: String,
    pub id: String,
    pub image: String,
    pub host: String,
    pub state: ContainerState,
    pub pid: u32,
    pub ip: String,
    pub gateway: String,
    pub ip6: String,
    pub gateway6: String,
    /// At most [`netplug::MAX_OBSERVED_ADDRESSES`] of each family, its own
    /// first.
    pub actual_addresses: Vec<String>,
    /// How many more eth0 has.
    pub actual_addresses_omitted: u32,
    pub mac: String,
    pub bridge: String,
    pub port: String,
    pub plugged: bool,
    pub started_at: String,
    pub network: NetworkMode,
    pub sandbox: String,
    /// The sandbox's state, `Missing` when it is gone; `Unknown` for a
    /// container plugged directly.
    pub sandbox_state: ContainerState,
    /// Docker's health status; empty without a healthcheck.
    pub health: String,
    pub exit_code: i64,
    pub environment: String,
    pub spec_hash: String,
    pub oneshot: bool,
    pub domain: String,
    pub service: String,
    /// Made with first-creation settings.
    pub first_creation: bool,
    /// Another node's claim to its address, seen on the wire; empty: none.
    pub conflict: String,
}

/// A scrape counts the containers `list` shows.
impl ContainerSource for Host {
    async fn containers(&self) -> Result<Vec<ContainerSample>, String> {
        let list = self.list().await.map_err(|e| e.to_string())?;
        Ok(list
            .into_iter()
            .map(|c| ContainerSample {
                state: c.state.to_string(),
                health: c.health,
            })
            .collect())
    }
}

impl Host {
    pub async fn show(&self, name: &str) -> Result<ContainerStatus, HostError> {
        let pair = self.managed_pair(name).await?;
        self.status_from(pair).await
    }

    pub async fn list(&self) -> Result<Vec<ContainerStatus>, HostError> {
        let listed = self.docker.list_managed().await.map_err(|e| self.err(e))?;
        let apps = listed
            .into_iter()
            .filter(|l| matches!(record::member(&l.labels), record::Member::App(_)));
        self.statuses(apps.map(|l| l.name).collect()).await
    }

    /// The status of each of `names` that is still there (one removed
    /// since it was listed is left out), several looked up at once: each is
    /// an inspect and a look into a netns.
    pub(super) async fn statuses(
        &self,
        names: Vec<String>,
    ) -> Result<Vec<ContainerStatus>, HostError> {
        futures::stream::iter(names)
            .map(|name| async move { self.status_if_there(&name).await })
            .buffered(PARALLEL)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .filter_map(Result::transpose)
            .collect()
    }

    /// The status of `name`; none when it went meanwhile.
    pub(super) async fn status_if_there(
        &self,
        name: &str,
    ) -> Result<Option<ContainerStatus>, HostError> {
        match self.status_of(name).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if matches!(e.kind(), HostErrorKind::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn status_of(&self, name: &str) -> Result<ContainerStatus, HostError> {
        let pair = self.managed_pair(name).await?;
        self.status_from(pair).await
    }

    async fn status_from(&self, pair: Pair) -> Result<ContainerStatus, HostError> {
        let (network, sandbox, sandbox_state) = match &pair.network {
            Network::Direct => (NetworkMode::Direct, String::new(), ContainerState::Unknown),
            Network::Sandbox(sb) => (
                NetworkMode::Sandbox,
                sb.clone(),
                pair.sandbox.as_ref().map_or(ContainerState::Missing, |s| {
                    ContainerState::from_docker(&s.status)
                }),
            ),
        };
        let sandbox_up = pair.holder().is_some_and(|h| h.running);
        let c = pair.app;
        let shown = record::shown(&c.labels);
        let mut status = ContainerStatus {
            name: c.name.clone(),
            id: c.id.clone(),
            image: c.image.clone(),
            host: self.config.host_id.clone(),
            state: ContainerState::from_docker(&c.status),
            pid: c.pid,
            ip: shown.ip,
            gateway: shown.gateway,
            ip6: shown.ip6,
            gateway6: shown.gateway6,
            mac: shown.mac,
            bridge: shown.bridge,
            started_at: if c.running {
                c.started_at.clone()
            } else {
                String::new()
            },
            network,
            sandbox,
            sandbox_state,
            health: c.health.clone(),
            exit_code: c.exit_code,
            environment: shown.environment,
            spec_hash: shown.spec_hash,
            oneshot: shown.oneshot,
            domain: shown.domain,
            service: shown.service,
            first_creation: shown.first_creation,
            conflict: self
                .guard
                .conflict_of(&c.name)
                .map(|c| c.describe())
                .unwrap_or_default(),
            ..Default::default()
        };
        // What the application sees, through its own pid: an application
        // left in the netns of a sandbox since replaced shows that.
        // A dual-stack container is plugged only with its IPv6 address too.
        let mut has_ip6 = status.ip6.is_empty();
        if c.running && c.pid != 0 {
            // Its own addresses are listed ahead of any others it added.
            let own: Vec<std::net::IpAddr> = [&status.ip, &status.ip6]
                .into_iter()
                .filter_map(|a| a.parse::<ipnetwork::IpNetwork>().ok())
                .map(|n| n.ip())
                .collect();
            let observed = self
                .plugger
                .observe(&NetnsTarget::Pid(c.pid), IFACE, &own)
                .await;
            if let Ok(observed) = observed {
                status.actual_addresses_omitted =
                    u32::try_from(observed.omitted).unwrap_or(u32::MAX);
                status.actual_addresses = observed
                    .addresses
                    .iter()
                    .map(ToString::to_string)
                    .chain(observed.addresses6.iter().map(ToString::to_string))
                    .collect();
                has_ip6 = status.ip6.is_empty()
                    || observed
                        .addresses6
                        .iter()
                        .any(|a| a.to_string() == status.ip6);
                if let Some(mac) = observed.mac {
                    status.mac = mac.to_string();
                }
            }
            // Plugged means traffic can flow: the host end exists and is up
            // (a host end that is down leaves the address unreachable while
            // eth0 still has it), and eth0 has an address.
            let host_end = self.plugger.host_end(&c.name, IFACE).await.ok().flatten();
            if let Some(link) = host_end {
                status.port = link.name;
                status.plugged =
                    link.up && !status.actual_addresses.is_empty() && has_ip6 && sandbox_up;
            }
        }
        Ok(status)
    }
}
