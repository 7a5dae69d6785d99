//! RabbitMQ and memcached of the control plane example on a two-host test
//! bed, with Galera and the load balancers: the RabbitMQ cluster behind the
//! VIP, a message across its members, and a power loss of every container
//! of the example from which Galera and RabbitMQ come back by themselves.
//! The steps `e2e_rabbitmq` runs, each asserting what it must show and
//! giving its figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::controlplane::logs;
use crate::example;
use crate::load::{self, LoadDir, WriteFigures, now_ns};
use crate::support::{dockstack, inspect, ok, text, wait_until};
use crate::testbed::{BedOptions, TestBed, docker};

const LBS: [&str; 2] = ["lb1", "lb2"];
const GALERAS: [&str; 3] = ["galera1", "galera2", "galera3"];
const RABBITS: [&str; 3] = ["rabbit1", "rabbit2", "rabbit3"];
const MEMCACHED: &str = "memcached1";
const VIP: u32 = 10;
/// The members' addresses' last bytes, as `RABBITS`.
const RABBIT_ADDRESSES: [u32; 3] = [31, 32, 33];
const AMQP: &str = "/usr/local/share/dockstack/amqp.py";
const PUBLISHER: &str = "publisher";

/// A client publishing a confirmed message through the VIP every 100 ms
/// from the host that lb1 (holding the VIP) is not on; one line a message
/// in its volume (see amqp.py).
const PUBLISHER_YAML: &str = "
  publisher:
    <<: *containerdefault
    image: dockstack/rabbitmq:latest
    host: *host2
    step: 6
    ip: 10.0.0.39
    init: true
    command: [python3, /usr/local/share/dockstack/amqp.py, load, 10.0.0.10, load, /load]
    volumes:
    - /var/lib/dockstack-demo/controlplane/publisher:/load
    env:
      AMQP_USER: openstack
      AMQP_PASSWORD: controlplane
";

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The Erlang cookie every member reads from its volume, made as an
/// operator would before the first apply.
fn make_cookie(data: &Path) {
    let dir = data.join("rabbitmq-cookie");
    std::fs::create_dir_all(&dir).unwrap();
    let mut bytes = [0u8; 20];
    let mut random = std::fs::File::open("/dev/urandom").unwrap();
    std::io::Read::read_exact(&mut random, &mut bytes).unwrap();
    let cookie: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dir.join("cookie"), cookie).unwrap();
}

/// The running nodes `container`'s member sees in its cluster.
fn running_nodes(container: &str) -> Result<Vec<String>, String> {
    let out = docker(&[
        "exec",
        container,
        "rabbitmqctl",
        "-q",
        "cluster_status",
        "--formatter",
        "json",
    ])
    .map_err(|e| format!("{e:#}"))?;
    let status: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| format!("cluster_status is not JSON ({e}): {out}"))?;
    let mut nodes: Vec<String> = status["running_nodes"]
        .as_array()
        .ok_or_else(|| format!("no running_nodes in {out}"))?
        .iter()
        .filter_map(|n| n.as_str().map(String::from))
        .collect();
    nodes.sort();
    Ok(nodes)
}

/// The example's AMQP client run inside `container` (with its AMQP_USER
/// and AMQP_PASSWORD): `publish HOST QUEUE BODY` or `get HOST QUEUE`.
fn amqp(container: &str, args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["exec", container, "python3", AMQP];
    argv.extend(args);
    docker(&argv)
        .map(|out| out.trim().to_string())
        .map_err(|e| format!("{e:#}"))
}

/// The member in `container` is Synced and ready (the image's healthcheck).
fn galera_synced(container: &str) -> bool {
    docker(&["exec", container, "/usr/local/bin/healthcheck"]).is_ok()
}

struct Example<'b> {
    bed: &'b TestBed,
    env: PathBuf,
    publishes: LoadDir,
}

