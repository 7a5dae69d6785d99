//! bench-server: what the server costs over plain Docker, on one test-bed
//! host with 20 containers, each with its network sandbox:
//!
//! 1. bring-up: `dockstack run` of 20 pairs against 20 plain pause + app
//!    pairs run in parallel (the same Docker work, no network), and against
//!    the 2015 recipe (`docker run --net=none` + `ovs-docker add-port`, one
//!    after the other);
//! 2. application restart: `docker restart -t 0` of a dockstack container
//!    until its address answers, against the same command on a plain one;
//! 3. sandbox restart: `docker restart -t 0` of a sandbox until its
//!    application answers again from the new one, and the server's own
//!    event-to-done figure;
//! 4. the server's memory, idle and at its peak.
//!
//! Run it in release mode on a machine that can host a test bed:
//!
//! ```text
//! cargo build --release --workspace --bins
//! cargo run --release -p dockstack-tests --bin bench-server
//! ```
//!
//! It prints the goals beside the numbers but asserts none of them: the
//! numbers depend on the machine.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dockstack_tests::bench::{PAUSE_IMAGE, pause_image, proc_status_kib, remove_containers};
use dockstack_tests::testbed::{
    BedContainer, BedOptions, SANDBOX_SUFFIX, TEST_IMAGE, TestBed, docker, ensure_test_image, ip,
    tail,
};

