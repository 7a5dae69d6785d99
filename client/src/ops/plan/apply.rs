//! Carrying a plan out: the checks before anything is stopped, the orphans, the
//! handovers of addresses, then step by step, each healthy before the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dockstack_proto as pb;

use super::{Change, Plan, Planned};
use crate::connect::Connector;
use crate::environment::{Container, Environment};
use crate::ops::health::{self, Tolerate, Unwell};
use crate::ops::rpc::Clients;
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
    #[error("{}", op_line(.0))]
    Op(OpError),
    #[error("{0}; nothing was changed")]
    Clash(String),
    #[error("{0}")]
    Cluster(crate::ops::cluster::ClusterError),
    #[error("step {step}: {container} on {host} is {what}; the apply stops here")]
    Unhealthy {
        step: u32,
        container: String,
        host: String,
        what: String,
    },
}

/// A container's failure, naming its host when the message does not (no
/// server answered, so none could say which it was).
fn op_line(e: &OpError) -> String {
    if e.message.contains(&e.host) {
        format!("{}: {}", e.container, e.message)
    } else {
        format!("{} on host {}: {}", e.container, e.host, e.message)
    }
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
    // Every address of the file reserved before anything is plugged: one
    // a dead client left reserved for this file is taken back here.
    let cluster = crate::ops::cluster::current();
    if let Some(s) = &cluster {
        s.reserve(&env.containers)
            .await
            .map_err(|e| ApplyError::Clash(e.to_string()))?;
    }
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
    let steps = lanes(&env, &by_name);
    let position = positions(&steps);
    for (step, by_level) in &steps {
        for lanes in by_level.values() {
            // Containers of one service are replaced one at a time, each
            // healthy (and its peers with it) before the next is touched:
            // a cluster keeps its quorum. The others go at once.
            let runs = lanes.iter().map(|lane| {
                let (env, by_name, position) = (&*env, &by_name, &position);
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
                        if c.healthcheck.is_none() {
                            continue;
                        }
                        let peers = peers_serving(env, by_name, position, given_up, c);
                        let wait = async {
                            wait_healthy(clients, c, &c.host, *step, Tolerate::Nothing, printer)
                                .await?;
                            // A joiner's donor may be desynced meanwhile: the
                            // next member goes only when every peer is back.
                            for (peer, host) in peers {
                                wait_healthy(
                                    clients,
                                    peer,
                                    host,
                                    *step,
                                    Tolerate::Unhealthy,
                                    printer,
                                )
                                .await?;
                            }
                            Ok(())
                        };
                        if let Err(e) = wait.await {
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
        let waits = env
            .containers
            .iter()
            .filter(|c| c.step == *step && c.state && !c.oneshot)
            .map(|c| wait_healthy(clients, c, &c.host, *step, Tolerate::Nothing, printer));
        for r in futures::future::join_all(waits).await {
            r?;
        }
    }
    if let Some(s) = &cluster {
        s.release_unwanted(&env)
            .await
            .map_err(ApplyError::Cluster)?;
    }
    Ok(())
}

/// The changed containers, by step, then level, then lane (the members of one
/// `service` share a lane and go one at a time; any other container is a
/// lane of its own).
type Lanes<'e> = BTreeMap<u32, BTreeMap<usize, Vec<Vec<&'e Container>>>>;

fn lanes<'e>(env: &'e Environment, by_name: &HashMap<&str, &Planned>) -> Lanes<'e> {
    let level_of = levels(env);
    let mut keyed: BTreeMap<u32, BTreeMap<usize, BTreeMap<String, Vec<&Container>>>> =
        BTreeMap::new();
    for c in &env.containers {
        let changes = by_name
            .get(c.name.as_str())
            .is_some_and(|p| p.change != Change::Unchanged);
        let level = level_of.get(&c.name).copied().unwrap_or(0);
        let by_level = keyed.entry(c.step).or_default().entry(level).or_default();
        if changes {
            let lane = c.service.clone().unwrap_or_else(|| format!("\0{}", c.name));
            by_level.entry(lane).or_default().push(c);
        }
    }
    keyed
        .into_iter()
        .map(|(step, levels)| {
            let levels = levels
                .into_iter()
                .map(|(level, lanes)| (level, lanes.into_values().collect()))
                .collect();
            (step, levels)
        })
        .collect()
}

/// When each changed container has its turn: (step, level, place in its lane).
type Turn = (u32, usize, usize);

fn positions<'e>(steps: &Lanes<'e>) -> HashMap<&'e str, Turn> {
    let mut turns = HashMap::new();
    for (step, levels) in steps {
        for (level, lanes) in levels {
            for lane in lanes {
                for (place, c) in lane.iter().enumerate() {
                    turns.insert(c.name.as_str(), (*step, *level, place));
                }
            }
        }
    }
    turns
}

