//! Benchmark: the control plane example under load (`examples/controlplane/`
//! on a two-host test bed, real MariaDB Galera, haproxy and keepalived),
//! run several times: apply from nothing, the rolling replacement of the
//! three members under a writer through the VIP (writes attempted and
//! failed, the longest gap, the time an IST donor leaves fewer than two
//! members Synced), a load balancer's stop, a member's restart and crash.
//! Build the binaries first (`cargo build --workspace --bins`); needs root.
//!
//!     bench-controlplane [RUNS]      (default 3)

use std::time::Duration;

use anyhow::{Context, Result};
use dockstack_tests::controlplane::{self, Figures};

fn main() -> Result<()> {
    let runs: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("RUNS is a number")?,
        None => 3,
    };
    let mut all: Vec<Figures> = Vec::new();
    for i in 1..=runs {
        let f = controlplane::run();
        println!("== run {i} of {runs}\n{f}\n");
        all.push(f);
    }
    let row = |what: &str, pick: &dyn Fn(&Figures) -> Duration| {
        let mut v: Vec<Duration> = all.iter().map(pick).collect();
        v.sort();
        println!(
            "| {what} | {:.2} s | {:.2} s | {:.2} s |",
            v[0].as_secs_f64(),
            v[v.len() / 2].as_secs_f64(),
            v[v.len() - 1].as_secs_f64()
        );
    };
    println!("| over {runs} runs | min | median | max |\n|---|---|---|---|");
    row("apply from nothing", &|f| f.apply_from_nothing);
    row("rolling replacement of 3 members", &|f| f.rolling.took);
    row("longest gap between writes, rolling", &|f| {
        f.rolling.writes.longest_gap
    });
    row("fewer than two Synced (IST donor)", &|f| {
        f.rolling.below_two_synced
    });
    row("longest gap, a load balancer's stop", &|f| {
        f.lb_stop.longest_gap
    });
    row("healthy after docker restart", &|f| f.restart);
    row("healthy after SIGKILL of mariadbd", &|f| f.crash);
    let failed: usize = all
        .iter()
        .map(|f| f.rolling.writes.failed + f.lb_stop.failed)
        .sum();
    let attempted: usize = all
        .iter()
        .map(|f| f.rolling.writes.attempted + f.lb_stop.attempted)
        .sum();
    println!(
        "\nwrites failed: {failed} of {attempted} (rolling replacements and load balancer stops)"
    );
    Ok(())
}
