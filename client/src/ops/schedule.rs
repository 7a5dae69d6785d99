//! When each container's action runs: level by level of the dependencies
//! (the reverse for destroy, stop and deregister), hosts in parallel, at
//! most `jobs` containers at once per host; a task that panics is a failed
//! outcome of its container, never a lost one.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use dockstack_proto as pb;
use tokio::sync::Semaphore;
use tokio::task::JoinError;

use super::rpc::{self, Clients};
use super::{Action, HostOverride, OpError, Outcome, recipe};
use crate::connect::Connector;
use crate::environment::{Container, Environment};
use crate::progress::Printer;

/// Orders containers into levels: a container comes after the registration
/// containers and everything in its `after` list, and the Puppet master after
/// the DNS container (it registers there). Returns level per name.
pub fn levels(env: &Environment) -> HashMap<String, usize> {
    let mut deps: HashMap<&str, Vec<&str>> = HashMap::new();
    let registry: Vec<&str> = [
        env.registration.dns.as_ref().map(|d| d.container.as_str()),
        env.registration.puppet.as_ref().map(|p| p.master.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    for c in &env.containers {
        let mut d: Vec<&str> = c.after.iter().map(String::as_str).collect();
        if !registry.contains(&c.name.as_str()) {
            d.extend(registry.iter().copied());
        } else if let (Some(dns), Some(p)) = (&env.registration.dns, &env.registration.puppet)
            && c.name == p.master
            && p.master != dns.container
        {
            d.push(dns.container.as_str());
        }
        deps.insert(c.name.as_str(), d);
    }
    let mut level: HashMap<String, usize> = HashMap::new();
    // Longest-path levels; a cycle is cut by the bound on rounds.
    for _ in 0..=env.containers.len() {
        let mut changed = false;
        for c in &env.containers {
            let l = deps[c.name.as_str()]
                .iter()
                .filter_map(|d| level.get(*d).map(|l| l + 1))
                .max()
                .unwrap_or(0);
            if level.get(&c.name) != Some(&l) {
                level.insert(c.name.clone(), l);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    level
}

/// What a task that did not return says: its panic's message.
fn panicked(e: JoinError, container: &str) -> String {
    if !e.is_panic() {
        return format!("the client's task for {container} was cancelled");
    }
    let payload = e.into_panic();
    let why = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_string());
    format!("the client's task for {container} panicked: {why}")
}

/// Fault injection for the tests, in debug builds only:
/// `DOCKSTACK_CLIENT_PANIC=<container>` makes that container's task panic.
#[cfg(debug_assertions)]
fn injected_panic(container: &str) {
    if std::env::var("DOCKSTACK_CLIENT_PANIC").is_ok_and(|v| v == container) {
        panic!("DOCKSTACK_CLIENT_PANIC={container}: a fault injected for the tests");
    }
}

#[cfg(not(debug_assertions))]
fn injected_panic(_container: &str) {}

/// Applies `action` to `selected`, hosts in parallel, at most `jobs`
/// containers at once per host, level by level.
pub async fn apply(
    env: Arc<Environment>,
    selected: Vec<Container>,
    action: Action,
    connector: Connector,
    overrides: HostOverride,
    jobs: usize,
    printer: Arc<dyn Printer>,
) -> Vec<Outcome> {
    let clients = Arc::new(Clients::new(Arc::clone(&env), connector, overrides));
    let level_of = levels(&env);
    let mut by_level: BTreeMap<usize, Vec<Container>> = BTreeMap::new();
    for c in selected {
        by_level
            .entry(level_of.get(&c.name).copied().unwrap_or(0))
            .or_default()
            .push(c);
    }
    let mut order: Vec<Vec<Container>> = by_level.into_values().collect();
    if matches!(action, Action::Destroy | Action::Stop | Action::Deregister) {
        order.reverse();
    }
    let mut outcomes = Vec::new();
    for level in order {
        let mut by_host: BTreeMap<String, Vec<Container>> = BTreeMap::new();
        for c in level {
            by_host.entry(c.host.clone()).or_default().push(c);
        }
        // Outcomes in the order of before: by host, then as in the file.
        let mut tasks = Vec::new();
        for (host, containers) in by_host {
            let limit = Arc::new(Semaphore::new(jobs.max(1)));
            for c in containers {
                let clients = Arc::clone(&clients);
                let printer = Arc::clone(&printer);
                let limit = Arc::clone(&limit);
                let name = c.name.clone();
                let task = tokio::spawn(async move {
                    // Every container of a host waits on the host's one
                    // connect; other hosts' connects go on meanwhile.
                    let client = clients.get(&c.host).await;
                    let _permit = limit.acquire_owned().await;
                    injected_panic(&c.name);
                    let result = recipe::act(&clients, client, action, &c, printer.as_ref()).await;
                    match &result {
                        Ok(_) => printer.done(&c.name, true, action.name()),
                        Err(e) => printer.done(&c.name, false, &e.message),
                    }
                    result
                });
                tasks.push((name, host.clone(), task));
            }
        }
        for (container, host, task) in tasks {
            let result = match task.await {
                Ok(result) => result,
                Err(e) => {
                    let message = panicked(e, &container);
                    printer.done(&container, false, &message);
                    Err(OpError {
                        host: host.clone(),
                        container: container.clone(),
                        code: None,
                        message,
                    })
                }
            };
            outcomes.push(Outcome {
                container,
                host,
                result,
            });
        }
    }
    outcomes
}

/// Every managed container of every host, with the hosts that failed.
pub async fn list_all(
    env: Arc<Environment>,
    connector: Connector,
    overrides: HostOverride,
) -> (Vec<pb::ContainerInfo>, Vec<(String, String)>) {
    list_within(env, connector, overrides, None).await
}

/// [`list_all`], but a host that has not answered within `deadline` is
/// given up as failed.
pub async fn list_within(
    env: Arc<Environment>,
    connector: Connector,
    overrides: HostOverride,
    deadline: Option<std::time::Duration>,
) -> (Vec<pb::ContainerInfo>, Vec<(String, String)>) {
    let clients = Arc::new(Clients::new(Arc::clone(&env), connector, overrides));
    let tasks: Vec<_> = env
        .hosts
        .iter()
        .map(|h| {
            let clients = Arc::clone(&clients);
            let name = h.name.clone();
            let task = tokio::spawn(async move {
                match deadline {
                    Some(d) => tokio::time::timeout(d, rpc::list(&clients, &name))
                        .await
                        .unwrap_or_else(|_| {
                            Err(rpc::Failure::new(format!(
                                "no answer within {} s",
                                d.as_secs_f32()
                            )))
                        }),
                    None => rpc::list(&clients, &name).await,
                }
            });
            (h.name.clone(), task)
        })
        .collect();
    let mut all = Vec::new();
    let mut failed = Vec::new();
    for (host, task) in tasks {
        match task.await {
            Ok(Ok(mut list)) => all.append(&mut list),
            // Printed after the host's name: a server's message that
            // starts with it would say it twice.
            Ok(Err(f)) => {
                let message = match f.message.strip_prefix(&format!("host {host}: ")) {
                    Some(rest) => rest.to_string(),
                    None => f.message,
                };
                failed.push((host, message));
            }
            Err(e) => {
                let message = panicked(e, &host);
                failed.push((host, message));
            }
        }
    }
    (all, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        super::super::recipe::tests::env()
    }

    #[test]
    fn dns_comes_first_then_the_master_then_the_rest() {
        let level = levels(&env());
        assert_eq!(level["dns1"], 0);
        assert_eq!(level["puppet1"], 1);
        assert_eq!(level["web1"], 2);
        assert_eq!(level["plain1"], 2);
    }

    #[tokio::test]
    async fn a_panic_is_told_with_its_message() {
        let e = tokio::spawn(async { panic!("boom {}", 1) })
            .await
            .unwrap_err();
        assert_eq!(
            panicked(e, "web1"),
            "the client's task for web1 panicked: boom 1"
        );
        let e = tokio::spawn(async { panic!("plain") }).await.unwrap_err();
        assert_eq!(
            panicked(e, "web1"),
            "the client's task for web1 panicked: plain"
        );
    }
}
