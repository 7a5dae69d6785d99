//! One container host: the [`Host`], its per-container locks, the pair a
//! managed container is (application and sandbox), and plugging and
//! unplugging its eth0. The operations live in the submodules.

mod binds;
mod error;
mod exec;
mod gate;
mod lifecycle;
mod macs;
mod ovswatch;
mod plan;
mod prestop;
mod reconcile;
mod register;
mod replace;
mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use netplug::{NetnsTarget, Ovs, Plugger};

use crate::docker::{DockerClient, Inspected};
use crate::guard::AddressGuard;
use crate::hooks::HookContext;
use crate::metrics::{PlugKind, metrics};
use crate::progress::Reporter;
use crate::record;
use crate::record::Network;
use crate::spec::IFACE;

pub use error::{Category, HostError, HostErrorKind};
pub use plan::{HostPlan, PlanEntry};
pub use reconcile::Synced;
pub use register::{DnsTarget, PuppetTarget, RecordOf, Registration};
pub use status::ContainerStatus;

#[derive(Debug, Clone)]
pub struct HostConfig {
    pub host_id: String,
    pub hook_timeout: Duration,
    /// When set, hook programs must live in this directory.
    pub allow_hooks: Option<PathBuf>,
    /// How long a fresh plug probes the bridge for its address; `None`:
    /// never (`--no-probe`).
    pub probe: Option<Duration>,
    /// Where the server keeps what Docker cannot: the config hashes last
    /// applied to each container (see `confighash`).
    pub state_dir: PathBuf,
}

/// How long the events of a container removed by this server are ignored.
const REMOVED_KEPT: Duration = Duration::from_secs(60);

/// Locks kept in the table before the idle ones are dropped.
const LOCKS_KEPT: usize = 1024;

/// One container host.
#[derive(Debug)]
pub struct Host {
    config: HostConfig,
    docker: DockerClient,
    plugger: Plugger,
    /// Per container, the lock of its operations and event syncs (see
    /// `Host::lock`).
    locks: LockTable,
    /// Per container, the lock of whatever changes its plug or its pair;
    /// taken after `locks` by whoever takes both (see `Host::lock`).
    acts: LockTable,
    /// When the host was made, before its start-up reconcile: Docker's
    /// events are followed from here, so a container started while the
    /// reconcile ran is plugged too.
    created: SystemTime,
    /// Per container, the `StartedAt` of the netns holder's process (its
    /// sandbox, or itself when plugged directly) this server last plugged.
    /// Docker's start event for a sandbox that `run` or `start` has just
    /// plugged needs no second plug: skipping it spares every run a second
    /// round of netlink and OVSDB requests.
    plugged: Mutex<HashMap<String, String>>,
    /// Ids of containers this server has just removed itself (a destroy),
    /// with when: their die and destroy events need no clean-up, which
    /// would only queue on the container's lock ahead of its recreate.
    removed: Mutex<HashMap<String, std::time::Instant>>,
    /// Pairs whose event sync waits for their lock, and whether one of the
    /// events folded into it was a start (see `Host::sync_event`).
    waiting: Mutex<HashMap<String, bool>>,
    /// Pairs whose sandbox a start event plugged ahead of their sync, which
    /// still has to join the application to it (see
    /// `Host::plug_started_sandbox`).
    unjoined: Mutex<std::collections::HashSet<String>>,
    /// The mounts of the registry containers found here (see
    /// `register::SeenMounts`).
    seen_mounts: register::SeenMounts,
    /// One admission of pinned binds at a time (see `Host::admit_binds`).
    bind_admission: tokio::sync::Mutex<()>,
    /// The pinned binds of runs under way.
    pending_binds: binds::PendingBinds,
    /// One admission of a MAC at a time (see `Host::admit_mac`).
    mac_admission: tokio::sync::Mutex<()>,
    /// The MACs of runs under way.
    pending_macs: macs::PendingMacs,
    /// The plugged addresses, watched for conflicts.
    guard: Arc<AddressGuard>,
}

type LockTable = Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>;

/// Both locks of a container: its operations run one at a time, and
/// nothing else changes its plug meanwhile.
pub(crate) struct PairGuard {
    _pair: tokio::sync::OwnedMutexGuard<()>,
    _act: tokio::sync::OwnedMutexGuard<()>,
}

/// A managed container as its user knows it: the application, and what
/// holds its network namespace.
#[derive(Debug, Clone)]
struct Pair {
    app: Inspected,
    network: Network,
    /// The sandbox, when the application has one and it exists.
    sandbox: Option<Inspected>,
}

impl Pair {
    /// The container whose netns is plugged: the sandbox, or the
    /// application itself when it is plugged directly.
    fn holder(&self) -> Option<&Inspected> {
        match self.network {
            Network::Sandbox(_) => self.sandbox.as_ref(),
            Network::Direct => Some(&self.app),
        }
    }
}

