//! The control plane example end to end, with the real service images of
//! `scripts/images` (Debian's MariaDB, Galera, haproxy, keepalived), under a
//! writer through the VIP from the other host the whole time:
//! - `apply` from nothing brings up two load balancers holding a VIP, a
//!   bootstrapping member and two joiners on two hosts; `plan` then shows no
//!   change; the cluster has three members read through the VIP;
//! - a rolling replacement of the three members by `apply` fails no write,
//!   loses no acknowledged row, keeps two members Synced at every moment,
//!   and each member shuts down cleanly, rejoins by IST and keeps its
//!   address and MAC;
//! - a load balancer's `stop` moves the VIP to the other and writes go on;
//! - a `docker restart` of a member and a SIGKILL of its mariadbd bring it
//!   back Synced with its address;
//! - `destroy` shuts every member down cleanly (its grastate keeps a seqno).
//!
//! It prints the figures (writes attempted and failed, the longest gap).
//! About 3 minutes once the images exist; building them from nothing adds
//! 2.5 to 3.5 minutes, once.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dockstack_tests::load::{self, LoadDir, now_ns};
use dockstack_tests::support::{
    docker_exec, dockstack, eth0_addresses, eth0_mac, inspect, ok, text, wait_until,
};
use dockstack_tests::testbed::{BedOptions, TestBed, docker};

/// The example's addresses (last bytes in 10.0.0.0/16) that the test maps
/// into the bed's subnet, the writer's (30) among them.
const ADDRESSES: [u8; 7] = [10, 11, 12, 21, 22, 23, 30];
const VIP: u8 = 10;
const MEMBERS: [&str; 3] = ["galera1", "galera2", "galera3"];
const NAMES: [&str; 6] = ["lb1", "lb2", "galera1", "galera2", "galera3", "writer"];

/// The writer: one INSERT per connection through the VIP every ~50 ms from
/// the host lb1 (holding the VIP) is not on, and a poller of each member.
const WRITER: &str = "
  writer:
    <<: *containerdefault
    image: dockstack/mariadb:latest
    host: *host2
    step: 4
    ip: 10.0.0.30
    init: true
    command: [/bin/bash, /load/run.sh]
    volumes:
    - /var/lib/dockstack-demo/controlplane/load:/load
    env:
      VIP: 10.0.0.10
      MEMBERS: 10.0.0.21 10.0.0.22 10.0.0.23
      DB_ROOT_PASSWORD: controlplane
";
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
    yaml.push_str(WRITER);
    let data = bed.dir().join("controlplane");
    let load = data.join("load");
    std::fs::create_dir_all(&load).unwrap();
    std::fs::write(load.join("run.sh"), load::WRITER_SCRIPT).unwrap();
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

/// A member's address and MAC, as its eth0 has them.
fn identity(container: &str) -> (Vec<String>, String) {
    (eth0_addresses(container), eth0_mac(container))
}

fn health(container: &str) -> String {
    docker(&["inspect", "--format", "{{.State.Health.Status}}", container])
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn logs(container: &str) -> String {
    Command::new("docker")
        .args(["logs", container])
        .output()
        .map(|out| text(&out))
        .unwrap_or_default()
}

/// The ids a member holds, read after every write it has seen applied.
fn ids_on(member: &str) -> std::collections::BTreeSet<u64> {
    docker_exec(
        member,
        &[
            "mariadb",
            "-uroot",
            "-N",
            "-B",
            "-e",
            "SET SESSION wsrep_sync_wait = 1; SELECT id FROM writer.writes",
        ],
    )
    .lines()
    .filter_map(|l| l.trim().parse().ok())
    .collect()
}

struct Cluster<'b> {
    bed: &'b TestBed,
    env: PathBuf,
    load: LoadDir,
    /// The members' addresses, as the pollers name their files.
    members: Vec<String>,
}

