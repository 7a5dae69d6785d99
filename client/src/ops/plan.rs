//! `plan` and `apply`: the environment file beside what every host runs,
//! the change each container needs to match it, and carrying the changes
//! out step by step, each step gated on the health of the one before.
//!
//! A plan asks every host once, in parallel (the Plan call: the server
//! compares each spec with the record of the container of its name, and
//! names each difference). Apply recomputes it, so that what it carries out
//! is what the hosts run now; `--plan-id` refuses to go on when that is no
//! longer what an earlier `plan` showed.

use dockstack_types::ContainerState;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dockstack_proto as pb;
use sha2::{Digest, Sha256};

use super::HostOverride;
use super::rpc::{self, Clients};
use crate::connect::Connector;
use crate::environment::{Container, Environment};

mod apply;
mod json;

pub use apply::{Applied, ApplyError, apply};

/// What one container needs to match the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// No container of that name on any host.
    Create,
    /// The container differs (each difference named) or runs on another
    /// host, `from`: it is replaced, keeping its address and MAC.
    Recreate {
        differences: Vec<String>,
        from: String,
    },
    /// The contents of these config volumes changed since it was made or
    /// last restarted: a restart in its sandbox applies them.
    Restart {
        paths: Vec<String>,
    },
    /// The file wants it running (and plugged); it is not.
    Start,
    /// The file wants it stopped; it runs.
    Stop,
    Unchanged,
    /// Managed on a host of the file, but the file no longer names it.
    Orphan,
}

impl Change {
    pub fn verb(&self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Recreate { .. } => "recreate",
            Change::Restart { .. } => "restart",
            Change::Start => "start",
            Change::Stop => "stop",
            Change::Unchanged => "unchanged",
            Change::Orphan => "orphan",
        }
    }
}

/// One line of a plan.
#[derive(Debug, Clone)]
pub struct Planned {
    pub container: String,
    /// Where it is to run (for an orphan: where it runs).
    pub host: String,
    pub change: Change,
    /// What runs under that name now, if anything.
    pub found: Option<pb::ContainerInfo>,
    /// Whether the target host has the image (create and recreate).
    pub image_present: bool,
    pub image: String,
}

impl Planned {
    /// The line `plan` prints.
    pub fn line(&self) -> String {
        let head = format!(
            "{:<10} {} on {}",
            self.change.verb(),
            self.container,
            self.host
        );
        match &self.change {
            Change::Recreate { differences, .. } => {
                format!("{head}: {}", differences.join(", "))
            }
            Change::Restart { paths } => {
                format!("{head} (config changed: {})", paths.join(", "))
            }
            Change::Start => match &self.found {
                Some(f) if f.container_state() == ContainerState::Running => {
                    format!("{head} (running, not plugged)")
                }
                Some(f) => format!("{head} ({})", f.container_state()),
                None => head,
            },
            _ => head,
        }
    }
}

/// A whole plan: one line per container of the file, in file order, then
/// the orphans.
#[derive(Debug, Clone)]
pub struct Plan {
    pub items: Vec<Planned>,
    /// A hash of what the hosts were seen to run and what the file asks.
    pub id: String,
    /// Hosts that could not be asked, with why: the plan is incomplete.
    pub failed: Vec<(String, String)>,
    /// Every managed container the hosts reported.
    pub seen: Vec<pb::ContainerInfo>,
}

impl Plan {
    /// Lines that change something.
    pub fn pending(&self) -> impl Iterator<Item = &Planned> {
        self.items.iter().filter(|p| p.change != Change::Unchanged)
    }

    /// The changes an apply that did `done` (see `Applied::done`) left
    /// undone; orphans only with `prune`.
    pub fn undone(&self, done: &[(String, &'static str)], prune: bool) -> Vec<&Planned> {
        self.pending()
            .filter(|p| prune || p.change != Change::Orphan)
            .filter(|p| !done.iter().any(|(c, _)| *c == p.container))
            .collect()
    }

    /// `verb: count`, every verb that occurs.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for p in &self.items {
            *m.entry(p.change.verb()).or_default() += 1;
        }
        m
    }

    pub fn summary_line(&self) -> String {
        let counts: Vec<String> = self
            .summary()
            .iter()
            .map(|(verb, n)| format!("{n} {verb}"))
            .collect();
        format!("plan {}: {}", self.id, counts.join(", "))
    }

    pub fn to_json(&self) -> serde_json::Value {
        json::plan(self)
    }
}

/// Asks every host of `env` and makes the plan; changes nothing.
pub async fn plan(env: Arc<Environment>, connector: Connector, overrides: HostOverride) -> Plan {
    let clients = Clients::new(env, connector, overrides);
    compute(&clients).await
}

