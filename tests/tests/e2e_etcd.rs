//! A cluster with `cluster: {etcd: ...}`: a three-member etcd (Debian's)
//! on three simulated hosts, with mutual TLS. Two files racing for one
//! address on two hosts: every time exactly one holds it and the other is
//! refused naming it, with all members up and with one killed; a
//! reservation a client killed between reserve and plug left is shown,
//! refused to another file and taken back by its own file's apply; `lock`
//! shows the etcd lock and `unlock --force` breaks it, an admin's only;
//! `--etcd` serves a file without a `cluster` section; with etcd down,
//! changes are refused with a clear error and `status` still works.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dockstack_tests::etcd::EtcdCluster;
use dockstack_tests::support::{bed, dockstack, exists, ok, spawn, text, wait_locked, wait_until};
use dockstack_tests::testbed::{BedContainer, TestBed};
use serde_json::Value;

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

/// The rows of `addresses --output json`: one JSON document, an array.
fn addresses_json(bed: &TestBed, env: &Path, flags: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = flags
        .iter()
        .copied()
        .chain(["--output", "json", "addresses"])
        .collect();
    let out = ok(bed, env, &args);
    let rows: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(&out)));
    rows.as_array()
        .unwrap_or_else(|| panic!("not an array: {rows}"))
        .clone()
}

/// The row of `container` on `ip` among `rows`.
fn row<'a>(rows: &'a [Value], ip: &str, container: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["address"] == ip && r["container"] == container)
        .unwrap_or_else(|| panic!("no row of {container} on {ip}: {rows:?}"))
}

#[test]
fn a_client_killed_between_reserve_and_plug_leaves_an_orphan_its_own_file_reclaims() {
    let bed = bed(3);
    let etcd = EtcdCluster::start(&bed);
    let (a, b) = (bed.container_name("orpha"), bed.container_name("orphb"));
    let ip = bed.subnet_ip(51);
    let ip_text = ip.to_string();
    let env_a = write(&bed, &etcd, "a.yaml", BedContainer::new(&a, 0, ip));
    let env_b = write(&bed, &etcd, "b.yaml", BedContainer::new(&b, 1, ip));
    let file_a = std::fs::canonicalize(&env_a).unwrap().display().to_string();
    let key = format!("{}/addresses/{ip}", etcd.prefix());

    // Held between the reservation and the plug, and killed there.
    let pause = ("DOCKSTACK_CLIENT_PAUSE", "reserved:60000".to_string());
    let mut client = spawn(&bed, &env_a, &["run"], &[pause]);
    let reserved = wait_until(Duration::from_secs(30), || !etcd.value(&key).is_empty());
    client.kill().expect("SIGKILL the client");
    let out = client.wait_with_output().expect("the client's output");
    assert!(reserved, "never reserved: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("held at reserved"),
        "{}",
        text(&out)
    );
    assert!(!exists(&a), "the killed client plugged {a}");

    let rows = addresses_json(&bed, &env_b, &[]);
    let orphan = row(&rows, &ip_text, &a);
    assert_eq!(orphan["state"], "orphan", "{rows:?}");
    assert_eq!(orphan["reservation"], "orphan", "{rows:?}");
    assert_eq!(orphan["environment"], file_a.as_str(), "{rows:?}");
    let listed = String::from_utf8_lossy(&ok(&bed, &env_b, &["addresses"]).stdout).to_string();
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&ip_text) && l.contains("orphan") && l.contains(&file_a)),
        "{listed}"
    );

    // Another file is refused it (once the dead client's locks lapse).
    let out = dockstack(&bed, &env_b, &["--wait", "30", "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "address {ip} of {b} is reserved in etcd for container {a} of {file_a}"
        )),
        "{}",
        text(&out)
    );
    assert!(!exists(&b));
    // Its own file's apply takes it back.
    ok(&bed, &env_a, &["--wait", "30", "apply", "--yes"]);
    assert!(exists(&a));
    let got = etcd.value(&key);
    assert!(
        got.contains(&bed.host(0).name().to_string())
            && got.contains(&dockstack_tests::support::derived_mac(ip)),
        "{got}"
    );
    let rows = addresses_json(&bed, &env_b, &[]);
    assert_eq!(row(&rows, &ip_text, &a)["reservation"], "held", "{rows:?}");
    assert!(
        rows.iter().all(|r| r["state"] != "orphan"),
        "an orphan left: {rows:?}"
    );
    ok(&bed, &env_a, &["destroy"]);
    assert!(
        etcd.value(&key).is_empty(),
        "still reserved: {}",
        etcd.value(&key)
    );
}

