//! End to end: the server SIGKILLed between the steps of a run, of a
//! same-host replacement and of a destroy (held there by the debug build's
//! `DOCKSTACK_SERVER_PAUSE` fault point). Once it is started again, its
//! start-up reconcile leaves the pair whole and plugged or gone, never half,
//! with no replacement's leftover; the next `run`/`apply` completes and
//! nothing is left over.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use dockstack_tests::support::{
    answers_within, assert_nothing_left, bed, dockstack, host_veths, inspect, ok, show, text,
    wait_until,
};
use dockstack_tests::testbed::{BedContainer, SANDBOX_SUFFIX, TestBed};

const PAUSE: &str = "DOCKSTACK_SERVER_PAUSE";

/// Host 0's server log from byte `from` on.
fn log_since(bed: &TestBed, from: usize) -> String {
    let log = bed.server_log(0);
    log.get(from..).unwrap_or_default().to_string()
}

/// Starts `dockstack -f ENV ARGS` with the server held at `step`, SIGKILLs
/// the server there, and starts it again with nothing held; returns once its
/// start-up reconcile is done. The client, its server gone, must fail.
fn kill_at(bed: &mut TestBed, step: &str, env: &Path, args: &[&str]) {
    bed.set_server_env(PAUSE, &format!("{step}:120000"));
    bed.restart_server(0).expect("restart the server");
    let from = bed.server_log(0).len();
    let mut client = bed.spawn_client(env, args);
    let held = wait_until(Duration::from_secs(90), || {
        log_since(bed, from).contains(&format!("{step}: held"))
    });
    if !held {
        let _ = client.kill();
        let out = client.wait_with_output().expect("the client's output");
        panic!(
            "{step} was never held; client: {}\nserver:\n{}",
            text(&out),
            log_since(bed, from)
        );
    }
    bed.kill_server(0).expect("kill the server");
    let deadline = Instant::now() + Duration::from_secs(60);
    while client.try_wait().expect("the client").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let waited = client.try_wait().expect("the client").is_some();
    if !waited {
        let _ = client.kill();
    }
    let out: Output = client.wait_with_output().expect("the client's output");
    assert!(waited, "{step}: the client hung once its server was gone");
    assert!(
        !out.status.success(),
        "{step}: the client succeeded with its server killed: {}",
        text(&out)
    );

    bed.set_server_env(PAUSE, "none:0");
    let from = bed.server_log(0).len();
    bed.start_server(0).expect("start the server again");
    assert!(
        wait_until(Duration::from_secs(60), || log_since(bed, from)
            .contains("start-up reconcile done")),
        "{step}: no start-up reconcile:\n{}",
        log_since(bed, from)
    );
}

/// After the reconcile: `name`'s pair whole (its sandbox running with one
/// port and its veth, the application plugged if it runs) or gone (no
/// port, no veth); no replacement's leftover. True when whole.
fn whole_or_gone(bed: &TestBed, env: &Path, name: &str, step: &str) -> bool {
    let containers = bed.managed_containers(0);
    let why = || format!("{step}: {containers:?}\n{}", bed.server_log(0));
    assert!(
        !containers.iter().any(|c| c.contains(".dockstack-next")),
        "a replacement's leftover: {}",
        why()
    );
    let sandbox = format!("{name}{SANDBOX_SUFFIX}");
    let (app, sb) = (
        containers.contains(&name.to_string()),
        containers.contains(&sandbox),
    );
    assert_eq!(app, sb, "half a pair: {}", why());
    let (ports, veths) = (bed.ovs_ports(0), host_veths(bed, 0));
    if app {
        assert_eq!(inspect(&sandbox, "{{.State.Running}}"), "true", "{}", why());
        // A run cut short before its application started leaves it
        // created: the next run starts it. A running one is plugged.
        if inspect(name, "{{.State.Running}}") == "true" {
            assert_eq!(show(bed, env, name)["plugged"], true, "{}", why());
        }
        assert_eq!(ports.len(), 1, "ports {ports:?}: {}", why());
    } else {
        assert_eq!(ports, Vec::<String>::new(), "{}", why());
    }
    assert_eq!(
        veths.len(),
        ports.len(),
        "veths {veths:?}, ports {ports:?}: {}",
        why()
    );
    app
}