async fn compute(clients: &Clients) -> Plan {
    let env = &clients.env;
    let environment = clients.environment.clone();
    let asks = env.hosts.iter().map(|h| {
        let specs: Vec<pb::ContainerSpec> = env
            .containers
            .iter()
            .filter(|c| c.host == h.name)
            .map(|c| {
                let mut s = rpc::spec_of(c);
                s.environment = environment.clone();
                s
            })
            .collect();
        let name = h.name.clone();
        async move { (name.clone(), rpc::plan(clients, &name, specs).await) }
    });
    let mut answers: HashMap<String, pb::PlanResponse> = HashMap::new();
    let mut failed = Vec::new();
    for (host, answer) in futures::future::join_all(asks).await {
        match answer {
            Ok(a) => {
                answers.insert(host, a);
            }
            Err(f) => failed.push((host, f.message)),
        }
    }
    let names: std::collections::HashSet<&str> =
        env.containers.iter().map(|c| c.name.as_str()).collect();
    // A container of the file seen on a host that is not its own: moved
    // (when its own host has none of that name) or a stray copy.
    let mut elsewhere: BTreeMap<&str, Vec<(&str, &pb::ContainerInfo)>> = BTreeMap::new();
    let mut orphans = Vec::new();
    for h in &env.hosts {
        let Some(a) = answers.get(&h.name) else {
            continue;
        };
        for info in &a.unrequested {
            if names.contains(info.name.as_str()) {
                elsewhere
                    .entry(info.name.as_str())
                    .or_default()
                    .push((h.name.as_str(), info));
            } else {
                orphans.push(orphan_line(&h.name, info));
            }
        }
    }
    let mut items = Vec::new();
    for c in &env.containers {
        let Some(a) = answers.get(&c.host) else {
            continue;
        };
        let Some(entry) = a.entries.iter().find(|e| e.name == c.name) else {
            continue;
        };
        let mut strays = elsewhere.remove(c.name.as_str()).unwrap_or_default();
        let (change, found) = match &entry.found {
            Some(info) => (
                decide(c, info, &entry.differences, &entry.config_changed),
                Some(info.clone()),
            ),
            None if !strays.is_empty() => {
                let (from, info) = strays.remove(0);
                (
                    Change::Recreate {
                        differences: vec![format!("host {from} -> {}", c.host)],
                        from: from.to_string(),
                    },
                    Some(info.clone()),
                )
            }
            None => (Change::Create, None),
        };
        for (host, info) in strays {
            orphans.push(orphan_line(host, info));
        }
        items.push(Planned {
            container: c.name.clone(),
            host: c.host.clone(),
            change,
            found,
            image_present: entry.image_present,
            image: c.image.clone(),
        });
    }
    items.extend(orphans);
    let id = plan_id(&items, &failed);
    let seen = answers
        .values()
        .flat_map(|a| {
            a.entries
                .iter()
                .filter_map(|e| e.found.clone())
                .chain(a.unrequested.iter().cloned())
        })
        .collect();
    Plan {
        items,
        id,
        failed,
        seen,
    }
}

fn orphan_line(host: &str, info: &pb::ContainerInfo) -> Planned {
    Planned {
        container: info.name.clone(),
        host: host.to_string(),
        change: Change::Orphan,
        found: Some(info.clone()),
        image_present: true,
        image: info.image.clone(),
    }
}

/// The change a container that exists on its own host needs.
fn decide(
    c: &Container,
    info: &pb::ContainerInfo,
    differences: &[String],
    config_changed: &[String],
) -> Change {
    if !differences.is_empty() {
        return Change::Recreate {
            differences: differences.to_vec(),
            from: c.host.clone(),
        };
    }
    if c.state && !c.oneshot && !config_changed.is_empty() {
        return Change::Restart {
            paths: config_changed.to_vec(),
        };
    }
    let running = info.container_state() == ContainerState::Running;
    if c.oneshot {
        // One that succeeded is done; one that failed runs again.
        return if !running && info.exit_code != 0 {
            Change::Recreate {
                differences: vec![format!("oneshot exited with status {}", info.exit_code)],
                from: c.host.clone(),
            }
        } else {
            Change::Unchanged
        };
    }
    match (c.state, running) {
        (true, false) => Change::Start,
        (true, true) if !info.plugged => Change::Start,
        (false, true) => Change::Stop,
        _ => Change::Unchanged,
    }
}

/// 16 hex digits of a hash of what each line saw and decided.
fn plan_id(items: &[Planned], failed: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    let mut put = |s: &str| {
        h.update(s.as_bytes());
        h.update([0]);
    };
    for p in items {
        put(&p.container);
        put(&p.host);
        put(&p.line());
        if let Some(f) = &p.found {
            put(&f.id);
            put(&f.spec_hash);
            put(f.container_state().as_str());
            put(&f.started_at);
        }
    }
    for (host, _) in failed {
        put(host);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
