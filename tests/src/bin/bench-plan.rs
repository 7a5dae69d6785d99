//! Benchmark: `dockstack plan` against 100 containers on 2 bed hosts (the
//! median of 5 runs, with nothing to do and with changes pending), and how
//! long a recreated container's address goes unanswered during `apply`.
//! Build the release binaries first (`cargo build --release --workspace
//! --bins`), then `cargo run --release -p dockstack-tests --bin bench-plan`.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use dockstack_tests::bench::timed;
use dockstack_tests::support::PingLoop;
use dockstack_tests::testbed::{
    BedContainer, BedOptions, TEST_IMAGE, TestBed, docker, ensure_test_image,
};

const CONTAINERS: u32 = 100;
const RUNS: usize = 5;

fn main() -> ExitCode {
    match bench() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-plan: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn median_of(bed: &TestBed, env: &std::path::Path, want: i32) -> Result<Vec<Duration>> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let (code, took) = timed(bed, env, &["plan"])?;
        ensure!(code == Some(want), "plan exited {code:?}, want {want}");
        times.push(took);
    }
    times.sort();
    Ok(times)
}

/// The longest time `ip` went unanswered from host `i` while `during` ran.
fn outage_during(
    bed: &TestBed,
    i: usize,
    ip: Ipv4Addr,
    during: impl FnOnce() -> Result<()>,
) -> Result<Duration> {
    let ping = PingLoop::start(bed, i, ip, Duration::from_millis(50));
    std::thread::sleep(Duration::from_millis(300));
    let result = during();
    std::thread::sleep(Duration::from_millis(500));
    let longest = ping.longest_outage();
    result.map(|()| longest)
}

fn bench() -> Result<()> {
    ensure_test_image()?;
    let bed = TestBed::new(BedOptions::hosts(2))?;
    let containers: Vec<BedContainer> = (0..CONTAINERS)
        .map(|k| {
            BedContainer::new(
                bed.container_name(&format!("p{k:03}")),
                usize::try_from(k % 2).unwrap_or(0),
                bed.subnet_ip(20 + k),
            )
        })
        .collect();
    let env = bed.write_environment(&containers);
    let began = Instant::now();
    timed(&bed, &env, &["apply", "--yes"])?;
    let apply_all = began.elapsed();
    let idle = median_of(&bed, &env, 0)?;

    let v2 = format!("dockstack-test-busybox:bench-{}", bed.slot());
    docker(&["tag", TEST_IMAGE, &v2])?;
    let mut changed = containers.clone();
    changed[0].image = v2.clone();
    let env2 = bed.write_environment(&changed);
    let pending = median_of(&bed, &env2, 3)?;
    let outage = outage_during(&bed, 1, containers[0].ip, || {
        timed(&bed, &env2, &["apply", "--yes"]).map(drop)
    })?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("dockstack plan, {CONTAINERS} containers on 2 hosts, {RUNS} runs each");
    println!(
        "  apply of all {CONTAINERS} (create)      {:8.1} ms",
        ms(apply_all)
    );
    println!(
        "  plan, nothing to do: median {:7.1} ms (min {:.1}, max {:.1})",
        ms(idle[RUNS / 2]),
        ms(idle[0]),
        ms(idle[RUNS - 1])
    );
    println!(
        "  plan, one recreate:  median {:7.1} ms (min {:.1}, max {:.1})",
        ms(pending[RUNS / 2]),
        ms(pending[0]),
        ms(pending[RUNS - 1])
    );
    println!(
        "  recreate of one container: its address unanswered for {:.0} ms at most (goal < 1000)",
        ms(outage)
    );
    timed(&bed, &env2, &["destroy"])?;
    let _ = docker(&["rmi", &v2]);
    bed.teardown()?;
    Ok(())
}
