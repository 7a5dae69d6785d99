//! `plan` and `apply` end to end on two hosts: every container created,
//! then day-2 changes (image, env, a move, an orphan) planned, named and
//! applied with the same address and MAC, steps gated on health, oneshots
//! run once, services replaced one at a time, stale plans refused; a
//! recreate on one host made beside the old container, which comes back
//! when the new one cannot start.

use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use dockstack_tests::support::{PingLoop, bed, dockstack, eth0_mac, exists, inspect, ok, text};
use dockstack_tests::testbed::{BedContainer, SANDBOX_SUFFIX, TEST_IMAGE, TestBed, docker};
use serde_json::Value;

fn plan_json(bed: &TestBed, env: &Path) -> (Option<i32>, Value) {
    let out = dockstack(bed, env, &["--output", "json", "plan"]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("plan --output json: {e}: {}", text(&out)));
    (out.status.code(), v)
}

/// `(container, action, differences)` of every line that changes something.
fn changes(plan: &Value) -> Vec<(String, String, Vec<String>)> {
    plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["action"] != "unchanged")
        .map(|c| {
            let diffs = c["differences"]
                .as_array()
                .map(|d| d.iter().map(|x| x.as_str().unwrap().to_string()).collect())
                .unwrap_or_default();
            (
                c["container"].as_str().unwrap().to_string(),
                c["action"].as_str().unwrap().to_string(),
                diffs,
            )
        })
        .collect()
}

/// The id and start time of a container.
fn identity(name: &str) -> (String, String) {
    (
        inspect(name, "{{.Id}}"),
        inspect(name, "{{.State.StartedAt}}"),
    )
}

