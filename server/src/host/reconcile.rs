//! Keeping pairs and plugs in line with Docker: following its events, the
//! start-up reconcile, and removing ports and sandboxes whose container is
//! gone.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;

use super::{Host, HostError, HostErrorKind, Network, in_other_netns};
use crate::docker::DockerError;
use crate::metrics::metrics;
use crate::progress::Reporter;
use crate::record;

impl Host {
    /// After a Docker event of a container or of its sandbox: brings the
    /// pair in line with what Docker reports now, under the container's
    /// lock, so the outcome is right whatever order the events of one pair
    /// are handled in (a die, then a restart policy's start).
    ///
    /// A sandbox that runs is plugged; if that made or mended anything, its
    /// netns is new, and the application is restarted into it (or started,
    /// when Docker would bring it back by itself). The application's own
    /// restarts never touch the network. A pair whose netns is gone, or a
    /// sandbox whose application is gone, loses its port (and the sandbox).
    ///
    /// `started`: the event is a start. A die that finds the container
    /// running again, or about to be, leaves it to the start event Docker
    /// sends for every start.
    pub async fn sync_plug(&self, event_name: &str, started: bool) -> Result<Synced, HostError> {
        // A sandbox's events are its application's.
        let name = record::sandbox_owner(event_name).unwrap_or(event_name);
        let _guard = self.sync_lock(name).await;
        self.sync_locked(name, started).await
    }

    /// On a sandbox's start event: plugs the sandbox at once, under the
    /// lock of acts alone, not behind the pair's sync.
    ///
    /// In a storm of restarts dockerd answers an inspect of a container
    /// only once its restart is done, and the application's restart, which
    /// needs its sandbox back, comes last and takes longest (seconds here).
    /// A sync of an earlier event, waiting on the application's inspect,
    /// kept the sandbox's new netns without eth0 all that while; the
    /// sandbox's own inspect returns as soon as the sandbox is back. What
    /// is left, joining the application to it, stays the sync's.
    /// True when it plugged the sandbox anew.
    pub(super) async fn plug_started_sandbox(&self, sandbox_name: &str) -> bool {
        let Some(name) = record::sandbox_owner(sandbox_name) else {
            return false;
        };
        let _act = self.act_lock(name).await;
        // A test holds the plug here, the pair's other acts with it, so
        // that Docker's restart policy starts the application first.
        crate::fault::pause("replug").await;
        let began = Instant::now();
        let Ok(Some(sandbox)) = self.inspect_managed(sandbox_name).await else {
            return false;
        };
        let ours = matches!(record::member(&sandbox.labels), record::Member::Sandbox(owner) if owner == name);
        if !ours || !sandbox.running || sandbox.pid == 0 || self.plugged_already(name, &sandbox) {
            return false;
        }
        match self.plug(name, &sandbox, false, &Reporter::silent()).await {
            Ok(changed) => {
                if changed {
                    self.unjoined().insert(name.to_string());
                }
                tracing::debug!(container = %name, changed, ms = began.elapsed().as_secs_f64() * 1e3, "started sandbox plugged ahead of its pair's sync");
                changed
            }
            Err(e) => {
                tracing::debug!(container = %name, "started sandbox not plugged ahead, left to its pair's sync: {e}");
                false
            }
        }
    }

    /// An event's [`Host::sync_plug`], folded into the one already waiting
    /// for the pair's lock, if there is one: that one reads Docker's state
    /// once it has the lock, which is all a second would do. In a storm
    /// (every process of a host killed) a pair has four events or more,
    /// each a few inspects of a busy dockerd; queued one by one, they kept
    /// its sandbox's start waiting for seconds. `None`: folded.
    async fn sync_event(
        &self,
        event_name: &str,
        started: bool,
    ) -> Option<Result<Synced, HostError>> {
        let name = record::sandbox_owner(event_name).unwrap_or(event_name);
        {
            let mut waiting = self.waiting_syncs();
            if let Some(start) = waiting.get_mut(name) {
                *start |= started;
                return None;
            }
            waiting.insert(name.to_string(), started);
        }
        let waited = Instant::now();
        let _guard = self.sync_lock(name).await;
        tracing::debug!(container = %name, lock_ms = waited.elapsed().as_secs_f64() * 1e3, started, "event sync has the lock");
        // From here on, a new event needs a sync of its own: what this one
        // reads of Docker may predate it.
        let started = self.waiting_syncs().remove(name).unwrap_or(started);
        Some(self.sync_locked(name, started).await)
    }

