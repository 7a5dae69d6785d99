//! The whole control plane example (`examples/controlplane/`: two load
//! balancers holding the VIP, three Galera members, three RabbitMQ members,
//! memcached, keystone's oneshots and two members) on a two-host test bed,
//! under three clients through the VIP from the host the VIP is not on: the
//! Galera writer (one INSERT per connection every ~50 ms), a client issuing
//! a keystone token every ~100 ms and a publisher of a confirmed AMQP
//! message every ~100 ms. The steps `e2e_controlplane_whole` and
//! `bench-controlplane whole` run, each asserting what it must show and
//! giving its figures.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::controlplane::{self, start_times};
use crate::example::{self, dump_logs, logs, tail};
use crate::keystone::{self, Keystone};
use crate::load::{self, LoadDir, Write, WriteFigures, now_ns};
use crate::rabbitmq::{self, Rabbits};
use crate::support::{dockstack, inspect, ok, text, wait_until};
use crate::testbed::{BedOptions, SANDBOX_SUFFIX, TestBed, docker};

const LBS: [&str; 2] = ["lb1", "lb2"];
const GALERAS: [&str; 3] = ["galera1", "galera2", "galera3"];
const MEMCACHED: &str = "memcached1";
const WRITER: &str = "writer";
/// The Galera members' environment key (an anchor they share) and the one
/// a rolling change adds before it.
const GALERA_ROLL: (&str, &str) = ("GALERA_PEERS", "GALERA_ROLL");
/// How long the clusters may take to come back after the power loss: a
/// RabbitMQ member boots in 10 to 20 s on an idle machine, minutes on a
/// loaded one.
const COMEBACK: Duration = Duration::from_secs(480);

/// The members of the services a rolling apply replaces, in the order of
/// their steps.
fn members() -> impl Iterator<Item = &'static str> {
    GALERAS
        .into_iter()
        .chain(rabbitmq::MEMBERS)
        .chain(keystone::MEMBERS)
}

/// The example's containers that run (not the oneshots).
fn running() -> impl Iterator<Item = &'static str> {
    LBS.into_iter()
        .chain(GALERAS)
        .chain(rabbitmq::MEMBERS)
        .chain([MEMCACHED])
        .chain(keystone::MEMBERS)
}

/// The member in `container` is Synced and ready (the image's healthcheck).
fn galera_synced(container: &str) -> bool {
    docker(&["exec", container, "/usr/local/bin/healthcheck"]).is_ok()
}

/// When the first write of `writes` begun after `since_ns` was
/// acknowledged, from `since_ns`.
fn first_acked_after(writes: &[Write], since_ns: u64) -> Option<Duration> {
    writes
        .iter()
        .filter(|w| w.acked && w.start_ns >= since_ns)
        .map(|w| Duration::from_nanos(w.end_ns - since_ns))
        .min()
}

struct Example<'b> {
    bed: &'b TestBed,
    env: PathBuf,
    writes: LoadDir,
    tokens: LoadDir,
    publishes: LoadDir,
    rabbits: Rabbits<'b>,
    keystone: Keystone<'b>,
}

