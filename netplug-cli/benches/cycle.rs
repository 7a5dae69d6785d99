//! Benchmark: an `add-port` / `del-port` cycle of the `netplug` command
//! against `ovs-docker`'s, on the same bridge and the same running Docker
//! container, the two tools taking turns; prints each one's median and the
//! ratio. `cargo bench -p netplug-cli --bench cycle` (root, Docker, OVS).
//!
//! Each tool is started as though on the bed host itself: by a thread that
//! is in the host's network namespace, rather than through `ip netns
//! exec`, whose own ~2 ms (a mount namespace and a /sys remount per
//! command) no real host pays.
//!
//! Beside them, the kernel's share: a veth made into the container and
//! deleted again over netlink in this process, which every cycle of either
//! tool pays (deleting a veth waits for RCU grace periods).

#[path = "../../netplug/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{BRIDGE, Container, OvsHost};

const ROUNDS: usize = 25;

fn check(what: &str, out: Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `program ARGS` with `host`'s OVS, from the calling thread, which is in
/// the host's network namespace.
fn on_host(host: &OvsHost, program: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(program);
    cmd.args(args);
    common::output(host.env(&mut cmd))
}

fn netplug(host: &OvsHost, args: &[&str]) -> Output {
    let db = format!("--ovsdb={}", host.db());
    let mut all = vec![db.as_str()];
    all.extend_from_slice(args);
    on_host(host, env!("CARGO_BIN_EXE_netplug"), &all)
}

fn ovs_docker(host: &OvsHost, args: &[&str]) -> Output {
    let program = common::which("ovs-docker").expect("ovs-docker");
    on_host(host, program.to_str().expect("a UTF-8 path"), args)
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
    let (mut adds, mut dels, mut floor) = (Vec::new(), Vec::new(), Vec::new());
    let mut ovs_floor = Vec::new();
    let netns = std::fs::File::open(c.netns_path()).expect("open the container's netns");
    // Every tool starts from a thread in the host's namespace, as it would
    // on the host.
    let alone = common::in_netns(&host.ns.path(), || {
        // One round of each first, untimed: caches warm for both alike.
        for timed in std::iter::once(false).chain(std::iter::repeat_n(true, ROUNDS)) {
            let t = Instant::now();
            check("netplug add-port", netplug(&host, &add));
            let added = t.elapsed();
            check("netplug del-port", netplug(&host, &del));
            if timed {
                ours.push(t.elapsed());
                adds.push(added);
                dels.push(t.elapsed() - added);
            }
            if timed {
                floor.push(host.block_on(|| veth_cycle(&netns)));
                let ovs = host.ovs();
                ovs_floor.push(host.block_on(|| port_cycle(&ovs)));
            }
            let t = Instant::now();
            check("ovs-docker add-port", ovs_docker(&host, &add));
            check("ovs-docker del-port", ovs_docker(&host, &del));
            if timed {
                theirs.push(t.elapsed());
            }
        }
        // del-port leaves ovs-vswitchd's removal of the port (and the kernel's
        // RCU barrier) running when it returns; back to back, the next
        // add-port waits for it. Measured too, so that the figure above is
        // not read as more than it is.
        let mut alone = Vec::new();
        for _ in 0..ROUNDS {
            let t = Instant::now();
            check("netplug add-port", netplug(&host, &add));
            check("netplug del-port", netplug(&host, &del));
            alone.push(t.elapsed());
        }
        alone
    });
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (a, b) = (median(ours), median(theirs));
    println!(
        "add-port + del-port cycle on one bridge and container, {ROUNDS} rounds, taking turns"
    );
    let program = env!("CARGO_BIN_EXE_netplug");
    if has_interpreter(program) {
        println!(
            "  netplug {program} is dynamically linked; the packaged one is static-pie and starts sooner: `cargo bench-netplug` measures that"
        );
    } else {
        println!("  netplug {program}: static-pie, as packaged");
    }
    println!(
        "  netplug     median {:7.1} ms (add-port {:.1} ms, del-port {:.1} ms)",
        ms(a),
        ms(median(adds)),
        ms(median(dels))
    );
    println!("  ovs-docker  median {:7.1} ms", ms(b));
    println!(
        "  netplug alone, {ROUNDS} cycles back to back (each add-port waiting for what the del-port before left to ovs-vswitchd): median {:.1} ms",
        ms(median(alone))
    );
    println!(
        "  netplug is {:.1}x ovs-docker (goal >= 10x)",
        b.as_secs_f64() / a.as_secs_f64()
    );
    let f = median(floor);
    println!(
        "  the kernel alone: a veth made into the container and deleted, {:.1} ms (10x ovs-docker leaves {:.1} ms)",
        ms(f),
        ms(b) / 10.0
    );
    println!(
        "  ovs-vswitchd alone: a port added (until it has its OpenFlow number) and deleted (until applied), {:.1} ms",
        ms(median(ovs_floor))
    );
}

/// Whether the ELF executable at `path` names a dynamic loader (has a
/// PT_INTERP program header), i.e. is not statically linked.
fn has_interpreter(path: &str) -> bool {
    const PT_INTERP: u32 = 3;
    let elf = std::fs::read(path).expect("read the netplug executable");
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().expect("2 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().expect("8 bytes"));
    assert!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "{path} is not a little-endian 64-bit ELF file"
    );
    let phoff = usize::try_from(u64_at(0x20)).expect("a program header offset that fits");
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..usize::from(phnum)).any(|i| {
        let at = phoff + i * usize::from(phentsize);
        u32::from_le_bytes(elf[at..at + 4].try_into().expect("4 bytes")) == PT_INTERP
    })
}

/// Adds a bare veth as a port and deletes it, each until ovs-vswitchd has
/// applied it, over OVSDB in this process: OVS's share of any cycle.
async fn port_cycle(ovs: &netplug::Ovs) -> Duration {
    let nl = netplug::Netlink::current().expect("netlink");
    let here = std::fs::File::open("/proc/thread-self/ns/net").expect("own netns");
    let index = veth(&nl, "dsfloor1", "dsfloor1p", &here).await;
    nl.set_up(index).await.expect("veth up");
    let owner = netplug::PortOwner {
        container: "floor".into(),
        iface: "eth9".into(),
        full_id: None,
    };
    let t = Instant::now();
    ovs.add_port(BRIDGE, "dsfloor1", &owner, None)
        .await
        .expect("add the port");
    ovs.del_port("dsfloor1").await.expect("delete the port");
    ovs.settle_pending().await.expect("settle");
    let took = t.elapsed();
    nl.del_link(index).await.expect("delete the veth");
    took
}

/// Makes a veth pair with one end in the container and deletes it, over
/// netlink in this process: the least any add-port/del-port cycle costs.
async fn veth_cycle(netns: &std::fs::File) -> Duration {
    let nl = netplug::Netlink::current().expect("netlink");
    let t = Instant::now();
    let index = veth(&nl, "dsfloor0", "eth9", netns).await;
    nl.del_link(index).await.expect("delete the veth");
    t.elapsed()
}

/// A veth `name` here with its peer `peer` in `netns`; its index.
async fn veth(nl: &netplug::Netlink, name: &str, peer: &str, netns: &std::fs::File) -> u32 {
    nl.create_veth_into(name, peer, netns, [2, 0xd5, 0, 0, 0, 9], None)
        .await
        .expect("create a veth");
    nl.link_by_name(name)
        .await
        .expect("look up the veth")
        .expect("the veth")
        .index
}
