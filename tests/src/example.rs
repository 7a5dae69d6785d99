//! The control plane example (`examples/controlplane/`) on a test bed: its
//! images built by `scripts/images`, and its environment file cut down to
//! the containers a test runs and mapped onto the bed's hosts, subnet,
//! container names and a data directory of the bed's own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{dockstack, text};
use crate::testbed::TestBed;

pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds tests/")
        .to_path_buf()
}

/// Builds (or finds up to date) the example's images `names`.
pub fn build_images(names: &[&str]) {
    let script = workspace().join("scripts/images");
    let started = Instant::now();
    let out = Command::new(&script)
        .args(names)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/images could not build the example's images (it needs root, debootstrap \
         (scripts/install-deps installs it), dockerd and apt's Debian mirror): {}",
        text(&out)
    );
    eprintln!(
        "scripts/images in {:.1} s:\n{}",
        started.elapsed().as_secs_f64(),
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The example's `containers:` entries named in `keep`, with the rest of
/// the file (its comments, hosts and defaults) as it is. An entry runs from
/// its name's line (indented by two) to the next one.
fn keep_containers(yaml: &str, keep: &[&str]) -> String {
    let mut out = String::new();
    let mut in_containers = false;
    let mut kept = true;
    for line in yaml.lines() {
        if !line.starts_with(' ') && !line.starts_with('#') && !line.is_empty() {
            in_containers = line.starts_with("containers:");
            kept = true;
        } else if in_containers
            && !line.starts_with("   ")
            && !line.trim_start().starts_with('#')
            && let Some((name, _)) = line.trim().split_once(':')
        {
            kept = keep.contains(&name);
        }
        if kept {
            out.push_str(line);
            out.push('\n');
        }
    }
    for name in keep {
        assert!(
            out.contains(&format!("\n  {name}:")),
            "the example has no container {name}"
        );
    }
    out
}

/// Every `10.0.0.N` (N below 100, the gateway's) of `yaml` mapped to the
/// bed's subnet address of the same last byte.
fn map_addresses(yaml: &str, bed: &TestBed) -> String {
    const PREFIX: &str = "10.0.0.";
    let mut out = String::new();
    let mut rest = yaml;
    while let Some(at) = rest.find(PREFIX) {
        out.push_str(&rest[..at]);
        let after = &rest[at + PREFIX.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<u32>() {
            Ok(n) if (1..100).contains(&n) => out.push_str(&bed.subnet_ip(n).to_string()),
            _ => out.push_str(&rest[at..at + PREFIX.len() + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// The example's environment with only the containers `keep`, followed by
/// `extra` (the test's own containers, named in `extra_names`), with the
/// bed's hosts, addresses and names, and its data directories under the
/// bed's `controlplane/`. Written as the bed's `file_name`.
pub fn bed_environment(
    bed: &TestBed,
    keep: &[&str],
    extra: &str,
    extra_names: &[&str],
    file_name: &str,
) -> PathBuf {
    let example = workspace().join("examples/controlplane/environment.yaml");
    let yaml = std::fs::read_to_string(&example)
        .unwrap_or_else(|e| panic!("reading {}: {e}", example.display()));
    let mut yaml = keep_containers(&yaml, keep);
    yaml.push_str(extra);
    let data = bed.dir().join("controlplane");
    std::fs::create_dir_all(&data).unwrap();
    let swaps: Vec<(String, String)> = vec![
        (
            "/var/lib/dockstack-demo/controlplane".into(),
            data.display().to_string(),
        ),
        ("10.231.0.2".into(), bed.host(0).mgmt_ip().to_string()),
        ("10.231.0.6".into(), bed.host(1).mgmt_ip().to_string()),
        ("10.0.0.100".into(), bed.gateway().ip().to_string()),
        (
            "mask: 16".into(),
            format!("mask: {}", bed.gateway().prefix()),
        ),
        ("host1".into(), bed.host(0).name().to_string()),
        ("host2".into(), bed.host(1).name().to_string()),
    ];
    for (from, to) in &swaps {
        assert!(yaml.contains(from.as_str()), "the example has no {from}");
        yaml = yaml.replace(from.as_str(), to);
    }
    yaml = map_addresses(&yaml, bed);
    for name in keep.iter().chain(extra_names) {
        yaml = yaml.replace(name, &bed.container_name(name));
    }
    let path = bed.dir().join(file_name);
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// A copy of the environment file `env` in which, for each `(key, roll)`
/// of `rolls`, the first container environment that has `key` gains
/// `roll: "1"` before it: a change of every container sharing that
/// environment (an anchor), which `apply` makes by replacing them, the
/// members of one `service` one at a time. Written as the bed's
/// `controlplane-rolled.yaml`.
pub fn rolled_environment(bed: &TestBed, env: &Path, rolls: &[(&str, &str)]) -> PathBuf {
    let mut yaml = std::fs::read_to_string(env).unwrap();
    for (key, roll) in rolls {
        let changed = yaml.replacen(
            &format!("      {key}:"),
            &format!("      {roll}: \"1\"\n      {key}:"),
            1,
        );
        assert_ne!(yaml, changed, "the members' environment has no {key}");
        yaml = changed;
    }
    let path = bed.dir().join("controlplane-rolled.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// `container`'s output, as `docker logs` gives it (nothing when it is gone).
pub fn logs(container: &str) -> String {
    Command::new("docker")
        .args(["logs", container])
        .output()
        .map(|out| text(&out))
        .unwrap_or_default()
}

/// The last `n` lines of `log`.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last 40 lines of each container of `names`' output, printed.
pub fn dump_logs(names: &[String]) {
    for n in names {
        eprintln!("== docker logs {n}\n{}", tail(&logs(n), 40));
    }
}

/// `apply` of `env` on a bed where nothing of it exists yet, then `plan`,
/// which must show no change (the oneshots are not run again). Returns
/// the apply's time; when it fails, prints the output of `containers`.
pub fn apply_from_nothing(bed: &TestBed, env: &Path, containers: &[String]) -> Duration {
    let out = dockstack(bed, env, &["plan"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "plan before the first apply: {}",
        text(&out)
    );
    let started = Instant::now();
    let out = dockstack(bed, env, &["apply", "--yes"]);
    let took = started.elapsed();
    if !out.status.success() {
        dump_logs(containers);
        panic!("apply from nothing: {}", text(&out));
    }
    let out = dockstack(bed, env, &["plan"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after the apply from nothing: {}",
        text(&out)
    );
    took
}
