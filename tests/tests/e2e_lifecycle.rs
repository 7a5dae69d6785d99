//! End to end through client and server on the test bed: run, plug, ping,
//! destroy, across two hosts, and the errors that must leave nothing behind.

use dockstack_tests::support::{assert_nothing_left, bed, docker_exec, dockstack, text};

use dockstack_tests::testbed::BedContainer;

#[test]
fn run_plugs_eth0_with_ip_and_route_then_destroy_leaves_nothing() {
    let bed = bed(1);
    let name = bed.container_name("web");
    let ip = bed.subnet_ip(10);
    let env = bed.write_environment(&[BedContainer::new(&name, 0, ip)]);

    let out = dockstack(&bed, &env, &["-c", &name, "run"]);
    assert!(out.status.success(), "{}", text(&out));

    let addr = docker_exec(&name, &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]);
    let want = format!("{ip}/{}", bed.gateway().prefix());
    assert!(addr.contains(&want), "eth0 has {addr:?}, want {want}");
    let routes = docker_exec(&name, &["ip", "route"]);
    let want_route = format!("default via {} dev eth0", bed.gateway().ip());
    assert!(
        routes.contains(&want_route),
        "routes {routes:?}, want {want_route}"
    );
    let mac = docker_exec(&name, &["cat", "/sys/class/net/eth0/address"]);
    let o = ip.octets();
    assert_eq!(
        mac.trim(),
        format!("02:d5:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
    );
    let hostname = docker_exec(&name, &["hostname"]);
    assert_eq!(hostname.trim(), name);
    assert!(
        bed.ping_from_host(0, ip),
        "{ip} does not answer from the gateway"
    );
    assert_eq!(bed.ovs_ports(0).len(), 1, "one OVS port for the container");

    let out = dockstack(&bed, &env, &["-c", &name, "destroy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&bed, 0);
    assert!(
        !bed.ping_from_host(0, ip),
        "{ip} still answers after destroy"
    );
}

#[test]
fn containers_on_two_hosts_ping_each_other() {
    let bed = bed(2);
    let a = bed.container_name("a");
    let b = bed.container_name("b");
    let (ip_a, ip_b) = (bed.subnet_ip(11), bed.subnet_ip(12));
    let env = bed.write_environment(&[
        BedContainer::new(&a, 0, ip_a),
        BedContainer::new(&b, 1, ip_b),
    ]);
    // Without -c: every container of the file.
    let out = dockstack(&bed, &env, &["run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(bed.managed_apps(0), vec![a.clone()]);
    assert_eq!(bed.managed_apps(1), vec![b.clone()]);

    docker_exec(&a, &["ping", "-c1", "-W2", &ip_b.to_string()]);
    docker_exec(&b, &["ping", "-c1", "-W2", &ip_a.to_string()]);

    let out = dockstack(&bed, &env, &["destroy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&bed, 0);
    assert_nothing_left(&bed, 1);
}

#[test]
fn a_missing_image_is_named_and_nothing_is_left() {
    let bed = bed(1);
    let name = bed.container_name("noimg");
    let image = format!("dockstack-no-such-image-{}", bed.slot());
    let mut c = BedContainer::new(&name, 0, bed.subnet_ip(13));
    c.image = image.clone();
    let env = bed.write_environment(&[c]);

    let out = dockstack(&bed, &env, &["-c", &name, "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&image),
        "error does not name the image: {stderr}"
    );
    assert!(
        stderr.contains(bed.host(0).name()),
        "error does not name the host: {stderr}"
    );
    assert_nothing_left(&bed, 0);
}

#[test]
fn an_unreachable_server_is_named_and_nothing_is_left() {
    let mut bed = bed(1);
    let name = bed.container_name("unreach");
    let env = bed.write_environment(&[BedContainer::new(&name, 0, bed.subnet_ip(14))]);
    bed.kill_server(0).expect("kill server");

    let out = dockstack(&bed, &env, &["-c", &name, "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let host = bed.host(0);
    assert!(
        stderr.contains(host.name()),
        "error does not name the host: {stderr}"
    );
    assert!(
        stderr.contains(&host.mgmt_ip().to_string()),
        "error does not name the address: {stderr}"
    );
    assert_nothing_left(&bed, 0);
}
