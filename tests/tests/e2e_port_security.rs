//! End to end: port security of a container plugged by `dockstack-server`:
//! no capability by default, spoofed source addresses dropped, those in
//! `allowed_addresses` passing, the rules gone with the container.

use dockstack_tests::support::{assert_nothing_left, bed, docker_exec, inspect, ok};
use dockstack_tests::testbed::{BedContainer, TestBed, docker};

/// The OpenFlow rules of host `i`'s bridge.
fn flows(bed: &TestBed, i: usize) -> String {
    let mgmt = format!(
        "unix:{}/{}.mgmt",
        bed.host(i).rundir().display(),
        bed.bridge()
    );
    bed.run_in_host(i, &["ovs-ofctl", "--no-stats", "dump-flows", &mgmt])
        .expect("ovs-ofctl dump-flows")
}

/// One ping from `container` to `to` with source address `from`.
fn ping_from(container: &str, from: &str, to: &str) -> bool {
    docker(&[
        "exec", container, "ping", "-c", "1", "-W", "2", "-I", from, to,
    ])
    .is_ok()
}

#[test]
fn spoofed_sources_are_dropped_allowed_addresses_pass_and_net_admin_is_opt_in() {
    let bed = bed(1);
    let (vip, spoof, other) = (bed.subnet_ip(61), bed.subnet_ip(62), bed.subnet_ip(63));
    let prefix = bed.gateway().prefix();
    let gateway = bed.gateway().ip().to_string();
    let (keep, plain) = (bed.container_name("keep"), bed.container_name("plain"));
    let env = bed.write_environment(&[
        BedContainer::new(&keep, 0, bed.subnet_ip(60))
            .with_yaml(&format!("cap_add: [NET_ADMIN]\nallowed_addresses: [{vip}]")),
        BedContainer::new(&plain, 0, other),
    ]);
    ok(&bed, &env, &["run"]);
    assert_eq!(
        inspect(
            &keep,
            "{{index .Config.Labels \"dockstack.allowed-addresses\"}}"
        ),
        format!("{vip}/32")
    );
    let rules = flows(&bed, 0);
    assert!(rules.contains(&format!("nw_src={vip}")), "{rules}");

    // No NET_ADMIN unless asked: the plain container cannot add addresses.
    let cidr = |ip: std::net::Ipv4Addr| format!("{ip}/{prefix}");
    assert!(
        docker(&[
            "exec",
            &plain,
            "ip",
            "addr",
            "add",
            &cidr(spoof),
            "dev",
            "eth0"
        ])
        .is_err(),
        "a container without cap_add changed its network"
    );

    // The one with NET_ADMIN: its own address passes, a spoofed one does
    // not, the VIP in allowed_addresses does.
    assert!(ping_from(&keep, &bed.subnet_ip(60).to_string(), &gateway));
    docker_exec(&keep, &["ip", "addr", "add", &cidr(spoof), "dev", "eth0"]);
    assert!(
        !ping_from(&keep, &spoof.to_string(), &gateway),
        "a spoofed source address got through"
    );
    assert!(
        !ping_from(&keep, &spoof.to_string(), &other.to_string()),
        "a spoofed source address reached a neighbour"
    );
    docker_exec(&keep, &["ip", "addr", "add", &cidr(vip), "dev", "eth0"]);
    assert!(
        ping_from(&keep, &vip.to_string(), &gateway),
        "an allowed address was dropped"
    );
    // Another MAC: dropped.
    docker_exec(
        &keep,
        &["ip", "link", "set", "eth0", "address", "02:00:00:00:00:99"],
    );
    docker_exec(&keep, &["ip", "neigh", "flush", "dev", "eth0"]);
    let _ = bed.run_in_host(0, &["ip", "neigh", "flush", "all"]);
    assert!(
        !ping_from(&keep, &bed.subnet_ip(60).to_string(), &gateway),
        "a spoofed source MAC got through"
    );

    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
    let rules = flows(&bed, 0);
    assert!(!rules.contains("in_port"), "rules left: {rules}");
}
