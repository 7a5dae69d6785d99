//! Benchmark (prints figures, asserts nothing about speed): netplug's plug
//! and unplug against `ovs-docker add-port`/`del-port`, in one run, on the
//! same OVS bridge and the same Docker container. Needs root, OVS and
//! Docker; run with `cargo bench -p netplug`.
//!
//! `cargo bench -p netplug --bench plug -- --expedited-rcu` also measures both tools
//! back to back with the kernel's RCU grace periods expedited
//! (`/sys/kernel/rcu_expedited`, restored afterwards): ovs-vswitchd's
//! removal of a port waits for one grace period when it closes the port's
//! packet socket, and that block shows how much of a cycle that wait is.

#[path = "../tests/common/mod.rs"]
mod common;

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{BRIDGE, Container, GATEWAY, OvsHost};
use netplug::{NetnsTarget, Owner, PlugSpec, Plugger, Settle};

const CYCLES: usize = 30;
/// The runs are split into this many blocks, the tools taking turns.
const BLOCKS: usize = 3;
const SPACED_MS: u64 = 50;
const IN_A_ROW: usize = 100;
const READINESS_ROUNDS: usize = 20;
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

    fn extend(&mut self, other: Timings) {
        self.plug.extend(other.plug);
        self.unplug.extend(other.unplug);
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
        .env(&mut Command::new(
            common::which("ovs-docker").expect("ovs-docker"),
        ))
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

/// `n` cycles of `ovs-docker add-port`/`del-port`, each operation
/// followed by an untimed pause of `gap`.
fn bench_ovs_docker(host: &OvsHost, c: &Container, n: usize, gap: Duration) -> Timings {
    let gateway = format!("--gateway={GATEWAY}");
    let address = format!("--ipaddress={ADDRESS}");
    common::in_netns(&host.ns.path(), || {
        let mut t = Timings::new();
        for _ in 0..n {
            let start = Instant::now();
            ovs_docker(
                host,
                &["add-port", BRIDGE, "eth0", &c.name, &address, &gateway],
            );
            t.plug.push(start.elapsed());
            std::thread::sleep(gap);
            let start = Instant::now();
            ovs_docker(host, &["del-port", BRIDGE, "eth0", &c.name]);
            t.unplug.push(start.elapsed());
            std::thread::sleep(gap);
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
        address6: None,
        gateway6: None,
        mac: None,
        mtu: None,
        vlan: None,
        allowed_addresses: Vec::new(),
        probe: None,
        owner: Owner {
            name: c.name.clone(),
            full_id: Some(c.id.clone()),
        },
    }
}

/// `n` plug/unplug cycles through the library, on one runtime on a thread
/// in the host's namespace, as the server runs them; each operation is
/// followed by an untimed pause of `gap`.
fn bench_netplug(
    host: &OvsHost,
    c: &Container,
    settle: Settle,
    n: usize,
    gap: Duration,
) -> Timings {
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
            tokio::time::sleep(gap).await;
            let start = Instant::now();
            plugger.unplug(&c.name, "eth0").await.expect("unplug");
            t.unplug.push(start.elapsed());
            tokio::time::sleep(gap).await;
        }
        t
    })
}

/// What the RFC 5227 probe costs: `n` fresh plugs that probe for
/// `window`, and as many plugs of the same spec again (a re-plug finds the
/// plug in place and does not probe), each followed by its unplug or not.
fn bench_probe(
    host: &OvsHost,
    c: &Container,
    n: usize,
    window: Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let plugger = Plugger::new(host.ovs());
    let target = NetnsTarget::Pid(c.pid);
    let spec = PlugSpec {
        probe: Some(window),
        ..spec(c)
    };
    host.block_on(|| async {
        let (mut fresh, mut again) = (Vec::new(), Vec::new());
        for _ in 0..n {
            let start = Instant::now();
            assert!(plugger.plug(&target, &spec).await.expect("plug").changed);
            fresh.push(start.elapsed());
            let start = Instant::now();
            assert!(!plugger.plug(&target, &spec).await.expect("re-plug").changed);
            again.push(start.elapsed());
            plugger.unplug(&c.name, "eth0").await.expect("unplug");
        }
        (fresh, again)
    })
}

/// How soon the port forwards through the bridge after plug returns, seen
/// from inside the container, in-process, with no fork in between.
#[derive(Default)]
struct Ready {
    /// Answered within the first millisecond (the first ARP request).
    first_ms: usize,
    /// Time from return to the first answer through the bridge, of the
    /// rounds answered.
    after: Vec<Duration>,
    /// Rounds with no answer through the bridge within 500 ms.
    never: usize,
}

