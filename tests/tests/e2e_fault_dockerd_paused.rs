//! End to end, a dockerd that stops answering (SIGSTOP) under a running
//! server: `status` and `run` fail with an error that names the host and
//! Docker, the server holds no more memory nor connections for a minute of
//! requests meanwhile, and once dockerd is resumed everything works again.
//!
//! The dockerd paused is a private one (see `dockstack_tests::dockerd`):
//! the machine's, which the other tests use, is never touched.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dockstack_tests::dockerd::PrivateDockerd;
use dockstack_tests::support::{answers_within, dockstack, ok, status, text, wait_until};
use dockstack_tests::testbed::{BedContainer, BedOptions, TEST_IMAGE, TestBed, ensure_test_image};

/// The server's `--docker-timeout` in this test.
const DOCKER_TIMEOUT_S: u64 = 5;
/// How long the requests go on against the paused dockerd.
const LOAD: Duration = Duration::from_secs(60);
/// Requests at once during [`LOAD`].
const CALLERS: usize = 4;

/// `VmRSS` (KiB) and the open descriptors of process `pid`.
fn footprint(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count);
    (rss, fds)
}

fn both(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `dockstack ARGS` and how long it took.
fn timed(bed: &TestBed, env: &Path, args: &[&str]) -> (Output, Duration) {
    let began = Instant::now();
    let out = dockstack(bed, env, args);
    (out, began.elapsed())
}

/// [`CALLERS`] clients calling `status` and `run` of `b` in turn for
/// [`LOAD`], each call checked to fail saying `said`: how many calls, the
/// slowest, and the server's footprint at the end.
fn requests(
    bed: &TestBed,
    env: &Path,
    b: &str,
    said: &str,
    server_pid: u32,
) -> (usize, Duration, (u64, usize)) {
    let stop = AtomicBool::new(false);
    let calls = AtomicUsize::new(0);
    let slowest = Mutex::new(Duration::ZERO);
    std::thread::scope(|scope| {
        for k in 0..CALLERS {
            let (stop, calls, slowest) = (&stop, &calls, &slowest);
            scope.spawn(move || {
                let mut n = k;
                while !stop.load(Ordering::Relaxed) {
                    let args: &[&str] = if n % 2 == 0 {
                        &["status"]
                    } else {
                        &["-c", b, "--wait", "30", "run"]
                    };
                    let (out, took) = timed(bed, env, args);
                    assert!(
                        !out.status.success() && both(&out).contains(said),
                        "{args:?} during the pause: {}",
                        text(&out)
                    );
                    calls.fetch_add(1, Ordering::Relaxed);
                    let mut s = slowest.lock().unwrap();
                    *s = (*s).max(took);
                    n += 1;
                }
            });
        }
        std::thread::sleep(LOAD);
        let during = footprint(server_pid);
        stop.store(true, Ordering::Relaxed);
        (
            calls.load(Ordering::Relaxed),
            *slowest.lock().unwrap(),
            during,
        )
    })
}

/// Nothing piles up in the server while Docker hangs: no connection per
/// request (a descriptor each), and no memory for one.
fn assert_flat(before: (u64, usize), during: (u64, usize)) {
    assert!(
        during.1 <= before.1 + 16,
        "the server's descriptors grew from {} to {}",
        before.1,
        during.1
    );
    assert!(
        during.0 <= before.0 + 32 * 1024,
        "the server's RSS grew from {} KiB to {} KiB",
        before.0,
        during.0
    );
}

/// A private dockerd under `dir` with the test image, and a bed of one
/// host whose server uses it.
fn setup(dir: &Path) -> (PrivateDockerd, TestBed) {
    ensure_test_image().expect("test image");
    let dockerd = PrivateDockerd::start(dir).expect("a private dockerd");
    dockerd.load_image(TEST_IMAGE).expect("the test image");
    let bed = TestBed::new(BedOptions {
        server_args: vec![
            "--docker".into(),
            dockerd.uri(),
            "--docker-timeout".into(),
            DOCKER_TIMEOUT_S.to_string(),
        ],
        ..BedOptions::hosts(1)
    })
    .expect("test bed");
    (dockerd, bed)
}

#[test]
fn a_paused_dockerd_fails_requests_naming_docker_and_everything_works_once_resumed() {
    let dir = std::env::temp_dir().join(format!("dockstack-paused-dockerd-{}", std::process::id()));
    // Bindings drop in reverse order: the bed (and its server) before the
    // dockerd.
    let (dockerd, bed) = setup(&dir);
    let uri = dockerd.uri();
    let host = bed.host(0).name().to_string();
    let server_pid = bed.host(0).server_pid().expect("server.pid");

    let (a, b) = (bed.container_name("a"), bed.container_name("b"));
    let (ip_a, ip_b): (Ipv4Addr, Ipv4Addr) = (bed.subnet_ip(60), bed.subnet_ip(61));
    let env = bed.write_environment(&[
        BedContainer::new(&a, 0, ip_a),
        BedContainer::new(&b, 0, ip_b),
    ]);
    ok(&bed, &env, &["-c", &a, "run"]);
    assert!(
        answers_within(&bed, 0, ip_a, Duration::from_secs(5)),
        "{a} before the pause"
    );
    assert!(
        dockerd
            .docker(&["ps", "--format", "{{.Names}}"])
            .unwrap()
            .contains(&a),
        "{a} is not in the private dockerd"
    );
    // Warm: the connections and buffers a working server keeps.
    for _ in 0..5 {
        ok(&bed, &env, &["status"]);
    }
    let before = footprint(server_pid);

    dockerd.pause().expect("SIGSTOP");
    let said = format!("Docker ({uri}) did not answer within {DOCKER_TIMEOUT_S} s");

    let (out, status_took) = timed(&bed, &env, &["status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("FAILED host {host}: {said}")),
        "{}",
        text(&out)
    );
    println!("status while paused: {}", err.trim());
    let (out, run_took) = timed(&bed, &env, &["-c", &b, "run"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    let all = both(&out);
    println!("run while paused: {}", all.trim());
    assert!(
        all.contains(&format!("FAILED {b} on {host}: {said}\n")),
        "{}",
        text(&out)
    );
    // A host whose Docker hangs fails at once once one call went unanswered.
    let (out, second_status_took) = timed(&bed, &env, &["status"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&said),
        "{}",
        text(&out)
    );

    // A minute of requests from several clients at once.
    let (calls, slowest, during) = requests(&bed, &env, &b, &said, server_pid);

    dockerd.resume().expect("SIGCONT");
    let resumed = Instant::now();
    assert!(
        wait_until(Duration::from_secs(30), || dockstack(
            &bed,
            &env,
            &["status"]
        )
        .status
        .success()),
        "status fails 30 s after dockerd was resumed: {}",
        bed.server_log(0)
    );
    let status_back = resumed.elapsed();
    ok(&bed, &env, &["-c", &b, "run"]);
    let run_back = resumed.elapsed();
    assert!(
        answers_within(&bed, 0, ip_b, Duration::from_secs(5)),
        "{b} after the resume"
    );
    assert!(answers_within(&bed, 0, ip_a, Duration::from_secs(5)), "{a}");
    let all = status(&bed, &env);
    for name in [&a, &b] {
        assert_eq!(all[name]["plugged"], true, "{name}: {}", all[name]);
    }
    let after = footprint(server_pid);

    println!(
        "dockerd paused: first status failed in {} ms, run in {} ms, the next status in {} ms (--docker-timeout {DOCKER_TIMEOUT_S})",
        status_took.as_millis(),
        run_took.as_millis(),
        second_status_took.as_millis()
    );
    println!(
        "{calls} requests from {CALLERS} clients in {} s against the paused dockerd, slowest {} ms",
        LOAD.as_secs(),
        slowest.as_millis()
    );
    println!(
        "server RSS {} KiB and {} fds before the pause, {} KiB and {} fds after {} s of requests, {} KiB and {} fds after the resume",
        before.0,
        before.1,
        during.0,
        during.1,
        LOAD.as_secs(),
        after.0,
        after.1
    );
    println!(
        "dockerd resumed -> status ok in {} ms, run of {b} done in {} ms",
        status_back.as_millis(),
        run_back.as_millis()
    );
    assert_flat(before, during);
    ok(&bed, &env, &["destroy"]);
    assert_eq!(
        dockerd.docker(&["ps", "-aq"]).unwrap().trim(),
        "",
        "containers left in the private dockerd"
    );
}
