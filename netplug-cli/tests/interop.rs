//! Privileged tests of the `netplug` command against `/usr/bin/ovs-docker`
//! on a real Docker container: each removes the other's ports.

// The library's fixtures, shared rather than copied: these tests need the
// binary of this crate, the library's tests the rest.
#[path = "../../netplug/tests/common/mod.rs"]
mod common;

use std::process::Output;

use common::{BRIDGE, Container, GATEWAY, OvsHost};
use netplug::host_ifname;

/// The CLI of this crate, run in a test host. Here, not in the shared
/// fixtures: only this crate's tests know where cargo put the binary.
trait NetplugCli {
    /// `netplug ARGS` (the CLI built with these tests) in this host.
    fn netplug_cli(&self, args: &[&str]) -> Output;
    /// The same, with OVSDB at `db` rather than this host's.
    fn netplug_cli_with_db(&self, db: &str, args: &[&str]) -> Output;
}

impl NetplugCli for OvsHost {
    fn netplug_cli(&self, args: &[&str]) -> Output {
        self.netplug_cli_with_db(&self.db(), args)
    }

    fn netplug_cli_with_db(&self, db: &str, args: &[&str]) -> Output {
        let db = format!("--ovsdb={db}");
        let mut all = vec![
            "netns",
            "exec",
            &self.ns.name,
            env!("CARGO_BIN_EXE_netplug"),
            &db,
        ];
        all.extend_from_slice(args);
        common::output(self.env(&mut common::cmd("ip", &all)))
    }
}

fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn start() -> (OvsHost, Container) {
    common::require_docker();
    (OvsHost::start(), Container::start())
}

/// Nothing of a plug is left: no port, no veth on the host, no eth0 inside.
fn assert_clean(host: &OvsHost, c: &Container, before: &common::Counts) {
    assert_eq!(&host.counts(&[]), before);
    assert_eq!(c.veths(), Vec::<String>::new());
    assert!(!c.link_names().contains(&"eth0".to_string()));
}

#[test]
fn netplug_add_port_is_removed_by_ovs_docker_del_port() {
    let (host, c) = start();
    let before = host.counts(&[]);
    let out = ok(
        "netplug add-port",
        host.netplug_cli(&[
            "add-port",
            BRIDGE,
            "eth0",
            &c.name,
            "--ipaddress=10.240.0.30/24",
            &format!("--gateway={GATEWAY}"),
        ]),
    );
    let port = host_ifname(&c.name, "eth0");
    assert!(out.starts_with(&port), "{out}");
    assert!(c.ping(GATEWAY), "no ping after netplug add-port");
    // The owner as ovs-docker writes it, plus the full id.
    let ids = host.interface_ids(&port);
    assert!(
        ids.contains(&format!("container_id={:?}", c.name))
            || ids.contains(&format!("container_id={}", c.name)),
        "{ids}"
    );
    assert!(ids.contains("container_iface=eth0"), "{ids}");
    assert!(ids.contains(&c.id), "{ids}");

    ok(
        "ovs-docker del-port",
        host.ovs_docker(&["del-port", BRIDGE, "eth0", &c.name]),
    );
    assert_clean(&host, &c, &before);
}

#[test]
fn ovs_docker_add_port_is_removed_by_netplug_del_port() {
    let (host, c) = start();
    let before = host.counts(&[]);
    ok(
        "ovs-docker add-port",
        host.ovs_docker(&[
            "add-port",
            BRIDGE,
            "eth0",
            &c.name,
            "--ipaddress=10.240.0.31/24",
            &format!("--gateway={GATEWAY}"),
        ]),
    );
    assert!(c.ping(GATEWAY), "no ping after ovs-docker add-port");
    assert_eq!(host.counts(&[]).ports.len(), before.ports.len() + 1);

    ok(
        "netplug del-port",
        host.netplug_cli(&["del-port", BRIDGE, "eth0", &c.name]),
    );
    assert_clean(&host, &c, &before);
}

#[test]
fn netplug_add_port_replaces_an_ovs_docker_port() {
    let (host, c) = start();
    let before = host.counts(&[]);
    ok(
        "ovs-docker add-port",
        host.ovs_docker(&[
            "add-port",
            BRIDGE,
            "eth0",
            &c.name,
            "--ipaddress=10.240.0.32/24",
        ]),
    );
    // ovs-docker itself refuses a second attach; netplug replaces it.
    assert!(
        !host
            .ovs_docker(&[
                "add-port",
                BRIDGE,
                "eth0",
                &c.name,
                "--ipaddress=10.240.0.32/24"
            ])
            .status
            .success()
    );
    ok(
        "netplug add-port",
        host.netplug_cli(&[
            "add-port",
            BRIDGE,
            "eth0",
            &c.name,
            "--ipaddress=10.240.0.33/24",
            &format!("--gateway={GATEWAY}"),
        ]),
    );
    let counts = host.counts(&[]);
    assert_eq!(counts.ports.len(), before.ports.len() + 1, "{counts:?}");
    assert!(counts.ports.contains(&host_ifname(&c.name, "eth0")));
    assert!(c.ping(GATEWAY), "no ping after the replacing plug");

    ok(
        "netplug del-ports",
        host.netplug_cli(&["del-ports", BRIDGE, &c.name]),
    );
    assert_clean(&host, &c, &before);
}

