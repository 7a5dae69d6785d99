//! End to end: the client SIGKILLed at 20 moments of an `apply` that
//! creates, recreates two members of one service, restarts one container
//! (its config changed) and prunes orphans. After each kill a second
//! `apply --yes --prune` completes, `plan` then exits 0, every pair is whole,
//! and no address was on the eth0 of two containers at any time (polled
//! throughout).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dockstack_tests::support::{assert_nothing_left, assert_pairs_whole, bed, dockstack, text};
use dockstack_tests::testbed::{BedContainer, HOST_LABEL, SANDBOX_SUFFIX, TestBed, docker};

const KILLS: u32 = 20;

/// The file of version `v` (0 or 1): the service's members and `conf` carry
/// it; the two containers only in this version are the other's orphans.
fn write(bed: &TestBed, v: u32, conf: &Path) -> PathBuf {
    let name = |n: &str| bed.container_name(n);
    std::fs::write(conf.join("conf.txt"), format!("version {v}\n")).expect("the config file");
    let mut list = vec![
        BedContainer::new(name("member1"), 0, bed.subnet_ip(110))
            .with_yaml(&format!("service: pair\nenv:\n  VERSION: \"{v}\"\n")),
        BedContainer::new(name("member2"), 0, bed.subnet_ip(111))
            .with_yaml(&format!("service: pair\nenv:\n  VERSION: \"{v}\"\n")),
        BedContainer::new(name("conf"), 0, bed.subnet_ip(112)).with_yaml(&format!(
            "config_volumes:\n- {}\n",
            conf.join("conf.txt").display()
        )),
    ];
    for i in 0..2 {
        let n = 113 + 2 * v + i;
        list.push(BedContainer::new(
            name(&format!("only{v}x{i}")),
            0,
            bed.subnet_ip(n),
        ));
    }
    bed.write_environment(&list)
}

/// Polls the eth0 addresses of every running application of host 0 (a
/// replacement's new one too) until told to stop; every moment one address
/// was on two containers.
fn poll_addresses(
    bed: &TestBed,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<String>>>,
    looked: Arc<AtomicU32>,
) {
    let label = format!("label={HOST_LABEL}={}", bed.host(0).name());
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let running = docker(&[
                "ps",
                "--filter",
                &label,
                "--filter",
                "status=running",
                "--format",
                "{{.Names}}",
            ])
            .unwrap_or_default();
            let apps: Vec<&str> = running
                .lines()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .filter(|c| !c.ends_with(SANDBOX_SUFFIX) || c.contains("-next-app"))
                .collect();
            // Read one after another, the containers are no snapshot: an
            // address counts as on two only if both had it on both passes
            // (the later one's first read falls between the other's two).
            let pass = || {
                let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for c in &apps {
                    // Gone meanwhile: nothing to count.
                    let Ok(out) = docker(&["exec", c, "ip", "-o", "-4", "addr", "show", "eth0"])
                    else {
                        continue;
                    };
                    for a in out.lines().filter_map(|l| l.split_whitespace().nth(3)) {
                        holders
                            .entry(a.to_string())
                            .or_default()
                            .push(c.to_string());
                    }
                }
                holders
            };
            let (first, second) = (pass(), pass());
            let holders: BTreeMap<String, Vec<String>> = first
                .into_iter()
                .map(|(a, cs)| {
                    let again = second.get(&a).cloned().unwrap_or_default();
                    let both = cs.into_iter().filter(|c| again.contains(c)).collect();
                    (a, both)
                })
                .collect();
            if holders.len() >= 3 {
                looked.fetch_add(1, Ordering::Relaxed);
            }
            for (a, cs) in holders.into_iter().filter(|(_, cs)| cs.len() > 1) {
                seen.lock().unwrap().push(format!("{a} on {cs:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// `apply --yes --prune`, again while another client's lock may still be
/// held (a client killed holding it): it must complete within a minute.
fn apply_completes(bed: &TestBed, env: &Path, moment: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = dockstack(bed, env, &["apply", "--yes", "--prune"]);
        if out.status.success() {
            return;
        }
        let said = text(&out);
        assert!(
            said.contains("lock") && Instant::now() < deadline,
            "{moment}: the apply after the kill failed: {said}\n{}",
            bed.server_log(0)
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_client_killed_at_twenty_moments_of_an_apply_leaves_nothing_half_made() {
    let bed = bed(1);
    let conf = bed.dir().join("conf");
    std::fs::create_dir_all(&conf).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let doubles = Arc::new(Mutex::new(Vec::new()));
    let looked = Arc::new(AtomicU32::new(0));
    poll_addresses(
        &bed,
        Arc::clone(&stop),
        Arc::clone(&doubles),
        Arc::clone(&looked),
    );

    let env = write(&bed, 0, &conf);
    apply_completes(&bed, &env, "the first apply");
    // One whole apply from one version to the other: how long the moments
    // are spread over.
    let env = write(&bed, 1, &conf);
    let began = Instant::now();
    apply_completes(&bed, &env, "the measured apply");
    let whole = began.elapsed();
    assert_pairs_whole(&bed, 0);

    let mut recoveries = Vec::new();
    for k in 0..KILLS {
        let v = k % 2;
        let env = write(&bed, v, &conf);
        let at = whole.mul_f64((f64::from(k) + 0.5) / f64::from(KILLS));
        let moment = format!("kill {k} at {:.2} s", at.as_secs_f64());
        let mut client = bed
            .client_command()
            .arg("-f")
            .arg(&env)
            .args(["apply", "--yes", "--prune"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run dockstack");
        std::thread::sleep(at);
        // SIGKILL: no chance to tidy anything up.
        let _ = client.kill();
        let _ = client.wait();
        let began = Instant::now();
        apply_completes(&bed, &env, &moment);
        recoveries.push(began.elapsed().as_secs_f64());
        let plan = dockstack(&bed, &env, &["plan"]);
        assert_eq!(plan.status.code(), Some(0), "{moment}: {}", text(&plan));
        assert_eq!(assert_pairs_whole(&bed, 0).len(), 5, "{moment}");
        let doubles = doubles.lock().unwrap();
        assert!(
            doubles.is_empty(),
            "{moment}: an address on two containers: {doubles:?}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    // The poller really looked: it found the addresses, again and again.
    let rounds = looked.load(Ordering::Relaxed);
    assert!(
        rounds >= 20,
        "the address poller saw addresses {rounds} times"
    );
    let longest = recoveries.iter().copied().fold(0.0, f64::max);
    eprintln!(
        "a whole apply: {:.1} s; the apply after a kill: at most {longest:.1} s; {rounds} polls",
        whole.as_secs_f64()
    );
    // The last version's file names all there is: the other's went as orphans.
    let env = write(&bed, (KILLS - 1) % 2, &conf);
    let out = dockstack(&bed, &env, &["destroy"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_nothing_left(&bed, 0);
}
