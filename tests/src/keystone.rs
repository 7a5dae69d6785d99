//! keystone of the control plane example on a two-host test bed, with the
//! load balancers, Galera and memcached it needs: its oneshots (database,
//! keys, bootstrap), a token through the VIP validated by each member, a
//! rolling apply of both members under a client issuing a token every
//! 100 ms, and a power loss of every container after which a token is
//! issued again with no command from anyone. The steps `e2e_keystone`
//! runs, each asserting what it must show and giving its figures.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::controlplane::logs;
use crate::example;
use crate::load::{self, LoadDir, WriteFigures, now_ns};
use crate::support::{dockstack, inspect, ok, text, wait_until};
use crate::testbed::{BedOptions, SANDBOX_SUFFIX, TestBed, docker};

const LBS: [&str; 2] = ["lb1", "lb2"];
const GALERAS: [&str; 3] = ["galera1", "galera2", "galera3"];
const MEMCACHED: &str = "memcached1";
const ONESHOTS: [&str; 3] = ["keystone-db", "keystone-keys", "keystone-bootstrap"];
const MEMBERS: [&str; 2] = ["keystone1", "keystone2"];
/// The members' addresses' last bytes, as `MEMBERS`.
const MEMBER_ADDRESSES: [u32; 2] = [51, 52];
const VIP: u32 = 10;
const TOKENS: &str = "/usr/local/share/dockstack/tokens.py";
const CLIENT: &str = "keystone-client";

/// A client issuing a token through the VIP every 100 ms from the host
/// that lb1 (holding the VIP) is not on; one line a request in its volume
/// (see tokens.py).
const CLIENT_YAML: &str = "
  keystone-client:
    <<: *containerdefault
    image: dockstack/keystone:latest
    host: *host2
    step: 9
    ip: 10.0.0.59
    init: true
    command: [python3, /usr/local/share/dockstack/tokens.py, load, http://10.0.0.10:5000/v3, /load]
    volumes:
    - /var/lib/dockstack-demo/controlplane/keystone-client:/load
    env:
      KEYSTONE_ADMIN_PASSWORD: controlplane
";

fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The example's keystone client run inside `container`.
fn tokens(container: &str, args: &[&str]) -> Result<String, String> {
    let mut argv = vec!["exec", container, "python3", TOKENS];
    argv.extend(args);
    docker(&argv)
        .map(|out| out.trim().to_string())
        .map_err(|e| format!("{e:#}"))
}

struct Example<'b> {
    bed: &'b TestBed,
    env: PathBuf,
    load: LoadDir,
}