#[test]
fn cli_set_vlan_and_idempotent_add_port() {
    let (host, c) = start();
    let before = host.counts(&[]);
    let args = [
        "add-port",
        BRIDGE,
        "eth0",
        &c.name,
        "--ipaddress=10.240.0.34/24",
    ];
    assert!(ok("add-port", host.netplug_cli(&args)).contains("plugged"));
    assert!(ok("add-port again", host.netplug_cli(&args)).contains("unchanged"));
    let port = host_ifname(&c.name, "eth0");
    ok(
        "set-vlan",
        host.netplug_cli(&["set-vlan", BRIDGE, "eth0", &c.name, "12"]),
    );
    assert_eq!(host.vsctl(&["get", "Port", &port, "tag"]).trim(), "12");
    // ovs-docker finds netplug's port for its own set-vlan too.
    ok(
        "ovs-docker set-vlan",
        host.ovs_docker(&["set-vlan", BRIDGE, "eth0", &c.name, "13"]),
    );
    assert_eq!(host.vsctl(&["get", "Port", &port, "tag"]).trim(), "13");

    ok(
        "del-port",
        host.netplug_cli(&["del-port", BRIDGE, "eth0", &c.name]),
    );
    assert_clean(&host, &c, &before);
}

#[test]
fn cli_reports_a_missing_bridge_and_an_unknown_container() {
    let (host, c) = start();
    let before = host.counts(&[]);
    let out = host.netplug_cli(&[
        "add-port",
        "nosuchbr3",
        "eth0",
        &c.name,
        "--ipaddress=10.240.0.35/24",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nosuchbr3"), "{err}");
    let out = host.netplug_cli(&[
        "add-port",
        BRIDGE,
        "eth0",
        "netplug-no-such-container",
        "--ipaddress=10.240.0.35/24",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("netplug-no-such-container"));
    assert_clean(&host, &c, &before);
}

/// The next gratuitous ARP for `ip` that `socket` (a packet socket of the
/// host's namespace) sees arrive on the interface `ifindex`: its sender
/// MAC, or `None` within `within`.
fn garp_seen(
    socket: &std::os::fd::OwnedFd,
    ifindex: u32,
    ip: std::net::Ipv4Addr,
    within: std::time::Duration,
) -> Option<[u8; 6]> {
    netplug::arp::await_frame(socket, within, |frame, from| {
        let is_garp = frame.len() >= 42
            && frame[12..14] == [0x08, 0x06]
            && frame[28..32] == ip.octets()
            && frame[38..42] == ip.octets();
        (is_garp && from == ifindex).then(|| frame[22..28].try_into().expect("six bytes"))
    })
    .expect("receive on the packet socket")
}

/// The command announces the address to the rest of the bridge (its
/// announcement is put in by OVS as from the port, not sent from a socket
/// in the container that its exit would have to close), and a del-port
/// followed at once by an add-port, two processes that know nothing of
/// each other, leaves a port that forwards.
#[test]
fn cli_announces_through_the_bridge_and_a_re_add_forwards() {
    let (host, c) = start();
    let before = host.counts(&[]);
    let ip: std::net::Ipv4Addr = "10.240.0.34".parse().unwrap();
    let socket = common::in_netns(&host.ns.path(), || {
        netplug::arp::open_packet_socket().expect("packet socket")
    });
    let bridge_index: u32 = host
        .ns
        .ip(&["-o", "link", "show", BRIDGE])
        .split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .expect("the bridge's ifindex");
    let add = [
        "add-port",
        BRIDGE,
        "eth0",
        c.name.as_str(),
        "--ipaddress=10.240.0.34/24",
        &format!("--gateway={GATEWAY}"),
    ];
    let out = ok("netplug add-port", host.netplug_cli(&add));
    let mac = out
        .split_whitespace()
        .nth(1)
        .expect("the MAC in the output")
        .to_string();
    let seen = garp_seen(&socket, bridge_index, ip, std::time::Duration::from_secs(2))
        .expect("no gratuitous ARP for the address reached the bridge's own port");
    let seen = seen.map(|b| format!("{b:02x}")).join(":");
    assert_eq!(seen, mac, "the announcement carries another MAC");

    for round in 0..5 {
        ok(
            "netplug del-port",
            host.netplug_cli(&["del-port", BRIDGE, "eth0", &c.name]),
        );
        ok("netplug add-port", host.netplug_cli(&add));
        assert!(
            c.ping(GATEWAY),
            "round {round}: no ping after del-port and add-port at once"
        );
    }
    ok(
        "netplug del-port",
        host.netplug_cli(&["del-port", BRIDGE, "eth0", &c.name]),
    );
    assert_clean(&host, &c, &before);
}

/// On a Linux bridge the command needs no Open vSwitch: with no OVSDB to
/// reach, add-port plugs (its look-ups ahead of the inspect fail quietly)
/// and del-port removes the plug, leaving nothing behind.
#[test]
fn cli_plugs_a_linux_bridge_without_open_vswitch() {
    let (host, c) = start();
    host.add_linux_bridge();
    let before = host.counts(&[]);
    let nowhere = format!("unix:{}/no-ovsdb.sock", host.dir.display());
    let cli = |args: &[&str]| host.netplug_cli_with_db(&nowhere, args);
    let gateway = format!("--gateway={}", common::LINUX_GATEWAY);
    let out = ok(
        "netplug add-port on a Linux bridge",
        cli(&[
            "add-port",
            common::LINUX_BRIDGE,
            "eth0",
            &c.name,
            "--ipaddress=10.240.1.36/24",
            &gateway,
        ]),
    );
    assert!(out.ends_with("plugged\n"), "{out}");
    assert!(
        c.ping(common::LINUX_GATEWAY),
        "no ping over the Linux bridge"
    );
    ok(
        "netplug del-port on a Linux bridge",
        cli(&["del-port", common::LINUX_BRIDGE, "eth0", &c.name]),
    );
    assert_clean(&host, &c, &before);
}
