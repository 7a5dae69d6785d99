//! What end-to-end tests share: a bed with the test image, running the
//! client and reading its JSON, showing its output in a failure, what
//! Docker shows of a container, waiting and pinging, and leak checks.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::testbed::{BedOptions, SANDBOX_SUFFIX, TestBed, docker, ensure_test_image};

/// A bed of `hosts` hosts, with the busybox test image built.
pub fn bed(hosts: usize) -> TestBed {
    ensure_test_image().expect("test image");
    TestBed::new(BedOptions::hosts(hosts)).expect("test bed")
}

/// `dockstack -f ENV ARGS` with the bed's security flags.
pub fn dockstack(bed: &TestBed, env: &Path, args: &[&str]) -> Output {
    bed.client_command()
        .arg("-f")
        .arg(env)
        .args(args)
        .output()
        .expect("run dockstack")
}

/// `dockstack -f ENV ARGS` started with the variables `vars` (a debug
/// build's fault points), its output piped; `wait_with_output` ends it.
pub fn spawn(bed: &TestBed, env: &Path, args: &[&str], vars: &[(&str, String)]) -> Child {
    bed.client_command()
        .arg("-f")
        .arg(env)
        .args(args)
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dockstack")
}

/// Waits up to 30 s until `dockstack FLAGS lock` prints a line starting
/// with `label` (a host's name, `etcd PREFIX`; empty: any line) that says
/// it is locked for `action` of `env`; that line.
pub fn wait_locked(bed: &TestBed, env: &Path, flags: &[&str], label: &str, action: &str) -> String {
    let file = env.canonicalize().expect("the environment file");
    let wanted = format!("for {action} of {}", file.display());
    let args: Vec<&str> = flags.iter().copied().chain(["lock"]).collect();
    let mut seen = String::new();
    let held = wait_until(Duration::from_secs(30), || {
        let out = dockstack(bed, env, &args);
        seen = String::from_utf8_lossy(&out.stdout).into_owned();
        seen.lines()
            .any(|l| l.starts_with(label) && l.contains(&wanted))
    });
    assert!(held, "never `{label}` {wanted}:\n{seen}");
    seen.lines()
        .find(|l| l.starts_with(label) && l.contains(&wanted))
        .unwrap_or_default()
        .to_string()
}

/// `dockstack ARGS` that must succeed; its output.
pub fn ok(bed: &TestBed, env: &Path, args: &[&str]) -> Output {
    let out = dockstack(bed, env, args);
    assert!(out.status.success(), "dockstack {args:?}: {}", text(&out));
    out
}

/// Exit status, stdout and stderr of a command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `docker exec CONTAINER ARGV` that must succeed; its stdout.
pub fn docker_exec(container: &str, argv: &[&str]) -> String {
    let mut args = vec!["exec", container];
    args.extend(argv);
    docker(&args).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Veth links inside host `i`'s namespace, but the bed's own.
pub fn host_veths(bed: &TestBed, i: usize) -> Vec<String> {
    let out = bed.exec_in_host(i, &["ip", "-o", "link", "show", "type", "veth"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .filter(|n| n != "mgmt0" && !bed.host(i).wire_ports().contains(n))
        .collect()
}

/// No managed container, OVS port or container veth is left on host `i`.
pub fn assert_nothing_left(bed: &TestBed, i: usize) {
    assert_eq!(
        bed.managed_containers(i),
        Vec::<String>::new(),
        "containers left on host {i}"
    );
    assert_eq!(
        bed.ovs_ports(i),
        Vec::<String>::new(),
        "OVS ports left on host {i}"
    );
    assert_eq!(
        host_veths(bed, i),
        Vec::<String>::new(),
        "veths left on host {i}"
    );
}

/// Every pair on host `i` whole, nothing half-made: each application with
/// its sandbox, one OVS port and one veth each, no replacement's leftover
/// (`*.dockstack-next*`). The applications, sorted.
pub fn assert_pairs_whole(bed: &TestBed, i: usize) -> Vec<String> {
    let all = bed.managed_containers(i);
    let apps: Vec<String> = bed
        .managed_apps(i)
        .into_iter()
        .filter(|a| !a.contains(".dockstack-next"))
        .collect();
    let (ports, veths) = (bed.ovs_ports(i), host_veths(bed, i));
    let why = format!("host {i}: containers {all:?}, ports {ports:?}, veths {veths:?}");
    assert!(
        !all.iter().any(|c| c.contains(".dockstack-next")),
        "a replacement's leftover: {why}"
    );
    for a in &apps {
        assert!(
            all.contains(&format!("{a}{SANDBOX_SUFFIX}")),
            "{a} has no sandbox: {why}"
        );
    }
    assert_eq!(
        all.len(),
        2 * apps.len(),
        "a sandbox without its application: {why}"
    );
    assert_eq!(ports.len(), apps.len(), "ports: {why}");
    assert_eq!(veths.len(), apps.len(), "veths: {why}");
    apps
}

/// What the server shows of one container (`show --output json`).
pub fn show(bed: &TestBed, env: &Path, name: &str) -> Value {
    let out = ok(bed, env, &["-c", name, "--output", "json", "show"]);
    let all: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("show output is not JSON ({e}): {}", text(&out)));
    let item = &all[0];
    assert_eq!(item["ok"], true, "{item}");
    item["info"].clone()
}

/// Every container every host reports (`status --output json`), by name.
pub fn status(bed: &TestBed, env: &Path) -> BTreeMap<String, Value> {
    let out = ok(bed, env, &["--output", "json", "status"]);
    let all: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status output is not JSON ({e}): {}", text(&out)));
    all.as_array()
        .expect("an array")
        .iter()
        .map(|i| (i["name"].as_str().expect("a name").to_string(), i.clone()))
        .collect()
}

pub fn inspect(container: &str, format: &str) -> String {
    docker(&["inspect", "--format", format, container])
        .unwrap_or_else(|e| panic!("{e:#}"))
        .trim()
        .to_string()
}

pub fn exists(container: &str) -> bool {
    docker(&["inspect", "--format", "{{.Id}}", container]).is_ok()
}

/// The IPv4 addresses (`IP/LEN`) on the container's eth0; empty without eth0.
pub fn eth0_addresses(container: &str) -> Vec<String> {
    let out = docker(&[
        "exec", container, "ip", "-o", "-4", "addr", "show", "dev", "eth0",
    ])
    .unwrap_or_default();
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next().map(String::from)
        })
        .collect()
}

