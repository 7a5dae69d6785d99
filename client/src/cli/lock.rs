//! The change lock on the command line: taking it around a change
//! (exit status 4 when another holds it), `lock` and `unlock --force`.

use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use dockstack::connect::Connector;
use dockstack::environment::{Container, Environment};
use dockstack::ops::HostOverride;
use dockstack::ops::cluster::{self, ClusterError};
use dockstack::ops::lock::{self, LockError};

use super::args::Cli;
use super::{Invalid, connector, exit, load};

/// Runs `work` under the change lock of the hosts `action` on `containers`
/// touches; gives the lock back after it. Exit status 4 when another holds
/// a host's lock (after `--wait`), 1 when a host could not be asked.
pub async fn locked<F, Fut>(
    cli: &Cli,
    env: &Environment,
    containers: &[Container],
    action: &'static str,
    connector: &Connector,
    overrides: &HostOverride,
    work: F,
) -> Result<ExitCode>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<ExitCode>>,
{
    let hosts = lock::hosts_touched(env, containers, action);
    let wait = cli.wait.map(Duration::from_secs);
    // The cluster's etcd lock first, then the hosts': two clients meet on
    // the first one they share, in one order.
    let cluster = match &env.cluster {
        Some(c) => match cluster::acquire(env, c, action, wait).await {
            Ok(s) => Some(s),
            Err(e) => {
                eprintln!("dockstack: {action}: {e}; nothing was done");
                return Ok(ExitCode::from(match e {
                    ClusterError::Held { .. } => exit::LOCKED,
                    _ => exit::FAILED,
                }));
            }
        },
        None => None,
    };
    let held = match lock::acquire(env, connector, overrides, action, &hosts, wait).await {
        Ok(l) => l,
        Err(e) => {
            if let Some(s) = &cluster {
                s.release().await;
            }
            eprintln!("dockstack: {action}: {e}; nothing was done");
            return Ok(ExitCode::from(match e {
                LockError::Held { .. } => exit::LOCKED,
                LockError::Failed { .. } => exit::FAILED,
            }));
        }
    };
    let result = work().await;
    held.release().await;
    if let Some(s) = &cluster {
        s.release().await;
    }
    result
}

/// The file's hosts, or `--host` alone (which must be one of them).
fn hosts(cli: &Cli, env: &Environment, only: Option<&str>) -> Result<Vec<String>> {
    let mut all: Vec<String> = env.hosts.iter().map(|h| h.name.clone()).collect();
    all.sort();
    match only {
        None => Ok(all),
        Some(h) if all.iter().any(|a| a == h) => Ok(vec![h.to_string()]),
        Some(h) => Err(Invalid(format!(
            "{}: no host {h} in containerhosts",
            cli.file.display()
        ))
        .into()),
    }
}

/// `lock`: each host's lock, free or whose, and the cluster's etcd lock
/// when there is one; `unlock --force`: breaks them.
pub async fn lock_command(
    cli: &Cli,
    overrides: HostOverride,
    force_break: bool,
    only: Option<&str>,
) -> Result<ExitCode> {
    let env = load(cli)?;
    let hosts = hosts(cli, &env, only)?;
    let connector = connector(cli)?;
    let answers = lock::inspect(&env, &connector, &overrides, &hosts, force_break).await;
    let mut failed = false;
    // The servers check the caller's role; the etcd lock is broken only
    // for a caller some host let break its own (an admin, by the policy).
    let admitted = answers.iter().any(|(_, a)| a.is_ok());
    for (host, answer) in answers {
        match answer {
            Ok(holder) => println!(
                "{host:<16} {}",
                shown(holder.as_ref().map(lock::describe), force_break)
            ),
            Err(e) => {
                eprintln!("{}", super::host_failed(&host, &e));
                failed = true;
            }
        }
    }
    // `--host` names one host's lock alone.
    if let Some(c) = env.cluster.as_ref().filter(|_| only.is_none()) {
        let label = format!("etcd {}", c.prefix);
        let answer = match (force_break, admitted) {
            (false, _) => cluster::inspect(c).await.map_err(|e| e.to_string()),
            (true, true) => cluster::force_break(c, connector.identity())
                .await
                .map_err(|e| e.to_string()),
            (true, false) => Err(
                "not broken: no host let this certificate break its lock (the admin role only)"
                    .to_string(),
            ),
        };
        match answer {
            Ok(holder) => println!(
                "{label:<16} {}",
                shown(holder.as_ref().map(cluster::describe), force_break)
            ),
            Err(e) => {
                eprintln!("FAILED {label}: {e}");
                failed = true;
            }
        }
    }
    Ok(exit::failed_if(failed))
}

/// A lock's line: `free`, or whose it is (or was, when broken).
fn shown(holder: Option<String>, broken: bool) -> String {
    match (holder, broken) {
        (None, false) => "free".to_string(),
        (None, true) => "free (nothing to break)".to_string(),
        (Some(h), false) => h,
        (Some(h), true) => format!("broken: was {h}"),
    }
}
