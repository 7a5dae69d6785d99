//! End to end: the change lock. Two `apply`s of one file at once: one
//! runs, the other is refused naming the holder (or, with `--wait`, runs
//! after it); a client killed while it holds the lock frees it within the
//! lease's time to live; `unlock --force` is an admin's, leaves an audit
//! line, and the holder it broke can change nothing after. And the lock's
//! cost, printed.

mod common;

use std::path::Path;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

use dockstack_tests::support::{self, bed, dockstack, exists, ok, text, wait_locked};
use dockstack_tests::testbed::{BedContainer, TestBed};

/// The servers' lease time to live (their default).
const TTL: Duration = Duration::from_millis(dockstack_types::lock::DEFAULT_TTL_MS as u64);
/// The client's exit status when another holds the lock.
const LOCKED: i32 = 4;

/// `dockstack -f ENV ARGS`, started; `hold_ms` holds the lock that long
/// before acting (a debug build's fault injection).
fn spawn(bed: &TestBed, env: &Path, args: &[&str], hold_ms: Option<u64>) -> Child {
    let vars: Vec<(&str, String)> = hold_ms
        .map(|ms| ("DOCKSTACK_LOCK_HOLD_MS", ms.to_string()))
        .into_iter()
        .collect();
    support::spawn(bed, env, args, &vars)
}