/// Plug, then ARP for the gateway every millisecond until the bridge's own
/// port answers (see `common::time_to_forward`), then unplug;
/// `READINESS_ROUNDS` times, back to back.
fn readiness(host: &OvsHost, c: &Container, settle: Settle) -> Ready {
    let plugger = Plugger::new(host.ovs().with_settle(settle));
    let target = NetnsTarget::Pid(c.pid);
    let spec = spec(c);
    let gw: Ipv4Addr = GATEWAY.parse().unwrap();
    let bridge_mac = common::link_mac(&host.ns.name, BRIDGE);
    let netns = std::path::PathBuf::from(format!("/proc/{}/ns/net", c.pid));
    let mut r = Ready::default();
    for _ in 0..READINESS_ROUNDS {
        host.block_on(|| async { plugger.plug(&target, &spec).await.expect("plug") });
        let forwarded = common::time_to_forward(
            &netns,
            "eth0",
            (spec.effective_mac().octets(), spec.address.ip()),
            gw,
            bridge_mac,
            Duration::from_millis(500),
        );
        match forwarded {
            Some(t) => {
                if t < Duration::from_millis(1) {
                    r.first_ms += 1;
                }
                r.after.push(t);
            }
            None => r.never += 1,
        }
        host.block_on(|| async { plugger.unplug(&c.name, "eth0").await.expect("unplug") });
    }
    r
}

/// Sets `/sys/kernel/rcu_expedited` and puts the old value back when
/// dropped, panic or not.
struct ExpeditedRcu {
    old: String,
}

const RCU_EXPEDITED: &str = "/sys/kernel/rcu_expedited";

impl ExpeditedRcu {
    fn on() -> Self {
        let old = std::fs::read_to_string(RCU_EXPEDITED)
            .unwrap_or_else(|e| panic!("--expedited-rcu: cannot read {RCU_EXPEDITED}: {e}"));
        std::fs::write(RCU_EXPEDITED, "1")
            .unwrap_or_else(|e| panic!("--expedited-rcu: cannot write {RCU_EXPEDITED}: {e}"));
        ExpeditedRcu {
            old: old.trim().to_string(),
        }
    }
}

impl Drop for ExpeditedRcu {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(RCU_EXPEDITED, &self.old) {
            eprintln!(
                "could not restore {RCU_EXPEDITED} to {}: {e}; do it by hand",
                self.old
            );
        }
    }
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

