//! Carrying a plan out: the checks before anything is stopped, the orphans, the
//! handovers of addresses, then step by step, each healthy before the next.

use dockstack_types::ContainerState;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dockstack_proto as pb;

use super::{Change, Plan, Planned};
use crate::connect::Connector;
use crate::environment::{Container, Environment};
use crate::ops::rpc::{self, Clients, Failure};
use crate::ops::{Action, HostOverride, OpError, addresses, levels, recipe};
use crate::progress::{Printer, Progress};

/// Why an apply stopped.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApplyError {
    #[error("{}: image {image} is not on host {host}; nothing was changed", .container)]
    NoImage {
        container: String,
        image: String,
        host: String,
    },
    #[error("{}: {}", .0.container, .0.message)]
    Op(OpError),
    #[error("{0}; nothing was changed")]
    Clash(String),
    #[error("step {step}: {container} on {host} is {what}; the apply stops here")]
    Unhealthy {
        step: u32,
        container: String,
        host: String,
        what: String,
    },
}

/// What an apply did before it ended.
#[derive(Debug, Default)]
pub struct Applied {
    /// `(container, verb)`, in the order done.
    pub done: Vec<(String, &'static str)>,
    /// Orphans left in place (no `--prune`).
    pub left: Vec<String>,
}

/// Carries `plan` out: preflight, orphans (with `prune`), then step by
/// step. Stops at the first failure, naming the container and the step.
pub async fn apply(
    env: Arc<Environment>,
    connector: Connector,
    overrides: HostOverride,
    plan: &Plan,
    prune: bool,
    printer: Arc<dyn Printer>,
) -> (Applied, Result<(), ApplyError>) {
    let clients = Clients::new(Arc::clone(&env), connector, overrides);
    let mut applied = Applied::default();
    let result = carry_out(&clients, plan, prune, printer.as_ref(), &mut applied).await;
    (applied, result)
}

/// What is checked before anything is stopped: every image there, and no address
/// another holds; gives the handovers (recreates whose old address another container
/// of the file takes).
fn preflight<'p>(
    env: &Environment,
    plan: &'p Plan,
    prune: bool,
) -> Result<Vec<&'p Planned>, ApplyError> {
    // Before anything is stopped: a replacement that cannot be created
    // would leave its address on nobody.
    for p in plan.pending() {
        if matches!(p.change, Change::Create | Change::Recreate { .. }) && !p.image_present {
            return Err(ApplyError::NoImage {
                container: p.container.clone(),
                image: p.image.clone(),
                host: p.host.clone(),
            });
        }
    }
    // Addresses: none that another holds, but those given up first (the
    // orphans pruned, and handovers: the old container of a recreate whose
    // address another container of the file takes).
    let wanted: HashMap<std::net::Ipv4Addr, &str> = env
        .containers
        .iter()
        .map(|c| (c.ip, c.name.as_str()))
        .collect();
    let old_ip = |p: &Planned| {
        p.found
            .as_ref()
            .and_then(|f| f.ip.split('/').next()?.parse::<std::net::Ipv4Addr>().ok())
    };
    let handovers: Vec<&Planned> = plan
        .items
        .iter()
        .filter(|p| matches!(p.change, Change::Recreate { .. }))
        .filter(|p| {
            old_ip(p)
                .and_then(|ip| wanted.get(&ip))
                .is_some_and(|w| *w != p.container)
        })
        .collect();
    // A recreate's old container goes before its new one comes (and,
    // for a handover, before any step).
    let mut freed: std::collections::HashSet<String> = plan
        .items
        .iter()
        .filter(|p| matches!(p.change, Change::Recreate { .. }))
        .map(|p| p.container.clone())
        .collect();
    if prune {
        freed.extend(
            plan.items
                .iter()
                .filter(|p| p.change == Change::Orphan)
                .map(|p| p.container.clone()),
        );
    }
    let takers: Vec<Container> = plan
        .pending()
        .filter(|p| {
            matches!(
                p.change,
                Change::Create | Change::Recreate { .. } | Change::Start
            )
        })
        .filter_map(|p| env.container(&p.container).cloned())
        .collect();
    let holders = addresses::table(&plan.seen);
    let clashes = addresses::clashes(&takers, &holders, &freed);
    if !clashes.is_empty() {
        let all: Vec<String> = clashes.iter().map(ToString::to_string).collect();
        return Err(ApplyError::Clash(all.join("; ")));
    }
    Ok(handovers)
}

