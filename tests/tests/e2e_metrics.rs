//! `dockstack-server --metrics`: Prometheus scrapes of a real server, whose
//! counters move by exactly what a run, a restart of the network holder
//! and a failed plug do, and nothing else.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use dockstack_tests::support::{self, dockstack, ok, text, wait_until};
use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, ensure_test_image};

const METRICS_PORT: u16 = 9388;

/// One scrape of host 0's server.
fn scrape(bed: &TestBed) -> BTreeMap<String, f64> {
    support::scrape(bed, 0, METRICS_PORT)
}

fn get(m: &BTreeMap<String, f64>, key: &str) -> f64 {
    m.get(key).copied().unwrap_or(0.0)
}

/// The samples that differ between two scrapes, by how much; histogram
/// buckets, sums and the gauges of containers left out (their change is
/// checked on its own).
fn moved(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter(|(k, _)| {
            !k.contains("_bucket")
                && !k.contains("_sum")
                && !k.starts_with("dockstack_containers")
                && !k.starts_with("dockstack_docker_events")
        })
        .filter_map(|(k, v)| {
            let d = v - get(before, k);
            (d != 0.0).then(|| (k.clone(), d))
        })
        .collect()
}

fn expect(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
#[allow(clippy::too_many_lines)]
fn metrics_count_a_run_a_replug_after_a_restart_and_a_failed_plug_exactly() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions {
        server_args: vec!["--metrics".into(), format!("0.0.0.0:{METRICS_PORT}")],
        ..BedOptions::hosts(1)
    })
    .expect("test bed");
    let name = bed.container_name("metered");
    let ip = bed.subnet_ip(40);
    let env = bed.write_environment(&[BedContainer::new(&name, 0, ip)]);

    let s0 = scrape(&bed);
    ok(&bed, &env, &["run"]);
    let s1 = scrape(&bed);
    assert_eq!(
        moved(&s0, &s1),
        expect(&[
            // `run` reads every host's addresses first (see `addresses`).
            (
                "dockstack_operations_total{action=\"list\",result=\"ok\"}",
                1.0
            ),
            (
                "dockstack_operation_duration_seconds_count{action=\"list\"}",
                1.0
            ),
            (
                "dockstack_operations_total{action=\"run\",result=\"ok\"}",
                1.0
            ),
            (
                "dockstack_operation_duration_seconds_count{action=\"run\"}",
                1.0
            ),
            ("dockstack_plugs_total{kind=\"plug\"}", 1.0),
            ("dockstack_plug_duration_seconds_count{kind=\"plug\"}", 1.0),
        ])
    );
    assert_eq!(
        get(
            &s1,
            "dockstack_containers{state=\"running\",health=\"none\"}"
        ),
        1.0,
        "{s1:#?}"
    );
    // The sandbox's start and the application's, at least (other tests'
    // containers on the same dockerd may add theirs).
    assert!(
        get(&s1, "dockstack_docker_events_total")
            >= get(&s0, "dockstack_docker_events_total") + 2.0,
        "{s0:#?}\n{s1:#?}"
    );

    // Docker restarts the network holder: the server re-plugs it.
    let sandbox = format!("{name}.dockstack-sandbox");
    let out = std::process::Command::new("docker")
        .args(["restart", "-t", "0", &sandbox])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let replugs = "dockstack_plugs_total{kind=\"replug\"}";
    assert!(
        wait_until(Duration::from_secs(10), || get(&scrape(&bed), replugs)
            > get(&s1, replugs)),
        "no re-plug counted; server log:\n{}",
        bed.server_log(0)
    );
    // Whatever else the restart sets off has had time to land.
    std::thread::sleep(Duration::from_millis(500));
    let s2 = scrape(&bed);
    assert_eq!(
        moved(&s1, &s2),
        expect(&[
            (replugs, 1.0),
            (
                "dockstack_plug_duration_seconds_count{kind=\"replug\"}",
                1.0
            ),
        ])
    );
    assert!(get(&s2, "dockstack_docker_events_total") > get(&s1, "dockstack_docker_events_total"));

    // A plug that fails: its bridge is on no host.
    let broken = bed.container_name("nobridge");
    let env2 = bed.write_environment(&[
        BedContainer::new(&name, 0, ip),
        BedContainer::new(&broken, 0, bed.subnet_ip(41)).with_yaml("bridge: nosuchbr0"),
    ]);
    let out = dockstack(&bed, &env2, &["-c", &broken, "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s3 = scrape(&bed);
    assert_eq!(
        moved(&s2, &s3),
        expect(&[
            (
                "dockstack_operations_total{action=\"list\",result=\"ok\"}",
                1.0
            ),
            (
                "dockstack_operation_duration_seconds_count{action=\"list\"}",
                1.0
            ),
            (
                "dockstack_operations_total{action=\"run\",result=\"error\"}",
                1.0
            ),
            (
                "dockstack_operation_duration_seconds_count{action=\"run\"}",
                1.0
            ),
            ("dockstack_plug_failures_total{step=\"find_bridge\"}", 1.0),
        ])
    );
    assert_eq!(
        get(
            &s3,
            "dockstack_containers{state=\"running\",health=\"none\"}"
        ),
        1.0
    );
    assert_eq!(
        get(&s3, "dockstack_docker_event_stream_reconnects_total"),
        0.0
    );

    ok(&bed, &env, &["destroy"]);
    let s4 = scrape(&bed);
    // The file now names both containers (write_environment wrote it
    // again): one destroy each, the never-made one's a no-op.
    assert_eq!(
        moved(&s3, &s4),
        expect(&[
            (
                "dockstack_operations_total{action=\"destroy\",result=\"ok\"}",
                2.0
            ),
            (
                "dockstack_operation_duration_seconds_count{action=\"destroy\"}",
                2.0
            ),
        ])
    );
    assert_eq!(
        get(
            &s4,
            "dockstack_containers{state=\"running\",health=\"none\"}"
        ),
        0.0
    );
}

#[test]
fn metrics_are_off_unless_asked_for_and_a_bad_address_fails_the_start() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions::hosts(1)).expect("test bed");
    let addr = SocketAddr::new(bed.host(0).mgmt_ip().into(), METRICS_PORT);
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "something serves {addr} without --metrics"
    );
    drop(bed);
    let err = TestBed::new(BedOptions {
        server_args: vec!["--metrics".into(), "192.0.2.1:9388".into()],
        ..BedOptions::hosts(1)
    })
    .expect_err("a server on an address it cannot bind");
    assert!(
        format!("{err:#}").contains("cannot serve metrics on 192.0.2.1:9388"),
        "{err:#}"
    );
}
