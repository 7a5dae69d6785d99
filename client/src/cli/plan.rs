//! `plan` and `apply`: what would change on the hosts to match the file, and
//! making it so.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use dockstack::ops::{HostOverride, plan};
use dockstack::progress::{LinePrinter, Printer};

use super::args::Cli;
use super::{Invalid, connector, exit, json, load, lock};

/// Prints `plan`, text or JSON; the hosts that could not be asked go to
/// stderr.
fn print_plan(plan: &plan::Plan, json: bool, only_changes: bool) {
    if json {
        println!("{}", plan.to_json());
    } else {
        for p in &plan.items {
            if !only_changes || p.change != plan::Change::Unchanged {
                println!("{}", p.line());
            }
        }
        println!("{}", plan.summary_line());
    }
    for (h, e) in &plan.failed {
        eprintln!("{}", super::host_failed(h, e));
    }
}

pub async fn plan_command(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let connector = connector(cli)?;
    let plan = plan::plan(Arc::new(env), connector, overrides).await;
    print_plan(&plan, json, false);
    Ok(ExitCode::from(if !plan.failed.is_empty() {
        exit::FAILED
    } else if plan.pending().next().is_some() {
        exit::PENDING
    } else {
        0
    }))
}

pub async fn apply_command(
    cli: &Cli,
    overrides: HostOverride,
    json: bool,
    yes: bool,
    prune: bool,
    plan_id: Option<&str>,
) -> Result<ExitCode> {
    // Refused before any host is asked: nothing could be confirmed.
    if !yes && !std::io::stdin().is_terminal() {
        return Err(Invalid(
            "apply: stdin is no terminal to confirm on: give --yes to apply without asking".into(),
        )
        .into());
    }
    let env = Arc::new(load(cli)?);
    let connector = connector(cli)?;
    // The plan is made under the lock: another's change between it and the
    // apply would make it stale.
    let work = || {
        apply_locked(
            Arc::clone(&env),
            &connector,
            &overrides,
            json,
            yes,
            prune,
            plan_id,
        )
    };
    lock::locked(cli, &env, &[], "apply", &connector, &overrides, work).await
}

/// [`apply_command`] once the lock is held.
async fn apply_locked(
    env: Arc<dockstack::environment::Environment>,
    connector: &dockstack::connect::Connector,
    overrides: &HostOverride,
    json: bool,
    yes: bool,
    prune: bool,
    plan_id: Option<&str>,
) -> Result<ExitCode> {
    let (connector, overrides) = (connector.clone(), overrides.clone());
    let plan = plan::plan(Arc::clone(&env), connector.clone(), overrides.clone()).await;
    print_plan(&plan, json, true);
    if !plan.failed.is_empty() {
        eprintln!("apply: not every host answered; nothing was changed");
        return Ok(ExitCode::from(exit::FAILED));
    }
    if let Some(id) = plan_id
        && id != plan.id
    {
        eprintln!(
            "apply: plan {id} is stale: the hosts now give plan {}; nothing was changed (run plan again)",
            plan.id
        );
        return Ok(ExitCode::from(exit::FAILED));
    }
    let actionable = plan
        .pending()
        .filter(|p| prune || p.change != plan::Change::Orphan)
        .count();
    if actionable == 0 {
        eprintln!("apply: nothing to do");
        return Ok(ExitCode::SUCCESS);
    }
    if !yes {
        eprint!("apply these {actionable} changes? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("apply: not confirmed; nothing was changed");
            return Ok(ExitCode::from(exit::FAILED));
        }
    }
    let width = env
        .containers
        .iter()
        .map(|c| c.name.len())
        .max()
        .unwrap_or(8);
    let printer: Arc<dyn Printer> = Arc::new(LinePrinter {
        width,
        to_stderr: json,
    });
    let (applied, result) = plan::apply(env, connector, overrides, &plan, prune, printer).await;
    for name in &applied.left {
        eprintln!("apply: orphan {name} left in place (--prune removes it)");
    }
    if json {
        let error = result.as_ref().err().map(ToString::to_string);
        json::print(&json::Applied::new(&plan.id, &applied.done, error));
    }
    match result {
        Ok(()) => {
            eprintln!("apply: {} changes made", applied.done.len());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("FAILED apply: {e}");
            // What the next apply is to do: the step that failed, and
            // every later one.
            for p in plan.undone(&applied.done, prune) {
                eprintln!("apply: left undone: {}", p.line());
            }
            Ok(ExitCode::from(exit::FAILED))
        }
    }
}
