//! The control plane example end to end, with the real service images of
//! `scripts/images` (Debian's MariaDB, Galera, haproxy, keepalived): `apply`
//! from nothing brings up two load balancers holding a VIP, a bootstrapping
//! member and two joiners on two hosts; `plan` then shows no change, and the
//! cluster has three members read through the VIP from the other host; a
//! `destroy` shuts every member down cleanly (its grastate keeps a seqno).
//!
//! About 40 s once the images exist (`apply` from nothing ~36 s); building
//! them from nothing adds 2.5 to 3.5 minutes, once.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dockstack_tests::support::{dockstack, inspect, ok, text, wait_until};
use dockstack_tests::testbed::{BedOptions, TestBed, docker};

/// The example's addresses (last bytes in 10.0.0.0/16) that the test maps into the bed's subnet.
const ADDRESSES: [u8; 6] = [10, 11, 12, 21, 22, 23];
const VIP: u8 = 10;
const NAMES: [&str; 5] = ["lb1", "lb2", "galera1", "galera2", "galera3"];
const ROOT_PASSWORD: &str = "controlplane";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds tests/")
        .to_path_buf()
}

/// Builds (or finds up to date) the images the example runs.
fn build_images() {
    let script = workspace().join("scripts/images");
    let started = Instant::now();
    let out = Command::new(&script)
        .args(["haproxy", "mariadb"])
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

/// The example's environment with the bed's hosts, addresses, names and a
/// data directory of the bed's own.
fn bed_environment(bed: &TestBed) -> PathBuf {
    let example = workspace().join("examples/controlplane/environment.yaml");
    let mut yaml = std::fs::read_to_string(&example)
        .unwrap_or_else(|e| panic!("reading {}: {e}", example.display()));
    let data = bed.dir().join("controlplane");
    let mut swaps: Vec<(String, String)> = vec![
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
    for n in ADDRESSES {
        swaps.push((
            format!("10.0.0.{n}"),
            bed.subnet_ip(u32::from(n)).to_string(),
        ));
    }
    for name in NAMES {
        swaps.push((name.into(), bed.container_name(name)));
    }
    for (from, to) in &swaps {
        assert!(yaml.contains(from.as_str()), "the example has no {from}");
        yaml = yaml.replace(from.as_str(), to);
    }
    let path = bed.dir().join("controlplane.yaml");
    std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// `SHOW STATUS` variable `var` read through `host` from inside `container`.
fn status_through(container: &str, host: Ipv4Addr, var: &str) -> Result<String, String> {
    let query = format!("SHOW GLOBAL STATUS LIKE '{var}'");
    let host = host.to_string();
    let password = format!("-p{ROOT_PASSWORD}");
    docker(&[
        "exec",
        container,
        "mariadb",
        "-h",
        &host,
        "-uroot",
        &password,
        "--connect-timeout=3",
        "-N",
        "-B",
        "-e",
        &query,
    ])
    .map(|out| {
        out.split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    })
    .map_err(|e| format!("{e:#}"))
}

/// When each container started, in seconds after `since` (where apply's time went).
fn start_times(names: &[String], since: time::OffsetDateTime) -> String {
    names
        .iter()
        .map(|n| {
            let started = inspect(n, "{{.State.StartedAt}}");
            let at = time::OffsetDateTime::parse(
                &started,
                &time::format_description::well_known::Rfc3339,
            )
            .map(|t| format!("{:.1} s", (t - since).as_seconds_f64()))
            .unwrap_or(started);
            format!("{n} started at {at}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn controlplane_example_comes_up_with_galera_behind_the_vip() {
    build_images();
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let env = bed_environment(&bed);
    let name = |n: &str| bed.container_name(n);

    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    let started = Instant::now();
    let wall = time::OffsetDateTime::now_utc();
    let out = dockstack(&bed, &env, &["apply", "--yes"]);
    let apply_time = started.elapsed();
    if !out.status.success() {
        for n in NAMES {
            if let Ok(logs) = Command::new("docker")
                .args(["logs", "--tail", "40", &name(n)])
                .output()
            {
                eprintln!("== docker logs {}\n{}", name(n), text(&logs));
            }
        }
        panic!("apply from nothing: {}", text(&out));
    }
    let names: Vec<String> = NAMES.iter().map(|n| name(n)).collect();
    eprintln!(
        "apply from nothing: {:.1} s ({})",
        apply_time.as_secs_f64(),
        start_times(&names, wall)
    );

    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after apply: {}",
        text(&out)
    );

    // Only galera1 was made with its first-creation settings (galera2 and
    // galera3 merge its mapping, not those), and no member keeps the flag
    // in its own env.
    for (member, used) in [("galera1", "used"), ("galera2", ""), ("galera3", "")] {
        let label = inspect(
            &name(member),
            "{{index .Config.Labels \"dockstack.first-creation\"}}",
        );
        assert_eq!(label, used, "{member}");
        let bootstrap = inspect(&name(member), "{{range .Config.Env}}{{println .}}{{end}}")
            .lines()
            .any(|v| v == "GALERA_BOOTSTRAP=1");
        assert_eq!(bootstrap, member == "galera1", "{member}");
    }

    // galera2 runs on the other host than lb1, which holds the VIP.
    let vip = bed.subnet_ip(u32::from(VIP));
    let reader = name("galera2");
    let mut last = Err(String::new());
    let three = wait_until(Duration::from_secs(20), || {
        last = status_through(&reader, vip, "wsrep_cluster_size");
        last.as_deref() == Ok("3")
    });
    assert!(
        three,
        "wsrep_cluster_size through the VIP {vip} from {reader}: {last:?}"
    );
    ok(&bed, &env, &["destroy"]);
    // Every member was shut down, not killed: its datadir records the
    // position it stopped at (a killed one leaves seqno -1 and must recover).
    for member in ["galera1", "galera2", "galera3"] {
        // The bed's names stand in the paths too (see bed_environment).
        let datadir = bed.dir().join("controlplane").join(name(member));
        let state = datadir.join("grastate.dat");
        let text =
            std::fs::read_to_string(&state).unwrap_or_else(|e| panic!("{}: {e}", state.display()));
        let seqno = text
            .lines()
            .find_map(|l| l.strip_prefix("seqno:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{}: no seqno in\n{text}", state.display()));
        assert_ne!(seqno, "-1", "{member} was not shut down cleanly:\n{text}");
    }
    eprintln!("the whole test: {:.1} s", started.elapsed().as_secs_f64());
}
