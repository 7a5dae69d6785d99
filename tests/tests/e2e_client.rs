//! The client across hosts: one host down while the other completes, JSON
//! output, and the live status table.

use dockstack_tests::support::text;
use std::time::{Duration, Instant};

use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, ensure_test_image};

#[test]
fn one_host_down_fails_fast_while_the_other_completes() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let up = bed.container_name("up");
    let down = bed.container_name("down");
    let env = bed.write_environment(&[
        BedContainer::new(&up, 0, bed.subnet_ip(21)),
        BedContainer::new(&down, 1, bed.subnet_ip(22)),
    ]);
    bed.stop_host_link(1).expect("cut host 1 off");

    let began = Instant::now();
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["--connect-timeout", "2", "run"])
        .output()
        .unwrap();
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let host = bed.host(1);
    assert!(
        stderr.contains(&format!("FAILED {down} on {}", host.name())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&host.mgmt_ip().to_string()),
        "no address in: {stderr}"
    );
    assert!(stderr.contains("run: 1 succeeded, 1 failed"), "{stderr}");
    assert!(
        took < Duration::from_secs(15),
        "took {took:?} with a 2 s connect timeout"
    );

    // The reachable host did its part.
    assert_eq!(bed.managed_containers(0), vec![up.clone()]);
    assert!(bed.ping_from_host(0, bed.subnet_ip(21)));
    assert!(bed.managed_containers(1).is_empty());

    // status: the live table says which host could not be asked.
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["--connect-timeout", "2", "--output", "json", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![up.as_str()]);
    assert_eq!(list[0]["plugged"], true);
    assert!(String::from_utf8_lossy(&out.stderr).contains(host.name()));
}

#[test]
fn show_and_status_report_what_the_hosts_see() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions::hosts(2)).expect("test bed");
    let a = bed.container_name("sa");
    let b = bed.container_name("sb");
    let env = bed.write_environment(&[
        BedContainer::new(&a, 0, bed.subnet_ip(31)),
        BedContainer::new(&b, 1, bed.subnet_ip(32)).with_yaml("state: false"),
    ]);
    let run = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .arg("run")
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));

    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .args(["-c", &a, "--output", "json", "show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let info = &shown[0]["info"];
    assert_eq!(info["state"], "running");
    assert_eq!(info["plugged"], true);
    let want = format!("{}/{}", bed.subnet_ip(31), bed.gateway().prefix());
    assert_eq!(info["actual_addresses"][0], want.as_str());
    assert_eq!(info["host"], bed.host(0).name());

    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .arg("status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    let row_a = table.lines().find(|l| l.starts_with(&a)).expect("row of a");
    assert!(
        row_a.contains("running") && row_a.contains("yes"),
        "{row_a}"
    );
    let row_b = table.lines().find(|l| l.starts_with(&b)).expect("row of b");
    assert!(
        row_b.contains("created"),
        "state: false means created, not running: {row_b}"
    );
}