impl Example<'_> {
    fn name(&self, n: &str) -> String {
        self.bed.container_name(n)
    }

    fn galeras(&self) -> Vec<String> {
        GALERAS.map(|g| self.name(g)).to_vec()
    }

    /// Every container of the bed's file, for their logs.
    fn all(&self) -> Vec<String> {
        running()
            .chain(keystone::ONESHOTS)
            .chain([WRITER, rabbitmq::PUBLISHER, keystone::CLIENT])
            .map(|n| self.name(n))
            .collect()
    }

    fn dump_logs(&self) {
        dump_logs(&self.all());
        eprintln!(
            "== the writer's last errors\n{}\n== the token client's\n{}\n== the publisher's\n{}",
            self.writes.errors(),
            self.tokens.errors(),
            self.publishes.errors()
        );
    }

    /// The three clients' figures for what they began in `[from, to]`.
    fn clients(&self, from: u64, to: u64) -> Clients {
        Clients {
            from_ns: from,
            writes: load::write_figures(&self.writes.writes(), from, to),
            tokens: load::write_figures(&self.tokens.writes(), from, to),
            publishes: load::write_figures(&self.publishes.writes(), from, to),
        }
    }

    /// One `apply` of one environment change of the Galera, RabbitMQ and
    /// keystone members (their shared environments), which replaces them
    /// one service at a time (their steps' order), each member healthy
    /// before the next, under the three clients. Returns the environment
    /// file now in force and the figures.
    fn rolling_apply(&self) -> (PathBuf, Rolling) {
        let ids: Vec<String> = members()
            .map(|m| inspect(&self.name(m), "{{.Id}}"))
            .collect();
        let env = example::rolled_environment(
            self.bed,
            &self.env,
            &[GALERA_ROLL, rabbitmq::ROLL, keystone::ROLL],
        );
        let wall = time::OffsetDateTime::now_utc();
        let from = now_ns();
        let started = Instant::now();
        let out = dockstack(self.bed, &env, &["apply", "--yes"]);
        let took = started.elapsed();
        let to = now_ns();
        if !out.status.success() {
            self.dump_logs();
            panic!("rolling apply: {}", text(&out));
        }
        for (m, id) in members().zip(&ids) {
            assert_ne!(
                &inspect(&self.name(m), "{{.Id}}"),
                id,
                "{m} was not replaced"
            );
        }
        // Maintenance mode first: its clients were closed and reconnected
        // to another member before the broker stopped.
        for r in rabbitmq::MEMBERS {
            assert!(
                self.rabbits
                    .drains(r)
                    .iter()
                    .any(|t| (from..=to).contains(t)),
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
        // The oneshots ran once: none was made again by the second apply.
        for o in keystone::ONESHOTS {
            assert_eq!(
                inspect(&self.name(o), "{{.State.Status}}"),
                "exited",
                "oneshot {o}"
            );
        }
        self.rabbits.wait_formed("after the rolling apply");
        let clients = self.clients(from, to);
        let new: Vec<String> = members().map(|m| self.name(m)).collect();
        let rolling = Rolling {
            took,
            started_at: start_times(&new, wall),
            clients,
            acked: controlplane::nothing_lost(&self.writes, &self.galeras()),
        };
        eprintln!("{rolling}");
        if rolling.clients.writes.failed + rolling.clients.tokens.failed > 0 {
            self.dump_logs();
        }
        assert_eq!(
            rolling.clients.tokens.failed, 0,
            "tokens failed during the rolling apply"
        );
        assert_eq!(
            rolling.clients.writes.failed, 0,
            "writes failed during the rolling apply"
        );
        (env, rolling)
    }

    /// Every process of every running container of the example and of its
    /// sandbox SIGKILLed at once, as a power loss would; Docker's restart
    /// policies bring them back, the servers plug the sandboxes again, and
    /// nobody gives a command. The clients (the test's, not the example's)
    /// go on. Returns when every container is healthy again.
    fn power_loss(&self) -> PowerLoss {
        let names: Vec<String> = running()
            .map(|n| self.name(n))
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
        let killed_ns = now_ns();
        let out = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .output()
            .unwrap();
        // A process that ended since `docker top` (a healthcheck's) is no
        // failure; that every container died is checked by its start time.
        assert!(
            out.status.success()
                || String::from_utf8_lossy(&out.stderr).contains("No such process"),
            "kill -KILL {pids:?}: {}",
            text(&out)
        );
        // Each cluster watched on its own: a RabbitMQ CLI run takes seconds.
        let galeras = self.galeras();
        let (galera_back, rabbit_back) = std::thread::scope(|s| {
            let galera = s.spawn(|| {
                wait_until(COMEBACK, || galeras.iter().all(|g| galera_synced(g)))
                    .then(|| killed_at.elapsed())
            });
            let rabbit = s.spawn(|| {
                wait_until(COMEBACK, || self.rabbits.formed_at_rabbit1().is_ok())
                    .then(|| killed_at.elapsed())
            });
            (galera.join().unwrap(), rabbit.join().unwrap())
        });
        let mut first_token = None;
        wait_until(COMEBACK.saturating_sub(killed_at.elapsed()), || {
            first_token = first_acked_after(&self.tokens.writes(), killed_ns);
            first_token.is_some()
        });
        let (Some(galera_back), Some(rabbit_back), Some(first_token)) =
            (galera_back, rabbit_back, first_token)
        else {
            self.dump_logs();
            panic!(
                "{COMEBACK:?} after the power loss: Galera's three Synced after \
                 {galera_back:?}, RabbitMQ's three running after {rabbit_back:?}, the first \
                 token through the VIP after {first_token:?} (None: not yet)"
            );
        };
        self.rabbits.wait_formed("after the power loss");
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
        let healthy = killed_at.elapsed();
        for (n, before) in names.iter().zip(&starts) {
            assert_ne!(
                &inspect(n, "{{.State.StartedAt}}"),
                before,
                "{n} did not start again after its processes were killed"
            );
        }
        for g in &galeras {
            let log = logs(g);
            assert!(
                log.contains("unclean datadir"),
                "{g} did not recover its position after the kill:\n{}",
                tail(&log, 40)
            );
        }
        PowerLoss {
            processes: pids.len(),
            galera_back,
            rabbit_back,
            first_token,
            first_write: first_acked_after(&self.writes.writes(), killed_ns),
            healthy,
            clients: self.clients(killed_ns, now_ns()),
        }
    }
}

/// The three clients' figures over one stretch.
#[derive(Debug, Clone)]
pub struct Clients {
    /// When the stretch began (ns since the epoch).
    pub from_ns: u64,
    /// The Galera writer's INSERTs through the VIP.
    pub writes: WriteFigures,
    /// The keystone client's tokens through the VIP.
    pub tokens: WriteFigures,
    /// The publisher's confirmed messages through the VIP.
    pub publishes: WriteFigures,
}

/// The rolling apply's figures.
#[derive(Debug, Clone)]
pub struct Rolling {
    /// How long `apply` took.
    pub took: Duration,
    /// When each new member started, from the apply's start.
    pub started_at: String,
    pub clients: Clients,
    /// Writes acknowledged until then, each found on all three members.
    pub acked: usize,
}

/// The power loss' figures, from the kill.
#[derive(Debug, Clone)]
pub struct PowerLoss {
    /// The processes killed at once (the containers' and their sandboxes').
    pub processes: usize,
    /// Galera's three members Synced again (their primary component
    /// formed again from their saved state, `pc.recovery`).
    pub galera_back: Duration,
    /// rabbit1 sees the three running.
    pub rabbit_back: Duration,
    /// The client's first token through the VIP.
    pub first_token: Duration,
    /// The writer's first INSERT through the VIP.
    pub first_write: Option<Duration>,
    /// Every container of the example healthy by Docker's healthchecks.
    pub healthy: Duration,
    /// The clients from the kill to then.
    pub clients: Clients,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct Figures {
    pub apply_from_nothing: Duration,
    /// From the end of that apply to the first token through the VIP.
    pub first_token: Duration,
    pub rolling: Rolling,
    pub power_loss: PowerLoss,
    /// Writes acknowledged in all, each found on all three members.
    pub acked: usize,
    pub whole: Duration,
}

impl std::fmt::Display for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut sep = "";
        for (what, c) in [
            ("INSERTs", &self.writes),
            ("tokens", &self.tokens),
            ("messages", &self.publishes),
        ] {
            write!(
                f,
                "{sep}{what} {} attempted, {} failed, longest gap {} ms (from {:.1} s)",
                c.attempted,
                c.failed,
                c.longest_gap.as_millis(),
                c.gap_from_ns.saturating_sub(self.from_ns) as f64 / 1e9
            )?;
            sep = "; ";
        }
        Ok(())
    }
}

