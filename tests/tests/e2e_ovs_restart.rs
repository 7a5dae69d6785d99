//! End to end, Open vSwitch restarting under running containers on two
//! hosts: ovs-vswitchd killed and started again, then both of its daemons;
//! after each, the servers set every port's rules again by themselves, every
//! address answers across the wire, `status` says plugged, and port
//! security holds (a hand-added address and a spoofed MAC get nowhere, the
//! allowed VIP passes).
//!
//! Each host's Open vSwitch is the bed's own: nothing shared is restarted.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dockstack_tests::support::{
    assert_nothing_left, bed, docker_exec, eth0_mac, ok, status, wait_until,
};
use dockstack_tests::testbed::{
    BedContainer, TestBed, docker, kill_ovs_daemon, start_ovsdb, start_vswitchd, stop_ovsdb,
};

/// The OpenFlow rules of host `i`'s bridge.
fn flows(bed: &TestBed, i: usize) -> String {
    let mgmt = format!(
        "unix:{}/{}.mgmt",
        bed.host(i).rundir().display(),
        bed.bridge()
    );
    bed.run_in_host(i, &["ovs-ofctl", "--no-stats", "dump-flows", &mgmt])
        .unwrap_or_default()
}

/// Whether `ip` answers a ping from host `i`'s namespace.
fn answers(bed: &TestBed, i: usize, ip: Ipv4Addr) -> bool {
    bed.exec_in_host(i, &["ping", "-n", "-c1", "-W1", &ip.to_string()])
        .status
        .success()
}

/// One ping from `container` to `to` with source address `from`.
fn ping_from(container: &str, from: Ipv4Addr, to: Ipv4Addr) -> bool {
    docker(&[
        "exec",
        container,
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "-I",
        &from.to_string(),
        &to.to_string(),
    ])
    .is_ok()
}

/// A container of the test: its name, host and address.
struct Ctr {
    name: String,
    host: usize,
    ip: Ipv4Addr,
}

/// What one restart cost, each from the moment ovs-vswitchd's start
/// returned (on the host restarted last, for the answers).
struct Figures {
    rules_back: Vec<Duration>,
    last_answer: Duration,
    /// Per host, from ovs-vswitchd adding the bridge's ports (its log) to
    /// the server's rules being set (its log): the bridge's window without
    /// port security.
    unguarded: Vec<Duration>,
}

/// The time of day of a log line that starts with an RFC 3339 UTC time.
fn logged_at(line: &str) -> Option<time::OffsetDateTime> {
    let stamp = line.split([' ', '|']).next()?;
    time::OffsetDateTime::parse(stamp, &time::format_description::well_known::Rfc3339).ok()
}

/// Host `i`'s window without port security at ovs-vswitchd's last start:
/// from its first port added to the server's log of the rules set again.
fn unguarded(bed: &TestBed, i: usize) -> Duration {
    let vlog = std::fs::read_to_string(bed.host(i).rundir().join("ovs-vswitchd.log"))
        .expect("ovs-vswitchd.log");
    let last_run = vlog.rfind("opened log file").expect("a start in the log");
    let ports = vlog[last_run..]
        .lines()
        .find(|l| l.contains("added interface"))
        .and_then(logged_at)
        .expect("ovs-vswitchd added ports");
    let slog = bed.server_log(i);
    let rules = slog
        .lines()
        .rev()
        .find(|l| l.contains("port security set again"))
        .and_then(logged_at)
        .expect("the server set the rules again");
    let d = rules - ports;
    assert!(d.is_positive(), "host {i}: rules set before the ports?");
    d.unsigned_abs()
}

