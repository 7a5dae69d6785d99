//! End to end: port security of a container plugged by `dockstack-server`:
//! no capability by default, spoofed source addresses dropped, those in
//! `allowed_addresses` passing, the rules gone with the container; and what
//! the policy lets an operator's request (sent straight to the gRPC API)
//! loosen of it: no address range beyond its own subnet, no VLAN, no MAC
//! but its own, and for no role a MAC another container holds.

mod common;
use common::{as_operator, run_request, test_spec};

use dockstack_proto as pb;
use dockstack_proto::container_host_client::ContainerHostClient;
use dockstack_tests::support::{assert_nothing_left, bed, docker_exec, exists, inspect, ok};
use dockstack_tests::testbed::{BedContainer, TestBed, docker};
use tonic::transport::Channel;

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

/// A `Run` to its end: `Ok` when it succeeded, the status it failed with.
async fn run(
    c: &mut ContainerHostClient<Channel>,
    req: pb::RunRequest,
) -> Result<(), tonic::Status> {
    let mut events = c.run(req).await?.into_inner();
    while events.message().await?.is_some() {}
    Ok(())
}

/// The MAC of the interface of host `i` that holds the bed's gateway.
fn gateway_mac(bed: &TestBed) -> String {
    let gw = bed.gateway().ip().to_string();
    let holder = bed
        .run_in_host(0, &["ip", "-o", "-4", "addr", "show", "to", &gw])
        .expect("ip addr");
    let ifname = holder
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no interface holds {gw}: {holder}"))
        .to_string();
    let link = bed
        .run_in_host(0, &["ip", "-br", "link", "show", "dev", &ifname])
        .expect("ip link");
    link.split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no MAC in {link}"))
        .to_string()
}

#[test]
fn an_operator_may_not_widen_port_security_and_no_one_takes_a_held_mac() {
    let bed = bed(1);
    let gateway_mac = gateway_mac(&bed);
    let name = |base: &str| bed.container_name(base);
    let request = |base: &str, n: u32, change: &dyn Fn(&mut pb::ContainerSpec)| {
        let mut spec = pb::ContainerSpec {
            gateway: bed.gateway().ip().to_string(),
            ..test_spec(&bed, &name(base), n)
        };
        change(&mut spec);
        run_request(&bed, spec)
    };
    let vip = bed.subnet_ip(75).to_string();
    let refused = [
        (
            "open",
            "allowed_addresses[0]: 0.0.0.0/0 is wider",
            request("open", 70, &|s| {
                s.allowed_addresses = vec!["0.0.0.0/0".into()];
            }),
        ),
        (
            "gwip",
            "holds the gateway",
            request("gwip", 71, &|s| {
                s.allowed_addresses = vec![s.gateway.clone()];
            }),
        ),
        (
            "gwmac",
            "mac: the operator policy allows no mac but the one derived",
            request("gwmac", 72, &|s| {
                s.mac = gateway_mac.clone();
            }),
        ),
        (
            "vlan",
            "vlan: the operator policy allows only vlans none",
            request("vlan", 73, &|s| {
                s.vlan = 10;
            }),
        ),
    ];
    let (answers, allowed) = as_operator(&bed, "netops", async |mut c| {
        let mut answers = Vec::new();
        for (base, want, req) in refused {
            answers.push((base, want, run(&mut c, req).await.err()));
        }
        // Within the policy: a VIP of its own subnet.
        let allowed = run(
            &mut c,
            request("vip", 74, &|s| s.allowed_addresses = vec![vip.clone()]),
        )
        .await;
        (answers, allowed)
    });
    for (base, want, answer) in answers {
        let status = answer.unwrap_or_else(|| panic!("{base}: the operator's run was not refused"));
        assert_eq!(
            status.code(),
            tonic::Code::PermissionDenied,
            "{base}: {status:?}"
        );
        assert!(
            status.message().contains(want),
            "{base}: {}\nwant {want}",
            status.message()
        );
        assert!(!exists(&name(base)), "{base} was made");
    }
    allowed.expect("an operator's VIP within its subnet");
    assert!(flows(&bed, 0).contains(&format!("nw_src={vip}")));

    // A MAC another container holds: refused for an admin too.
    let holder_mac = inspect(&name("vip"), "{{index .Config.Labels \"dockstack.mac\"}}");
    let taken = common::with_grpc(&bed, 0, async |mut c| {
        run(
            &mut c,
            request("twin", 76, &|s| s.mac = holder_mac.trim().to_string()),
        )
        .await
    });
    let status = taken.expect_err("an admin's run with the MAC of another container");
    assert_eq!(status.code(), tonic::Code::AlreadyExists, "{status:?}");
    assert!(
        status.message().contains(&format!(
            "mac {} is held by container {}",
            holder_mac.trim(),
            name("vip")
        )),
        "{}",
        status.message()
    );
    assert!(!exists(&name("twin")), "the twin was made");
    ok(
        &bed,
        &bed.write_environment(&[BedContainer::new(name("vip"), 0, bed.subnet_ip(74))]),
        &["destroy"],
    );
    assert_nothing_left(&bed, 0);
}