impl Example<'_> {
    fn name(&self, n: &str) -> String {
        self.bed.container_name(n)
    }

    /// The containers that run (not the oneshots).
    fn running(&self) -> Vec<String> {
        LBS.iter()
            .chain(&GALERAS)
            .chain(&[MEMCACHED])
            .chain(&MEMBERS)
            .chain(&[CLIENT])
            .map(|n| self.name(n))
            .collect()
    }

    fn url(&self, n: u32) -> String {
        format!("http://{}:5000/v3", self.bed.subnet_ip(n))
    }

    fn dump_logs(&self) {
        for n in self.running().iter().chain(&ONESHOTS.map(|o| self.name(o))) {
            eprintln!("== docker logs {n}\n{}", tail(&logs(n), 40));
        }
    }

    /// A token through the VIP, within `within` (the first login of a
    /// member loads much of keystone: seconds on a loaded machine).
    fn token_through_vip(&self, within: Duration) -> Result<String, String> {
        let client = self.name(CLIENT);
        let url = self.url(VIP);
        let mut last = Err(String::new());
        wait_until(within, || {
            last = tokens(&client, &["issue", &url]);
            last.is_ok()
        });
        last
    }

    /// A token issued through the VIP is valid at each member (they share
    /// the fernet keys).
    fn token_everywhere(&self) -> Duration {
        let started = Instant::now();
        let token = self
            .token_through_vip(Duration::from_secs(180))
            .unwrap_or_else(|e| {
                self.dump_logs();
                panic!("no token through the VIP: {e}")
            });
        let first = started.elapsed();
        let client = self.name(CLIENT);
        for (m, n) in MEMBERS.iter().zip(MEMBER_ADDRESSES) {
            let url = self.url(n);
            let mut last = Err(String::new());
            let valid = wait_until(Duration::from_secs(120), || {
                last = tokens(&client, &["validate", &url, &token]);
                last.is_ok()
            });
            assert!(
                valid,
                "the token issued through the VIP, validated at {m} ({url}): {last:?}"
            );
            assert_eq!(last.as_deref(), Ok("admin"), "the token's user at {m}");
        }
        first
    }

    /// `apply` replaces both members one at a time (an env change) under
    /// the client. Returns the environment file now in force and the figures.
    fn rolling_apply(&self) -> (PathBuf, Rolling) {
        let ids: Vec<String> = MEMBERS
            .iter()
            .map(|m| inspect(&self.name(m), "{{.Id}}"))
            .collect();
        let env =
            example::rolled_environment(self.bed, &self.env, "MEMCACHED_SERVERS", "KEYSTONE_ROLL");
        let from = now_ns();
        let started = Instant::now();
        let out = dockstack(self.bed, &env, &["apply", "--yes"]);
        let took = started.elapsed();
        let to = now_ns();
        if !out.status.success() {
            self.dump_logs();
            panic!("rolling apply: {}", text(&out));
        }
        for (m, id) in MEMBERS.iter().zip(&ids) {
            assert_ne!(
                &inspect(&self.name(m), "{{.Id}}"),
                id,
                "{m} was not replaced"
            );
        }
        let out = dockstack(self.bed, &env, &["plan"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "plan after the rolling apply: {}",
            text(&out)
        );
        let tokens = load::write_figures(&self.load.writes(), from, to);
        (env, Rolling { took, tokens })
    }

    /// Every process of every running container and of its sandbox
    /// SIGKILLed at once, as a power loss would; Docker's restart policies
    /// bring them back, the servers plug the sandboxes again, and nobody
    /// gives a command. Returns when a token is issued through the VIP again.
    pub fn power_loss(&self) -> PowerLoss {
        let names: Vec<String> = self
            .running()
            .into_iter()
            .flat_map(|n| [format!("{n}{SANDBOX_SUFFIX}"), n])
            .collect();
        // A container whose sandbox died is started again by its server
        // (after the sandbox), not by Docker's restart policy: its start
        // time says it ran again, its restart count may not.
        let starts: Vec<String> = names
            .iter()
            .map(|n| inspect(n, "{{.State.StartedAt}}"))
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
        // The client is killed too: the first token is asked for from the
        // test, through its container once it runs again.
        let token = self
            .token_through_vip(Duration::from_secs(300))
            .unwrap_or_else(|e| {
                self.dump_logs();
                panic!("no token through the VIP after the power loss: {e}")
            });
        let first_token = killed_at.elapsed();
        assert!(!token.is_empty());
        let all_healthy = wait_until(Duration::from_secs(300), || {
            names.iter().all(|n| {
                let health = inspect(n, "{{if .State.Health}}{{.State.Health.Status}}{{end}}");
                health.is_empty() || health == "healthy"
            })
        });
        if !all_healthy {
            self.dump_logs();
            panic!("not every container is healthy again after the power loss");
        }
        for (n, before) in names.iter().zip(&starts) {
            assert_ne!(
                &inspect(n, "{{.State.StartedAt}}"),
                before,
                "{n} did not start again after its processes were killed"
            );
        }
        PowerLoss {
            processes: pids.len(),
            first_token,
            healthy: killed_at.elapsed(),
        }
    }
}

/// The rolling apply's figures.
#[derive(Debug, Clone)]
pub struct Rolling {
    /// How long `apply` took.
    pub took: Duration,
    /// The client's tokens through the VIP asked for meanwhile.
    pub tokens: WriteFigures,
}

