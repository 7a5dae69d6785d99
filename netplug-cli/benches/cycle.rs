//! Benchmark: an `add-port` / `del-port` cycle of the `netplug` command
//! against `ovs-docker`'s, on the same bridge and the same running Docker
//! container, the two tools taking turns; prints each one's median and the
//! ratio. `cargo bench -p netplug-cli --bench cycle` (root, Docker, OVS).

#[path = "../../netplug/tests/common/mod.rs"]
mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{BRIDGE, Container, OvsHost};

const ROUNDS: usize = 15;

fn check(what: &str, out: Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn netplug(host: &OvsHost, args: &[&str]) -> Output {
    let db = format!("--ovsdb={}", host.db());
    let mut all = vec![
        "netns",
        "exec",
        &host.ns.name,
        env!("CARGO_BIN_EXE_netplug"),
        &db,
    ];
    all.extend_from_slice(args);
    common::output(host.env(&mut common::cmd("ip", &all)))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    common::require_root_and_ovs();
    common::require_docker();
    let host = OvsHost::start();
    let c = Container::start();
    let name = c.name.clone();
    let add = [
        "add-port",
        BRIDGE,
        "eth1",
        name.as_str(),
        "--ipaddress=10.240.0.90/24",
    ];
    let del = ["del-port", BRIDGE, "eth1", name.as_str()];
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // One round of each first, untimed: caches warm for both alike.
    for timed in std::iter::once(false).chain(std::iter::repeat_n(true, ROUNDS)) {
        let t = Instant::now();
        check("netplug add-port", netplug(&host, &add));
        check("netplug del-port", netplug(&host, &del));
        if timed {
            ours.push(t.elapsed());
        }
        let t = Instant::now();
        check("ovs-docker add-port", host.ovs_docker(&add));
        check("ovs-docker del-port", host.ovs_docker(&del));
        if timed {
            theirs.push(t.elapsed());
        }
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (a, b) = (median(ours), median(theirs));
    println!(
        "add-port + del-port cycle on one bridge and container, {ROUNDS} rounds, taking turns"
    );
    println!("  netplug     median {:7.1} ms", ms(a));
    println!("  ovs-docker  median {:7.1} ms", ms(b));
    println!(
        "  netplug is {:.1}x ovs-docker (goal >= 10x)",
        b.as_secs_f64() / a.as_secs_f64()
    );
}
