//! bench-server: times 20 containers the 2015 way (`docker run` + `ovs-docker`, one after the other), as plain parallel `docker run`s, and through dockstack; reports the server's memory and its event-to-replug latency.
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
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use dockstack_tests::testbed::{
    BedContainer, BedOptions, TEST_IMAGE, TestBed, docker, ensure_test_image, tail,
};

/// Containers per phase.
const N: u32 = 20;
/// `docker restart`s for the re-plug latency.
const RESTARTS: usize = 10;
const LOG_LINE: &str = "re-plugged after start event";

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

/// A field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
fn proc_status_kib(pid: u32, field: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
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

fn stats(v: &[f64]) -> String {
    if v.is_empty() {
        return "no samples".into();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    format!(
        "min {:.1}  median {:.1}  max {:.1} ms (n={})",
        s[0],
        s[s.len() / 2],
        s[s.len() - 1],
        s.len()
    )
}

fn bench() -> Result<()> {
    ensure_test_image()?;
    let bed = TestBed::new(BedOptions::hosts(1))?;
    let host = bed.host(0);
    let ns = host.netns().to_string();
    let prefix = bed.gateway().prefix();
    let gw = bed.gateway().ip().to_string();
    let pid: u32 = fs::read_to_string(host.rundir().join("server.pid"))?
        .trim()
        .parse()?;
    let names = |tag: &str| -> Vec<String> {
        (0..N)
            .map(|k| bed.container_name(&format!("{tag}{k:02}")))
            .collect()
    };
    let ip = |k: usize| bed.subnet_ip(100 + u32::try_from(k).expect("few containers"));
    // Warm dockerd's caches for the image, so the first phase pays no more than the others.
    let warm = bed.container_name("warm");
    docker(&["run", "-d", "--net=none", "--name", &warm, TEST_IMAGE])?;
    docker(&["rm", "-f", &warm])?;
    let rss_idle = proc_status_kib(pid, "VmRSS")?;

    // (a) The 2015 recipe: docker run, then ovs-docker add-port, one by one.
    // ovs-docker's ovs-vsctl finds the host's OVSDB through OVS_RUNDIR.
    let a_names = names("a");
    let ovs_docker = |args: &[&str]| -> Result<String> {
        run(Command::new("ip")
            .args(["netns", "exec", &ns, "env"])
            .arg(format!("OVS_RUNDIR={}", host.rundir().display()))
            .arg("ovs-docker")
            .args(args))
    };
    let began = Instant::now();
    for (k, name) in a_names.iter().enumerate() {
        docker(&["run", "-d", "--net=none", "--name", name, TEST_IMAGE])?;
        ovs_docker(&[
            "add-port",
            bed.bridge(),
            "eth0",
            name,
            &format!("--ipaddress={}/{prefix}", ip(k)),
            &format!("--gateway={gw}"),
        ])?;
    }
    let a = began.elapsed();
    ensure!(
        bed.ovs_ports(0).len() == N as usize,
        "ovs-docker made {} ports, not {N}",
        bed.ovs_ports(0).len()
    );
    ensure!(bed.ping_from_host(0, ip(0)), "{} does not answer", ip(0));
    for name in &a_names {
        ovs_docker(&["del-ports", bed.bridge(), name])?;
    }
    let mut rm = vec!["rm", "-f"];
    rm.extend(a_names.iter().map(String::as_str));
    docker(&rm)?;

    // (b) Plain parallel docker runs: how fast dockerd itself goes.
    let b_names = names("b");
    let began = Instant::now();
    let children = b_names
        .iter()
        .map(|name| {
            Command::new("docker")
                .args(["run", "-d", "--net=none", "--name", name, TEST_IMAGE])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    for child in children {
        let out = child.wait_with_output()?;
        ensure!(
            out.status.success(),
            "docker run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let b = began.elapsed();
    let mut rm = vec!["rm", "-f"];
    rm.extend(b_names.iter().map(String::as_str));
    docker(&rm)?;

    // (c) dockstack: 20 containers, 20 at once, until all are plugged.
    let c_names = names("c");
    let containers: Vec<BedContainer> = c_names
        .iter()
        .enumerate()
        .map(|(k, name)| BedContainer::new(name, 0, ip(k)))
        .collect();
    let env = bed.write_environment(&containers);
    let dockstack = |action: &str| -> Result<String> {
        let mut cmd = bed.client_command();
        cmd.arg("-f").arg(&env).args(["--jobs", "20", action]);
        run(&mut cmd)
    };
    let began = Instant::now();
    dockstack("run")?;
    let c = began.elapsed();
    ensure!(
        bed.ovs_ports(0).len() == N as usize,
        "dockstack made {} ports, not {N}",
        bed.ovs_ports(0).len()
    );

    // Event to re-plug: docker restart one of them, again and again.
    let target = &c_names[0];
    let log_path = host.server_log();
    let mut client_ms = Vec::new();
    for _ in 0..RESTARTS {
        let seen = replug_latencies(&read(&log_path), target).len();
        docker(&["restart", "-t", "0", target])?;
        let restarted = Instant::now();
        // One ping process that sends every 2 ms and ends at the first answer.
        let answered = Command::new("ip")
            .args([
                "netns", "exec", &ns, "ping", "-n", "-q", "-i", "0.002", "-c", "1",
            ])
            .args(["-w", "5", &ip(0).to_string()])
            .stdout(Stdio::null())
            .status()?
            .success();
        ensure!(
            answered,
            "{} did not answer within 5 s of its restart; last lines of {}:\n{}",
            ip(0),
            log_path.display(),
            tail(&log_path, 30)
        );
        client_ms.push(restarted.elapsed().as_secs_f64() * 1e3);
        let deadline = Instant::now() + Duration::from_secs(5);
        while replug_latencies(&read(&log_path), target).len() <= seen {
            if Instant::now() > deadline {
                bail!(
                    "no {LOG_LINE:?} line for {target}; last lines of {}:\n{}",
                    log_path.display(),
                    tail(&log_path, 30)
                );
            }
            sleep(Duration::from_millis(20));
        }
    }
    let server_ms: Vec<f64> = replug_latencies(&read(&log_path), target)
        .into_iter()
        .rev()
        .take(RESTARTS)
        .collect();

    let began = Instant::now();
    dockstack("destroy")?;
    let c_destroy = began.elapsed();
    ensure!(bed.ovs_ports(0).is_empty(), "destroy left ports");
    let rss_peak = proc_status_kib(pid, "VmHWM")?;
    let rss_after = proc_status_kib(pid, "VmRSS")?;

    let (ca, cb) = (secs(c), secs(b));
    let goal = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "dockstack-server benchmark: {N} containers of {TEST_IMAGE} on 1 host (test bed slot {}), {} CPUs",
        bed.slot(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    println!("{:<58} {:>9}", "phase", "wall time");
    println!(
        "{:<58} {:>7.2} s",
        "(a) 2015: docker run + ovs-docker add-port, sequential",
        secs(a)
    );
    println!(
        "{:<58} {:>7.2} s",
        "(b) docker run --net=none, 20 in parallel", cb
    );
    println!(
        "{:<58} {:>7.2} s",
        "(c) dockstack --jobs 20 run (until all plugged)", ca
    );
    println!(
        "{:<58} {:>7.2} s",
        "    dockstack --jobs 20 destroy",
        secs(c_destroy)
    );
    println!();
    println!(
        "c/b = {:.2}   (goal <= 1.2: {})",
        ca / cb,
        goal(ca <= 1.2 * cb)
    );
    println!(
        "a/c = {:.2}   (goal >= 2.5: {})",
        secs(a) / ca,
        goal(secs(a) / ca >= 2.5)
    );
    println!(
        "server memory: VmRSS idle {:.1} MiB, VmRSS after {:.1} MiB, VmHWM peak {:.1} MiB   (goal peak <= 30 MiB: {})",
        mib(rss_idle),
        mib(rss_after),
        mib(rss_peak),
        goal(mib(rss_peak) <= 30.0)
    );
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        s.get(s.len() / 2).copied().unwrap_or(f64::INFINITY)
    };
    println!(
        "re-plug after docker restart, server (since_event_ms): {}   (goal <= 100 ms: {})",
        stats(&server_ms),
        goal(median(&server_ms) <= 100.0)
    );
    println!(
        "re-plug after docker restart, client (restart returned -> ping answers): {}",
        stats(&client_ms)
    );
    bed.teardown()
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_default()
}
