//! Benchmark: `dockstack list` on a generated 1000-container environment,
//! each run a cold process; prints the median and spread. Build the release
//! binaries first (`cargo build --release --workspace --bins`).

use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use dockstack_tests::testbed::find_binary;

const CONTAINERS: usize = 1000;
const HOSTS: usize = 10;
const RUNS: usize = 31;

fn environment() -> String {
    let mut y = String::from("common:\n  domain: bench.lab\ncontainerhosts:\n");
    for h in 0..HOSTS {
        let _ = writeln!(
            y,
            "  host{h}: &host{h}\n    ip: 10.231.250.{}\n    port: 3288",
            h + 1
        );
    }
    y.push_str(
        "containerdefault: &containerdefault\n  image: busybox\n  mask: 16\n  gateway: 10.0.0.1\n  \
         dns: 10.0.0.2\n  domain: bench.lab\n  bridge: br0\n  state: true\n  precreation:\n  \
         postcreation:\n  postdestroy:\ncontainers:\n",
    );
    for i in 0..CONTAINERS {
        let ip = 10 + i;
        let _ = writeln!(
            y,
            "  c{i}:\n    <<: *containerdefault\n    ip: 10.0.{}.{}\n    host: *host{}\n    volumes:\n    - /srv/c{i}/data:/data\n    postcreation:\n    - /usr/local/bin/register c{i} --service web",
            ip / 250,
            ip % 250 + 1,
            i % HOSTS
        );
    }
    y
}

fn main() -> Result<()> {
    let bin = find_binary("dockstack", "DOCKSTACK_BIN")?;
    let dir = std::env::temp_dir().join(format!("dockstack-bench-client-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let env = dir.join("environment.yaml");
    std::fs::write(&env, environment())?;
    let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let began = Instant::now();
        let out = Command::new(&bin)
            .arg("-f")
            .arg(&env)
            .arg("list")
            .output()
            .with_context(|| format!("running {}", bin.display()))?;
        times.push(began.elapsed());
        ensure!(
            out.status.success(),
            "dockstack list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            out.stdout.iter().filter(|b| **b == b'\n').count() == CONTAINERS,
            "dockstack list did not print {CONTAINERS} lines"
        );
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "dockstack list, {CONTAINERS} containers on {HOSTS} hosts, {RUNS} cold runs ({})",
        bin.display()
    );
    println!("  median {:7.1} ms", ms(times[RUNS / 2]));
    println!("  min    {:7.1} ms", ms(times[0]));
    println!("  max    {:7.1} ms", ms(times[RUNS - 1]));
    println!("  goal   {:7.1} ms (median)", 50.0);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
