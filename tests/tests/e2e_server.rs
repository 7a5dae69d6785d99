//! End to end against `dockstack-server` on the test bed: every RPC, idempotent and refused runs, hooks, addresses that come back after restarts of containers, of the server and by Docker, parallel runs, and a clean SIGTERM.

mod common;
use common::with_grpc;
use dockstack_tests::support::{
    answers_within, assert_nothing_left, bed, derived_mac, docker_exec, dockstack, eth0_addresses,
    eth0_mac, exists, host_veths, inspect, ok, show, status, text, wait_until,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use dockstack_proto as pb;
use dockstack_tests::testbed::{BedContainer, TEST_IMAGE, TestBed, docker};
use serde_json::Value;

/// A container command that exits on SIGTERM at once: busybox `sleep` as
/// PID 1 ignores it, and every `stop` would wait Docker's 10 s for nothing.
const STOPPABLE: &str = r#"command: [/bin/sh, -c, "trap 'exit 0' TERM; sleep 1000000 & wait"]"#;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `dockstack ARGS` that must fail with exit status 1; its output.
fn fails(bed: &TestBed, env: &Path, args: &[&str]) -> Output {
    let out = dockstack(bed, env, args);
    assert_eq!(
        out.status.code(),
        Some(1),
        "dockstack {args:?} should fail: {}",
        text(&out)
    );
    out
}

/// The file `/proc/<pid>/ns/net` links to (`net:[4026532...]`).
fn netns_of(pid: &str) -> String {
    fs::read_link(format!("/proc/{pid}/ns/net"))
        .unwrap_or_else(|e| panic!("netns of {pid}: {e}"))
        .display()
        .to_string()
}

/// The value of an OVS Interface's `external_ids` key, unquoted.
fn port_external_id(bed: &TestBed, i: usize, port: &str, key: &str) -> String {
    bed.ovs_vsctl(
        i,
        &["get", "Interface", port, &format!("external_ids:{key}")],
    )
    .unwrap_or_else(|e| panic!("{e:#}"))
    .trim()
    .trim_matches('"')
    .to_string()
}

fn container_ref(host: &str, name: &str) -> pb::ContainerRef {
    pb::ContainerRef {
        host: host.to_string(),
        name: name.to_string(),
    }
}

/// A hook script in the bed's directory that appends one line per call to
/// `hooks.log` (its argument, the DOCKSTACK_* environment, the container's
/// Docker state, whether its address answers, and the network namespace the
/// hook runs in) and writes one line to stdout and one to stderr.
fn hook_script(bed: &TestBed) -> (PathBuf, PathBuf) {
    let script = bed.dir().join("hook.sh");
    let log = bed.dir().join("hooks.log");
    fs::write(
        &script,
        format!(
            r#"#!/bin/sh
if state=$(docker inspect --format '{{{{.State.Status}}}}' "$DOCKSTACK_CONTAINER" 2>/dev/null); then :; else state=absent; fi
if ping -n -c1 -W1 "$DOCKSTACK_IP" >/dev/null 2>&1; then answers=yes; else answers=no; fi
echo "$1 action=$DOCKSTACK_ACTION container=$DOCKSTACK_CONTAINER ip=$DOCKSTACK_IP host=$DOCKSTACK_HOST state=$state answers=$answers netns=$(readlink /proc/self/ns/net)" >> {log}
echo "hook $1 says hello"
echo "hook $1 grumbles" >&2
"#,
            log = log.display()
        ),
    )
    .expect("write the hook script");
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod the hook");
    (script, log)
}

fn read_log(log: &Path) -> Vec<String> {
    fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

// ---------------------------------------------------------------------------

#[test]
#[allow(clippy::too_many_lines)]
fn every_rpc_reports_what_is_really_there() {
    let bed = bed(1);
    let host = bed.host(0).name().to_string();
    let web = bed.container_name("web");
    let idle = bed.container_name("idle");
    let plain = bed.container_name("plain");
    let ip = bed.subnet_ip(10);
    let prefix = bed.gateway().prefix();
    let env = bed.write_environment(&[
        BedContainer::new(&web, 0, ip).with_yaml(STOPPABLE),
        BedContainer::new(&idle, 0, bed.subnet_ip(11)).with_yaml("state: false"),
    ]);
    // A container of the same Docker that dockstack does not manage.
    docker(&["run", "-d", "--net=none", "--name", &plain, TEST_IMAGE]).expect("docker run");

    // Run: web runs and is plugged, idle is created but neither started nor plugged.
    ok(&bed, &env, &["run"]);
    let info = show(&bed, &env, &web);
    assert_eq!(info["name"], web.as_str());
    assert_eq!(info["host"], host.as_str());
    assert_eq!(info["id"], inspect(&web, "{{.Id}}").as_str());
    assert_eq!(info["image"], TEST_IMAGE);
    assert_eq!(info["state"], "running");
    assert_eq!(info["pid"].to_string(), inspect(&web, "{{.State.Pid}}"));
    assert_eq!(
        info["started_at"],
        inspect(&web, "{{.State.StartedAt}}").as_str()
    );
    assert_eq!(info["ip"], format!("{ip}/{prefix}").as_str());
    assert_eq!(info["gateway"], bed.gateway().ip().to_string().as_str());
    assert_eq!(info["bridge"], bed.bridge());
    assert_eq!(info["plugged"], true, "{info}");
    let actual: Vec<String> = serde_json::from_value(info["actual_addresses"].clone()).unwrap();
    assert_eq!(actual, vec![format!("{ip}/{prefix}")]);
    assert_eq!(
        actual,
        eth0_addresses(&web),
        "show must report eth0 as it is"
    );
    assert_eq!(info["mac"], derived_mac(ip).as_str());
    assert_eq!(eth0_mac(&web), derived_mac(ip));
    // The port is the host end of the container's eth0, and the OVS port.
    let port = info["port"].as_str().expect("a port").to_string();
    assert!(!port.is_empty(), "{info}");
    assert_eq!(bed.ovs_ports(0), vec![port.clone()]);
    assert_eq!(host_veths(&bed, 0), vec![port.clone()]);
    let port_index = bed
        .run_in_host(0, &["cat", &format!("/sys/class/net/{port}/ifindex")])
        .expect("the port's ifindex");
    let peer_index = docker_exec(&web, &["cat", "/sys/class/net/eth0/iflink"]);
    assert_eq!(
        port_index.trim(),
        peer_index.trim(),
        "port {port} is not web's eth0's peer"
    );
    assert_eq!(port_external_id(&bed, 0, &port, "container_id"), web);
    assert_eq!(port_external_id(&bed, 0, &port, "container_iface"), "eth0");
    assert!(bed.ping_from_host(0, ip), "{ip} does not answer");

    let info = show(&bed, &env, &idle);
    assert_eq!(info["state"], "created");
    assert_eq!(info["plugged"], false);
    assert_eq!(info["port"], "");
    assert_eq!(info["started_at"], "");

    // List (status): every managed container of the host, and only those.
    let all = status(&bed, &env);
    assert_eq!(
        all.keys().cloned().collect::<Vec<_>>(),
        {
            let mut v = vec![web.clone(), idle.clone()];
            v.sort();
            v
        },
        "{all:?}"
    );
    assert_eq!(all[&web]["plugged"], true);
    assert_eq!(all[&idle]["state"], "created");
    let listed = with_grpc(&bed, 0, async |mut c| {
        c.list(pb::ListRequest { host: host.clone() })
            .await
            .expect("list")
            .into_inner()
            .containers
    });
    let listed: BTreeSet<String> = listed.into_iter().map(|c| c.name).collect();
    let managed: BTreeSet<String> = bed.managed_apps(0).into_iter().collect();
    assert_eq!(listed, managed);
    assert!(!listed.contains(&plain));

    // Show refuses a container it does not manage, and one that is not there.
    with_grpc(&bed, 0, async |mut c| {
        let err = c.show(container_ref(&host, &plain)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::AlreadyExists, "{err:?}");
        assert!(err.message().contains("not managed"), "{err:?}");
        let missing = bed.container_name("missing");
        let err = c.show(container_ref(&host, &missing)).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
        assert!(err.message().contains(&missing), "{err:?}");
    });

    // Stop: unplugged and stopped, nothing left on the host side.
    let old_pid = info_pid(&show(&bed, &env, &web));
    ok(&bed, &env, &["-c", &web, "stop"]);
    let info = show(&bed, &env, &web);
    assert_eq!(info["state"], "exited");
    assert_eq!(info["plugged"], false);
    assert_eq!(info["port"], "");
    assert_eq!(info["started_at"], "");
    assert_eq!(info["pid"], 0);
    assert_eq!(bed.ovs_ports(0), Vec::<String>::new());
    assert_eq!(host_veths(&bed, 0), Vec::<String>::new());

    // Start: the same container, a new process, plugged again.
    ok(&bed, &env, &["-c", &web, "start"]);
    let info = show(&bed, &env, &web);
    assert_eq!(info["state"], "running");
    assert_eq!(info["plugged"], true);
    assert_eq!(info["id"], inspect(&web, "{{.Id}}").as_str());
    assert_ne!(info_pid(&info), old_pid, "start made no new process");
    assert_eq!(eth0_addresses(&web), vec![format!("{ip}/{prefix}")]);
    assert!(
        bed.ping_from_host(0, ip),
        "{ip} does not answer after start"
    );
    // Start of the idle container plugs it too.
    ok(&bed, &env, &["-c", &idle, "start"]);
    assert_eq!(show(&bed, &env, &idle)["plugged"], true);
    assert_eq!(bed.ovs_ports(0).len(), 2);

    // Destroy: gone, with port and veth; the foreign container stays.
    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
    assert!(
        exists(&plain),
        "destroy removed a container it does not manage"
    );
    assert!(!bed.ping_from_host(0, ip), "{ip} answers after destroy");
    docker(&["rm", "-f", &plain]).expect("docker rm");
}

fn info_pid(info: &Value) -> u64 {
    info["pid"].as_u64().expect("a pid")
}

#[test]
fn run_again_ensures_running_and_plugged_and_refuses_another_spec() {
    let bed = bed(1);
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(20);
    let prefix = bed.gateway().prefix();
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip)]);
    ok(&bed, &env, &["-c", &web, "run"]);
    let first = show(&bed, &env, &web);
    let port = first["port"].as_str().unwrap().to_string();
    let port_index = bed
        .run_in_host(0, &["cat", &format!("/sys/class/net/{port}/ifindex")])
        .unwrap();

    // The same spec again: nothing changes, not even the veth.
    let out = ok(&bed, &env, &["-c", &web, "run"]);
    assert!(
        stdout(&out).contains("exists with the same spec"),
        "{}",
        text(&out)
    );
    let again = show(&bed, &env, &web);
    for key in ["id", "pid", "started_at", "port", "mac", "actual_addresses"] {
        assert_eq!(again[key], first[key], "{key} changed");
    }
    assert_eq!(
        bed.run_in_host(0, &["cat", &format!("/sys/class/net/{port}/ifindex")])
            .unwrap(),
        port_index,
        "run of an unchanged container replaced its veth"
    );

    // Unplugged behind the server's back: run plugs it again.
    bed.run_in_host(0, &["ip", "link", "del", &port])
        .expect("delete the veth");
    assert_eq!(eth0_addresses(&web), Vec::<String>::new());
    ok(&bed, &env, &["-c", &web, "run"]);
    assert_eq!(eth0_addresses(&web), vec![format!("{ip}/{prefix}")]);
    assert_eq!(bed.ovs_ports(0), vec![port.clone()]);
    assert_eq!(show(&bed, &env, &web)["id"], first["id"]);
    assert!(
        bed.ping_from_host(0, ip),
        "{ip} does not answer after re-run"
    );

    // Its host end taken down: show says it is not plugged, and run repairs it.
    bed.run_in_host(0, &["ip", "link", "set", &port, "down"])
        .expect("take the host end down");
    let info = show(&bed, &env, &web);
    assert_eq!(info["plugged"], false, "a host end that is down: {info}");
    assert_eq!(info["port"], port.as_str());
    ok(&bed, &env, &["-c", &web, "run"]);
    assert_eq!(show(&bed, &env, &web)["plugged"], true);
    assert!(
        bed.ping_from_host(0, ip),
        "{ip} does not answer after re-run"
    );

    // Stopped behind the server's back: run starts it (the same container).
    docker(&["stop", "-t", "0", &web]).expect("docker stop");
    ok(&bed, &env, &["-c", &web, "run"]);
    let info = show(&bed, &env, &web);
    assert_eq!(info["state"], "running");
    assert_eq!(info["plugged"], true);
    assert_eq!(info["id"], first["id"]);
    assert!(
        bed.ping_from_host(0, ip),
        "{ip} does not answer after re-run"
    );

    // Another IP: refused, saying what differs and what to do.
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(21))]);
    let out = fails(&bed, &env, &["-c", &web, "run"]);
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "ip {ip}/{prefix} → {}/{prefix}",
            bed.subnet_ip(21)
        )),
        "the refusal does not say what differs: {err}"
    );
    assert!(err.contains("destroy it first"), "{err}");
    assert_eq!(inspect(&web, "{{.Id}}"), first["id"].as_str().unwrap());
    assert_eq!(eth0_addresses(&web), vec![format!("{ip}/{prefix}")]);

    // Another image (with the same IP): refused as well.
    let mut other = BedContainer::new(&web, 0, ip);
    other.image = format!("{TEST_IMAGE}-other");
    docker(&["tag", TEST_IMAGE, &other.image]).expect("docker tag");
    let env = bed.write_environment(&[other.clone()]);
    let out = fails(&bed, &env, &["-c", &web, "run"]);
    docker(&["rmi", &other.image]).expect("docker rmi");
    assert!(stderr(&out).contains("image"), "{}", text(&out));
    assert!(
        stderr(&out).contains("destroy it first") && stderr(&out).contains("dockstack apply"),
        "{}",
        text(&out)
    );

    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_request_for_another_host_is_refused() {
    let bed = bed(2);
    let (h0, h1) = (bed.host(0), bed.host(1));
    let web = bed.container_name("web");
    let good = bed.environment_yaml(&[BedContainer::new(&web, 0, bed.subnet_ip(30))]);
    // The file's entry for host 0 points at host 1's server (and host 1 is
    // not in the file, since the client refuses two hosts with one address).
    let h1_entry = format!(
        "  {}:\n    ip: {}\n    port: {}\n",
        h1.name(),
        h1.mgmt_ip(),
        h1.port()
    );
    assert!(good.contains(&h1_entry), "{good}");
    let wrong = good.replace(&h1_entry, "").replace(
        &format!("ip: {}\n", h0.mgmt_ip()),
        &format!("ip: {}\n", h1.mgmt_ip()),
    );
    let env = bed.dir().join("wrong-host.yaml");
    fs::write(&env, wrong).unwrap();

    for action in ["run", "start", "stop", "show", "destroy"] {
        let out = fails(&bed, &env, &["-c", &web, action]);
        let err = stderr(&out);
        assert!(
            err.contains(&format!(
                "request for host {} reached host {}",
                h0.name(),
                h1.name()
            )),
            "{action}: {err}"
        );
    }
    // The same with the right file and --hostip pointing elsewhere.
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(30))]);
    let h1_ip = h1.mgmt_ip().to_string();
    let out = fails(&bed, &env, &["--hostip", &h1_ip, "-c", &web, "run"]);
    assert!(
        stderr(&out).contains(&format!("reached host {}", h1.name())),
        "{}",
        text(&out)
    );
    assert!(!exists(&web), "a refused run created the container");
    assert_nothing_left(&bed, 0);
    assert_nothing_left(&bed, 1);

    // Directly: every RPC checks the host name, with FAILED_PRECONDITION.
    with_grpc(&bed, 1, async |mut c| {
        let name = h0.name();
        let check = |r: Result<(), tonic::Status>, rpc: &str| {
            let err = r.expect_err(rpc);
            assert_eq!(
                err.code(),
                tonic::Code::FailedPrecondition,
                "{rpc}: {err:?}"
            );
            assert!(err.message().contains(name), "{rpc}: {err:?}");
        };
        check(
            c.list(pb::ListRequest { host: name.into() })
                .await
                .map(drop),
            "list",
        );
        check(c.show(container_ref(name, &web)).await.map(drop), "show");
        check(
            c.run(pb::RunRequest {
                host: name.into(),
                spec: Some(pb::ContainerSpec {
                    name: web.clone(),
                    image: TEST_IMAGE.into(),
                    ip: bed.subnet_ip(30).to_string(),
                    prefix_len: 24,
                    bridge: "br0".into(),
                    running: true,
                    ..Default::default()
                }),
                first_creation: None,
                replace: false,
            })
            .await
            .map(drop),
            "run",
        );
    });
    assert!(!exists(&web), "a refused run created the container");
}

