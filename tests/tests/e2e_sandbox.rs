//! End to end, the network sandbox: programs that bind their address at
//! their first instruction find it there through every kind of restart
//! (docker restart, a crash under `restart: always`, stop and start through
//! the client, a restart while the server is down), with no server
//! involved; what the application sees of its name and resolver; and a run
//! that fails at any step leaves nothing behind.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use dockstack_tests::support::{
    assert_nothing_left, bed, derived_mac, docker_exec, dockstack, eth0_addresses, eth0_mac,
    inspect, ok, show, status, text, wait_until,
};
use dockstack_tests::testbed::{
    BedContainer, SANDBOX_SUFFIX, TEST_IMAGE, TestBed, docker, ensure_dnsmasq_image,
};

/// `dig` from host 0 at `server`: the `+short` answer for `name`.
fn dig(bed: &TestBed, server: Ipv4Addr, name: &str) -> String {
    let at = format!("@{server}");
    let out = bed.exec_in_host(0, &["dig", "+short", "+time=1", "+tries=1", &at, name, "A"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The name every test dnsmasq answers, and what it answers.
const PROBE: (&str, &str) = ("probe.sandbox.test", "10.9.9.9");

/// A dnsmasq that binds only its own address, at start: without it there
/// it exits with "failed to create listening socket".
fn dnsmasq_yaml(ip: Ipv4Addr, restart: &str) -> String {
    format!(
        "image: {}\nrestart: {restart}\ncommand: [/usr/sbin/dnsmasq, -k, --no-resolv, --no-hosts, \
         --bind-interfaces, --listen-address={ip}, \"--address=/{}/{}\", --log-facility=-, --user=root]",
        ensure_dnsmasq_image().expect("dnsmasq image"),
        PROBE.0,
        PROBE.1
    )
}

/// A shell that checks eth0 has its address at its first instruction,
/// says so in its log, exits if it has not, and exits at once on SIGTERM.
fn checker_yaml(ip: Ipv4Addr, prefix: u8) -> String {
    format!(
        "restart: always\ncommand: [/bin/sh, -c, \"if ip -4 -o addr show dev eth0 | grep -q ' {ip}/{prefix} '; \
         then echo ADDRESS-OK; else echo ADDRESS-MISSING; ip addr; exit 1; fi; \
         trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done\"]"
    )
}

fn pid_of(container: &str) -> String {
    inspect(container, "{{.State.Pid}}")
}

/// The network namespace `container`'s process is in, as its link reads.
fn netns(container: &str) -> String {
    std::fs::read_link(format!("/proc/{}/ns/net", pid_of(container)))
        .map(|l| l.display().to_string())
        .unwrap_or_default()
}

/// Kills the container's process from the host: `docker kill` counts as a
/// stop by the user on this Docker, and no policy would restart it.
fn crash(container: &str) {
    let pid = pid_of(container);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(killed.success(), "kill -9 {pid}");
    assert!(
        wait_until(Duration::from_secs(10), || {
            let now = pid_of(container);
            now != "0" && now != pid && inspect(container, "{{.State.Running}}") == "true"
        }),
        "Docker did not restart {container} after its process was killed"
    );
}

/// Every kind of restart the issue names, each followed by `check`. After
/// each, Docker's RestartCount (restarts by the policy since the last start
/// by hand) shows the process never exited by itself: 1 after the crash,
/// 0 everywhere else.
fn through_every_restart(
    bed: &mut TestBed,
    env: &Path,
    name: &str,
    mut check: impl FnMut(&TestBed, &str),
) {
    let mut check = |bed: &TestBed, after: &str| {
        check(bed, after);
        let want = if after == CRASH { "1" } else { "0" };
        assert_eq!(
            inspect(name, "{{.RestartCount}}"),
            want,
            "{name} restarted by itself after {after}:\n{}",
            docker(&["logs", "--tail", "20", name]).unwrap_or_default()
        );
    };
    check(bed, "run");
    docker(&["restart", "-t", "5", name]).expect("docker restart");
    check(bed, "docker restart");
    crash(name);
    check(bed, CRASH);
    ok(bed, env, &["-c", name, "stop"]);
    ok(bed, env, &["-c", name, "start"]);
    check(bed, "stop and start through the client");
    bed.kill_server(0).expect("SIGKILL the server");
    docker(&["restart", "-t", "5", name]).expect("docker restart");
    check(bed, "docker restart while its server is down");
    let started = inspect(name, "{{.State.StartedAt}}");
    bed.start_server(0).expect("start the server again");
    // The server's start-up reconcile finds the pair in place and leaves
    // the application alone.
    ok(bed, env, &["-c", name, "show"]);
    assert_eq!(inspect(name, "{{.State.StartedAt}}"), started);
    check(bed, RETURN);
}

const CRASH: &str = "a crash under restart: always";

/// The last check of [`through_every_restart`], after which no process
/// has started.
const RETURN: &str = "the server's return";

#[test]
fn dnsmasq_bound_to_its_address_answers_through_every_kind_of_restart() {
    let mut bed = bed(1);
    let dns = bed.container_name("dns");
    let ip = bed.subnet_ip(90);
    let env = bed.write_environment(&[
        BedContainer::new(&dns, 0, ip).with_yaml(&dnsmasq_yaml(ip, "always"))
    ]);
    ok(&bed, &env, &["-c", &dns, "run"]);
    through_every_restart(&mut bed, &env, &dns, |bed, after| {
        assert!(
            wait_until(Duration::from_secs(5), || dig(bed, ip, PROBE.0) == PROBE.1),
            "dnsmasq does not answer at {ip} after {after}: {:?}\n{}",
            dig(bed, ip, PROBE.0),
            docker(&["logs", "--tail", "20", &dns]).unwrap_or_default()
        );
    });
    // It never failed to bind.
    let logs = docker(&["logs", &dns]).unwrap_or_default();
    assert!(
        !logs.contains("failed to create listening socket"),
        "{logs}"
    );

    ok(&bed, &env, &["-c", &dns, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_shell_that_checks_its_address_first_never_finds_it_missing() {
    let mut bed = bed(1);
    let app = bed.container_name("check");
    let ip = bed.subnet_ip(91);
    let prefix = bed.gateway().prefix();
    let env = bed
        .write_environment(&[BedContainer::new(&app, 0, ip).with_yaml(&checker_yaml(ip, prefix))]);
    ok(&bed, &env, &["-c", &app, "run"]);
    let mut starts = 0;
    through_every_restart(&mut bed, &env, &app, |bed, after| {
        if after != RETURN {
            starts += 1;
        }
        assert!(
            wait_until(Duration::from_secs(5), || {
                let logs = docker(&["logs", &app]).unwrap_or_default();
                logs.matches("ADDRESS-OK").count() >= starts
            }),
            "no start of {app} after {after}:\n{}",
            docker(&["logs", &app]).unwrap_or_default()
        );
        assert!(bed.ping_from_host(0, ip), "{ip} after {after}");
        assert_eq!(eth0_mac(&app), derived_mac(ip), "MAC after {after}");
    });
    let logs = docker(&["logs", &app]).unwrap_or_default();
    assert!(!logs.contains("ADDRESS-MISSING"), "{logs}");
    // The server's return started nothing: one line per start above.
    assert_eq!(logs.matches("ADDRESS-OK").count(), starts, "{logs}");

    ok(&bed, &env, &["-c", &app, "destroy"]);
    assert_nothing_left(&bed, 0);
}

/// A replacement's application is started before the old one stops, behind
/// the gate: its first instruction still finds the address, its command is
/// the spec's, and a `docker restart` of it afterwards passes the gate again.
#[test]
fn a_replacement_started_behind_its_gate_finds_its_address_first() {
    let bed = bed(1);
    let app = bed.container_name("gated");
    let ip = bed.subnet_ip(93);
    let prefix = bed.gateway().prefix();
    let spec = BedContainer::new(&app, 0, ip).with_yaml(&checker_yaml(ip, prefix));
    let env = bed.write_environment(std::slice::from_ref(&spec));
    ok(&bed, &env, &["apply", "--yes"]);
    let old_id = inspect(&app, "{{.Id}}");
    let env = bed.write_environment(&[spec.with_yaml("env:\n  ROUND: \"2\"")]);
    ok(&bed, &env, &["apply", "--yes"]);
    assert_ne!(inspect(&app, "{{.Id}}"), old_id, "{app} was not replaced");
    let logs = || docker(&["logs", &app]).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(5), || logs().contains("ADDRESS-OK")),
        "the replacement did not start:\n{}",
        logs()
    );
    // The spec's command, run by the gate with the address to wait for.
    assert!(inspect(&app, "{{json .Config.Cmd}}").starts_with("[\"/bin/sh\",\"-c\""));
    assert_eq!(
        inspect(&app, "{{json .Config.Entrypoint}}"),
        format!("[\"/.dockstack-gate\",\"{ip}\",\"--\"]")
    );
    assert!(bed.ping_from_host(0, ip), "{ip} after the replacement");
    docker(&["restart", "-t", "5", &app]).expect("docker restart");
    assert!(
        wait_until(Duration::from_secs(5), || logs()
            .matches("ADDRESS-OK")
            .count()
            == 2),
        "no second start after a docker restart:\n{}",
        logs()
    );
    assert!(!logs().contains("ADDRESS-MISSING"), "{}", logs());
    ok(&bed, &env, &["plan"]);
    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}

/// A replacement whose program is not in its image is refused before the
/// old container is touched.
#[test]
fn a_replacement_whose_program_is_missing_leaves_the_old_one_serving() {
    let bed = bed(1);
    let app = bed.container_name("nogate");
    let ip = bed.subnet_ip(94);
    let prefix = bed.gateway().prefix();
    let spec = BedContainer::new(&app, 0, ip).with_yaml(&checker_yaml(ip, prefix));
    let env = bed.write_environment(std::slice::from_ref(&spec));
    ok(&bed, &env, &["apply", "--yes"]);
    let old_id = inspect(&app, "{{.Id}}");
    let started = inspect(&app, "{{.State.StartedAt}}");
    let broken =
        BedContainer::new(&app, 0, ip).with_yaml("restart: always\ncommand: [/no/such/program]");
    let env = bed.write_environment(&[broken]);
    let out = dockstack(&bed, &env, &["apply", "--yes"]);
    assert!(
        !out.status.success(),
        "apply of a missing program succeeded"
    );
    assert!(text(&out).contains(&app), "{}", text(&out));
    assert_eq!(
        inspect(&app, "{{.Id}}"),
        old_id,
        "the old {app} was replaced"
    );
    assert_eq!(
        inspect(&app, "{{.State.StartedAt}}"),
        started,
        "the old {app} was restarted"
    );
    assert!(
        bed.ping_from_host(0, ip),
        "{ip} after the refused replacement"
    );
    let names = docker(&["ps", "-a", "--format", "{{.Names}}"]).unwrap_or_default();
    assert!(
        !names
            .lines()
            .any(|n| n.starts_with(&app) && n.contains("dockstack-next")),
        "a new pair was left: {names}"
    );
    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn the_application_sees_its_hostname_fqdn_resolver_and_mac_and_show_tells_the_sandbox() {
    let bed = bed(1);
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(92);
    let prefix = bed.gateway().prefix();
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip)
        .with_yaml("domain: sandbox.test\ndns: [10.9.0.53, 10.9.0.54]\nmac: 02:aa:bb:cc:dd:ee")]);
    ok(&bed, &env, &["-c", &web, "run"]);
    assert_eq!(docker_exec(&web, &["hostname"]).trim(), web);
    assert_eq!(
        docker_exec(&web, &["hostname", "-f"]).trim(),
        format!("{web}.sandbox.test")
    );
    let resolv = docker_exec(&web, &["cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("nameserver 10.9.0.53\n"), "{resolv}");
    assert!(resolv.contains("nameserver 10.9.0.54\n"), "{resolv}");
    assert!(resolv.contains("search sandbox.test\n"), "{resolv}");
    assert_eq!(eth0_mac(&web), "02:aa:bb:cc:dd:ee");
    assert_eq!(eth0_addresses(&web), vec![format!("{ip}/{prefix}")]);

    // The application shares its sandbox's netns, and only that.
    let sandbox = format!("{web}{SANDBOX_SUFFIX}");
    assert_eq!(
        inspect(&web, "{{.HostConfig.NetworkMode}}"),
        format!("container:{}", inspect(&sandbox, "{{.Id}}"))
    );
    assert_eq!(inspect(&sandbox, "{{.HostConfig.NetworkMode}}"), "none");
    assert_eq!(
        inspect(&sandbox, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    // state: true with no restart policy comes back after a dockerd restart.
    assert_eq!(
        inspect(&web, "{{.HostConfig.RestartPolicy.Name}}"),
        "unless-stopped"
    );
    let image = inspect(&sandbox, "{{.Config.Image}}");
    assert!(image.starts_with("dockstack-pause:"), "{image}");
    let size: u64 = inspect(&image, "{{.Size}}").parse().expect("a size");
    assert!(size < 1 << 20, "the pause image is {size} bytes");

    let info = show(&bed, &env, &web);
    assert_eq!(info["network"], "sandbox", "{info}");
    assert_eq!(info["sandbox"], sandbox.as_str(), "{info}");
    assert_eq!(info["sandbox_state"], "running", "{info}");
    let shown = ok(&bed, &env, &["-c", &web, "show"]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains(&format!("network  sandbox {sandbox} (running)")),
        "{shown}"
    );

    // One row per container; a missing sandbox is said so.
    let all = status(&bed, &env);
    assert_eq!(all.len(), 1, "{all:?}");
    docker(&["rm", "-f", &sandbox]).expect("docker rm the sandbox");
    let out = ok(&bed, &env, &["status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("sandbox missing"), "{table}");
    let out = dockstack(&bed, &env, &["-c", &web, "start"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("has lost its network sandbox {sandbox}")),
        "{}",
        text(&out)
    );

    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_run_that_fails_at_any_step_leaves_nothing_behind() {
    let bed = bed(1);
    let name = bed.container_name("fail");
    let ip = bed.subnet_ip(93);
    // Each fails at a later step: the sandbox's name is taken; its plug
    // (no such bridge); the application's create (a capability Docker does
    // not know); the application's start (no such program).
    let cases = [
        ("sandbox", ""),
        ("plug", "bridge: nosuchbr0"),
        ("create", "cap_add: [NOT_A_CAPABILITY]"),
        ("start", "command: [/no/such/program]"),
    ];
    let sandbox = format!("{name}{SANDBOX_SUFFIX}");
    for (step, yaml) in cases {
        let env = bed.write_environment(&[BedContainer::new(&name, 0, ip).with_yaml(yaml)]);
        if step == "sandbox" {
            docker(&["create", "--name", &sandbox, TEST_IMAGE])
                .expect("a foreign container in the sandbox's name");
        }
        let out = dockstack(&bed, &env, &["-c", &name, "run"]);
        assert!(!out.status.success(), "{step}: {}", text(&out));
        let want = match step {
            "sandbox" => format!("container name {sandbox} is taken"),
            "plug" => "nosuchbr0".to_string(),
            "create" => "NOT_A_CAPABILITY".to_string(),
            _ => "/no/such/program".to_string(),
        };
        assert!(text(&out).contains(&want), "{step}: {}", text(&out));
        if step == "sandbox" {
            docker(&["rm", "-f", &sandbox]).expect("docker rm");
        }
        assert_nothing_left(&bed, 0);
        assert!(
            docker(&["inspect", &sandbox]).is_err(),
            "{step}: {sandbox} is left"
        );
    }
}

#[test]
fn a_sandbox_that_restarts_is_plugged_again_and_its_application_joins_it() {
    let bed = bed(1);
    let app = bed.container_name("join");
    let ip = bed.subnet_ip(94);
    let prefix = bed.gateway().prefix();
    let env = bed
        .write_environment(&[BedContainer::new(&app, 0, ip).with_yaml(&checker_yaml(ip, prefix))]);
    ok(&bed, &env, &["-c", &app, "run"]);
    let sandbox = format!("{app}{SANDBOX_SUFFIX}");
    for (round, how) in ["killed", "docker restart"].into_iter().enumerate() {
        let app_pid = pid_of(&app);
        match how {
            "killed" => crash(&sandbox),
            _ => {
                docker(&["restart", "-t", "1", &sandbox]).expect("docker restart");
            }
        }
        // The server plugs the new netns and restarts the application into it.
        assert!(
            wait_until(Duration::from_secs(10), || {
                pid_of(&app) != app_pid
                    && netns(&app) == netns(&sandbox)
                    && eth0_addresses(&app) == vec![format!("{ip}/{prefix}")]
            }),
            "{app} is not in its new sandbox after its sandbox was {how}:\n{}",
            bed.server_log(0)
        );
        assert!(
            wait_until(Duration::from_secs(5), || bed.ping_from_host(0, ip)),
            "{ip} after the sandbox was {how}"
        );
        let logs = docker(&["logs", &app]).unwrap_or_default();
        assert!(!logs.contains("ADDRESS-MISSING"), "{logs}");
        assert_eq!(logs.matches("ADDRESS-OK").count(), round + 2, "{logs}");
        assert_eq!(show(&bed, &env, &app)["plugged"], true);
    }
    assert_eq!(bed.ovs_ports(0).len(), 1);
    ok(&bed, &env, &["-c", &app, "destroy"]);
    assert_nothing_left(&bed, 0);
}

/// A power loss for one pair: its sandbox's and its application's
/// processes SIGKILLed, and Docker's restart policies bring both back. The
/// server's plug is held back (a fault point), so Docker starts the
/// application in the new netns before it is plugged: it waits behind
/// its gate, its first instruction finds its address, and the server does
/// not restart it.
#[test]
fn a_pair_killed_comes_back_with_one_start_that_finds_its_address() {
    let mut bed = bed(1);
    bed.set_server_env("DOCKSTACK_SERVER_PAUSE", "replug:3000");
    bed.restart_server(0).expect("restart the server");
    let app = bed.container_name("both");
    let ip = bed.subnet_ip(93);
    let prefix = bed.gateway().prefix();
    let env = bed
        .write_environment(&[BedContainer::new(&app, 0, ip).with_yaml(&checker_yaml(ip, prefix))]);
    ok(&bed, &env, &["-c", &app, "run"]);
    let sandbox = format!("{app}{SANDBOX_SUFFIX}");
    // Both streams: the gate speaks on stderr.
    let logs = || {
        let out = std::process::Command::new("docker")
            .args(["logs", &app])
            .output()
            .expect("docker logs");
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let rounds = 3;
    for round in 0..rounds {
        // The sandbox first, and the application once Docker has brought
        // the sandbox back (the order that makes the application's start
        // find its new netns not yet plugged).
        let app_pid = pid_of(&app);
        crash(&sandbox);
        crash(&app);
        assert!(
            wait_until(Duration::from_secs(20), || {
                let now = pid_of(&app);
                now != "0"
                    && now != app_pid
                    && netns(&app) == netns(&sandbox)
                    && logs().matches("ADDRESS-OK").count() > round + 1
            }),
            "{app} is not back in its new sandbox after round {round}:\n{}\n{}",
            logs(),
            bed.server_log(0)
        );
        assert!(
            wait_until(Duration::from_secs(5), || bed.ping_from_host(0, ip)),
            "{ip} after round {round}"
        );
    }
    // Settled: no late restart by the server is still to come.
    std::thread::sleep(Duration::from_secs(2));
    let logs = logs();
    assert!(!logs.contains("ADDRESS-MISSING"), "{logs}");
    assert_eq!(
        logs.matches("ADDRESS-OK").count(),
        rounds + 1,
        "one start per round, none by the server:\n{logs}\n{}",
        bed.server_log(0)
    );
    let held = logs.matches("dockstack gate: waiting for").count();
    println!("{rounds} rounds: the application waited behind its gate for the plug in {held}");
    assert!(
        held >= 1,
        "Docker never started {app} before its plug:\n{logs}"
    );
    assert_eq!(eth0_addresses(&app), vec![format!("{ip}/{prefix}")]);
    assert_eq!(show(&bed, &env, &app)["plugged"], true);
    ok(&bed, &env, &["-c", &app, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_container_of_the_previous_release_is_still_plugged_directly_on_each_start() {
    let bed = bed(1);
    let old = bed.container_name("old");
    let ip = bed.subnet_ip(95);
    let prefix = bed.gateway().prefix();
    let env = bed.write_environment(&[BedContainer::new(&old, 0, ip)]);
    // As the previous release made it: no network, its labels, no sandbox.
    let labels = [
        "dockstack.managed=true".to_string(),
        format!("dockstack.host={}", bed.host(0).name()),
        format!("dockstack.ip={ip}/{prefix}"),
        format!("dockstack.gateway={}", bed.gateway().ip()),
        format!("dockstack.bridge={}", bed.bridge()),
        format!("dockstack.mac={}", derived_mac(ip)),
        "dockstack.iface=eth0".to_string(),
    ];
    let mut args = vec!["run", "-d", "--name", &old, "--network", "none"];
    for l in &labels {
        args.extend(["--label", l]);
    }
    args.extend([
        TEST_IMAGE,
        "/bin/sh",
        "-c",
        "trap 'exit 0' TERM; sleep 1000000 & wait",
    ]);
    docker(&args).expect("docker run as the previous release");
    // Its start event has the server plug it.
    assert!(
        wait_until(Duration::from_secs(5), || bed.ping_from_host(0, ip)),
        "{old} was not plugged on its start:\n{}",
        bed.server_log(0)
    );
    docker(&["restart", "-t", "1", &old]).expect("docker restart");
    assert!(
        wait_until(Duration::from_secs(5), || eth0_addresses(&old)
            == vec![format!("{ip}/{prefix}")]),
        "{old} was not re-plugged after docker restart:\n{}",
        bed.server_log(0)
    );
    let info = show(&bed, &env, &old);
    assert_eq!(info["network"], "direct", "{info}");
    assert_eq!(info["plugged"], true, "{info}");
    let out = ok(&bed, &env, &["status"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("direct (no sandbox)"), "{table}");
    ok(&bed, &env, &["-c", &old, "stop"]);
    ok(&bed, &env, &["-c", &old, "start"]);
    assert_eq!(eth0_addresses(&old), vec![format!("{ip}/{prefix}")]);

    ok(&bed, &env, &["-c", &old, "destroy"]);
    assert_nothing_left(&bed, 0);
}