/// `name`'s lock in `table`. The table keeps only locks someone holds or
/// waits for, once it grows.
async fn lock_in(table: &LockTable, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
    let lock = {
        let mut locks = table.lock().unwrap_or_else(|e| e.into_inner());
        if locks.len() >= LOCKS_KEPT {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(name.to_string()).or_default().clone()
    };
    lock.lock_owned().await
}

/// Whether the running application `app` is known to be in another
/// network namespace than `holder`'s (the netns of a sandbox since
/// replaced). A process that is not there to look at (Docker reports a
/// pid of 0 around a start) is not known to be anywhere else.
fn in_other_netns(app: &Inspected, holder: &Inspected) -> bool {
    match (netns_of(app.pid), netns_of(holder.pid)) {
        (Some(a), Some(h)) => a != h,
        _ => false,
    }
}

/// Whether both are known to be in one network namespace (unlike
/// `!in_other_netns`, an unknown is not one).
fn same_netns(app: &Inspected, holder: &Inspected) -> bool {
    matches!((netns_of(app.pid), netns_of(holder.pid)), (Some(a), Some(h)) if a == h)
}

/// The identity of the network namespace of process `pid`.
fn netns_of(pid: u32) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    (pid != 0)
        .then(|| std::fs::metadata(format!("/proc/{pid}/ns/net")).ok())
        .flatten()
        .map(|m| m.ino())
}