/// The `service` peers of `c` that serve now, after `c`'s turn, and the host
/// each runs on: those unchanged, those whose turn came before `c`'s, and
/// those whose old container still runs. A peer not made yet (or given up,
/// or stopped until its turn) is not waited for.
fn peers_serving<'e>(
    env: &'e Environment,
    by_name: &HashMap<&str, &'e Planned>,
    turn_of: &HashMap<&str, Turn>,
    given_up: &std::collections::HashSet<String>,
    c: &Container,
) -> Vec<(&'e Container, &'e str)> {
    let Some(service) = &c.service else {
        return Vec::new();
    };
    let mine = turn_of.get(c.name.as_str());
    env.containers
        .iter()
        .filter(|peer| peer.name != c.name && peer.service.as_ref() == Some(service))
        .filter(|peer| peer.state && !peer.oneshot && peer.healthcheck.is_some())
        .filter_map(|peer| {
            let p = by_name.get(peer.name.as_str())?;
            let done = match turn_of.get(peer.name.as_str()) {
                None => true,
                Some(t) => mine.is_some_and(|m| t < m),
            };
            if done {
                return Some((peer, peer.host.as_str()));
            }
            match &p.change {
                _ if given_up.contains(&peer.name) => None,
                Change::Recreate { from, .. } => Some((peer, from.as_str())),
                Change::Restart { .. } | Change::Unchanged => Some((peer, peer.host.as_str())),
                Change::Create | Change::Start | Change::Stop | Change::Orphan => None,
            }
        })
        .collect()
}

