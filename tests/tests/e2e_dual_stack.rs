//! Dual stack end to end on two hosts: a container with `ip6` and
//! `gateway6` answers ping and ping6 across the wire from the other host,
//! after a restart and after a recreate alike; its routes are right and stay
//! so (router advertisements ignored, the address never tentative); its A
//! and AAAA names resolve through a real dnsmasq container; the address is
//! carried through show, status and `get -p ip6`.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use dockstack_tests::support::{bed, dockstack, inspect, ok, show, status, text};
use dockstack_tests::testbed::{
    BedContainer, DNSMASQ_IMAGE, TestBed, docker, ensure_dnsmasq_image,
};

/// Runs `argv` in the network namespace of `container`'s process, with the
/// host's own iproute2 (the test image's busybox `ip` is not the reference).
fn in_netns(container: &str, argv: &[&str]) -> String {
    // Right after a restart Docker may report no process for a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pid = inspect(container, "{{.State.Pid}}");
    while pid == "0" && Instant::now() < deadline {
        sleep(Duration::from_millis(100));
        pid = inspect(container, "{{.State.Pid}}");
    }
    let out = Command::new("nsenter")
        .arg(format!("--target={pid}"))
        .arg("--net")
        .args(argv)
        .output()
        .expect("nsenter");
    assert!(
        out.status.success(),
        "{argv:?} in {container} (pid {pid}): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// eth0's addresses and routes are as the file says, whatever happened.
fn assert_routes(name: &str, gw: Ipv4Addr, ip6: Ipv6Addr, gw6: Ipv6Addr) {
    let default4 = in_netns(name, &["ip", "-4", "route", "show", "default"]);
    assert!(
        default4.contains(&format!("default via {gw} dev eth0")),
        "{name}: {default4}"
    );
    let default6 = in_netns(name, &["ip", "-6", "route", "show", "default"]);
    assert!(
        default6.contains(&format!("default via {gw6} dev eth0")),
        "{name}: {default6}"
    );
    // One default route per family: none learnt from a router.
    assert_eq!(default6.lines().count(), 1, "{name}: {default6}");
    let addrs = in_netns(name, &["ip", "-6", "addr", "show", "dev", "eth0"]);
    let line = addrs
        .lines()
        .find(|l| l.contains(&format!("inet6 {ip6}/64")))
        .unwrap_or_else(|| panic!("{name}: no {ip6}/64 on eth0: {addrs}"));
    assert!(
        !line.contains("tentative") && !line.contains("dadfailed"),
        "{name}: {line}"
    );
    let accept_ra = in_netns(name, &["cat", "/proc/sys/net/ipv6/conf/eth0/accept_ra"]);
    assert_eq!(accept_ra.trim(), "0", "{name}: accept_ra");
}

/// Both addresses answer from host 1, across the wire to host 0.
fn answers_both(bed: &TestBed, ip: Ipv4Addr, ip6: Ipv6Addr, when: &str) {
    assert!(
        bed.ping_from_host(1, ip),
        "{when}: {ip} does not answer ping"
    );
    assert!(
        bed.ping6_from_host(1, ip6),
        "{when}: {ip6} does not answer ping6"
    );
}

/// `dig +short NAME TYPE` from host 1 against the DNS container, retried
/// for up to 3 s (dnsmasq reloads on SIGHUP, asynchronously).
fn resolves(bed: &TestBed, server: Ipv4Addr, name: &str, kind: &str, want: &str) {
    let at = format!("@{server}");
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let out = bed.exec_in_host(
            1,
            &["dig", "+short", "+time=1", "+tries=1", &at, name, kind],
        );
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} {kind} via {server}: {got:?}, want {want}"
        );
        sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_dual_stack_container_answers_on_both_families_and_resolves_after_restart_and_recreate() {
    let bed = bed(2);
    ensure_dnsmasq_image().expect("dnsmasq image");
    let domain = format!("bed{}.test", bed.slot());
    let (dns, app) = (bed.container_name("dns6"), bed.container_name("dual"));
    let (dns_ip, ip) = (bed.subnet_ip(2), bed.subnet_ip(30));
    let (ip6, gw6) = (bed.subnet_ip6(0x30), bed.gateway6().ip());
    let gw = bed.gateway().ip();
    let dns_dir = bed.dir().join("dns");
    std::fs::create_dir_all(&dns_dir).unwrap();
    let hostsfile = dns_dir.join("dockstack.dns");
    let mut dns_c = BedContainer::new(&dns, 0, dns_ip).with_yaml(&format!(
        "domain: {domain}\nvolumes:\n- {}:/etc/dnsmasq.d\n\
         command: /usr/sbin/dnsmasq -k --no-resolv --no-hosts \
         --addn-hosts=/etc/dnsmasq.d/dockstack.dns --log-facility=- --user=root \
         --local=/{domain}/",
        dns_dir.display()
    ));
    dns_c.image = DNSMASQ_IMAGE.to_string();
    let dual = |version: u32| {
        BedContainer::new(&app, 0, ip).with_yaml(&format!(
            "domain: {domain}\nip6: {ip6}/64\ngateway6: {gw6}\nrestart: always\n\
             env:\n  VERSION: \"{version}\""
        ))
    };
    let registration = format!(
        "  dns:\n    container: {dns}\n    hostsfile: {}\n",
        hostsfile.display()
    );
    let write = |version| {
        bed.write_registered_environment(
            "environment.yaml",
            &[dns_c.clone(), dual(version)],
            &registration,
        )
    };
    let env = write(1);
    let fqdn = format!("{app}.{domain}");

    let out = ok(&bed, &env, &["run"]);
    answers_both(&bed, ip, ip6, "after run");
    assert_routes(&app, gw, ip6, gw6);
    // Both lines in the hosts file, and dnsmasq answers A and AAAA.
    let hosts = std::fs::read_to_string(&hostsfile).unwrap();
    assert!(
        hosts.contains(&format!("{ip} {fqdn}\n")) && hosts.contains(&format!("{ip6} {fqdn}\n")),
        "{hosts}\n{}",
        text(&out)
    );
    resolves(&bed, dns_ip, &fqdn, "A", &ip.to_string());
    resolves(&bed, dns_ip, &fqdn, "AAAA", &ip6.to_string());

    // Carried through the rest.
    let get = ok(&bed, &env, &["-c", &app, "-p", "ip6", "get"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), ip6.to_string());
    let shown = show(&bed, &env, &app);
    assert_eq!(shown["ip6"], format!("{ip6}/64"), "{shown}");
    assert_eq!(shown["gateway6"], gw6.to_string(), "{shown}");
    let actual: Vec<String> = shown["actual_addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert!(actual.contains(&format!("{ip6}/64")), "{shown}");
    let st = status(&bed, &env);
    assert_eq!(st[&app]["ip6"], format!("{ip6}/64"));
    assert_eq!(st[&app]["plugged"], true, "{:?}", st[&app]);
    // The address table lists the IPv6 address as the container's too.
    let table = ok(&bed, &env, &["addresses"]);
    assert!(
        String::from_utf8_lossy(&table.stdout)
            .lines()
            .any(|l| l.starts_with(&ip6.to_string()) && l.contains(&app)),
        "{}",
        text(&table)
    );

    // A restart by Docker, then a crash that the restart policy answers:
    // both addresses come back, the routes with them.
    let id = inspect(&app, "{{.Id}}");
    docker(&["restart", "-t", "1", &app]).expect("docker restart");
    answers_both(&bed, ip, ip6, "after docker restart");
    assert_routes(&app, gw, ip6, gw6);
    let pid = inspect(&app, "{{.State.Pid}}");
    let killed = Command::new("kill").args(["-9", &pid]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while [pid.as_str(), "0"].contains(&inspect(&app, "{{.State.Pid}}").as_str())
        || inspect(&app, "{{.State.Running}}") != "true"
    {
        assert!(
            Instant::now() < deadline,
            "{app} was not restarted by Docker"
        );
        sleep(Duration::from_millis(100));
    }
    answers_both(&bed, ip, ip6, "after a crash");
    assert_same_container(&app, &id);
    assert_routes(&app, gw, ip6, gw6);

    // A recreate (the file changes an env var): a new container, the same
    // addresses, answering on both.
    let env = write(2);
    let out = ok(&bed, &env, &["apply", "--yes"]);
    let new_id = inspect(&app, "{{.Id}}");
    assert_ne!(new_id, id, "apply did not recreate {app}: {}", text(&out));
    answers_both(&bed, ip, ip6, "after the recreate");
    assert_routes(&app, gw, ip6, gw6);
    resolves(&bed, dns_ip, &fqdn, "AAAA", &ip6.to_string());
    let plan = dockstack(&bed, &env, &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    // Destroy takes both lines out.
    ok(&bed, &env, &["-c", &app, "destroy"]);
    let hosts = std::fs::read_to_string(&hostsfile).unwrap();
    assert!(!hosts.contains(&fqdn), "{hosts}");
    ok(&bed, &env, &["destroy"]);
}

/// A crash restarts the same container: the id stays.
fn assert_same_container(name: &str, id: &str) {
    assert_eq!(
        inspect(name, "{{.Id}}"),
        id,
        "{name} was replaced, not restarted"
    );
}
