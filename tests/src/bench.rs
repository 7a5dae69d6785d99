//! What the benchmarks (`src/bin/bench-*`) share: the timed client, the
//! servers' pause image, a process's memory, and removing containers.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::testbed::{TestBed, docker};

/// The image of the sandboxes, which each server builds at start-up.
pub const PAUSE_IMAGE: &str = "dockstack-pause";

/// `dockstack -f ENV ARGS`, timed: its exit code
/// (0, or 3: `plan` with changes pending) and wall time; any other code is
/// an error with its stderr.
pub fn timed(bed: &TestBed, env: &Path, args: &[&str]) -> Result<(Option<i32>, Duration)> {
    let began = Instant::now();
    let out = bed
        .client_command()
        .arg("-f")
        .arg(env)
        .args(args)
        .output()?;
    let took = began.elapsed();
    anyhow::ensure!(
        matches!(out.status.code(), Some(0 | 3)),
        "dockstack {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.code(), took))
}

/// The pause image the servers built (the newest tag), and every tag
/// there is.
pub fn pause_image() -> Result<(String, Vec<String>)> {
    let out = docker(&["images", PAUSE_IMAGE, "--format", "{{.Tag}}"])?;
    let tags: Vec<String> = out
        .lines()
        .map(str::trim)
        .filter(|t| !t.is_empty() && *t != "<none>")
        .map(String::from)
        .collect();
    let tag = tags
        .first()
        .with_context(|| format!("no {PAUSE_IMAGE} image: the server builds it at start-up"))?;
    Ok((format!("{PAUSE_IMAGE}:{tag}"), tags))
}

/// A field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

/// `docker rm -f` of `names`, 50 to a command.
pub fn remove_containers(names: &[String]) -> Result<()> {
    for chunk in names.chunks(50) {
        let mut rm = vec!["rm", "-f"];
        rm.extend(chunk.iter().map(String::as_str));
        docker(&rm)?;
    }
    Ok(())
}
