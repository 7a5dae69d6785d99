//! Benchmark: the control plane example under load (`examples/controlplane/`
//! on a two-host test bed, real MariaDB Galera, haproxy and keepalived),
//! run several times: apply from nothing, the rolling replacement of the
//! three members under a writer through the VIP (writes attempted and
//! failed, the longest gap, the time an IST donor leaves fewer than two
//! members Synced), a load balancer's stop, a member's restart and crash.
//! With `whole`, the whole example instead (with RabbitMQ, memcached and
//! keystone): apply from nothing, one rolling apply of every Galera,
//! RabbitMQ and keystone member under the writer, a client issuing a token
//! through the VIP every 100 ms and a publisher, and a power loss (every
//! process of every container SIGKILLed at once) measured to each cluster
//! formed and to the first token through the VIP.
//! Build the binaries first (`cargo build --workspace --bins`); needs root.
//!
//!     bench-controlplane [RUNS]         (default 3)
//!     bench-controlplane whole [RUNS]   (default 1)

use std::time::Duration;

use anyhow::{Context, Result};
use dockstack_tests::controlplane::{self, Figures};
use dockstack_tests::whole;

fn runs(arg: Option<String>, default: usize) -> Result<usize> {
    match arg {
        Some(n) => n.parse().context("RUNS is a number"),
        None => Ok(default),
    }
}

/// `| what | min | median | max |` of `values`.
fn row(what: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "| {what} | {:.2} s | {:.2} s | {:.2} s |",
        v[0].as_secs_f64(),
        v[v.len() / 2].as_secs_f64(),
        v[v.len() - 1].as_secs_f64()
    );
}

/// One figure of a run of the whole control plane.
type Figure = fn(&whole::Figures) -> Duration;

fn whole_bench(runs: usize) {
    let mut all: Vec<whole::Figures> = Vec::new();
    for i in 1..=runs {
        let f = whole::run();
        println!("== run {i} of {runs}\n{f}\n");
        all.push(f);
    }
    println!("| over {runs} runs | min | median | max |\n|---|---|---|---|");
    let rows: [(&str, Figure); 9] = [
        ("apply from nothing", |f| f.apply_from_nothing),
        (
            "rolling apply of 3 Galera, 3 RabbitMQ, 2 keystone members",
            |f| f.rolling.took,
        ),
        ("longest gap between INSERTs, rolling", |f| {
            f.rolling.clients.writes.longest_gap
        }),
        ("longest gap between tokens, rolling", |f| {
            f.rolling.clients.tokens.longest_gap
        }),
        ("longest gap between messages, rolling", |f| {
            f.rolling.clients.publishes.longest_gap
        }),
        ("power loss: Galera's three Synced", |f| {
            f.power_loss.galera_back
        }),
        ("power loss: RabbitMQ's three running", |f| {
            f.power_loss.rabbit_back
        }),
        ("power loss: the first token through the VIP", |f| {
            f.power_loss.first_token
        }),
        ("power loss: every container healthy", |f| {
            f.power_loss.healthy
        }),
    ];
    for (what, figure) in rows {
        row(what, all.iter().map(figure).collect());
    }
    let sum =
        |f: &dyn Fn(&whole::Rolling) -> usize| -> usize { all.iter().map(|r| f(&r.rolling)).sum() };
    println!(
        "\nfailed during the rolling applies: INSERTs {} of {}, tokens {} of {}, messages {} of {}",
        sum(&|r| r.clients.writes.failed),
        sum(&|r| r.clients.writes.attempted),
        sum(&|r| r.clients.tokens.failed),
        sum(&|r| r.clients.tokens.attempted),
        sum(&|r| r.clients.publishes.failed),
        sum(&|r| r.clients.publishes.attempted)
    );
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("whole") {
        args.next();
        whole_bench(runs(args.next(), 1)?);
        return Ok(());
    }
    let runs = runs(args.next(), 3)?;
    let mut all: Vec<Figures> = Vec::new();
    for i in 1..=runs {
        let f = controlplane::run();
        println!("== run {i} of {runs}\n{f}\n");
        all.push(f);
    }
    let pick = |f: &dyn Fn(&Figures) -> Duration| all.iter().map(f).collect();
    println!("| over {runs} runs | min | median | max |\n|---|---|---|---|");
    row("apply from nothing", pick(&|f| f.apply_from_nothing));
    row(
        "rolling replacement of 3 members",
        pick(&|f| f.rolling.took),
    );
    row(
        "longest gap between writes, rolling",
        pick(&|f| f.rolling.writes.longest_gap),
    );
    row(
        "fewer than two Synced (IST donor)",
        pick(&|f| f.rolling.below_two_synced),
    );
    row(
        "longest gap, a load balancer's stop",
        pick(&|f| f.lb_stop.longest_gap),
    );
    row("healthy after docker restart", pick(&|f| f.restart));
    row("healthy after SIGKILL of mariadbd", pick(&|f| f.crash));
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
