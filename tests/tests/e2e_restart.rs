//! End to end: `restart` restarts running containers in their sandboxes,
//! gracefully (`prestop`, then the stop signal), their addresses and MACs
//! untouched; the members of one service one at a time, each healthy
//! before the next is stopped, so that one is healthy at every moment
//! (polled) and every address answers throughout.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dockstack_tests::support::{
    assert_nothing_left, bed, dockstack, eth0_addresses, eth0_mac, inspect, ok, read, text,
    wait_until,
};
use dockstack_tests::testbed::BedContainer;

/// A busybox shell that logs `started`, and on `signal` logs it a second
/// later (a restart that did not give it its grace period would kill it
/// first) and exits 0; its prestop logs `prestop`. Each line ends with the host's uptime
/// (/proc/uptime is not namespaced), so lines of two containers compare.
/// A member's healthcheck logs its uptime to /data/health each time.
fn restartable(signal: &str, data: &Path, service: bool) -> String {
    let uptime = "read u x < /proc/uptime";
    let mut yaml = format!(
        "volumes:\n- {}:/data\nstop_signal: SIG{signal}\nstop_grace_period: 20\n\
         command: [\"sh\", \"-c\", \"trap 'sleep 1; {uptime}; echo {signal} $u >> /data/log; exit 0' {signal}; \
         {uptime}; echo started $u >> /data/log; while true; do sleep 1 & wait $!; done\"]\n\
         prestop: [\"sh -c '{uptime}; echo prestop $u >> /data/log'\"]\n",
        data.display()
    );
    if service {
        yaml.push_str(&format!(
            "service: pair\nhealthcheck:\n  test: [\"CMD-SHELL\", \"{uptime}; echo $u >> /data/health\"]\n  \
             interval: 300ms\n  timeout: 2s\n  retries: 2\n"
        ));
    }
    yaml
}

/// The log's lines as (word, uptime).
fn log(data: &Path) -> Vec<(String, f64)> {
    read(&data.join("log"))
        .lines()
        .map(|l| {
            let (word, at) = l.split_once(' ').unwrap_or_else(|| panic!("{l:?}"));
            (
                word.to_string(),
                at.parse().unwrap_or_else(|_| panic!("{l:?}")),
            )
        })
        .collect()
}

fn words(data: &Path) -> Vec<String> {
    log(data).into_iter().map(|(w, _)| w).collect()
}

/// The uptime of the line `word`'s `n`th occurrence (from 0).
fn at(data: &Path, word: &str, n: usize) -> f64 {
    log(data)
        .into_iter()
        .filter(|(w, _)| w == word)
        .nth(n)
        .unwrap_or_else(|| panic!("no {word} #{n} in {:?}", words(data)))
        .1
}

fn wait_started(data: &Path, times: usize) {
    assert!(
        wait_until(Duration::from_secs(30), || {
            std::fs::read_to_string(data.join("log"))
                .is_ok_and(|l| l.lines().filter(|l| l.starts_with("started")).count() >= times)
        }),
        "{} did not start {times} times",
        data.display()
    );
}

/// What must not change across a restart, and what must.
struct Seen {
    addresses: Vec<String>,
    mac: String,
    started_at: String,
}

fn seen(name: &str) -> Seen {
    Seen {
        addresses: eth0_addresses(name),
        mac: eth0_mac(name),
        started_at: inspect(name, "{{.State.StartedAt}}"),
    }
}

