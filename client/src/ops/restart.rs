//! `restart`: a graceful restart of each container in its sandbox (its
//! `prestop`, stop signal and grace period; the address stays). The members
//! of one `service` go one at a time, each healthy before the next; the
//! rest at once, at most `jobs` per host.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dockstack_types::ContainerState;
use tokio::sync::Semaphore;

use super::health::{self, Tolerate, Unwell};
use super::rpc::{self, Clients};
use super::{Action, HostOverride, OpError, Outcome, recipe};
use crate::connect::Connector;
use crate::environment::{Container, Environment};
use crate::progress::Printer;

/// Restarts `selected`; one outcome per container, in the file's order.
/// A container that is not running is not started: its outcome says so.
pub async fn restart(
    env: Arc<Environment>,
    selected: Vec<Container>,
    connector: Connector,
    overrides: HostOverride,
    jobs: usize,
    printer: Arc<dyn Printer>,
) -> Vec<Outcome> {
    let clients = Clients::new(Arc::clone(&env), connector, overrides);
    let mut limits: HashMap<&str, Arc<Semaphore>> = HashMap::new();
    for c in &selected {
        limits
            .entry(c.host.as_str())
            .or_insert_with(|| Arc::new(Semaphore::new(jobs.max(1))));
    }
    let runs = lanes(&selected).into_iter().map(|lane| {
        let (clients, limits, printer) = (&clients, &limits, printer.as_ref());
        async move {
            let mut outcomes = Vec::new();
            let mut before: Option<&str> = None;
            for c in &lane {
                let result = match before {
                    // A member down already: the next one stays up.
                    Some(failed) => Err(op_error(
                        c,
                        format!("not restarted: {failed}, of the same service, failed before it"),
                    )),
                    None => {
                        let _permit = limits[c.host.as_str()].acquire().await;
                        one(clients, c, printer).await
                    }
                };
                if let Err(e) = &result {
                    printer.done(&c.name, false, &e.message);
                    before.get_or_insert(c.name.as_str());
                }
                outcomes.push(Outcome {
                    container: c.name.clone(),
                    host: c.host.clone(),
                    result,
                });
            }
            outcomes
        }
    });
    let mut by_name: HashMap<String, Outcome> = futures::future::join_all(runs)
        .await
        .into_iter()
        .flatten()
        .map(|o| (o.container.clone(), o))
        .collect();
    selected
        .iter()
        .filter_map(|c| by_name.remove(&c.name))
        .collect()
}

/// The containers in lanes: the members of one `service` share one, in the
/// file's order; any other container is a lane of its own.
fn lanes(selected: &[Container]) -> Vec<Vec<&Container>> {
    let mut keyed: BTreeMap<String, Vec<&Container>> = BTreeMap::new();
    for c in selected {
        let lane = c.service.clone().unwrap_or_else(|| format!("\0{}", c.name));
        keyed.entry(lane).or_default().push(c);
    }
    keyed.into_values().collect()
}

fn op_error(c: &Container, message: String) -> OpError {
    OpError {
        host: c.host.clone(),
        container: c.name.clone(),
        code: None,
        message,
    }
}

/// Restarts `c` if it runs; a member of a `service` is waited for until it
/// is healthy again (or runs and is plugged, without a healthcheck).
async fn one(
    clients: &Clients,
    c: &Container,
    printer: &dyn Printer,
) -> Result<Option<dockstack_proto::ContainerInfo>, OpError> {
    let info = rpc::show(clients, &c.host, &c.name)
        .await
        .map_err(|f| OpError {
            host: c.host.clone(),
            container: c.name.clone(),
            code: f.code,
            message: f.message,
        })?;
    let state = info.container_state();
    if state != ContainerState::Running {
        return Err(op_error(
            c,
            format!(
                "{} is {state}, not running: nothing to restart (`dockstack start -c {}` starts it)",
                c.name, c.name
            ),
        ));
    }
    let peers = serving_peers(clients, c).await;
    let client = clients.get(&c.host).await;
    let done = recipe::act(clients, client, Action::Restart, c, printer).await?;
    if c.service.is_some() {
        health::wait_healthy(clients, c, &c.host, Tolerate::Nothing, printer)
            .await
            .map_err(|e| match e {
                Unwell::Op(e) => e,
                Unwell::Not(what) => op_error(c, format!("restarted, but {what}")),
            })?;
    }
    // The next member goes only when every peer that served before is
    // healthy again: a state transfer to this one may desync a donor.
    for p in &peers {
        health::wait_healthy(clients, p, &p.host, Tolerate::Unhealthy, printer)
            .await
            .map_err(|e| match e {
                Unwell::Op(e) => e,
                Unwell::Not(what) => {
                    op_error(c, format!("restarted, but its peer {} is {what}", p.name))
                }
            })?;
    }
    printer.done(&c.name, true, Action::Restart.name());
    Ok(done)
}

/// The other members of `c`'s `service` in the file that have a
/// healthcheck and run now: those to be healthy again before the next.
async fn serving_peers(clients: &Clients, c: &Container) -> Vec<Container> {
    let Some(service) = &c.service else {
        return Vec::new();
    };
    let candidates: Vec<&Container> = clients
        .env
        .containers
        .iter()
        .filter(|p| p.name != c.name && p.service.as_ref() == Some(service))
        .filter(|p| p.state && !p.oneshot && p.healthcheck.is_some())
        .collect();
    let shown = futures::future::join_all(
        candidates
            .iter()
            .map(|p| rpc::show(clients, &p.host, &p.name)),
    )
    .await;
    candidates
        .into_iter()
        .zip(shown)
        .filter(|(_, info)| {
            info.as_ref()
                .is_ok_and(|i| i.container_state() == ContainerState::Running)
        })
        .map(|(p, _)| p.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_service_shares_a_lane_in_the_files_order_and_the_rest_go_alone() {
        let text = "\
containerhosts:
  h1: {ip: 10.1.0.1}
  h2: {ip: 10.1.0.2}
containerdefault: &c {image: db, mask: 16, bridge: br0, host: h1}
containers:
  g2: {<<: *c, ip: 10.0.0.2, service: galera, host: h2}
  web: {<<: *c, ip: 10.0.0.6}
  g1: {<<: *c, ip: 10.0.0.1, service: galera}
  cache: {<<: *c, ip: 10.0.0.7}
";
        let env = crate::environment::parse(Path::new("environment.yaml"), text).unwrap();
        let lanes: Vec<Vec<&str>> = lanes(&env.containers)
            .iter()
            .map(|lane| lane.iter().map(|c| c.name.as_str()).collect())
            .collect();
        assert_eq!(lanes, [vec!["cache"], vec!["web"], vec!["g2", "g1"]]);
    }
}