#[test]
fn hooks_run_in_order_on_the_host_with_their_environment_and_stream_output() {
    let bed = bed(1);
    let host = bed.host(0).name().to_string();
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(40);
    let (hook, log) = hook_script(&bed);
    let hook = hook.display();
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip).with_yaml(&format!(
        "precreation:\n- {hook} pre1\n- {hook} pre2\npostcreation:\n- {hook} post\npostdestroy:\n- {hook} postdestroy"
    ))]);

    let out = ok(&bed, &env, &["-c", &web, "run"]);
    let so = stdout(&out);
    for line in [
        "hook pre1 says hello",
        "hook pre1 grumbles",
        "hook pre2 says hello",
        "hook post says hello",
    ] {
        assert!(so.contains(line), "{line:?} not streamed: {}", text(&out));
    }
    let at = |s: &str| so.find(s).unwrap_or_else(|| panic!("{s:?} not in {so}"));
    assert!(at("hook pre2 says hello") < at(&format!("create {web}")));
    assert!(at(&format!("create {web}")) < at("hook post says hello"));

    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);

    let server_netns = netns_of(&bed.host(0).server_pid().expect("server.pid").to_string());
    assert_ne!(
        server_netns,
        netns_of("self"),
        "the server runs in the test's netns"
    );
    let same = format!("container={web} ip={ip} host={host} netns={server_netns}");
    let lines = read_log(&log);
    let want = [
        format!("pre1 action=run {same} state=absent answers=no"),
        format!("pre2 action=run {same} state=absent answers=no"),
        format!("post action=run {same} state=running answers=yes"),
        format!("postdestroy action=destroy {same} state=absent answers=no"),
    ];
    // The order of the fields in the script is not the order here: compare as sets of words.
    assert_eq!(lines.len(), want.len(), "{lines:#?}");
    for (got, want) in lines.iter().zip(&want) {
        let got: BTreeSet<&str> = got.split_whitespace().collect();
        let want: BTreeSet<&str> = want.split_whitespace().collect();
        assert_eq!(got, want);
    }
}