/// Kills ovs-vswitchd on both hosts (and, with `ovsdb`, stops
/// ovsdb-server after it), runs `while_down`, then starts them again as the
/// bed does; waits for
/// each host's rules to be back and every address to answer from the other
/// host.
fn restart(
    bed: &TestBed,
    boxes: &[Ctr],
    vip: Ipv4Addr,
    ovsdb: bool,
    while_down: &dyn Fn(),
) -> Figures {
    for i in 0..2 {
        let rundir = bed.host(i).rundir();
        kill_ovs_daemon(rundir, "ovs-vswitchd").expect("kill ovs-vswitchd");
        if ovsdb {
            stop_ovsdb(rundir).expect("stop ovsdb-server");
        }
    }
    while_down();
    // The rules went with ovs-vswitchd: the servers must notice. Both
    // hosts at once, each timed from its own start.
    let wanted = |i: usize| -> Vec<String> {
        let mut w: Vec<String> = boxes
            .iter()
            .filter(|b| b.host == i)
            .map(|b| format!("nw_src={} ", b.ip))
            .collect();
        if i == 0 {
            w.push(format!("nw_src={vip} "));
        }
        w
    };
    let timed: Vec<(Instant, Duration)> = std::thread::scope(|scope| {
        let hosts: Vec<_> = (0..2)
            .map(|i| {
                let want = wanted(i);
                scope.spawn(move || {
                    let h = bed.host(i);
                    if ovsdb {
                        start_ovsdb(h.netns(), h.rundir()).expect("start ovsdb-server");
                    }
                    start_vswitchd(h.netns(), h.rundir()).expect("start ovs-vswitchd");
                    let started = Instant::now();
                    let mut rules = String::new();
                    let back = wait_until(Duration::from_secs(20), || {
                        rules = flows(bed, i);
                        want.iter().all(|w| rules.contains(w.as_str()))
                    });
                    assert!(
                        back,
                        "host {i}: the rules are not back 20 s after ovs-vswitchd:\n{rules}\n{}",
                        bed.server_log(i)
                    );
                    (started, started.elapsed())
                })
            })
            .collect();
        hosts
            .into_iter()
            .map(|t| t.join().expect("a host's restart"))
            .collect()
    });
    let last_start = timed.iter().map(|(s, _)| *s).max().expect("two hosts");
    let mut pending: Vec<&Ctr> = boxes.iter().collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|b| !answers(bed, 1 - b.host, b.ip));
    }
    assert!(
        pending.is_empty(),
        "not answering across the wire 30 s after ovs-vswitchd: {:?}\nhost 0:\n{}\nhost 1:\n{}",
        pending.iter().map(|b| &b.name).collect::<Vec<_>>(),
        bed.server_log(0),
        bed.server_log(1)
    );
    Figures {
        rules_back: timed.iter().map(|(_, d)| *d).collect(),
        last_answer: last_start.elapsed(),
        unguarded: (0..2).map(|i| unguarded(bed, i)).collect(),
    }
}

/// Port security on `keep` (host 0, `NET_ADMIN`, `vip` allowed), checked
/// across the wire against `far` (host 1): a hand-added `spoof` gets no
/// answer, the VIP does, a MAC of its own choosing gets nowhere. Leaves
/// `keep` as it found it.
fn port_security_holds(keep: &Ctr, far: &Ctr, vip: Ipv4Addr, spoof: Ipv4Addr, prefix: u8) {
    let cidr = |ip: Ipv4Addr| format!("{ip}/{prefix}");
    assert!(ping_from(&keep.name, keep.ip, far.ip), "own address");
    docker_exec(
        &keep.name,
        &["ip", "addr", "add", &cidr(spoof), "dev", "eth0"],
    );
    let spoofed = ping_from(&keep.name, spoof, far.ip);
    docker_exec(
        &keep.name,
        &["ip", "addr", "del", &cidr(spoof), "dev", "eth0"],
    );
    assert!(
        !spoofed,
        "a hand-added address got an answer across the wire"
    );
    docker_exec(
        &keep.name,
        &["ip", "addr", "add", &cidr(vip), "dev", "eth0"],
    );
    let allowed = ping_from(&keep.name, vip, far.ip);
    docker_exec(
        &keep.name,
        &["ip", "addr", "del", &cidr(vip), "dev", "eth0"],
    );
    assert!(allowed, "the allowed VIP was dropped");
    let own_mac = eth0_mac(&keep.name);
    let set_mac = |mac: &str| {
        docker_exec(&keep.name, &["ip", "link", "set", "eth0", "address", mac]);
        docker_exec(&keep.name, &["ip", "neigh", "flush", "dev", "eth0"]);
    };
    set_mac("02:00:00:00:00:99");
    let spoofed_mac = ping_from(&keep.name, keep.ip, far.ip);
    set_mac(&own_mac);
    assert!(!spoofed_mac, "a spoofed source MAC got through");
    assert!(
        wait_until(Duration::from_secs(5), || ping_from(
            &keep.name, keep.ip, far.ip
        )),
        "own address after the MAC was put back"
    );
}