#[test]
#[allow(clippy::too_many_lines)]
fn plan_and_apply_create_recreate_move_and_prune_keeping_addresses() {
    let bed = bed(2);
    let names: Vec<String> = ["pa", "pb", "pc", "pd"]
        .iter()
        .map(|n| bed.container_name(n))
        .collect();
    let ips: Vec<Ipv4Addr> = (0..4).map(|i| bed.subnet_ip(30 + i)).collect();
    let v2 = format!("dockstack-test-busybox:v2-{}", bed.slot());
    docker(&["tag", TEST_IMAGE, &v2]).expect("tag the second image");
    let spec = |i: usize, host: usize| BedContainer::new(&names[i], host, ips[i]);
    // pc's configuration lives in a host directory, as TripleO's does.
    let config = bed.dir().join("pc-config");
    std::fs::create_dir_all(config.join("conf.d")).unwrap();
    std::fs::write(config.join("conf.d/pc.conf"), "workers = 1\n").unwrap();
    let pc = spec(2, 1).with_yaml(&format!("config_volumes:\n- {}", config.display()));
    let first = [spec(0, 0), spec(1, 0), pc, spec(3, 1)];
    let env = bed.write_environment(&first);

    // A fresh environment: everything to create, exit 3, nothing made.
    let (code, plan) = plan_json(&bed, &env);
    assert_eq!(code, Some(3), "{plan}");
    let c = changes(&plan);
    assert_eq!(c.len(), 4, "{plan}");
    assert!(c.iter().all(|(_, a, _)| a == "create"), "{plan}");
    assert!(bed.managed_apps(0).is_empty() && bed.managed_apps(1).is_empty());

    // No terminal and no --yes: refused, nothing changes.
    let out = bed
        .client_command()
        .arg("-f")
        .arg(&env)
        .arg("apply")
        .stdin(Stdio::null())
        .output()
        .expect("apply");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert!(bed.managed_apps(0).is_empty() && bed.managed_apps(1).is_empty());

    ok(&bed, &env, &["apply", "--yes"]);
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let macs: Vec<String> = names.iter().map(|n| eth0_mac(n)).collect();
    let before: Vec<(String, String)> = names.iter().map(|n| identity(n)).collect();

    // Day 2: a new image for pa, an env var for pb, a config file of pc.
    let mut second = first.clone();
    second[0].image = v2.clone();
    second[1] = spec(1, 0).with_yaml("env:\n  FOO: \"1\"");
    let env = bed.write_environment(&second);
    std::fs::write(config.join("conf.d/pc.conf"), "workers = 4\n").unwrap();
    let (code, plan) = plan_json(&bed, &env);
    assert_eq!(code, Some(3));
    let c = changes(&plan);
    assert_eq!(
        c,
        vec![
            (
                names[0].clone(),
                "recreate".into(),
                vec![format!("image {TEST_IMAGE} -> {v2}")]
            ),
            (names[1].clone(), "recreate".into(), vec!["env.FOO".into()]),
            (names[2].clone(), "restart".into(), vec![]),
        ],
        "{plan}"
    );
    let pc_line = &plan["changes"].as_array().unwrap()[2];
    assert_eq!(
        pc_line["config_changed"],
        serde_json::json!([config.display().to_string()]),
        "{plan}"
    );
    let out = dockstack(&bed, &env, &["plan"]);
    assert!(
        text(&out).contains(&format!("(config changed: {})", config.display())),
        "{}",
        text(&out)
    );
    let stale = plan["plan_id"].as_str().unwrap().to_string();
    // The hosts change under the plan: its id no longer holds.
    docker(&["restart", "-t", "0", &names[3]]).expect("restart pd");
    let out = dockstack(&bed, &env, &["apply", "--yes", "--plan-id", &stale]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("stale"), "{}", text(&out));
    assert_eq!(
        identity(&names[0]).0,
        before[0].0,
        "a stale plan changed pa"
    );
    // pd's restart left it plugged (its sandbox kept the netns).
    let (_, plan) = plan_json(&bed, &env);
    assert_eq!(changes(&plan).len(), 3, "{plan}");
    let current = plan["plan_id"].as_str().unwrap().to_string();
    let after_restart = identity(&names[3]);

    let ping = PingLoop::start(&bed, 1, ips[0], Duration::from_millis(200));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    ok(&bed, &env, &["apply", "--yes", "--plan-id", &current]);
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let outage = ping.longest_outage();
    eprintln!(
        "apply of two recreates: {took:?}; longest outage of {}: {outage:?}",
        ips[0]
    );
    if std::env::var_os("PLAN_TEST_LOG").is_some() {
        eprintln!("{}", bed.server_log(0));
    }
    // That it comes back, and soon: how soon is a figure (printed above;
    // `bench-server` measures it on a release build), not a timed test.
    assert!(
        outage < Duration::from_secs(5),
        "{} went unanswered for {outage:?}",
        ips[0]
    );
    for i in 0..2 {
        assert_ne!(
            identity(&names[i]).0,
            before[i].0,
            "{} not recreated",
            names[i]
        );
        assert_eq!(eth0_mac(&names[i]), macs[i], "{} changed its MAC", names[i]);
        assert!(bed.ping_from_host(1, ips[i]), "{} does not answer", ips[i]);
    }
    assert_eq!(inspect(&names[0], "{{.Config.Image}}"), v2);
    // Restarted in place: the same container, started again.
    let pc_now = identity(&names[2]);
    assert_eq!(pc_now.0, before[2].0, "pc was recreated, not restarted");
    assert_ne!(pc_now.1, before[2].1, "pc was not restarted");
    assert_eq!(eth0_mac(&names[2]), macs[2]);
    assert_eq!(identity(&names[3]), after_restart, "pd was touched");
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // pd leaves the file: an orphan, removed only with --prune.
    let third = [second[0].clone(), second[1].clone(), second[2].clone()];
    let env = bed.write_environment(&third);
    let (code, plan) = plan_json(&bed, &env);
    assert_eq!(code, Some(3));
    assert_eq!(
        changes(&plan),
        vec![(names[3].clone(), "orphan".into(), vec![])],
        "{plan}"
    );
    ok(&bed, &env, &["apply", "--yes"]);
    assert!(exists(&names[3]), "an orphan went without --prune");
    ok(&bed, &env, &["apply", "--yes", "--prune"]);
    assert!(!exists(&names[3]));
    assert!(!exists(&format!("{}{SANDBOX_SUFFIX}", names[3])));
    assert_eq!(bed.managed_apps(1), vec![names[2].clone()]);
    assert_eq!(bed.ovs_ports(1).len(), 1, "{:?}", bed.ovs_ports(1));

    // pc moves to host 0: recreated there with its address, gone from 1.
    let mut fourth = third.clone();
    fourth[2].host = 0;
    let env = bed.write_environment(&fourth);
    let (_, plan) = plan_json(&bed, &env);
    assert_eq!(
        changes(&plan),
        vec![(
            names[2].clone(),
            "recreate".into(),
            vec![format!(
                "host {} -> {}",
                bed.host(1).name(),
                bed.host(0).name()
            )]
        )],
        "{plan}"
    );
    ok(&bed, &env, &["apply", "--yes"]);
    assert!(bed.managed_apps(1).is_empty(), "{:?}", bed.managed_apps(1));
    assert_eq!(bed.ovs_ports(1).len(), 0, "{:?}", bed.ovs_ports(1));
    assert!(bed.managed_apps(0).contains(&names[2]));
    assert_eq!(eth0_mac(&names[2]), macs[2]);
    // Across the wire, from the host it left.
    assert!(bed.ping_from_host(1, ips[2]), "{} does not answer", ips[2]);
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    ok(&bed, &env, &["destroy"]);
    let _ = docker(&["rmi", &v2]);
}