#[test]
fn restart_is_graceful_in_place_and_a_services_members_go_one_at_a_time() {
    let bed = bed(1);
    let names: Vec<String> = ["member1", "member2", "plain"]
        .iter()
        .map(|n| bed.container_name(n))
        .collect();
    let data: Vec<PathBuf> = ["member1", "member2", "plain"]
        .iter()
        .map(|n| bed.dir().join(n))
        .collect();
    let kinds = [("TERM", true), ("TERM", true), ("USR1", false)];
    let containers: Vec<BedContainer> = names
        .iter()
        .zip(&data)
        .zip(kinds)
        .zip(70..)
        .map(|(((name, dir), (signal, service)), n)| {
            std::fs::create_dir_all(dir).unwrap();
            BedContainer::new(name, 0, bed.subnet_ip(n))
                .with_yaml(&restartable(signal, dir, service))
        })
        .collect();
    let env = bed.write_environment(&containers);
    ok(&bed, &env, &["apply", "--yes"]);
    for d in &data {
        wait_started(d, 1);
    }
    let before: BTreeMap<&str, Seen> = names.iter().map(|n| (n.as_str(), seen(n))).collect();
    for (n, s) in &before {
        assert_eq!(s.addresses.len(), 1, "{n}: {:?}", s.addresses);
    }

    let out = ok(&bed, &env, &["restart"]);
    assert!(
        text(&out).contains("restart: 3 succeeded, 0 failed"),
        "{}",
        text(&out)
    );
    for (i, n) in names.iter().enumerate() {
        wait_started(&data[i], 2);
        let after = seen(n);
        let was = &before[n.as_str()];
        assert_ne!(after.started_at, was.started_at, "{n} was not restarted");
        assert_eq!(after.addresses, was.addresses, "{n}'s address");
        assert_eq!(after.mac, was.mac, "{n}'s MAC");
        assert_eq!(
            words(&data[i]),
            ["started", "prestop", kinds[i].0, "started"],
            "{n}"
        );
    }
    // The member restarted second was stopped (its prestop began) only
    // after the first was up again and had passed a healthcheck.
    let (first, second) = if at(&data[0], "prestop", 0) < at(&data[1], "prestop", 0) {
        (&data[0], &data[1])
    } else {
        (&data[1], &data[0])
    };
    let back = at(first, "started", 1);
    let healthy = read(&first.join("health"))
        .lines()
        .filter_map(|l| l.trim().parse::<f64>().ok())
        .find(|u| *u >= back)
        .expect("a healthcheck of the first member after its restart");
    let second_down = at(second, "prestop", 0);
    assert!(
        second_down >= healthy,
        "the second member's prestop at {second_down} came before the first was healthy at {healthy}"
    );

    // One container alone: the others are left be.
    let before: BTreeMap<&str, Seen> = names.iter().map(|n| (n.as_str(), seen(n))).collect();
    ok(&bed, &env, &["-c", &names[2], "restart"]);
    wait_started(&data[2], 3);
    for n in &names {
        let changed = seen(n).started_at != before[n.as_str()].started_at;
        assert_eq!(changed, *n == names[2], "{n} restarted: {changed}");
    }

    // A stopped container is not started by a restart: an error naming it.
    ok(&bed, &env, &["-c", &names[2], "stop"]);
    let out = dockstack(&bed, &env, &["-c", &names[2], "restart"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{} is exited, not running", names[2])),
        "{}",
        text(&out)
    );
    assert_eq!(inspect(&names[2], "{{.State.Running}}"), "false");

    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}

/// One poll of the members' health: when, and each member's status.
struct Sample {
    at: Instant,
    health: Vec<String>,
}

/// Docker's health status of container `name`, asked of dockerd's API
/// directly (the docker command takes longer to start than [`POLL`]).
fn health(name: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut sock = std::os::unix::net::UnixStream::connect("/var/run/docker.sock").ok()?;
    write!(
        sock,
        "GET /containers/{name}/json HTTP/1.0\r\nHost: docker\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    sock.read_to_string(&mut answer).ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    Some(v["State"]["Health"]["Status"].as_str()?.to_string())
}

/// Polls the health of `names` every [`POLL`] until `stop`.
fn poll_health(names: &[String], stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        // At once: one inspect takes dockerd some 100 ms under load.
        let health: Option<Vec<String>> = std::thread::scope(|scope| {
            let asked: Vec<_> = names.iter().map(|n| scope.spawn(|| health(n))).collect();
            asked.into_iter().map(|a| a.join().ok().flatten()).collect()
        });
        if let Some(health) = health {
            samples.push(Sample { at, health });
        }
        std::thread::sleep(POLL.saturating_sub(at.elapsed()));
    }
    samples
}

/// Pings `ip` from host 0 one ping at a time until `stop`; when each
/// unanswered one was sent.
fn lost_pings(netns: &str, ip: Ipv4Addr, stop: &AtomicBool) -> (usize, Vec<Instant>) {
    let (mut sent, mut lost) = (0, Vec::new());
    while !stop.load(Ordering::Relaxed) {
        let at = Instant::now();
        let answered = Command::new("ip")
            .args([
                "netns", "exec", netns, "ping", "-n", "-q", "-c1", "-W", "0.5",
            ])
            .arg(ip.to_string())
            .output()
            .is_ok_and(|o| o.status.success());
        sent += 1;
        if !answered {
            lost.push(at);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (sent, lost)
}

/// How often the members' health is polled.
const POLL: Duration = Duration::from_millis(150);

#[test]
fn restarting_a_services_members_keeps_one_healthy_and_every_address_answering() {
    let bed = bed(1);
    let names: Vec<String> = (1..=3)
        .map(|k| bed.container_name(&format!("svc{k}")))
        .collect();
    let ips: Vec<Ipv4Addr> = (0..3).map(|k| bed.subnet_ip(90 + k)).collect();
    let member = "service: web\nhealthcheck:\n  test: [\"CMD\", \"true\"]\n  interval: 300ms\n  timeout: 2s\n  retries: 2\n";
    let containers: Vec<BedContainer> = names
        .iter()
        .zip(&ips)
        .map(|(n, ip)| BedContainer::new(n, 0, *ip).with_yaml(member))
        .collect();
    let env = bed.write_environment(&containers);
    ok(&bed, &env, &["apply", "--yes"]);
    let all_healthy = || {
        names
            .iter()
            .all(|n| inspect(n, "{{.State.Health.Status}}") == "healthy")
    };
    assert!(
        wait_until(Duration::from_secs(30), all_healthy),
        "the members are not healthy"
    );
    let started: Vec<String> = names
        .iter()
        .map(|n| inspect(n, "{{.State.StartedAt}}"))
        .collect();

    let stop = AtomicBool::new(false);
    let netns = bed.host(0).netns().to_string();
    let (samples, pings, took) = std::thread::scope(|scope| {
        let poller = scope.spawn(|| poll_health(&names, &stop));
        let pingers: Vec<_> = ips
            .iter()
            .map(|ip| scope.spawn(|| lost_pings(&netns, *ip, &stop)))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let began = Instant::now();
        let out = ok(&bed, &env, &["restart"]);
        let took = began.elapsed();
        assert!(
            text(&out).contains("restart: 3 succeeded, 0 failed"),
            "{}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(500));
        stop.store(true, Ordering::Relaxed);
        let pings: Vec<(usize, Vec<Instant>)> =
            pingers.into_iter().map(|p| p.join().unwrap()).collect();
        (poller.join().unwrap(), pings, took)
    });

    for (n, was) in names.iter().zip(&started) {
        assert_ne!(
            &inspect(n, "{{.State.StartedAt}}"),
            was,
            "{n} was not restarted"
        );
    }
    // At every poll one member at least was healthy.
    let fewest = samples
        .iter()
        .map(|s| s.health.iter().filter(|h| *h == "healthy").count())
        .min()
        .expect("samples");
    assert!(fewest >= 1, "a poll found no member healthy");
    // Each member's restart window (first poll that found it not healthy
    // to the last), one at a time.
    let t0 = samples[0].at;
    let windows: Vec<Option<(Instant, Instant)>> = (0..names.len())
        .map(|k| {
            let down: Vec<Instant> = samples
                .iter()
                .filter(|s| s.health.get(k).is_some_and(|h| h != "healthy"))
                .map(|s| s.at)
                .collect();
            Some((*down.first()?, *down.last()?))
        })
        .collect();
    let mut seen: Vec<(Instant, Instant)> = windows.iter().flatten().copied().collect();
    seen.sort();
    for pair in seen.windows(2) {
        assert!(pair[0].1 < pair[1].0, "two members were down at once");
    }
    // The addresses answer throughout, but for a member's own window (its
    // sandbox holds the address, so even then they should).
    for (k, (sent, lost)) in pings.iter().enumerate() {
        for at in lost {
            let inside =
                windows[k].is_some_and(|(from, to)| *at + POLL >= from && *at <= to + POLL);
            assert!(inside, "{} did not answer outside its restart", names[k]);
        }
        println!(
            "{}: {} pings, {} lost; down (not healthy) {}",
            names[k],
            sent,
            lost.len(),
            windows[k].map_or("never seen".to_string(), |(from, to)| format!(
                "from {} ms to {} ms",
                from.duration_since(t0).as_millis(),
                to.duration_since(t0).as_millis()
            ))
        );
    }
    let longest_gap = samples
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .max()
        .unwrap_or_default();
    println!(
        "restart of 3 members: {} ms; {} health polls (asked every {} ms, longest gap {} ms), the fewest healthy at once {fewest}",
        took.as_millis(),
        samples.len(),
        POLL.as_millis(),
        longest_gap.as_millis()
    );
    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}
