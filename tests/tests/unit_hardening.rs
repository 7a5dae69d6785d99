//! The server's systemd unit is hardened as far as the daemon allows:
//! `systemd-analyze security` scores its exposure 7 or less (an unhardened
//! unit scores 9.6), and none of the protections that would break it is
//! set (see the unit's comments and docs/server.md).

use std::path::Path;
use std::process::Command;

fn unit() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/server/dockstack-server.service")
}

#[test]
fn the_server_unit_scores_7_or_less_and_keeps_what_the_daemon_needs() {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit())
        .output()
        .expect("systemd-analyze is missing: apt-get install -y systemd");
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for dockstack-server.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no score in systemd-analyze's output:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(score <= 7.0, "exposure {score}:\n{text}");

    let unit = std::fs::read_to_string(unit()).unwrap();
    let set = |key: &str| unit.lines().any(|l| l.starts_with(&format!("{key}=")));
    // Each would break the daemon: /proc/sys/net of containers' namespaces,
    // volume directories Docker binds from the host's tree, entering
    // namespaces, the probes' packet sockets.
    for key in [
        "ProtectKernelTunables",
        "PrivateTmp",
        "ProtectHome",
        "PrivateNetwork",
        "PrivateDevices",
    ] {
        assert!(!set(key), "{key} would break the server");
    }
    let families = unit
        .lines()
        .find_map(|l| l.strip_prefix("RestrictAddressFamilies="))
        .unwrap_or_default();
    for family in ["AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"] {
        assert!(families.contains(family), "{family} is not allowed");
    }
    let caps = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .unwrap_or_default();
    for cap in [
        "CAP_SYS_ADMIN",
        "CAP_SYS_PTRACE",
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
    ] {
        assert!(caps.contains(cap), "{cap} is not kept");
    }
}