/// The next apply (or run) completed: `plan` exits 0, the address answers.
fn serves(bed: &TestBed, env: &Path, name: &str, n: u32, step: &str) {
    let plan = dockstack(bed, env, &["plan"]);
    assert_eq!(plan.status.code(), Some(0), "{step}: {}", text(&plan));
    assert_eq!(inspect(name, "{{.State.Running}}"), "true", "{step}");
    assert!(
        answers_within(bed, 0, bed.subnet_ip(n), Duration::from_secs(10)),
        "{step}: {name} does not answer:\n{}",
        bed.server_log(0)
    );
}

#[test]
fn a_server_killed_between_the_steps_of_a_run_leaves_the_pair_whole_or_gone() {
    let mut bed = bed(1);
    let name = bed.container_name("run");
    let env = bed.write_environment(&[BedContainer::new(&name, 0, bed.subnet_ip(80))]);
    // Held after: the sandbox is made, plugged; the application created,
    // started (before the postcreation hooks). What the reconcile leaves.
    for (step, whole) in [
        ("run-sandbox-made", false),
        ("run-plugged", false),
        ("run-created", true),
        ("run-started", true),
    ] {
        let began = Instant::now();
        kill_at(&mut bed, step, &env, &["run"]);
        assert_eq!(whole_or_gone(&bed, &env, &name, step), whole, "{step}");
        ok(&bed, &env, &["run"]);
        serves(&bed, &env, &name, 80, step);
        ok(&bed, &env, &["destroy"]);
        assert_nothing_left(&bed, 0);
        eprintln!("{step}: {:.1} s", began.elapsed().as_secs_f64());
    }
}

#[test]
fn a_server_killed_between_the_steps_of_a_replacement_leaves_one_whole_pair() {
    let mut bed = bed(1);
    let name = bed.container_name("swap");
    let write = |bed: &TestBed, version: usize| {
        bed.write_environment(&[BedContainer::new(&name, 0, bed.subnet_ip(81))
            .with_yaml(&format!("env:\n  VERSION: \"{version}\"\n"))])
    };
    let version = |bed: &TestBed| {
        inspect(&name, "{{range .Config.Env}}{{println .}}{{end}}")
            .lines()
            .find_map(|l| l.strip_prefix("VERSION=").map(str::to_string))
            .unwrap_or_else(|| panic!("{name} has no VERSION:\n{}", bed.server_log(0)))
    };
    ok(&bed, &write(&bed, 0), &["apply", "--yes"]);
    // Held after: the new pair made (the old untouched); the old stopped
    // and its address unplugged; the address in the new sandbox; the old
    // pair removed (before the new one takes the names). Which spec the
    // reconcile leaves: the old one brought back, or the new one finished.
    for (i, (step, finished)) in [
        ("replace-next-made", false),
        ("replace-unplugged", false),
        ("replace-plugged", false),
        ("replace-old-removed", true),
    ]
    .into_iter()
    .enumerate()
    {
        let began = Instant::now();
        let env = write(&bed, i + 1);
        kill_at(&mut bed, step, &env, &["apply", "--yes"]);
        assert!(
            whole_or_gone(&bed, &env, &name, step),
            "{step}: {name} gone"
        );
        let want = if finished { i + 1 } else { i };
        assert_eq!(version(&bed), want.to_string(), "{step}");
        assert!(
            answers_within(&bed, 0, bed.subnet_ip(81), Duration::from_secs(10)),
            "{step}: {name} does not answer after the reconcile:\n{}",
            bed.server_log(0)
        );
        ok(&bed, &env, &["apply", "--yes"]);
        assert_eq!(version(&bed), (i + 1).to_string(), "{step}");
        serves(&bed, &env, &name, 81, step);
        eprintln!("{step}: {:.1} s", began.elapsed().as_secs_f64());
    }
    ok(&bed, &write(&bed, 0), &["destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_server_killed_between_the_steps_of_a_destroy_leaves_nothing() {
    let mut bed = bed(1);
    let name = bed.container_name("gone");
    let env = bed.write_environment(&[BedContainer::new(&name, 0, bed.subnet_ip(82))]);
    // Held after: the application removed; its port removed.
    for step in ["remove-app-removed", "remove-unplugged"] {
        let began = Instant::now();
        ok(&bed, &env, &["run"]);
        kill_at(&mut bed, step, &env, &["destroy"]);
        assert!(!whole_or_gone(&bed, &env, &name, step), "{step}");
        assert_nothing_left(&bed, 0);
        // Destroying what is gone only clears leftovers: none.
        ok(&bed, &env, &["destroy"]);
        eprintln!("{step}: {:.1} s", began.elapsed().as_secs_f64());
    }
    ok(&bed, &env, &["run"]);
    serves(&bed, &env, &name, 82, "after the destroys");
    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}