fn finish(child: Child) -> Output {
    child.wait_with_output().expect("dockstack's output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An environment of one container on host 0 at the bed's address `n`;
/// the container and the file's canonical path (as locks name it).
fn one_container(bed: &TestBed, name: &str, n: u32) -> (BedContainer, std::path::PathBuf) {
    let c = BedContainer::new(bed.container_name(name), 0, bed.subnet_ip(n));
    let env = bed.write_environment(std::slice::from_ref(&c));
    (c, env.canonicalize().expect("the environment file"))
}

/// Two containers on each of the bed's hosts.
fn four(bed: &TestBed) -> Vec<BedContainer> {
    (0..4)
        .map(|i| {
            BedContainer::new(
                bed.container_name(&format!("lk{i}")),
                i % bed.hosts().len(),
                bed.subnet_ip(40 + u32::try_from(i).unwrap()),
            )
        })
        .collect()
}

#[test]
fn two_applies_at_once_one_runs_and_the_other_is_refused_or_waits() {
    let bed = bed(2);
    let env = bed.write_environment(&four(&bed));
    let env = env.canonicalize().unwrap();

    let a = spawn(&bed, &env, &["apply", "--yes"], None);
    let b = spawn(&bed, &env, &["apply", "--yes"], None);
    let outs = [finish(a), finish(b)];
    let ran: Vec<&Output> = outs.iter().filter(|o| o.status.success()).collect();
    let refused: Vec<&Output> = outs
        .iter()
        .filter(|o| o.status.code() == Some(LOCKED))
        .collect();
    assert_eq!(
        (ran.len(), refused.len()),
        (1, 1),
        "{}\n----\n{}",
        text(&outs[0]),
        text(&outs[1])
    );
    assert!(
        stderr(ran[0]).contains("apply: 4 changes made"),
        "{}",
        text(ran[0])
    );
    let why = stderr(refused[0]);
    assert!(
        why.contains("is locked by") && why.contains(&format!("for apply of {}", env.display())),
        "{}",
        text(refused[0])
    );
    assert!(why.contains("nothing was done"), "{why}");
    // The holder is named by its certificate.
    assert!(why.contains("CN=client") || why.contains("client"), "{why}");
    ok(&bed, &env, &["plan"]);

    // With --wait, the second runs after the first: and finds nothing to do.
    ok(&bed, &env, &["destroy"]);
    let a = spawn(&bed, &env, &["--wait", "120", "apply", "--yes"], None);
    let b = spawn(&bed, &env, &["--wait", "120", "apply", "--yes"], None);
    let outs = [finish(a), finish(b)];
    for o in &outs {
        assert!(o.status.success(), "{}", text(o));
    }
    let said: Vec<String> = outs.iter().map(stderr).collect();
    let made = said
        .iter()
        .filter(|s| s.contains("apply: 4 changes made"))
        .count();
    let idle = said
        .iter()
        .filter(|s| s.contains("apply: nothing to do"))
        .count();
    assert_eq!((made, idle), (1, 1), "{said:?}");
    assert!(
        said.iter()
            .any(|s| s.contains("waiting up to 120 s") && s.contains("lock taken after")),
        "{said:?}"
    );
    ok(&bed, &env, &["plan"]);
    ok(&bed, &env, &["destroy"]);
}

#[test]
fn a_killed_holder_frees_the_lock_within_its_time_to_live() {
    let bed = bed(1);
    let (_, env) = one_container(&bed, "killed", 45);

    let mut holder = spawn(&bed, &env, &["apply", "--yes"], Some(120_000));
    wait_locked(&bed, &env, &[], "", "apply");
    // Refused at once, naming the holder, the action and its age.
    let began = Instant::now();
    let out = dockstack(&bed, &env, &["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(LOCKED), "{}", text(&out));
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "{:?}",
        began.elapsed()
    );
    assert!(stderr(&out).contains("(held "), "{}", text(&out));
    // `plan` takes no lock.
    let plan = dockstack(&bed, &env, &["plan"]);
    assert_eq!(plan.status.code(), Some(3), "{}", text(&plan));

    holder.kill().expect("SIGKILL the holder");
    let killed = Instant::now();
    holder.wait().expect("the holder's end");
    let out = ok(&bed, &env, &["--wait", "60", "apply", "--yes"]);
    let freed = killed.elapsed();
    assert!(stderr(&out).contains("lock taken after"), "{}", text(&out));
    assert!(
        stderr(&out).contains("apply: 1 changes made"),
        "{}",
        text(&out)
    );
    // The lease lapsed within TTL + 1 s (`waited`, below); the apply of one
    // container is in `freed` too.
    assert!(freed <= TTL + Duration::from_secs(6), "{freed:?}");
    let waited: f64 = stderr(&out)
        .split("lock taken after ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}", text(&out)));
    eprintln!(
        "figure: a SIGKILLed holder's lock taken by the next apply after {waited:.1} s of waiting; that apply done {:.2} s after the kill (TTL {} s)",
        freed.as_secs_f64(),
        TTL.as_secs()
    );
    assert!(
        waited <= (TTL + Duration::from_secs(1)).as_secs_f64(),
        "{waited}"
    );
    ok(&bed, &env, &["plan"]);
    ok(&bed, &env, &["destroy"]);
}

#[test]
fn unlock_force_is_an_admins_with_an_audit_line_and_the_broken_holder_is_fenced() {
    let bed = bed(1);
    let (c, env) = one_container(&bed, "broken", 46);
    bed.add_client("oper", "operator");
    let as_oper = |args: &[&str]| {
        bed.client_command()
            .args(["--as", "oper", "-f"])
            .arg(&env)
            .args(args)
            .output()
            .expect("run dockstack")
    };

    let holder = spawn(&bed, &env, &["run"], Some(8_000));
    wait_locked(&bed, &env, &[], "", "run");
    // An operator sees the lock, but may not break it.
    let seen = as_oper(&["lock"]);
    assert!(seen.status.success(), "{}", text(&seen));
    assert!(
        String::from_utf8_lossy(&seen.stdout).contains("for run of"),
        "{}",
        text(&seen)
    );
    let refused = as_oper(&["unlock", "--force"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        stderr(&refused).contains("only the admin role may"),
        "{}",
        text(&refused)
    );
    assert!(
        bed.server_log(0)
            .lines()
            .any(|l| l.contains("audit: refused") && l.contains("unlock")),
        "{}",
        bed.server_log(0)
    );
    // An operator's change is refused while another holds the lock.
    let out = as_oper(&["run"]);
    assert_eq!(out.status.code(), Some(LOCKED), "{}", text(&out));

    let out = ok(&bed, &env, &["unlock", "--force"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("broken: was locked by"),
        "{}",
        text(&out)
    );
    assert!(
        bed.server_log(0)
            .lines()
            .any(|l| l.contains("audit: lock broken") && l.contains("held_for=\"run\"")),
        "{}",
        bed.server_log(0)
    );
    let out = ok(&bed, &env, &["lock"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("free"),
        "{}",
        text(&out)
    );

    // The broken holder wakes up: its run is refused by the fence.
    let out = finish(holder);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("the lease is no longer held"),
        "{}",
        text(&out)
    );
    assert!(!exists(&c.name), "the broken holder's run made {}", c.name);
    ok(&bed, &env, &["run"]);
    ok(&bed, &env, &["destroy"]);
}

/// The median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// The lock alone, as a command takes it: acquire on `hosts` and release,
/// `rounds` times over one connection; the median round.
fn lock_round(bed: &TestBed, env: &Path, hosts: &[String], rounds: usize) -> Duration {
    use dockstack::connect::{Connector, Security};
    use dockstack::ops::{HostOverride, lock};
    let file = dockstack::environment::load(env).expect("the environment");
    let connector = Connector::new(Security::Tls(bed.tls_dir()), Duration::from_secs(5))
        .expect("the client certificate");
    let overrides = HostOverride::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let mut samples = Vec::new();
        // The first round connects: a command's operations share that
        // connection, so it is not the lock's cost.
        for _ in 0..=rounds {
            let began = Instant::now();
            let held = lock::acquire(&file, &connector, &overrides, "apply", hosts, None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            held.release().await;
            samples.push(began.elapsed());
        }
        samples.remove(0);
        median(samples)
    })
}

#[test]
fn the_locks_cost_on_a_run_and_on_an_apply_of_many_is_printed() {
    const MANY: u32 = 20;
    let bed = bed(2);
    let many: Vec<BedContainer> = (0..MANY)
        .map(|i| {
            BedContainer::new(
                bed.container_name(&format!("cost{i}")),
                usize::try_from(i).unwrap() % 2,
                bed.subnet_ip(60 + i),
            )
        })
        .collect();
    let env = bed.write_environment(&many);
    let one_host = vec![bed.host(0).name().to_string()];
    let all_hosts: Vec<String> = bed.hosts().iter().map(|h| h.name().to_string()).collect();
    let lock_one = lock_round(&bed, &env, &one_host, 30);
    let lock_all = lock_round(&bed, &env, &all_hosts, 30);

    let first = many[0].name.clone();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let began = Instant::now();
        ok(&bed, &env, &["-c", &first, "run"]);
        runs.push(began.elapsed());
        ok(&bed, &env, &["-c", &first, "destroy"]);
    }
    let run = median(runs);
    let began = Instant::now();
    let out = ok(&bed, &env, &["apply", "--yes"]);
    let apply = began.elapsed();
    assert!(
        stderr(&out).contains(&format!("apply: {MANY} changes made")),
        "{}",
        text(&out)
    );
    let share = |lock: Duration, op: Duration| 100.0 * lock.as_secs_f64() / op.as_secs_f64();
    eprintln!(
        "figure: lock (acquire + release) of 1 host {:.2} ms = {:.2}% of a run of one container ({:.0} ms)",
        lock_one.as_secs_f64() * 1e3,
        share(lock_one, run),
        run.as_secs_f64() * 1e3
    );
    eprintln!(
        "figure: lock of {} hosts {:.2} ms = {:.3}% of an apply of {MANY} containers ({:.0} ms)",
        all_hosts.len(),
        lock_all.as_secs_f64() * 1e3,
        share(lock_all, apply),
        apply.as_secs_f64() * 1e3
    );
    assert!(share(lock_one, run) < 5.0, "{lock_one:?} of {run:?}");
    assert!(share(lock_all, apply) < 5.0, "{lock_all:?} of {apply:?}");
    ok(&bed, &env, &["destroy"]);
}