impl std::fmt::Display for Rolling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rolling apply of the 3 Galera, 3 RabbitMQ and 2 keystone members: {:.1} s ({}); \
             through the VIP meanwhile: {}; every RabbitMQ member drained first; {} writes \
             acknowledged so far, every one on all three Galera members",
            self.took.as_secs_f64(),
            self.started_at,
            self.clients,
            self.acked
        )
    }
}

impl std::fmt::Display for PowerLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |d: Duration| d.as_secs_f64();
        write!(
            f,
            "power loss ({} processes of the containers and their sandboxes SIGKILLed at once), \
             from the kill: Galera's three Synced after {:.1} s, RabbitMQ's three running after \
             {:.1} s, the first token through the VIP after {:.1} s, the first INSERT after {}, \
             every container healthy after {:.1} s; through the VIP meanwhile: {}",
            self.processes,
            s(self.galera_back),
            s(self.rabbit_back),
            s(self.first_token),
            self.first_write
                .map_or("none".into(), |d| format!("{:.1} s", s(d))),
            s(self.healthy),
            self.clients
        )
    }
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "apply from nothing (2 load balancers, 3 Galera, 3 RabbitMQ, memcached, 3 keystone \
             oneshots, 2 keystone members, the 3 clients): {:.1} s; the first token through the \
             VIP {:.1} s later",
            self.apply_from_nothing.as_secs_f64(),
            self.first_token.as_secs_f64()
        )?;
        writeln!(f, "{}", self.rolling)?;
        writeln!(f, "{}", self.power_loss)?;
        write!(
            f,
            "{} writes acknowledged, every one on all three Galera members; {:.1} s in all",
            self.acked,
            self.whole.as_secs_f64()
        )
    }
}

