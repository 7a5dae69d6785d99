//! `addresses`: every address the hosts' managed containers hold and,
//! with etcd, every reservation: `held` by its container, or `orphan` (a
//! client died between reserve and plug). One table, or one JSON array.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use dockstack::ops::addresses::Holder;
use dockstack::ops::cluster::Reservation;
use dockstack::ops::{self, HostOverride};

use super::args::Cli;
use super::{connector, exit, json, load};

pub async fn addresses_command(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let env_cluster = env.cluster.clone();
    let connector = connector(cli)?;
    let (infos, failed) = ops::list_all(Arc::new(env), connector, overrides).await;
    let table = ops::addresses::table(&infos);
    for (h, e) in &failed {
        eprintln!("{}", super::host_failed(h, e));
    }
    let mut failed = !failed.is_empty();
    let reservations = match &env_cluster {
        Some(cluster) => match ops::cluster::reservations(cluster).await {
            Ok(all) => all,
            Err(e) => {
                eprintln!("FAILED etcd: {e}");
                failed = true;
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let held = |h: &Holder| reservations.iter().any(|r| holds(h, r));
    // A reservation whose container no host reports on its address: the
    // next apply of its file takes it back or releases it.
    let orphans: Vec<&Reservation> = reservations
        .iter()
        .filter(|r| !table.iter().any(|h| holds(h, r)))
        .collect();
    if json {
        let rows: Vec<json::Address> = table
            .iter()
            .map(|h| json::Address::held(h, held(h)))
            .chain(orphans.iter().map(|r| json::Address::orphan(r)))
            .collect();
        json::print(&rows);
        return Ok(exit::failed_if(failed));
    }
    let row = |address: String, container: &str, host: &str, mac: &str, state: &str, file: &str| {
        println!("{address:<16} {container:<20} {host:<12} {mac:<18} {state:<10} {file}");
    };
    row(
        "ADDRESS".into(),
        "CONTAINER",
        "HOST",
        "MAC",
        "STATE",
        "FILE",
    );
    for h in &table {
        row(
            h.address.to_string(),
            &h.container,
            &h.host,
            &h.mac,
            &h.state,
            &h.environment,
        );
    }
    if env_cluster.is_some() {
        println!();
        row(
            "RESERVED".into(),
            "CONTAINER",
            "HOST",
            "MAC",
            "STATE",
            "FILE",
        );
        for r in &reservations {
            let state = if orphans.iter().any(|o| std::ptr::eq(*o, r)) {
                "orphan"
            } else {
                "held"
            };
            row(
                r.address.to_string(),
                &r.container,
                &r.host,
                &r.mac,
                state,
                &r.file,
            );
        }
    }
    Ok(exit::failed_if(failed))
}

/// `h` is the container `r` reserves its address for.
fn holds(h: &Holder, r: &Reservation) -> bool {
    h.address == r.address && h.container == r.container
}
