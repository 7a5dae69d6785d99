//! One container host: the [`Host`], its per-container locks, and plugging
//! and unplugging a container's eth0. The operations live in the submodules.

mod error;
mod exec;
mod lifecycle;
mod reconcile;
mod register;
mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use netplug::{NetnsTarget, Ovs, Plugger};

use crate::docker::{DockerClient, Inspected};
use crate::hooks::HookContext;
use crate::progress::Reporter;
use crate::record;
use crate::spec::IFACE;

pub use error::{HostError, HostErrorKind};
pub use reconcile::Synced;
pub use register::{DnsTarget, PuppetTarget, Registration};
pub use status::ContainerStatus;

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub host_id: String,
    pub hook_timeout: Duration,
    /// When set, hook programs must live in this directory.
    pub allow_hooks: Option<PathBuf>,
}

/// One container host.
#[derive(Debug)]
pub struct Host {
    config: HostConfig,
    docker: DockerClient,
    plugger: Plugger,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When the host was made, before its start-up reconcile: Docker's
    /// events are followed from here, so a container started while the
    /// reconcile ran is plugged too.
    created: SystemTime,
    /// Per container, the `StartedAt` of the process this server last
    /// plugged. Docker's start event for a container that `run` or `start`
    /// has just plugged needs no second plug: skipping it spares every run
    /// a second round of netlink and OVSDB requests.
    plugged: Mutex<HashMap<String, String>>,
}

impl Host {
    pub fn new(config: HostConfig, docker: DockerClient, ovs: Ovs) -> Self {
        Host {
            config,
            docker,
            plugger: Plugger::new(ovs),
            locks: Mutex::new(HashMap::new()),
            created: SystemTime::now(),
            plugged: Mutex::new(HashMap::new()),
        }
    }

    pub fn id(&self) -> &str {
        &self.config.host_id
    }

    /// Refuses requests meant for another host.
    pub fn check_host(&self, asked: &str) -> Result<(), HostError> {
        if asked == self.config.host_id {
            Ok(())
        } else {
            Err(self.err(HostErrorKind::WrongHost {
                asked: asked.to_string(),
            }))
        }
    }

    /// Operations on one container run one at a time; others go on.
    async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(name.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    /// An error of this host.
    fn err(&self, kind: impl Into<HostErrorKind>) -> HostError {
        HostError {
            host: self.config.host_id.clone(),
            kind: Box::new(kind.into()),
        }
    }

    fn hook_context(&self, name: &str, ip: &str, action: &'static str) -> HookContext {
        HookContext {
            container: name.to_string(),
            ip: ip.to_string(),
            host: self.config.host_id.clone(),
            action,
            timeout: self.config.hook_timeout,
        }
    }

    /// The container if it exists and is ours; an error if it belongs to
    /// someone else.
    async fn inspect_managed(&self, name: &str) -> Result<Option<Inspected>, HostError> {
        let Some(c) = self.docker.inspect(name).await.map_err(|e| self.err(e))? else {
            return Ok(None);
        };
        if !c.is_managed() || c.host() != Some(self.id()) {
            return Err(self.err(HostErrorKind::NotManaged {
                name: name.to_string(),
                owner: c.host().map(|h| format!("dockstack host {h}")),
            }));
        }
        Ok(Some(c))
    }

    /// The container, which must exist and be ours.
    async fn managed(&self, name: &str) -> Result<Inspected, HostError> {
        self.inspect_managed(name)
            .await?
            .ok_or_else(|| self.not_found(name))
    }

    /// The container, whoever's it is; not found is an error.
    async fn inspect_existing(&self, name: &str) -> Result<Inspected, HostError> {
        self.docker
            .inspect(name)
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| self.not_found(name))
    }

    async fn plug(&self, c: &Inspected, reporter: &Reporter) -> Result<(), HostError> {
        let spec = record::plug_spec(&c.name, &c.id, &c.labels).map_err(|e| self.err(e))?;
        reporter.step(format!(
            "plug {}: {} on {} ({})",
            IFACE, spec.address, spec.bridge, c.name
        ));
        self.plugger
            .plug(&NetnsTarget::Pid(c.pid), &spec)
            .await
            .map_err(|e| self.err(e))?;
        self.plugged_table()
            .insert(c.name.clone(), c.started_at.clone());
        Ok(())
    }

    fn plugged_table(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.plugged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this very process of `c` (same start time) was plugged here.
    fn plugged_already(&self, c: &Inspected) -> bool {
        !c.started_at.is_empty() && self.plugged_table().get(&c.name) == Some(&c.started_at)
    }

    async fn unplug(&self, name: &str) -> Result<(), HostError> {
        self.plugged_table().remove(name);
        self.plugger
            .unplug(name, IFACE)
            .await
            .map_err(|e| self.err(e))
    }

    fn not_found(&self, name: &str) -> HostError {
        self.err(HostErrorKind::NotFound {
            name: name.to_string(),
        })
    }
}