impl Host {
    /// Marks containers about to be removed by this server (see
    /// [`Host::removed`]).
    fn mark_removed<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        let now = std::time::Instant::now();
        let mut removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        removed.retain(|_, at| now.duration_since(*at) < REMOVED_KEPT);
        for id in ids.into_iter().filter(|id| !id.is_empty()) {
            removed.insert(id.to_string(), now);
        }
    }

    /// Whether the container of `id` was removed by this server lately.
    fn removed_by_us(&self, id: &str) -> bool {
        let removed = self.removed.lock().unwrap_or_else(|p| p.into_inner());
        removed
            .get(id)
            .is_some_and(|at| at.elapsed() < REMOVED_KEPT)
    }

    pub fn new(config: HostConfig, docker: DockerClient, ovs: Ovs) -> Self {
        Host {
            config,
            docker,
            plugger: Plugger::new(ovs),
            locks: Mutex::new(HashMap::new()),
            acts: Mutex::new(HashMap::new()),
            created: SystemTime::now(),
            plugged: Mutex::new(HashMap::new()),
            removed: Mutex::new(HashMap::new()),
            waiting: Mutex::new(HashMap::new()),
            unjoined: Mutex::new(std::collections::HashSet::new()),
            seen_mounts: register::SeenMounts::default(),
            bind_admission: tokio::sync::Mutex::new(()),
            pending_binds: binds::PendingBinds::default(),
            mac_admission: tokio::sync::Mutex::new(()),
            pending_macs: macs::PendingMacs::default(),
            guard: Arc::default(),
        }
    }

    /// The plugged addresses' guard (see [`AddressGuard::watch`]).
    pub fn guard(&self) -> &Arc<AddressGuard> {
        &self.guard
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

    /// Operations on one container run one at a time; others go on. An
    /// operation holds both of the container's locks throughout; an event
    /// sync holds the first throughout and the second while it acts (see
    /// `Host::sync_locked`), and a sandbox's start plugs it under the
    /// second alone (see `Host::plug_started_sandbox`).
    async fn lock(&self, name: &str) -> PairGuard {
        let pair = self.sync_lock(name).await;
        PairGuard {
            _pair: pair,
            _act: self.act_lock(name).await,
        }
    }

    /// The first of [`Host::lock`]'s locks.
    async fn sync_lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        lock_in(&self.locks, name).await
    }

    /// The second of [`Host::lock`]'s locks.
    async fn act_lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        lock_in(&self.acts, name).await
    }

    fn unjoined(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.unjoined.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An error of this host.
    fn err(&self, kind: impl Into<HostErrorKind>) -> HostError {
        HostError {
            host: self.config.host_id.clone(),
            kind: Box::new(kind.into()),
        }
    }

    fn hook_context(
        &self,
        name: &str,
        ip: &str,
        ip6: Option<String>,
        action: &'static str,
    ) -> HookContext {
        HookContext {
            container: name.to_string(),
            ip: ip.to_string(),
            ip6,
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
        // Docker also finds a container by its id or an id prefix: only its
        // very name is the container this request, and its lock, are about.
        if c.name != name {
            return Ok(None);
        }
        if !c.is_managed() || c.host() != Some(self.id()) {
            return Err(self.err(HostErrorKind::NotManaged {
                name: name.to_string(),
                owner: c.host().map(|h| format!("dockstack host {h}")),
            }));
        }
        Ok(Some(c))
    }

    /// The container, whoever's it is; not found is an error.
    async fn inspect_existing(&self, name: &str) -> Result<Inspected, HostError> {
        self.docker
            .inspect(name)
            .await
            .map_err(|e| self.err(e))?
            .filter(|c| c.name == name)
            .ok_or_else(|| self.not_found(name))
    }

    /// The pair of the managed container `name`, if it exists.
    async fn pair(&self, name: &str) -> Result<Option<Pair>, HostError> {
        let Some(app) = self.inspect_managed(name).await? else {
            return Ok(None);
        };
        let network = match record::member(&app.labels) {
            record::Member::App(network) => network,
            // A sandbox is no container of the user's.
            record::Member::Sandbox(_) => return Ok(None),
        };
        let sandbox = match &network {
            Network::Sandbox(sb) => self.inspect_managed(sb).await?,
            Network::Direct => None,
        };
        Ok(Some(Pair {
            app,
            network,
            sandbox,
        }))
    }

    /// The managed application container `name` of this host, never a
    /// sandbox: what logs, exec sessions and events are given.
    pub async fn application(&self, name: &str) -> Result<Inspected, HostError> {
        Ok(self.managed_pair(name).await?.app)
    }

    /// The names of this host's managed applications (not their sandboxes).
    pub async fn application_names(&self) -> Result<Vec<String>, HostError> {
        let listed = self.docker.list_managed().await.map_err(|e| self.err(e))?;
        Ok(listed
            .into_iter()
            .filter(|c| matches!(record::member(&c.labels), record::Member::App(_)))
            .map(|c| c.name)
            .collect())
    }

    /// Docker, for the streams that read it directly (logs, exec sessions,
    /// events).
    pub fn docker(&self) -> &DockerClient {
        &self.docker
    }

    /// An error of this host (its id in the message).
    pub fn error(&self, kind: impl Into<HostErrorKind>) -> HostError {
        self.err(kind)
    }

    /// The pair, which must exist.
    async fn managed_pair(&self, name: &str) -> Result<Pair, HostError> {
        self.pair(name).await?.ok_or_else(|| self.not_found(name))
    }

    /// Plugs eth0 of container `owner` into the netns of `holder` (its
    /// sandbox, or itself), from `holder`'s labels; whether anything had to
    /// change.
    /// Plugs `owner`'s eth0 into the netns of `holder`; `probe`: first see
    /// that nobody answers for the address (a run or start: the address
    /// was nobody's a moment ago; not a re-plug after an event, which must
    /// be quick and whose address is its own).
    async fn plug(
        &self,
        owner: &str,
        holder: &Inspected,
        probe: bool,
        reporter: &Reporter,
    ) -> Result<bool, HostError> {
        let kind = if probe {
            PlugKind::Plug
        } else {
            PlugKind::Replug
        };
        let mut spec = match record::plug_spec(owner, &holder.id, &holder.labels) {
            Ok(spec) => spec,
            Err(e) => {
                metrics().plug_failed(None);
                return Err(self.err(e));
            }
        };
        spec.probe = self.config.probe.filter(|_| probe);
        reporter.step(format!(
            "plug {}: {} on {} ({})",
            IFACE, spec.address, spec.bridge, holder.name
        ));
        let began = std::time::Instant::now();
        let plugged = match self
            .plugger
            .plug(&NetnsTarget::Pid(holder.pid), &spec)
            .await
        {
            Ok(plugged) => plugged,
            Err(e) => {
                metrics().plug_failed(e.step());
                crate::journal::journal().record(owner, "plug failed", e.to_string());
                return Err(self.err(e));
            }
        };
        if plugged.changed {
            metrics().plugged(kind, began.elapsed());
            crate::journal::journal().record(
                owner,
                kind.label(),
                format!("{} {} on {}", IFACE, spec.address, spec.bridge),
            );
        }
        self.plugged_table()
            .insert(owner.to_string(), holder.started_at.clone());
        self.guard
            .plugged(owner, spec.address.ip(), spec.effective_mac(), holder.pid);
        Ok(plugged.changed)
    }

    fn waiting_syncs(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn plugged_table(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.plugged.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this very process of `holder` (same start time) was plugged
    /// here for `owner`.
    fn plugged_already(&self, owner: &str, holder: &Inspected) -> bool {
        !holder.started_at.is_empty() && self.plugged_table().get(owner) == Some(&holder.started_at)
    }

    async fn unplug(&self, name: &str) -> Result<(), HostError> {
        self.plugged_table().remove(name);
        self.guard.unplugged(name);
        self.unjoined().remove(name);
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
