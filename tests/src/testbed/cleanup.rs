//! Removing everything of a slot from its number alone: servers, containers, OVS, namespaces, links, routes, run dirs.

use std::collections::BTreeSet;
use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};

use super::layout::{BED_ROOT, HOST_LABEL, MAX_SLOT, indexed, safety_nets, slot_dir};
use super::preconditions::check_root;
use super::process::{kill_netns_processes, stop_pidfile};
use super::slots::{lock_slot, slot_busy};
use super::tools::{docker, ip, join_errors, link_names, list_netns};

/// Removes everything of slot `slot` (servers, containers, OVS, namespaces,
/// links, routes, run dirs), as `Drop` does, from the slot number alone.
/// Fails if a running process holds the slot.
pub fn cleanup_slot(slot: u8) -> Result<()> {
    ensure!(
        slot <= MAX_SLOT,
        "test bed slots are 0..={MAX_SLOT}, not {slot}"
    );
    check_root()?;
    fs::create_dir_all(BED_ROOT)?;
    let _lock = lock_slot(slot)?.ok_or_else(|| slot_busy(slot))?;
    cleanup_slot_unlocked(slot, &[])
}

/// [`cleanup_slot`] for every slot that has something left and that no
/// running process holds; the slots cleaned.
pub fn cleanup_all() -> Result<Vec<u8>> {
    check_root()?;
    let netns = list_netns()?;
    let links = link_names(&["-o", "link", "show"])?;
    let mut cleaned = Vec::new();
    let mut errors = Vec::new();
    for slot in 0..=MAX_SLOT {
        let ns_prefix = format!("dsb{slot}h");
        let link_prefix = format!("dsm{slot}h");
        let used = slot_dir(slot).exists()
            || netns.iter().any(|n| indexed(n, &ns_prefix).is_some())
            || links.iter().any(|n| indexed(n, &link_prefix).is_some());
        if !used {
            continue;
        }
        match lock_slot(slot) {
            Ok(Some(_lock)) => match cleanup_slot_unlocked(slot, &[]) {
                Ok(()) => cleaned.push(slot),
                Err(e) => errors.push(format!("{e:#}")),
            },
            Ok(None) => eprintln!("test bed slot {slot} is in use; left alone"),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    join_errors(errors)?;
    Ok(cleaned)
}

/// The cleanup proper; the caller holds the slot's lock.
pub(super) fn cleanup_slot_unlocked(slot: u8, known_names: &[String]) -> Result<()> {
    let mut errors: Vec<String> = Vec::new();
    let dir = slot_dir(slot);
    let mut names: BTreeSet<String> = known_names.iter().cloned().collect();
    if let Ok(state) = fs::read_to_string(dir.join("bed.state")) {
        names.extend(
            state
                .lines()
                .filter_map(|l| l.strip_prefix("host\t"))
                .filter_map(|l| l.split('\t').nth(1))
                .map(String::from),
        );
    }
    let ns_prefix = format!("dsb{slot}h");
    let netns: Vec<String> = match list_netns() {
        Ok(all) => all
            .into_iter()
            .filter(|n| indexed(n, &ns_prefix).is_some())
            .collect(),
        Err(e) => {
            errors.push(format!("{e:#}"));
            Vec::new()
        }
    };
    let rundirs: Vec<PathBuf> = match fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok())
            .filter(|e| indexed(&e.file_name().to_string_lossy(), "h").is_some())
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            errors.push(format!("reading {}: {e}", dir.display()));
            Vec::new()
        }
    };

    // 1. The servers.
    for rd in &rundirs {
        if let Err(e) = stop_pidfile(&rd.join("server.pid"), rd) {
            errors.push(format!("stopping the server of {}: {e:#}", rd.display()));
        }
    }
    // 2. Their containers.
    if let Err(e) = remove_bed_containers(slot, &names) {
        errors.push(format!("{e:#}"));
    }
    // 3. OVS, then anything else still running in the namespaces.
    for rd in &rundirs {
        for daemon in ["ovs-vswitchd", "ovsdb-server"] {
            if let Err(e) = stop_pidfile(&rd.join(format!("{daemon}.pid")), rd) {
                errors.push(format!("stopping {daemon} of {}: {e:#}", rd.display()));
            }
        }
    }
    for ns in &netns {
        if let Err(e) = kill_netns_processes(ns) {
            errors.push(format!("{e:#}"));
        }
    }
    // 4. The namespaces (and the veths in them).
    for ns in &netns {
        if let Err(e) = ip(&["netns", "delete", ns]) {
            errors.push(format!("{e:#}"));
        }
    }
    // 5. Root ends of management links that are still there.
    let link_prefix = format!("dsm{slot}h");
    match link_names(&["-o", "link", "show"]) {
        Ok(links) => {
            for link in links.iter().filter(|l| indexed(l, &link_prefix).is_some()) {
                if let Err(e) = ip(&["link", "delete", link])
                    && !format!("{e:#}").contains("Cannot find device")
                {
                    errors.push(format!("{e:#}"));
                }
            }
        }
        Err(e) => errors.push(format!("{e:#}")),
    }
    // 6. The safety routes.
    for net in safety_nets(slot, true) {
        if let Err(e) = ip(&["route", "delete", "unreachable", &net])
            && !format!("{e:#}").contains("No such process")
        {
            errors.push(format!("{e:#}"));
        }
    }
    // 7. The run dirs; kept when something failed, for a later cleanup.
    if errors.is_empty() {
        match fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => errors.push(format!("removing {}: {e}", dir.display())),
        }
    } else {
        errors.push(format!("kept {} for a later cleanup", dir.display()));
    }
    join_errors(errors).with_context(|| format!("cleaning up test bed slot {slot}"))
}

fn remove_bed_containers(slot: u8, names: &BTreeSet<String>) -> Result<()> {
    let format = format!("{{{{.ID}}}}\t{{{{.Names}}}}\t{{{{.Label \"{HOST_LABEL}\"}}}}");
    let out = docker(&["ps", "-a", "--no-trunc", "--format", &format])?;
    let host_prefix = format!("bed{slot}-h");
    let name_prefix = format!("t{slot}-");
    let ids: Vec<&str> = out
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let id = fields.next()?;
            let name = fields.next().unwrap_or("");
            let host = fields.next().unwrap_or("");
            let ours = names.contains(host)
                || indexed(host, &host_prefix).is_some()
                || name.starts_with(&name_prefix);
            ours.then_some(id)
        })
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    let mut args = vec!["rm", "-f", "-v"];
    args.extend(ids);
    docker(&args)?;
    Ok(())
}