    /// [`Host::sync_plug`] of `name`, whose sync lock the caller holds.
    /// Docker is read under that lock alone; the acts take the lock of acts
    /// too, and come to nothing if a sandbox's start plugged the pair
    /// meanwhile: what was read predates that plug, which stands, and that
    /// start's own sync, which follows this one, reads afresh.
    async fn sync_locked(&self, name: &str, started: bool) -> Result<Synced, HostError> {
        let before = self.plugged_table().get(name).cloned();
        let began = Instant::now();
        let pair = self.pair(name).await;
        tracing::debug!(container = %name, inspect_ms = began.elapsed().as_secs_f64() * 1e3, "pair inspected");
        let _act = self.act_lock(name).await;
        if self.plugged_table().get(name).cloned() != before {
            return Ok(Synced::AlreadyPlugged);
        }
        let pair = match pair {
            Ok(p) => p,
            // The name went to a container we do not manage: our port is stale all the same.
            Err(e) if matches!(e.kind(), HostErrorKind::NotManaged { .. }) => None,
            Err(e) => return Err(e),
        };
        let Some(pair) = pair else {
            match self.clear_orphan_sandbox(&record::sandbox_name(name)).await {
                Ok(()) => {}
                // Not ours to remove.
                Err(e)
                    if matches!(
                        e.kind(),
                        HostErrorKind::Docker(DockerError::NameTaken { .. })
                    ) => {}
                Err(e) => return Err(e),
            }
            self.unplug(name).await?;
            return Ok(Synced::Unplugged);
        };
        let Some(holder) = pair.holder().cloned() else {
            // The sandbox is gone: nothing holds a netns to plug.
            self.unplug(name).await?;
            return Ok(Synced::Unplugged);
        };
        let sandboxed = matches!(pair.network, Network::Sandbox(_));
        if holder.running && holder.pid != 0 {
            if !sandboxed && !started {
                return Ok(Synced::StartPending);
            }
            let app_in_place = !sandboxed || !in_other_netns(&pair.app, &holder);
            let plugged_already = self.plugged_already(name, &holder);
            // Plugged ahead by its start: only the join is left.
            let ahead = self.unjoined().remove(name) && plugged_already;
            if plugged_already && app_in_place && !ahead {
                return Ok(Synced::AlreadyPlugged);
            }
            let reporter = Reporter::silent();
            let began = Instant::now();
            let changed = ahead || self.plug(name, &holder, false, &reporter).await?;
            tracing::debug!(container = %name, changed, plug_ms = began.elapsed().as_secs_f64() * 1e3, "sandbox plugged");
            if sandboxed {
                let start = changed && pair.app.restarts_itself();
                self.join(&pair, &holder, changed, start, &reporter).await?;
            }
            return Ok(if changed || !app_in_place {
                Synced::Plugged
            } else {
                Synced::AlreadyPlugged
            });
        }
        if !started && holder.restarting {
            return Ok(Synced::StartPending);
        }
        if sandboxed && pair.app.running {
            // The application still holds the old netns, whose eth0 lives
            // while the port does: it keeps its address until it stops, or
            // until the sandbox is back and it is restarted into it.
            return Ok(Synced::SandboxDown);
        }
        self.unplug(name).await?;
        Ok(Synced::Unplugged)
    }

    /// At start-up, and when dockerd comes back: replacements cut short
    /// settled (see `Host::settle_replacements`), every pair brought in line
    /// (all at once: after a dockerd restart each waits only for its own
    /// plug), sandboxes whose application is gone removed, and OVS ports
    /// whose container is gone removed.
    pub async fn reconcile(&self) -> Result<(), HostError> {
        let mut listed = self.docker.list_managed().await.map_err(|e| self.err(e))?;
        let names: Vec<String> = listed.iter().map(|l| l.name.clone()).collect();
        if self.settle_replacements(&names).await {
            listed = self.docker.list_managed().await.map_err(|e| self.err(e))?;
        }
        let mut apps = BTreeSet::new();
        let mut sandboxes = Vec::new();
        for l in listed {
            match record::member(&l.labels) {
                record::Member::App(_) => {
                    apps.insert(l.name);
                }
                record::Member::Sandbox(owner) => sandboxes.push(owner),
            }
        }
        let synced = futures::future::join_all(
            apps.iter()
                .map(|name| async move { (name, self.sync_plug(name, true).await) }),
        )
        .await;
        // Pairs just found running and plugged: their ports are live.
        let mut live = HashSet::new();
        for (name, result) in synced {
            match result {
                Ok(Synced::Plugged) => {
                    tracing::info!(container = %name, "re-plugged by reconcile");
                    live.insert(name.clone());
                }
                Ok(Synced::AlreadyPlugged) => {
                    live.insert(name.clone());
                }
                Ok(_) => {}
                Err(e) => tracing::error!(container = %name, "reconcile failed: {e}"),
            }
        }
        for owner in sandboxes.iter().filter(|o| !apps.contains(*o)) {
            if let Err(e) = self.sync_plug(owner, true).await {
                tracing::error!(container = %owner, "removing its orphan sandbox: {e}");
            }
        }
        self.gc_ports(&live).await;
        Ok(())
    }

