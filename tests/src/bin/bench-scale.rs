//! bench-scale: a control plane's size, 200 containers with their
//! sandboxes on 4 bed hosts (50 each), measured in one run:
//!
//! 1. `dockstack run` of the whole file against the same Docker work (a
//!    pause container with no network and an application in its netns, 200
//!    pairs) done by plain `docker run`s, as many at once as dockstack's;
//! 2. `status` of all 200 and `plan` with nothing to do (medians of 5);
//! 3. every server's RSS at rest with its 50 pairs;
//! 4. a storm: every process of host 0's 100 containers SIGKILLed at once
//!    (`restart: always`), then the time until all 50 addresses answer
//!    again, from the kill and from Docker's last restart of a sandbox;
//! 5. host 1's server SIGKILLed and started again: its start-up
//!    reconcile of 50 pairs (its own log line);
//! 6. `destroy` of all 200, then nothing left on any host.
//!
//! Build the release binaries first (`cargo build --release --workspace
//! --bins`), then `cargo run --release -p dockstack-tests --bin bench-scale`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail, ensure};
use dockstack_tests::bench::{pause_image, proc_status_kib, remove_containers, timed};
use dockstack_tests::testbed::{
    BedContainer, BedOptions, TEST_IMAGE, TestBed, docker, ensure_test_image,
};

/// Bed hosts and containers on each; BENCH_SCALE_HOSTS (at least 2) and
/// BENCH_SCALE_PER_HOST make a smaller bed for trying it out.
const HOSTS: usize = 4;
const PER_HOST: usize = 50;
/// Containers handled at once on each host by `dockstack --jobs`; the
/// plain runs get as many at once in all (hosts times `JOBS`).
const JOBS: usize = 8;
const RUNS: usize = 5;

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-scale: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn medians(bed: &TestBed, env: &Path, args: &[&str], want: i32) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let (code, took) = timed(bed, env, args)?;
        ensure!(code == Some(want), "{args:?} exited {code:?}, want {want}");
        times.push(took);
    }
    times.sort();
    Ok(times)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn goal(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

/// Runs `work` on each item, `width` at a time.
fn in_parallel<T: Sync>(
    items: &[T],
    width: usize,
    work: impl Fn(&T) -> Result<()> + Sync,
) -> Result<()> {
    let next = Mutex::new(0usize);
    let errors = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..width {
            s.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().unwrap_or_else(|e| e.into_inner());
                        *n += 1;
                        *n - 1
                    };
                    let Some(item) = items.get(i) else { break };
                    if let Err(e) = work(item) {
                        errors.lock().unwrap_or_else(|e| e.into_inner()).push(e);
                    }
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap_or_default();
    match errors.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The plain pairs, `width` at a time: the pause container without
/// network, then the application in its netns. Their wall time.
fn plain_pairs(names: &[String], pause: &str, width: usize) -> Result<Duration> {
    let began = Instant::now();
    in_parallel(names, width, |app| {
        let sb = format!("{app}-pause");
        docker(&["run", "-d", "--network", "none", "--name", &sb, pause])?;
        let net = format!("container:{sb}");
        docker(&["run", "-d", "--network", &net, "--name", app, TEST_IMAGE])?;
        Ok(())
    })?;
    Ok(began.elapsed())
}

/// Whether `ip` answers a ping from host `i`'s namespace within `within`.
fn answers(bed: &TestBed, i: usize, ip: Ipv4Addr, within: Duration) -> Result<bool> {
    Ok(Command::new("ip")
        .args(["netns", "exec", bed.host(i).netns()])
        .args(["ping", "-n", "-q", "-i", "0.005", "-c", "1", "-w"])
        .arg(within.as_secs().max(1).to_string())
        .arg(ip.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success())
}

/// Each plugged container's host end on host `i`, by container: its
/// ifindex (the alias netplug gives it names the container).
fn host_ends(bed: &TestBed, i: usize) -> Result<HashMap<String, u32>> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            bed.host(i).netns(),
            "ip",
            "-o",
            "link",
            "show",
            "type",
            "veth",
        ])
        .output()?;
    ensure!(out.status.success(), "ip link show in host {i}");
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let index = l.split(':').next()?.trim().parse().ok()?;
            let owner = l.split("alias netplug ").nth(1)?;
            let container = owner.split('/').next()?.trim();
            Some((container.to_string(), index))
        })
        .collect())
}

