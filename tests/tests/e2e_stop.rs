//! End to end: how containers are stopped and what they may use. The stop
//! and runtime keys are in force in Docker, and `stop`, `destroy` and a
//! recreate by `apply` run `prestop` and stop the application with its own
//! signal, letting it exit by itself, before anything is removed.

mod common;
use common::{test_spec, with_grpc};
use std::path::Path;
use std::time::{Duration, Instant};

use dockstack_proto as pb;
use dockstack_tests::support::{
    assert_nothing_left, bed, docker_exec, dockstack, inspect, ok, read, text, wait_until,
};
use dockstack_tests::testbed::BedContainer;

/// A busybox shell that logs its start and, on `signal`, logs it and exits
/// 0: a service with a shutdown of its own. Its log is `/data/log`.
fn graceful(signal: &str, data: &Path) -> String {
    format!(
        "volumes:\n- {}:/data\n\
         command: [\"sh\", \"-c\", \"trap 'echo {signal} >> /data/log; exit 0' {signal}; \
         echo started >> /data/log; while true; do sleep 1 & wait $!; done\"]\n\
         prestop: [\"sh -c 'echo prestop >> /data/log'\"]\n",
        data.display()
    )
}

fn log_lines(data: &Path) -> Vec<String> {
    read(&data.join("log"))
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_started(data: &Path, times: usize) {
    assert!(
        wait_until(Duration::from_secs(20), || {
            std::fs::read_to_string(data.join("log"))
                .is_ok_and(|l| l.lines().filter(|l| *l == "started").count() >= times)
        }),
        "the container did not start"
    );
}

#[test]
fn the_keys_are_in_force_and_destroy_stops_gracefully() {
    let bed = bed(1);
    let name = bed.container_name("graceful");
    let data = bed.dir().join("graceful");
    std::fs::create_dir_all(&data).unwrap();
    let c = BedContainer::new(&name, 0, bed.subnet_ip(40)).with_yaml(&format!(
        "{}stop_signal: SIGUSR1\nstop_grace_period: 30\n\
         sysctls:\n  net.ipv4.ip_nonlocal_bind: 1\n\
         ulimits:\n  nofile: {{soft: 1024, hard: 2048}}\n\
         tmpfs: ['/run:size=1m']\nmemory: 64m\ncpus: 0.5\npids_limit: 100\ninit: true\n",
        graceful("USR1", &data)
    ));
    let env = bed.write_environment(&[c]);
    ok(&bed, &env, &["-c", &name, "run"]);
    wait_started(&data, 1);

    for (format, want) in [
        ("{{.Config.StopSignal}}", "SIGUSR1"),
        ("{{.Config.StopTimeout}}", "30"),
        (
            "{{index .HostConfig.Sysctls \"net.ipv4.ip_nonlocal_bind\"}}",
            "1",
        ),
        (
            "{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}}",
            "nofile=1024:2048",
        ),
        ("{{index .HostConfig.Tmpfs \"/run\"}}", "size=1m"),
        ("{{.HostConfig.Memory}}", "67108864"),
        ("{{.HostConfig.NanoCpus}}", "500000000"),
        ("{{.HostConfig.PidsLimit}}", "100"),
        ("{{.HostConfig.Init}}", "true"),
    ] {
        assert_eq!(inspect(&name, format), want, "{format}");
    }
    // In force inside, in the netns its sandbox holds.
    let sysctl = docker_exec(&name, &["cat", "/proc/sys/net/ipv4/ip_nonlocal_bind"]);
    assert_eq!(sysctl.trim(), "1");
    // The limits of the container's first process, as the runtime set them
    // (a shell's `ulimit` builtin once printed the hard limit under CI).
    let limits = docker_exec(&name, &["cat", "/proc/1/limits"]);
    let nofile: Vec<&str> = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))
        .map(|rest| rest.split_whitespace().take(2).collect())
        .unwrap_or_default();
    assert_eq!(nofile, ["1024", "2048"], "{limits}");
    // The file's keys are the spec: nothing differs.
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    let began = Instant::now();
    let out = ok(&bed, &env, &["-c", &name, "destroy"]);
    // It exited on its signal, long before the grace period would kill it.
    assert!(
        began.elapsed() < Duration::from_secs(20),
        "destroy took {:?}: {}",
        began.elapsed(),
        text(&out)
    );
    assert_eq!(log_lines(&data), ["started", "prestop", "USR1"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn stop_and_a_recreate_by_apply_stop_gracefully() {
    let bed = bed(1);
    let name = bed.container_name("recreated");
    let data = bed.dir().join("recreated");
    std::fs::create_dir_all(&data).unwrap();
    let spec = |version: u32| {
        BedContainer::new(&name, 0, bed.subnet_ip(41)).with_yaml(&format!(
            "{}env:\n  VERSION: \"{version}\"\n",
            graceful("TERM", &data)
        ))
    };
    let env = bed.write_environment(&[spec(1)]);
    ok(&bed, &env, &["apply", "--yes"]);
    wait_started(&data, 1);

    ok(&bed, &env, &["-c", &name, "stop"]);
    assert_eq!(inspect(&name, "{{.State.ExitCode}}"), "0");
    assert_eq!(log_lines(&data), ["started", "prestop", "TERM"]);

    ok(&bed, &env, &["-c", &name, "start"]);
    wait_started(&data, 2);
    let env = bed.write_environment(&[spec(2)]);
    let out = dockstack(&bed, &env, &["plan"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    ok(&bed, &env, &["apply", "--yes"]);
    wait_started(&data, 3);
    assert_eq!(
        log_lines(&data),
        [
            "started", "prestop", "TERM", "started", "prestop", "TERM", "started"
        ]
    );

    ok(&bed, &env, &["destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn bad_values_sent_raw_and_what_an_operators_policy_refuses() {
    let bed = bed(1);
    let web = bed.container_name("limits");
    let ip = bed.subnet_ip(42);
    let host = bed.host(0).name().to_string();
    let spec = |f: fn(&mut pb::ContainerSpec)| {
        let mut s = test_spec(&bed, &web, 42);
        f(&mut s);
        s
    };
    let bad = [
        ("stop_signal", spec(|s| s.stop_signal = "SIGFOO".into())),
        (
            "stop_grace_period",
            spec(|s| s.stop_grace_secs = Some(7200)),
        ),
        (
            "not namespaced",
            spec(|s| s.sysctls = [("kernel.hostname".into(), "x".into())].into()),
        ),
        (
            "unknown ulimit",
            spec(|s| {
                s.ulimits = vec![pb::Ulimit {
                    name: "files".into(),
                    soft: 1,
                    hard: 1,
                }]
            }),
        ),
        (
            "tmpfs",
            spec(|s| s.tmpfs = [("run".into(), String::new())].into()),
        ),
        ("memory", spec(|s| s.memory_bytes = 1024)),
        ("pids_limit", spec(|s| s.pids_limit = -7)),
    ];
    let refused = with_grpc(&bed, 0, async |mut c| {
        let mut refused = Vec::new();
        for (what, s) in bad {
            let r = c
                .run(pb::RunRequest {
                    host: host.clone(),
                    spec: Some(s),
                    first_creation: None,
                    replace: false,
                })
                .await;
            refused.push((what, r.err()));
        }
        refused
    });
    for (what, status) in refused {
        let status = status.unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{what}");
        assert!(status.message().contains(what), "{what}: {status:?}");
    }
    assert!(bed.managed_containers(0).is_empty());

    // An operator: only the sysctls and ulimits its policy names.
    bed.add_client("ops", "operator");
    let as_ops = |yaml: &str| {
        let env = bed.write_environment(&[BedContainer::new(&web, 0, ip).with_yaml(yaml)]);
        let out = bed
            .client_command()
            .args(["--as", "ops", "-f"])
            .arg(&env)
            .args(["-c", &web, "run"])
            .output()
            .expect("run dockstack");
        (env, out)
    };
    for (yaml, key) in [
        (
            "sysctls:\n  net.ipv4.ip_forward: 1",
            "sysctls.net.ipv4.ip_forward",
        ),
        ("ulimits:\n  nofile: -1", "ulimits.nofile"),
        ("ulimits:\n  memlock: 1024", "ulimits.memlock"),
    ] {
        let (_, out) = as_ops(yaml);
        let shown = text(&out);
        assert!(!out.status.success(), "{yaml}: {shown}");
        assert!(
            shown.contains("role operator") && shown.contains(&format!("{web}: {key}: ")),
            "{yaml}: {shown}"
        );
        assert!(
            bed.managed_containers(0).is_empty(),
            "{yaml} made something"
        );
    }
    let (env, out) = as_ops("sysctls:\n  net.ipv4.ip_nonlocal_bind: 1\nulimits:\n  nofile: 1000");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        inspect(
            &web,
            "{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}}"
        ),
        "nofile=1000:1000"
    );
    ok(&bed, &env, &["-c", &web, "destroy"]);
    assert_nothing_left(&bed, 0);
}

#[test]
fn a_container_without_a_pids_limit_gets_the_default_and_its_sandbox_a_small_one() {
    let bed = bed(1);
    let name = bed.container_name("forky");
    let env = bed.write_environment(&[BedContainer::new(&name, 0, bed.subnet_ip(41))]);
    ok(&bed, &env, &["-c", &name, "run"]);
    let default = dockstack_types::resources::DEFAULT_PIDS_LIMIT.to_string();
    assert_eq!(inspect(&name, "{{.HostConfig.PidsLimit}}"), default);
    // In force: the container's pids cgroup (v1 or v2) has it.
    let max = docker_exec(
        &name,
        &[
            "sh",
            "-c",
            "cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max",
        ],
    );
    assert_eq!(max.trim(), default);
    let sandbox = format!("{name}{}", dockstack_types::SANDBOX_SUFFIX);
    assert_eq!(inspect(&sandbox, "{{.HostConfig.PidsLimit}}"), "16");
    // The default is the server's, not the spec's: nothing differs.
    let out = dockstack(&bed, &env, &["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    ok(&bed, &env, &["-c", &name, "destroy"]);
}