/// One container's change.
async fn change(
    clients: &Clients,
    p: &Planned,
    c: &Container,
    old_gone: bool,
    printer: &dyn Printer,
) -> Result<(), ApplyError> {
    // A recreate makes a replacement, not a first container: never with
    // the first-creation settings (a bootstrap flag would bootstrap a
    // cluster again). The server cannot tell the two apart (Docker keeps
    // nothing of the old container), so this is where the rule is.
    let replacement = || Container {
        first_creation: None,
        ..c.clone()
    };
    match &p.change {
        Change::Create => act(clients, Action::Run, c, printer).await,
        Change::Recreate { .. } if old_gone => {
            act(clients, Action::Run, &replacement(), printer).await
        }
        // On the same host the server makes the new pair beside the old
        // one and moves the address over when the old one has exited.
        Change::Recreate { from, .. } if *from == c.host => {
            printer.progress(
                &c.name,
                Progress::Step("recreate: the new container made before the old one stops"),
            );
            act(clients, Action::Replace, &replacement(), printer).await
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
            act(clients, Action::Run, &replacement(), printer).await
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

/// [`health::wait_healthy`] within an apply's step: not healthy is
/// where the apply stops.
async fn wait_healthy(
    clients: &Clients,
    c: &Container,
    host: &str,
    step: u32,
    tolerate: Tolerate,
    printer: &dyn Printer,
) -> Result<(), ApplyError> {
    health::wait_healthy(clients, c, host, tolerate, printer)
        .await
        .map_err(|e| match e {
            Unwell::Op(e) => ApplyError::Op(e),
            Unwell::Not(what) => ApplyError::Unhealthy {
                step,
                container: c.name.clone(),
                host: host.to_string(),
                what,
            },
        })
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
        first_creation: None,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn env() -> Environment {
        let text = "\
containerhosts:
  h1: {ip: 10.1.0.1}
  h2: {ip: 10.1.0.2}
containerdefault: &member
  image: db
  mask: 16
  bridge: br0
  host: h1
  service: galera
  step: 3
  healthcheck: {test: 'true'}
containers:
  g1: {<<: *member, ip: 10.0.0.1, step: 2}
  g2: {<<: *member, ip: 10.0.0.2, host: h2}
  g3: {<<: *member, ip: 10.0.0.3, host: h2}
  g4: {<<: *member, ip: 10.0.0.4}
  g5: {<<: *member, ip: 10.0.0.5, state: false}
  web: {image: web, ip: 10.0.0.6, mask: 16, bridge: br0, host: h1}
";
        crate::environment::parse(Path::new("environment.yaml"), text).unwrap()
    }

    fn planned(container: &str, host: &str, change: Change) -> Planned {
        Planned {
            container: container.into(),
            host: host.into(),
            change,
            found: None,
            image_present: true,
            image: "db".into(),
        }
    }

    fn recreate(from: &str) -> Change {
        Change::Recreate {
            differences: vec!["env".into()],
            from: from.into(),
        }
    }

    /// The peers waited for after each member's turn, as `name@host`.
    fn waited_for(given_up: &[&str]) -> Vec<(String, Vec<String>)> {
        let env = env();
        let items = [
            planned("g1", "h1", recreate("h1")),
            // Moves from h1 to h2: its old container serves on h1 until its turn.
            planned("g2", "h2", recreate("h1")),
            planned("g3", "h2", Change::Unchanged),
            planned("g4", "h1", Change::Create),
            planned("g5", "h1", Change::Unchanged),
            planned("web", "h1", Change::Create),
        ];
        let by_name: HashMap<&str, &Planned> =
            items.iter().map(|p| (p.container.as_str(), p)).collect();
        let steps = lanes(&env, &by_name);
        let turn_of = positions(&steps);
        let given_up = given_up.iter().map(ToString::to_string).collect();
        ["g1", "g2", "g4"]
            .into_iter()
            .map(|name| {
                let c = env.container(name).unwrap();
                let peers = peers_serving(&env, &by_name, &turn_of, &given_up, c)
                    .into_iter()
                    .map(|(p, host)| format!("{}@{host}", p.name))
                    .collect();
                (name.to_string(), peers)
            })
            .collect()
    }

    #[test]
    fn a_member_waits_for_the_peers_that_serve_where_they_serve() {
        let names = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            waited_for(&[]),
            [
                // g2's old container still serves on h1; g4 is not made yet;
                // g5 is meant to be stopped; web is of no service.
                ("g1".to_string(), names(&["g2@h1", "g3@h2"])),
                ("g2".to_string(), names(&["g1@h1", "g3@h2"])),
                ("g4".to_string(), names(&["g1@h1", "g2@h2", "g3@h2"])),
            ]
        );
        // A peer whose old container gave its address up first serves
        // nowhere until its turn.
        assert_eq!(waited_for(&["g2"])[0].1, names(&["g3@h2"]));
    }

    #[test]
    fn a_service_shares_a_lane_and_the_rest_go_alone() {
        let env = env();
        let items = [
            planned("g2", "h2", Change::Create),
            planned("g4", "h1", Change::Create),
            planned("web", "h1", Change::Create),
        ];
        let by_name: HashMap<&str, &Planned> =
            items.iter().map(|p| (p.container.as_str(), p)).collect();
        let steps = lanes(&env, &by_name);
        let step3: Vec<Vec<&str>> = steps[&3]
            .values()
            .flatten()
            .map(|lane| lane.iter().map(|c| c.name.as_str()).collect())
            .collect();
        assert_eq!(step3, [vec!["g2", "g4"]]);
        let step0: Vec<Vec<&str>> = steps[&0]
            .values()
            .flatten()
            .map(|lane| lane.iter().map(|c| c.name.as_str()).collect())
            .collect();
        assert_eq!(step0, [vec!["web"]]);
    }
}