/// After the storm: for each container, waits for its new host end (the
/// old one goes with its namespace), then for its address to answer;
/// when each did, from `since`, by container.
fn answer_again(
    bed: &TestBed,
    i: usize,
    containers: &[&BedContainer],
    before: &HashMap<String, u32>,
    since: Instant,
) -> Result<HashMap<String, Duration>> {
    let deadline = since + Duration::from_secs(60);
    let answered = Mutex::new(Vec::new());
    let mut waiting: Vec<&BedContainer> = containers.to_vec();
    std::thread::scope(|s| -> Result<()> {
        let mut pings = Vec::new();
        while !waiting.is_empty() {
            ensure!(
                Instant::now() < deadline,
                "{} containers not plugged again within 60 s: {:?}",
                waiting.len(),
                waiting.iter().map(|c| &c.name).collect::<Vec<_>>()
            );
            let now = host_ends(bed, i)?;
            let (ready, rest): (Vec<&BedContainer>, Vec<&BedContainer>) =
                waiting.iter().partition(|c| {
                    now.get(&c.name)
                        .is_some_and(|ix| before.get(&c.name) != Some(ix))
                });
            waiting = rest;
            for c in ready {
                let answered = &answered;
                pings.push(s.spawn(move || -> Result<()> {
                    ensure!(
                        answers(bed, i, c.ip, Duration::from_secs(30))?,
                        "{} ({}) plugged again but does not answer",
                        c.name,
                        c.ip
                    );
                    answered
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((c.name.clone(), since.elapsed()));
                    Ok(())
                }));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        for p in pings {
            p.join().expect("a ping thread panicked")?;
        }
        Ok(())
    })?;
    Ok(answered
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .collect())
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Kills every process of `containers` at once (SIGKILL to each main
/// process: the engine counts `docker kill` as a manual stop, which no
/// restart policy undoes).
fn kill_all(containers: &[String]) -> Result<()> {
    let mut args = vec!["inspect", "-f", "{{.State.Pid}}"];
    args.extend(containers.iter().map(String::as_str));
    let pids: Vec<i32> = docker(&args)?
        .lines()
        .map(|l| l.trim().parse().context("a pid"))
        .collect::<Result<_>>()?;
    ensure!(pids.iter().all(|p| *p > 0), "a container is not running");
    for pid in pids {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        )
        .with_context(|| format!("kill {pid}"))?;
    }
    Ok(())
}

/// The `duration_ms` of the last "start-up reconcile done" line of a
/// server log (text format: `duration_ms=12.3`).
fn reconcile_ms(log: &str) -> Option<f64> {
    log.lines()
        .rev()
        .find(|l| l.contains("start-up reconcile done"))
        .and_then(|l| l.split("duration_ms=").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// What the storm on host 0 measured.
struct Storm {
    /// Processes SIGKILLed.
    victims: usize,
    /// When each address answered again, from the kill; sorted.
    answered: Vec<Duration>,
    /// The server's own start-event-to-plug figures; sorted.
    since_event: Vec<f64>,
    /// Where the server's log of the storm is kept.
    kept: PathBuf,
    /// Per container, from Docker's restart of its sandbox to its answer; sorted.
    own: Vec<Duration>,
    after_last_start: Duration,
    docker_restarts: Duration,
    first_after_kill: Duration,
}

/// Every figure of the report.
struct Figures {
    hosts: usize,
    per_host: usize,
    plain_took: Duration,
    run_took: Duration,
    status: Vec<Duration>,
    plan: Vec<Duration>,
    /// Each server's (VmRSS, VmHWM) in KiB.
    rss: Vec<(u64, u64)>,
    storm: Storm,
    reconcile: f64,
    kept_restart: PathBuf,
    destroy_took: Duration,
    left: Vec<String>,
}

/// BENCH_SCALE_HOSTS (at least 2) and BENCH_SCALE_PER_HOST, else the full size.
fn scale() -> (usize, usize) {
    let per_host: usize = std::env::var("BENCH_SCALE_PER_HOST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(PER_HOST);
    let hosts: usize = std::env::var("BENCH_SCALE_HOSTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(HOSTS)
        .max(2);
    (hosts, per_host)
}

fn bench() -> Result<()> {
    let (hosts, per_host) = scale();
    ensure_test_image()?;
    let mut opts = BedOptions::hosts(hosts);
    if let Ok(filter) = std::env::var("BENCH_SCALE_SERVER_LOG") {
        opts.server_env.push(("RUST_LOG".into(), filter));
    }
    let mut bed = TestBed::new(opts)?;
    let (pause, _) = pause_image()?;
    let containers: Vec<BedContainer> = (0..hosts * per_host)
        .map(|k| {
            let n = u32::try_from(k).unwrap_or(0);
            BedContainer::new(
                bed.container_name(&format!("s{k:03}")),
                k % hosts,
                bed.subnet_ip(20 + n),
            )
            .with_yaml("restart: always")
        })
        .collect();
    let env = bed.write_environment(&containers);
    // Warm dockerd for both images.
    let warm = bed.container_name("warm");
    for image in [TEST_IMAGE, pause.as_str()] {
        docker(&["run", "-d", "--net=none", "--name", &warm, image])?;
        docker(&["rm", "-f", &warm])?;
    }

    let (plain_took, run_took) = bring_up(&bed, &env, &pause, hosts, per_host)?;

    // 2. status and plan.
    let jobs = JOBS.to_string();
    let status = medians(&bed, &env, &["--jobs", &jobs, "status"], 0)?;
    let plan = medians(&bed, &env, &["--jobs", &jobs, "plan"], 0)?;

    // 3. RSS at rest.
    std::thread::sleep(Duration::from_secs(2));
    let mut rss = Vec::new();
    for i in 0..hosts {
        let pid = bed.host(i).server_pid()?;
        rss.push((
            proc_status_kib(pid, "VmRSS")?,
            proc_status_kib(pid, "VmHWM")?,
        ));
    }

    let storm = storm(&bed, &containers)?;
    let (reconcile, kept_restart) = restart_server(&mut bed, &containers)?;
    let (destroy_took, left) = destroy(&bed, &env, hosts)?;

    let figures = Figures {
        hosts,
        per_host,
        plain_took,
        run_took,
        status,
        plan,
        rss,
        storm,
        reconcile,
        kept_restart,
        destroy_took,
        left,
    };
    report(&figures);
    ensure!(
        figures.left.is_empty(),
        "destroy left {}",
        figures.left.join("; ")
    );
    bed.teardown()?;
    Ok(())
}

/// Phase 1: plain pairs, then dockstack's run of the same; their wall times.
fn bring_up(
    bed: &TestBed,
    env: &Path,
    pause: &str,
    hosts: usize,
    per_host: usize,
) -> Result<(Duration, Duration)> {
    let plain: Vec<String> = (0..hosts * per_host)
        .map(|k| bed.container_name(&format!("plain{k:03}")))
        .collect();
    let plain_took = plain_pairs(&plain, pause, hosts * JOBS)?;
    let mut all_plain = plain.clone();
    all_plain.extend(plain.iter().map(|p| format!("{p}-pause")));
    remove_containers(&all_plain)?;
    let jobs = JOBS.to_string();
    let (_, run_took) = timed(bed, env, &["--jobs", &jobs, "run"])?;
    for i in 0..hosts {
        let apps = bed.managed_apps(i);
        ensure!(
            apps.len() == per_host,
            "host {i} runs {} containers, not {per_host}",
            apps.len()
        );
    }
    Ok((plain_took, run_took))
}

/// Phase 4: the storm on host 0.
fn storm(bed: &TestBed, containers: &[BedContainer]) -> Result<Storm> {
    let on0: Vec<&BedContainer> = containers.iter().filter(|c| c.host == 0).collect();
    // Sandboxes first: an application Docker restarts before its sandbox
    // dies would hold the old namespace, and its address, up.
    let mut victims: Vec<String> = on0
        .iter()
        .map(|c| format!("{}.dockstack-sandbox", c.name))
        .collect();
    victims.extend(on0.iter().map(|c| c.name.clone()));
    let before = host_ends(bed, 0)?;
    ensure!(
        on0.iter().all(|c| before.contains_key(&c.name)),
        "a container of host 0 has no host end before the storm"
    );
    let killed = Instant::now();
    let killed_ns = now_ns();
    kill_all(&victims)?;
    let log_before = bed.server_log(0).len();
    let by_name = answer_again(bed, 0, &on0, &before, killed)?;
    let mut answered: Vec<Duration> = by_name.values().copied().collect();
    answered.sort();
    // The server's own account: from each sandbox's start event to its
    // plug, ahead of its pair's sync or by it.
    let mut since_event: Vec<f64> = bed.server_log(0)[log_before..]
        .lines()
        .filter(|l| {
            l.contains("sandbox plugged after its start event")
                || l.contains("re-plugged after start event")
        })
        .filter_map(|l| l.split("since_event_ms=").nth(1))
        .filter_map(|v| v.split_whitespace().next()?.parse().ok())
        .collect();
    since_event.sort_by(f64::total_cmp);
    let kept = std::env::temp_dir().join("bench-scale-storm.log");
    std::fs::write(&kept, &bed.server_log(0)[log_before..])?;
    let mut storm = Storm {
        victims: victims.len(),
        answered,
        since_event,
        kept,
        own: Vec::new(),
        after_last_start: Duration::ZERO,
        docker_restarts: Duration::ZERO,
        first_after_kill: Duration::ZERO,
    };
    sandbox_restarts(&on0, killed_ns, &by_name, &mut storm)?;
    Ok(storm)
}

/// The storm seen from Docker: when it restarted each sandbox (all of them
/// after the kill), and from then to each container's answer.
fn sandbox_restarts(
    on0: &[&BedContainer],
    killed_ns: u128,
    by_name: &HashMap<String, Duration>,
    storm: &mut Storm,
) -> Result<()> {
    let answered_ns = killed_ns + storm.answered.last().map_or(0, Duration::as_nanos);
    let sandboxes: Vec<String> = on0
        .iter()
        .map(|c| format!("{}.dockstack-sandbox", c.name))
        .collect();
    let mut args = vec!["inspect", "-f", "{{.State.StartedAt}}"];
    args.extend(sandboxes.iter().map(String::as_str));
    let sandbox_starts: Vec<u128> = docker(&args)?
        .lines()
        .map(|l| {
            let t = time::OffsetDateTime::parse(
                l.trim(),
                &time::format_description::well_known::Rfc3339,
            )
            .with_context(|| format!("StartedAt {l:?}"))?;
            Ok(u128::try_from(t.unix_timestamp_nanos()).unwrap_or(0))
        })
        .collect::<Result<_>>()?;
    let stale: Vec<String> = sandboxes
        .iter()
        .zip(&sandbox_starts)
        .filter(|(_, t)| **t <= killed_ns)
        .map(|(name, t)| {
            format!(
                "{name} started {} ms before the kill",
                (killed_ns - t) / 1_000_000
            )
        })
        .collect();
    ensure!(
        stale.is_empty(),
        "not restarted after the kill: {}",
        stale.join(", ")
    );
    // Per container: from Docker's restart of its sandbox to its answer.
    let mut own: Vec<Duration> = sandboxes
        .iter()
        .zip(&sandbox_starts)
        .filter_map(|(sb, started)| {
            let name = sb.strip_suffix(".dockstack-sandbox")?;
            let at = killed_ns + by_name.get(name)?.as_nanos();
            Some(Duration::from_nanos(
                u64::try_from(at.saturating_sub(*started)).unwrap_or(u64::MAX),
            ))
        })
        .collect();
    own.sort();
    storm.own = own;
    let first_start = sandbox_starts.iter().min().copied().unwrap_or(killed_ns);
    let last_start = sandbox_starts.iter().max().copied().unwrap_or(killed_ns);
    storm.after_last_start = Duration::from_nanos(
        u64::try_from(answered_ns.saturating_sub(last_start)).unwrap_or(u64::MAX),
    );
    storm.docker_restarts = Duration::from_nanos(
        u64::try_from(last_start.saturating_sub(first_start)).unwrap_or(u64::MAX),
    );
    storm.first_after_kill = Duration::from_nanos(
        u64::try_from(first_start.saturating_sub(killed_ns)).unwrap_or(u64::MAX),
    );
    Ok(())
}

/// Phase 5, host 1's server killed and started again: its start-up reconcile's
/// `duration_ms`, and where its log from that start is kept.
fn restart_server(bed: &mut TestBed, containers: &[BedContainer]) -> Result<(f64, PathBuf)> {
    bed.kill_server(1)?;
    let restart_log_from = bed.server_log(1).len();
    bed.start_server(1)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let reconcile = loop {
        if let Some(v) = reconcile_ms(&bed.server_log(1)) {
            break v;
        }
        if Instant::now() > deadline {
            bail!("no start-up reconcile line in host 1's log");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let kept_restart = std::env::temp_dir().join("bench-scale-restart.log");
    std::fs::write(&kept_restart, &bed.server_log(1)[restart_log_from..])?;
    for c in containers.iter().filter(|c| c.host == 1) {
        ensure!(
            answers(bed, 1, c.ip, Duration::from_secs(5))?,
            "{} does not answer after host 1's server restarted",
            c.name
        );
    }
    Ok((reconcile, kept_restart))
}

/// Phase 6, destroy: its wall time, and what it left behind.
fn destroy(bed: &TestBed, env: &Path, hosts: usize) -> Result<(Duration, Vec<String>)> {
    let jobs = JOBS.to_string();
    let (_, destroy_took) = timed(bed, env, &["--jobs", &jobs, "destroy"])?;
    let mut left = Vec::new();
    for i in 0..hosts {
        let c = bed.managed_containers(i);
        let p = bed.ovs_ports(i);
        if !c.is_empty() || !p.is_empty() {
            left.push(format!("host {i}: containers {c:?}, ports {p:?}"));
        }
    }
    let veths = bed.root_veths();
    if !veths.is_empty() {
        left.push(format!("veths {veths:?}"));
    }
    Ok((destroy_took, left))
}

fn report(f: &Figures) {
    let (hosts, per_host) = (f.hosts, f.per_host);
    let n = hosts * per_host;
    println!(
        "bench-scale: {n} containers with their sandboxes on {hosts} hosts ({per_host} each); {} CPUs",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let ratio = f.run_took.as_secs_f64() / f.plain_took.as_secs_f64();
    println!(
        "  run of all {n}: {:.1} s; the same Docker work as plain parallel docker runs ({} at once): {:.1} s; ratio {ratio:.2} (goal <= 1.2: {})",
        f.run_took.as_secs_f64(),
        hosts * JOBS,
        f.plain_took.as_secs_f64(),
        goal(ratio <= 1.2)
    );
    let show = |what: &str, v: &[Duration], goal_ms: f64| {
        println!(
            "  {what}: median {:.1} ms (min {:.1}, max {:.1}) (goal <= {goal_ms:.0} ms: {})",
            ms(v[RUNS / 2]),
            ms(v[0]),
            ms(v[RUNS - 1]),
            goal(ms(v[RUNS / 2]) <= goal_ms)
        );
    };
    show(&format!("status of {n}"), &f.status, 1000.0);
    show("plan, nothing to do", &f.plan, 1000.0);
    for (i, (now, peak)) in f.rss.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let (now, peak) = (*now as f64 / 1024.0, *peak as f64 / 1024.0);
        println!(
            "  host {i} server with {per_host} pairs: VmRSS {now:.1} MiB at rest, VmHWM {peak:.1} MiB (goal <= 30 MiB: {})",
            goal(now <= 30.0)
        );
    }
    report_storm(&f.storm, per_host);
    println!(
        "  host 1's server SIGKILLed and started: start-up reconcile of {per_host} pairs {:.1} ms (goal <= 1000 ms: {})",
        f.reconcile,
        goal(f.reconcile <= 1000.0)
    );
    println!(
        "  (host 1's server log from that start: {})",
        f.kept_restart.display()
    );
    println!(
        "  destroy of all {n}: {:.1} s; left behind: {}",
        f.destroy_took.as_secs_f64(),
        if f.left.is_empty() {
            "nothing".to_string()
        } else {
            f.left.join("; ")
        }
    );
}

fn report_storm(s: &Storm, per_host: usize) {
    let answered = &s.answered;
    println!(
        "  storm on host 0, {} processes SIGKILLed: Docker restarted the first sandbox {:.0} ms after the kill and the last {:.0} ms after the first; all {per_host} addresses answered {:.0} ms after the kill, {:.0} ms after Docker's last sandbox restart (goal <= 3000 ms: {}); median address back {:.0} ms after the kill",
        s.victims,
        ms(s.first_after_kill),
        ms(s.docker_restarts),
        ms(*answered.last().unwrap_or(&Duration::ZERO)),
        ms(s.after_last_start),
        goal(ms(s.after_last_start) <= 3000.0),
        ms(answered[answered.len() / 2])
    );
    let (own, since_event) = (&s.own, &s.since_event);
    println!(
        "  storm, each container from Docker's restart of its sandbox to its answer: median {:.0} ms, max {:.0} ms; the server's log, start event to plug: median {:.0} ms, max {:.0} ms",
        ms(own[own.len() / 2]),
        ms(*own.last().unwrap_or(&Duration::ZERO)),
        since_event
            .get(since_event.len() / 2)
            .copied()
            .unwrap_or(f64::NAN),
        since_event.last().copied().unwrap_or(f64::NAN)
    );
    println!("  (host 0's server log of the storm: {})", s.kept.display());
}