#[test]
fn a_failing_precreation_hook_aborts_with_nothing_created() {
    let bed = bed(1);
    let web = bed.container_name("web");
    let (hook, log) = hook_script(&bed);
    let hook = hook.display();
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(41))
        .with_yaml(&format!(
            "precreation:\n- {hook} pre\n- /bin/sh -c 'echo no room here; exit 3'\n- {hook} never\npostcreation:\n- {hook} post"
        ))]);
    let out = fails(&bed, &env, &["-c", &web, "run"]);
    assert!(stdout(&out).contains("no room here"), "{}", text(&out));
    assert!(
        stderr(&out).contains("exited with status 3"),
        "{}",
        text(&out)
    );
    assert!(!exists(&web), "the container was created");
    assert_nothing_left(&bed, 0);
    let lines = read_log(&log);
    assert_eq!(
        lines.len(),
        1,
        "hooks after the failing one ran: {lines:#?}"
    );
    assert!(lines[0].starts_with("pre "), "{lines:#?}");
}

#[test]
fn failing_postcreation_and_postdestroy_hooks_are_reported() {
    let bed = bed(1);
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(42);
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip).with_yaml(
        "postcreation:\n- /bin/sh -c 'echo half configured; exit 5'\npostdestroy:\n- /bin/sh -c 'echo cannot clean up >&2; exit 6'",
    )]);

    // The run fails, but the container stays up and plugged to be looked at.
    let out = fails(&bed, &env, &["-c", &web, "run"]);
    assert!(stdout(&out).contains("half configured"), "{}", text(&out));
    assert!(
        stderr(&out).contains("exited with status 5"),
        "{}",
        text(&out)
    );
    let info = show(&bed, &env, &web);
    assert_eq!(info["state"], "running");
    assert_eq!(info["plugged"], true);
    assert!(bed.ping_from_host(0, ip), "{ip} does not answer");

    // The destroy happens, and the hook's failure is reported.
    let out = fails(&bed, &env, &["-c", &web, "destroy"]);
    assert!(stdout(&out).contains("cannot clean up"), "{}", text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("postdestroy") && err.contains("exited with status 6"),
        "{err}"
    );
    assert!(!exists(&web), "destroy left the container");
    assert_nothing_left(&bed, 0);
}

