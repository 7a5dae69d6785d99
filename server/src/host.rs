//! The domain API of one container host: run, start, stop, destroy, show,
//! list and re-plug its managed containers. Nothing here knows gRPC.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use netplug::{NetnsTarget, Ovs, PlugError, Plugger, UnplugError};

use crate::docker::{DockerClient, DockerError, Inspected};
use crate::hooks::{HookContext, HookError, check_hooks, run_hooks};
use crate::progress::Reporter;
use crate::spec::{ContainerSpec, IFACE, LABEL_HASH, SpecError, plug_spec_from_labels};

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
        source: crate::registration::RegistrationError,
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

/// What a client sees of one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerStatus {
    pub name: String,
    pub id: String,
    pub image: String,
    pub host: String,
    pub state: String,
    pub pid: u32,
    pub ip: String,
    pub gateway: String,
    pub actual_addresses: Vec<String>,
    pub mac: String,
    pub bridge: String,
    pub port: String,
    pub plugged: bool,
    pub started_at: String,
}

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub host_id: String,
    pub hook_timeout: Duration,
    /// When set, hook programs must live in this directory.
    pub allow_hooks: Option<PathBuf>,
}

/// One container host.
pub struct Host {
    pub(crate) config: HostConfig,
    pub(crate) docker: DockerClient,
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
            Err(HostError::WrongHost {
                asked: asked.to_string(),
                me: self.config.host_id.clone(),
            })
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

    pub(crate) fn docker_err(&self, source: DockerError) -> HostError {
        HostError::Docker {
            host: self.config.host_id.clone(),
            source,
        }
    }

