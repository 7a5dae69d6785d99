//! End to end: `logs` reads what the containers print from every host at
//! once, each line prefixed by its container's name; `-f` follows across a
//! `docker restart`, and a host whose server dies is named while the
//! others go on; `--tail`, `--since` and `--output json` do what they say.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dockstack_tests::support::{assert_nothing_left, bed, dockstack, ok, text, wait_until};
use dockstack_tests::testbed::{BedContainer, TestBed};

/// A shell that prints `tick N` every second, N from 1 at each start.
const TICKER: &str = "init: true\ncommand: [\"sh\", \"-c\", \"i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done\"]\n";

/// `dockstack -f ENV logs ARGS`, its stdout and stderr read line by line
/// into the returned lists as they come.
struct Follower {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

impl Follower {
    fn start(bed: &TestBed, env: &std::path::Path, args: &[&str]) -> Follower {
        let mut child = bed.spawn_client(env, args);
        let collect = |r: Box<dyn std::io::Read + Send>| {
            let lines = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&lines);
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(l);
                }
            });
            lines
        };
        let out = collect(Box::new(child.stdout.take().unwrap()));
        let err = collect(Box::new(child.stderr.take().unwrap()));
        Follower { child, out, err }
    }

    fn out(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    fn err(&self) -> String {
        self.err.lock().unwrap().join("\n")
    }

    /// Lines of `name`'s after the `from`th line.
    fn of(&self, name: &str, from: usize) -> Vec<String> {
        let prefix = format!("{name} ");
        self.out()[from.min(self.out().len())..]
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .cloned()
            .collect()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text after the prefix `name |` (aligned to `width`), if `line` is one of `name`'s.
fn body<'l>(line: &'l str, name: &str, width: usize) -> Option<&'l str> {
    line.strip_prefix(&format!("{name:<width$} | "))
}