#[test]
fn docker_restart_and_stop_start_behind_the_servers_back_never_touch_the_network() {
    let bed = bed(1);
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(50);
    let prefix = bed.gateway().prefix();
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip)]);
    ok(&bed, &env, &["-c", &web, "run"]);
    let port = show(&bed, &env, &web)["port"].as_str().unwrap().to_string();
    let ifindex = || {
        bed.run_in_host(0, &["cat", &format!("/sys/class/net/{port}/ifindex")])
            .unwrap()
    };
    let before = ifindex();

    docker(&["restart", "-t", "0", &web]).expect("docker restart");
    // No waiting: the address is there when the process starts.
    assert_eq!(eth0_addresses(&web), vec![format!("{ip}/{prefix}")]);
    assert_eq!(eth0_mac(&web), derived_mac(ip));
    assert!(bed.ping_from_host(0, ip));

    docker(&["stop", "-t", "0", &web]).expect("docker stop");
    // The sandbox holds the address while the application is stopped.
    assert!(bed.ping_from_host(0, ip), "{ip} went with the application");
    assert_eq!(bed.ovs_ports(0), vec![port.clone()]);
    docker(&["start", &web]).expect("docker start");
    assert_eq!(eth0_addresses(&web), vec![format!("{ip}/{prefix}")]);
    assert!(bed.ping_from_host(0, ip));
    // One port, the very same veth, nothing stale beside it, no re-plug.
    assert_eq!(bed.ovs_ports(0), vec![port.clone()]);
    assert_eq!(host_veths(&bed, 0), vec![port.clone()]);
    assert_eq!(ifindex(), before);
    assert_eq!(show(&bed, &env, &web)["plugged"], true);
    let log = bed.server_log(0);
    assert!(!log.contains("re-plugged"), "{log}");

    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_killed_server_leaves_plugs_and_on_restart_replugs_and_removes_stale_ports() {
    let mut bed = bed(1);
    let keep = bed.container_name("keep");
    let bounce = bed.container_name("bounce");
    let gone = bed.container_name("gone");
    let ips = [bed.subnet_ip(60), bed.subnet_ip(61), bed.subnet_ip(62)];
    let env = bed.write_environment(&[
        BedContainer::new(&keep, 0, ips[0]),
        BedContainer::new(&bounce, 0, ips[1]),
        BedContainer::new(&gone, 0, ips[2]),
    ]);
    ok(&bed, &env, &["run"]);
    let ports: BTreeMap<String, String> = status(&bed, &env)
        .into_iter()
        .map(|(n, i)| (n, i["port"].as_str().unwrap().to_string()))
        .collect();
    let keep_index = bed
        .run_in_host(
            0,
            &["cat", &format!("/sys/class/net/{}/ifindex", ports[&keep])],
        )
        .unwrap();

    bed.kill_server(0).expect("kill the server");
    // A crash of the server takes no address away.
    for ip in ips {
        assert!(bed.ping_from_host(0, ip), "{ip} went with the server");
    }
    // While it is down: one container is restarted (and keeps its eth0,
    // which its sandbox holds), one removed (its sandbox and OVS port stay
    // behind).
    docker(&["restart", "-t", "0", &bounce]).expect("docker restart");
    docker(&["rm", "-f", &gone]).expect("docker rm");
    assert!(bed.ovs_ports(0).contains(&ports[&gone]));
    assert_eq!(
        eth0_addresses(&bounce),
        vec![format!("{}/{}", ips[1], bed.gateway().prefix())]
    );
    assert!(bed.ping_from_host(0, ips[1]));

    bed.start_server(0).expect("start the server again");
    assert!(
        wait_until(Duration::from_secs(5), || !bed
            .ovs_ports(0)
            .contains(&ports[&gone])),
        "the stale port of {gone} is still there: {:?}\n{}",
        bed.ovs_ports(0),
        bed.server_log(0)
    );
    assert!(
        answers_within(&bed, 0, ips[1], Duration::from_secs(5)),
        "{bounce} was not re-plugged at start-up:\n{}",
        bed.server_log(0)
    );
    assert!(bed.ping_from_host(0, ips[0]));
    // The untouched container kept its very veth.
    assert_eq!(
        bed.run_in_host(
            0,
            &["cat", &format!("/sys/class/net/{}/ifindex", ports[&keep])]
        )
        .unwrap(),
        keep_index
    );
    let mut want = vec![ports[&keep].clone(), ports[&bounce].clone()];
    want.sort();
    let mut have = bed.ovs_ports(0);
    have.sort();
    assert_eq!(have, want);
    // The sandbox of the removed container went with its port.
    assert_eq!(bed.managed_apps(0), vec![bounce.clone(), keep.clone()]);

    ok(&bed, &env, &["-c", &keep, "destroy"]);
    ok(&bed, &env, &["-c", &bounce, "destroy"]);
    // Destroying what is already gone only clears leftovers.
    ok(&bed, &env, &["-c", &gone, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn every_one_of_ten_quick_restarts_brings_the_address_back() {
    // Each restart sends a die and a start event at once; whichever the
    // server handles first, the new process must end up plugged.
    let bed = bed(1);
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(52);
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip)]);
    ok(&bed, &env, &["-c", &web, "run"]);
    for round in 0..10 {
        docker(&["restart", "-t", "0", &web]).expect("docker restart");
        assert!(
            answers_within(&bed, 0, ip, Duration::from_secs(5)),
            "{ip} is not back after restart {round}:\n{}",
            bed.server_log(0)
        );
    }
    assert_eq!(bed.ovs_ports(0).len(), 1);
    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_container_removed_behind_the_servers_back_leaves_no_port() {
    let bed = bed(1);
    let web = bed.container_name("web");
    let env = bed.write_environment(&[BedContainer::new(&web, 0, bed.subnet_ip(55))]);
    ok(&bed, &env, &["-c", &web, "run"]);
    assert_eq!(bed.ovs_ports(0).len(), 1);
    docker(&["rm", "-f", &web]).expect("docker rm");
    assert!(
        wait_until(Duration::from_secs(5), || bed.ovs_ports(0).is_empty()),
        "the port of removed {web} stays: {:?}\n{}",
        bed.ovs_ports(0),
        bed.server_log(0)
    );
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_restart_always_container_whose_process_dies_comes_back_with_its_address() {
    let bed = bed(1);
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(70);
    let prefix = bed.gateway().prefix();
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip).with_yaml("restart: always")]);
    ok(&bed, &env, &["-c", &web, "run"]);
    assert_eq!(
        inspect(&web, "{{.HostConfig.RestartPolicy.Name}}"),
        "always"
    );
    let pid = inspect(&web, "{{.State.Pid}}");
    let restarts = inspect(&web, "{{.RestartCount}}");

    // `docker kill` counts as a stop by the user, so Docker would not
    // restart it: the process dies from the host instead.
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    assert!(
        wait_until(Duration::from_secs(10), || {
            let now = docker(&[
                "inspect",
                "--format",
                "{{.State.Pid}} {{.RestartCount}}",
                &web,
            ])
            .unwrap_or_default();
            let mut w = now.split_whitespace();
            let (p, r) = (w.next().unwrap_or("0"), w.next().unwrap_or(""));
            p != "0" && p != pid && r != restarts
        }),
        "Docker did not restart {web}"
    );
    // Its sandbox held the address throughout: nothing was re-plugged.
    assert!(bed.ping_from_host(0, ip));
    assert_eq!(eth0_addresses(&web), vec![format!("{ip}/{prefix}")]);
    assert_eq!(show(&bed, &env, &web)["plugged"], true);
    let log = bed.server_log(0);
    assert!(!log.contains("re-plugged"), "{log}");

    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn twenty_parallel_runs_each_get_their_own_address() {
    const N: u32 = 20;
    let bed = bed(1);
    let prefix = bed.gateway().prefix();
    let containers: Vec<BedContainer> = (0..N)
        .map(|k| {
            BedContainer::new(
                bed.container_name(&format!("p{k:02}")),
                0,
                bed.subnet_ip(100 + k),
            )
        })
        .collect();
    let env = bed.write_environment(&containers);
    ok(&bed, &env, &["--jobs", "20", "run"]);

    let all = status(&bed, &env);
    assert_eq!(all.len(), N as usize);
    let mut ports = BTreeSet::new();
    for c in &containers {
        let info = &all[&c.name];
        assert_eq!(info["plugged"], true, "{info}");
        // eth0 of each container has its own spec, as the kernel says.
        assert_eq!(
            eth0_addresses(&c.name),
            vec![format!("{}/{prefix}", c.ip)],
            "{}",
            c.name
        );
        assert_eq!(eth0_mac(&c.name), derived_mac(c.ip), "{}", c.name);
        // And its peer is the port that OVS knows as this container's.
        let port = info["port"].as_str().unwrap().to_string();
        let index = bed
            .run_in_host(0, &["cat", &format!("/sys/class/net/{port}/ifindex")])
            .unwrap();
        let peer = docker_exec(&c.name, &["cat", "/sys/class/net/eth0/iflink"]);
        assert_eq!(index.trim(), peer.trim(), "{}: crossed veth", c.name);
        assert_eq!(port_external_id(&bed, 0, &port, "container_id"), c.name);
        assert!(ports.insert(port));
    }
    let have: BTreeSet<String> = bed.ovs_ports(0).into_iter().collect();
    assert_eq!(have, ports);
    for c in &containers {
        assert!(
            bed.ping_from_host(0, c.ip),
            "{} ({}) does not answer",
            c.name,
            c.ip
        );
    }

    ok(&bed, &env, &["--jobs", "20", "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn sigterm_shuts_the_server_down_cleanly_and_leaves_plugs() {
    use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
    let mut bed = bed(1);
    let web = bed.container_name("web");
    let ip = bed.subnet_ip(80);
    let env = bed.write_environment(&[BedContainer::new(&web, 0, ip)]);
    ok(&bed, &env, &["-c", &web, "run"]);

    let pid = nix::unistd::Pid::from_raw(
        i32::try_from(bed.host(0).server_pid().expect("server.pid")).expect("a pid"),
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    // WNOWAIT: read the exit status but leave the child to the bed, which reaps it.
    let mut exited = WaitStatus::StillAlive;
    wait_until(Duration::from_secs(10), || {
        exited = waitid(
            Id::Pid(pid),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG,
        )
        .expect("waitid");
        exited != WaitStatus::StillAlive
    });
    assert_eq!(exited, WaitStatus::Exited(pid, 0), "{}", bed.server_log(0));
    assert!(!bed.server_running(0));
    bed.stop_server(0).expect("reap the server");
    let log = bed.server_log(0);
    assert!(log.contains("shutting down"), "{log}");
    // A server that stops takes no address away.
    assert!(bed.ping_from_host(0, ip), "{ip} went with the server");

    bed.start_server(0).expect("start the server again");
    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);
}

/// Two names of the bed whose host ends would have the same usual name.
fn colliding_names(bed: &TestBed) -> (String, String) {
    let mut seen = BTreeMap::new();
    for n in 0..1_000_000 {
        let name = bed.container_name(&format!("twin{n}"));
        if let Some(first) = seen.insert(netplug::host_ifname(&name, "eth0"), name.clone()) {
            return (first, name);
        }
    }
    panic!("no colliding pair of names found");
}

#[test]
fn containers_whose_names_hash_alike_each_keep_their_own_plug() {
    let bed = bed(1);
    let (a, b) = colliding_names(&bed);
    let (ip_a, ip_b) = (bed.subnet_ip(60), bed.subnet_ip(61));
    let env = bed.write_environment(&[
        BedContainer::new(&a, 0, ip_a).with_yaml(STOPPABLE),
        BedContainer::new(&b, 0, ip_b).with_yaml(STOPPABLE),
    ]);
    ok(&bed, &env, &["run"]);
    let (port_a, port_b) = (
        show(&bed, &env, &a)["port"].as_str().unwrap().to_string(),
        show(&bed, &env, &b)["port"].as_str().unwrap().to_string(),
    );
    assert_ne!(port_a, port_b, "{a} and {b} share a host end");
    let all = status(&bed, &env);
    assert_eq!(all[&a]["plugged"], true, "{:?}", all[&a]);
    assert_eq!(all[&b]["plugged"], true, "{:?}", all[&b]);
    for ip in [ip_a, ip_b] {
        assert!(answers_within(&bed, 0, ip, Duration::from_secs(5)), "{ip}");
    }

    // A restart of one re-plugs it under its own name and leaves the other.
    docker(&["restart", "-t", "0", &b]).expect("docker restart");
    assert!(
        answers_within(&bed, 0, ip_b, Duration::from_secs(5)),
        "{ip_b} is not back after docker restart:\n{}",
        bed.server_log(0)
    );
    assert_eq!(show(&bed, &env, &b)["port"], port_b.as_str());
    assert!(answers_within(&bed, 0, ip_a, Duration::from_secs(5)));

    // Destroying one leaves the other plugged.
    ok(&bed, &env, &["-c", &a, "destroy"]);
    assert!(
        answers_within(&bed, 0, ip_b, Duration::from_secs(5)),
        "destroying {a} cut off {b}:\n{}",
        bed.server_log(0)
    );
    assert_eq!(bed.ovs_ports(0), vec![port_b.clone()]);
    ok(&bed, &env, &["-c", &b, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn an_ovsdb_failure_in_the_middle_of_gc_removes_nothing() {
    let mut bed = bed(1);
    let keep = bed.container_name("keep");
    let gone = bed.container_name("gone");
    let ips = [bed.subnet_ip(64), bed.subnet_ip(65)];
    let env = bed.write_environment(&[
        BedContainer::new(&keep, 0, ips[0]),
        BedContainer::new(&gone, 0, ips[1]),
    ]);
    ok(&bed, &env, &["run"]);
    let ports_before = bed.ovs_ports(0);
    assert_eq!(ports_before.len(), 2);
    // While the server is down, one pair goes: its port is stale, and the
    // start-up gc would take it, between its look-ups and its removals.
    bed.kill_server(0).expect("kill the server");
    docker(&["rm", "-f", &gone, &format!("{gone}.dockstack-sandbox")]).expect("docker rm");
    bed.set_server_env("DOCKSTACK_SERVER_PAUSE", "gc:3000");
    let log = bed.host(0).server_log();
    let (netns, rundir) = (
        bed.host(0).netns().to_string(),
        bed.host(0).rundir().to_path_buf(),
    );
    // OVSDB goes away while gc is held, and comes back once it went on.
    let breaker = std::thread::spawn(move || {
        let seen = |needle: &str| {
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains(needle)
        };
        assert!(
            wait_until(Duration::from_secs(30), || seen("gc: held")),
            "gc was not held"
        );
        dockstack_tests::testbed::stop_ovsdb(&rundir).expect("stop ovsdb-server");
        assert!(
            wait_until(Duration::from_secs(30), || seen("gc: going on")),
            "gc did not go on"
        );
        std::thread::sleep(Duration::from_millis(500));
        dockstack_tests::testbed::start_ovsdb(&netns, &rundir).expect("start ovsdb-server");
    });
    bed.start_server(0).expect("start the server again");
    breaker.join().expect("the OVSDB breaker");
    // Nothing was removed, not even the stale port.
    let mut have = bed.ovs_ports(0);
    have.sort();
    let mut want = ports_before.clone();
    want.sort();
    assert_eq!(have, want, "{}", bed.server_log(0));
    // ovs-vswitchd takes a moment to find its database again.
    assert!(
        answers_within(&bed, 0, ips[0], Duration::from_secs(10)),
        "{}",
        bed.server_log(0)
    );
    // The next gc, with OVSDB there, takes the stale port and only it.
    bed.set_server_env("DOCKSTACK_SERVER_PAUSE", "none:0");
    bed.restart_server(0).expect("restart the server");
    assert!(
        wait_until(Duration::from_secs(5), || bed.ovs_ports(0).len() == 1),
        "{:?}\n{}",
        bed.ovs_ports(0),
        bed.server_log(0)
    );
    assert!(answers_within(&bed, 0, ips[0], Duration::from_secs(10)));
    ok(&bed, &env, &["-c", &keep, "destroy"]);
    ok(&bed, &env, &["-c", &gone, "destroy"]);
    assert_nothing_left(&bed, 0);
}
