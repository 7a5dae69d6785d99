//! Following Open vSwitch's daemons: after ovs-vswitchd restarts (every
//! OpenFlow rule gone with it) or ovsdb-server does, every managed port's
//! rules are set again, each port checked and re-plugged if it is gone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use netplug::{OvsLost, OvsWatch, WATCH_RETRY};

use super::Host;

/// How long a daemon may be away before the watch is tried less often: a
/// host without Open vSwitch (Linux bridges only) is not polled every few
/// ms for ever.
const FAST_RETRY_FOR: Duration = Duration::from_secs(30);
const SLOW_RETRY: Duration = Duration::from_millis(500);

/// How often the bridges are listed again, so that one added since the
/// watch was made is watched too.
const BRIDGES_RECHECK: Duration = Duration::from_secs(30);

impl Host {
    /// Holds connections to ovsdb-server and to every bridge's management
    /// socket for as long as the server runs; when one ends, waits for both
    /// daemons to answer again, then sets every managed port's rules again
    /// (see [`Host::resecure`]). The rules are set as soon as ovs-vswitchd
    /// has made the bridge again: until then, and until they are set, the
    /// bridge forwards as its fail mode says (see docs/networking.md).
    pub async fn follow_ovs(self: Arc<Self>) {
        let ovs = self.plugger.ovs().clone();
        // Since when, and why, the watch could not be held.
        let mut away: Option<(Instant, String)> = None;
        loop {
            let mut watch = match ovs.watch().await {
                Ok(w) => w,
                Err(e) => {
                    let since = away.get_or_insert_with(|| {
                        tracing::debug!("Open vSwitch not watched yet: {e}");
                        (Instant::now(), e.to_string())
                    });
                    let retry = if since.0.elapsed() < FAST_RETRY_FOR {
                        WATCH_RETRY
                    } else {
                        SLOW_RETRY
                    };
                    tokio::time::sleep(retry).await;
                    continue;
                }
            };
            // At start-up the reconcile has set the rules already, unless
            // Open vSwitch was not there yet.
            if let Some((since, why)) = away.take() {
                self.resecure(&why, since).await;
            }
            tracing::debug!(bridges = ?watch.bridges(), "watching Open vSwitch");
            let lost = self.until_lost(&ovs, &mut watch).await;
            let why = match lost {
                None => continue,
                Some(OvsLost::Ovsdb) => "ovsdb-server closed its connection".to_string(),
                Some(OvsLost::Vswitchd { bridge, error }) => {
                    format!("ovs-vswitchd closed the management socket of {bridge}: {error}")
                }
            };
            tracing::warn!(
                "{why}: waiting for Open vSwitch to come back, to set port security again"
            );
            away = Some((Instant::now(), why));
        }
    }

    /// What `watch` lost; `None` when a bridge was added or removed since
    /// it was made, and it must be made again.
    async fn until_lost(&self, ovs: &netplug::Ovs, watch: &mut OvsWatch) -> Option<OvsLost> {
        let held: Vec<String> = watch.bridges().into_iter().map(String::from).collect();
        let changed = async {
            loop {
                tokio::time::sleep(BRIDGES_RECHECK).await;
                if let Ok(mut now) = ovs.bridge_names().await {
                    now.sort();
                    let mut held = held.clone();
                    held.sort();
                    if now != held {
                        return;
                    }
                }
            }
        };
        tokio::select! {
            lost = watch.lost() => Some(lost),
            () = changed => None,
        }
    }

    /// Sets every managed port's rules again, after Open vSwitch lost them
    /// (`why`, at `since`): first the rules this server last set, straight
    /// from memory (the window without port security closes there), then
    /// the start-up reconcile with every pair plugged anew, which checks
    /// each port against Docker, keeps one that is there (its rules set
    /// again) and re-plugs one that is not.
    pub async fn resecure(&self, why: &str, since: Instant) {
        let back = Instant::now();
        let away_ms = (back - since).as_secs_f64() * 1e3;
        match self.plugger.ovs().restore_port_security().await {
            Ok(ports) => tracing::info!(
                away_ms,
                rules_back_ms = back.elapsed().as_secs_f64() * 1e3,
                ports = ports.len(),
                "Open vSwitch back ({why}): port security set again"
            ),
            Err(e) => tracing::warn!(
                "Open vSwitch back ({why}): the remembered rules could not be set again, left to the reconcile: {e}"
            ),
        }
        self.plugged_table().clear();
        match self.reconcile().await {
            Ok(()) => tracing::info!(
                checked_ms = back.elapsed().as_secs_f64() * 1e3,
                "Open vSwitch back: every pair checked and its port secured"
            ),
            Err(e) => tracing::error!("Open vSwitch back ({why}): checking every pair failed: {e}"),
        }
    }
}