/// Builds the images (when their recipes changed), brings the whole example
/// up on a fresh two-host bed with the three clients, checks RabbitMQ's
/// cluster and a message across its members and a token valid at each
/// keystone member, replaces every Galera, RabbitMQ and keystone member by
/// one `apply` under the clients (0 failed INSERTs and tokens, nothing
/// lost), kills every container's processes at once and waits for the
/// clusters and the first token, and destroys it all.
pub fn run() -> Figures {
    example::build_images(&["haproxy", "mariadb", "rabbitmq", "memcached", "keystone"]);
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let writes = controlplane::writer_load(&bed);
    let keep: Vec<&str> = running().chain(keystone::ONESHOTS).collect();
    let clients = format!(
        "{}{}{}",
        controlplane::WRITER,
        rabbitmq::PUBLISHER_YAML,
        keystone::CLIENT_YAML
    );
    let env = example::bed_environment(
        &bed,
        &keep,
        &clients,
        &[WRITER, rabbitmq::PUBLISHER, keystone::CLIENT],
        "controlplane.yaml",
    );
    let data = bed.dir().join("controlplane");
    rabbitmq::make_cookie(&data);
    let load_of = |n: &str| LoadDir(data.join(bed.container_name(n)));
    let mut ex = Example {
        bed: &bed,
        env,
        writes,
        tokens: load_of(keystone::CLIENT),
        publishes: load_of(rabbitmq::PUBLISHER),
        rabbits: Rabbits { bed: &bed },
        keystone: Keystone { bed: &bed },
    };

    let started = Instant::now();
    let apply_from_nothing = example::apply_from_nothing(&bed, &ex.env, &ex.all());
    let first_token = ex.keystone.token_everywhere().unwrap_or_else(|e| {
        ex.dump_logs();
        panic!("{e}")
    });
    eprintln!(
        "apply from nothing {:.1} s, the first token {:.1} s later",
        apply_from_nothing.as_secs_f64(),
        first_token.as_secs_f64()
    );
    // The last two joined when apply saw them healthy; each member's view
    // follows within a moment.
    ex.rabbits.wait_formed("after apply");
    ex.rabbits.message_across_members();
    let got_going = wait_until(Duration::from_secs(120), || {
        [&ex.writes, &ex.tokens, &ex.publishes]
            .iter()
            .all(|l| load::acked_ids(&l.writes()).len() > 20)
    });
    if !got_going {
        ex.dump_logs();
        panic!("the clients did not get going");
    }

    let (rolled, rolling) = ex.rolling_apply();
    ex.env = rolled;

    // A durable message left in the queue across the power loss.
    ex.rabbits.publish_through_vip("before the power loss");
    let power_loss = ex.power_loss();
    eprintln!("{power_loss}");
    assert_eq!(
        ex.rabbits.get_through_vip().as_deref(),
        Ok("before the power loss"),
        "the durable message after the power loss"
    );
    // The writes survive a kill of every process: InnoDB wrote each to its
    // log (the kernel's cache, which outlives the process) before the
    // commit was acknowledged.
    ok(&bed, &ex.env, &["-c", &ex.name(WRITER), "stop"]);
    // A member whose application Docker's restart policy started before
    // its sandbox was plugged again is restarted into it by the server (its
    // first instruction must see its address), which can come after every
    // container was healthy: each member is read once it is Synced again.
    let galeras = ex.galeras();
    assert!(
        wait_until(Duration::from_secs(300), || galeras
            .iter()
            .all(|g| galera_synced(g))),
        "a Galera member is not Synced again after the power loss"
    );
    let acked = controlplane::nothing_lost(&ex.writes, &galeras);

    ok(&bed, &ex.env, &["destroy"]);
    Figures {
        apply_from_nothing,
        first_token,
        rolling,
        power_loss,
        acked,
        whole: started.elapsed(),
    }
}