    fn hook_err(&self, source: HookError) -> HostError {
        HostError::Hook {
            host: self.config.host_id.clone(),
            source,
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
    pub(crate) async fn inspect_managed(&self, name: &str) -> Result<Option<Inspected>, HostError> {
        let Some(c) = self
            .docker
            .inspect(name)
            .await
            .map_err(|e| self.docker_err(e))?
        else {
            return Ok(None);
        };
        if !c.is_managed() || c.host() != Some(self.id()) {
            return Err(HostError::NotManaged {
                name: name.to_string(),
                host: self.config.host_id.clone(),
                owner: c.host().map(|h| format!("dockstack host {h}")),
            });
        }
        Ok(Some(c))
    }

    async fn plug(&self, c: &Inspected, reporter: &Reporter) -> Result<(), HostError> {
        let spec = plug_spec_from_labels(&c.name, &c.id, &c.labels)?;
        reporter.step(format!(
            "plug {}: {} on {} ({})",
            IFACE, spec.address, spec.bridge, c.name
        ));
        self.plugger
            .plug(&NetnsTarget::Pid(c.pid), &spec)
            .await
            .map_err(|source| HostError::Plug {
                host: self.config.host_id.clone(),
                source: Box::new(source),
            })?;
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
            .map_err(|source| HostError::Unplug {
                host: self.config.host_id.clone(),
                source,
            })
    }

    /// Precreation hooks, create, start, plug, postcreation hooks.
    pub async fn run(
        &self,
        spec: &ContainerSpec,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("run", &spec.name);
        spec.check()?;
        let allow = self.config.allow_hooks.as_deref();
        for (phase, hooks) in [
            ("precreation", &spec.precreation),
            ("postcreation", &spec.postcreation),
            ("postdestroy", &spec.postdestroy),
        ] {
            check_hooks(phase, &spec.name, hooks, allow).map_err(|e| self.hook_err(e))?;
        }
        let _guard = self.lock(&spec.name).await;
        let ip = spec.address.map(|a| a.ip().to_string()).unwrap_or_default();

        if let Some(existing) = self.inspect_managed(&spec.name).await? {
            let hash = existing.labels.get(LABEL_HASH).cloned().unwrap_or_default();
            if hash != spec.hash() {
                return Err(HostError::SpecDiffers {
                    name: spec.name.clone(),
                    differs: describe_difference(spec, &existing),
                });
            }
            reporter.step(format!("{} exists with the same spec", spec.name));
            if spec.running {
                let c = self.ensure_running(&existing).await?;
                self.plug(&c, reporter).await?;
            }
            return self.status_of(&spec.name).await;
        }

        if !self
            .docker
            .image_exists(&spec.image)
            .await
            .map_err(|e| self.docker_err(e))?
        {
            return Err(self.docker_err(DockerError::NoImage {
                image: spec.image.clone(),
                host: self.config.host_id.clone(),
            }));
        }

        let ctx = self.hook_context(&spec.name, &ip, "run");
        run_hooks("precreation", &spec.precreation, &ctx, reporter)
            .await
            .map_err(|e| self.hook_err(e))?;

        let created_dirs = create_volume_dirs(spec)?;
        reporter.step(format!("create {} from {}", spec.name, spec.image));
        let created = self.docker.create(spec).await;
        if let Err(e) = created {
            remove_dirs(&created_dirs);
            return Err(self.docker_err(e));
        }
        if spec.running {
            let started = async {
                reporter.step(format!("start {}", spec.name));
                self.docker
                    .start(&spec.name)
                    .await
                    .map_err(|e| self.docker_err(e))?;
                let c = self
                    .docker
                    .inspect(&spec.name)
                    .await
                    .map_err(|e| self.docker_err(e))?
                    .ok_or_else(|| HostError::NotFound {
                        name: spec.name.clone(),
                        host: self.config.host_id.clone(),
                    })?;
                if !c.running {
                    return Err(HostError::NotRunning {
                        name: spec.name.clone(),
                        host: self.config.host_id.clone(),
                    });
                }
                self.plug(&c, reporter).await
            }
            .await;
            if let Err(e) = started {
                // All or nothing: a container that could not be started and
                // plugged is removed again, with its port.
                let _ = self.unplug(&spec.name).await;
                if let Err(rm) = self.docker.remove(&spec.name).await {
                    reporter.warn(format!("rollback: {rm}"));
                }
                remove_dirs(&created_dirs);
                return Err(e);
            }
        }

        // A failing postcreation hook fails the run but leaves the
        // container running and plugged, so it can be inspected and fixed.
        run_hooks("postcreation", &spec.postcreation, &ctx, reporter)
            .await
            .map_err(|e| self.hook_err(e))?;
        self.status_of(&spec.name).await
    }

    async fn ensure_running(&self, c: &Inspected) -> Result<Inspected, HostError> {
        if c.running {
            return Ok(c.clone());
        }
        self.docker
            .start(&c.name)
            .await
            .map_err(|e| self.docker_err(e))?;
        self.docker
            .inspect(&c.name)
            .await
            .map_err(|e| self.docker_err(e))?
            .filter(|c| c.running)
            .ok_or_else(|| HostError::NotRunning {
                name: c.name.clone(),
                host: self.config.host_id.clone(),
            })
    }

    fn not_found(&self, name: &str) -> HostError {
        HostError::NotFound {
            name: name.to_string(),
            host: self.config.host_id.clone(),
        }
    }

    /// Starts a stopped container and plugs it from its labels.
    pub async fn start(
        &self,
        name: &str,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("start", name);
        let _guard = self.lock(name).await;
        let c = self
            .inspect_managed(name)
            .await?
            .ok_or_else(|| self.not_found(name))?;
        reporter.step(format!("start {name}"));
        let c = self.ensure_running(&c).await?;
        self.plug(&c, reporter).await?;
        self.status_of(name).await
    }

    /// Unplugs and stops.
    pub async fn stop(
        &self,
        name: &str,
        reporter: &Reporter,
    ) -> Result<ContainerStatus, HostError> {
        crate::fault::point("stop", name);
        let _guard = self.lock(name).await;
        self.inspect_managed(name)
            .await?
            .ok_or_else(|| self.not_found(name))?;
        reporter.step(format!("unplug {name}"));
        self.unplug(name).await?;
        reporter.step(format!("stop {name}"));
        self.docker
            .stop(name)
            .await
            .map_err(|e| self.docker_err(e))?;
        self.status_of(name).await
    }

    /// Stops, unplugs, removes, then runs the postdestroy hooks. Destroying
    /// a container that is not there only clears leftovers.
    pub async fn destroy(
        &self,
        name: &str,
        postdestroy: &[String],
        reporter: &Reporter,
    ) -> Result<(), HostError> {
        crate::fault::point("destroy", name);
        check_hooks(
            "postdestroy",
            name,
            postdestroy,
            self.config.allow_hooks.as_deref(),
        )
        .map_err(|e| self.hook_err(e))?;
        let _guard = self.lock(name).await;
        let Some(c) = self.inspect_managed(name).await? else {
            reporter.warn(format!(
                "container {name} does not exist on host {}",
                self.config.host_id
            ));
            self.unplug(name).await?;
            return Ok(());
        };
        let ip = c
            .labels
            .get("dockstack.ip")
            .and_then(|a| a.split('/').next())
            .unwrap_or_default()
            .to_string();
        reporter.step(format!("unplug {name}"));
        let unplugged = self.unplug(name).await;
        reporter.step(format!("remove {name}"));
        self.docker
            .remove(name)
            .await
            .map_err(|e| self.docker_err(e))?;
        unplugged?;
        let ctx = self.hook_context(name, &ip, "destroy");
        run_hooks("postdestroy", postdestroy, &ctx, reporter)
            .await
            .map_err(|e| self.hook_err(e))
    }

    pub async fn show(&self, name: &str) -> Result<ContainerStatus, HostError> {
        self.inspect_managed(name)
            .await?
            .ok_or_else(|| self.not_found(name))?;
        self.status_of(name).await
    }

    pub async fn list(&self) -> Result<Vec<ContainerStatus>, HostError> {
        let names = self
            .docker
            .list_managed()
            .await
            .map_err(|e| self.docker_err(e))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match self.status_of(&name).await {
                Ok(s) => out.push(s),
                // Removed between list and inspect.
                Err(HostError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn status_of(&self, name: &str) -> Result<ContainerStatus, HostError> {
        let c = self
            .docker
            .inspect(name)
            .await
            .map_err(|e| self.docker_err(e))?
            .ok_or_else(|| self.not_found(name))?;
        let label = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        let mut status = ContainerStatus {
            name: c.name.clone(),
            id: c.id.clone(),
            image: c.image.clone(),
            host: self.config.host_id.clone(),
            state: c.status.clone(),
            pid: c.pid,
            ip: label("dockstack.ip"),
            gateway: label("dockstack.gateway"),
            mac: label("dockstack.mac"),
            bridge: label("dockstack.bridge"),
            started_at: if c.running {
                c.started_at.clone()
            } else {
                String::new()
            },
            ..Default::default()
        };
        if c.running && c.pid != 0 {
            if let Ok(observed) = self.plugger.observe(&NetnsTarget::Pid(c.pid), IFACE).await {
                status.actual_addresses =
                    observed.addresses.iter().map(ToString::to_string).collect();
                if let Some(mac) = observed.mac {
                    status.mac = mac.to_string();
                }
            }
            // Plugged means traffic can flow: the host end exists and is up
            // (a host end that is down leaves the address unreachable while
            // eth0 still has it), and eth0 has an address.
            let host_end = self.plugger.host_end(name, IFACE).await.ok().flatten();
            if let Some(link) = host_end {
                status.port = link.name;
                status.plugged = link.up && !status.actual_addresses.is_empty();
            }
        }
        Ok(status)
    }

    /// Plugs a managed container again from its labels, if it runs.
    pub async fn replug(&self, name: &str) -> Result<bool, HostError> {
        let _guard = self.lock(name).await;
        let Some(c) = self.inspect_managed(name).await? else {
            return Ok(false);
        };
        if !c.running || c.pid == 0 {
            return Ok(false);
        }
        self.plug(&c, &Reporter::silent()).await?;
        Ok(true)
    }

    /// After a Docker event: plugs the container if it runs, and otherwise
    /// removes its plug. A container that died or was removed behind the
    /// server's back leaves an OVS port whose veth went with its netns;
    /// that port goes. Deciding from the state Docker reports now, under the
    /// container's lock, makes the outcome right whatever order the events
    /// of one container are handled in (a die, then a restart policy's start).
    ///
    /// `started`: the event is a start. A die or destroy event that finds the
    /// container running again leaves it to the start event Docker sends for
    /// every start, so each process is plugged once, timed from its start.
    pub async fn sync_plug(&self, name: &str, started: bool) -> Result<Synced, HostError> {
        let _guard = self.lock(name).await;
        let c = match self.inspect_managed(name).await {
            Ok(c) => c,
            // The name went to a container we do not manage: our port is stale all the same.
            Err(HostError::NotManaged { .. }) => None,
            Err(e) => return Err(e),
        };
        match c {
            Some(c) if c.running && c.pid != 0 && !started => Ok(Synced::StartPending),
            Some(c) if c.running && c.pid != 0 && self.plugged_already(&c) => {
                Ok(Synced::AlreadyPlugged)
            }
            Some(c) if c.running && c.pid != 0 => {
                self.plug(&c, &Reporter::silent()).await?;
                Ok(Synced::Plugged)
            }
            _ => {
                self.unplug(name).await?;
                Ok(Synced::Unplugged)
            }
        }
    }

    /// At start-up: plug every running managed container, and remove OVS
    /// ports whose container is gone.
    pub async fn reconcile(&self) -> Result<(), HostError> {
        let names = self
            .docker
            .list_managed()
            .await
            .map_err(|e| self.docker_err(e))?;
        for name in &names {
            match self.replug(name).await {
                Ok(true) => tracing::info!(container = %name, "re-plugged at start-up"),
                Ok(false) => {}
                Err(e) => tracing::error!(container = %name, "re-plug at start-up failed: {e}"),
            }
        }
        let mut alive = std::collections::HashSet::new();
        for (_, owner) in self.plugger.ovs().owned_ports().await.unwrap_or_default() {
            if let Ok(Some(c)) = self.docker.inspect(&owner.container).await
                && c.running
            {
                alive.insert(owner.container.clone());
            }
        }
        let (removed, errors) = self.plugger.gc(|o| alive.contains(&o.container)).await;
        for port in removed {
            tracing::info!(port = %port, "removed stale port");
        }
        for e in errors {
            tracing::error!("removing stale ports: {e}");
        }
        Ok(())
    }

    /// Follows Docker's events for this host's containers, for as long as
    /// the server runs: a container that starts is plugged again, one that
    /// dies or is removed loses its port. When dockerd goes away, waits for
    /// it, then catches up from the last event seen and reconciles.
    pub async fn follow_events(self: Arc<Self>) {
        let mut since = self.created;
        let mut first = true;
        loop {
            if !first {
                while let Err(e) = self.docker.ping().await {
                    tracing::warn!("waiting for dockerd: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                // Docker forgets its events when it restarts.
                if let Err(e) = self.reconcile().await {
                    tracing::error!("reconcile after reconnecting to dockerd failed: {e}");
                }
            }
            first = false;
            let mut events = self.docker.container_events(since);
            while let Some(ev) = events.next().await {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        tracing::warn!("docker event stream: {e}");
                        break;
                    }
                };
                let event_ns = ev.time_nano.unwrap_or(0);
                if let Ok(ns) = u64::try_from(event_ns)
                    && ns > 0
                {
                    since = UNIX_EPOCH + Duration::from_nanos(ns);
                }
                let action = ev.action.unwrap_or_default();
                let Some(name) = ev
                    .actor
                    .and_then(|a| a.attributes)
                    .and_then(|mut a| a.remove("name"))
                else {
                    continue;
                };
                let host = Arc::clone(&self);
                tokio::spawn(async move {
                    host.on_event(&name, &action, event_ns).await;
                });
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Brings one container in line after one of its events, and logs
    /// what that took (`since_event_ms`: from Docker's event to the plug).
    async fn on_event(&self, name: &str, action: &str, event_ns: i64) {
        let began = Instant::now();
        let result = self.sync_plug(name, action == "start").await;
        let duration_ms = began.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(Synced::Plugged) => {
                let latency_ms = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .ok()
                    .and_then(|now| i64::try_from(now.as_nanos()).ok().map(|n| n - event_ns))
                    .filter(|_| event_ns > 0)
                    .map(|ns| ns as f64 / 1e6);
                tracing::info!(
                    container = %name,
                    action = "replug",
                    duration_ms,
                    since_event_ms = latency_ms,
                    result = "ok",
                    "re-plugged after start event"
                );
            }
            Ok(Synced::AlreadyPlugged) => {
                tracing::debug!(container = %name, event = action, "plugged already");
            }
            Ok(Synced::StartPending) => {
                tracing::debug!(container = %name, event = action, "running again: left to its start event");
            }
            Ok(Synced::Unplugged) if action == "start" => {}
            Ok(Synced::Unplugged) => {
                tracing::info!(
                    container = %name,
                    action = "unplug",
                    duration_ms,
                    result = "ok",
                    "unplugged after {action} event"
                );
            }
            Err(e) => {
                tracing::error!(container = %name, event = action, result = "error", "{e}")
            }
        }
    }
}

/// What [`Host::sync_plug`] made of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    Plugged,
    /// The server plugged this very process already (in `run` or `start`).
    AlreadyPlugged,
    /// Running again after a die: left to the start event that follows.
    StartPending,
    Unplugged,
}

/// Names the fields that differ between a spec and an existing container,
/// as far as its labels and image tell.
fn describe_difference(spec: &ContainerSpec, existing: &Inspected) -> String {
    let mut diffs = Vec::new();
    if existing.image != spec.image {
        diffs.push(format!("image {} → {}", existing.image, spec.image));
    }
    for (key, new) in spec.labels("") {
        if key == LABEL_HASH || key == crate::spec::LABEL_HOST {
            continue;
        }
        let old = existing.labels.get(&key).cloned().unwrap_or_default();
        if old != new {
            let field = key.trim_start_matches(crate::spec::LABEL_PREFIX);
            diffs.push(format!("{field} {old} → {new}"));
        }
    }
    if diffs.is_empty() {
        "volumes, env, command, dns, domain, privileges or restart policy".into()
    } else {
        diffs.join(", ")
    }
}

/// Creates missing host directories of bind volumes, as the 2015 server
/// did; returns the ones it created so a failed run can remove them.
fn create_volume_dirs(spec: &ContainerSpec) -> Result<Vec<PathBuf>, HostError> {
    let mut created = Vec::new();
    for v in &spec.volumes {
        let src = Path::new(v.split(':').next().unwrap_or_default());
        if src.exists() {
            continue;
        }
        // Remember each ancestor that did not exist, outermost first.
        let mut missing: Vec<PathBuf> = src
            .ancestors()
            .take_while(|p| !p.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        if let Err(source) = std::fs::create_dir_all(src) {
            remove_dirs(&created);
            return Err(HostError::Volume {
                name: spec.name.clone(),
                path: src.to_path_buf(),
                source,
            });
        }
        created.extend(missing);
    }
    Ok(created)
}

fn remove_dirs(dirs: &[PathBuf]) {
    for d in dirs.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}
