//! Keeping plugs in line with Docker: following its events, the start-up
//! reconcile, and removing ports whose container is gone.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;

use super::{Host, HostError, HostErrorKind};
use crate::progress::Reporter;

impl Host {
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
            Err(e) if matches!(e.kind(), HostErrorKind::NotManaged { .. }) => None,
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
        let names = self.docker.list_managed().await.map_err(|e| self.err(e))?;
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
