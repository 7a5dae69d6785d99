//! `addresses`: every address the hosts' managed containers hold.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use dockstack::ops::{self, HostOverride};

use super::args::Cli;
use super::{connector, exit, json, load};

pub async fn addresses_command(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
    let env_cluster = env.cluster.clone();
    let connector = connector(cli)?;
    let (infos, failed) = ops::list_all(Arc::new(env), connector, overrides).await;
    let table = ops::addresses::table(&infos);
    if json {
        let rows: Vec<json::Address> = table.iter().map(json::Address::from).collect();
        json::print(&rows);
    } else {
        println!(
            "{:<16} {:<20} {:<12} {:<18} {:<10} FILE",
            "ADDRESS", "CONTAINER", "HOST", "MAC", "STATE"
        );
        for h in &table {
            println!(
                "{:<16} {:<20} {:<12} {:<18} {:<10} {}",
                h.address.to_string(),
                h.container,
                h.host,
                h.mac,
                h.state,
                h.environment
            );
        }
    }
    for (h, e) in &failed {
        eprintln!("{}", super::host_failed(h, e));
    }
    let mut failed = !failed.is_empty();
    if let Some(cluster) = &env_cluster {
        match ops::cluster::reservations(cluster).await {
            Ok(all) if json => json::print(&all),
            Ok(all) => {
                println!();
                println!(
                    "{:<16} {:<20} {:<12} {:<18} {:<10} FILE",
                    "RESERVED", "CONTAINER", "HOST", "MAC", "STATE"
                );
                for r in &all {
                    // A reservation whose container no host reports: a
                    // client died between reserve and plug; the next
                    // apply of its file takes it back or releases it.
                    let state = if table
                        .iter()
                        .any(|h| h.address == r.address && h.container == r.container)
                    {
                        "held"
                    } else {
                        "orphan"
                    };
                    println!(
                        "{:<16} {:<20} {:<12} {:<18} {:<10} {}",
                        r.address.to_string(),
                        r.container,
                        r.host,
                        r.mac,
                        state,
                        r.file
                    );
                }
            }
            Err(e) => {
                eprintln!("FAILED etcd: {e}");
                failed = true;
            }
        }
    }
    Ok(exit::failed_if(failed))
}
