//! The control plane example (`examples/controlplane/`) on a two-host test
//! bed, with the real service images of `scripts/images`, under a writer
//! through the VIP: the steps the end-to-end test and `bench-controlplane`
//! share, each asserting what it must show and giving its figures.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::example::{self, logs};
use crate::load::{self, LoadDir, WriteFigures, now_ns};
use crate::support::{
    docker_exec, dockstack, eth0_addresses, eth0_mac, inspect, ok, text, wait_until,
};
use crate::testbed::{BedOptions, TestBed, docker};

const VIP: u8 = 10;
const MEMBERS: [&str; 3] = ["galera1", "galera2", "galera3"];
const NAMES: [&str; 6] = ["lb1", "lb2", "galera1", "galera2", "galera3", "writer"];

/// The writer: one INSERT per connection through the VIP every ~50 ms from
/// the host lb1 (holding the VIP) is not on, and a poller of each member;
/// its files are in [`writer_load`]'s directory.
pub(crate) const WRITER: &str = "
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

/// The writer's directory (its script, and what it records), made ready
/// before the writer of [`WRITER`] runs.
pub(crate) fn writer_load(bed: &TestBed) -> LoadDir {
    let load = bed.dir().join("controlplane/load");
    std::fs::create_dir_all(&load).unwrap();
    std::fs::write(load.join("run.sh"), load::WRITER_SCRIPT).unwrap();
    LoadDir(load)
}

