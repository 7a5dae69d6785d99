//! A cluster with `cluster: {etcd: ...}`: a three-member etcd (Debian's)
//! on three simulated hosts, with mutual TLS. Two files racing for one
//! address on two hosts: every time exactly one holds it and the other is
//! refused naming it, with all members up and with one killed; a
//! reservation a dead client left is shown, refused to another file and
//! taken back by its own file's apply; with etcd down, changes are refused
//! with a clear error and `status` still works.

use std::path::{Path, PathBuf};

use dockstack_tests::etcd::EtcdCluster;
use dockstack_tests::support::{bed, dockstack, exists, ok, text};
use dockstack_tests::testbed::{BedContainer, TestBed};

const ROUNDS: usize = 20;

/// `file` in the bed's directory: `c` alone, with the etcd's section.
fn write(bed: &TestBed, etcd: &EtcdCluster, file: &str, c: BedContainer) -> PathBuf {
    let path = bed.dir().join(file);
    std::fs::write(&path, bed.environment_yaml(&[c]) + &etcd.yaml()).unwrap();
    path
}

/// `rounds` races of `run` of both files at once (the second waits for
/// the cluster's lock): exactly one holds the address each time, the
/// other is refused naming it.
fn race(bed: &TestBed, env_a: &Path, env_b: &Path, ip: &str, rounds: usize, what: &str) {
    let (mut won_a, mut won_b) = (0, 0);
    for round in 0..rounds {
        let (out_a, out_b) = std::thread::scope(|s| {
            let ta = s.spawn(|| dockstack(bed, env_a, &["--wait", "60", "run"]));
            let tb = s.spawn(|| dockstack(bed, env_b, &["--wait", "60", "run"]));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let (a, b) = (out_a.status.success(), out_b.status.success());
        assert!(
            a != b,
            "{what} round {round}: not exactly one run got {ip}\nA: {}\nB: {}",
            text(&out_a),
            text(&out_b)
        );
        let loser = if a { &out_b } else { &out_a };
        assert!(
            text(loser).contains(&format!("address {ip} of "))
                && text(loser).contains("reserved in etcd")
                || text(loser).contains(&format!("address {ip} of "))
                    && text(loser).contains("is held by container"),
            "{what} round {round}: refused without naming {ip}: {}",
            text(loser)
        );
        if a {
            won_a += 1;
        } else {
            won_b += 1;
        }
        ok(bed, env_a, &["destroy"]);
        ok(bed, env_b, &["destroy"]);
    }
    println!(
        "{what}: {rounds} rounds, {won_a} won by file A (host 0), {won_b} by file B (host 1); exactly one each time"
    );
}

#[test]
fn two_files_racing_for_one_address_exactly_one_holds_it_with_and_without_a_member() {
    let bed = bed(3);
    let mut etcd = EtcdCluster::start(&bed);
    let (a, b) = (bed.container_name("etcda"), bed.container_name("etcdb"));
    let ip = bed.subnet_ip(50);
    let env_a = write(&bed, &etcd, "a.yaml", BedContainer::new(&a, 0, ip));
    let env_b = write(&bed, &etcd, "b.yaml", BedContainer::new(&b, 1, ip));
    let ip_text = ip.to_string();
    race(&bed, &env_a, &env_b, &ip_text, ROUNDS, "all members up");

    // The reservation is in etcd while a container holds it.
    ok(&bed, &env_a, &["run"]);
    let out = ok(&bed, &env_b, &["addresses"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&ip_text) && l.contains(&a) && l.contains("held")),
        "{listed}"
    );
    ok(&bed, &env_a, &["destroy"]);

    etcd.kill(2);
    assert!(etcd.wait_healthy(2), "{}", etcd.logs());
    race(&bed, &env_a, &env_b, &ip_text, ROUNDS, "member m2 killed");
}

#[test]
fn an_orphan_reservation_is_shown_refused_to_another_file_and_reclaimed_by_its_own() {
    let bed = bed(3);
    let etcd = EtcdCluster::start(&bed);
    let (a, b) = (bed.container_name("orpha"), bed.container_name("orphb"));
    let ip = bed.subnet_ip(51);
    let env_a = write(&bed, &etcd, "a.yaml", BedContainer::new(&a, 0, ip));
    let env_b = write(&bed, &etcd, "b.yaml", BedContainer::new(&b, 1, ip));
    let file_a = std::fs::canonicalize(&env_a).unwrap().display().to_string();
    // What a client that died between the reservation and the plug leaves.
    let value = format!(
        r#"{{"address":"{ip}","container":"{a}","host":"{}","file":"{file_a}","mac":"02:d5:00:00:00:00","since_unix_ms":0}}"#,
        bed.host(0).name()
    );
    let key = format!("{}/addresses/{ip}", etcd.prefix());
    let put = etcd.etcdctl(&["put", &key, &value]);
    assert!(put.status.success(), "{}", text(&put));

    let out = ok(&bed, &env_b, &["addresses"]);
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&ip.to_string()) && l.contains("orphan") && l.contains(&file_a)),
        "{listed}"
    );
    let out = dockstack(&bed, &env_b, &["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "address {ip} of {b} is reserved in etcd for container {a} of {file_a}"
        )),
        "{}",
        text(&out)
    );
    assert!(!exists(&b));
    ok(&bed, &env_a, &["apply", "--yes"]);
    assert!(exists(&a));
    let got = etcd.etcdctl(&["get", &key, "--print-value-only"]);
    let got = String::from_utf8_lossy(&got.stdout);
    assert!(
        got.contains(&bed.host(0).name().to_string())
            && got.contains(&dockstack_tests::support::derived_mac(ip)),
        "{got}"
    );
    ok(&bed, &env_a, &["destroy"]);
    let gone = etcd.etcdctl(&["get", &key, "--print-value-only"]);
    assert!(
        String::from_utf8_lossy(&gone.stdout).trim().is_empty(),
        "{}",
        text(&gone)
    );
}

#[test]
fn with_etcd_down_changes_are_refused_and_status_works() {
    let bed = bed(3);
    let mut etcd = EtcdCluster::start(&bed);
    let name = bed.container_name("etcddown");
    let ip = bed.subnet_ip(52);
    let env = write(&bed, &etcd, "env.yaml", BedContainer::new(&name, 0, ip));
    ok(&bed, &env, &["run"]);
    for i in 0..3 {
        etcd.kill(i);
    }
    for args in [&["stop"][..], &["destroy"], &["apply", "--yes"]] {
        let out = dockstack(&bed, &env, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("cannot be reached")
                && text(&out).contains("no change is made while it is down"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert!(exists(&name), "a refused change removed the container");
    let out = ok(&bed, &env, &["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&name),
        "{}",
        text(&out)
    );
    ok(&bed, &env, &["plan"]);
    // Without the cluster section, the servers' own lock alone: as before.
    let plain = bed.dir().join("plain.yaml");
    std::fs::write(
        &plain,
        bed.environment_yaml(&[BedContainer::new(&name, 0, ip)]),
    )
    .unwrap();
    ok(&bed, &plain, &["destroy"]);
}