    /// Removes the OVS ports of managed containers known to be gone, and
    /// nothing else: any error (OVSDB, Docker) stops it with nothing
    /// removed, since a port wrongly taken is an address lost. A port
    /// without dockstack's full-id mark is someone else's (ovs-docker's), and
    /// one whose name belongs to a container not managed here is left too.
    /// The ports of `live` pairs are kept without asking Docker again: at
    /// 50 pairs, two inspects each one after another were a third of a
    /// start-up reconcile.
    async fn gc_ports(&self, live: &HashSet<String>) {
        let (removed, errors) = self.plugger.gc_bridge_rules().await;
        if !removed.is_empty() {
            tracing::info!(ports = ?removed, "removed the port-security rules of vanished Linux bridge ports");
        }
        for e in errors {
            tracing::warn!("bridge rule gc: {e}");
        }
        let owned = match self.plugger.ovs().owned_ports().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("port gc skipped, nothing removed: cannot list OVS ports: {e}");
                return;
            }
        };
        let suspects: BTreeSet<String> = owned
            .into_iter()
            .filter(|(_, owner)| owner.full_id.is_some() && !live.contains(&owner.container))
            .map(|(_, owner)| owner.container)
            .collect();
        let judged = futures::future::join_all(
            suspects
                .into_iter()
                .map(|container| async move { (self.known_gone(&container).await, container) }),
        )
        .await;
        let mut gone = HashSet::new();
        for (verdict, container) in judged {
            match verdict {
                Ok(true) => {
                    gone.insert(container);
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!("port gc skipped, nothing removed: {e}");
                    return;
                }
            }
        }
        if gone.is_empty() {
            return;
        }
        crate::fault::pause("gc").await;
        let (removed, errors) = self
            .plugger
            .gc(|o| o.full_id.is_none() || !gone.contains(&o.container))
            .await;
        for port in removed {
            tracing::info!(port = %port, "removed stale port");
        }
        for e in errors {
            tracing::error!("removing stale ports: {e}");
        }
    }

    /// Whether neither `container` nor its sandbox runs, nor is anyone
    /// else's: only then may its port go.
    async fn known_gone(&self, container: &str) -> Result<bool, DockerError> {
        let sandbox_name = record::sandbox_name(container);
        let (app, sandbox) = tokio::join!(
            self.docker.inspect(container),
            self.docker.inspect(&sandbox_name),
        );
        for inspected in [app?, sandbox?].into_iter().flatten() {
            // Running, or someone else's: not ours to judge.
            let ours = inspected.is_managed() && inspected.host() == Some(self.id());
            if inspected.running || !ours {
                return Ok(false);
            }
        }
        Ok(true)
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
                metrics().event_stream_reconnected();
                // Polled often: every address of the host waits on this.
                let mut waited = 0u32;
                while let Err(e) = self.docker.ping().await {
                    if waited.is_multiple_of(25) {
                        tracing::warn!("waiting for dockerd: {e}");
                    }
                    waited += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
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
                metrics().event();
                let event_ns = ev.time_nano.unwrap_or(0);
                if let Ok(ns) = u64::try_from(event_ns)
                    && ns > 0
                {
                    since = UNIX_EPOCH + Duration::from_nanos(ns);
                }
                let action = ev.action.unwrap_or_default();
                let Some(actor) = ev.actor else { continue };
                // Its own destroy unplugged it already.
                if action != "start" && actor.id.as_deref().is_some_and(|id| self.removed_by_us(id))
                {
                    continue;
                }
                let Some(name) = actor.attributes.and_then(|mut a| a.remove("name")) else {
                    continue;
                };
                let host = Arc::clone(&self);
                tokio::spawn(async move {
                    host.on_event(&name, &action, event_ns).await;
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Brings one container in line after one of its events, and logs
    /// what that took (`since_event_ms`: from Docker's event to the plug).
    async fn on_event(&self, name: &str, action: &str, event_ns: i64) {
        let began = Instant::now();
        if action == "start" && self.plug_started_sandbox(name).await {
            tracing::info!(
                container = %name,
                action = "plug",
                duration_ms = began.elapsed().as_secs_f64() * 1e3,
                since_event_ms = ms_since(event_ns),
                result = "ok",
                "sandbox plugged after its start event"
            );
        }
        let Some(result) = self.sync_event(name, action == "start").await else {
            tracing::debug!(container = %name, event = action, "folded into the sync already waiting");
            return;
        };
        let duration_ms = began.elapsed().as_secs_f64() * 1e3;
        match result {
            Ok(Synced::Plugged) => {
                tracing::info!(
                    container = %name,
                    action = "replug",
                    duration_ms,
                    since_event_ms = ms_since(event_ns),
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
            Ok(Synced::SandboxDown) => {
                tracing::warn!(container = %name, event = action, "its sandbox stopped while it runs: it keeps the old netns until it stops or the sandbox is back");
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
    /// The sandbox stopped while its application runs on in the old netns.
    SandboxDown,
    Unplugged,
}

/// Milliseconds from `event_ns` (Docker's time of an event, ns since the
/// epoch; 0: unknown) until now.
fn ms_since(event_ns: i64) -> Option<f64> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).ok()?;
    let ns = i64::try_from(now.as_nanos()).ok()? - event_ns;
    (event_ns > 0).then(|| ns as f64 / 1e6)
}