/// The power loss' figures, from the kill.
#[derive(Debug, Clone)]
pub struct PowerLoss {
    /// The processes killed at once (the containers' and their sandboxes').
    pub processes: usize,
    /// The first token issued through the VIP.
    pub first_token: Duration,
    /// Every container of the example healthy by Docker's healthchecks.
    pub healthy: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub apply_from_nothing: Duration,
    /// From the end of that apply to the first token through the VIP.
    pub first_token: Duration,
    pub rolling: Rolling,
    pub power_loss: Option<PowerLoss>,
    pub whole: Duration,
}

impl std::fmt::Display for Rolling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rolling apply of the two keystone members: {:.1} s, {} tokens asked for through \
             the VIP, {} failed, longest gap {} ms",
            self.took.as_secs_f64(),
            self.tokens.attempted,
            self.tokens.failed,
            self.tokens.longest_gap.as_millis()
        )
    }
}

impl std::fmt::Display for PowerLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "power loss ({} processes of the containers and their sandboxes SIGKILLed at once): the first token through the VIP after \
             {:.1} s, every container healthy after {:.1} s",
            self.processes,
            self.first_token.as_secs_f64(),
            self.healthy.as_secs_f64()
        )
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "apply from nothing (2 load balancers, 3 Galera, memcached, 3 keystone oneshots, 2 \
             keystone members, the client): {:.1} s; the first token through the VIP {:.1} s later",
            self.apply_from_nothing.as_secs_f64(),
            self.first_token.as_secs_f64()
        )?;
        writeln!(f, "{}", self.rolling)?;
        if let Some(p) = &self.power_loss {
            writeln!(f, "{p}")?;
        }
        write!(f, "{:.1} s in all", self.whole.as_secs_f64())
    }
}

/// Builds the images (when their recipes changed), brings the example's
/// load balancers, Galera, memcached and keystone up on a fresh two-host
/// bed, issues a token through the VIP and validates it at each member,
/// replaces both members under the client (0 failed), with `power_loss`
/// kills every container at once and waits for a token through the VIP
/// again, and destroys it all.
pub fn run(power_loss: bool) -> Figures {
    example::build_images(&["haproxy", "mariadb", "memcached", "keystone"]);
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let keep: Vec<&str> = LBS
        .iter()
        .chain(&GALERAS)
        .chain(&[MEMCACHED])
        .chain(&ONESHOTS)
        .chain(&MEMBERS)
        .copied()
        .collect();
    let env = example::bed_environment(&bed, &keep, CLIENT_YAML, &[CLIENT], "controlplane.yaml");
    let load = LoadDir(
        bed.dir()
            .join("controlplane")
            .join(bed.container_name(CLIENT)),
    );
    let mut ex = Example {
        bed: &bed,
        env,
        load,
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
        "plan after apply (the oneshots are not run again): {}",
        text(&out)
    );
    let first_token = ex.token_everywhere();
    eprintln!(
        "apply from nothing {:.1} s, the first token {:.1} s later",
        apply_from_nothing.as_secs_f64(),
        first_token.as_secs_f64()
    );
    let got_going = wait_until(Duration::from_secs(120), || {
        load::acked_ids(&ex.load.writes()).len() > 20
    });
    assert!(
        got_going,
        "the client did not get going: {}",
        ex.load.errors()
    );

    let (rolled, rolling) = ex.rolling_apply();
    ex.env = rolled;
    eprintln!("{rolling}");
    if rolling.tokens.failed > 0 {
        eprintln!("the client's last errors:\n{}", ex.load.errors());
        ex.dump_logs();
    }
    assert_eq!(
        rolling.tokens.failed, 0,
        "tokens failed during the rolling apply: {rolling}"
    );
    // The oneshots ran once: none was made again by the second apply.
    for o in ONESHOTS {
        assert_eq!(
            inspect(&ex.name(o), "{{.State.Status}}"),
            "exited",
            "oneshot {o}"
        );
    }

    let power_loss = power_loss.then(|| {
        let p = ex.power_loss();
        eprintln!("{p}");
        p
    });

    ok(&bed, &ex.env, &["destroy"]);
    Figures {
        apply_from_nothing,
        first_token,
        rolling,
        power_loss,
        whole: started.elapsed(),
    }
}