/// `--tail 2`: the last two lines of each, each prefixed and aligned.
fn tail_of_each(bed: &TestBed, env: &std::path::Path, names: &[String]) {
    let width = names.iter().map(String::len).max().unwrap();
    // --tail: the last lines of each, each prefixed and aligned.
    let out = ok(bed, env, &["logs", "--tail", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    for n in names {
        let mine: Vec<&str> = stdout.lines().filter_map(|l| body(l, n, width)).collect();
        assert_eq!(mine.len(), 2, "{n} in {stdout}");
        assert!(mine.iter().all(|l| l.starts_with("tick ")), "{stdout}");
    }
}

/// `--output json` and `--since` on `name`, the second host's container.
fn json_and_since(bed: &TestBed, env: &std::path::Path, name: &str) {
    // --output json: one object per line, with host, container, stream and
    // time; --since keeps only what came at or after that second.
    let out = ok(bed, env, &["-c", name, "--output", "json", "logs"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(lines.len() >= 4, "{lines:?}");
    for l in &lines {
        assert_eq!(l["container"], name, "{l}");
        assert_eq!(l["host"], bed.host(1).name(), "{l}");
        assert_eq!(l["stream"], "stdout", "{l}");
        assert!(l["line"].as_str().unwrap().starts_with("tick "), "{l}");
    }
    let time = |l: &serde_json::Value| l["time"].as_str().unwrap().to_string();
    // The second of the third line: lines from it on, none before it.
    let cut = time(&lines[2])[..19].to_string() + "Z";
    let out = ok(
        bed,
        env,
        &["-c", name, "--output", "json", "logs", "--since", &cut],
    );
    let since: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        since.iter().all(|l| time(l)[..19] >= cut[..19]),
        "{cut}: {since:?}"
    );
    assert!(
        since.iter().any(|l| l["line"] == lines[2]["line"]),
        "{cut}: {since:?}"
    );
    assert!(
        !since.iter().any(|l| l["line"] == lines[0]["line"]),
        "{cut}: {since:?}"
    );
    let plain = ok(
        bed,
        env,
        &["-c", name, "logs", "--since", &cut, "--timestamps"],
    );
    let plain = String::from_utf8_lossy(&plain.stdout).to_string();
    assert!(
        plain
            .lines()
            .all(|l| body(l, name, name.len()).is_some_and(|b| b.get(..19) >= Some(&cut[..19]))),
        "{plain}"
    );
}

#[test]
fn logs_of_every_host_interleave_follow_restarts_and_survive_a_dead_host() {
    let mut bed = bed(2);
    // Three on the first host, one on the second: the second's server dies.
    let names: Vec<String> = ["tick-a", "tick-b", "tick-c", "tick-long-d"]
        .iter()
        .map(|n| bed.container_name(n))
        .collect();
    let width = names.iter().map(String::len).max().unwrap();
    let containers: Vec<BedContainer> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            BedContainer::new(
                n,
                usize::from(i == 3),
                bed.subnet_ip(80 + u32::try_from(i).unwrap()),
            )
            .with_yaml(TICKER)
        })
        .collect();
    let env = bed.write_environment(&containers);
    ok(&bed, &env, &["apply", "--yes"]);
    let ticks = |n: &str| {
        let out = ok(&bed, &env, &["-c", n, "logs"]);
        String::from_utf8_lossy(&out.stdout).lines().count()
    };
    assert!(
        wait_until(Duration::from_secs(20), || names
            .iter()
            .all(|n| ticks(n) >= 4)),
        "the tickers did not print 4 lines"
    );

    tail_of_each(&bed, &env, &names);
    json_and_since(&bed, &env, &names[3]);

    // -f: all four at once, interleaved as they print.
    let follow = Follower::start(&bed, &env, &["logs", "-f", "--tail", "0"]);
    assert!(
        wait_until(Duration::from_secs(15), || names
            .iter()
            .all(|n| follow.of(n, 0).len() >= 3)),
        "not every container followed: {:?} {}",
        follow.out(),
        follow.err()
    );
    let first: Vec<String> = follow.out().into_iter().take(12).collect();
    let owners: Vec<&String> = first
        .iter()
        .map(|l| {
            names
                .iter()
                .find(|n| body(l, n, width).is_some())
                .unwrap_or_else(|| panic!("{l}"))
        })
        .collect();
    let switches = owners.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(switches >= 6, "not interleaved: {first:?}");

    // A restart of one does not end its stream: it prints `tick 1` again.
    let mark = follow.out().len();
    let restarted = std::process::Command::new("docker")
        .args(["restart", "-t", "2", &names[0]])
        .output()
        .unwrap();
    assert!(restarted.status.success(), "{}", text(&restarted));
    assert!(
        wait_until(Duration::from_secs(15), || {
            follow
                .of(&names[0], mark)
                .iter()
                .any(|l| body(l, &names[0], width) == Some("tick 2"))
        }),
        "{} not followed after its restart: {:?}\n{}",
        names[0],
        follow.out(),
        follow.err()
    );

    // The second host's server dies: named; the first host's three go on.
    bed.kill_server(1).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || follow
            .err()
            .contains(&format!("FAILED host {}", bed.host(1).name()))),
        "the dead host is not named: {}",
        follow.err()
    );
    let mark = follow.out().len();
    assert!(
        wait_until(Duration::from_secs(10), || names[..3]
            .iter()
            .all(|n| follow.of(n, mark).len() >= 2)),
        "the others stopped: {:?}\n{}",
        follow.out(),
        follow.err()
    );
    assert!(
        !follow
            .err()
            .contains(&format!("FAILED host {}", bed.host(0).name())),
        "{}",
        follow.err()
    );
    drop(follow);

    // Without its server, a host's containers fail alone.
    let out = dockstack(&bed, &env, &["logs", "--tail", "1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("FAILED host {}", bed.host(1).name())),
        "{}",
        text(&out)
    );
    for n in &names[..3] {
        assert!(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| body(l, n, width).is_some()),
            "{}",
            text(&out)
        );
    }

    bed.start_server(1).unwrap();
    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
    assert_nothing_left(&bed, 1);
}