async fn carry_out(
    clients: &Clients,
    plan: &Plan,
    prune: bool,
    printer: &dyn Printer,
    applied: &mut Applied,
) -> Result<(), ApplyError> {
    let env = Arc::clone(&clients.env);
    let handovers = preflight(&env, plan, prune)?;
    // Orphans first: one may hold an address a new container takes.
    for p in plan.items.iter().filter(|p| p.change == Change::Orphan) {
        if !prune {
            applied.left.push(p.container.clone());
            continue;
        }
        let Some(info) = &p.found else { continue };
        let c = orphan(info, &p.host);
        act(clients, Action::Destroy, &c, printer).await?;
        applied.done.push((p.container.clone(), "destroy"));
    }
    // Then the handovers' old containers, before any step takes their
    // addresses.
    let mut given_up = std::collections::HashSet::new();
    for p in &handovers {
        let (Change::Recreate { from, .. }, Some(c)) = (&p.change, env.container(&p.container))
        else {
            continue;
        };
        let mut old = c.clone();
        old.host = from.clone();
        printer.progress(&c.name, Progress::Step("giving its old address up first"));
        act(clients, Action::Destroy, &old, printer).await?;
        given_up.insert(p.container.clone());
    }
    let given_up = &given_up;
    let by_name: HashMap<&str, &Planned> = plan
        .items
        .iter()
        .filter(|p| p.change != Change::Orphan)
        .map(|p| (p.container.as_str(), p))
        .collect();
    let level_of = levels(&env);
    let mut steps: BTreeMap<u32, BTreeMap<usize, Vec<&Container>>> = BTreeMap::new();
    for c in &env.containers {
        steps
            .entry(c.step)
            .or_default()
            .entry(level_of.get(&c.name).copied().unwrap_or(0))
            .or_default()
            .push(c);
    }
    for (step, by_level) in &steps {
        for containers in by_level.values() {
            // Containers of one service are replaced one at a time, each
            // healthy before the next is touched (a cluster keeps its
            // quorum); the others go at once.
            let mut lanes: BTreeMap<String, Vec<&Container>> = BTreeMap::new();
            for c in containers {
                let changes = by_name
                    .get(c.name.as_str())
                    .is_some_and(|p| p.change != Change::Unchanged);
                if changes {
                    let lane = c.service.clone().unwrap_or_else(|| format!("\0{}", c.name));
                    lanes.entry(lane).or_default().push(c);
                }
            }
            let runs = lanes.into_values().map(|lane| {
                let by_name = &by_name;
                async move {
                    let mut done = Vec::new();
                    for c in lane {
                        let p = by_name[c.name.as_str()];
                        if let Err(e) =
                            change(clients, p, c, given_up.contains(&c.name), printer).await
                        {
                            return (done, Err(e));
                        }
                        done.push((c.name.clone(), p.change.verb()));
                        if c.healthcheck.is_some()
                            && let Err(e) = wait_healthy(clients, c, *step, printer).await
                        {
                            return (done, Err(e));
                        }
                    }
                    (done, Ok(()))
                }
            });
            let mut first_err = None;
            for (mut done, result) in futures::future::join_all(runs).await {
                applied.done.append(&mut done);
                if let Err(e) = result {
                    first_err.get_or_insert(e);
                }
            }
            if let Some(e) = first_err {
                return Err(e);
            }
        }
        // The next step starts only when this one's containers are well.
        let waits = by_level
            .values()
            .flatten()
            .filter(|c| c.state && !c.oneshot)
            .map(|c| wait_healthy(clients, c, *step, printer));
        for r in futures::future::join_all(waits).await {
            r?;
        }
    }
    Ok(())
}