/// Containers (pairs) per bring-up.
const N: u32 = 20;
/// Bring-ups of (b) and (c) each, alternating.
const ROUNDS: usize = 3;
/// `docker restart`s of an application (and of a plain container).
const APP_RESTARTS: usize = 10;
/// `docker restart`s of a sandbox.
const SANDBOX_RESTARTS: usize = 5;
const LOG_LINE: &str = "re-plugged after start event";
/// The applications' command, dockstack's and plain: the test image's
/// `sleep infinity` ignores SIGTERM as PID 1, and the server restarts an
/// application into a new sandbox with Docker's default 10 s stop timeout.
const APP_ARGV: [&str; 3] = [
    "/bin/sh",
    "-c",
    "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done",
];

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-server: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `cmd`; fails with its stderr when it fails.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// The `since_event_ms` of each re-plug line of `container` in the log.
fn replug_latencies(log: &str, container: &str) -> Vec<f64> {
    let who = format!("container={container} ");
    log.lines()
        .filter(|l| l.contains(LOG_LINE) && l.contains(&who))
        .filter_map(|l| {
            let v = l.split("since_event_ms=").nth(1)?;
            v.split_whitespace().next()?.parse().ok()
        })
        .collect()
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

fn median(v: &[f64]) -> f64 {
    let s = sorted(v);
    s.get(s.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `median M (min-max, n=K) UNIT`.
fn stats(v: &[f64], unit: &str, digits: usize) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    let s = sorted(v);
    format!(
        "median {:.d$} ({:.d$}-{:.d$}, n={}) {unit}",
        s[s.len() / 2],
        s[0],
        s[s.len() - 1],
        s.len(),
        d = digits
    )
}

fn goal(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// The name of the plain pause container of plain application `app`. Not
/// `NAME.dockstack-sandbox`: the server would take it for a sandbox of its own.
fn plain_pause(app: &str) -> String {
    format!("{app}-pause")
}

/// 20 plain pairs, each in its own thread: a pause container without
/// network, then an application in its netns. Their wall time.
fn plain_pairs(apps: &[String], pause: &str) -> Result<Duration> {
    let began = Instant::now();
    std::thread::scope(|s| {
        let threads: Vec<_> = apps
            .iter()
            .map(|app| {
                s.spawn(move || -> Result<()> {
                    let sb = plain_pause(app);
                    docker(&["run", "-d", "--network", "none", "--name", &sb, pause])?;
                    let net = format!("container:{sb}");
                    let mut args = vec!["run", "-d", "--network", &net, "--name", app, TEST_IMAGE];
                    args.extend(APP_ARGV);
                    docker(&args)?;
                    Ok(())
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a docker run thread panicked"))
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(began.elapsed())
}

/// The network namespace (`net:[inode]`) of each running container of `names`.
fn netns_of(names: &[&str]) -> Result<Vec<PathBuf>> {
    let mut args = vec!["inspect", "-f", "{{.State.Pid}}"];
    args.extend(names);
    docker(&args)?
        .lines()
        .map(|pid| {
            let pid: u32 = pid.trim().parse().context("a pid")?;
            ensure!(pid != 0, "not running");
            Ok(fs::read_link(format!("/proc/{pid}/ns/net"))?)
        })
        .collect()
}

/// The bed's one host and what every phase needs of it.
struct Bench<'a> {
    bed: &'a TestBed,
    ns: String,
    log_path: PathBuf,
    /// The server's pid, for its memory.
    pid: u32,
    pause: String,
}

impl Bench<'_> {
    /// The bed's container names `<tag>00`..`<tag>19`.
    fn names(&self, tag: &str) -> Vec<String> {
        (0..N)
            .map(|k| self.bed.container_name(&format!("{tag}{k:02}")))
            .collect()
    }

    fn ip_of(&self, k: usize) -> Ipv4Addr {
        self.bed
            .subnet_ip(100 + u32::try_from(k).expect("few containers"))
    }

    /// One ping process that sends every 2 ms and ends at the first answer.
    fn answers(&self, addr: Ipv4Addr, within_s: u32) -> Result<bool> {
        Ok(Command::new("ip")
            .args([
                "netns", "exec", &self.ns, "ping", "-n", "-q", "-i", "0.002", "-c", "1",
            ])
            .args(["-w", &within_s.to_string(), &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success())
    }

    /// `ovs-docker` in the host; its ovs-vsctl finds the host's OVSDB
    /// through OVS_RUNDIR.
    fn ovs_docker(&self, args: &[&str]) -> Result<String> {
        run(Command::new("ip")
            .args(["netns", "exec", &self.ns, "env"])
            .arg(format!(
                "OVS_RUNDIR={}",
                self.bed.host(0).rundir().display()
            ))
            .arg("ovs-docker")
            .args(args))
    }

    /// Nothing of the bed's containers, ports or veths left on the host
    /// (but its management link's end, `mgmt0`, and the wire's ports).
    fn check_clean(&self, what: &str) -> Result<()> {
        let (bed, ns) = (self.bed, &self.ns);
        let ports = bed.ovs_ports(0);
        ensure!(ports.is_empty(), "{what} left ports: {ports:?}");
        let left = bed.managed_containers(0);
        ensure!(left.is_empty(), "{what} left containers: {left:?}");
        let veths: Vec<String> = ip(&["-n", ns, "-o", "link", "show", "type", "veth"])?
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .filter(|n| n != "mgmt0" && !bed.host(0).wire_ports().contains(n))
            .collect();
        ensure!(veths.is_empty(), "{what} left veths in {ns}: {veths:?}");
        Ok(())
    }

    /// `dockstack --jobs 20 <action>` on the environment `env`.
    fn dockstack(&self, env: &Path, action: &str) -> Result<String> {
        let mut cmd = self.bed.client_command();
        cmd.arg("-f").arg(env).args(["--jobs", "20", action]);
        run(&mut cmd)
    }

    /// The last lines of the server's log, for an error.
    fn log_tail(&self) -> String {
        format!(
            "last lines of {}:\n{}",
            self.log_path.display(),
            tail(&self.log_path, 30)
        )
    }
}

/// Every figure of the report.
#[derive(Default)]
struct Figures {
    pause_tags: Vec<String>,
    sandbox_image: String,
    rss_idle: u64,
    rss_up: u64,
    rss_peak: u64,
    rss_after: u64,
    /// Bring-up (a), seconds.
    a: f64,
    b_s: Vec<f64>,
    c_s: Vec<f64>,
    destroy_s: Vec<f64>,
    none_ms: Vec<f64>,
    pair_ms: Vec<f64>,
    app_cmd_ms: Vec<f64>,
    app_ms: Vec<f64>,
    app_replugs: usize,
    sb_cmd_ms: Vec<f64>,
    sb_ms: Vec<f64>,
    server_ms: Vec<f64>,
}

fn bench() -> Result<()> {
    ensure_test_image()?;
    let bed = TestBed::new(BedOptions::hosts(1))?;
    let host = bed.host(0);
    let pid = host.server_pid()?;
    let (pause, pause_tags) = pause_image()?;
    let s = Bench {
        bed: &bed,
        ns: host.netns().to_string(),
        log_path: host.server_log(),
        pid,
        pause,
    };
    let mut f = Figures {
        pause_tags,
        ..Figures::default()
    };
    // Warm dockerd's caches for both images, so the first phase pays no more than the others.
    let warm = bed.container_name("warm");
    for image in [TEST_IMAGE, s.pause.as_str()] {
        docker(&["run", "-d", "--net=none", "--name", &warm, image])?;
        docker(&["rm", "-f", &warm])?;
    }
    f.rss_idle = proc_status_kib(pid, "VmRSS")?;

    f.a = bring_up_2015(&s)?;
    let c_names = s.names("c");
    let env = write_environment(&s, &c_names);
    bring_ups(&s, &env, &mut f)?;
    let target = c_names[0].as_str();
    let sandbox = format!("{target}{SANDBOX_SUFFIX}");
    f.sandbox_image = docker(&["inspect", "-f", "{{.Config.Image}}", &sandbox])?
        .trim()
        .to_string();
    let target_ip = s.ip_of(0);
    ensure!(s.answers(target_ip, 5)?, "{target_ip} does not answer");

    app_restarts(&s, target, &sandbox, &mut f)?;
    sandbox_restarts(&s, target, &sandbox, &mut f)?;

    let began = Instant::now();
    s.dockstack(&env, "destroy")?;
    f.destroy_s.push(began.elapsed().as_secs_f64());
    s.check_clean("destroy")?;
    f.rss_peak = proc_status_kib(pid, "VmHWM")?;
    f.rss_after = proc_status_kib(pid, "VmRSS")?;

    report(&s, &f);
    bed.teardown()
}

/// (a) The 2015 recipe: docker run, then ovs-docker add-port, one by one;
/// its seconds.
fn bring_up_2015(s: &Bench) -> Result<f64> {
    let bed = s.bed;
    let prefix = bed.gateway().prefix();
    let gw = bed.gateway().ip().to_string();
    let a_names = s.names("a");
    let began = Instant::now();
    for (k, name) in a_names.iter().enumerate() {
        docker(&["run", "-d", "--net=none", "--name", name, TEST_IMAGE])?;
        s.ovs_docker(&[
            "add-port",
            bed.bridge(),
            "eth0",
            name,
            &format!("--ipaddress={}/{prefix}", s.ip_of(k)),
            &format!("--gateway={gw}"),
        ])?;
    }
    let a = began.elapsed().as_secs_f64();
    ensure!(
        bed.ovs_ports(0).len() == N as usize,
        "ovs-docker made {} ports, not {N}",
        bed.ovs_ports(0).len()
    );
    ensure!(
        bed.ping_from_host(0, s.ip_of(0)),
        "{} does not answer",
        s.ip_of(0)
    );
    for name in &a_names {
        s.ovs_docker(&["del-ports", bed.bridge(), name])?;
    }
    remove_containers(&a_names)?;
    Ok(a)
}

/// The environment of dockstack's containers `c_names`, running [`APP_ARGV`].
fn write_environment(s: &Bench, c_names: &[String]) -> PathBuf {
    let command = format!(
        "command: [{}]",
        APP_ARGV.map(|w| format!("{w:?}")).join(", ")
    );
    let containers: Vec<BedContainer> = c_names
        .iter()
        .enumerate()
        .map(|(k, name)| BedContainer::new(name, 0, s.ip_of(k)).with_yaml(&command))
        .collect();
    s.bed.write_environment(&containers)
}

/// (b) and (c), alternating: plain pairs, then dockstack's; the last
/// dockstack round stays up for the restarts.
fn bring_ups(s: &Bench, env: &Path, f: &mut Figures) -> Result<()> {
    let bed = s.bed;
    let b_names = s.names("b");
    for round in 0..ROUNDS {
        f.b_s.push(plain_pairs(&b_names, &s.pause)?.as_secs_f64());
        let mut plain: Vec<String> = b_names.clone();
        plain.extend(b_names.iter().map(|b| plain_pause(b)));
        remove_containers(&plain)?;

        let began = Instant::now();
        s.dockstack(env, "run")?;
        f.c_s.push(began.elapsed().as_secs_f64());
        ensure!(
            bed.ovs_ports(0).len() == N as usize,
            "dockstack made {} ports, not {N}",
            bed.ovs_ports(0).len()
        );
        let apps = bed.managed_apps(0);
        ensure!(apps.len() == N as usize, "dockstack made {apps:?}");
        f.rss_up = proc_status_kib(s.pid, "VmRSS")?;
        if round + 1 < ROUNDS {
            let began = Instant::now();
            s.dockstack(env, "destroy")?;
            f.destroy_s.push(began.elapsed().as_secs_f64());
            s.check_clean("destroy")?;
        }
    }
    Ok(())
}

/// Phase 2, application restarts, each beside two plain ones (the docker
/// command alone): of a container with `--network none`, and of the
/// application of a plain pair, which joins its pause container's netns
/// as dockstack's does (the same Docker work).
fn app_restarts(s: &Bench, target: &str, sandbox: &str, f: &mut Figures) -> Result<()> {
    let plain = s.bed.container_name("plain");
    let pair = s.bed.container_name("pair");
    let mut args = vec![
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        &plain,
        TEST_IMAGE,
    ];
    args.extend(APP_ARGV);
    docker(&args)?;
    plain_pairs(std::slice::from_ref(&pair), &s.pause)?;
    let replugs =
        |log: &str| replug_latencies(log, target).len() + replug_latencies(log, sandbox).len();
    let replugs_before = replugs(&read(&s.log_path));
    let target_ip = s.ip_of(0);
    for _ in 0..APP_RESTARTS {
        for (name, times) in [(&plain, &mut f.none_ms), (&pair, &mut f.pair_ms)] {
            let began = Instant::now();
            docker(&["restart", "-t", "0", name])?;
            times.push(ms(began));
        }

        let began = Instant::now();
        docker(&["restart", "-t", "0", target])?;
        f.app_cmd_ms.push(ms(began));
        ensure!(
            s.answers(target_ip, 5)?,
            "{target_ip} did not answer within 5 s of its restart; {}",
            s.log_tail()
        );
        f.app_ms.push(ms(began));
    }
    // A re-plug would follow the start event by some 10 ms: give it time to show.
    sleep(Duration::from_secs(1));
    f.app_replugs = replugs(&read(&s.log_path)) - replugs_before;
    remove_containers(&[plain, pair.clone(), plain_pause(&pair)])?;
    Ok(())
}

/// Phase 3, sandbox restarts. The application keeps the old netns, whose eth0
/// answers until the server re-plugs: the figure runs until the
/// application is in the new sandbox's netns and answers there.
fn sandbox_restarts(s: &Bench, target: &str, sandbox: &str, f: &mut Figures) -> Result<()> {
    let target_ip = s.ip_of(0);
    for _ in 0..SANDBOX_RESTARTS {
        let seen = replug_latencies(&read(&s.log_path), sandbox).len();
        let old = netns_of(&[target])?.remove(0);
        let began = Instant::now();
        docker(&["restart", "-t", "0", sandbox])?;
        f.sb_cmd_ms.push(ms(began));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(v) = netns_of(&[target, sandbox])
                && v[0] == v[1]
                && v[0] != old
            {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "{target} not in the netns of its restarted sandbox after 30 s; {}",
                    s.log_tail()
                );
            }
            sleep(Duration::from_millis(5));
        }
        ensure!(
            s.answers(target_ip, 5)?,
            "{target_ip} did not answer within 5 s of joining its new sandbox; {}",
            s.log_tail()
        );
        f.sb_ms.push(ms(began));
        let deadline = Instant::now() + Duration::from_secs(10);
        while replug_latencies(&read(&s.log_path), sandbox).len() <= seen {
            if Instant::now() > deadline {
                bail!("no {LOG_LINE:?} line for {sandbox}; {}", s.log_tail());
            }
            sleep(Duration::from_millis(20));
        }
    }
    let mut server_ms: Vec<f64> = replug_latencies(&read(&s.log_path), sandbox);
    server_ms.drain(..server_ms.len().saturating_sub(SANDBOX_RESTARTS));
    f.server_ms = server_ms;
    Ok(())
}

fn report(s: &Bench, f: &Figures) {
    let pause = &s.pause;
    println!(
        "dockstack-server benchmark: {N} containers of {TEST_IMAGE} on 1 host (test bed slot {}), {} CPUs",
        s.bed.slot(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("pause image {pause}");
    if f.pause_tags.len() > 1 {
        println!(
            "  (note: {PAUSE_IMAGE} has tags {:?}; the newest was used)",
            f.pause_tags
        );
    }
    if f.sandbox_image != *pause {
        println!(
            "  (note: the server's sandboxes run {}, the plain pairs {pause})",
            f.sandbox_image
        );
    }
    println!();
    report_bring_up(f);
    println!();
    report_app_restarts(f);
    println!();
    report_sandbox_restarts(f);
    println!();
    println!(
        "4. server memory: VmRSS idle {:.1} MiB, with {N} pairs {:.1} MiB, after destroy {:.1} MiB; VmHWM peak {:.1} MiB   (goal peak <= 30 MiB: {})",
        mib(f.rss_idle),
        mib(f.rss_up),
        mib(f.rss_after),
        mib(f.rss_peak),
        goal(mib(f.rss_peak) <= 30.0)
    );
}

fn report_bring_up(f: &Figures) {
    let (a, b, c) = (f.a, median(&f.b_s), median(&f.c_s));
    println!("1. bring-up ({ROUNDS} rounds of (b) and (c), alternating)");
    println!("  (a) 2015: docker run --net=none + ovs-docker add-port, sequential  {a:.2} s");
    println!(
        "  (b) 20 plain pairs in parallel (pause --network none, then app --network container:)  {}",
        stats(&f.b_s, "s", 2)
    );
    println!(
        "  (c) dockstack --jobs 20 run, 20 pairs, until all plugged  {}",
        stats(&f.c_s, "s", 2)
    );
    println!(
        "      dockstack --jobs 20 destroy  {}",
        stats(&f.destroy_s, "s", 2)
    );
    let per_round: Vec<String> = f
        .c_s
        .iter()
        .zip(&f.b_s)
        .map(|(c, b)| format!("{:.2}", c / b))
        .collect();
    println!(
        "  c/b = {:.2}   (goal <= 1.1: {}; per round {})",
        c / b,
        goal(c <= 1.1 * b),
        per_round.join(" ")
    );
    println!(
        "  a/c = {:.2}   (goal >= 2.5: {})",
        a / c,
        goal(a / c >= 2.5)
    );
}

fn report_app_restarts(f: &Figures) {
    println!("2. application restart (docker restart -t 0, {APP_RESTARTS} times)");
    println!(
        "  dockstack container, until its address answers ping  {}",
        stats(&f.app_ms, "ms", 1)
    );
    println!(
        "    of which the docker command                        {}",
        stats(&f.app_cmd_ms, "ms", 1)
    );
    println!(
        "  plain pair's application (--network container:), the docker command  {}",
        stats(&f.pair_ms, "ms", 1)
    );
    println!(
        "  plain container, --network none, the docker command  {}",
        stats(&f.none_ms, "ms", 1)
    );
    let ratio = median(&f.app_ms) / median(&f.pair_ms);
    println!(
        "  dockstack/plain pair = {ratio:.2}   (goal: the same as plain, <= 1.1: {}); dockstack/--network none = {:.2}",
        goal(ratio <= 1.1),
        median(&f.app_ms) / median(&f.none_ms)
    );
    println!(
        "  re-plugs logged during the application restarts: {}   (goal 0: {})",
        f.app_replugs,
        goal(f.app_replugs == 0)
    );
}

fn report_sandbox_restarts(f: &Figures) {
    println!(
        "3. sandbox restart (docker restart -t 0 NAME{SANDBOX_SUFFIX}, {SANDBOX_RESTARTS} times; report only)"
    );
    println!(
        "  until the application answers from the new sandbox  {}",
        stats(&f.sb_ms, "ms", 1)
    );
    println!(
        "    of which the docker command                       {}",
        stats(&f.sb_cmd_ms, "ms", 1)
    );
    println!(
        "  server, start event to re-plugged + application restarted (since_event_ms)  {}",
        stats(&f.server_ms, "ms", 1)
    );
}
