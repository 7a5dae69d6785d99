//! Waiting until a container is healthy, for `apply`'s steps and the
//! members of a `service` that `restart` takes down one at a time.

use std::time::{Duration, Instant};

use dockstack_types::ContainerState;

use super::OpError;
use super::rpc::{self, Clients, Failure};
use crate::environment::Container;
use crate::progress::{Printer, Progress};

/// Why a wait for health ended without it.
#[derive(Debug, Clone)]
pub(super) enum Unwell {
    /// The host could not be asked.
    Op(OpError),
    /// The container is not healthy: what it is instead.
    Not(String),
}

/// How long a container may take to become healthy.
pub(super) fn health_deadline(c: &Container) -> Duration {
    match &c.healthcheck {
        Some(h) => {
            let per_try = u64::from(h.interval_ms) + u64::from(h.timeout_ms);
            Duration::from_millis(
                u64::from(h.start_period_ms) + per_try * (u64::from(h.retries) + 1) + 5_000,
            )
        }
        None => Duration::from_secs(30),
    }
}

/// What a wait for health lets pass until its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tolerate {
    /// A container that turns unhealthy ends the wait at once.
    Nothing,
    /// A peer may be unhealthy for a while (a donor desynced by a joiner's
    /// state transfer) and still come back.
    Unhealthy,
}

/// Waits until `c` is healthy on `host`: Docker says so, or, without a
/// healthcheck, it runs and is plugged.
pub(super) async fn wait_healthy(
    clients: &Clients,
    c: &Container,
    host: &str,
    tolerate: Tolerate,
    printer: &dyn Printer,
) -> Result<(), Unwell> {
    let deadline = Instant::now() + health_deadline(c);
    let mut told = false;
    loop {
        let info = rpc::show(clients, host, &c.name)
            .await
            .map_err(|f: Failure| {
                Unwell::Op(OpError {
                    host: host.to_string(),
                    container: c.name.clone(),
                    code: f.code,
                    message: f.message,
                })
            })?;
        let state = info.container_state();
        let running = state == ContainerState::Running;
        match info.health.as_str() {
            "healthy" if running => return Ok(()),
            "" if running && info.plugged => return Ok(()),
            "unhealthy" if tolerate == Tolerate::Nothing => {
                return Err(Unwell::Not("unhealthy".into()));
            }
            _ if state.is_stopped() => {
                return Err(Unwell::Not(format!(
                    "{state} with status {}",
                    info.exit_code
                )));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            let what = match info.health.as_str() {
                "" => format!("still {state} and not plugged"),
                h => format!("still {h}"),
            };
            return Err(Unwell::Not(format!(
                "{what} after {} s",
                health_deadline(c).as_secs()
            )));
        }
        if !told {
            printer.progress(&c.name, Progress::Step("waiting until healthy"));
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
