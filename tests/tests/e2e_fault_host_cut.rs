//! End to end: one of three hosts cut off (its server's traffic dropped
//! inside its namespace) in the middle of an `apply`. The apply stops at
//! the first step that needs that host, naming it and what it left undone,
//! with nothing of the other hosts half-made; `status` meanwhile names the
//! host it could not ask, within the connect timeout; once the host is
//! back, `apply` completes and `plan` exits 0.

use std::path::Path;
use std::time::{Duration, Instant};

use dockstack_tests::support::{
    answers_within, assert_nothing_left, assert_pairs_whole, bed, dockstack, ok, text, wait_until,
};
use dockstack_tests::testbed::{BedContainer, TestBed};

/// The client's connect timeout (`--connect-timeout`, its default).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Drops (no answer at all, as a host gone) every packet to host `i`'s
/// server port, inside its namespace; `false` lets them through again.
fn cut(bed: &TestBed, i: usize, on: bool) {
    let script = if on {
        format!(
            "add table inet dockstack_cut\n\
             add chain inet dockstack_cut input {{ type filter hook input priority -10; policy accept; }}\n\
             add rule inet dockstack_cut input tcp dport {} drop\n",
            bed.host(i).port()
        )
    } else {
        "delete table inet dockstack_cut\n".to_string()
    };
    let path = bed.dir().join("cut.nft");
    std::fs::write(&path, script).expect("the nft script");
    bed.run_in_host(i, &["nft", "-f", &path.display().to_string()])
        .unwrap_or_else(|e| panic!("nft in host {i}: {e:#}"));
}

fn write(bed: &TestBed, containers: &[(&str, usize, u32, u32)]) -> std::path::PathBuf {
    let list: Vec<BedContainer> = containers
        .iter()
        .map(|(name, host, n, step)| {
            BedContainer::new(*name, *host, bed.subnet_ip(*n)).with_yaml(&format!("step: {step}\n"))
        })
        .collect();
    bed.write_environment(&list)
}

fn status_names_the_host(bed: &TestBed, env: &Path, host: &str) -> Duration {
    let began = Instant::now();
    let out = dockstack(bed, env, &["status"]);
    let took = began.elapsed();
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("FAILED host {host}")),
        "status does not name {host}: {}",
        text(&out)
    );
    took
}

#[test]
fn a_host_cut_off_mid_apply_stops_it_at_its_step_and_the_next_apply_completes() {
    let mut bed = bed(3);
    let names: Vec<String> = ["cut0", "cut1", "cut2", "keep1"]
        .iter()
        .map(|n| bed.container_name(n))
        .collect();
    let h1 = bed.host(1).name().to_string();
    // Host 1 runs a container before; the apply adds one per host, one
    // step each.
    let before = write(&bed, &[(&names[3], 1, 93, 0)]);
    ok(&bed, &before, &["apply", "--yes"]);
    let env = write(
        &bed,
        &[
            (&names[0], 0, 90, 0),
            (&names[1], 1, 91, 1),
            (&names[2], 2, 92, 2),
            (&names[3], 1, 93, 0),
        ],
    );

    // Host 0's run is held a moment, while host 1 is cut: its step is next.
    bed.set_server_env("DOCKSTACK_SERVER_PAUSE", "run-started:2000");
    bed.restart_server(0).expect("restart host 0's server");
    let from = bed.server_log(0).len();
    let began = Instant::now();
    let apply = bed.spawn_client(&env, &["apply", "--yes"]);
    assert!(
        wait_until(Duration::from_secs(60), || bed
            .server_log(0)
            .get(from..)
            .is_some_and(|l| l.contains("run-started: held"))),
        "host 0's run was not held:\n{}",
        bed.server_log(0)
    );
    cut(&bed, 1, true);
    let out = apply.wait_with_output().expect("the apply");
    let apply_took = began.elapsed();
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.lines()
            .any(|l| l.starts_with("FAILED apply:") && l.contains(&h1)),
        "the apply's failure does not name {h1}: {said}"
    );
    for (name, host) in [
        (&names[1], &h1),
        (&names[2], &bed.host(2).name().to_string()),
    ] {
        assert!(
            said.contains(&format!("left undone: create     {name} on {host}")),
            "the apply does not say {name} was left undone: {said}"
        );
    }
    // Nothing half-made: host 0 has its new pair whole, host 2 nothing yet.
    assert_eq!(assert_pairs_whole(&bed, 0), vec![names[0].clone()]);
    assert_eq!(assert_pairs_whole(&bed, 2), Vec::<String>::new());

    let status_took = status_names_the_host(&bed, &env, &h1);
    assert!(
        status_took < CONNECT_TIMEOUT + Duration::from_secs(2),
        "status took {status_took:?} with {h1} cut off"
    );
    let plan = dockstack(&bed, &env, &["plan"]);
    assert_ne!(plan.status.code(), Some(0), "{}", text(&plan));

    cut(&bed, 1, false);
    ok(&bed, &env, &["apply", "--yes"]);
    let plan = dockstack(&bed, &env, &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    for (i, n) in [(0, 90), (1, 91), (2, 92), (1, 93)] {
        assert!(
            answers_within(&bed, i, bed.subnet_ip(n), Duration::from_secs(10)),
            "address {n} on host {i}"
        );
    }
    eprintln!(
        "apply with {h1} cut: failed after {:.1} s; status named it in {:.2} s",
        apply_took.as_secs_f64(),
        status_took.as_secs_f64()
    );
    ok(&bed, &env, &["destroy"]);
    for i in 0..3 {
        assert_nothing_left(&bed, i);
    }
}
