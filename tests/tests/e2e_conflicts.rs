//! Address conflicts caught on the wire, with no store: two environment
//! files racing for one address on two hosts never both get it (RFC 5227's
//! simultaneous probes), and a node that claims a plugged container's
//! address afterwards shows in `status`, the log and the metrics at once,
//! and the address is defended.

use std::time::{Duration, Instant};

use dockstack_tests::foreign::ForeignNode;
use dockstack_tests::support::{
    bed, derived_mac, dockstack, eth0_addresses, exists, ok, scrape, status, text, wait_until,
};
use dockstack_tests::testbed::{BedContainer, BedOptions, TestBed, ensure_test_image};

const ROUNDS: usize = 20;
const METRICS_PORT: u16 = 9389;

/// Whether `name` runs with `ip` on its eth0.
fn holds(name: &str, ip: std::net::Ipv4Addr) -> bool {
    exists(name)
        && eth0_addresses(name)
            .iter()
            .any(|a| a.starts_with(&format!("{ip}/")))
}

#[test]
fn two_files_racing_for_one_address_on_two_hosts_never_both_get_it() {
    let bed = bed(2);
    let (a, b) = (bed.container_name("racea"), bed.container_name("raceb"));
    let ip = bed.subnet_ip(60);
    let write = |file: &str, c: BedContainer| {
        let path = bed.dir().join(file);
        std::fs::write(&path, bed.environment_yaml(&[c])).unwrap();
        path
    };
    let env_a = write("a.yaml", BedContainer::new(&a, 0, ip));
    let env_b = write("b.yaml", BedContainer::new(&b, 1, ip));
    // Both derive the same MAC from the address.
    let mac = derived_mac(ip);
    let (mut won_a, mut won_b, mut both_refused) = (0, 0, 0);
    for round in 0..ROUNDS {
        let (out_a, out_b) = std::thread::scope(|s| {
            let ta = s.spawn(|| dockstack(&bed, &env_a, &["run"]));
            let tb = s.spawn(|| dockstack(&bed, &env_b, &["run"]));
            (ta.join().unwrap(), tb.join().unwrap())
        });
        let (held_a, held_b) = (holds(&a, ip), holds(&b, ip));
        assert!(
            !(held_a && held_b),
            "round {round}: both run with {ip}\nA: {}\nB: {}",
            text(&out_a),
            text(&out_b)
        );
        assert!(
            !(out_a.status.success() && out_b.status.success()),
            "round {round}: both runs succeeded\nA: {}\nB: {}",
            text(&out_a),
            text(&out_b)
        );
        for (out, other, held) in [(&out_a, &b, held_a), (&out_b, &a, held_b)] {
            if out.status.success() {
                assert!(held, "round {round}: a run that succeeded holds no {ip}");
                continue;
            }
            let t = text(out);
            // Refused by the probe (naming the other's MAC), or by the
            // live address check when the other was plugged first
            // (naming the other container).
            let by_probe =
                t.contains(&format!("address {ip} is already answered for")) && t.contains(&mac);
            let by_check = t.contains(&format!("address {ip} of ")) && t.contains(other.as_str());
            assert!(
                by_probe || by_check,
                "round {round}: refused without naming {ip} and the other: {t}"
            );
        }
        match (out_a.status.success(), out_b.status.success()) {
            (true, _) => won_a += 1,
            (_, true) => won_b += 1,
            _ => both_refused += 1,
        }
        ok(&bed, &env_a, &["destroy"]);
        ok(&bed, &env_b, &["destroy"]);
        assert!(!exists(&a) && !exists(&b), "round {round}");
    }
    println!(
        "{ROUNDS} rounds: {won_a} won by host 0, {won_b} by host 1, {both_refused} both refused; never both"
    );
}

#[test]
fn a_claim_to_a_plugged_address_shows_in_status_and_metrics_and_is_defended() {
    ensure_test_image().expect("test image");
    let bed = TestBed::new(BedOptions {
        server_args: vec!["--metrics".into(), format!("0.0.0.0:{METRICS_PORT}")],
        ..BedOptions::hosts(1)
    })
    .expect("test bed");
    let name = bed.container_name("claimed");
    let ip = bed.subnet_ip(61);
    let env = bed.write_environment(&[BedContainer::new(&name, 0, ip)]);
    ok(&bed, &env, &["run"]);
    let own: netplug::Mac = derived_mac(ip).parse().unwrap();
    let claimant: netplug::Mac = "02:00:00:00:06:61".parse().unwrap();
    let node = ForeignNode::new(&bed, 0, "c", claimant);
    let conflicts = format!("dockstack_address_conflicts_total{{address=\"{ip}\"}}");
    let before = scrape(&bed, 0, METRICS_PORT);
    assert_eq!(before.get(&conflicts), None, "a conflict before any claim");
    assert!(
        status(&bed, &env)[&name]["conflict"].is_null(),
        "{:?}",
        status(&bed, &env)
    );
    // The container's plug announcements are over: what the node sees from
    // its MAC next is the defence.
    std::thread::sleep(Duration::from_millis(500));
    let socket = node.arp_socket();

    let claimed = Instant::now();
    node.claim(ip);
    let defended = node.await_announcement(&socket, ip, own, Duration::from_secs(5));
    let defence_took = claimed.elapsed();
    let mut in_status = None;
    let mut in_metrics = None;
    wait_until(Duration::from_secs(10), || {
        if in_status.is_none()
            && status(&bed, &env)[&name]["conflict"]
                .as_str()
                .is_some_and(|c| c.starts_with(&format!("{ip} claimed by {claimant}")))
        {
            in_status = Some(claimed.elapsed());
        }
        if in_metrics.is_none() && scrape(&bed, 0, METRICS_PORT).get(&conflicts) == Some(&1.0) {
            in_metrics = Some(claimed.elapsed());
        }
        in_status.is_some() && in_metrics.is_some()
    });
    println!(
        "claim of {ip} by {claimant}: in status after {in_status:?}, in /metrics after {in_metrics:?}, defended after {defence_took:?}"
    );
    assert!(in_status.is_some(), "{:?}", status(&bed, &env));
    assert!(in_metrics.is_some(), "{:?}", scrape(&bed, 0, METRICS_PORT));
    assert!(defended, "no gratuitous ARP from {own} defended {ip}");
    let m = scrape(&bed, 0, METRICS_PORT);
    assert_eq!(
        m.get("dockstack_addresses_in_conflict"),
        Some(&1.0),
        "{m:?}"
    );
    assert_eq!(
        m.get("dockstack_address_defences_total"),
        Some(&1.0),
        "{m:?}"
    );
    // The table's note and the log say it too.
    let out = ok(&bed, &env, &["status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!("CONFLICT: {ip} claimed by {claimant}")),
        "{table}"
    );
    let log = bed.server_log(0);
    assert!(
        log.contains("address conflict") && log.contains(&claimant.to_string()),
        "{log}"
    );

    // A second claim within DEFEND_INTERVAL is counted, not defended.
    node.claim(ip);
    assert!(
        !node.await_announcement(&socket, ip, own, Duration::from_secs(2)),
        "defended twice within the interval"
    );
    assert!(wait_until(Duration::from_secs(5), || scrape(
        &bed,
        0,
        METRICS_PORT
    )
    .get(&conflicts)
        == Some(&2.0)));
    // Destroyed: the conflict goes with it.
    ok(&bed, &env, &["destroy"]);
    let m = scrape(&bed, 0, METRICS_PORT);
    assert_eq!(
        m.get("dockstack_addresses_in_conflict"),
        Some(&0.0),
        "{m:?}"
    );
}