impl Example<'_> {
    fn name(&self, n: &str) -> String {
        self.bed.container_name(n)
    }

    fn names(&self) -> Vec<String> {
        LBS.iter()
            .chain(&GALERAS)
            .chain(&RABBITS)
            .chain(&[MEMCACHED])
            .map(|n| self.name(n))
            .collect()
    }

    fn ip(&self, n: u32) -> String {
        self.bed.subnet_ip(n).to_string()
    }

    /// The three nodes, as each member names them.
    fn nodes(&self) -> Vec<String> {
        let mut nodes: Vec<String> = RABBITS
            .iter()
            .map(|r| format!("rabbit@{}", self.name(r)))
            .collect();
        nodes.sort();
        nodes
    }

    /// Every member sees the three nodes running.
    fn rabbit_formed(&self) -> Result<(), String> {
        let want = self.nodes();
        for r in RABBITS {
            let seen = running_nodes(&self.name(r))?;
            if seen != want {
                return Err(format!("{r} sees {seen:?} running"));
            }
        }
        Ok(())
    }

    /// Waits a minute at most until every member sees the three running.
    fn wait_rabbit_formed(&self, when: &str) {
        let mut last = Ok(());
        let formed = wait_until(Duration::from_secs(60), || {
            last = self.rabbit_formed();
            last.is_ok()
        });
        assert!(formed, "RabbitMQ's cluster {when}: {last:?}");
    }

    fn galera_formed(&self) -> bool {
        GALERAS.iter().all(|g| galera_synced(&self.name(g)))
    }

    fn dump_logs(&self) {
        for n in self.names() {
            eprintln!("== docker logs {n}\n{}", tail(&logs(&n), 40));
        }
    }

    /// A message published through the VIP is taken from another member's
    /// address, and one published at a member from a third.
    fn message_across_members(&self) {
        let vip = self.ip(VIP);
        let [r1, r2, r3] = RABBITS.map(|r| self.name(r));
        let [a1, a2, a3] = RABBIT_ADDRESSES.map(|n| self.ip(n));
        for (from, at, to, on, body) in [
            (&r2, &vip, &r3, &a3, "through the VIP"),
            (&r1, &a1, &r2, &a2, "at rabbit1"),
        ] {
            let published = amqp(from, &["publish", at, "e2e", body]);
            assert_eq!(
                published.as_deref(),
                Ok("published"),
                "publishing {body} from {from} at {at}"
            );
            let got = amqp(to, &["get", on, "e2e"]);
            assert_eq!(
                got.as_deref(),
                Ok(body),
                "the message published {body}, taken from {to} at {on}"
            );
        }
    }

    /// The drains recorded on `member`'s data volume (ns since the epoch).
    fn drains(&self, member: &str) -> Vec<u64> {
        let name = self.name(member);
        let file = self
            .bed
            .dir()
            .join("controlplane")
            .join(&name)
            .join("dockstack-drains");
        std::fs::read_to_string(file)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// `apply` replaces the three members one at a time (an env change)
    /// under the publisher; each is drained before its stop. Returns the
    /// environment file now in force and the figures.
    fn rolling_apply(&self) -> (PathBuf, Rolling) {
        let ids: Vec<String> = RABBITS
            .iter()
            .map(|r| inspect(&self.name(r), "{{.Id}}"))
            .collect();
        let env =
            example::rolled_environment(self.bed, &self.env, "RABBITMQ_PEERS", "RABBITMQ_ROLL");
        let from = now_ns();
        let started = Instant::now();
        let out = dockstack(self.bed, &env, &["apply", "--yes"]);
        let took = started.elapsed();
        let to = now_ns();
        if !out.status.success() {
            self.dump_logs();
            panic!("rolling apply: {}", text(&out));
        }
        for (r, id) in RABBITS.iter().zip(&ids) {
            assert_ne!(
                &inspect(&self.name(r), "{{.Id}}"),
                id,
                "{r} was not replaced"
            );
            assert!(
                self.drains(r).iter().any(|t| (from..=to).contains(t)),
                "{r} was not drained before its stop"
            );
        }
        let out = dockstack(self.bed, &env, &["plan"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "plan after the rolling apply: {}",
            text(&out)
        );
        self.wait_rabbit_formed("after the rolling apply");
        let publishes = load::write_figures(&self.publishes.writes(), from, to);
        if publishes.failed > 0 {
            eprintln!("the publisher's last errors:\n{}", self.publishes.errors());
        }
        (env, Rolling { took, publishes })
    }

    /// Every process of every container of the example SIGKILLed at once,
    /// as a power loss would; Docker's restart policies bring them back
    /// and nobody gives a command. Returns when Galera has its primary
    /// component of three Synced members again and every RabbitMQ member
    /// sees the three running.
    fn power_loss(&self) -> PowerLoss {
        let names = self.names();
        let restarts: Vec<String> = names
            .iter()
            .map(|n| inspect(n, "{{.RestartCount}}"))
            .collect();
        let mut pids = Vec::new();
        for n in &names {
            let top = docker(&["top", n, "-eo", "pid"]).unwrap_or_else(|e| panic!("{e:#}"));
            pids.extend(
                top.lines()
                    .skip(1)
                    .map(|l| l.trim().to_string())
                    .filter(|p| !p.is_empty()),
            );
        }
        let killed_at = Instant::now();
        let killed_ns = now_ns();
        let out = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .output()
            .unwrap();
        // A process that ended since `docker top` (a healthcheck's) is no
        // failure; that every container died is checked by its restart.
        assert!(
            out.status.success()
                || String::from_utf8_lossy(&out.stderr).contains("No such process"),
            "kill -KILL {pids:?}: {}",
            text(&out)
        );
        let mut galera_back = None;
        let mut rabbit_back = None;
        let mut last = String::new();
        let formed = wait_until(Duration::from_secs(300), || {
            if galera_back.is_none() && self.galera_formed() {
                galera_back = Some(killed_at.elapsed());
            }
            // One member's view while waiting (each CLI run is an Erlang
            // VM of its own); every member's is checked below.
            if rabbit_back.is_none() {
                match running_nodes(&self.name("rabbit1")) {
                    Ok(seen) if seen == self.nodes() => rabbit_back = Some(killed_at.elapsed()),
                    Ok(seen) => last = format!("rabbit1 sees {seen:?} running"),
                    Err(e) => last = e,
                }
            }
            galera_back.is_some() && rabbit_back.is_some()
        });
        if !formed {
            self.dump_logs();
            panic!(
                "after the power loss: Galera back {galera_back:?}, RabbitMQ back {rabbit_back:?} \
                 ({last})"
            );
        }
        self.wait_rabbit_formed("after the power loss");
        for (n, before) in names.iter().zip(&restarts) {
            assert_ne!(
                &inspect(n, "{{.RestartCount}}"),
                before,
                "{n} was not restarted after its processes were killed"
            );
        }
        let all_healthy = wait_until(Duration::from_secs(120), || {
            names.iter().all(|n| {
                inspect(n, "{{if .State.Health}}{{.State.Health.Status}}{{end}}") == "healthy"
            })
        });
        if !all_healthy {
            self.dump_logs();
            panic!("not every container is healthy again after the power loss");
        }
        let healthy = killed_at.elapsed();
        let publishes = load::write_figures(&self.publishes.writes(), killed_ns, now_ns());
        for g in GALERAS {
            let log = logs(&self.name(g));
            assert!(
                log.contains("unclean datadir"),
                "{g} did not recover its position after the kill:\n{}",
                tail(&log, 40)
            );
        }
        PowerLoss {
            processes: pids.len(),
            galera_back: galera_back.unwrap_or_default(),
            rabbit_back: rabbit_back.unwrap_or_default(),
            healthy,
            publishes,
        }
    }
}

/// The rolling apply's figures.
#[derive(Debug, Clone)]
pub struct Rolling {
    /// How long `apply` took.
    pub took: Duration,
    /// The publisher's messages through the VIP begun meanwhile.
    pub publishes: WriteFigures,
}

/// The power loss' figures, from the kill.
#[derive(Debug, Clone)]
pub struct PowerLoss {
    /// The processes killed at once.
    pub processes: usize,
    /// Galera's three members Synced again (pc.recovery).
    pub galera_back: Duration,
    /// Every RabbitMQ member sees the three running.
    pub rabbit_back: Duration,
    /// Every container of the example healthy by Docker's healthchecks.
    pub healthy: Duration,
    /// The publisher's messages through the VIP from the kill to then.
    pub publishes: WriteFigures,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub apply_from_nothing: Duration,
    pub rolling: Rolling,
    pub power_loss: PowerLoss,
    pub whole: Duration,
}

impl std::fmt::Display for Rolling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rolling apply of the three RabbitMQ members: {:.1} s, {} messages published through \
             the VIP, {} failed, longest gap {} ms",
            self.took.as_secs_f64(),
            self.publishes.attempted,
            self.publishes.failed,
            self.publishes.longest_gap.as_millis()
        )
    }
}

