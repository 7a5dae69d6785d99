//! End to end: `events -f` shows a crash, the restart by Docker and the
//! re-plug after a sandbox restart, in order, with time and host; `status
//! --watch` in a pseudo-terminal shows a state change within 2 s, and `q`
//! ends it.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dockstack_tests::pty::PtyChild;
use dockstack_tests::support::{assert_nothing_left, bed, inspect, ok, text, wait_until};
use dockstack_tests::testbed::BedContainer;

fn docker(args: &[&str]) {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "docker {args:?}: {}", text(&out));
}

/// The place of the first line of `lines` from `from` on that holds every
/// word of `words`.
fn find(lines: &[String], from: usize, words: &[&str]) -> Option<usize> {
    (from..lines.len()).find(|&i| words.iter().all(|w| lines[i].contains(w)))
}

#[test]
fn events_follow_a_crash_the_restart_and_a_replug_in_order() {
    let bed = bed(1);
    let name = bed.container_name("crashy");
    // No init: the shell is PID 1, and a SIGKILL of it from the host is a crash.
    let c = BedContainer::new(&name, 0, bed.subnet_ip(95))
        .with_yaml("restart: always\ncommand: [\"sleep\", \"100000\"]\n");
    let env = bed.write_environment(&[c]);
    ok(&bed, &env, &["apply", "--yes"]);

    let mut child = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["events", "-f", "--since", "1s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = Arc::clone(&lines);
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(l);
        }
    });
    let seen = || lines.lock().unwrap().clone();
    std::thread::sleep(Duration::from_secs(1));

    // A crash: its process killed on the host, not through Docker.
    let pid: i32 = inspect(&name, "{{.State.Pid}}").parse().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let host = bed.host(0).name().to_string();
    assert!(
        wait_until(Duration::from_secs(15), || {
            let l = seen();
            find(&l, 0, &[&name, "die", "exit code 137"])
                .and_then(|d| find(&l, d + 1, &[&name, " start"]))
                .is_some()
        }),
        "no crash and restart: {:?}",
        seen()
    );
    // The sandbox restarted: the server plugs it again.
    docker(&[
        "restart",
        "-t",
        "1",
        &format!("{name}{}", dockstack_types::SANDBOX_SUFFIX),
    ]);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let l = seen();
            let crash = find(&l, 0, &[&name, "die", "exit code 137"]);
            let restart = crash.and_then(|d| find(&l, d + 1, &[&name, " start"]));
            let sandbox = restart.and_then(|r| find(&l, r + 1, &[&name, "sandbox start"]));
            sandbox
                .and_then(|s| find(&l, s + 1, &[&name, "replug", "eth0"]))
                .is_some()
        }),
        "no crash, restart, sandbox start and re-plug in order: {:?}",
        seen()
    );
    // Each line has its time and host.
    for l in seen() {
        assert!(
            l.starts_with("20") && l.contains(&format!(" {host} ")),
            "{l}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();

    // status --watch: a state change shows within 2 s; q ends it.
    let mut cmd = bed.client_command();
    cmd.arg("-f").arg(&env).args(["status", "--watch"]);
    let mut term = PtyChild::spawn(cmd, 40, 200);
    let running = |o: &str| {
        o.lines()
            .any(|l| l.contains(&name) && l.contains("running"))
    };
    assert!(
        term.wait_for(0, Duration::from_secs(10), running),
        "{:?}",
        term.output()
    );
    // Stopped through dockstack: its restart policy does not bring it back.
    ok(&bed, &env, &["-c", &name, "stop"]);
    let stopped = Instant::now();
    let mark = term.mark();
    let exited = |o: &str| {
        o.lines()
            .any(|l| l.starts_with("* ") && l.contains(&name) && l.contains("exited"))
    };
    assert!(
        term.wait_for(mark, Duration::from_secs(2), exited),
        "no marked change within 2 s: {:?}",
        term.since(mark)
    );
    eprintln!(
        "status --watch showed the change {:?} after it",
        stopped.elapsed()
    );
    term.write(b"q");
    assert_eq!(
        term.wait(Duration::from_secs(5)).and_then(|s| s.code()),
        Some(0)
    );

    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}