#[test]
fn open_vswitch_restarts_leave_every_port_secured_and_answering() {
    let bed = bed(2);
    let prefix = bed.gateway().prefix();
    let vip = bed.subnet_ip(93);
    let boxes = vec![
        Ctr {
            name: bed.container_name("keep"),
            host: 0,
            ip: bed.subnet_ip(90),
        },
        Ctr {
            name: bed.container_name("plain0"),
            host: 0,
            ip: bed.subnet_ip(91),
        },
        Ctr {
            name: bed.container_name("far1"),
            host: 1,
            ip: bed.subnet_ip(92),
        },
    ];
    let containers: Vec<BedContainer> = boxes
        .iter()
        .map(|b| {
            let c = BedContainer::new(&b.name, b.host, b.ip);
            if b.host == 0 && b.name.ends_with("keep") {
                c.with_yaml(&format!("cap_add: [NET_ADMIN]\nallowed_addresses: [{vip}]"))
            } else {
                c
            }
        })
        .collect();
    let env = bed.write_environment(&containers);
    ok(&bed, &env, &["run"]);
    for b in &boxes {
        assert!(answers(&bed, 1 - b.host, b.ip), "{} before", b.name);
    }
    port_security_holds(&boxes[0], &boxes[2], vip, bed.subnet_ip(94), prefix);

    let phases = [
        ("ovs-vswitchd", false),
        ("ovsdb-server and ovs-vswitchd", true),
    ];
    for (n, (phase, ovsdb)) in phases.into_iter().enumerate() {
        // While ovs-vswitchd is away, the port of one container goes from
        // OVSDB: the server must find it gone and plug it again.
        let plain = &boxes[1].name;
        let drop_port = || {
            if !ovsdb {
                let port = bed
                    .ovs_vsctl(
                        0,
                        &[
                            "--bare",
                            "--columns=name",
                            "find",
                            "Interface",
                            &format!("external_ids:container_id={plain}"),
                        ],
                    )
                    .expect("find the port");
                bed.ovs_vsctl(0, &["--no-wait", "del-port", port.trim()])
                    .expect("del-port");
            }
        };
        let figures = restart(&bed, &boxes, vip, ovsdb, &drop_port);
        println!(
            "{phase} restarted: rules back (seen by ovs-ofctl) {} / {} ms after its start returned (host 0 / 1); the bridge without rules {:.1} / {:.1} ms (ovs-vswitchd's first port to the server's rules, from their logs); last of {} addresses answering across the wire {} ms after the last start",
            figures.rules_back[0].as_millis(),
            figures.rules_back[1].as_millis(),
            figures.unguarded[0].as_secs_f64() * 1e3,
            figures.unguarded[1].as_secs_f64() * 1e3,
            boxes.len(),
            figures.last_answer.as_millis()
        );
        for i in 0..2 {
            let log = bed.server_log(i);
            let said: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("port security set again"))
                .collect();
            assert!(
                said.len() > n,
                "host {i} did not say so after {phase}:\n{log}"
            );
            println!("host {i}: {}", said[said.len() - 1]);
        }
        if !ovsdb {
            let replugged = || {
                bed.server_log(0)
                    .lines()
                    .any(|l| l.contains("re-plugged by reconcile") && l.contains(plain.as_str()))
            };
            assert!(
                wait_until(Duration::from_secs(10), replugged),
                "{plain}, whose port went, was not plugged again:\n{}",
                bed.server_log(0)
            );
        }
        let all = status(&bed, &env);
        for b in &boxes {
            assert_eq!(
                all[&b.name]["plugged"], true,
                "{}: {}",
                b.name, all[&b.name]
            );
        }
        port_security_holds(&boxes[0], &boxes[2], vip, bed.subnet_ip(95), prefix);
        for b in &boxes {
            assert!(answers(&bed, 1 - b.host, b.ip), "{} after {phase}", b.name);
        }
    }

    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
    assert_nothing_left(&bed, 1);
}