/// One container's change.
async fn change(
    clients: &Clients,
    p: &Planned,
    c: &Container,
    old_gone: bool,
    printer: &dyn Printer,
) -> Result<(), ApplyError> {
    match &p.change {
        Change::Create => act(clients, Action::Run, c, printer).await,
        Change::Recreate { .. } if old_gone => act(clients, Action::Run, c, printer).await,
        // On the same host the server makes the new pair beside the old
        // one and moves the address over when the old one has exited.
        Change::Recreate { from, .. } if *from == c.host => {
            printer.progress(
                &c.name,
                Progress::Step("recreate: the new container made before the old one stops"),
            );
            act(clients, Action::Replace, c, printer).await
        }
        Change::Recreate { from, .. } => {
            // The old container gives its address up before the new one
            // takes it: never two holders of one address.
            let mut old = c.clone();
            old.host = from.clone();
            printer.progress(
                &c.name,
                Progress::Step("recreate: destroying the old container"),
            );
            act(clients, Action::Destroy, &old, printer).await?;
            act(clients, Action::Run, c, printer).await
        }
        Change::Restart { .. } => act(clients, Action::Restart, c, printer).await,
        Change::Start => act(clients, Action::Start, c, printer).await,
        Change::Stop => act(clients, Action::Stop, c, printer).await,
        Change::Unchanged | Change::Orphan => Ok(()),
    }
}

async fn act(
    clients: &Clients,
    action: Action,
    c: &Container,
    printer: &dyn Printer,
) -> Result<(), ApplyError> {
    let client = clients.get(&c.host).await;
    let result = recipe::act(clients, client, action, c, printer).await;
    match &result {
        Ok(_) => printer.done(&c.name, true, action.name()),
        Err(e) => printer.done(&c.name, false, &e.message),
    }
    result.map(drop).map_err(|mut e| {
        e.message = format!("{} on host {}: {}", action.name(), c.host, e.message);
        ApplyError::Op(e)
    })
}

/// How long a container may take to become healthy.
fn health_deadline(c: &Container) -> Duration {
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

/// Waits until `c` is healthy: Docker says so, or, without a healthcheck,
/// it runs and is plugged.
async fn wait_healthy(
    clients: &Clients,
    c: &Container,
    step: u32,
    printer: &dyn Printer,
) -> Result<(), ApplyError> {
    let unhealthy = |what: String| ApplyError::Unhealthy {
        step,
        container: c.name.clone(),
        host: c.host.clone(),
        what,
    };
    let deadline = Instant::now() + health_deadline(c);
    let mut told = false;
    loop {
        let info = rpc::show(clients, &c.host, &c.name)
            .await
            .map_err(|f: Failure| {
                ApplyError::Op(OpError {
                    host: c.host.clone(),
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
            "unhealthy" => return Err(unhealthy("unhealthy".into())),
            _ if state.is_stopped() => {
                return Err(unhealthy(format!("{state} with status {}", info.exit_code)));
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            let what = match info.health.as_str() {
                "" => format!("still {state} and not plugged"),
                h => format!("still {h}"),
            };
            return Err(unhealthy(format!(
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

/// An orphan as a container of the file would be, for its destroy and
/// deregistration: its name, host, address, domain and service as its
/// record keeps them.
fn orphan(info: &pb::ContainerInfo, host: &str) -> Container {
    let (ip, mask) = info
        .ip
        .split_once('/')
        .map(|(ip, m)| (ip.to_string(), m.parse().unwrap_or(32)))
        .unwrap_or((info.ip.clone(), 32));
    Container {
        name: info.name.clone(),
        image: info.image.clone(),
        ip: ip.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
        mask,
        gateway: None,
        ip6: info.ip6.parse().ok(),
        gateway6: None,
        dns: Vec::new(),
        domain: (!info.domain.is_empty()).then(|| info.domain.clone()),
        bridge: info.bridge.clone(),
        host: host.to_string(),
        volumes: Vec::new(),
        state: false,
        precreation: Vec::new(),
        postcreation: Vec::new(),
        postdestroy: Vec::new(),
        mac: None,
        mtu: None,
        vlan: None,
        allowed_addresses: Vec::new(),
        env: BTreeMap::new(),
        command: Vec::new(),
        privileged: false,
        cap_add: Vec::new(),
        restart: None,
        service: (!info.service.is_empty()).then(|| info.service.clone()),
        after: Vec::new(),
        step: 0,
        healthcheck: None,
        oneshot: false,
        config_volumes: Vec::new(),
        runtime: Default::default(),
    }
}
