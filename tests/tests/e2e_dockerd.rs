//! End to end, a dockerd restart: every pair of a two-host environment
//! comes back at its address, its sandbox plugged again and its
//! application joined to the new netns.
//!
//! It stops the machine's dockerd, so it must run alone: `.config/nextest.toml`
//! leaves it out of a plain `cargo nextest run`, and `scripts/test` runs it
//! by itself after the others.

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use dockstack_tests::support::{
    assert_nothing_left, bed, eth0_addresses, inspect, ok, status, wait_until,
};
use dockstack_tests::testbed::{BedContainer, SANDBOX_SUFFIX, TestBed, docker};

/// A command that says at each start whether eth0 has `ip` (its first
/// instruction), and exits at once on SIGTERM, so dockerd's shutdown and
/// the server's restarts of applications wait for nothing.
fn stoppable(ip: Ipv4Addr, prefix: u8) -> String {
    format!(
        "command: [/bin/sh, -c, \"if ip -4 -o addr show dev eth0 | grep -q ' {ip}/{prefix} '; \
         then echo ADDRESS-OK; else echo ADDRESS-MISSING; fi; \
         trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done\"]"
    )
}

fn dockerd_answers() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ID}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn dockerd_pid() -> Option<String> {
    let out = Command::new("pidof").arg("dockerd").output().ok()?;
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!pid.is_empty()).then_some(pid)
}

/// Starts dockerd as this machine runs it: `/usr/sbin/dockerd`, its output
/// appended to `/var/log/dockerd.log`, in a session of its own so that
/// nothing of the test's process group takes it down.
fn start_dockerd() {
    let started = Command::new("sh")
        .args([
            "-c",
            "setsid /usr/sbin/dockerd >>/var/log/dockerd.log 2>&1 </dev/null &",
        ])
        .status()
        .expect("start dockerd");
    assert!(started.success());
}

/// Starts dockerd again however the test ends, so that no later test
/// finds the machine without it.
struct DockerdGuard;

impl Drop for DockerdGuard {
    fn drop(&mut self) {
        if !dockerd_answers() {
            if dockerd_pid().is_none() {
                start_dockerd();
            }
            wait_until(Duration::from_secs(60), dockerd_answers);
        }
    }
}

/// Whether `ip` answers a ping from host `i`'s namespace.
fn answers(bed: &TestBed, i: usize, ip: Ipv4Addr) -> bool {
    bed.exec_in_host(i, &["ping", "-n", "-c1", "-W1", &ip.to_string()])
        .status
        .success()
}

fn netns(container: &str) -> String {
    let pid = inspect(container, "{{.State.Pid}}");
    std::fs::read_link(format!("/proc/{pid}/ns/net"))
        .map(|l| l.display().to_string())
        .unwrap_or_default()
}

#[test]
fn dockerd_restart_brings_every_pair_of_two_hosts_back_at_its_address() {
    let _guard = DockerdGuard;
    let bed = bed(2);
    let prefix = bed.gateway().prefix();
    // Two running pairs on each host, one of them `restart: always`; and
    // one `restart: "no"`, which Docker leaves down, sandbox and all.
    let up: Vec<(String, usize, Ipv4Addr, &str)> = vec![
        (bed.container_name("a0"), 0, bed.subnet_ip(80), ""),
        (
            bed.container_name("b0"),
            0,
            bed.subnet_ip(81),
            "restart: always",
        ),
        (bed.container_name("a1"), 1, bed.subnet_ip(82), ""),
        (
            bed.container_name("b1"),
            1,
            bed.subnet_ip(83),
            "restart: always",
        ),
    ];
    let down = bed.container_name("no1");
    let mut containers: Vec<BedContainer> = up
        .iter()
        .map(|(name, host, ip, yaml)| {
            BedContainer::new(name, *host, *ip)
                .with_yaml(&format!("{}\n{yaml}", stoppable(*ip, prefix)))
        })
        .collect();
    containers.push(
        BedContainer::new(&down, 1, bed.subnet_ip(84)).with_yaml(&format!(
            "{}\nrestart: \"no\"",
            stoppable(bed.subnet_ip(84), prefix)
        )),
    );
    let env = bed.write_environment(&containers);
    ok(&bed, &env, &["run"]);
    for (name, host, ip, _) in &up {
        assert!(answers(&bed, *host, *ip), "{name} before the restart");
    }
    // A netns's inode number may come back for a new one: a sandbox is
    // known new by its start.
    let sandboxes_before: Vec<String> = up
        .iter()
        .map(|(name, ..)| inspect(&format!("{name}{SANDBOX_SUFFIX}"), "{{.State.StartedAt}}"))
        .collect();

    let pid = dockerd_pid().expect("dockerd runs");
    let stopped = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill dockerd");
    assert!(stopped.success());
    assert!(
        wait_until(Duration::from_secs(60), || dockerd_pid().is_none()),
        "dockerd did not stop"
    );
    start_dockerd();
    assert!(
        wait_until(Duration::from_secs(60), dockerd_answers),
        "dockerd did not come back: see /var/log/dockerd.log"
    );
    let back = Instant::now();

    // Every address answers, from an application that runs in its new,
    // plugged sandbox.
    let mut pending: Vec<usize> = (0..up.len()).collect();
    let deadline = back + Duration::from_secs(30);
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|&k| !answers(&bed, up[k].1, up[k].2));
        if !pending.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let last = back.elapsed();
    assert!(
        pending.is_empty(),
        "not back 30 s after dockerd: {:?}\nhost 0:\n{}\nhost 1:\n{}",
        pending.iter().map(|&k| &up[k].0).collect::<Vec<_>>(),
        bed.server_log(0),
        bed.server_log(1)
    );
    println!(
        "dockerd back -> last of {} addresses answering: {} ms (goal < 2000 ms)",
        up.len(),
        last.as_millis()
    );
    for ((name, _, ip, _), before) in up.iter().zip(&sandboxes_before) {
        let sandbox = format!("{name}{SANDBOX_SUFFIX}");
        assert_ne!(
            &inspect(&sandbox, "{{.State.StartedAt}}"),
            before,
            "{sandbox} was not restarted"
        );
        assert!(
            wait_until(Duration::from_secs(10), || netns(name) == netns(&sandbox)),
            "{name} is not in the netns of {sandbox}"
        );
        assert_eq!(eth0_addresses(name), vec![format!("{ip}/{prefix}")]);
        // Started once by dockerd's return, by Docker or by the server,
        // and never without its address: not restarted into its sandbox.
        let logs = docker(&["logs", name]).unwrap_or_default();
        assert!(!logs.contains("ADDRESS-MISSING"), "{name}:\n{logs}");
        assert_eq!(logs.matches("ADDRESS-OK").count(), 2, "{name}:\n{logs}");
    }
    let all = status(&bed, &env);
    for (name, ..) in &up {
        assert_eq!(all[name]["plugged"], true, "{name}: {}", all[name]);
    }
    // `restart: "no"` keeps Docker's behaviour: down after dockerd's restart.
    assert_eq!(inspect(&down, "{{.State.Running}}"), "false");
    assert_eq!(
        inspect(&format!("{down}{SANDBOX_SUFFIX}"), "{{.State.Running}}"),
        "false"
    );
    assert_eq!(all[&down]["plugged"], false);

    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
    assert_nothing_left(&bed, 1);
    let _ = docker(&["info"]);
}