#[test]
fn lock_shows_the_etcd_lock_and_unlock_force_breaks_it_as_an_admin_only() {
    let bed = bed(3);
    let etcd = EtcdCluster::start(&bed);
    let name = bed.container_name("etcdlk");
    let ip = bed.subnet_ip(53);
    let env = write(&bed, &etcd, "env.yaml", BedContainer::new(&name, 0, ip));
    let label = format!("etcd {}", etcd.prefix());
    let lock_key = format!("{}/lock", etcd.prefix());
    bed.add_client("oper", "operator");

    let hold = ("DOCKSTACK_LOCK_HOLD_MS", "30000".to_string());
    let holder = spawn(&bed, &env, &["run"], &[hold]);
    let line = wait_locked(&bed, &env, &[], &label, "run");
    assert!(
        line.contains(", since ") && line.contains("(held "),
        "{line}"
    );

    // An operator sees it, but may not break it.
    let refused = dockstack(&bed, &env, &["--as", "oper", "unlock", "--force"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("only the admin role may")
            && why.contains(&format!("FAILED {label}: not broken")),
        "{}",
        text(&refused)
    );
    assert!(!etcd.value(&lock_key).is_empty(), "an operator broke it");

    let out = ok(&bed, &env, &["unlock", "--force"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.lines().any(|l| l.starts_with(&label)
            && l.contains("broken: was locked by")
            && l.contains("for run of")),
        "{}",
        text(&out)
    );
    assert!(etcd.value(&lock_key).is_empty(), "the lock key is left");
    let audit = etcd.etcdctl(&[
        "get",
        &format!("{}/audit/", etcd.prefix()),
        "--prefix",
        "--print-value-only",
    ]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit.contains(r#""action":"unlock""#) && audit.contains(r#""action":"run""#),
        "no audit record: {audit}"
    );
    let out = ok(&bed, &env, &["lock"]);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with(&label) && l.ends_with("free")),
        "{}",
        text(&out)
    );

    // The broken holder wakes up fenced; the next apply proceeds.
    let out = holder.wait_with_output().expect("the holder's output");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the cluster's etcd lock was lost"),
        "{}",
        text(&out)
    );
    assert!(!exists(&name), "the broken holder's run made {name}");
    ok(&bed, &env, &["apply", "--yes"]);
    assert!(exists(&name));
    ok(&bed, &env, &["destroy"]);
}

#[test]
fn the_etcd_flag_takes_the_lock_and_reserves_for_a_file_without_a_cluster_section() {
    let bed = bed(3);
    let etcd = EtcdCluster::start(&bed);
    let name = bed.container_name("etcdflag");
    let ip = bed.subnet_ip(54);
    let env = bed.dir().join("plain.yaml");
    std::fs::write(
        &env,
        bed.environment_yaml(&[BedContainer::new(&name, 0, ip)]),
    )
    .unwrap();
    let flags = etcd.flags();
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The flag's prefix is the default one.
    let (label, key) = ("etcd /dockstack", format!("/dockstack/addresses/{ip}"));

    let hold = ("DOCKSTACK_LOCK_HOLD_MS", "8000".to_string());
    let args: Vec<&str> = flags.iter().copied().chain(["run"]).collect();
    let run = spawn(&bed, &env, &args, &[hold]);
    wait_locked(&bed, &env, &flags, label, "run");
    let out = run.wait_with_output().expect("the run's output");
    assert!(out.status.success(), "{}", text(&out));
    assert!(exists(&name));
    let reserved = etcd.value(&key);
    assert!(
        reserved.contains(&format!(r#""container":"{name}""#)),
        "{key}: {reserved:?}"
    );
    let rows = addresses_json(&bed, &env, &flags);
    assert_eq!(
        row(&rows, &ip.to_string(), &name)["reservation"],
        "held",
        "{rows:?}"
    );
    // Without the flag, the file knows no etcd.
    let out = ok(&bed, &env, &["lock"]);
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("etcd"),
        "{}",
        text(&out)
    );
    let args: Vec<&str> = flags.iter().copied().chain(["destroy"]).collect();
    ok(&bed, &env, &args);
    assert!(
        etcd.value(&key).is_empty(),
        "still reserved: {}",
        etcd.value(&key)
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