impl std::fmt::Display for PowerLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |d: Duration| d.as_secs_f64();
        write!(
            f,
            "power loss ({} processes SIGKILLed at once): Galera's three Synced after {:.1} s, \
             RabbitMQ's three running after {:.1} s, every container healthy after {:.1} s; \
             {} messages through the VIP meanwhile, {} failed, longest gap {:.1} s",
            self.processes,
            s(self.galera_back),
            s(self.rabbit_back),
            s(self.healthy),
            self.publishes.attempted,
            self.publishes.failed,
            s(self.publishes.longest_gap)
        )
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "apply from nothing (2 load balancers, 3 Galera, 3 RabbitMQ, memcached, the \
             publisher): {:.1} s",
            self.apply_from_nothing.as_secs_f64()
        )?;
        writeln!(f, "{}", self.power_loss)?;
        writeln!(f, "{}", self.rolling)?;
        write!(f, "{:.1} s in all", self.whole.as_secs_f64())
    }
}

/// Builds the images (when their recipes changed), brings the example's
/// load balancers, Galera, RabbitMQ and memcached up on a fresh two-host
/// bed, checks RabbitMQ's cluster and a message across its members, kills
/// every container's processes at once and waits for both clusters to form
/// again by themselves, and destroys it all.
pub fn run() -> Figures {
    example::build_images(&["haproxy", "mariadb", "rabbitmq", "memcached"]);
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let keep: Vec<&str> = LBS
        .iter()
        .chain(&GALERAS)
        .chain(&RABBITS)
        .chain(&[MEMCACHED])
        .copied()
        .collect();
    let env = example::bed_environment(
        &bed,
        &keep,
        PUBLISHER_YAML,
        &[PUBLISHER],
        "controlplane.yaml",
    );
    make_cookie(&bed.dir().join("controlplane"));
    let publishes = LoadDir(
        bed.dir()
            .join("controlplane")
            .join(bed.container_name(PUBLISHER)),
    );
    let mut ex = Example {
        bed: &bed,
        env,
        publishes,
    };

    let started = Instant::now();
    let out = dockstack(&bed, &ex.env, &["apply", "--yes"]);
    let apply_from_nothing = started.elapsed();
    if !out.status.success() {
        ex.dump_logs();
        panic!("apply from nothing: {}", text(&out));
    }
    let out = dockstack(&bed, &ex.env, &["plan"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "plan after apply: {}",
        text(&out)
    );
    // The last two joined when apply saw them healthy; each member's view
    // follows within a moment.
    ex.wait_rabbit_formed("after apply");
    ex.message_across_members();
    assert!(
        wait_until(Duration::from_secs(30), || {
            load::acked_ids(&ex.publishes.writes()).len() > 20
        }),
        "the publisher did not get going: {}",
        ex.publishes.errors()
    );
    // A message left in the queue across the power loss.
    let survivor = ex.name("rabbit2");
    let vip = ex.ip(VIP);
    assert_eq!(
        amqp(
            &survivor,
            &["publish", &vip, "e2e", "before the power loss"]
        )
        .as_deref(),
        Ok("published")
    );

    let power_loss = ex.power_loss();
    let got = amqp(&ex.name("rabbit3"), &["get", &vip, "e2e"]);
    assert_eq!(
        got.as_deref(),
        Ok("before the power loss"),
        "the durable message after the power loss"
    );
    eprintln!("{power_loss}");
    let (rolled, rolling) = ex.rolling_apply();
    ex.env = rolled;
    eprintln!("{rolling}");

    ok(&bed, &ex.env, &["destroy"]);
    Figures {
        apply_from_nothing,
        rolling,
        power_loss,
        whole: started.elapsed(),
    }
}