// A benchmark is test code: its run reads best as one sequence.
#[allow(clippy::too_many_lines)]
fn main() {
    // `cargo bench` passes --bench; a filter naming something else skips.
    let all_args: Vec<String> = std::env::args().skip(1).collect();
    let expedited = all_args.iter().any(|a| a == "--expedited-rcu");
    if all_args
        .iter()
        .filter(|a| !a.starts_with('-'))
        .any(|a| !"plug".contains(a.as_str()))
    {
        return;
    }
    common::require_docker();
    let host = OvsHost::start();
    let c = Container::start();
    let before = host.counts(&[]);

    // Warm-up: first-use costs (page cache, ovsdb connection) of both.
    bench_netplug(&host, &c, Settle::default(), 3, Duration::ZERO);
    bench_ovs_docker(&host, &c, 1, Duration::ZERO);

    // The tools take turns, in blocks, so that the load of a shared machine
    // weighs on both alike.
    let back_to_back = Duration::ZERO;
    let spaced = Duration::from_millis(SPACED_MS);
    let mut od = Timings::new();
    let mut np = Timings::new();
    let mut np_nextcfg = Timings::new();
    let mut np_nowait = Timings::new();
    let mut od_spaced = Timings::new();
    let mut np_spaced = Timings::new();
    for _ in 0..BLOCKS {
        let n = CYCLES / BLOCKS;
        od.extend(bench_ovs_docker(&host, &c, n, back_to_back));
        np.extend(bench_netplug(&host, &c, Settle::default(), n, back_to_back));
        np_nextcfg.extend(bench_netplug(&host, &c, Settle::NextCfg, n, back_to_back));
        np_nowait.extend(bench_netplug(&host, &c, Settle::None, n, back_to_back));
        od_spaced.extend(bench_ovs_docker(&host, &c, n, spaced));
        np_spaced.extend(bench_netplug(&host, &c, Settle::default(), n, spaced));
    }
    let mut od_fast_rcu = Timings::new();
    let mut np_fast_rcu = Timings::new();
    if expedited {
        let _rcu = ExpeditedRcu::on();
        for _ in 0..BLOCKS {
            let n = CYCLES / BLOCKS;
            od_fast_rcu.extend(bench_ovs_docker(&host, &c, n, back_to_back));
            np_fast_rcu.extend(bench_netplug(&host, &c, Settle::default(), n, back_to_back));
        }
    }
    let start = Instant::now();
    let row_of_100 = bench_netplug(&host, &c, Settle::default(), IN_A_ROW, back_to_back);
    let total_100 = start.elapsed();
    let window = Duration::from_millis(150);
    let (probed, replugged) = bench_probe(&host, &c, 10, window);
    let ready: Vec<(Settle, Ready)> = [Settle::Ofport, Settle::NextCfg, Settle::None]
        .into_iter()
        .map(|s| (s, readiness(&host, &c, s)))
        .collect();
    assert_eq!(
        host.counts(&[]),
        before,
        "the benchmark left ports or veths"
    );

    let cycle = |t: &Timings| median(&t.cycles()).as_secs_f64();
    println!();
    println!(
        "netplug vs ovs-docker: same OVS bridge ({BRIDGE}, netdev datapath), same Docker container, {ADDRESS} via {GATEWAY}"
    );
    println!(
        "{CYCLES} cycles per line, tools taking turns in {BLOCKS} blocks; medians; netplug through the library"
    );
    println!();
    println!(
        "| {:<46} | {:>10} | {:>10} | {:>10} | {:>8} |",
        "tool", "plug", "unplug", "cycle", "speed-up"
    );
    println!(
        "|{:-<48}|{:->12}|{:->12}|{:->12}|{:->10}|",
        "", "", "", "", ""
    );
    let row = |name: &str, t: &Timings, base: &Timings| {
        println!(
            "| {name:<46} | {:>10} | {:>10} | {:>10} | {:>7.1}x |",
            ms(median(&t.plug)),
            ms(median(&t.unplug)),
            ms(median(&t.cycles())),
            cycle(base) / cycle(t)
        );
    };
    let section = |label: &str| {
        println!(
            "| {label:<46} | {:>10} | {:>10} | {:>10} | {:>8} |",
            "", "", "", ""
        );
    };
    section("back to back (each op right after the last)");
    row("ovs-docker add-port / del-port", &od, &od);
    row("netplug, default settle (ofport)", &np, &od);
    row("netplug, settle next_cfg (as ovs-vsctl)", &np_nextcfg, &od);
    row("netplug, no wait at all (unsafe)", &np_nowait, &od);
    section(&format!(
        "spaced ({SPACED_MS} ms untimed pause after each op)"
    ));
    row("ovs-docker add-port / del-port", &od_spaced, &od_spaced);
    row("netplug, default settle (ofport)", &np_spaced, &od_spaced);
    if expedited {
        section("back to back, kernel RCU expedited");
        row("ovs-docker add-port / del-port", &od_fast_rcu, &od_fast_rcu);
        row(
            "netplug, default settle (ofport)",
            &np_fast_rcu,
            &od_fast_rcu,
        );
    }
    println!();
    println!(
        "speed-up per plug+unplug cycle: {:.1}x back to back, {:.1}x spaced (goal: 15x)",
        cycle(&od) / cycle(&np),
        cycle(&od_spaced) / cycle(&np_spaced)
    );
    println!(
        "(back to back, a plug first waits until ovs-vswitchd has dropped the port the unplug just deleted: \
         it closes the port's packet socket, and the kernel holds that close for an RCU grace period; \
         the unplug of the 'settle next_cfg' row waits for exactly that)"
    );
    if expedited {
        println!(
            "with expedited RCU grace periods: netplug {} a cycle back to back, {:.1}x; ovs-docker {}",
            ms(median(&np_fast_rcu.cycles())),
            cycle(&od_fast_rcu) / cycle(&np_fast_rcu),
            ms(median(&od_fast_rcu.cycles()))
        );
    }
    println!();
    println!(
        "{IN_A_ROW} netplug plug+unplug cycles in a row (back to back): {} total, {} per cycle (median {}, max {})",
        ms(total_100),
        ms(total_100 / u32::try_from(IN_A_ROW).expect("IN_A_ROW fits u32")),
        ms(median(&row_of_100.cycles())),
        ms(row_of_100.cycles().into_iter().max().unwrap_or_default())
    );
    println!();
    println!(
        "forwarding through the bridge after plug returns ({READINESS_ROUNDS} back-to-back plug/unplug rounds; \
         ARP for the gateway from inside, every ms, until the bridge's port answers):"
    );
    println!(
        "| {:<10} | {:>20} | {:>14} | {:>10} | {:>16} |",
        "settle", "answered within 1 ms", "median answer", "max", "never (500 ms)"
    );
    println!(
        "|{:-<12}|{:->22}|{:->16}|{:->12}|{:->18}|",
        "", "", "", "", ""
    );
    for (settle, r) in ready {
        println!(
            "| {:<10} | {:>20} | {:>14} | {:>10} | {:>16} |",
            format!("{settle:?}"),
            format!("{}/{READINESS_ROUNDS}", r.first_ms),
            ms(median(&r.after)),
            ms(r.after.iter().max().copied().unwrap_or_default()),
            r.never
        );
    }
    println!();
    println!(
        "RFC 5227 probe ({} ms window, nobody answering), 10 rounds: fresh plug with the probe {} (without: {}, the plug column above); a re-plug of the same spec {} (no probe)",
        window.as_millis(),
        ms(median(&probed)),
        ms(median(&np.plug)),
        ms(median(&replugged))
    );
    println!();
    println!("peak RSS of this process (VmHWM): {}", peak_rss());
}