impl Cluster<'_> {
    fn name(&self, n: &str) -> String {
        self.bed.container_name(n)
    }

    /// The figures of the writes begun in `[from, to]`, printed under `what`.
    fn figures(&self, what: &str, from: u64, to: u64) -> load::WriteFigures {
        let f = load::write_figures(&self.load.writes(), from, to);
        eprintln!(
            "{what}: {:.1} s, {} writes attempted, {} failed, longest gap {} ms (from {:.1} s on)",
            (to - from) as f64 / 1e9,
            f.attempted,
            f.failed,
            f.longest_gap.as_millis(),
            (f.gap_from_ns.saturating_sub(from)) as f64 / 1e9
        );
        if f.failed > 0 {
            eprintln!("the writer's last errors:\n{}", self.load.errors());
        }
        f
    }

    fn wait_healthy(&self, member: &str, timeout: Duration) {
        let name = self.name(member);
        assert!(
            wait_until(timeout, || health(&name) == "healthy"),
            "{name} is {} after {timeout:?}:\n{}",
            health(&name),
            logs(&name)
        );
    }

    /// Rolling replacement of the three members by `apply`, under load.
    fn replace_members(&self) {
        let before: Vec<_> = MEMBERS.iter().map(|m| identity(&self.name(m))).collect();
        let ids: Vec<_> = MEMBERS
            .iter()
            .map(|m| inspect(&self.name(m), "{{.Id}}"))
            .collect();
        let yaml = std::fs::read_to_string(&self.env).unwrap();
        let changed = yaml.replacen(
            "      GALERA_PEERS:",
            "      GALERA_ROLL: \"1\"\n      GALERA_PEERS:",
            1,
        );
        assert_ne!(
            yaml, changed,
            "the members' environment has no GALERA_PEERS"
        );
        let env2 = self.bed.dir().join("controlplane-rolled.yaml");
        std::fs::write(&env2, changed).unwrap();
        let from = now_ns();
        let started = Instant::now();
        let out = dockstack(self.bed, &env2, &["apply", "--yes"]);
        let to = now_ns();
        assert!(out.status.success(), "rolling apply: {}", text(&out));
        eprintln!("rolling apply: {:.1} s", started.elapsed().as_secs_f64());
        for (m, id) in MEMBERS.iter().zip(&ids) {
            assert_ne!(
                &inspect(&self.name(m), "{{.Id}}"),
                id,
                "{m} was not replaced"
            );
        }
        let out = dockstack(self.bed, &env2, &["plan"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "plan after the rolling apply: {}",
            text(&out)
        );
        let f = self.figures("rolling replacement", from, to);
        for (m, before) in MEMBERS.iter().zip(&before) {
            let name = self.name(m);
            assert_eq!(&identity(&name), before, "{name}: address or MAC changed");
            let log = logs(&name);
            assert!(
                log.contains("clean datadir (seqno"),
                "{name}'s old container was not shut down cleanly:\n{log}"
            );
            assert!(
                log.contains("IST received"),
                "{name} did not rejoin by IST:\n{log}"
            );
        }
        let states = self.load.states(&self.members);
        let (fewest, at) = load::fewest_synced(&states, from, to, Duration::from_millis(1500));
        eprintln!("rolling replacement: at least {fewest} members Synced at every poll");
        assert!(
            fewest >= 2,
            "only {fewest} members Synced {:.1} s into the apply:\n{}\n{}",
            (at - from) as f64 / 1e9,
            load::samples_around(&states, at, Duration::from_secs(3)),
            text(&out)
        );
        assert_eq!(f.failed, 0, "writes failed during the rolling replacement");
    }

    /// A load balancer's `stop`: the VIP moves to the other, writes go on.
    fn stop_a_load_balancer(&self) {
        let from = now_ns();
        ok(self.bed, &self.env, &["-c", &self.name("lb1"), "stop"]);
        let stopped = now_ns();
        std::thread::sleep(Duration::from_secs(5));
        let f = self.figures("a load balancer's stop", from, now_ns());
        eprintln!(
            "a load balancer's stop: the stop took {} ms",
            (stopped - from) / 1_000_000
        );
        assert!(
            f.longest_gap < Duration::from_secs(3),
            "no write through the VIP for {:?} after lb1's stop",
            f.longest_gap
        );
        ok(self.bed, &self.env, &["-c", &self.name("lb1"), "start"]);
    }

    /// A `docker restart` and a SIGKILL of mariadbd: Synced again, same address.
    fn restart_and_crash(&self) {
        let name = self.name("galera3");
        let before = identity(&name);
        docker(&["restart", &name]).unwrap();
        self.wait_healthy("galera3", Duration::from_secs(120));
        assert_eq!(identity(&name), before, "{name} after docker restart");

        let restarts = inspect(&name, "{{.RestartCount}}");
        let top = docker(&["top", &name, "-eo", "pid,comm"]).unwrap();
        let pid = top
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("mariadbd"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no mariadbd in {name}:\n{top}"))
            .to_string();
        let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success());
        assert!(
            wait_until(Duration::from_secs(30), || {
                inspect(&name, "{{.RestartCount}}") != restarts
            }),
            "{name} was not restarted after its mariadbd was killed"
        );
        self.wait_healthy("galera3", Duration::from_secs(120));
        assert_eq!(
            identity(&name),
            before,
            "{name} after its mariadbd was killed"
        );
        let log = logs(&name);
        assert!(
            log.contains("unclean datadir"),
            "{name} did not recover its position:\n{log}"
        );
    }

    /// Every acknowledged write is on every member.
    fn nothing_lost(&self) {
        ok(self.bed, &self.env, &["-c", &self.name("writer"), "stop"]);
        let acked = load::acked_ids(&self.load.writes());
        assert!(!acked.is_empty(), "the writer wrote nothing");
        for m in MEMBERS {
            let held = ids_on(&self.name(m));
            let missing: Vec<_> = acked.difference(&held).take(10).collect();
            assert!(
                missing.is_empty(),
                "{m} lacks acknowledged writes {missing:?} (of {})",
                acked.len()
            );
        }
        eprintln!(
            "{} acknowledged writes, every one on all three members",
            acked.len()
        );
    }
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
            eprintln!("== docker logs {}\n{}", name(n), logs(&name(n)));
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

    let cluster = Cluster {
        bed: &bed,
        env: env.clone(),
        load: LoadDir(bed.dir().join("controlplane/load")),
        members: [21, 22, 23].map(|n| bed.subnet_ip(n).to_string()).to_vec(),
    };
    assert!(
        wait_until(Duration::from_secs(30), || cluster.load.ready()
            && load::acked_ids(&cluster.load.writes()).len() > 20),
        "the writer did not get going: {}",
        cluster.load.errors()
    );
    cluster.replace_members();
    cluster.stop_a_load_balancer();
    cluster.restart_and_crash();
    cluster.nothing_lost();

    ok(&bed, &env, &["destroy"]);
    // Every member was shut down, not killed: its datadir records the
    // position it stopped at (a killed one leaves seqno -1 and must recover).
    for member in MEMBERS {
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
