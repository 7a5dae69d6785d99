//! `addresses`: every address the hosts' managed containers hold.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use dockstack::ops::{self, HostOverride};

use super::args::Cli;
use super::{connector, exit, json, load};

pub async fn addresses_command(cli: &Cli, overrides: HostOverride, json: bool) -> Result<ExitCode> {
    let env = load(cli)?;
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
    Ok(exit::failed_if(!failed.is_empty()))
}
