//! What end-to-end tests share: a bed with the test image, running the
//! client, showing its output in a failure, and leak checks.

use std::path::Path;
use std::process::Output;

use crate::testbed::{BedOptions, TestBed, docker, ensure_test_image};

/// A bed of `hosts` hosts, with the busybox test image built.
pub fn bed(hosts: usize) -> TestBed {
    ensure_test_image().expect("test image");
    TestBed::new(BedOptions::hosts(hosts)).expect("test bed")
}

/// `dockstack -f ENV ARGS` with the bed's security flags.
pub fn dockstack(bed: &TestBed, env: &Path, args: &[&str]) -> Output {
    bed.client_command()
        .arg("-f")
        .arg(env)
        .args(args)
        .output()
        .expect("run dockstack")
}

/// `dockstack ARGS` that must succeed; its output.
pub fn ok(bed: &TestBed, env: &Path, args: &[&str]) -> Output {
    let out = dockstack(bed, env, args);
    assert!(out.status.success(), "dockstack {args:?}: {}", text(&out));
    out
}

/// Exit status, stdout and stderr of a command, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `docker exec CONTAINER ARGV` that must succeed; its stdout.
pub fn docker_exec(container: &str, argv: &[&str]) -> String {
    let mut args = vec!["exec", container];
    args.extend(argv);
    docker(&args).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Veth links inside host `i`'s namespace, but the bed's own.
pub fn host_veths(bed: &TestBed, i: usize) -> Vec<String> {
    let out = bed.exec_in_host(i, &["ip", "-o", "link", "show", "type", "veth"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
        .filter(|n| n != "mgmt0" && !bed.host(i).wire_ports().contains(n))
        .collect()
}

/// No managed container, OVS port or container veth is left on host `i`.
pub fn assert_nothing_left(bed: &TestBed, i: usize) {
    assert_eq!(
        bed.managed_containers(i),
        Vec::<String>::new(),
        "containers left on host {i}"
    );
    assert_eq!(
        bed.ovs_ports(i),
        Vec::<String>::new(),
        "OVS ports left on host {i}"
    );
    assert_eq!(
        host_veths(bed, i),
        Vec::<String>::new(),
        "veths left on host {i}"
    );
}