/// The example's database tier and the writer, with the bed's hosts,
/// addresses and names.
fn bed_environment(bed: &TestBed) -> PathBuf {
    writer_load(bed);
    example::bed_environment(bed, &NAMES[..5], WRITER, &["writer"], "controlplane.yaml")
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
pub(crate) fn start_times(names: &[String], since: time::OffsetDateTime) -> String {
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

/// Every write `load`'s writer had acknowledged is on each Galera member of
/// `members` (container names); returns how many. The acknowledgements are
/// read first: a write acknowledged later may or may not be there yet.
pub(crate) fn nothing_lost(load: &LoadDir, members: &[String]) -> usize {
    let acked = load::acked_ids(&load.writes());
    assert!(!acked.is_empty(), "the writer wrote nothing");
    for m in members {
        let held = ids_on(m);
        let missing: Vec<_> = acked.difference(&held).take(10).collect();
        assert!(
            missing.is_empty(),
            "{m} lacks acknowledged writes {missing:?} (of {})",
            acked.len()
        );
    }
    acked.len()
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
    fn figures(&self, what: &str, from: u64, to: u64) -> WriteFigures {
        let f = load::write_figures(&self.load.writes(), from, to);
        if f.failed > 0 {
            let at: Vec<String> = self
                .load
                .writes()
                .iter()
                .filter(|w| !w.acked && (from..=to).contains(&w.start_ns))
                .map(|w| format!("{:.2} s", (w.start_ns - from) as f64 / 1e9))
                .collect();
            eprintln!(
                "{what}: failed writes began at {}; the writer's last errors:\n{}\nthe load balancers:",
                at.join(", "),
                self.load.errors()
            );
            for lb in ["lb1", "lb2"] {
                let log = logs(&self.name(lb));
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "== {lb}\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            }
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
    fn replace_members(&self) -> Rolling {
        let before: Vec<_> = MEMBERS.iter().map(|m| identity(&self.name(m))).collect();
        let ids: Vec<_> = MEMBERS
            .iter()
            .map(|m| inspect(&self.name(m), "{{.Id}}"))
            .collect();
        let env2 =
            example::rolled_environment(self.bed, &self.env, &[("GALERA_PEERS", "GALERA_ROLL")]);
        let from = now_ns();
        let started = Instant::now();
        let out = dockstack(self.bed, &env2, &["apply", "--yes"]);
        let took = started.elapsed();
        let to = now_ns();
        assert!(out.status.success(), "rolling apply: {}", text(&out));
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
        // A joiner's IST donor is Donor/Desynced until the transfer is
        // handed over (MariaDB runs its SST script in bypass mode even for
        // IST), then Joined while it applies what it queued meanwhile; it
        // takes queries all along (wsrep_ready): it counts as serving, not
        // Synced.
        let states = self.load.states(&self.members);
        let stale = Duration::from_millis(1500);
        let synced = load::timeline(&states, from, to, stale, |s| s == "Synced");
        let serving = load::timeline(&states, from, to, stale, |s| {
            s == "Synced" || s == "Donor/Desynced" || s == "Joined"
        });
        let (fewest_synced, _) = load::fewest(&synced);
        let (fewest_serving, at) = load::fewest(&serving);
        assert!(
            fewest_serving >= 2 && fewest_synced >= 1,
            "only {fewest_serving} members serving {:.1} s into the apply:\n{}\n{}",
            (at - from) as f64 / 1e9,
            load::samples_around(&states, at, Duration::from_secs(3)),
            text(&out)
        );
        assert_eq!(f.failed, 0, "writes failed during the rolling replacement");
        Rolling {
            took,
            gap_at: Duration::from_nanos(f.gap_from_ns.saturating_sub(from)),
            writes: f,
            fewest_synced,
            below_two_synced: load::longest_below(&synced, 2),
        }
    }

    /// A load balancer's `stop`: the VIP moves to the other, writes go on.
    fn stop_a_load_balancer(&self) -> WriteFigures {
        let from = now_ns();
        ok(self.bed, &self.env, &["-c", &self.name("lb1"), "stop"]);
        std::thread::sleep(Duration::from_secs(5));
        let f = self.figures("a load balancer's stop", from, now_ns());
        assert!(
            f.longest_gap < Duration::from_secs(3),
            "no write through the VIP for {:?} after lb1's stop",
            f.longest_gap
        );
        ok(self.bed, &self.env, &["-c", &self.name("lb1"), "start"]);
        f
    }

    /// A `docker restart` and a SIGKILL of mariadbd: Synced again, same address.
    fn restart_and_crash(&self) -> (Duration, Duration) {
        let name = self.name("galera3");
        let before = identity(&name);
        let began = Instant::now();
        docker(&["restart", &name]).unwrap();
        self.wait_healthy("galera3", Duration::from_secs(120));
        let restart = began.elapsed();
        assert_eq!(identity(&name), before, "{name} after docker restart");

        let restarts = inspect(&name, "{{.RestartCount}}");
        let top = docker(&["top", &name, "-eo", "pid,comm"]).unwrap();
        let pid = top
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some("mariadbd"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or_else(|| panic!("no mariadbd in {name}:\n{top}"))
            .to_string();
        let began = Instant::now();
        let killed = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        assert!(killed.success());
        assert!(
            wait_until(Duration::from_secs(30), || {
                inspect(&name, "{{.RestartCount}}") != restarts
            }),
            "{name} was not restarted after its mariadbd was killed"
        );
        self.wait_healthy("galera3", Duration::from_secs(120));
        let crash = began.elapsed();
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
        (restart, crash)
    }

    /// Every acknowledged write is on every member.
    fn nothing_lost(&self) -> usize {
        ok(self.bed, &self.env, &["-c", &self.name("writer"), "stop"]);
        nothing_lost(&self.load, &MEMBERS.map(|m| self.name(m)))
    }
}

/// The rolling replacement's figures.
#[derive(Debug, Clone)]
pub struct Rolling {
    /// How long `apply` took.
    pub took: Duration,
    pub writes: WriteFigures,
    /// When the longest gap between writes began, from the apply's start.
    pub gap_at: Duration,
    /// The fewest members Synced at any poll.
    pub fewest_synced: usize,
    /// The longest stretch with fewer than two Synced (an IST donor).
    pub below_two_synced: Duration,
}

/// What one run of the example measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub apply_from_nothing: Duration,
    /// When each container started, from the apply's start.
    pub started_at: String,
    pub rolling: Rolling,
    /// Writes through the VIP while a load balancer stops.
    pub lb_stop: WriteFigures,
    /// From a `docker restart` of a member to its being healthy.
    pub restart: Duration,
    /// From a SIGKILL of a member's mariadbd to its being healthy.
    pub crash: Duration,
    /// Writes acknowledged in all, each found on all three members.
    pub acked: usize,
    pub whole: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: Duration| d.as_millis();
        let r = &self.rolling;
        writeln!(
            f,
            "apply from nothing: {:.1} s ({})",
            self.apply_from_nothing.as_secs_f64(),
            self.started_at
        )?;
        writeln!(
            f,
            "rolling replacement: {:.1} s, {} writes attempted, {} failed, longest gap {} ms \
             (at {:.1} s); at least {} Synced at every poll, fewer than two for at most {} ms \
             (an IST donor)",
            r.took.as_secs_f64(),
            r.writes.attempted,
            r.writes.failed,
            ms(r.writes.longest_gap),
            r.gap_at.as_secs_f64(),
            r.fewest_synced,
            ms(r.below_two_synced)
        )?;
        writeln!(
            f,
            "a load balancer's stop: {} writes attempted, {} failed, longest gap {} ms",
            self.lb_stop.attempted,
            self.lb_stop.failed,
            ms(self.lb_stop.longest_gap)
        )?;
        writeln!(
            f,
            "healthy again: {:.1} s after a docker restart, {:.1} s after a SIGKILL of mariadbd",
            self.restart.as_secs_f64(),
            self.crash.as_secs_f64()
        )?;
        write!(
            f,
            "{} writes acknowledged, every one on all three members; {:.1} s in all",
            self.acked,
            self.whole.as_secs_f64()
        )
    }
}

/// Builds the images (when their recipes changed), brings the example up on
/// a fresh two-host bed with the writer, replaces the members under load,
/// stops a load balancer, restarts and crashes a member, checks that no
/// acknowledged write is lost and destroys it all; panics on whatever it
/// must show and does not.
pub fn run() -> Figures {
    example::build_images(&["haproxy", "mariadb"]);
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let env = bed_environment(&bed);
    let name = |n: &str| bed.container_name(n);

    let names: Vec<String> = NAMES.iter().map(|n| name(n)).collect();
    let started = Instant::now();
    let wall = time::OffsetDateTime::now_utc();
    let apply_time = example::apply_from_nothing(&bed, &env, &names);
    let started_at = start_times(&names, wall);

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
    let rolling = cluster.replace_members();
    let lb_stop = cluster.stop_a_load_balancer();
    let (restart, crash) = cluster.restart_and_crash();
    let acked = cluster.nothing_lost();

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
    Figures {
        apply_from_nothing: apply_time,
        started_at,
        rolling,
        lb_stop,
        restart,
        crash,
        acked,
        whole: started.elapsed(),
    }
}