/// The names of host `i`'s managed containers, sorted.
fn managed_sorted(bed: &TestBed, i: usize) -> Vec<String> {
    let mut all = bed.managed_containers(i);
    all.sort();
    all
}

#[test]
fn a_recreate_on_one_host_leaves_one_pair_and_one_that_cannot_start_brings_the_old_back() {
    let bed = bed(1);
    let name = bed.container_name("rp");
    let ip = bed.subnet_ip(40);
    let c = BedContainer::new(&name, 0, ip);
    let env = bed.write_environment(std::slice::from_ref(&c));
    ok(&bed, &env, &["apply", "--yes"]);
    let (old_id, _) = identity(&name);
    let mac = eth0_mac(&name);
    let pair = vec![name.clone(), format!("{name}{SANDBOX_SUFFIX}")];

    // Made beside the old pair, then given its names: one pair, one port.
    let env = bed.write_environment(&[c.clone().with_yaml("env:\n  FOO: \"1\"")]);
    ok(&bed, &env, &["apply", "--yes"]);
    let (new_id, _) = identity(&name);
    assert_ne!(new_id, old_id, "not recreated");
    let env_now = inspect(&name, "{{range .Config.Env}}{{.}} {{end}}");
    assert!(env_now.contains("FOO=1"), "{env_now}");
    assert_eq!(managed_sorted(&bed, 0), pair);
    assert_eq!(bed.ovs_ports(0).len(), 1, "{:?}", bed.ovs_ports(0));
    assert_eq!(eth0_mac(&name), mac);
    assert!(bed.ping_from_host(0, ip), "{ip} does not answer");
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // An old application that is not running (stopped behind dockstack's
    // back) is replaced all the same.
    docker(&["stop", "-t", "0", &name]).expect("docker stop");
    let env = bed.write_environment(&[c.clone().with_yaml("env:\n  FOO: \"2\"")]);
    ok(&bed, &env, &["apply", "--yes"]);
    let (new_id, _) = identity(&name);
    assert_eq!(managed_sorted(&bed, 0), pair);
    assert_eq!(bed.ovs_ports(0).len(), 1, "{:?}", bed.ovs_ports(0));
    assert!(bed.ping_from_host(0, ip), "{ip} does not answer");

    // The new process cannot start: the old container runs again, at its
    // address, and nothing of the new one is left.
    let env = bed.write_environment(&[c.clone().with_yaml("command: /nonexistent")]);
    let out = dockstack(&bed, &env, &["apply", "--yes"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(identity(&name).0, new_id, "{}", text(&out));
    assert_eq!(inspect(&name, "{{.State.Running}}"), "true");
    assert_eq!(managed_sorted(&bed, 0), pair);
    assert_eq!(bed.ovs_ports(0).len(), 1, "{:?}", bed.ovs_ports(0));
    assert!(bed.ping_from_host(0, ip), "{ip} does not answer");
    ok(&bed, &env, &["destroy"]);
}

/// A healthcheck of Docker's exec form, checked every 200 ms.
fn healthcheck(test: &str) -> String {
    format!("healthcheck:\n  test: [{test}]\n  interval: 200ms\n  timeout: 1s\n  retries: 2")
}

#[test]
fn a_step_whose_container_is_unhealthy_stops_the_apply_before_the_next() {
    let bed = bed(2);
    let (s1, s2, s3) = (
        bed.container_name("st1"),
        bed.container_name("st2"),
        bed.container_name("st3"),
    );
    let env = bed.write_environment(&[
        BedContainer::new(&s3, 0, bed.subnet_ip(42)).with_yaml("step: 3"),
        BedContainer::new(&s2, 1, bed.subnet_ip(41))
            .with_yaml(&format!("step: 2\n{}", healthcheck("\"false\""))),
        BedContainer::new(&s1, 0, bed.subnet_ip(40))
            .with_yaml(&format!("step: 1\n{}", healthcheck("\"true\""))),
    ]);
    let out = dockstack(&bed, &env, &["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("step 2: {s2}")) && err.contains("unhealthy"),
        "{}",
        text(&out)
    );
    assert_eq!(inspect(&s1, "{{.State.Health.Status}}"), "healthy");
    assert!(!exists(&s3), "step 3 ran after an unhealthy step 2");
    // status shows health.
    let out = ok(&bed, &env, &["--output", "json", "status"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let s2_row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == s2.as_str())
        .expect("st2 in status");
    assert_eq!(s2_row["health"], "unhealthy", "{v}");
    ok(&bed, &env, &["destroy"]);
}

#[test]
fn a_oneshot_runs_once_and_one_that_fails_stops_the_apply_naming_its_status() {
    let bed = bed(1);
    let (sync, bad, after) = (
        bed.container_name("sync"),
        bed.container_name("badsync"),
        bed.container_name("api"),
    );
    let sync_c = BedContainer::new(&sync, 0, bed.subnet_ip(50))
        .with_yaml("step: 1\noneshot: true\ncommand: [sh, -c, \"echo db synced; exit 0\"]");
    let api = BedContainer::new(&after, 0, bed.subnet_ip(52)).with_yaml("step: 2");
    let env = bed.write_environment(&[sync_c.clone(), api.clone()]);
    let out = ok(&bed, &env, &["apply", "--yes"]);
    assert!(text(&out).contains("db synced"), "{}", text(&out));
    assert_eq!(inspect(&sync, "{{.State.ExitCode}}"), "0");
    assert!(exists(&after));
    let (id, started) = identity(&sync);
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ok(&bed, &env, &["apply", "--yes"]);
    assert_eq!(
        identity(&sync),
        (id, started),
        "a oneshot that succeeded ran again"
    );

    let bad_c = BedContainer::new(&bad, 0, bed.subnet_ip(51))
        .with_yaml("step: 1\noneshot: true\ncommand: [sh, -c, \"echo failing; exit 1\"]");
    let env = bed.write_environment(&[sync_c, bad_c, api]);
    let out = dockstack(&bed, &env, &["apply", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "oneshot {bad} on host {} exited with status 1",
            bed.host(0).name()
        )),
        "{}",
        text(&out)
    );
    assert!(!exists(&bad), "a failed oneshot was left behind");
    ok(&bed, &env, &["destroy"]);
}

fn parse_time(s: &str) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// When container `name`'s first successful health check ended, and when
/// it was created, as Docker records them.
fn healthy_at_and_created(name: &str) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let log = inspect(name, "{{json .State.Health.Log}}");
    let log: Value = serde_json::from_str(&log).expect("health log");
    let first_ok = log
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["ExitCode"] == 0)
        .map(|e| parse_time(e["End"].as_str().unwrap()))
        .expect("a successful check");
    (first_ok, parse_time(&inspect(name, "{{.Created}}")))
}

#[test]
fn containers_of_one_service_are_replaced_one_at_a_time_each_healthy_first() {
    let bed = bed(2);
    let (g1, g2) = (bed.container_name("galera1"), bed.container_name("galera2"));
    let member = |name: &str, host: usize, ip: Ipv4Addr, extra: &str| {
        BedContainer::new(name, host, ip).with_yaml(&format!(
            "service: galera\n{}{extra}",
            healthcheck("\"CMD-SHELL\", \"sleep 0.3\"")
        ))
    };
    let (ip1, ip2) = (bed.subnet_ip(60), bed.subnet_ip(61));
    let env = bed.write_environment(&[member(&g1, 0, ip1, ""), member(&g2, 1, ip2, "")]);
    ok(&bed, &env, &["apply", "--yes"]);
    let env = bed.write_environment(&[
        member(&g1, 0, ip1, "\nenv:\n  WSREP: \"2\""),
        member(&g2, 1, ip2, "\nenv:\n  WSREP: \"2\""),
    ]);
    ok(&bed, &env, &["apply", "--yes"]);
    let (h1, c1) = healthy_at_and_created(&g1);
    let (h2, c2) = healthy_at_and_created(&g2);
    let (first_healthy, second_created) = if c1 < c2 { (h1, c2) } else { (h2, c1) };
    assert!(
        first_healthy < second_created,
        "the second member was replaced before the first was healthy ({first_healthy} vs {second_created})"
    );
    ok(&bed, &env, &["destroy"]);
}

/// Lines of a hosts file that name `fqdn`.
fn lines_naming(hostsfile: &Path, fqdn: &str) -> Vec<String> {
    std::fs::read_to_string(hostsfile)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().skip(1).any(|n| n == fqdn))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_orphan_pruned_by_apply_leaves_its_dns_line_too() {
    let bed = bed(2);
    dockstack_tests::testbed::ensure_dnsmasq_image().expect("dnsmasq image");
    let domain = format!("bed{}.test", bed.slot());
    let (dns, web, old) = (
        bed.container_name("dns"),
        bed.container_name("web"),
        bed.container_name("oldapi"),
    );
    let dns_dir = bed.dir().join("dns");
    let hostsfile = dns_dir.join("dockstack.dns");
    let mut dns_c = BedContainer::new(&dns, 0, bed.subnet_ip(2)).with_yaml(&format!(
        "domain: {domain}\nvolumes:\n- {}:/etc/dnsmasq.d\n\
         command: /usr/sbin/dnsmasq -k --no-resolv --no-hosts \
         --addn-hosts=/etc/dnsmasq.d/dockstack.dns --log-facility=- --user=root \
         --local=/{domain}/",
        dns_dir.display()
    ));
    dns_c.image = dockstack_tests::testbed::DNSMASQ_IMAGE.to_string();
    let web_c =
        BedContainer::new(&web, 1, bed.subnet_ip(20)).with_yaml(&format!("domain: {domain}"));
    let old_ip = bed.subnet_ip(21);
    let old_c = BedContainer::new(&old, 1, old_ip).with_yaml(&format!("domain: {domain}"));
    let registration = format!(
        "  dns:\n    container: {dns}\n    hostsfile: {}\n",
        hostsfile.display()
    );
    let env = bed.write_registered_environment(
        "environment.yaml",
        &[dns_c.clone(), web_c.clone(), old_c],
        &registration,
    );
    ok(&bed, &env, &["apply", "--yes"]);
    let old_fqdn = format!("{old}.{domain}");
    assert_eq!(
        lines_naming(&hostsfile, &old_fqdn),
        vec![format!("{old_ip} {old_fqdn}")]
    );

    let env = bed.write_registered_environment("environment.yaml", &[dns_c, web_c], &registration);
    let (_, plan) = plan_json(&bed, &env);
    assert_eq!(
        changes(&plan),
        vec![(old.clone(), "orphan".into(), vec![])],
        "{plan}"
    );
    ok(&bed, &env, &["apply", "--yes", "--prune"]);
    assert!(!exists(&old) && !exists(&format!("{old}{SANDBOX_SUFFIX}")));
    assert_eq!(lines_naming(&hostsfile, &old_fqdn), Vec::<String>::new());
    assert_eq!(bed.managed_apps(1), vec![web.clone()]);
    assert_eq!(bed.ovs_ports(1).len(), 1, "{:?}", bed.ovs_ports(1));
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ok(&bed, &env, &["destroy"]);
}