pub fn eth0_mac(container: &str) -> String {
    docker_exec(container, &["cat", "/sys/class/net/eth0/address"])
        .trim()
        .to_string()
}

pub fn derived_mac(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:d5:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

/// Polls `f` every 50 ms until it holds or `timeout` has passed.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// Whether `ip` answers from host `i` within `timeout`.
pub fn answers_within(bed: &TestBed, i: usize, ip: Ipv4Addr, timeout: Duration) -> bool {
    wait_until(timeout, || {
        bed.exec_in_host(i, &["ping", "-n", "-c1", "-W1", &ip.to_string()])
            .status
            .success()
    })
}

/// The text of `path`, which must be readable.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A ping loop from bed host `i` at `ip`, one ping at a time, each waiting
/// `wait` for its answer; [`PingLoop::longest_outage`] stops it and says
/// how long the address went unanswered at most.
#[derive(Debug)]
pub struct PingLoop {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<Duration>,
}

impl PingLoop {
    pub fn start(bed: &TestBed, i: usize, ip: Ipv4Addr, wait: Duration) -> Self {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let netns = bed.host(i).netns().to_string();
        let flag = std::sync::Arc::clone(&stop);
        let wait = format!("{:.3}", wait.as_secs_f64());
        let handle = std::thread::spawn(move || {
            let (mut longest, mut lost_since) = (Duration::ZERO, None::<Instant>);
            while !flag.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let answered = std::process::Command::new("ip")
                    .args([
                        "netns", "exec", &netns, "ping", "-n", "-q", "-c1", "-W", &wait,
                    ])
                    .arg(ip.to_string())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .status()
                    .is_ok_and(|s| s.success());
                match (answered, lost_since) {
                    (true, Some(since)) => {
                        longest = longest.max(since.elapsed());
                        lost_since = None;
                    }
                    (false, None) => lost_since = Some(sent),
                    _ => {}
                }
                sleep(Duration::from_millis(5));
            }
            longest
        });
        PingLoop { stop, handle }
    }

    pub fn longest_outage(self) -> Duration {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().expect("ping loop")
    }
}

/// One scrape of host `i`'s `/metrics` (served on `port`): each sample's name with its labels, and its value.
pub fn scrape(bed: &TestBed, i: usize, port: u16) -> BTreeMap<String, f64> {
    use std::io::{Read, Write};
    let addr = std::net::SocketAddr::new(bed.host(i).mgmt_ip().into(), port);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .expect("connect to /metrics");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: bed\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("{l}"));
            (
                name.to_string(),
                value.parse().unwrap_or_else(|_| panic!("{l}")),
            )
        })
        .collect()
}
