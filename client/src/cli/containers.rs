//! The container commands: `list` and `get` from the file, `status` across the
//! hosts, and the actions (run, destroy, start, stop, restart, show,
//! register, deregister) on the selected containers.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use dockstack::connect::Connector;
use dockstack::environment::{Container, Environment};
use dockstack::ops::{self, Action, HostOverride, Outcome};
use dockstack::progress::{LinePrinter, LivePrinter, Printer};

use super::args::Cli;
use super::{connector, exit, json, load, lock, render, selected};

/// How long `run` and `start` wait for a host's addresses.
const ADDRESS_CHECK_WAIT: Duration = Duration::from_secs(2);

/// `list`: the containers of the file; no host is asked.
pub fn list(cli: &Cli, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let containers = selected(cli, &env)?;
    if json {
        let items: Vec<json::ListItem> = containers.iter().map(json::ListItem::from).collect();
        json::print(&items);
    } else {
        render::list_table(&containers)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `get -p PROPERTY`: one property of each selected container.
pub fn get(cli: &Cli) -> Result<ExitCode> {
    let env = load(cli)?;
    let containers = selected(cli, &env)?;
    let Some(p) = &cli.property else {
        eprintln!("dockstack: get needs -p PROPERTY");
        return Ok(ExitCode::from(exit::INVALID));
    };
    for c in &containers {
        let Some(v) = render::property(&env, c, p) else {
            eprintln!("dockstack: unknown property {p}");
            return Ok(ExitCode::from(exit::INVALID));
        };
        if containers.len() == 1 {
            println!("{v}");
        } else {
            println!("{} {v}", c.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `status`: every container across all hosts.
pub async fn status(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let connector = connector(cli)?;
    let (infos, failed) = ops::list_all(Arc::new(env.clone()), connector, overrides).await;
    if json {
        let items: Vec<json::Info> = infos.iter().map(json::Info::from).collect();
        json::print(&items);
    } else {
        let failed_hosts: Vec<&str> = failed.iter().map(|(h, _)| h.as_str()).collect();
        render::status_table(&env, &infos, &failed_hosts);
    }
    for (h, e) in &failed {
        eprintln!("{}", super::host_failed(h, e));
    }
    Ok(exit::failed_if(!failed.is_empty()))
}

/// An action on the selected containers, each on its host.
pub async fn act(
    cli: &Cli,
    action: Action,
    overrides: HostOverride,
    json: bool,
) -> Result<ExitCode> {
    let env = load(cli)?;
    let containers = selected(cli, &env)?;
    let connector = connector(cli)?;
    if action == Action::Show {
        return act_now(cli, env, containers, action, connector, overrides, json).await;
    }
    let (locking, touched) = (env.clone(), containers.clone());
    let work = || {
        act_now(
            cli,
            env,
            containers,
            action,
            connector.clone(),
            overrides.clone(),
            json,
        )
    };
    lock::locked(
        cli,
        &locking,
        &touched,
        action.name(),
        &connector,
        &overrides,
        work,
    )
    .await
}

/// [`act`] once the lock is held.
async fn act_now(
    cli: &Cli,
    env: Environment,
    containers: Vec<Container>,
    action: Action,
    connector: Connector,
    overrides: HostOverride,
    json: bool,
) -> Result<ExitCode> {
    if matches!(action, Action::Run | Action::Start)
        && !addresses_free(&env, &containers, &connector, &overrides, action).await
    {
        return Ok(ExitCode::from(exit::FAILED));
    }
    let cluster = ops::cluster::current();
    // Reserved in the cluster's etcd before anything is plugged.
    let reserving = cluster
        .as_ref()
        .filter(|_| matches!(action, Action::Run | Action::Start));
    if let Some(s) = reserving
        && let Err(e) = s.reserve(&containers).await
    {
        eprintln!("FAILED {e}");
        eprintln!("{}: nothing was done", action.name());
        return Ok(ExitCode::from(exit::FAILED));
    }
    let printer = printer(&containers, action, json);
    let outcomes = ops::apply(
        Arc::new(env),
        containers,
        action,
        connector,
        overrides,
        cli.jobs,
        printer,
    )
    .await;
    if action == Action::Show && !json {
        return Ok(show(&outcomes));
    }
    if let Some(s) = cluster.as_ref().filter(|_| action == Action::Destroy) {
        let gone: Vec<String> = outcomes
            .iter()
            .filter(|o| o.result.is_ok())
            .map(|o| o.container.clone())
            .collect();
        if let Err(e) = s.release_containers(&gone).await {
            eprintln!(
                "dockstack: warning: the destroyed containers' reservations were not released: {e}"
            );
        }
    }
    Ok(summarize(&outcomes, action, json))
}

/// `restart`: the selected containers, each in its sandbox; a service's
/// members one at a time.
pub async fn restart(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let containers = selected(cli, &env)?;
    let connector = connector(cli)?;
    let (locking, touched) = (env.clone(), containers.clone());
    let work = || async {
        let printer = printer(&containers, Action::Restart, json);
        let outcomes = ops::restart(
            Arc::new(env),
            containers.clone(),
            connector.clone(),
            overrides.clone(),
            cli.jobs,
            printer,
        )
        .await;
        Ok(summarize(&outcomes, Action::Restart, json))
    };
    lock::locked(
        cli, &locking, &touched, "restart", &connector, &overrides, work,
    )
    .await
}

/// Before any address is plugged: one parallel round trip to every host for
/// the addresses their managed containers hold. A host that does not answer
/// soon is not waited for (its own containers fail on their own; the wire
/// probe still guards its addresses), so it holds up no other host's
/// containers. False, with the clashes printed, when one is taken.
async fn addresses_free(
    env: &Environment,
    containers: &[Container],
    connector: &Connector,
    overrides: &HostOverride,
    action: Action,
) -> bool {
    let (clashes, late) = ops::addresses::check(
        env,
        containers,
        connector.clone(),
        overrides.clone(),
        ADDRESS_CHECK_WAIT,
    )
    .await;
    for (host, why) in &late {
        eprintln!(
            "dockstack: warning: host {host} was not asked for the addresses it holds ({why}); they are not checked"
        );
    }
    if clashes.is_empty() {
        return true;
    }
    for c in &clashes {
        eprintln!("FAILED {}: {c}", c.wanted_by);
    }
    eprintln!("{}: nothing was done", action.name());
    false
}

/// A live table on a terminal, lines otherwise (on stderr under JSON).
fn printer(containers: &[Container], action: Action, json: bool) -> Arc<dyn Printer> {
    let width = containers.iter().map(|c| c.name.len()).max().unwrap_or(8);
    let live = std::io::stderr().is_terminal() && !json && action != Action::Show;
    if live {
        let names: Vec<String> = containers.iter().map(|c| c.name.clone()).collect();
        Arc::new(LivePrinter::new(&names))
    } else {
        Arc::new(LinePrinter {
            width,
            to_stderr: json,
        })
    }
}

/// `show` as text: each container's fields, then the failures.
fn show(outcomes: &[Outcome]) -> ExitCode {
    for o in outcomes {
        if let Ok(Some(i)) = &o.result {
            render::show(i);
        }
    }
    let failed: Vec<_> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    for o in &failed {
        if let Err(e) = &o.result {
            eprintln!(
                "{}",
                super::container_failed(&o.container, &o.host, &e.to_string())
            );
        }
    }
    exit::failed_if(!failed.is_empty())
}

fn summarize(outcomes: &[Outcome], action: Action, json: bool) -> ExitCode {
    let failed: Vec<&Outcome> = outcomes.iter().filter(|o| o.result.is_err()).collect();
    if json {
        let items: Vec<json::OutcomeItem> = outcomes.iter().map(json::OutcomeItem::from).collect();
        json::print(&items);
    } else {
        for o in outcomes {
            match &o.result {
                Ok(Some(i)) => println!(
                    "{:<16} {:<12} {:<18} {:<10} {}",
                    o.container,
                    o.host,
                    i.ip,
                    i.state,
                    if i.plugged { "plugged" } else { "unplugged" }
                ),
                Ok(None) => println!("{:<16} {:<12} {}", o.container, o.host, action.name()),
                Err(_) => {}
            }
        }
        for o in &failed {
            if let Err(e) = &o.result {
                eprintln!(
                    "{}",
                    super::container_failed(&o.container, &o.host, &e.to_string())
                );
            }
        }
        eprintln!(
            "{}: {} succeeded, {} failed",
            action.name(),
            outcomes.len() - failed.len(),
            failed.len()
        );
    }
    exit::failed_if(!failed.is_empty())
}
