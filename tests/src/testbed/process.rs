//! Stopping the bed's processes: its children, those of pid files, and whatever is left in its namespaces.

use std::fs;
use std::path::Path;
use std::process::Child;
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::tools::{ip, join_errors};

const STOP_GRACE: Duration = Duration::from_secs(3);

pub(super) fn stop_child(child: &mut Child) -> Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = Pid::from_raw(child.id().cast_signed());
    let _ = kill(pid, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if child.try_wait()?.is_some() {
            return Ok(());
        }
        sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// Stops the process of a pid file if its command line names `rundir`
/// (a recycled pid of someone else's process is left alone).
pub(super) fn stop_pidfile(pidfile: &Path, rundir: &Path) -> Result<()> {
    let Ok(text) = fs::read_to_string(pidfile) else {
        return Ok(());
    };
    let Ok(pid) = text.trim().parse::<i32>() else {
        return Ok(());
    };
    let marker = format!("{}/", rundir.display());
    if !cmdline(pid).is_some_and(|c| c.contains(&marker)) {
        return Ok(());
    }
    stop_pid(pid)
}

/// SIGTERM, then SIGKILL after 3 s.
fn stop_pid(pid: i32) -> Result<()> {
    let p = Pid::from_raw(pid);
    let _ = kill(p, Signal::SIGTERM);
    if wait_gone(pid, STOP_GRACE) {
        return Ok(());
    }
    let _ = kill(p, Signal::SIGKILL);
    ensure!(
        wait_gone(pid, Duration::from_secs(2)),
        "process {pid} survived SIGKILL"
    );
    Ok(())
}

fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// Whether `pid` exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(String::from_utf8_lossy(&raw).replace('\0', " "))
}

/// Stops every process left in namespace `ns` (it is the bed's own).
pub(super) fn kill_netns_processes(ns: &str) -> Result<()> {
    let pids: Vec<i32> = ip(&["netns", "pids", ns])?
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    let mut errors = Vec::new();
    for &pid in &pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    for &pid in &pids {
        if !wait_gone(pid, STOP_GRACE) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            if !wait_gone(pid, Duration::from_secs(2)) {
                errors.push(format!("process {pid} in {ns} survived SIGKILL"));
            }
        }
    }
    join_errors(errors)
}
