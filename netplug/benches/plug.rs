//! Benchmark (prints figures, asserts nothing about speed): netplug's plug
//! and unplug against `ovs-docker add-port`/`del-port`, in one run, on the
//! same OVS bridge and the same Docker container. Needs root, OVS and
//! Docker; run with `cargo bench -p netplug`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BRIDGE, Container, GATEWAY, OvsHost};
use netplug::{NetnsTarget, Owner, PlugSpec, Plugger, Settle};

const CYCLES: usize = 30;
const IN_A_ROW: usize = 100;
const READINESS_ROUNDS: usize = 10;
const ADDRESS: &str = "10.240.0.2/24";

struct Timings {
    plug: Vec<Duration>,
    unplug: Vec<Duration>,
}

impl Timings {
    fn new() -> Self {
        Timings {
            plug: Vec::new(),
            unplug: Vec::new(),
        }
    }

    fn cycles(&self) -> Vec<Duration> {
        self.plug
            .iter()
            .zip(&self.unplug)
            .map(|(p, u)| *p + *u)
            .collect()
    }
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One `ovs-docker` command, spawned from the calling thread, which is in
/// the host's namespace, so the child is too (no `ip netns exec` to pay).
fn ovs_docker(host: &OvsHost, args: &[&str]) {
    let out = host
        .env(&mut Command::new(common::which("ovs-docker").expect("ovs-docker")))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ovs-docker");
    assert!(
        out.status.success(),
        "ovs-docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bench_ovs_docker(host: &OvsHost, c: &Container) -> Timings {
    let gateway = format!("--gateway={GATEWAY}");
    let address = format!("--ipaddress={ADDRESS}");
    common::in_netns(&host.ns.path(), || {
        let mut t = Timings::new();
        for _ in 0..CYCLES {
            let start = Instant::now();
            ovs_docker(host, &["add-port", BRIDGE, "eth0", &c.name, &address, &gateway]);
            t.plug.push(start.elapsed());
            let start = Instant::now();
            ovs_docker(host, &["del-port", BRIDGE, "eth0", &c.name]);
            t.unplug.push(start.elapsed());
        }
        t
    })
}

fn spec(c: &Container) -> PlugSpec {
    PlugSpec {
        bridge: BRIDGE.into(),
        iface: "eth0".into(),
        address: ADDRESS.parse().unwrap(),
        gateway: Some(GATEWAY.parse().unwrap()),
        mac: None,
        mtu: None,
        vlan: None,
        owner: Owner {
            name: c.name.clone(),
            full_id: Some(c.id.clone()),
        },
    }
}

/// `n` plug/unplug cycles through the library, on one runtime on a thread
/// in the host's namespace, as the server runs them.
fn bench_netplug(host: &OvsHost, c: &Container, settle: Settle, n: usize) -> Timings {
    let plugger = Plugger::new(host.ovs().with_settle(settle));
    let target = NetnsTarget::Pid(c.pid);
    let spec = spec(c);
    host.block_on(|| async {
        let mut t = Timings::new();
        for _ in 0..n {
            let start = Instant::now();
            let plugged = plugger.plug(&target, &spec).await.expect("plug");
            t.plug.push(start.elapsed());
            assert!(plugged.changed);
            let start = Instant::now();
            plugger.unplug(&c.name, "eth0").await.expect("unplug");
            t.unplug.push(start.elapsed());
        }
        t
    })
}

/// Plugs, pings the gateway at once with a single try (one ARP, one echo,
/// one second), unplugs; returns how many rounds forwarded at return.
fn readiness(host: &OvsHost, c: &Container, settle: Settle) -> usize {
    let plugger = Plugger::new(host.ovs().with_settle(settle));
    let target = NetnsTarget::Pid(c.pid);
    let spec = spec(c);
    let mut ok = 0;
    for _ in 0..READINESS_ROUNDS {
        host.block_on(|| async {
            plugger.plug(&target, &spec).await.expect("plug");
        });
        if c.exec(&["ping", "-c", "1", "-W", "1", "-q", GATEWAY])
            .status
            .success()
        {
            ok += 1;
        }
        host.block_on(|| async {
            plugger.unplug(&c.name, "eth0").await.expect("unplug");
        });
    }
    ok
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn row(name: &str, t: &Timings) {
    println!(
        "| {name:<28} | {:>10} | {:>10} | {:>10} |",
        ms(median(&t.plug)),
        ms(median(&t.unplug)),
        ms(median(&t.cycles()))
    );
}

fn main() {
    // `cargo bench` passes --bench; a filter naming something else skips.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    if args.iter().any(|a| !"plug".contains(a.as_str())) {
        return;
    }
    common::require_docker();
    let host = OvsHost::start();
    let c = Container::start();
    let before = host.counts(&[]);

    // Warm-up: first-use costs (page cache, ovsdb connection) of both.
    bench_netplug(&host, &c, Settle::default(), 3);
    let od = bench_ovs_docker(&host, &c);
    let np = bench_netplug(&host, &c, Settle::default(), CYCLES);
    let np_nextcfg = bench_netplug(&host, &c, Settle::NextCfg, CYCLES);
    let np_nowait = bench_netplug(&host, &c, Settle::None, CYCLES);
    let start = Instant::now();
    let row_of_100 = bench_netplug(&host, &c, Settle::default(), IN_A_ROW);
    let total_100 = start.elapsed();
    let ready: Vec<(Settle, usize)> = [Settle::Ofport, Settle::NextCfg, Settle::None]
        .into_iter()
        .map(|s| (s, readiness(&host, &c, s)))
        .collect();
    assert_eq!(host.counts(&[]), before, "the benchmark left ports or veths");

    println!();
    println!(
        "netplug vs ovs-docker: same OVS bridge ({BRIDGE}, netdev datapath), same container, {ADDRESS} via {GATEWAY}"
    );
    println!("{CYCLES} cycles each; medians");
    println!();
    println!(
        "| {:<28} | {:>10} | {:>10} | {:>10} |",
        "tool", "plug", "unplug", "cycle"
    );
    println!("|{:-<30}|{:->12}|{:->12}|{:->12}|", "", "", "", "");
    row("ovs-docker add/del-port", &od);
    row("netplug (settle: ofport)", &np);
    row("netplug (settle: next_cfg)", &np_nextcfg);
    row("netplug (no wait, unsafe)", &np_nowait);
    println!();
    let ratio = |t: &Timings| {
        median(&od.cycles()).as_secs_f64() / median(&t.cycles()).as_secs_f64()
    };
    println!(
        "speed-up per cycle (ovs-docker / netplug): {:.1}x (goal: 15x)",
        ratio(&np)
    );
    println!(
        "  plug {:.1}x, unplug {:.1}x; with next_cfg settle {:.1}x",
        median(&od.plug).as_secs_f64() / median(&np.plug).as_secs_f64(),
        median(&od.unplug).as_secs_f64() / median(&np.unplug).as_secs_f64(),
        ratio(&np_nextcfg)
    );
    println!();
    println!(
        "{IN_A_ROW} netplug plug+unplug cycles in a row: {} total, {} per cycle (median {}, max {})",
        ms(total_100),
        ms(total_100 / IN_A_ROW as u32),
        ms(median(&row_of_100.cycles())),
        ms(row_of_100.cycles().into_iter().max().unwrap_or_default())
    );
    println!();
    println!("forwarding when plug returns (one ping, one try, 1 s):");
    for (settle, ok) in ready {
        println!("  {settle:?}: {ok}/{READINESS_ROUNDS}");
    }
    println!();
    println!("peak RSS of this process (VmHWM): {}", peak_rss());
}
